"""The grid driver's pieces without processes: the time estimate, the plan (shared models once),
the launch settings' validation, the local pool's slots, and the missing-extra error."""

from __future__ import annotations

import sys

import pytest

from unlearnkit.config import ConfigError, RunConfig
from unlearnkit.data.synth import generate_synthetic
from unlearnkit.scenarios import launchers
from unlearnkit.scenarios.grid import GridProgress, eta_seconds, plan_grid
from unlearnkit.scenarios.launchers import LocalLauncher, make_launcher
from unlearnkit.scenarios.sweep import expand_sweep
from unlearnkit.settings import load_config


def test_eta_spreads_the_work_left_over_the_runs_at_once() -> None:
    # mean 100 s; running: 30 s and 120 s in (70 + 0 s left); 3 waiting (300 s); 2 at once
    assert eta_seconds([80.0, 120.0], [30.0, 120.0], 3, 2) == pytest.approx(370 / 2)
    # one waiting run and nothing running: one at a time whatever the capacity
    assert eta_seconds([60.0], [], 1, 4) == pytest.approx(60.0)
    # unknown capacity (Slurm without sweep.workers): the runs now running
    assert eta_seconds([60.0], [0.0, 0.0, 0.0], 3, None) == pytest.approx(360 / 3)
    assert eta_seconds([], [10.0], 3, 2) is None  # no run finished yet


def test_progress_line_counts_and_estimate(tmp_path) -> None:
    p = GridProgress(total=6, done=2, capacity=2, path=tmp_path / "status.json")
    p.durations = [100.0]
    p.started = {"a": 1000.0, "b": 1050.0}
    p.running = {"a", "b"}
    p.failed = 1
    # waiting: 6 - 2 - 1 - 2 = 1; left: (100 - 100) + (100 - 50) + 100 = 150 over 2 -> 75 s
    assert p.line(1100.0) == "grid: 2/6 done, 1 failed, 2 running, 1 waiting; about 75 s left"
    p.write(1100.0)
    assert '"done": 2' in (tmp_path / "status.json").read_text()


def test_launch_settings_are_validated() -> None:
    with pytest.raises(ConfigError, match="unknown sweep.launcher 'dask'; choose from sequential"):
        load_config(overrides=["sweep.launcher=dask"])
    with pytest.raises(ConfigError, match="sweep.workers must be >= 1 or null, got 0"):
        load_config(overrides=["sweep.workers=0"])
    with pytest.raises(ConfigError, match="sweep.gpus_per_run must be >= 0"):
        load_config(overrides=["sweep.gpus_per_run=-1"])
    with pytest.raises(ConfigError, match="sweep.slurm.time_min must be >= 1, got 0"):
        load_config(overrides=["sweep.slurm.time_min=0"])
    with pytest.raises(ConfigError, match="unknown sweep.slurm.cluster 'debug'; choose from"):
        load_config(overrides=["sweep.slurm.cluster=debug"])
    cfg = load_config(overrides=["sweep.slurm.partition=gpu", "sweep.slurm.setup=[a, b]"])
    assert cfg.sweep.slurm.partition == "gpu" and cfg.sweep.slurm.setup == ["a", "b"]


@pytest.mark.parametrize("launcher, module", [("ray", "ray"), ("slurm", "submitit")])
def test_missing_extra_is_a_one_line_error(monkeypatch, tmp_path, launcher, module) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if it were not installed
    cfg = load_config(overrides=[f"sweep.launcher={launcher}"])
    with pytest.raises(ValueError) as err:
        make_launcher(cfg, tmp_path)
    assert str(err.value) == (
        f"sweep.launcher={launcher} needs {'Ray' if module == 'ray' else 'submitit'}: "
        f"pip install 'unlearnkit[{launcher}]'"
    )


def test_local_pool_slots_own_their_cores_or_gpus(monkeypatch) -> None:
    monkeypatch.setattr(launchers, "gpu_count", lambda: 0)
    monkeypatch.setattr(launchers.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    cfg = RunConfig()
    cfg.sweep.workers = 2
    pool = LocalLauncher(cfg.sweep)  # 4 cores / 2 workers: 2 threads each, disjoint cores
    assert (pool.slots, pool.threads, pool.slot_cores) == (2, 2, [{0, 1}, {2, 3}])
    cfg.sweep.workers = None
    pool = LocalLauncher(cfg.sweep)  # default: one single-thread run per core
    assert (pool.slots, pool.threads) == (4, 1)
    cfg.sweep.workers = 3  # 3 x 1 thread: pinned to cores 0, 1, 2
    assert LocalLauncher(cfg.sweep).slot_cores == [{0}, {1}, {2}]

    monkeypatch.setattr(launchers, "gpu_count", lambda: 4)
    cfg.sweep.workers, cfg.sweep.gpus_per_run = None, 2
    pool = LocalLauncher(cfg.sweep)
    assert [e["CUDA_VISIBLE_DEVICES"] for e in pool.slot_env] == ["0,1", "2,3"]
    cfg.sweep.gpus_per_run = 0  # CPU runs on a GPU machine keep off the GPUs
    assert LocalLauncher(cfg.sweep).slot_env[0] == {"CUDA_VISIBLE_DEVICES": ""}
    cfg.sweep.gpus_per_run = 5
    with pytest.raises(ValueError, match="sweep.gpus_per_run=5, but this machine has 4 GPU"):
        LocalLauncher(cfg.sweep)


def test_plan_builds_each_shared_model_once_and_skips_finished_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("UNLEARNKIT_CACHE", str(tmp_path / "cache"))
    bench = tmp_path / "bench"
    generate_synthetic(bench, n_authors=10, questions_per_author=3, seed=1, n_tasks=3)
    cfg = load_config(
        overrides=[
            "scenario=sweep",
            f"data.benchmark={bench}",
            f"output_dir={tmp_path / 'runs'}",
            "target.finetune=true",
            "target.retain_model=true",
            "sweep.methods=[GA+GD, IDK+AP]",
            "sweep.splits=[forget05, forget10]",
        ]
    )
    runs = expand_sweep(cfg)
    models, todo, finished = plan_grid(cfg, runs)
    # one target for all four runs, one retain model per split
    assert sorted(j.kind for j in models) == ["retain", "retain", "target"]
    assert len({j.name for j in models}) == 3 and len(todo) == 4 and finished == []
    target = next(j.name for j in models if j.kind == "target")
    assert all(target in j.needs and len(j.needs) == 2 for j in todo)
    # a finished run is skipped; a built model is not built again
    (todo[0].folder).mkdir(parents=True)
    (todo[0].folder / "DONE.json").write_text("{}")
    next(j for j in models if j.kind == "target").done_marker.parent.mkdir(parents=True)
    next(j for j in models if j.kind == "target").done_marker.write_text("x")
    models2, todo2, finished2 = plan_grid(cfg, runs)
    assert sorted(j.kind for j in models2) == ["retain", "retain"]
    assert len(todo2) == 3 and finished2 == [todo[0].folder]


def test_slurm_without_slurm_says_how_to_run_the_jobs_here(monkeypatch, tmp_path) -> None:
    pytest.importorskip("submitit")
    monkeypatch.setattr(launchers.shutil, "which", lambda name: None)
    cfg = load_config(overrides=["sweep.launcher=slurm"])
    with pytest.raises(ValueError, match="no Slurm here .* set sweep.slurm.cluster=local"):
        make_launcher(cfg, tmp_path)
