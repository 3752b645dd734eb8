"""Attacks on unlearned models: does the forgotten knowledge come back?

Registered units (``unlearn ls attacks``), run by ``unlearn eval --attacks ...`` and by
``unlearn run`` (``attack.names``) after unlearning. Weight attacks (relearning, quantization)
work on a copy of the model, prompt attacks on a copy of the questions; the model under
evaluation is never changed (the runner checks its weights' fingerprint). Recovery of each
forget-set metric, the worst case per item and a robustness score per run:
:mod:`unlearnkit.attacks.recovery`.
"""

from __future__ import annotations

from unlearnkit.attacks import prompts, weights  # noqa: F401  (register the built-in attacks)
from unlearnkit.attacks.base import (
    ATTACK_SPECS,
    AttackContext,
    Attacked,
    AttackSpec,
    register_attack,
    resolve_attacks,
)

__all__ = [
    "ATTACK_SPECS",
    "AttackContext",
    "AttackSpec",
    "Attacked",
    "register_attack",
    "resolve_attacks",
]
