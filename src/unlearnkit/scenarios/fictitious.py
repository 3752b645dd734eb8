"""Fictitious unlearning (TOFU forget01/05/10 or the synthetic benchmark), as declared stages.

Fine-tune (or load) the target, optionally a retain model for Forget Quality, evaluate the target
("before"), unlearn one task, evaluate the result ("final"), then, when ``attack.names`` lists
attacks, attack the unlearned model (``eval/attack-<name>/``, ``attacks.json``). The driver
(:mod:`unlearnkit.scenarios.stages`) owns the folder, the done marker and the recording.
"""

from __future__ import annotations

from pathlib import Path

from unlearnkit.config import RunConfig
from unlearnkit.scenarios.common import (
    log,
    open_benchmark,
    retain_model,
    target_model,
)
from unlearnkit.scenarios.stages import (
    Run,
    Scenario,
    Stage,
    attack_stage,
    check_attacks,
    drive,
    new_run,
    register_scenario,
    remove_unlearned_model,
)


def prepare(cfg: RunConfig, resume: bool | str) -> Run:
    bench = open_benchmark(cfg.data.benchmark, cfg.data.holdout_authors)
    split, task = cfg.data.split, cfg.data.task
    # Validate data before any expensive step: unknown split/task fails here.
    forget, retain = bench.forget(split, task), bench.retain(split, task)
    eval_sets = bench.eval_sets(split, task)
    check_attacks(cfg)
    return new_run(cfg, bench, resume, task=task, forget=forget, retain=retain,
                   eval_sets=eval_sets)  # fmt: skip


def fine_tune_target(run: Run) -> None:
    run.target = target_model(run.cfg, run.bench)


def fine_tune_retain_model(run: Run) -> None:
    """The retain model of Forget Quality, evaluated where the run's metrics read it: Forget
    Quality its forget-set truth ratios; privacy leakage and the Reference attack its
    membership AUC and NLLs on the forget and holdout sets."""
    rmodel = retain_model(run.cfg, run.bench)
    if rmodel is None:
        return
    log("evaluating the retain model on the forget set (reference for Forget Quality)")
    splits = ["forget", *(["holdout"] if "holdout" in run.eval_sets else [])]
    run.evaluate_only(rmodel, "retain_model", splits=splits)
    run.retain_eval = str(run.rdir / "eval" / "retain_model")


def evaluate_before(run: Run) -> None:
    log(f"evaluating the target model before unlearning ({run.target})")
    run.evaluate(run.target, "before", retain_eval=run.retain_eval)
    run.stages.append("before")


def unlearn(run: Run) -> None:
    from unlearnkit.train.unlearn import unlearn as train_unlearn

    cfg = run.cfg
    log(f"unlearning {len(run.forget)} forget items with {cfg.method.name} "
        f"(retain set: {len(run.retain)})")  # fmt: skip
    callbacks = []
    if cfg.train.eval_every_epoch:
        from unlearnkit.scenarios.epoch_eval import EpochEvalCallback

        callbacks.append(
            EpochEvalCallback(
                cfg, run.eval_sets, run.rdir, run.bench.kind, run.retain_eval, run.task
            )  # fmt: skip
        )
    run.unlearned = train_unlearn(cfg, run.forget, run.retain, run.rdir, run.target,
                                  resume=run.resume, extra_callbacks=callbacks)  # fmt: skip
    run.model_dir = run.unlearned.path


def evaluate_final(run: Run) -> None:
    log("evaluating the unlearned model")
    run.evaluate(run.unlearned, "final", retain_eval=run.retain_eval)
    run.stages.append("final")


def stages(run: Run) -> list[Stage]:
    cfg = run.cfg
    return [
        Stage("target", fine_tune_target),
        Stage("retain_model", fine_tune_retain_model),
        *([Stage("before", evaluate_before)] if cfg.target.eval_before else []),
        Stage("unlearn", unlearn),
        Stage("final", evaluate_final),
        *([attack_stage(lambda r: r.retain_eval)] if cfg.attack.names else []),
    ]


FICTITIOUS = register_scenario(
    Scenario(
        "fictitious",
        "TOFU-style fictitious authors: fine-tune, unlearn one forget task, evaluate, attack",
        prepare,
        stages,
        remove_unlearned_model,
    )
)


def run_fictitious(cfg: RunConfig, resume: bool | str = False) -> Path:
    return drive(cfg, resume)
