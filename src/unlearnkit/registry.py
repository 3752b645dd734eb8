"""One small registry for methods, metrics, benchmarks, models and attacks.

Register by decorator next to the definition; a duplicate name is an error, and an unknown name
is an error listing the choices (with a "did you mean" suggestion).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._descriptions: dict[str, str] = {}

    def register(self, name: str, *, description: str = "") -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            self.add(name, obj, description=description)
            return obj

        return decorator

    def add(self, name: str, obj: T, *, description: str = "") -> None:
        if name in self._items:
            raise ValueError(f"{self.kind} '{name}' is already registered")
        self._items[name] = obj
        self._descriptions[name] = description or (getattr(obj, "__doc__", "") or "").strip()

    def remove(self, name: str) -> None:
        """Unregister ``name`` (for what is registered for a while, e.g. in a test)."""
        if name not in self._items:
            raise ValueError(self.unknown_message(name))
        del self._items[name], self._descriptions[name]

    def get(self, name: str) -> T:
        if name in self._items:
            return self._items[name]
        lowered = {k.lower(): k for k in self._items}
        if name.lower() in lowered:
            return self._items[lowered[name.lower()]]
        raise ValueError(self.unknown_message(name))

    def unknown_message(self, name: str) -> str:
        choices = ", ".join(sorted(self._items)) or "(none registered)"
        close = difflib.get_close_matches(name, list(self._items), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return f"unknown {self.kind} '{name}'{hint}; choose from {choices}"

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def names(self) -> list[str]:
        return sorted(self._items)

    def describe(self) -> dict[str, str]:
        return {
            n: self._descriptions[n].splitlines()[0] if self._descriptions[n] else ""
            for n in self.names()
        }


METHODS: Registry = Registry("method")
FORGET_OBJECTIVES: Registry = Registry("forget objective")
REGULARIZERS: Registry = Registry("regularizer")
METRICS: Registry = Registry("metric")
BENCHMARKS: Registry = Registry("benchmark")
MODELS: Registry = Registry("model")
ATTACKS: Registry = Registry("attack")
SCENARIOS: Registry = Registry("scenario")

REGISTRIES: dict[str, Registry] = {
    "methods": METHODS,
    "objectives": FORGET_OBJECTIVES,
    "regularizers": REGULARIZERS,
    "metrics": METRICS,
    "benchmarks": BENCHMARKS,
    "models": MODELS,
    "attacks": ATTACKS,
}
