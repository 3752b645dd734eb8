"""Continual unlearning: forget tasks 1..N of a split in sequence, evaluating after each.

Each task starts from the previous task's result; the retain set shrinks as tasks are unlearned
(retainYY plus the split's tasks outside those unlearned so far, whatever their order); the
reference model is the previous task's result, or the original model with
``method.fix_ref_model``. With ``target.eval_before`` the original model is evaluated first
(stage ``before``, on the first task's evaluation sets: task 0 of the report's curves). A killed
sequence always continues (with or without ``--resume``) at the task where it stopped, from that
task's newest complete checkpoint: finished tasks are recorded in
``continual_state.json``.
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
    target_model,
)
from unlearnkit.utils import atomic_write_json


def _task_sequence(cfg: RunConfig, bench: Any) -> list[int]:
    """``cfg.tasks`` (default: every task of the split), checked against the benchmark's."""
    split = cfg.data.split
    if hasattr(bench, "check_continual"):
        bench.check_continual(split)  # the hub's TOFU layout has no tasks: a one-line error
    available = bench.task_ids(split)
    tasks = cfg.tasks or available
    unknown = [t for t in tasks if t not in available]
    if unknown:
        raise ValueError(f"tasks {unknown} are not in {split}; available tasks: {available}")
    return tasks


def run_continual(cfg: RunConfig, resume: bool = False) -> Path:
    """Unlearn ``cfg.tasks`` in sequence; ``resume`` only decides whether a fresh sequence says
    that there was nothing to resume (an interrupted one continues either way)."""
    from unlearnkit.train.unlearn import run_unlearning

    bench = open_benchmark(cfg.data.benchmark, cfg.data.holdout_authors)
    split = cfg.data.split
    tasks = _task_sequence(cfg, bench)
    rdir = run_dir(cfg)
    if is_done(rdir):
        log(f"{rdir} is already finished; skipping")
        return rdir
    if resume and not any(rdir.glob("task*")):
        log(f"--resume: nothing to resume in {rdir}; starting with task {tasks[0]}")
    rdir.mkdir(parents=True, exist_ok=True)
    save_run_config(cfg, rdir)
    state_path = rdir / "continual_state.json"
    state = json.loads(state_path.read_text()) if state_path.is_file() else {"completed": []}
    original = target_model(cfg, bench)
    current = state.get("model") or original
    if state["completed"]:
        log(f"resuming after task(s) {state['completed']} from {current}")
    if cfg.target.eval_before and not (rdir / "eval" / "before" / "summary.json").is_file():
        log(f"evaluating the original model before unlearning ({original})")
        before = evaluate_model(
            original, cfg, bench.eval_sets(split, tasks[0]), rdir / "eval" / "before", bench.kind
        )
        record(cfg, rdir, "before", before, tasks[0])
    for i, task in enumerate(tasks, start=1):
        if task in state["completed"]:
            continue
        # retain: everything outside the tasks unlearned so far (this one included)
        forget = bench.forget(split, task)
        retain = bench.retain(split, task, unlearned=list(tasks[:i]))
        ref = original if cfg.method.fix_ref_model else current
        log(f"task {task} ({i}/{len(tasks)}): {len(forget)} forget, {len(retain)} retain items")
        tdir = rdir / f"task{task}"
        model_dir = run_unlearning(
            cfg, forget, retain, tdir, current, ref_model_path=ref, resume="auto"
        )
        summary = evaluate_model(
            str(model_dir),
            cfg,
            bench.eval_sets(split, task),
            rdir / "eval" / f"task{task}",
            bench.kind,
        )
        record(cfg, rdir, f"task{task}", summary, task)
        previous = current
        current = str(model_dir)
        state = {"completed": state["completed"] + [task], "model": current}
        atomic_write_json(state_path, state)
        # The previous task's model is no longer needed (never delete the original target).
        if previous != original and not cfg.train.save_checkpoints:
            shutil.rmtree(previous, ignore_errors=True)
    mark_done(rdir, {"tasks": state["completed"], "model": current})
    return rdir
