"""Real-world unlearning: forget real people, keep their neighbours and general abilities.

Model Utility is computed on the neighbour set; general-task accuracy (the paper: arc_challenge,
mmlu, truthfulqa_mc1, triviaqa, gsm8k) comes from lm-evaluation-harness on the in-memory model.
Tasks whose data cannot be fetched (offline) are reported as unavailable, never invented.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from unlearnkit.config import RunConfig
from unlearnkit.scenarios.common import (
    evaluate_model,
    is_done,
    log,
    mark_done,
    open_benchmark,
    record,
    run_dir,
    save_run_config,
)
from unlearnkit.utils import atomic_write_json


def general_accuracy(model_path: str, cfg: RunConfig, out_dir: Path) -> dict[str, Any]:
    """Run lm-eval tasks on a model; write and return scores and the reasons for missing ones."""
    from unlearnkit.models.loading import load_model
    from unlearnkit.scenarios.general import run_general_tasks

    model, tok = load_model(model_path, device=cfg.model.device, dtype=cfg.model.dtype)
    result = run_general_tasks(
        model,
        tok,
        cfg.general_tasks,
        limit=cfg.general_limit,
        add_bos_token=True if cfg.profile == "paper" else None,
    )
    data = {"scores": result.scores, "metrics": result.metrics, "unavailable": result.unavailable}
    atomic_write_json(out_dir / "general.json", data)
    summary_path = out_dir / "summary.json"
    if summary_path.is_file():  # keep the stage's summary complete for the report
        summary = json.loads(summary_path.read_text())
        summary["general"] = data
        atomic_write_json(summary_path, summary)
    return data


def run_real_world(cfg: RunConfig, resume: bool = False) -> Path:
    from unlearnkit.train.unlearn import run_unlearning

    bench = open_benchmark(cfg.data.benchmark, cfg.data.holdout_authors)
    if bench.kind != "real_world":
        raise ValueError(
            f"the real_world scenario needs a real-world benchmark (forget.json + neighbor.json); "
            f"'{cfg.data.benchmark}' is in TOFU layout"
        )
    if cfg.attack.names:  # an unknown attack must fail now, not after unlearning
        from unlearnkit.attacks import resolve_attacks

        resolve_attacks(cfg.attack.names)
    if cfg.general_tasks:  # a typo must fail now, not after unlearning
        from unlearnkit.scenarios.general import check_task_names

        check_task_names(cfg.general_tasks)
    task = cfg.tasks[0] if cfg.tasks and len(cfg.tasks) == 1 else None
    forget, retain = bench.forget(task=task), bench.retain(task=task)
    eval_sets = bench.eval_sets(task=task)
    rdir = run_dir(cfg)
    if is_done(rdir):
        log(f"{rdir} is already finished; skipping")
        return rdir
    rdir.mkdir(parents=True, exist_ok=True)
    save_run_config(cfg, rdir)
    target = cfg.model.name
    stages = []
    if cfg.target.eval_before:
        log("evaluating the model before unlearning")
        before = evaluate_model(target, cfg, eval_sets, rdir / "eval" / "before", bench.kind)
        if cfg.general_tasks:
            before["general"] = general_accuracy(target, cfg, rdir / "eval" / "before")
        record(cfg, rdir, "before", before, task)
        stages.append("before")
    log(f"unlearning {len(forget)} items about real people with {cfg.method.name}")
    model_dir = run_unlearning(cfg, forget, retain, rdir, target, resume=resume)
    final = evaluate_model(str(model_dir), cfg, eval_sets, rdir / "eval" / "final", bench.kind)
    if cfg.general_tasks:
        final["general"] = general_accuracy(str(model_dir), cfg, rdir / "eval" / "final")
    record(cfg, rdir, "final", final, task)
    stages.append("final")
    if cfg.attack.names:
        from unlearnkit.scenarios.attack_stage import run_attack_stage

        run_attack_stage(cfg, rdir, str(model_dir), eval_sets, bench.kind, retain, task, None)
        stages.append("attacks")
    if not cfg.train.save_checkpoints:
        shutil.rmtree(model_dir, ignore_errors=True)
    mark_done(rdir, {"stages": stages})
    return rdir
