"""The ``unlearn`` command line: subcommands mirror the pipeline.

data, models, finetune, unlearn, eval, run, report, ls, demo
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from unlearnkit import __version__

# Modules under unlearnkit.commands; each defines add_parser(subparsers).
COMMANDS = [
    "data", "models", "finetune", "unlearn", "eval", "run", "report", "claims", "ls", "demo",
]  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="unlearn",
        description="Make a trained language model forget chosen content, and measure it.",
    )
    parser.add_argument("--version", action="version", version=f"unlearnkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"unlearnkit.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("unlearnkit.commands"):
                continue  # command not built yet
            raise
        module.add_parser(sub)
    return parser


def parse_args(
    argv: list[str] | None = None, parser: argparse.ArgumentParser | None = None
) -> argparse.Namespace:
    """Parse a command line; dotted overrides (``method.beta=0.2``) are accepted anywhere on it,
    between flags too, and keep their order (the last one of a key wins)."""
    parser = parser or build_parser()
    args, extra = parser.parse_known_args(argv)
    stray = [a for a in extra if a.startswith("-")]
    if stray or (extra and not isinstance(getattr(args, "overrides", None), list)):
        parser.error(f"unrecognized arguments: {' '.join(stray or extra)}")
    if extra:
        args.overrides = [*args.overrides, *extra]
    return args


def main(argv: list[str] | None = None) -> int:
    # Benchmark data and converted models never come from the network implicitly.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    parser = build_parser()
    args = parse_args(argv, parser)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as exc:
        if os.environ.get("UNLEARNKIT_DEBUG"):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
