"""Where a grid's jobs run: a process pool on this machine, Ray tasks, or Slurm jobs.

A launcher only starts jobs and reports when they end; what a job does is
:func:`unlearnkit.scenarios.grid_worker.run_job`, and the order and bookkeeping are the driver's
(:mod:`unlearnkit.scenarios.grid`). Each job runs in a fresh process:

- ``local``: one ``python -m unlearnkit.scenarios.grid_worker`` process per job, at most one per
  slot; a slot owns its GPU(s) (``CUDA_VISIBLE_DEVICES``) or, without GPUs, its cores (CPU
  affinity where the slots divide the cores, and ``OMP_NUM_THREADS``).
- ``ray``: a Ray task per job declaring ``num_cpus`` / ``num_gpus`` (Ray sets the devices), in
  a worker process used for that task only (``max_calls=1``), never retried by Ray (a re-launch
  of the grid resumes it instead).
- ``slurm``: one submitit job per grid job, submitted as a job array (``slurm_array_parallelism``
  = ``sweep.workers``); ``sweep.slurm.cluster: local`` runs them with submitit's LocalExecutor.

Jobs read and write the grid's folders, so on a cluster ``output_dir`` and the model cache
(``$UNLEARNKIT_CACHE``) must be on a file system every node sees.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Protocol

import unlearnkit
from unlearnkit.config import RunConfig, SweepConfig
from unlearnkit.scenarios.grid_worker import JOB_FILE, LOG_FILE, run_job
from unlearnkit.utils import atomic_write_json

# The directory that holds the ``unlearnkit`` package the driver runs: jobs import the same code.
PACKAGE_PARENT = str(Path(unlearnkit.__file__).resolve().parents[1])

EXTRAS = {"ray": ("ray", "Ray"), "slurm": ("submitit", "submitit")}


def require_extra(launcher: str) -> Any:
    """The module a launcher needs, or a one-line error naming the extra that installs it."""
    module, label = EXTRAS[launcher]
    try:
        return __import__(module)
    except ImportError:
        raise ValueError(
            f"sweep.launcher={launcher} needs {label}: pip install 'unlearnkit[{launcher}]'"
        ) from None


def _pythonpath(env: dict[str, str]) -> str:
    parts = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    return os.pathsep.join([PACKAGE_PARENT, *(p for p in parts if p != PACKAGE_PARENT)])


def gpu_count() -> int:
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # noqa: BLE001 - a broken CUDA install counts as no GPU
        return 0


class Launcher(Protocol):
    name: str
    slots: int | None  # jobs in flight at most (None: all; the engine queues them)
    capacity: int | None  # jobs running at once, for the time estimate (None: unknown)

    def submit(self, specs: list[dict[str, Any]]) -> list[Any]: ...

    def wait(self, handles: list[Any], timeout: float) -> list[tuple[Any, str | None]]:
        """Handles of jobs that ended (within ``timeout`` seconds), each with None or the
        reason it failed."""
        ...

    def cancel(self, handles: list[Any]) -> None: ...

    def close(self) -> None: ...


class LocalLauncher:
    """A process pool on this machine, one slot per GPU group or per group of cores."""

    name = "local"

    def __init__(self, sweep: SweepConfig) -> None:
        gpus = gpu_count()
        per_run = (1 if gpus else 0) if sweep.gpus_per_run is None else sweep.gpus_per_run
        if per_run > gpus:
            raise ValueError(f"sweep.gpus_per_run={per_run}, but this machine has {gpus} GPU(s)")
        cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        n_cores = len(cores) or os.cpu_count() or 1
        self.slot_env: list[dict[str, str]] = []
        self.slot_cores: list[set[int] | None] = []
        if per_run:
            groups = gpus // per_run
            workers = min(sweep.workers or groups, groups)
            threads = sweep.cpus_per_run or max(1, n_cores // workers)
            for i in range(workers):
                ids = ",".join(str(g) for g in range(i * per_run, (i + 1) * per_run))
                self.slot_env.append({"CUDA_VISIBLE_DEVICES": ids})
                self.slot_cores.append(None)
        else:
            if sweep.workers is None:
                threads = sweep.cpus_per_run or 1
                workers = max(1, n_cores // threads)
            else:
                workers = sweep.workers
                threads = sweep.cpus_per_run or max(1, n_cores // workers)
            pin = bool(cores) and workers * threads <= len(cores)
            for i in range(workers):
                env = {"CUDA_VISIBLE_DEVICES": ""} if gpus else {}
                self.slot_env.append(env)
                self.slot_cores.append(set(cores[i * threads : (i + 1) * threads]) if pin else None)
        self.threads = threads
        self.slots = self.capacity = len(self.slot_env)
        self._free = list(range(self.slots))
        self._procs: dict[int, tuple[subprocess.Popen[bytes], int]] = {}

    def describe(self) -> str:
        where = [
            f"GPU {env['CUDA_VISIBLE_DEVICES']}"
            if env.get("CUDA_VISIBLE_DEVICES")
            else (f"cores {sorted(cores)}" if cores else "any core")
            for env, cores in zip(self.slot_env, self.slot_cores, strict=True)
        ]
        return f"{self.slots} worker(s) of {self.threads} thread(s): {', '.join(where)}"

    def submit(self, specs: list[dict[str, Any]]) -> list[Any]:
        handles = []
        for spec in specs:
            slot = self._free.pop(0)
            env = dict(os.environ) | self.slot_env[slot]
            env |= {
                "OMP_NUM_THREADS": str(self.threads),
                "MKL_NUM_THREADS": str(self.threads),
                "PYTHONPATH": _pythonpath(env),
            }
            spec = spec | {"threads": self.threads}
            folder = Path(spec["folder"])
            atomic_write_json(folder / JOB_FILE, spec)
            cores = self.slot_cores[slot]
            with open(folder / LOG_FILE, "ab") as logf:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "unlearnkit.scenarios.grid_worker", folder / JOB_FILE],
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=logf,
                    stderr=subprocess.STDOUT,
                    preexec_fn=(lambda c=cores: os.sched_setaffinity(0, c)) if cores else None,
                )
            self._procs[proc.pid] = (proc, slot)
            handles.append(proc.pid)
        return handles

    def wait(self, handles: list[Any], timeout: float) -> list[tuple[Any, str | None]]:
        deadline = time.monotonic() + timeout
        while True:
            ended = []
            for pid in handles:
                proc, slot = self._procs[pid]
                rc = proc.poll()
                if rc is None:
                    continue
                del self._procs[pid]
                self._free.append(slot)
                reason = None if rc == 0 else _exit_reason(rc)
                ended.append((pid, reason))
            if ended or time.monotonic() >= deadline:
                return ended
            time.sleep(0.2)

    def cancel(self, handles: list[Any]) -> None:
        for pid in handles:
            if pid in self._procs:
                self._procs[pid][0].kill()

    def close(self) -> None:
        for proc, _ in self._procs.values():
            proc.wait()


def _exit_reason(rc: int) -> str:
    if rc < 0:
        import signal

        try:
            return f"killed by signal {signal.Signals(-rc).name}"
        except ValueError:
            return f"killed by signal {-rc}"
    return f"exit code {rc}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


class RayLauncher:
    """Ray tasks with declared resources, on a local Ray or the cluster at ``ray_address``."""

    name = "ray"

    def __init__(self, sweep: SweepConfig) -> None:
        ray = require_extra("ray")
        self.ray = ray
        self._owns = not ray.is_initialized()
        if self._owns:
            # The driver's unlearnkit settings (cache, data root) go with every task; a local
            # Ray's workers also import the driver's code.
            env = {k: v for k, v in os.environ.items() if k.startswith("UNLEARNKIT_")}
            if sweep.ray_address is None:
                env["PYTHONPATH"] = _pythonpath(dict(os.environ))
            ray.init(
                address=sweep.ray_address,
                include_dashboard=False,
                log_to_driver=False,
                runtime_env={"env_vars": env},
            )
        resources = ray.cluster_resources()
        gpus = sweep.gpus_per_run
        if gpus is None:
            gpus = 1 if resources.get("GPU", 0) >= 1 else 0
        cpus = sweep.cpus_per_run or 1
        fits = int(resources.get("CPU", 1) // cpus)
        if gpus:
            fits = min(fits, int(resources.get("GPU", 0) // gpus))
        if fits < 1:
            raise ValueError(
                f"a run needs {cpus} CPU(s) and {gpus} GPU(s); the Ray cluster has "
                f"{resources.get('CPU', 0):g} CPU(s) and {resources.get('GPU', 0):g} GPU(s)"
            )
        self.threads = cpus
        self.slots = sweep.workers
        self.capacity = min(sweep.workers or fits, fits)
        self._task = ray.remote(num_cpus=cpus, num_gpus=gpus, max_calls=1, max_retries=0)(run_job)

    def describe(self) -> str:
        return f"Ray at {self.ray.get_runtime_context().gcs_address}, up to {self.capacity} at once"

    def submit(self, specs: list[dict[str, Any]]) -> list[Any]:
        refs = []
        for spec in specs:
            spec = spec | {"threads": self.threads}
            atomic_write_json(Path(spec["folder"]) / JOB_FILE, spec)
            refs.append(self._task.remote(spec))
        return refs

    def wait(self, handles: list[Any], timeout: float) -> list[tuple[Any, str | None]]:
        ready, _ = self.ray.wait(handles, num_returns=1, timeout=timeout)
        if ready:
            ready, _ = self.ray.wait(handles, num_returns=len(handles), timeout=0)
        ended = []
        for ref in ready:
            try:
                self.ray.get(ref)
                ended.append((ref, None))
            except Exception as exc:  # noqa: BLE001 - any task error is this job's failure
                ended.append((ref, _first_line(exc)))
        return ended

    def cancel(self, handles: list[Any]) -> None:
        for ref in handles:
            self.ray.cancel(ref, force=True)

    def close(self) -> None:
        if self._owns:
            self.ray.shutdown()


class SlurmLauncher:
    """Slurm jobs through submitit (one job array per stage of the grid)."""

    name = "slurm"

    def __init__(self, sweep: SweepConfig, folder: Path) -> None:
        submitit = require_extra("slurm")
        sl = sweep.slurm
        if sl.cluster == "slurm" and shutil.which("sbatch") is None:
            raise ValueError(
                "sweep.launcher=slurm: no Slurm here (sbatch not found); launch the grid from a "
                "Slurm node, or set sweep.slurm.cluster=local to run its jobs on this machine"
            )
        self.executor = submitit.AutoExecutor(folder=folder / "%j", cluster=sl.cluster)
        self.threads = sweep.cpus_per_run or 1
        params: dict[str, Any] = {
            "name": "unlearnkit-grid",
            "timeout_min": sl.time_min,
            "gpus_per_node": sweep.gpus_per_run or 0,
            "cpus_per_task": self.threads,
            "mem_gb": sl.mem_gb,
            "slurm_partition": sl.partition,
            "slurm_array_parallelism": sweep.workers,
        }
        if sl.setup:
            params |= {"slurm_setup": list(sl.setup), "local_setup": list(sl.setup)}
        self.executor.update_parameters(**params)
        # submitit's LocalExecutor starts every job at once: the driver keeps ``workers`` going.
        local = self.executor.cluster == "local"
        self.slots = (
            (sweep.workers or (os.cpu_count() or 1) // self.threads or 1) if local else None
        )
        self.capacity = self.slots if local else sweep.workers
        self._env = {"PYTHONPATH": _pythonpath(dict(os.environ))} if local else {}

    def describe(self) -> str:
        return f"submitit ({self.executor.cluster}), jobs in {self.executor.folder}"

    def submit(self, specs: list[dict[str, Any]]) -> list[Any]:
        specs = [spec | {"threads": self.threads} for spec in specs]
        for spec in specs:
            atomic_write_json(Path(spec["folder"]) / JOB_FILE, spec)
        saved = {k: os.environ.get(k) for k in self._env}
        os.environ.update(self._env)  # the LocalExecutor's jobs inherit this process's env
        try:
            with self.executor.batch():
                jobs = [self.executor.submit(run_job, spec) for spec in specs]
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        return jobs

    def wait(self, handles: list[Any], timeout: float) -> list[tuple[Any, str | None]]:
        deadline = time.monotonic() + timeout
        while True:
            ended = []
            for job in handles:
                if not job.done():
                    continue
                exc = job.exception()
                ended.append((job, None if exc is None else _first_line(exc)))
            if ended or time.monotonic() >= deadline:
                return ended
            time.sleep(1.0)

    def cancel(self, handles: list[Any]) -> None:
        for job in handles:
            job.cancel(check=False)

    def close(self) -> None:
        pass


def make_launcher(cfg: RunConfig, grid_folder: Path) -> Launcher:
    """The launcher ``cfg.sweep.launcher`` names (a one-line error when its extra is missing)."""
    kind = cfg.sweep.launcher
    if kind == "local":
        return LocalLauncher(cfg.sweep)
    if kind == "ray":
        return RayLauncher(cfg.sweep)
    if kind == "slurm":
        return SlurmLauncher(cfg.sweep, grid_folder / "submitit")
    raise ValueError(f"sweep.launcher={kind} does not launch jobs; choose from local, ray, slurm")
