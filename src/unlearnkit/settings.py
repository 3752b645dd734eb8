"""Settings resolved once, in one place, with the source of every value.

A run's settings come from, in this order (a later source wins over an earlier one)::

    built-in defaults (config.py's dataclasses)
    < the --config YAML file (after the files it      source "yaml:<file>"
      includes: ``include: [base.yaml]``)
    < flags (--model, --method, ...)                  source "flag" (the demo's sizes: "demo")
    < dotted overrides, anywhere on the line          source "override" (the last of a key wins)
    < the profile's rules, keyed on the benchmark     source "profile" (unlearnkit.profiles)
    < the method's own defaults                       source "method" (UNDIAL's lr 1e-4)

The last two only fill keys the user did not set: a key set by the YAML file, a flag or an
override is kept, unless it was set to null (null chooses nothing). A profile rule written for
one method (the paper's real-world ME+GD lr) is that method's default under the profile, so the
method's generic default does not replace it. ``method.forget_coeff`` / ``method.mask_question``
and the parts' settings (``method.beta`` ...) left null take the method's values when it is
built (``methods/compose.py``); :func:`format_settings` shows those values too.

:func:`resolve` is a pure function of the user's keys, the profile, the benchmark's kind, the
scenario and the method: a sweep re-runs it for each grid point (``scenarios/sweep.py``).
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any, TypeVar

import yaml

from unlearnkit.config import (
    DECLARED_SETTINGS,
    OPEN_FIELDS,
    PART_SETTING_NAMES,
    ConfigError,
    RunConfig,
    apply_overrides,
    from_dict,
    merge_mappings,
    parse_override_value,
    read_yaml_layers,
    set_values,
    validate,
)
from unlearnkit.data.splits import benchmark_kind
from unlearnkit.eval.protocol import PROTOCOLS, protocol_for
from unlearnkit.methods.compose import (
    build_method,
    canonical_name,
    check_method_settings,
    default_learning_rate,
)
from unlearnkit.profiles import RULE_TABLES, managed_keys, profile_rules
from unlearnkit.setting import check_declared

T = TypeVar("T")

DEFAULT = "default"
# The keys a method's own defaults set while settings resolve (the rest, forget_coeff and the
# parts' settings, resolve when the method is built).
METHOD_KEYS = ("train.learning_rate",)


def load_config(
    path: str | Path | None = None,
    overrides: list[str] | None = None,
    cls: type[T] = RunConfig,  # type: ignore[assignment]
    values: dict[str, Any] | None = None,
    layers: list[tuple[str, dict[str, Any]]] | None = None,
) -> T:
    """Defaults < YAML file < ``values`` (typed: the commands' flags) < dotted overrides, then,
    for a RunConfig, the profile's rules and the method's defaults (:func:`resolve`) and
    :func:`validate`. ``layers`` are further typed values with their source's name (the demo's
    sizes), applied before ``values``. Every key's source is kept (:func:`sources`)."""
    cfg: Any = cls()
    set_by: dict[str, str] = {}
    if path is not None:  # the file after the files it includes, each key's source its file
        merged: dict[str, Any] = {}
        for file, data in read_yaml_layers(path, cls):
            merged = merge_mappings(merged, data)
            set_by.update(dict.fromkeys(_dotted_keys(data), f"yaml:{file}"))
        cfg = from_dict(cls, merged)
    for source, typed in [*(layers or []), ("flag", values or {})]:
        if typed:
            cfg = set_values(cfg, typed)
            for key, value in typed.items():
                set_by.update(dict.fromkeys(_dotted_keys({key: value}), source))
    if overrides:
        cfg = apply_overrides(cfg, overrides)
        for item in overrides:
            key, raw = item.split("=", 1)  # apply_overrides checked the form
            value = parse_override_value(raw)
            set_by.update(dict.fromkeys(_dotted_keys({key.strip(): value}), "override"))
    if not isinstance(cfg, RunConfig):
        return cfg
    # A key set to null chose nothing: the profile's or the method's default applies to it.
    explicit = {key for key in set_by if _get(cfg, key) is not None}
    _attach(cfg, explicit, {k: v for k, v in set_by.items() if _is_leaf(k)})
    cfg = validate(resolve(cfg))
    check_method(cfg, explicit)
    check_attacks(cfg, explicit)
    return cfg  # type: ignore[return-value]


