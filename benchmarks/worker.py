"""Fresh-process measurements (peak RSS): ``python -m benchmarks.worker ITEM [ARGS]``.

Prints one JSON line. ``ru_maxrss`` only grows, so each measurement needs its own process.
"""

from __future__ import annotations

import json
import sys


def main(argv: list[str]) -> int:
    item, args = argv[0], argv[1:]
    if item == "me_loss":
        from benchmarks.bench_me_loss import worker

        out = worker(args[0])
    elif item == "unlearn_run":
        from benchmarks.bench_rss import worker

        out = worker(quick=args[0] == "quick", out_dir=args[1], model=args[2])
    elif item == "eval_threads":
        from benchmarks.bench_threads import worker as threads_worker

        out = threads_worker(args[0], int(args[1]), args[2])
    else:
        raise SystemExit(f"unknown worker item '{item}'")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
