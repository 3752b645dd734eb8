"""A grid of runs (methods x learning rates x splits x seeds) from one config; finished runs are
skipped, so an interrupted sweep picks up where it stopped.

With no ``sweep.learning_rates`` and no ``train.learning_rate`` of the user's, each method trains
at its paper's learning rate where its paper has its own (UNDIAL: 1e-4), else at the profile's
or the built-in one: a leaderboard (``configs/leaderboard_synth.yaml``) runs every method with
its paper's defaults. A ``train.learning_rate`` the user set applies to every method.

``sweep.launcher`` other than ``sequential`` spreads the grid over processes, Ray or Slurm
(:mod:`unlearnkit.scenarios.grid`)."""

from __future__ import annotations

import copy
import itertools
from pathlib import Path

from unlearnkit.config import RunConfig, validate
from unlearnkit.scenarios.common import is_done, log, run_dir
from unlearnkit.settings import mark, resolve, sources


def expand_sweep(cfg: RunConfig) -> list[RunConfig]:
    """One config per grid point, each resolved afresh for its scenario and method (the
    profile's rules, the method's defaults: :func:`unlearnkit.settings.resolve`); the swept keys
    count as set by the user, with the source of the sweep's list."""
    s = cfg.sweep
    if s.scenario == "sweep":
        raise ValueError("sweep.scenario must be fictitious, continual or real_world")
    grid = itertools.product(
        s.methods or [cfg.method.name],
        s.learning_rates or [None],
        s.splits or [cfg.data.split],
        s.seeds or [cfg.train.seed],
    )
    set_by = sources(cfg)
    swept = {
        key: set_by[f"sweep.{name}"]
        for key, name, values in (
            ("method.name", "methods", s.methods),
            ("train.learning_rate", "learning_rates", s.learning_rates),
            ("data.split", "splits", s.splits),
            ("train.seed", "seeds", s.seeds),
        )
        if values
    }
    runs = []
    for method, lr, split, seed in grid:
        sub = copy.deepcopy(cfg)
        sub.scenario = s.scenario
        sub.name = None
        sub.method.name, sub.data.split, sub.train.seed = method, split, seed
        if lr is not None:
            sub.train.learning_rate = lr
        mark(sub, swept)
        runs.append(validate(resolve(sub)))
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
