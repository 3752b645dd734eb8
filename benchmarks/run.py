"""Run the benchmarks: ``python -m benchmarks.run [--quick] [--only NAME[,NAME]] [--json PATH]``.

Prints a table (median times, peak memory, ratio baseline / ours, target, met) and writes every
measurement, the equality checks and the machine to JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from benchmarks.common import (  # noqa: E402
    BenchContext,
    Result,
    fmt_mib,
    fmt_ratio,
    fmt_s,
    machine_info,
)

ITEMS = ("me_loss", "step", "eval", "scaling", "rss", "threads")


def _item(name: str) -> Callable[[BenchContext], list[Result]]:
    module = __import__(f"benchmarks.bench_{name}", fromlist=["run"])
    return module.run


def format_table(results: list[Result]) -> str:
    head = (
        "| item | baseline s | ours s | time ratio | baseline MiB | ours MiB | mem ratio "
        "| value | target | met | equal |"
    )
    lines = [head, "|" + "---|" * 11]
    for r in results:
        value = "-" if r.value is None else f"{r.value:.3g} {r.unit}"
        equal = r.equality.get("passed")
        lines.append(
            f"| {r.name} | {fmt_s(r.baseline_s)} | {fmt_s(r.ours_s)} | {fmt_ratio(r.ratio)} "
            f"| {fmt_mib(r.baseline_mem_mib)} | {fmt_mib(r.ours_mem_mib)} "
            f"| {fmt_ratio(r.mem_ratio)} | {value} | {r.target} "
            f"| {'yes' if r.met else 'no' if r.met is not None else '-'} "
            f"| {'-' if equal is None else 'yes' if equal else 'NO'} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats")
    parser.add_argument("--only", default=None, help=f"comma-separated items of {', '.join(ITEMS)}")
    parser.add_argument("--json", default="benchmarks/results.json", help="where to write JSON")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats per path")
    parser.add_argument("--eval-repeats", type=int, default=1, help="timed full evaluations")
    parser.add_argument("--model", default="smollm2-135m", help="model under test")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1: on a shared CPU, OpenMP threads waiting at barriers "
        "for descheduled siblings make multi-threaded timings slow and erratic)",
    )
    args = parser.parse_args(argv)

    names = list(ITEMS) if not args.only else [n.strip() for n in args.only.split(",")]
    unknown = [n for n in names if n not in ITEMS]
    if unknown:
        parser.error(f"unknown item(s) {unknown}; choose from {', '.join(ITEMS)}")
    import torch

    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # inherited by the worker processes
        torch.set_num_threads(args.threads)
    cache = Path.home() / ".cache" / "unlearnkit" / "bench"
    cache.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="work-", dir=cache))
    ctx = BenchContext(
        quick=args.quick,
        repeats=args.repeats or (1 if args.quick else 3),
        workdir=workdir,
        model_name=args.model,
        threads=args.threads,
        eval_repeats=args.eval_repeats,
        log=lambda msg: print(msg, file=sys.stderr, flush=True),
    )
    started = datetime.now(UTC)
    machine_start = machine_info()
    results: list[Result] = []
    seconds: dict[str, float] = {}

    def write_json(complete: bool) -> str:
        table = format_table(results)
        report = {
            "date": started.isoformat(timespec="seconds"),
            "complete": complete,
            "quick": args.quick,
            "repeats": ctx.repeats,
            "threads": args.threads,
            "machine": machine_start,
            "load_avg_end": [round(x, 2) for x in os.getloadavg()],
            "item_seconds": seconds,
            "results": [r.to_dict() for r in results],
            "table": table,
        }
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
        return table

    try:
        for name in names:
            ctx.log(f"[{name}] ...")
            t0 = time.perf_counter()
            results.extend(_item(name)(ctx))
            seconds[name] = round(time.perf_counter() - t0, 1)
            ctx.log(f"[{name}] done in {seconds[name]}s")
            write_json(complete=False)  # partial results survive an interrupted run
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(write_json(complete=True))
    print(f"wrote {args.json}", file=sys.stderr)
    return 0 if all(r.equality.get("passed", True) for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
