"""Continual unlearning: forget tasks 1..N of a split in sequence, evaluating after each.

Each task starts from the previous task's result; the retain set shrinks as tasks are unlearned
(retainYY plus the split's tasks outside those unlearned so far, whatever their order); the
reference model is the previous task's result, or the original model with
``method.fix_ref_model``. With ``target.eval_before`` the original model is evaluated first
(stage ``before``, on the first task's evaluation sets: task 0 of the report's curves). A killed
sequence always continues (with or without ``--resume``) at the task where it stopped, from that
task's newest complete checkpoint: finished tasks are recorded in
``continual_state.json``.

Declared stages: the target, ``before``, then one stage per task
(:mod:`unlearnkit.scenarios.stages` owns the folder, the done marker and the recording).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from unlearnkit.config import RunConfig
from unlearnkit.scenarios.common import log, open_benchmark, target_model
from unlearnkit.scenarios.stages import Run, Scenario, Stage, drive, new_run, register_scenario
from unlearnkit.utils import atomic_write_json

STATE_FILE = "continual_state.json"


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


def prepare(cfg: RunConfig, resume: bool | str) -> Run:
    bench = open_benchmark(cfg.data.benchmark, cfg.data.holdout_authors)
    tasks = _task_sequence(cfg, bench)
    run = new_run(cfg, bench, resume, task=tasks[0])
    run.facts["sequence"] = tasks
    if resume and not any(run.rdir.glob("task*")):
        log(f"--resume: nothing to resume in {run.rdir}; starting with task {tasks[0]}")
    return run


def _state(run: Run) -> dict[str, Any]:
    path = run.rdir / STATE_FILE
    return json.loads(path.read_text()) if path.is_file() else {"completed": []}


def original_model(run: Run) -> None:
    run.target = target_model(run.cfg, run.bench)
    state = _state(run)
    if state["completed"]:
        log(f"resuming after task(s) {state['completed']} from {state.get('model')}")


def evaluate_before(run: Run) -> None:
    if (run.rdir / "eval" / "before" / "summary.json").is_file():
        return
    log(f"evaluating the original model before unlearning ({run.target})")
    sets = run.bench.eval_sets(run.cfg.data.split, run.facts["sequence"][0])
    run.evaluate(run.target, "before", sets=sets)


def task_stage(task: int, position: int) -> Stage:
    """Unlearn ``task`` from the previous task's result, evaluate it, hand its model on."""

    def unlearn_task(run: Run) -> None:
        from unlearnkit.train.unlearn import unlearn

        cfg, tasks = run.cfg, run.facts["sequence"]
        state = _state(run)
        if task in state["completed"]:
            return
        current = state.get("model") or run.target
        # retain: everything outside the tasks unlearned so far (this one included)
        split = cfg.data.split
        forget = run.bench.forget(split, task)
        retain = run.bench.retain(split, task, unlearned=list(tasks[:position]))
        ref = run.target if cfg.method.fix_ref_model else current
        log(f"task {task} ({position}/{len(tasks)}): {len(forget)} forget, "
            f"{len(retain)} retain items")  # fmt: skip
        trained = unlearn(cfg, forget, retain, run.rdir / f"task{task}", current,
                          ref_model_path=ref, resume="auto")  # fmt: skip
        sets = run.bench.eval_sets(split, task)
        run.evaluate(trained, f"task{task}", sets=sets, task=task)  # in memory
        state = {"completed": state["completed"] + [task], "model": str(trained.path)}
        atomic_write_json(run.rdir / STATE_FILE, state)
        # The previous task's model is no longer needed (never delete the original target).
        if current != run.target and not cfg.train.save_checkpoints:
            shutil.rmtree(current, ignore_errors=True)

    return Stage(f"task{task}", unlearn_task)


def stages(run: Run) -> list[Stage]:
    tasks = run.facts["sequence"]
    return [
        Stage("target", original_model),
        *([Stage("before", evaluate_before)] if run.cfg.target.eval_before else []),
        *[task_stage(t, i) for i, t in enumerate(tasks, start=1)],
    ]


def done_facts(run: Run) -> dict[str, Any]:
    """DONE.json: the tasks done and the last model, as the sequence's state says."""
    state = _state(run)
    return {"tasks": state["completed"], "model": state.get("model") or run.target}


CONTINUAL = register_scenario(
    Scenario(
        "continual",
        "a sequence of forget tasks, each unlearned from the previous task's result",
        prepare,
        stages,
        done_facts=done_facts,
    )
)


def run_continual(cfg: RunConfig, resume: bool | str = False) -> Path:
    """Unlearn ``cfg.tasks`` in sequence; ``resume`` only decides whether a fresh sequence says
    that there was nothing to resume (an interrupted one continues either way)."""
    return drive(cfg, resume)
