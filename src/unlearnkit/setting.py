"""A declared setting: the unit in which method parts and attacks state their own settings.

A part (:mod:`unlearnkit.methods.base`) or an attack (:mod:`unlearnkit.attacks.base`) lists its
settings as :class:`Setting` declarations next to its code; the configuration
(:mod:`unlearnkit.config`) only learns their names, and every value is typed and checked by the
declaration. This module imports nothing of the package, so both can use it.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml


@dataclass(frozen=True)
class Setting:
    """One setting of a method part or an attack, declared next to its code: its default (the
    paper's), its type and a line of help. :meth:`check` validates a value of
    ``<section>.<name>`` (``method.beta``, ``attack.relearn_steps``) where the setting is
    declared (every part that has the setting checks it the same way).

    ``type``: ``float`` (a finite number), ``int`` (a whole number >= 0), ``choice`` (one of
    ``choices``) or ``layer`` (a layer index or module name, checked against the model when it
    is found); ``positive``: > 0; ``minimum``: at least this."""

    default: Any
    help: str = ""
    type: str = "float"
    positive: bool = False
    choices: tuple[str, ...] = ()
    minimum: float | None = None

    def __post_init__(self) -> None:
        if self.type not in ("float", "int", "choice", "layer"):
            raise ValueError(f"setting type must be float, int, choice or layer, not {self.type!r}")
        if (self.type == "choice") != bool(self.choices):
            raise ValueError("a choice setting lists its choices, and only a choice setting does")

    @classmethod
    def infer(cls, name: str, default: Any) -> Setting:
        """A setting declared by its default alone: ``layer`` by name, ``int`` for an integer
        default, ``float`` otherwise; the betas (inverse temperatures) must be > 0."""
        if name == "layer":
            return cls(default, type="layer")
        whole = isinstance(default, int) and not isinstance(default, bool)
        return cls(default, type="int" if whole else "float", positive=name.startswith("beta"))

    def _parse(self, value: Any) -> Any:
        """An override's text (``method.beta=0.2``) as the number or null it spells; a layer
        given as digits is an index. Any other value is returned as it is."""
        if not isinstance(value, str) or self.type == "choice":
            return value
        if value.strip().lower() in ("none", "null", "~"):
            return None
        if self.type == "layer":
            return int(value) if value.strip().isdigit() else value
        parsed = yaml.safe_load(value) if value.strip() else value  # YAML's .nan, .inf, 1e-5
        if isinstance(parsed, (int, float)) and not isinstance(parsed, bool):
            return parsed
        try:
            return float(value)  # 2e-1, which YAML 1.1 reads as text
        except ValueError:
            return value

    def check(self, name: str, value: Any, section: str = "method") -> Any:
        """``value`` as the setting's type (an override's text read as YAML reads a number); a
        one-line ValueError naming ``<section>.<name>``."""
        key = f"{section}.{name}"
        value = self._parse(value)
        if self.type == "layer" or value is None:
            return value
        if self.type == "choice":
            if value not in self.choices:
                raise ValueError(f"unknown {key} {value!r}; choose from {', '.join(self.choices)}")
            return value
        real = isinstance(value, numbers.Real) and not isinstance(value, bool)
        if not real or not math.isfinite(value):
            raise ValueError(f"{key} must be a finite number, got {value!r}")
        if self.positive and value <= 0:
            raise ValueError(f"{key} must be > 0, got {value!r}")
        if self.minimum is not None and value < self.minimum:
            raise ValueError(f"{key} must be >= {self.minimum:g}, got {value!r}")
        if self.type == "int":
            if value != int(value) or value < 0:
                raise ValueError(f"{key} must be a whole number >= 0, got {value!r}")
            return int(value)
        return float(value)


def listing(settings: Mapping[str, Setting], section: str) -> str:
    """``"; <section>.a=1, <section>.b=x (x|y)"``: the settings with their defaults (and a
    choice setting's choices) for ``unlearn ls``; empty without settings."""
    if not settings:
        return ""
    shown = [
        f"{name}={s.default}" + (f" ({'|'.join(s.choices)})" if s.choices else "")
        for name, s in settings.items()
    ]
    return f"; {section}.{f', {section}.'.join(shown)}"


def check_declared(
    section: str,
    values: dict[str, Any],
    owners: Mapping[str, Sequence[str]],
    own: Mapping[str, Setting],
    chosen: Iterable[str],
    run: str,
    *,
    whose: str,
    listed_by: str,
    instead: str,
) -> None:
    """The declared settings of ``section`` as given (``values``, typed in place), for parts
    and attacks alike: a key no owner declares is unknown; each value ``own`` declares (the
    run's parts or attacks) is stored as that declaration's type; a key in ``chosen`` (set by
    the user) that ``own`` lacks would change nothing and is refused. ``owners``: every key ->
    who declares it; ``run`` names the run's owners; ``whose``, ``listed_by`` and ``instead``
    word the errors. A one-line ValueError."""
    unknown = sorted(set(values) - set(owners))
    if unknown:
        raise ValueError(
            f"unknown config key '{section}.{unknown[0]}'; {whose} settings are {section}."
            f"{f', {section}.'.join(sorted(owners))} ({listed_by})"
        )
    for key in sorted(values):
        if key in own:
            values[key] = own[key].check(key, values[key], section)
    for key in sorted(chosen):
        if key in owners and key not in own:
            raise ValueError(
                f"{section}.{key} is a setting of {', '.join(owners[key])}, not of {run}: it "
                f"would change nothing; remove it or {instead}"
            )