def check_method(cfg: RunConfig, explicit: set[str] | frozenset[str]) -> None:
    """The method's settings, checked where they are declared: each part checks its own
    (:class:`~unlearnkit.methods.base.Setting`), and a part setting the user set that none of
    the run's methods (a sweep's: all of them) declares is refused. A ConfigError names it."""
    names = cfg.sweep.methods if cfg.scenario == "sweep" and cfg.sweep.methods else None
    chosen = {key.split(".", 1)[1] for key in explicit if key.startswith("method.")}
    try:
        check_method_settings(cfg.method, names or [cfg.method.name], chosen)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def check_attacks(cfg: RunConfig, explicit: set[str] | frozenset[str]) -> None:
    """The attacks' settings, checked where they are declared (``register_attack(settings=)``):
    an unknown ``attack.<key>`` is refused, each value is stored as its declared type, and a
    setting the user set that none of ``attack.names`` declares is refused (it would change
    nothing; with no attack chosen the settings are kept for a later ``--attacks``). A
    ConfigError names the key."""
    from unlearnkit.attacks.base import ATTACK_SPECS, resolve_attacks

    chosen = {key.split(".", 1)[1] for key in explicit if key.startswith("attack.")}
    settings = cfg.attack.settings
    if not settings:
        return
    try:
        specs = resolve_attacks(cfg.attack.names)
        owners: dict[str, list[str]] = {}
        for spec in ATTACK_SPECS.values():
            for key in spec.settings:
                owners.setdefault(key, []).append(spec.name)
        # the chosen attacks' declarations; with none chosen, every attack's (kept, typed)
        own = {k: d for spec in (specs or ATTACK_SPECS.values()) for k, d in spec.settings.items()}
        check_declared(
            "attack", settings, owners, own, chosen if specs else (),
            ", ".join(s.name for s in specs),
            whose="the attacks'", listed_by="unlearn ls attacks",
            instead="add such an attack to attack.names",
        )  # fmt: skip
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def resolve(cfg: RunConfig, explicit: set[str] | frozenset[str] | None = None) -> RunConfig:
    """Apply the profile's rules and the method's defaults to every key the user did not set;
    returns ``cfg``. Every managed key the user did not set is first reset to its built-in
    default, so a sweep's grid point (another method) resolves afresh. ``explicit`` defaults to
    the keys remembered by :func:`load_config`."""
    if explicit is None:
        explicit = getattr(cfg, "_explicit_keys", frozenset())
    explicit = frozenset(explicit)
    set_by = dict(getattr(cfg, "_sources", {}))
    scenario = cfg.sweep.scenario if cfg.scenario == "sweep" else cfg.scenario
    kind = benchmark_kind(cfg.data.benchmark) if RULE_TABLES.get(cfg.profile) else None
    rules = profile_rules(cfg.profile, kind, scenario, _canonical(cfg.method.name))
    own = method_defaults(cfg.method.name)
    base = RunConfig()
    for key in sorted(managed_keys() | set(METHOD_KEYS)):
        if key in explicit:
            continue
        if key in rules and (rules[key][1] or key not in own):
            value, source = rules[key][0], "profile"
        elif key in own:
            value, source = own[key], "method"
        else:
            value, source = _get(base, key), DEFAULT
        _set(cfg, key, copy.deepcopy(value))
        set_by[key] = source
    _attach(cfg, explicit, set_by)
    return cfg


def method_defaults(name: str) -> dict[str, Any]:
    """The settings method ``name``'s paper sets at config level (UNDIAL: lr 1e-4); empty for an
    unknown name (reported where the names are checked)."""
    try:
        lr = default_learning_rate(name)
    except ValueError:
        return {}
    return {} if lr is None else {"train.learning_rate": lr}


def sources(cfg: Any) -> dict[str, str]:
    """Dotted leaf key -> the source of its value, for every key of ``cfg``."""
    set_by = getattr(cfg, "_sources", {})
    return {key: set_by.get(key, DEFAULT) for key in leaf_keys(type(cfg))}


def mark(cfg: RunConfig, keys: dict[str, str]) -> None:
    """Record that ``keys`` (key -> source) were set by the user (a sweep's swept keys)."""
    explicit = set(getattr(cfg, "_explicit_keys", frozenset())) | set(keys)
    _attach(cfg, explicit, {**getattr(cfg, "_sources", {}), **keys})


def leaf_keys(cls: type, prefix: str = "") -> list[str]:
    """Every dotted key of dataclass ``cls`` that holds a value, in declaration order."""
    import typing

    hints = typing.get_type_hints(cls)
    out: list[str] = []
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            out += leaf_keys(tp, f"{prefix}{f.name}.")
        elif f.name == OPEN_FIELDS.get(cls):  # the declared settings, each a key of its own
            declared = DECLARED_SETTINGS[cls.SECTION]  # type: ignore[attr-defined]
            out += [f"{prefix}{name}" for name in sorted(declared)]
        else:
            out.append(f"{prefix}{f.name}")
    return out


