"""The paper's scenarios: fictitious (TOFU), continual, real-world, and sweeps over them.

Each scenario is a declared list of stages registered by name (:mod:`.stages`); one driver runs
them all. A new scenario is one module that calls :func:`.stages.register_scenario`, imported
before the run (or listed in :data:`BUILT_IN`).
"""

from __future__ import annotations

import importlib
from pathlib import Path

from unlearnkit.config import RunConfig

# The modules that register the built-in scenarios (imported on first use).
BUILT_IN = (
    "unlearnkit.scenarios.fictitious",
    "unlearnkit.scenarios.continual",
    "unlearnkit.scenarios.real_world",
)


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
