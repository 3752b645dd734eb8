"""Shared pieces of the benchmark harness: results, timing, peak memory, model and data.

Timing: every item runs the baseline and our path *interleaved* in one process (B, O, B, O, ...)
so both see the same machine load, and reports medians. Peak memory is resident memory (RSS):
``tracemalloc`` does not see torch's allocations. Two ways are used and named in each result:

- ``subprocess``: a fresh Python process runs one measurement and reports
  ``peak - rss_before``, with the kernel's own peak (``VmHWM``, reset right before the call
  where Linux allows it; ``ru_maxrss`` elsewhere, which never goes down, hence the fresh
  process);
- ``sampled``: freed heap memory is first returned to the OS (``malloc_trim``), then a thread
  samples this process's RSS every few milliseconds during the call and reports
  ``max - rss_before`` (approximate: a peak shorter than the interval can be missed).
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

GIB = 1024**3
MIB = 1024**2
REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Result:
    """One row of the table: a measured item, its two paths and whether the target is met."""

    name: str
    description: str
    target: str
    met: bool | None  # None: nothing to compare (e.g. skipped)
    baseline_s: float | None = None  # median wall time of the baseline
    ours_s: float | None = None  # median wall time of our path
    ratio: float | None = None  # baseline_s / ours_s
    baseline_mem_mib: float | None = None
    ours_mem_mib: float | None = None
    mem_ratio: float | None = None
    mem_method: str = ""  # "subprocess" | "sampled" | ""
    value: float | None = None  # an absolute measure (peak RSS GiB, slope, ...)
    unit: str = ""
    equality: dict[str, Any] = field(default_factory=dict)  # the equality checks and their result
    details: dict[str, Any] = field(default_factory=dict)  # raw times, per-phase splits, ...
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class BenchContext:
    """What every benchmark item receives from the harness."""

    quick: bool
    repeats: int
    workdir: Path  # scratch folder (run outputs, stand-in models)
    model_name: str = "smollm2-135m"
    threads: int | None = None
    eval_repeats: int = 1  # a full evaluation is long: one timed pair by default
    log: Callable[[str], None] = print


# ---------------------------------------------------------------------------------------------
# timing


def median(xs: list[float]) -> float:
    return float(statistics.median(xs))


def interleaved_times(
    baseline: Callable[[], Any],
    ours: Callable[[], Any],
    repeats: int,
    warmup: bool,
    on_result: Callable[[str, Any], None] | None = None,
) -> tuple[list[float], list[float]]:
    """Wall times of ``repeats`` calls of each, alternated so both see the same load.

    ``on_result(which, value)`` receives every call's return value (equality checks). A warm-up
    call of each (not timed) runs first when ``warmup``.
    """
    if warmup:
        for which, fn in (("baseline", baseline), ("ours", ours)):
            value = fn()
            if on_result is not None:
                on_result(which, value)
    tb: list[float] = []
    to: list[float] = []
    for _ in range(repeats):
        for which, fn, times in (("baseline", baseline, tb), ("ours", ours, to)):
            start = time.perf_counter()
            value = fn()
            times.append(time.perf_counter() - start)
            if on_result is not None:
                on_result(which, value)
    return tb, to


# ---------------------------------------------------------------------------------------------
# memory


def current_rss() -> int:
    return int(psutil.Process().memory_info().rss)


def max_rss_self() -> int:
    """Peak RSS of this process's address space so far, in bytes.

    Linux: ``VmHWM`` of /proc/self/status (per address space, so a fresh ``exec`` starts from
    zero; ``ru_maxrss`` would inherit the parent's RSS at ``fork`` time). Elsewhere: ru_maxrss.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    scale = 1 if sys.platform == "darwin" else 1024
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * scale


def reset_peak_rss() -> bool:
    """Reset ``VmHWM`` to the current RSS (Linux >= 4.0); False when not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


class RssSampler:
    """Samples this process's RSS in a thread; ``peak_delta`` = max sampled - RSS at start."""

    def __init__(self, interval_s: float = 0.002) -> None:
        self.interval_s = interval_s
        self.start_rss = 0
        self.peak_rss = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        proc = psutil.Process()
        while not self._stop.is_set():
            rss = proc.memory_info().rss
            if rss > self.peak_rss:
                self.peak_rss = rss
            self._stop.wait(self.interval_s)

    def __enter__(self) -> RssSampler:
        self.start_rss = current_rss()
        self.peak_rss = self.start_rss
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join()
        self.peak_rss = max(self.peak_rss, current_rss())

    @property
    def peak_delta(self) -> int:
        return self.peak_rss - self.start_rss


def release_free_memory() -> None:
    """Return freed heap memory to the OS (glibc ``malloc_trim``), so that the RSS growth of the
    next call is measured from a low start, not hidden by memory an earlier call left cached."""
    import gc

    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


@contextmanager
def sampled_peak() -> Iterator[RssSampler]:
    release_free_memory()
    with RssSampler() as sampler:
        yield sampler


def run_worker(args: list[str], timeout_s: float = 3600, threads: int | None = None) -> dict:
    """Run ``python -m benchmarks.worker ARGS`` in a fresh process; return its JSON line."""
    env = dict(os.environ)
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.worker", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"benchmark worker {args} failed ({proc.returncode}):\n{proc.stderr[-3000:]}"
        )
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"benchmark worker {args} printed no JSON:\n{proc.stdout[-2000:]}")


# ---------------------------------------------------------------------------------------------
# model, data, machine


def load_bench_model(name: str) -> tuple[Any, Any]:
    """The model under test in fp32 on CPU (the targets are CPU fp32)."""
    import torch

    from unlearnkit.models.loading import load_model

    model, tok = load_model(name, device="cpu", dtype=torch.float32)
    return model, tok


def open_tofu() -> tuple[Any, str]:
    """TOFU from ../shared/data, or the project's synthetic TOFU-layout data when absent."""
    from unlearnkit.data.splits import TofuBenchmark, open_benchmark
    from unlearnkit.utils import default_data_root

    root = default_data_root() / "tofu"
    if (root / "forget01.json").is_file():
        return TofuBenchmark(root), str(root)
    return open_benchmark("synthetic"), "synthetic"


def machine_info() -> dict[str, Any]:
    import torch
    import transformers

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "logical_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "memory_gib": round(psutil.virtual_memory().total / GIB, 1),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "platform": platform.platform(),
        "load_avg": [round(x, 2) for x in os.getloadavg()],
    }


def safe_ratio(a: float | None, b: float | None, floor: float = 1.0) -> float | None:
    """a / b, or None when b is below ``floor`` (a ratio to ~0 means nothing)."""
    if a is None or b is None or b < floor:
        return None
    return a / b


def fmt_s(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.3f}" if x < 10 else f"{x:.1f}"


def fmt_ratio(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}x"


def fmt_mib(x: float | None) -> str:
    return "-" if x is None else f"{x:.0f}"