def format_settings(cfg: RunConfig, title: str = "") -> str:
    """The resolved settings, one ``key: value  # source`` line each (``--print-config``).

    A method setting left null shows the value the method resolves it to, with the source
    ``method``, and an evaluation setting the benchmark's protocol changes under the profile
    (``eval.ds_size``: every item) shows the value the evaluation uses; ``config.yaml`` keeps
    the stored values."""
    src = sources(cfg)
    shown: dict[str, tuple[Any, str]] = {key: (_get(cfg, key), src[key]) for key in src}
    try:
        method = build_method(cfg.method)
    except ValueError:
        method = None
    if method is not None:  # the parts' settings: those of this method's parts (or set)
        own = {key for term in method.terms for key in term.part.settings}
        for key in PART_SETTING_NAMES - own:
            if shown.get(f"method.{key}", (None,))[0] is None:
                shown.pop(f"method.{key}", None)
        if cfg.method.forget_coeff is None and method.terms:
            coeffs = {t.key: t.coeff for t in method.terms}
            shown["method.forget_coeff"] = (coeffs.get("forget", 0.0), "method")
        if cfg.method.mask_question is None:
            shown["method.mask_question"] = (method.mask_question, "method")
        for term in method.terms:
            for key, value in term.settings.items():
                dotted = f"method.{key}"
                if dotted in shown and getattr(cfg.method, key) is None and value is not None:
                    old = shown[dotted][0] if shown[dotted][1] == "method" else None
                    both = value if old in (None, value) else f"{old} / {term.part.name}: {value}"
                    shown[dotted] = (both, "method")
    _show_attack_settings(cfg, shown)
    kind = benchmark_kind(cfg.data.benchmark)
    if kind in PROTOCOLS:  # what the evaluation protocol's profile rules change (every item)
        effective = protocol_for(kind).effective_config(cfg.eval, cfg.profile)
        for f in dataclasses.fields(effective):
            if getattr(effective, f.name) != getattr(cfg.eval, f.name):
                shown[f"eval.{f.name}"] = (getattr(effective, f.name), "profile")
    for key, (value, source) in shown.items():  # a value the run uses but does not store
        stored = _get(cfg, key)
        if value != stored:
            shown[key] = (value, f"{source} (config.yaml: {_text(stored)})")
    texts = {key: _text(value) for key, (value, _) in shown.items()}
    width = max(len(f"{k}: {v}") for k, v in texts.items())
    lines = [f"# {title}" if title else "# resolved settings", "# key: value  # source"]
    for key, (_, source) in shown.items():
        entry = f"{key}: {texts[key]}"
        lines.append(f"{entry:<{width}}  # {source}")
    return "\n".join(lines)


def _show_attack_settings(cfg: RunConfig, shown: dict[str, tuple[Any, str]]) -> None:
    """The attacks' settings in ``shown``: those of ``attack.names`` with the value each attack
    runs with (source ``attack`` where the user set none), and any other only when set."""
    try:
        from unlearnkit.attacks.base import attack_settings, resolve_attacks

        specs = resolve_attacks(cfg.attack.names)
    except ValueError:
        return
    own: dict[str, Any] = {}
    for spec in specs:
        own.update(attack_settings(spec, cfg.attack))
    for key in DECLARED_SETTINGS["attack"]:
        dotted = f"attack.{key}"
        if key in own and cfg.attack.settings.get(key) is None:
            shown[dotted] = (own[key], "attack")
        elif key not in own and shown.get(dotted, (None,))[0] is None:
            shown.pop(dotted, None)


def _canonical(name: str) -> str:
    try:
        return canonical_name(name)
    except ValueError:
        return name  # an unknown name is reported where the names are checked


def _text(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=1 << 16).strip()
    return text[: -len("...")].strip() if text.endswith("...") else text


def _attach(cfg: Any, explicit: set[str] | frozenset[str], set_by: dict[str, str]) -> None:
    # plain attributes, not config fields: never saved, kept by copy.deepcopy (sweeps)
    object.__setattr__(cfg, "_explicit_keys", frozenset(explicit))
    object.__setattr__(cfg, "_sources", dict(set_by))


def _is_leaf(key: str) -> bool:
    section, _, name = key.partition(".")  # a declared setting's name: checked by its owner
    return key in _LEAVES or (section in DECLARED_SETTINGS and bool(name) and "." not in name)


def _dotted_keys(data: dict[str, Any], prefix: str = "") -> set[str]:
    """Every key a (nested) mapping sets, dotted: ``{"train": {"lr": 1}}`` -> ``{"train",
    "train.lr"}``."""
    keys: set[str] = set()
    for key, value in data.items():
        where = f"{prefix}{key}"
        keys.add(where)
        if isinstance(value, dict):
            keys |= _dotted_keys(value, where + ".")
    return keys


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


_LEAVES = frozenset(leaf_keys(RunConfig))

__all__ = [
    "DEFAULT",
    "METHOD_KEYS",
    "format_settings",
    "leaf_keys",
    "load_config",
    "mark",
    "method_defaults",
    "resolve",
    "sources",
]
