"""One job of a launched grid, run in a process of its own: a grid point (a whole scenario run)
or a fine-tuned model that several grid points share (the target, a retain model).

Every launcher (:mod:`unlearnkit.scenarios.launchers`: a local process pool, Ray tasks, Slurm
jobs through submitit) executes :func:`run_job` in a fresh process, with the job's folder as its
only state: ``grid_job.json`` (what to run), ``run.log`` (everything the job prints, appended by
each attempt), ``RUNNING.json`` (host, pid and devices while it runs; a killed job leaves it
behind). The driver (:mod:`unlearnkit.scenarios.grid`) reads the outcome from the folder too: a
grid point is finished when its ``DONE.json`` exists, a shared model when its cache folder's
``DONE`` does.

``python -m unlearnkit.scenarios.grid_worker FOLDER/grid_job.json`` runs one job (the local
launcher's command); its exit code is 0 when the job finished.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

JOB_FILE = "grid_job.json"
LOG_FILE = "run.log"
RUNNING_FILE = "RUNNING.json"
FAILED_FILE = "FAILED.json"
JOB_KINDS = ("run", "target", "retain")


@contextmanager
def output_to(path: Path) -> Iterator[None]:
    """Send this process's stdout and stderr (file descriptors 1 and 2, so C libraries' output
    too) to the end of ``path`` until the block ends."""
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    saved = os.dup(1), os.dup(2)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for f in (fd, *saved):
            os.close(f)


def run_job(spec: dict[str, Any]) -> str:
    """Run the job ``spec`` (see :meth:`unlearnkit.scenarios.grid.Job.spec`) here; returns its
    name. An exception is printed to the job's log and raised again."""
    from unlearnkit.utils import atomic_write_json

    folder = Path(spec["folder"])
    folder.mkdir(parents=True, exist_ok=True)
    with output_to(folder / LOG_FILE):
        print(f"=== {spec['kind']} {spec['name']}: pid {os.getpid()} on {socket.gethostname()}")
        running = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started": time.time(),
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "threads": spec.get("threads"),
        }
        atomic_write_json(folder / RUNNING_FILE, running)
        try:
            _run(spec)
        except BaseException:
            traceback.print_exc()
            raise
        (folder / RUNNING_FILE).unlink(missing_ok=True)
    return str(spec["name"])


def _run(spec: dict[str, Any]) -> None:
    import torch

    from unlearnkit.config import RunConfig, from_dict, validate
    from unlearnkit.scenarios import run_scenario
    from unlearnkit.scenarios.common import open_benchmark, retain_model, target_model

    if spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))
    cfg = validate(from_dict(RunConfig, spec["config"]))
    kind = spec["kind"]
    if kind == "run":
        run_scenario(cfg, resume=spec.get("resume", "auto"))
        return
    bench = open_benchmark(cfg.data.benchmark, cfg.data.holdout_authors)
    if kind == "target":
        target_model(cfg, bench)
    elif kind == "retain":
        retain_model(cfg, bench)
    else:
        raise ValueError(f"unknown grid job kind '{kind}'; choose from {', '.join(JOB_KINDS)}")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m unlearnkit.scenarios.grid_worker FOLDER/grid_job.json")
        return 2
    spec = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    try:
        run_job(spec)
    except BaseException:  # the traceback is in the job's log
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
