"""Profiles: per-profile defaults and rules keyed on the benchmark, resolved when a config loads.

``profile: default`` keeps unlearnkit's own choices; ``profile: paper`` behaves like the paper's
code (sail-sg/closer-look-LLM-unlearning @ b622294, ``docs/paper-differences.md``). A profile only
changes *defaults*: a key set in the YAML file or by a dotted override always wins. The resolved
values are ordinary config fields, so they are written to every run's ``config.yaml``.

Resolution is a pure function of (profile, benchmark kind, scenario, method, explicitly set
keys), and it resets every profile-managed key that the user did not set before applying the
table. So it can be run again after a sweep changes a grid point's scenario or method
(:func:`resolve_profile`). A key set to null is not set: the profile's value applies.
"""

from __future__ import annotations

import copy
from typing import Any

from unlearnkit.config import PROFILES, ConfigError, RunConfig
from unlearnkit.data.splits import benchmark_kind

# The paper's code, every scenario (P: = the paper's repository).
_PAPER: dict[str, Any] = {
    "train.max_grad_norm": 0.0,  # its DeepSpeed JSON has no gradient_clipping (default 0)
    "train.schedule": "paper",  # P:forget.py:118-125 max_steps / warmup_steps
    "data.pairing": "index",  # P:dataset/data_module.py:105-108 torch.manual_seed(idx)
    "data.fixed_padding": True,  # P:data_module.py:40-52 EOS padding to max_length
    "data.max_length": 500,  # P:forget.py:115
    "method.kl_positions": "all",  # P:trainer/losses.py:114-128 batchmean over B x T
    "method.me_epsilon": 1e-12,  # P:trainer/losses.py:182 log(softmax + 1e-12)
    "lora.alpha": 32,  # P:config/tofu.yaml LoRA.alpha
}

# Rules on top of _PAPER, keyed on (benchmark kind, scenario, canonical method); None matches
# any. The benchmark kind is what the run trains on (``data.benchmark``: tofu or real_world), as
# the evaluation protocol keys its paper rules (eval/protocol.py), so ``unlearn unlearn``,
# ``unlearn run``, a sweep's grid points and the demo resolve alike. The scenario is the one a
# sweep's grid point runs for a sweep.
Rule = tuple[str | None, str | None, str | None]
_PAPER_RULES: dict[Rule, dict[str, Any]] = {
    ("real_world", None, None): {"data.max_length": 300},  # P:real_world_unlearn.py:72
    # P:scripts/real_world/me_gd.sh: lr 5e-6, forget_coeff 0.5
    ("real_world", None, "ME+GD"): {"train.learning_rate": 5e-6, "method.forget_coeff": 0.5},
    # P:scripts/continual_tofu/me_gd.sh: forget_coeff 1.0 (the TOFU script's 0.1 otherwise)
    ("tofu", "continual", "ME+GD"): {"method.forget_coeff": 1.0},
}

PROFILE_TABLES: dict[str, dict[str, Any]] = {"default": {}, "paper": _PAPER}
RULE_TABLES: dict[str, dict[Rule, dict[str, Any]]] = {"default": {}, "paper": _PAPER_RULES}


def _managed_keys() -> set[str]:
    keys: set[str] = set()
    for table in PROFILE_TABLES.values():
        keys |= set(table)
    for rules in RULE_TABLES.values():
        for table in rules.values():
            keys |= set(table)
    return keys


def _canonical(name: str) -> str:
    """``"me+gd"`` -> ``"ME+GD"`` without importing the method registry (config stays light)."""
    return "+".join(p.strip().upper() for p in str(name).split("+"))


def profile_rules(
    profile: str, benchmark_kind: str | None, scenario: str, method: str
) -> dict[str, tuple[Any, bool]]:
    """Dotted key -> (value, written for this method) that ``profile`` sets for a run of
    ``method`` in ``scenario`` on a benchmark of kind ``benchmark_kind`` (``tofu``,
    ``real_world``; None: unknown, only the base table). A value written for the method is that
    method's default under the profile, so a method's own default does not replace it."""
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile '{profile}'; choose from {', '.join(PROFILES)}")
    out = {key: (value, False) for key, value in PROFILE_TABLES[profile].items()}
    method = _canonical(method)
    for (kind, scen, meth), table in RULE_TABLES[profile].items():
        if kind not in (None, benchmark_kind) or scen not in (None, scenario):
            continue
        if meth not in (None, method):
            continue
        out.update({key: (value, meth is not None) for key, value in table.items()})
    return out


def profile_defaults(
    profile: str, benchmark_kind: str | None, scenario: str, method: str
) -> dict[str, Any]:
    """The dotted keys ``profile`` sets for a run of ``method`` in ``scenario`` on a benchmark of
    kind ``benchmark_kind`` (:func:`profile_rules` without the provenance)."""
    rules = profile_rules(profile, benchmark_kind, scenario, method)
    return {key: value for key, (value, _) in rules.items()}


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
    kind = benchmark_kind(cfg.data.benchmark) if RULE_TABLES.get(cfg.profile) else None
    rules = profile_rules(cfg.profile, kind, scenario, cfg.method.name)
    base = RunConfig()
    for key in sorted(_managed_keys()):
        if key in explicit:
            continue
        value = rules[key][0] if key in rules else _get(base, key)
        _set(cfg, key, copy.deepcopy(value))
    object.__setattr__(cfg, "_explicit_keys", explicit)
    # keys a rule written for this method set: the method's own defaults leave them
    method_keys = frozenset(k for k, (_, own) in rules.items() if own and k not in explicit)
    object.__setattr__(cfg, "_method_rule_keys", method_keys)
    return cfg
