"""``unlearn ls``: what is registered (methods, metrics, benchmarks, models)."""

from __future__ import annotations

import argparse
import json


def _load_all() -> None:
    # Importing the packages registers their entries next to their definitions.
    import importlib

    for mod in (
        "unlearnkit.methods",
        "unlearnkit.eval.metrics",
        "unlearnkit.data.splits",
        "unlearnkit.models.packaged",
        "unlearnkit.attacks",
    ):
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if not (exc.name and exc.name.startswith("unlearnkit")):
                raise


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ls", help="list registered methods, metrics, benchmarks, models and attacks"
    )
    p.add_argument(
        "kind", nargs="?", help="one kind only (methods, metrics, benchmarks, models, ...)"
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from unlearnkit.registry import REGISTRIES

    _load_all()
    kinds = list(REGISTRIES)
    if args.kind:
        if args.kind not in REGISTRIES:
            raise ValueError(f"unknown kind '{args.kind}'; choose from {', '.join(kinds)}")
        kinds = [args.kind]
    listing = {k: REGISTRIES[k].describe() for k in kinds}
    if args.json:
        print(json.dumps(listing, indent=2))
        return 0
    for kind, entries in listing.items():
        print(f"{kind}:")
        width = max((len(n) for n in entries), default=0)
        for name, desc in entries.items():
            print(f"  {name.ljust(width)}  {desc}")
    return 0
