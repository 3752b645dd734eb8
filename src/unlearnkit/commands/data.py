"""``unlearn data synth``, ``unlearn data subset`` and ``unlearn data validate``."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="generate the synthetic benchmark, validate data folders")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    s = dsub.add_parser("synth", help="write an invented-authors benchmark in TOFU layout")
    s.add_argument("--out", default="data/synthetic", help="output folder (default data/synthetic)")
    s.add_argument("--authors", type=int, default=40, help="number of invented authors")
    s.add_argument("--questions", type=int, default=10, help="questions per author")
    s.add_argument("--tasks", type=int, default=10, help="continual-unlearning tasks per split")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument(
        "--holdout-authors",
        type=int,
        default=0,
        help="also write holdout.json: this many authors in no other file (membership-inference "
        "non-members; default 0)",
    )
    s.set_defaults(func=run_synth)
    b = dsub.add_parser(
        "subset", help="write the first N real TOFU authors as a small TOFU-layout benchmark"
    )
    b.add_argument("source", nargs="?", default=None, help="TOFU folder (default shared/data/tofu)")
    b.add_argument("--out", required=True, help="output folder")
    b.add_argument("--authors", type=int, default=40, help="authors kept (default 40)")
    b.add_argument("--tasks", type=int, default=10, help="continual-unlearning tasks per split")
    b.add_argument(
        "--holdout-authors", type=int, default=2, help="next authors kept apart as holdout.json"
    )
    b.set_defaults(func=run_subset)
    v = dsub.add_parser("validate", help="check a benchmark folder and print a summary")
    v.add_argument("path", help="folder in TOFU or real-world layout")
    v.set_defaults(func=run_validate)


def run_synth(args: argparse.Namespace) -> int:
    from unlearnkit.data.synth import generate_synthetic

    for name in ("authors", "questions", "tasks"):
        if getattr(args, name) <= 0:
            raise ValueError(f"--{name} must be > 0")
    if args.holdout_authors < 0:
        raise ValueError("--holdout-authors must be >= 0")
    counts = generate_synthetic(
        Path(args.out),
        n_authors=args.authors,
        questions_per_author=args.questions,
        seed=args.seed,
        n_tasks=args.tasks,
        n_holdout=args.holdout_authors,
    )
    print(f"wrote {args.out}:")
    for name, n in counts.items():
        print(f"  {name:32s} {n:6d} rows")
    return 0


def run_subset(args: argparse.Namespace) -> int:
    from unlearnkit.data.subset import write_tofu_subset
    from unlearnkit.utils import default_data_root

    source = Path(args.source) if args.source else default_data_root() / "tofu"
    counts = write_tofu_subset(
        source, Path(args.out), args.authors, args.tasks, args.holdout_authors
    )
    print(f"wrote {args.out} ({args.authors} TOFU authors from {source}):")
    for name, n in counts.items():
        print(f"  {name:32s} {n:6d} rows")
    return 0


def run_validate(args: argparse.Namespace) -> int:
    from unlearnkit.data.validate import validate_folder

    report = validate_folder(args.path)
    print(report.format())
    return 0 if report.ok else 1
