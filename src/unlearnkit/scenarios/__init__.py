"""The paper's scenarios: fictitious (TOFU), continual, real-world, and sweeps over them."""

from __future__ import annotations

from pathlib import Path

from unlearnkit.config import RunConfig


def run_scenario(cfg: RunConfig, resume: bool = False) -> Path | list[Path]:
    """Run ``cfg.scenario`` end to end; returns the run folder (a list for sweeps)."""
    if cfg.scenario == "fictitious":
        from unlearnkit.scenarios.fictitious import run_fictitious

        return run_fictitious(cfg, resume=resume)
    if cfg.scenario == "continual":
        from unlearnkit.scenarios.continual import run_continual

        return run_continual(cfg, resume=resume)
    if cfg.scenario == "real_world":
        from unlearnkit.scenarios.real_world import run_real_world

        return run_real_world(cfg, resume=resume)
    if cfg.scenario == "sweep":
        from unlearnkit.scenarios.sweep import run_sweep

        return run_sweep(cfg, resume=resume)
    raise ValueError(
        f"unknown scenario '{cfg.scenario}'; choose from fictitious, continual, real_world, sweep"
    )
