"""How many CPU threads the evaluation uses, so that sharing the machine does not collapse it.

torch's CPU kernels run OpenMP parallel regions that end at a barrier: a thread that finishes
its share waits for its siblings. With more threads than free cores, a sibling descheduled in
favour of another process holds every region up until it runs again, and each region costs a
scheduler time slice rather than its work (the issue measured an evaluation that took 240 s
alone not finishing in 1200 s beside one other job). With at most as many threads as free cores,
threads are rarely descheduled mid-region, and one concurrent job of the same kind costs at most
about its share of the cores: ~2x. ``benchmarks/bench_threads.py`` measures it.

Automatic choice (``eval.threads`` unset):

    threads = max(1, min(current torch threads, physical cores, usable cores, free cores))
    free cores = round(physical cores - max(0, load1 - 1))

with load1 the 1-minute load average (the 1 subtracted: this process, running). The current
torch setting (``OMP_NUM_THREADS``, ``torch.set_num_threads``) is an upper bound, so an explicit
choice is never raised. ``eval.threads`` = N uses exactly N.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
from collections.abc import Callable
from typing import Any, TypeVar

import torch

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


def physical_cores() -> int:
    """Physical cores (logical ones when psutil cannot tell)."""
    import psutil

    return psutil.cpu_count(logical=False) or os.cpu_count() or 1


def auto_threads(current: int, physical: int, usable: int, load1: float) -> int:
    """max(1, min(current, physical, usable, round(physical - max(0, load1 - 1))))."""
    free = round(physical - max(0.0, load1 - 1.0))
    return max(1, min(current, physical, usable, free))


def choose_threads(requested: int | None) -> int:
    """``requested`` when set, else :func:`auto_threads` from this machine's state."""
    if requested is not None:
        if requested < 1:
            raise ValueError(f"eval.threads must be >= 1 or null, got {requested}")
        return requested
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else physical_cores()
    load1 = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return auto_threads(torch.get_num_threads(), physical_cores(), usable, load1)


def with_eval_threads(fn: F) -> F:
    """Run ``fn`` (which takes an EvalConfig ``cfg``) with :func:`choose_threads`(cfg.threads)
    torch threads, restoring the previous count afterwards."""
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        cfg = signature.bind(*args, **kwargs).arguments["cfg"]
        previous = torch.get_num_threads()
        threads = choose_threads(cfg.threads)
        if threads != previous:
            log.info("evaluation: %d torch threads (was %d)", threads, previous)
            torch.set_num_threads(threads)
        try:
            return fn(*args, **kwargs)
        finally:
            if threads != previous:
                torch.set_num_threads(previous)

    return wrapper  # type: ignore[return-value]
