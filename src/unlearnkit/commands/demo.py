"""``unlearn demo``: the main job, offline, with no arguments needed."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="fine-tune SmolLM2 on invented authors, unlearn with 4 methods, evaluate, report",
    )
    p.add_argument("--out", default="unlearn-demo", help="output folder (default unlearn-demo/)")
    p.add_argument("--quick", action="store_true", help="same path, smaller sizes (a few minutes)")
    p.add_argument("--model", help="packaged alias or folder (default smollm2-135m)")
    p.add_argument("--nli-model", help="NLI model folder for the Entailment Score (none offline)")
    p.add_argument(
        "--print-config",
        action="store_true",
        help="print each demo run's resolved settings and their sources, then exit",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from unlearnkit.scenarios.demo import print_demo_config, run_demo

    if args.print_config:
        print_demo_config(args.quick, args.model, args.nli_model, Path(args.out))
        return 0
    model = args.model or "smollm2-135m"
    run_demo(Path(args.out), quick=args.quick, model=model, nli_model=args.nli_model)
    return 0
