"""The attack registry's entry: what an attack is, what it is given and what it returns.

An attack is registered once (:func:`register_attack`) next to its code, with a description.
It receives an :class:`AttackContext` (the model under evaluation, its tokenizer and prompt
formatter, the evaluation sets, the attack settings) and returns an :class:`Attacked`: the model
to evaluate (a copy for weight attacks, the model itself for prompt attacks), the evaluation
sets to evaluate it on (the forget questions rewritten, for prompt attacks), the original forget
item of each evaluated forget item (for recovery), and what the attack spent (its budget) and ran
(its kernels). The runner (:mod:`unlearnkit.attacks.runner`) evaluates it with the ordinary
evaluation runner and checks that the model under evaluation was not changed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from unlearnkit.config import AttackConfig
from unlearnkit.data.formatting import PromptFormatter
from unlearnkit.data.records import QAItem
from unlearnkit.registry import ATTACKS

Kind = Literal["weights", "prompt"]


@dataclass
class AttackContext:
    """What every attack is given. ``forget`` is the evaluated forget split (ds_size applied);
    ``retain_items`` the retain (or neighbour) training set, for relearning on retain data."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    formatter: PromptFormatter
    eval_sets: dict[str, list[QAItem]]
    settings: AttackConfig
    forget_split: str = "forget"
    retain_items: list[QAItem] = field(default_factory=list)

    @property
    def forget(self) -> list[QAItem]:
        return self.eval_sets[self.forget_split]


@dataclass
class Attacked:
    """An attack's outcome, ready to evaluate.

    ``sources[i]`` is the index in ``ctx.forget`` of the i-th evaluated forget item (a prompt
    attack rewrites every item: ``range(n)``; relearning on half evaluates the other half).
    """

    model: PreTrainedModel
    eval_sets: dict[str, list[QAItem]]
    sources: list[int]
    budget: dict[str, Any] = field(default_factory=dict)
    kernels: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AttackSpec:
    name: str
    kind: Kind
    description: str
    run: Callable[[AttackContext], Attacked]
    phrase: str = ""  # for sentences: "after {phrase}" ("4-bit quantization")


ATTACK_SPECS: dict[str, AttackSpec] = {}


def register_attack(
    name: str, *, kind: Kind, description: str, phrase: str = ""
) -> Callable[[Callable[[AttackContext], Attacked]], Callable[[AttackContext], Attacked]]:
    """Decorator: register the decorated function as attack ``name``."""

    def decorator(fn: Callable[[AttackContext], Attacked]) -> Callable[[AttackContext], Attacked]:
        if name in ATTACK_SPECS:
            raise ValueError(f"attack '{name}' is already registered")
        spec = AttackSpec(name, kind, description, fn, phrase or f"the {name} attack")
        ATTACK_SPECS[name] = spec
        if name not in ATTACKS:
            ATTACKS.add(name, spec, description=f"[{kind}] {description}")
        return fn

    return decorator


def resolve_attacks(names: list[str]) -> list[AttackSpec]:
    """The specs of ``names`` in order (``all``: every registered attack); unknown: ValueError."""
    import unlearnkit.attacks  # noqa: F401  (registers the built-in attacks)

    out: list[AttackSpec] = []
    for name in names:
        specs = list(ATTACK_SPECS.values()) if name == "all" else [ATTACKS.get(name)]
        out.extend(s for s in specs if s not in out)
    return out
