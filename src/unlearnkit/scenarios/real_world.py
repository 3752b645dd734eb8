"""Real-world unlearning: forget real people, keep their neighbours and general abilities.

Model Utility is computed on the neighbour set; general-task accuracy (the paper: arc_challenge,
mmlu, truthfulqa_mc1, triviaqa, gsm8k) comes from lm-evaluation-harness on the in-memory model.
Tasks whose data cannot be fetched (offline) are reported as unavailable, never invented.
Declared stages: evaluate before (with the general tasks), unlearn, evaluate, attack
(:mod:`unlearnkit.scenarios.stages` owns the folder, the done marker and the recording).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from unlearnkit.config import RunConfig
from unlearnkit.scenarios.common import ModelRef, loaded, log, open_benchmark
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
from unlearnkit.utils import atomic_write_json


def general_accuracy(model: ModelRef, cfg: RunConfig, out_dir: Path) -> dict[str, Any]:
    """Run lm-eval tasks on a model (in memory, or loaded from its folder); write and return
    scores and the reasons for missing ones (``<out_dir>/general.json``)."""
    from unlearnkit.scenarios.general import run_general_tasks

    held = loaded(model, cfg)
    result = run_general_tasks(
        held.model,
        held.tokenizer,
        cfg.general_tasks,
        limit=cfg.general_limit,
        add_bos_token=True if cfg.profile == "paper" else None,
    )
    data = {"scores": result.scores, "metrics": result.metrics, "unavailable": result.unavailable}
    atomic_write_json(out_dir / "general.json", data)
    return data


def prepare(cfg: RunConfig, resume: bool | str) -> Run:
    bench = open_benchmark(cfg.data.benchmark, cfg.data.holdout_authors)
    if bench.kind != "real_world":
        raise ValueError(
            f"the real_world scenario needs a real-world benchmark (forget.json + neighbor.json); "
            f"'{cfg.data.benchmark}' is in TOFU layout"
        )
    check_attacks(cfg)
    if cfg.general_tasks:  # a typo must fail now, not after unlearning
        from unlearnkit.scenarios.general import check_task_names

        check_task_names(cfg.general_tasks)
    task = cfg.tasks[0] if cfg.tasks and len(cfg.tasks) == 1 else None
    forget, retain = bench.forget(task=task), bench.retain(task=task)
    return new_run(cfg, bench, resume, task=task, forget=forget, retain=retain,
                   eval_sets=bench.eval_sets(task=task), target=cfg.model.name)  # fmt: skip


def _evaluate_with_general(run: Run, model: ModelRef, stage: str) -> None:
    """The stage's evaluation and, with ``general_tasks``, the general benchmarks (on the same
    model in memory), written into the same summary before it is recorded (the store's copy
    has them too)."""
    model = loaded(model, run.cfg)
    summary = run.evaluate_only(model, stage)
    if run.cfg.general_tasks:
        folder = run.rdir / "eval" / stage
        summary["general"] = general_accuracy(model, run.cfg, folder)
        atomic_write_json(folder / "summary.json", summary)
    run.record(stage, summary, run.task)
    run.stages.append(stage)


def evaluate_before(run: Run) -> None:
    log("evaluating the model before unlearning")
    _evaluate_with_general(run, run.target, "before")


def unlearn(run: Run) -> None:
    from unlearnkit.train.unlearn import unlearn as train_unlearn

    log(f"unlearning {len(run.forget)} items about real people with {run.cfg.method.name}")
    run.unlearned = train_unlearn(run.cfg, run.forget, run.retain, run.rdir, run.target,
                                  resume=run.resume)  # fmt: skip
    run.model_dir = run.unlearned.path


def evaluate_final(run: Run) -> None:
    _evaluate_with_general(run, run.unlearned, "final")


def stages(run: Run) -> list[Stage]:
    cfg = run.cfg
    return [
        *([Stage("before", evaluate_before)] if cfg.target.eval_before else []),
        Stage("unlearn", unlearn),
        Stage("final", evaluate_final),
        *([attack_stage(lambda r: None)] if cfg.attack.names else []),
    ]


REAL_WORLD = register_scenario(
    Scenario(
        "real_world",
        "real people: unlearn a forget set, keep neighbours and general-task accuracy",
        prepare,
        stages,
        remove_unlearned_model,
    )
)


def run_real_world(cfg: RunConfig, resume: bool | str = False) -> Path:
    return drive(cfg, resume)
