"""Settings of the commands that run models (finetune, unlearn, eval, run): one precedence.

    defaults < --config YAML file < explicit flags < dotted overrides (anywhere on the line)
    < the profile's rules (keyed on the benchmark) < the method's defaults

and a key the user set (YAML, flag, override; not to null) is never changed by the last two
(:func:`unlearnkit.settings.load_config`).

A flag is a shortcut for one config key (``--method`` is ``method.name``, ``--profile`` is
``profile``); its value is kept as typed (``--model yes`` is the model ``'yes'``). Every name
(method, splits, prompt preset, benchmark, profile, scenario, keys of the overrides) is checked
here, before any data is opened or model loaded, so a typo is a one-line error at once.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from unlearnkit.config import PROFILES, RunConfig
from unlearnkit.settings import format_settings, load_config

# flag attribute -> config key, for every command that has the flag
FLAG_KEYS = {
    "profile": "profile",
    "scenario": "scenario",
    "model": "model.name",
    "benchmark": "data.benchmark",
    "split": "data.split",
    "task": "data.task",
    "method": "method.name",
    "retain_eval": "eval.retain_eval",
    "attacks": "attack.names",
}


def add_config_arguments(p: argparse.ArgumentParser) -> None:
    """``--config``, ``--profile`` and the trailing dotted overrides (every command that runs)."""
    p.add_argument("--config", help="YAML experiment file (see configs/)")
    p.add_argument(
        "--profile",
        choices=PROFILES,
        help="default: unlearnkit's choices; paper: the paper's code, number for number",
    )
    p.add_argument(
        "--print-config",
        action="store_true",
        help="print the resolved settings and the source of each, then exit (nothing is loaded)",
    )
    p.add_argument(
        "overrides",
        nargs="*",
        help="dotted overrides, anywhere on the line (they win over flags): method.beta=0.2",
    )


def config_from_args(args: argparse.Namespace, extra: dict[str, Any] | None = None) -> RunConfig:
    """Defaults < ``--config`` < flags (and ``extra`` typed values) < dotted overrides, then every
    name checked (:func:`check_names`). A bad value is a one-line ``ConfigError``."""
    values = {
        key: getattr(args, attr)
        for attr, key in FLAG_KEYS.items()
        if getattr(args, attr, None) is not None
    }
    values.update(extra or {})
    cfg = load_config(args.config, list(args.overrides or []), values=values)
    return check_names(cfg)


def print_config(args: argparse.Namespace, cfg: RunConfig) -> bool:
    """``--print-config``: print ``cfg``'s resolved settings with their sources; True if printed
    (the command then exits 0 before opening data or loading a model)."""
    if not getattr(args, "print_config", False):
        return False
    print(format_settings(cfg, f"unlearn {args.command}: resolved settings"))
    if cfg.scenario == "sweep":  # what each run of the grid trains with
        from unlearnkit.scenarios.sweep import expand_sweep

        runs = expand_sweep(cfg)
        for i, sub in enumerate(runs, start=1):
            point = f"{sub.method.name}, lr {sub.train.learning_rate:g}, {sub.data.split}"
            title = f"sweep run {i}/{len(runs)} ({point}, seed {sub.train.seed})"
            print(f"\n{format_settings(sub, title)}")
    return True


def check_names(cfg: RunConfig) -> RunConfig:
    """Names that only the registries know (methods, benchmarks, splits), checked without
    opening data or loading a model. ``validate`` in config.py already checked the profile,
    scenario and prompt preset."""
    from unlearnkit.data.splits import FORGET_SPLITS
    from unlearnkit.eval.protocol import known_splits
    from unlearnkit.methods.compose import parse_method_name

    for name in [cfg.method.name, *cfg.sweep.methods]:
        parse_method_name(name)  # "unknown regularizer 'XX'; choose from AP, GD, KL"
    check_benchmark_name(cfg.data.benchmark)
    if cfg.data.benchmark != "real_world":
        for split in [cfg.data.split, *cfg.sweep.splits]:
            if split not in FORGET_SPLITS:
                raise ValueError(f"unknown split '{split}'; choose from {', '.join(FORGET_SPLITS)}")
    if cfg.attack.names:
        from unlearnkit.attacks import resolve_attacks

        resolve_attacks(cfg.attack.names)  # "unknown attack 'relearm' (did you mean 'relearn'?)"
    known = known_splits()
    for split in [*(cfg.eval.splits or []), *cfg.attack.splits]:
        if split not in known:
            raise ValueError(
                f"unknown evaluation split '{split}' in eval.splits / attack.splits; "
                f"choose from {', '.join(known)}"
            )
    return cfg


def check_benchmark_name(name: str) -> None:
    """A registered benchmark, an existing folder or a hub id (owner/name); else an error."""
    from unlearnkit.registry import BENCHMARKS

    if name in BENCHMARKS or Path(name).expanduser().is_dir():
        return
    if Path(name).expanduser().exists():
        raise ValueError(f"benchmark '{name}' is a file; pass a folder in TOFU layout")
    if "/" in name and name.count("/") == 1 and not name.startswith((".", "/", "~")):
        return  # a hub id, fetched when opened
    raise ValueError(
        f"unknown benchmark '{name}': not a folder, a hub id (owner/name) or a registered "
        f"name ({', '.join(BENCHMARKS.names())})"
    )
