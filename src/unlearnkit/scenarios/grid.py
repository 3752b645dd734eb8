"""A sweep's grid spread over processes, machines or a cluster (``sweep.launcher``).

Two stages, each a set of jobs run by the launcher (:mod:`unlearnkit.scenarios.launchers`):

1. the models several grid points share (the fine-tuned target, each split's retain model),
   each built once, by one job, before any run that needs it starts: never a race between
   workers (:func:`unlearnkit.scenarios.common.shared_models` says which a run needs);
2. the grid points, each a whole scenario run in its own folder and its own process.

The folders are the state, so a grid launched again picks up where it stopped: finished runs
(``DONE.json``) are skipped, killed or failed ones run again and continue from their newest
complete checkpoint. A job that fails gets ``FAILED.json`` (the reason and its log's last lines)
and is reported with its log; the others go on, and the grid ends with a one-line error listing
them. Each finished run is indexed in ``results.db`` at once, so ``unlearn report`` shows the
grid as it fills. Progress (done, failed, running, waiting, time left) is printed on every
change and written to ``<output_dir>/_grid/status.json``.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unlearnkit.config import RunConfig, to_dict
from unlearnkit.scenarios.common import is_done, log, open_benchmark, run_dir, shared_models
from unlearnkit.scenarios.grid_worker import FAILED_FILE, LOG_FILE, RUNNING_FILE
from unlearnkit.utils import atomic_write_json

GRID_FOLDER = "_grid"
POLL_S = 30.0  # longest wait between two progress lines while nothing changes


class GridError(ValueError):
    """Some jobs of a grid failed (each is reported with its log)."""


@dataclass
class Job:
    kind: str  # "run" (a grid point), "target" or "retain" (a shared model)
    name: str  # run folder name, or the shared model's cache folder name
    folder: Path  # the job's folder: grid_job.json, run.log, RUNNING.json, FAILED.json
    cfg: RunConfig
    done_marker: Path  # exists once the job has finished
    needs: list[str] = field(default_factory=list)  # names of the shared models it needs

    def spec(self, resume: bool | str) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "folder": str(self.folder),
            "config": to_dict(self.cfg),
            "resume": resume,
        }

    def finished(self) -> bool:
        return self.done_marker.is_file()


def plan_grid(cfg: RunConfig, runs: list[RunConfig]) -> tuple[list[Job], list[Job], list[Path]]:
    """(shared-model jobs, run jobs, folders of runs finished earlier) for the grid ``runs``."""
    grid = Path(cfg.output_dir).expanduser().resolve() / GRID_FOLDER
    models: dict[str, Job] = {}
    todo: list[Job] = []
    finished: list[Path] = []
    benches: dict[tuple[str, int], Any] = {}
    for sub in runs:
        _absolute_paths(sub)
        rdir = run_dir(sub)
        if is_done(rdir):
            finished.append(rdir)
            continue
        key = (sub.data.benchmark, sub.data.holdout_authors)
        if key not in benches:  # opened (and generated, for `synthetic`) once, here
            benches[key] = open_benchmark(*key)
        needs = []
        for role, cache in shared_models(sub, benches[key]):
            needs.append(cache.name)
            if cache.name not in models and not (cache / "DONE").is_file():
                models[cache.name] = Job(role, cache.name, grid / cache.name, sub, cache / "DONE")
        todo.append(Job("run", rdir.name, rdir, sub, rdir / "DONE.json", needs))
    return list(models.values()), todo, finished


def _absolute_paths(cfg: RunConfig) -> None:
    """Local paths made absolute: a job may start in another working folder (Ray, Slurm)."""
    cfg.output_dir = str(Path(cfg.output_dir).expanduser().resolve())
    for part, key in ((cfg.model, "name"), (cfg.data, "benchmark")):
        value = Path(getattr(part, key)).expanduser()
        if value.exists():
            setattr(part, key, str(value.resolve()))


def eta_seconds(
    durations: list[float], running_elapsed: list[float], waiting: int, capacity: int | None
) -> float | None:
    """Time left: the mean duration of the runs finished so far for each waiting run, and what
    is left of it for each running one, spread over the runs that can run at once (``capacity``,
    else the number running). None before any run has finished."""
    if not durations:
        return None
    mean = sum(durations) / len(durations)
    work = sum(max(0.0, mean - e) for e in running_elapsed) + waiting * mean
    at_once = capacity or len(running_elapsed) or 1
    return work / max(1, min(at_once, len(running_elapsed) + waiting))


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "time left unknown until a run finishes"
    if seconds < 30:  # e.g. the running runs already took longer than the mean
        return "less than 30 s left"
    if seconds < 90:
        return f"about {seconds:.0f} s left"
    if seconds < 5400:
        return f"about {seconds / 60:.0f} min left"
    return f"about {seconds / 3600:.1f} h left"


class GridProgress:
    """Counts of the grid's runs, a time estimate, and the status file."""

    def __init__(self, total: int, done: int, capacity: int | None, path: Path) -> None:
        self.total, self.done, self.failed = total, done, 0
        self.capacity, self.path = capacity, path
        self.durations: list[float] = []
        self.started: dict[str, float] = {}  # in flight: name -> submit time
        self.running: set[str] = set()  # in flight and started (RUNNING.json seen)
        self.failures: dict[str, dict[str, Any]] = {}

    def line(self, now: float) -> str:
        waiting = self.total - self.done - self.failed - len(self.running)
        elapsed = [now - self.started[n] for n in self.running]
        eta = eta_seconds(self.durations, elapsed, waiting, self.capacity)
        left = _duration(eta) if waiting or self.running else "finished"
        return (
            f"grid: {self.done}/{self.total} done, {self.failed} failed, "
            f"{len(self.running)} running, {waiting} waiting; {left}"
        )

    def write(self, now: float) -> None:
        atomic_write_json(
            self.path,
            {
                "total": self.total,
                "done": self.done,
                "failed": sorted(self.failures),
                "running": sorted(self.running),
                "mean_run_s": sum(self.durations) / len(self.durations) if self.durations else None,
                "line": self.line(now),
                "updated": now,
            },
        )


