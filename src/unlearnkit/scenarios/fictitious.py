"""Fictitious unlearning (TOFU forget01/05/10 or the synthetic benchmark).

Fine-tune (or load) the target, optionally a retain model for Forget Quality, evaluate the target
("before"), unlearn one task, evaluate the result ("final"), then, when ``attack.names`` lists
attacks, attack the unlearned model (``eval/attack-<name>/``, ``attacks.json``).
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

from unlearnkit.config import RunConfig
from unlearnkit.scenarios.common import (
    evaluate_model,
    is_done,
    log,
    mark_done,
    open_benchmark,
    record,
    retain_model,
    run_dir,
    save_run_config,
    target_model,
)


def _evaluate_retain_model(
    cfg: RunConfig, rmodel: str, eval_sets: dict, rdir: Path, kind: str
) -> str:
    """Evaluate the retain model where the run's metrics read it; returns its folder. Forget
    Quality reads only its forget-set truth ratios; privacy leakage and the Reference attack
    its membership AUC and NLLs on the forget and holdout sets."""
    log("evaluating the retain model on the forget set (reference for Forget Quality)")
    forget_only = copy.deepcopy(cfg)
    forget_only.eval.splits = ["forget", *(["holdout"] if "holdout" in eval_sets else [])]
    evaluate_model(rmodel, forget_only, eval_sets, rdir / "eval" / "retain_model", kind)
    return str(rdir / "eval" / "retain_model")


def run_fictitious(cfg: RunConfig, resume: bool = False) -> Path:
    from unlearnkit.train.unlearn import run_unlearning

    bench = open_benchmark(cfg.data.benchmark, cfg.data.holdout_authors)
    split, task = cfg.data.split, cfg.data.task
    rdir = run_dir(cfg)
    if is_done(rdir):
        log(f"{rdir} is already finished; skipping (delete DONE.json to run it again)")
        return rdir
    # Validate data before any expensive step: unknown split/task fails here.
    forget, retain = bench.forget(split, task), bench.retain(split, task)
    eval_sets = bench.eval_sets(split, task)
    if cfg.attack.names:
        from unlearnkit.attacks import resolve_attacks

        resolve_attacks(cfg.attack.names)  # an unknown attack fails before any training
    rdir.mkdir(parents=True, exist_ok=True)
    save_run_config(cfg, rdir)
    target = target_model(cfg, bench)
    retain_eval = None
    rmodel = retain_model(cfg, bench)
    if rmodel is not None:
        retain_eval = _evaluate_retain_model(cfg, rmodel, eval_sets, rdir, bench.kind)
    if cfg.target.eval_before:
        log(f"evaluating the target model before unlearning ({target})")
        before = evaluate_model(
            target, cfg, eval_sets, rdir / "eval" / "before", bench.kind, retain_eval
        )
        record(cfg, rdir, "before", before, task)
    log(f"unlearning {len(forget)} forget items with {cfg.method.name} (retain set: {len(retain)})")
    callbacks = []
    if cfg.train.eval_every_epoch:
        from unlearnkit.scenarios.epoch_eval import EpochEvalCallback

        callbacks.append(EpochEvalCallback(cfg, eval_sets, rdir, bench.kind, retain_eval, task))
    model_dir = run_unlearning(
        cfg, forget, retain, rdir, target, resume=resume, extra_callbacks=callbacks
    )
    log("evaluating the unlearned model")
    final = evaluate_model(
        str(model_dir), cfg, eval_sets, rdir / "eval" / "final", bench.kind, retain_eval
    )
    record(cfg, rdir, "final", final, task)
    stages = ["before", "final"] if cfg.target.eval_before else ["final"]
    if cfg.attack.names:
        from unlearnkit.scenarios.attack_stage import run_attack_stage

        run_attack_stage(
            cfg, rdir, str(model_dir), eval_sets, bench.kind, retain, task, retain_eval
        )
        stages.append("attacks")
    # Done first: a kill between the two lines must not leave a run that trains again.
    mark_done(rdir, {"stages": stages})
    if not cfg.train.save_checkpoints:
        shutil.rmtree(model_dir, ignore_errors=True)
    return rdir
