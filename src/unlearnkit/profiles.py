"""Profiles: per-profile defaults and rules keyed on the benchmark, resolved when a config loads.

``profile: default`` keeps unlearnkit's own choices; ``profile: paper`` behaves like the paper's
code (sail-sg/closer-look-LLM-unlearning @ b622294, ``docs/paper-differences.md``). A profile only
changes *defaults*: a key set in the YAML file, by a flag or by a dotted override always wins.
The resolved values are ordinary config fields, so they are written to every run's
``config.yaml``.

This module only holds the tables; :func:`unlearnkit.settings.resolve` applies them (with the
method's own defaults) to every key the user did not set, a key set to null counting as not set.
"""

from __future__ import annotations

from typing import Any

from unlearnkit.config import PROFILES, ConfigError

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

# open-unlearning's evaluator (locuslab/open-unlearning @ d3d7cf9): its rules live in the
# evaluation engine (EngineSettings.open_unlearning) and split metrics, not in config defaults;
# its generation (configs/generation/default.yaml: greedy, max_new_tokens 200) is our default.
_OPEN_UNLEARNING: dict[str, Any] = {}

PROFILE_TABLES: dict[str, dict[str, Any]] = {
    "default": {},
    "paper": _PAPER,
    "open-unlearning": _OPEN_UNLEARNING,
}
RULE_TABLES: dict[str, dict[Rule, dict[str, Any]]] = {
    "default": {},
    "paper": _PAPER_RULES,
    "open-unlearning": {},
}


def managed_keys() -> set[str]:
    """Every key some profile or rule sets (reset to its default where no rule applies)."""
    keys: set[str] = set()
    for table in PROFILE_TABLES.values():
        keys |= set(table)
    for rules in RULE_TABLES.values():
        for table in rules.values():
            keys |= set(table)
    return keys


def profile_rules(
    profile: str, benchmark_kind: str | None, scenario: str, method: str
) -> dict[str, tuple[Any, bool]]:
    """Dotted key -> (value, written for this method) that ``profile`` sets for a run of
    ``method`` (its canonical name, ``ME+GD``) in ``scenario`` on a benchmark of kind
    ``benchmark_kind`` (``tofu``, ``real_world``; None: unknown, only the base table). A value
    written for the method is that method's default under the profile, so a method's own
    default does not replace it."""
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile '{profile}'; choose from {', '.join(PROFILES)}")
    out = {key: (value, False) for key, value in PROFILE_TABLES[profile].items()}
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
