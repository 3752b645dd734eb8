"""``unlearn claims [RUNS...] [--db PATH] [--out docs/claims.md]``: the paper's findings checked.

RUNS are run or output folders (indexed into the results database first, as ``unlearn report``
does); without RUNS, the rows of ``--db`` are used. Each finding gets its verdict by the rule of
docs/claims-rule.md (matched Forget Efficacy, margin 0.02), its numbers per cell, the spread
over seeds and a plot; the raw verdicts go to ``<out stem>/claims.json``.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "claims",
        help="check the paper's findings on finished runs; write the claims page",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    p.add_argument("runs", nargs="*", type=Path, metavar="RUNS", help="run or output folders")
    p.add_argument("--db", type=Path, default=None, help="results database to read (and update)")
    p.add_argument(
        "--out", type=Path, default=Path("docs/claims.md"), help="page (default docs/claims.md)"
    )
    p.add_argument("--note", default="", help="a paragraph for the page (e.g. what was not run)")
    p.add_argument(
        "--retain-eval",
        action="append",
        default=[],
        metavar="SPLIT=FOLDER",
        help="a retain model's evaluation of SPLIT: the runs of that split evaluated without one "
        "get their Forget Quality from their saved truth ratios (repeatable)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from unlearnkit.report.claims import check_claims
    from unlearnkit.report.claims_page import write_claims_page
    from unlearnkit.report.forget_quality import add_forget_quality, parse_retain_evals
    from unlearnkit.report.store import ResultsStore, find_run_dirs

    retain_evals = parse_retain_evals(args.retain_eval)
    runs: list[Path] = list(args.runs)
    if not runs and args.db is None:
        raise ValueError("nothing to check: give run folders (or an output folder), or --db")
    for r in runs:
        if not r.is_dir():
            raise FileNotFoundError(f"no such run folder: {r}")
    db = args.db or args.out.parent / (args.out.stem + ".db")
    store = ResultsStore(db)
    dirs = [d for r in runs for d in find_run_dirs(r)]
    for d in dirs:
        store.record_run(d)
    rows = store.query(run_dir=[str(d.resolve()) for d in dirs]) if dirs else store.query()
    if not rows:
        raise ValueError("no evaluated runs found: nothing to check")
    filled = add_forget_quality(rows, retain_evals)
    results = check_claims(rows)
    fq = (
        f" Forget Quality of {filled} of them computed after the runs, from their saved truth "
        f"ratios, against the retain model's evaluation of "
        + ", ".join(f"{split} ({path.name})" for split, path in sorted(retain_evals.items()))
        + "."
        if filled
        else ""
    )
    page = write_claims_page(
        results, rows, args.out, provenance=f"{len(rows)} evaluated stages.{fq} {args.note}".strip()
    )
    for r in results:
        print(f"{r.verdict:>28}  {r.claim.statement}")
    print(f"Claims page: {page}")
    return 0
