"""Profiles: per-profile and per-scenario defaults, resolved once when a config is loaded.

``profile: default`` keeps unlearnkit's own choices; ``profile: paper`` behaves like the paper's
code (sail-sg/closer-look-LLM-unlearning @ b622294, ``docs/paper-differences.md``). A profile only
changes *defaults*: a key set in the YAML file or by a dotted override always wins. The resolved
values are ordinary config fields, so they are written to every run's ``config.yaml``.

Resolution is a pure function of (profile, scenario, method, explicitly set keys), and it resets
every profile-managed key that the user did not set before applying the table. So it can be run
again after a sweep changes a grid point's scenario or method (:func:`resolve_profile`).
"""

from __future__ import annotations

import copy
from typing import Any

from unlearnkit.config import PROFILES, ConfigError, RunConfig

# The paper's code, every scenario (P: = the paper's repository).
_PAPER: dict[str, Any] = {
    "train.max_grad_norm": 0.0,  # its DeepSpeed JSON has no gradient_clipping (default 0)
    "train.schedule": "paper",  # P:forget.py:118-125 max_steps / warmup_steps
    "train.seed": 42,  # HF TrainingArguments' default seed orders its data (train/schedule.py)
    "data.pairing": "index",  # P:dataset/data_module.py:105-108 torch.manual_seed(idx)
    "data.fixed_padding": True,  # P:data_module.py:40-52 EOS padding to max_length
    "data.max_length": 500,  # P:forget.py:115
    "method.kl_positions": "all",  # P:trainer/losses.py:114-128 batchmean over B x T
    "method.me_epsilon": 1e-12,  # P:trainer/losses.py:182 log(softmax + 1e-12)
    "lora.alpha": 32,  # P:config/tofu.yaml LoRA.alpha
}

# (scenario, canonical method or None for every method) -> overrides on top of _PAPER.
_PAPER_SCENARIO: dict[tuple[str, str | None], dict[str, Any]] = {
    ("real_world", None): {"data.max_length": 300},  # P:real_world_unlearn.py:72
    # P:scripts/real_world/me_gd.sh: lr 5e-6, forget_coeff 0.5
    ("real_world", "ME+GD"): {"train.learning_rate": 5e-6, "method.forget_coeff": 0.5},
    # P:scripts/continual_tofu/me_gd.sh: forget_coeff 1.0
    ("continual", "ME+GD"): {"method.forget_coeff": 1.0},
}

PROFILE_TABLES: dict[str, dict[str, Any]] = {"default": {}, "paper": _PAPER}
SCENARIO_TABLES: dict[str, dict[tuple[str, str | None], dict[str, Any]]] = {
    "default": {},
    "paper": _PAPER_SCENARIO,
}


def _managed_keys() -> set[str]:
    keys: set[str] = set()
    for table in PROFILE_TABLES.values():
        keys |= set(table)
    for tables in SCENARIO_TABLES.values():
        for table in tables.values():
            keys |= set(table)
    return keys


def _canonical(name: str) -> str:
    """``"me+gd"`` -> ``"ME+GD"`` without importing the method registry (config stays light)."""
    return "+".join(p.strip().upper() for p in str(name).split("+"))


def profile_defaults(profile: str, scenario: str, method: str) -> dict[str, Any]:
    """The dotted keys ``profile`` sets for ``scenario`` and ``method`` (the base table first)."""
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile '{profile}'; choose from {', '.join(PROFILES)}")
    out = dict(PROFILE_TABLES[profile])
    tables = SCENARIO_TABLES[profile]
    for key in ((scenario, None), (scenario, _canonical(method))):
        out.update(tables.get(key, {}))
    return out


def _get(cfg: Any, dotted: str) -> Any:
    node = cfg
    for part in dotted.split("."):
        node = getattr(node, part)
    return node


def _set(cfg: Any, dotted: str, value: Any) -> None:
    *path, last = dotted.split(".")
    node = cfg
    for part in path:
        node = getattr(node, part)
    setattr(node, last, value)


def resolve_profile(cfg: RunConfig, explicit: set[str] | frozenset[str] | None = None) -> RunConfig:
    """Apply ``cfg.profile``'s defaults to every key not in ``explicit``; returns ``cfg``.

    ``explicit`` is remembered on ``cfg`` (a plain attribute, not a config field, so it is never
    saved), so a later call (a sweep's grid point) may pass None to reuse it.
    """
    if explicit is None:
        explicit = getattr(cfg, "_explicit_keys", frozenset())
    explicit = frozenset(explicit)
    scenario = cfg.sweep.scenario if cfg.scenario == "sweep" else cfg.scenario
    table = profile_defaults(cfg.profile, scenario, cfg.method.name)
    base = RunConfig()
    for key in sorted(_managed_keys()):
        if key in explicit:
            continue
        value = table[key] if key in table else _get(base, key)
        _set(cfg, key, copy.deepcopy(value))
    object.__setattr__(cfg, "_explicit_keys", explicit)
    return cfg
