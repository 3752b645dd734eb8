"""A scenario is a declared list of stages; one driver runs every scenario.

A :class:`Scenario` (registered by name in :data:`unlearnkit.registry.SCENARIOS`, so a new
scenario is one file that calls :func:`register_scenario`) declares:

* ``prepare(cfg, resume) -> Run``: opens the benchmark and checks every input that can be
  wrong (split, task, attack and task names) before anything is written;
* ``stages(run) -> [Stage, ...]``: what to do, in order: fine-tune the target, the retain
  model, evaluate before, unlearn, evaluate, attack, general benchmarks... Each stage reads and
  fills the shared :class:`Run`.
* ``done_facts(run)``: what ``DONE.json`` says beyond the stages done (default: ``run.facts``);
* ``finish(run)``: what to clean up once the run is marked done (the unlearned model folder).

The driver (:func:`drive`) owns the rest, once for every scenario: the run folder (one naming
scheme, :func:`unlearnkit.scenarios.common.run_dir`), skipping a finished run (``DONE.json``),
saving the resolved settings, running the stages, the done marker (written before the clean-up,
so a kill between the two never trains again) and the recording of evaluated stages in the
results store (:meth:`Run.evaluate`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unlearnkit.config import RunConfig
from unlearnkit.data.records import QAItem
from unlearnkit.registry import SCENARIOS
from unlearnkit.scenarios.common import (
    ModelRef,
    evaluate_model,
    is_done,
    log,
    mark_done,
    record,
    run_dir,
    save_run_config,
)


@dataclass
class Run:
    """What a run's stages share: its settings, benchmark, folder, data and models so far."""

    cfg: RunConfig
    bench: Any
    rdir: Path
    resume: bool | str = False
    task: int | None = None
    forget: list[QAItem] = field(default_factory=list)
    retain: list[QAItem] = field(default_factory=list)
    eval_sets: dict[str, list[QAItem]] = field(default_factory=dict)
    target: str = ""  # the model to unlearn
    retain_eval: str | None = None  # the retain model's evaluation folder (Forget Quality)
    model_dir: Path | None = None  # the unlearned model's folder
    unlearned: Any = None  # the unlearned model in memory (train.common.Trained), until finish
    stages: list[str] = field(default_factory=list)  # what DONE.json lists as done
    facts: dict[str, Any] = field(default_factory=dict)  # more for DONE.json

    def evaluate(
        self,
        model: ModelRef,
        stage: str,
        sets: dict[str, list[QAItem]] | None = None,
        retain_eval: str | None = None,
        task: int | None = None,
    ) -> dict[str, Any]:
        """Evaluate ``model`` into ``eval/<stage>/`` and index it in the results store."""
        summary = self.evaluate_only(model, stage, sets, retain_eval)
        self.record(stage, summary, self.task if task is None else task)
        return summary

    def evaluate_only(
        self,
        model: ModelRef,
        stage: str,
        sets: dict[str, list[QAItem]] | None = None,
        retain_eval: str | None = None,
        splits: list[str] | None = None,
    ) -> dict[str, Any]:
        """Evaluate ``model`` into ``eval/<stage>/`` without recording it (yet); ``splits``
        narrows ``eval.splits`` for this stage."""
        target = self.rdir / "eval" / stage
        kind = self.bench.kind
        sets = self.eval_sets if sets is None else sets
        cfg = self.cfg
        if splits is not None:
            cfg = copy.deepcopy(cfg)
            cfg.eval.splits = splits
        return evaluate_model(model, cfg, sets, target, kind, retain_eval)

    def record(self, stage: str, summary: dict[str, Any], task: int | None) -> None:
        record(self.cfg, self.rdir, stage, summary, task)


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[[Run], None]


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    prepare: Callable[[RunConfig, bool | str], Run]
    stages: Callable[[Run], list[Stage]]
    finish: Callable[[Run], None] | None = None
    done_facts: Callable[[Run], dict[str, Any]] | None = None


def register_scenario(scenario: Scenario) -> Scenario:
    """Register ``scenario`` under its name (``scenario: <name>`` in a config)."""
    SCENARIOS.add(scenario.name, scenario, description=scenario.description)
    return scenario


def new_run(cfg: RunConfig, bench: Any, resume: bool | str, **fields: Any) -> Run:
    """A :class:`Run` in the scenario's folder (:func:`run_dir`)."""
    return Run(cfg=cfg, bench=bench, rdir=run_dir(cfg), resume=resume, **fields)


def drive(cfg: RunConfig, resume: bool | str = False) -> Path:
    """Run ``cfg.scenario``'s stages in order; returns the run folder. A finished run (its
    ``DONE.json``) is skipped."""
    scenario: Scenario = SCENARIOS.get(cfg.scenario)
    run = scenario.prepare(cfg, resume)
    if is_done(run.rdir):
        log(f"{run.rdir} is already finished; skipping (delete DONE.json to run it again)")
        return run.rdir
    run.rdir.mkdir(parents=True, exist_ok=True)
    save_run_config(cfg, run.rdir)
    for stage in scenario.stages(run):
        stage.run(run)
    facts = run.facts if scenario.done_facts is None else scenario.done_facts(run)
    # Done first: a kill between the two lines must not leave a run that trains again.
    mark_done(run.rdir, {"stages": run.stages, **facts} if run.stages else facts)
    if scenario.finish is not None:
        scenario.finish(run)
    return run.rdir


def check_attacks(cfg: RunConfig) -> None:
    """An unknown attack name fails before any training."""
    if cfg.attack.names:
        from unlearnkit.attacks import resolve_attacks

        resolve_attacks(cfg.attack.names)


def attack_stage(retain_eval_of: Callable[[Run], str | None]) -> Stage:
    """Attack the unlearned model (``eval/attack-<name>/``, ``attacks.json``)."""

    def attack(run: Run) -> None:
        from unlearnkit.scenarios.attack_stage import run_attack_stage

        cfg = run.cfg
        model = run.unlearned if run.unlearned is not None else str(run.model_dir)
        kind = run.bench.kind
        retain_eval = retain_eval_of(run)
        run_attack_stage(cfg, run.rdir, model, run.eval_sets, kind, run.retain, run.task,
                         retain_eval)  # fmt: skip
        run.stages.append("attacks")

    return Stage("attacks", attack)


def remove_unlearned_model(run: Run) -> None:
    """The unlearned model leaves memory, and its folder goes unless
    ``train.save_checkpoints`` keeps it."""
    import shutil

    run.unlearned = None
    if run.model_dir is not None and not run.cfg.train.save_checkpoints:
        shutil.rmtree(run.model_dir, ignore_errors=True)


__all__ = [
    "Run",
    "Scenario",
    "Stage",
    "attack_stage",
    "check_attacks",
    "drive",
    "new_run",
    "register_scenario",
    "remove_unlearned_model",
]
