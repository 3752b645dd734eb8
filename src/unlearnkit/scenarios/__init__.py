"""The paper's scenarios: fictitious (TOFU), continual, real-world, and sweeps over them.

Each scenario is a declared list of stages registered by name (:mod:`.stages`); one driver runs
them all. A new scenario is one module that calls :func:`.stages.register_scenario`, imported
before the run; a built-in one is the module ``unlearnkit/scenarios/<name>.py`` and its name in
``config.BUILT_IN_SCENARIOS``.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from unlearnkit.config import BUILT_IN_SCENARIOS, RunConfig

# The modules that register the built-in scenarios (imported on first use): one per name, the
# sweep aside (a grid of the others, run by scenarios/sweep.py).
BUILT_IN = tuple(f"unlearnkit.scenarios.{name}" for name in BUILT_IN_SCENARIOS if name != "sweep")


def load_scenarios() -> None:
    """Import the built-in scenario modules (each registers itself)."""
    for module in BUILT_IN:
        importlib.import_module(module)


def run_scenario(cfg: RunConfig, resume: bool | str = False) -> Path | list[Path]:
    """Run ``cfg.scenario`` end to end; returns the run folder (a list for sweeps)."""
    if cfg.scenario == "sweep":
        from unlearnkit.scenarios.sweep import run_sweep

        return run_sweep(cfg, resume=resume)
    from unlearnkit.scenarios.stages import drive

    load_scenarios()
    return drive(cfg, resume)