def _check_not_running(job: Job) -> None:
    """A job whose RUNNING.json names a live process on this machine is still running."""
    path = job.folder / RUNNING_FILE
    if not path.is_file():
        return
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        host, pid = info["host"], int(info["pid"])
    except (ValueError, KeyError, TypeError):
        return
    if host != socket.gethostname() or pid == os.getpid():
        return
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return
    except PermissionError:
        pass
    raise ValueError(
        f"{job.folder} is still running (pid {pid} on this machine); wait for it or stop it "
        f"(delete {path} if that process is not unlearnkit's) before launching the grid again"
    )


def _tail(path: Path, lines: int = 20) -> list[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
    except OSError:
        return []


def _mark_failed(job: Job, reason: str) -> dict[str, Any]:
    facts = {
        "reason": reason,
        "log": str(job.folder / LOG_FILE),
        "tail": _tail(job.folder / LOG_FILE),
    }
    job.folder.mkdir(parents=True, exist_ok=True)
    atomic_write_json(job.folder / FAILED_FILE, facts)
    (job.folder / RUNNING_FILE).unlink(missing_ok=True)
    shown = "\n".join(f"    {line}" for line in facts["tail"][-5:])
    log(f"{job.kind} {job.name} failed ({reason}); its log: {facts['log']}\n{shown}")
    return facts


def _run_stage(
    launcher: Any, jobs: list[Job], resume: bool | str, progress: GridProgress | None
) -> dict[str, dict[str, Any]]:
    """Run ``jobs`` with ``launcher``; returns the failed ones: name -> FAILED.json's facts."""
    pending = deque(jobs)
    inflight: dict[Any, tuple[Job, float]] = {}
    failed: dict[str, dict[str, Any]] = {}
    try:
        while pending or inflight:
            free = len(pending) if launcher.slots is None else launcher.slots - len(inflight)
            batch = [pending.popleft() for _ in range(min(free, len(pending)))]
            if batch:
                for job in batch:
                    job.folder.mkdir(parents=True, exist_ok=True)
                    (job.folder / FAILED_FILE).unlink(missing_ok=True)
                    (job.folder / RUNNING_FILE).unlink(missing_ok=True)
                now = time.time()
                for job, handle in zip(
                    batch, launcher.submit([j.spec(resume) for j in batch]), strict=True
                ):
                    inflight[handle] = (job, now)
                    if progress is not None:
                        progress.started[job.name] = now
            ended = launcher.wait(list(inflight), timeout=POLL_S)
            now = time.time()
            for handle, reason in ended:
                job, t0 = inflight.pop(handle)
                if reason is None and not job.finished():
                    reason = "the job ended without finishing"
                if reason is None:
                    log(f"{job.kind} {job.name} finished in {now - t0:.0f} s")
                    if job.kind == "run":
                        _index(job)
                else:
                    failed[job.name] = _mark_failed(job, reason)
                if progress is not None:
                    progress.started.pop(job.name, None)
                    progress.running.discard(job.name)
                    if reason is None:
                        progress.done += 1
                        progress.durations.append(now - t0)
                    else:
                        progress.failed += 1
                        progress.failures[job.name] = failed[job.name]
            if progress is not None:
                newly = {
                    j.name for j, _ in inflight.values() if (j.folder / RUNNING_FILE).is_file()
                }
                changed = ended or newly - progress.running
                progress.running |= newly
                if changed or not ended:
                    log(progress.line(now))
                progress.write(now)
    except BaseException:
        launcher.cancel(list(inflight))
        raise
    return failed


def _index(job: Job) -> None:
    from unlearnkit.report.store import ResultsStore

    try:
        ResultsStore(Path(job.cfg.output_dir) / "results.db").record_run(job.folder)
    except Exception as exc:  # noqa: BLE001 - the run folder stays the source of truth
        log(f"could not index {job.folder} in results.db ({exc}); `unlearn report` will")


def launch_grid(cfg: RunConfig, runs: list[RunConfig], resume: bool = False) -> list[Path]:
    """Run the grid ``runs`` (expanded from ``cfg``) with ``cfg.sweep.launcher``."""
    from unlearnkit.scenarios.launchers import make_launcher

    grid = Path(cfg.output_dir).expanduser().resolve() / GRID_FOLDER
    launcher = make_launcher(cfg, grid)  # a missing extra fails here, before any work
    try:
        model_jobs, run_jobs, finished = plan_grid(cfg, runs)
        for job in model_jobs + run_jobs:  # before anything starts
            _check_not_running(job)
        log(f"grid of {len(runs)} runs with the {launcher.name} launcher: {launcher.describe()}")
        if finished:
            log(f"{len(finished)} run(s) finished earlier, skipped")
        job_resume: bool | str = True if resume else "auto"
        failed_models: dict[str, dict[str, Any]] = {}
        if model_jobs:
            names = ", ".join(j.name for j in model_jobs)
            log(f"building {len(model_jobs)} shared model(s) first: {names}")
            failed_models = _run_stage(launcher, model_jobs, job_resume, None)
        progress = GridProgress(len(runs), len(finished), launcher.capacity, grid / "status.json")
        blocked = [j for j in run_jobs if set(j.needs) & set(failed_models)]
        for job in blocked:
            model = sorted(set(job.needs) & set(failed_models))[0]
            facts = _mark_failed(
                job, f"its shared model {model} failed: {failed_models[model]['log']}"
            )
            progress.failed += 1
            progress.failures[job.name] = facts
        runnable = [j for j in run_jobs if j not in blocked]
        log(progress.line(time.time()))
        _run_stage(launcher, runnable, job_resume, progress)
    finally:
        launcher.close()
    failures = {**failed_models, **progress.failures}
    if failures:
        logs = ", ".join(f"{name} ({facts['log']})" for name, facts in failures.items())
        raise GridError(
            f"{len(failures)} job(s) of the grid failed: {logs}; launch the grid again to retry"
        )
    return [run_dir(sub) for sub in runs]
