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
    for command in sub.choices.values():
        _offer_print_config(command)
    return parser


def _offer_print_config(parser: argparse.ArgumentParser) -> None:
    """Give ``parser`` (and its own sub-commands) ``--print-config`` where the command has none:
    a command without run settings prints its resolved arguments and their sources."""
    if not any("--print-config" in a.option_strings for a in parser._actions):
        parser.add_argument(
            "--print-config",
            action="store_true",
            dest="print_arguments",
            help="print the resolved arguments and their sources (default or flag), then exit",
        )
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _offer_print_config(child)


def print_arguments(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """``--print-config`` of a command without run settings: each argument with its value and
    whether it came from the command line or is the default."""
    names, command = [args.command], _sub_commands(parser)[args.command]
    while (subs := _sub_commands(command)) is not None:
        dest = next(a.dest for a in command._actions if isinstance(a, argparse._SubParsersAction))
        names.append(getattr(args, dest))
        command = subs[names[-1]]
    rows = []
    for action in command._actions:
        if action.dest in ("help", "print_arguments") or action.dest == argparse.SUPPRESS:
            continue
        value = getattr(args, action.dest, action.default)
        source = "default" if value == action.default else "flag"
        rows.append((f"{action.dest}: {_plain(value)}", source))
    print(f"# unlearn {' '.join(names)}: resolved arguments\n# argument: value  # source")
    width = max((len(text) for text, _ in rows), default=0)
    for text, source in rows:
        print(f"{text:<{width}}  # {source}")


def _sub_commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser] | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices  # type: ignore[return-value]
    return None


def _plain(value: object) -> str:
    """A value as a line of YAML (paths as text)."""
    import yaml

    if isinstance(value, (list, tuple)):
        value = [str(v) if isinstance(v, os.PathLike) else v for v in value]
    elif isinstance(value, os.PathLike):
        value = str(value)
    text = yaml.safe_dump(value, default_flow_style=True, width=1 << 16).strip()
    return text[: -len("...")].strip() if text.endswith("...") else text


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
    if getattr(args, "print_arguments", False):
        print_arguments(args, parser)
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
