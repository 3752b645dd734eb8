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

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from unlearnkit.config import AttackConfig, declare_setting
from unlearnkit.data.formatting import PromptFormatter
from unlearnkit.data.records import QAItem
from unlearnkit.registry import ATTACKS
from unlearnkit.setting import Setting, listing

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

    def param(self, name: str) -> Any:
        """The value of ``attack.<name>`` this attack runs with: the user's, else the attack's
        declared default; checked by the declaration (:func:`attack_settings`)."""
        spec = next((s for s in ATTACK_SPECS.values() if name in s.settings), None)
        if spec is None:
            raise KeyError(f"no attack declares the setting '{name}'")
        return attack_settings(spec, self.settings)[name]


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
    settings: Mapping[str, Setting] = field(default_factory=dict)  # attack.<name>, declared here

    @property
    def listing(self) -> str:
        """One line for ``unlearn ls attacks``: kind, what it does, its settings (defaults)."""
        return f"[{self.kind}] {self.description}" + listing(self.settings, "attack")


def attack_settings(spec: AttackSpec, cfg: AttackConfig) -> dict[str, Any]:
    """Attack ``spec``'s settings: each declared default, overridden by ``attack.<name>`` when
    set, checked by its declaration (a one-line ValueError naming ``attack.<name>``)."""
    out: dict[str, Any] = {}
    for name, setting in spec.settings.items():
        value = cfg.settings.get(name)
        out[name] = setting.check(name, setting.default if value is None else value, "attack")
    return out


ATTACK_SPECS: dict[str, AttackSpec] = {}


def register_attack(
    name: str,
    *,
    kind: Kind,
    description: str,
    phrase: str = "",
    settings: Mapping[str, Setting] | None = None,
) -> Callable[[Callable[[AttackContext], Attacked]], Callable[[AttackContext], Attacked]]:
    """Decorator: register the decorated function as attack ``name``, with its own settings
    (``attack.<setting>``: declared here, so a new attack setting touches only its file)."""

    def decorator(fn: Callable[[AttackContext], Attacked]) -> Callable[[AttackContext], Attacked]:
        if name in ATTACK_SPECS:
            raise ValueError(f"attack '{name}' is already registered")
        declared = dict(settings or {})
        spec = AttackSpec(name, kind, description, fn, phrase or f"the {name} attack", declared)
        for key in declared:
            declare_setting("attack", key)
        ATTACK_SPECS[name] = spec
        if name not in ATTACKS:
            ATTACKS.add(name, spec, description=spec.listing)
        return fn

    return decorator


def unregister_attack(name: str) -> None:
    """Remove attack ``name`` (a test's own); its settings' names stay declared only while
    another attack declares them."""
    spec = ATTACK_SPECS.pop(name)
    ATTACKS.remove(name)
    others = {key for s in ATTACK_SPECS.values() for key in s.settings}
    for key in spec.settings:
        if key not in others:
            from unlearnkit.config import DECLARED_SETTINGS

            DECLARED_SETTINGS["attack"].discard(key)


def resolve_attacks(names: list[str]) -> list[AttackSpec]:
    """The specs of ``names`` in order (``all``: every registered attack); unknown: ValueError."""
    import unlearnkit.attacks  # noqa: F401  (registers the built-in attacks)

    out: list[AttackSpec] = []
    for name in names:
        specs = list(ATTACK_SPECS.values()) if name == "all" else [ATTACKS.get(name)]
        out.extend(s for s in specs if s not in out)
    return out
