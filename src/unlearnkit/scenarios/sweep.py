"""A grid of runs (methods x learning rates x splits x seeds) from one config; finished runs are
skipped, so an interrupted sweep picks up where it stopped.

With no ``sweep.learning_rates``, each method trains at its paper's learning rate where its
paper has its own (UNDIAL: 1e-4), else at ``train.learning_rate``: a leaderboard
(``configs/leaderboard_synth.yaml``) runs every method with its paper's defaults.

``sweep.launcher`` other than ``sequential`` spreads the grid over processes, Ray or Slurm
(:mod:`unlearnkit.scenarios.grid`)."""

from __future__ import annotations

import copy
import itertools
from pathlib import Path

from unlearnkit.config import RunConfig, validate
from unlearnkit.profiles import resolve_profile
from unlearnkit.scenarios.common import is_done, log, run_dir


def expand_sweep(cfg: RunConfig) -> list[RunConfig]:
    s = cfg.sweep
    if s.scenario == "sweep":
        raise ValueError("sweep.scenario must be fictitious, continual or real_world")
    from unlearnkit.methods import default_learning_rate

    grid = itertools.product(
        s.methods or [cfg.method.name],
        s.learning_rates or [None],
        s.splits or [cfg.data.split],
        s.seeds or [cfg.train.seed],
    )
    runs = []
    for method, lr, split, seed in grid:
        sub = copy.deepcopy(cfg)
        sub.scenario = s.scenario
        sub.name = None
        paper_lr = default_learning_rate(method) if lr is None else None
        if lr is None:
            lr = paper_lr or cfg.train.learning_rate
        sub.method.name, sub.train.learning_rate, sub.data.split, sub.train.seed = (
            method,
            lr,
            split,
            seed,
        )
        # Per-scenario/per-method profile defaults follow the grid point; swept keys are explicit.
        swept = {
            key
            for key, values in (
                ("method.name", s.methods),
                ("train.learning_rate", s.learning_rates),
                ("data.split", s.splits),
                ("train.seed", s.seeds),
            )
            if values
        }
        explicit = set(getattr(cfg, "_explicit_keys", frozenset())) | swept
        if paper_lr is not None:  # the method's own paper rate (UNDIAL) is not a profile default
            explicit.add("train.learning_rate")
        runs.append(validate(resolve_profile(sub, explicit)))
    return runs


def run_sweep(cfg: RunConfig, resume: bool = False) -> list[Path]:
    from unlearnkit.methods import parse_method_name
    from unlearnkit.scenarios import run_scenario

    runs = expand_sweep(cfg)
    for sub in runs:  # fail on a bad method name before anything runs
        parse_method_name(sub.method.name)
    if cfg.sweep.launcher != "sequential":
        from unlearnkit.scenarios.grid import launch_grid

        return launch_grid(cfg, runs, resume=resume)
    out = []
    for i, sub in enumerate(runs, start=1):
        rdir = run_dir(sub)
        if is_done(rdir):
            log(f"[{i}/{len(runs)}] {rdir.name}: finished earlier, skipped")
        else:
            log(f"[{i}/{len(runs)}] {rdir.name}")
            run_scenario(sub, resume=resume)
        out.append(rdir)
    return out
