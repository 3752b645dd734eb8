"""``unlearn report [RUNS...] [--db PATH] [--out DIR]``: tables, plots and an HTML page.

RUNS are run folders or output folders holding runs; they are (re)indexed into the results
database first, so the report always matches the folders on disk. Without RUNS, the rows of
``--db`` are reported.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="tables, plots and an HTML page from finished runs",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    p.add_argument("runs", nargs="*", type=Path, metavar="RUNS", help="run or output folders")
    p.add_argument(
        "--db",
        type=Path,
        default=None,
        help="results database (default: <RUN>/results.db when one output folder is given, "
        "else <out>/results.db)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="report folder (default: <RUN>/report for one output folder, else ./report)",
    )
    p.add_argument("--samples", type=int, default=5, help="generations shown per split (default 5)")
    p.add_argument(
        "--full", action="store_true", help="print every column (default: MU, FE, FQ, ROUGE-L)"
    )
    p.set_defaults(func=run)


def _is_output_dir(path: Path) -> bool:
    """A folder that holds runs (as opposed to being one run)."""
    from unlearnkit.report.store import find_run_dirs

    runs = find_run_dirs(path)
    return bool(runs) and runs != [path]


def run(args: argparse.Namespace) -> int:
    from unlearnkit.report.build import build_report
    from unlearnkit.report.explain import explain_tables
    from unlearnkit.report.markdown import report_markdown
    from unlearnkit.report.store import ResultsStore
    from unlearnkit.report.tables import scenario_tables

    if args.samples < 0:
        raise ValueError(f"--samples must be >= 0, got {args.samples}")
    runs: list[Path] = list(args.runs)
    single_output = len(runs) == 1 and runs[0].is_dir() and _is_output_dir(runs[0])
    out = args.out or (runs[0] / "report" if single_output else Path("report"))
    db = args.db or (runs[0] / "results.db" if single_output else None)
    if not runs and db is None:
        raise ValueError("nothing to report: give run folders (or an output folder), or --db")
    page = build_report(runs or None, db, out, sample_generations=args.samples)

    store = ResultsStore(db or out / "results.db")
    records = store.query() if not runs else store.query(run_dir=_indexed(runs))
    print(report_markdown(explain_tables(scenario_tables(records)), compact=not args.full))
    print(f"Full tables: {out / 'report.md'}")
    print(f"HTML report: {page}")
    return 0


def _indexed(runs: list[Path]) -> list[str]:
    from unlearnkit.report.store import find_run_dirs

    return [str(r.resolve()) for d in runs for r in find_run_dirs(d)]
