"""A 4-run grid (2 methods x 2 learning rates, one fine-tuned target they share) on the tiny model,
through each launcher, against the same grid run sequentially in this process.

Every run uses one CPU thread (the workers by the launcher's pinning, this process by the
fixture), so the same kernels run in the same order and the results must be equal exactly:
the weights' fingerprints and every metric. Evaluation results are not cached (each run really
evaluates its model) and every grid builds its own targets (its own ``UNLEARNKIT_CACHE``).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import threading
import time
from pathlib import Path

import pytest
import torch

from unlearnkit.cli import main
from unlearnkit.data.synth import generate_synthetic

METHODS = ["GA+GD", "IDK+AP"]
VICTIM = "fictitious-bench-forget10-IDK+AP-lr0.0005-s0"  # the run whose worker is killed


def write_grid(root: Path, out: Path, launch: str) -> Path:
    cfg = root / f"grid-{out.name}.yaml"
    cfg.write_text(
        "scenario: sweep\n"
        f"model: {{name: {root / 'tiny'}}}\n"
        f"data: {{benchmark: {root / 'bench'}, split: forget10}}\n"
        f"output_dir: {out}\n"
        "target: {finetune: true, epochs: 1, eval_before: false}\n"
        "train: {max_steps: 8, batch_size: 2, per_device_batch_size: 1, checkpoint_every: 1,\n"
        "        warmup_epochs: 0, learning_rate: 1.0e-3}\n"
        "eval: {ds_size: 2, max_new_tokens: 4, nli_model: null, use_cache: false, threads: 1}\n"
        f"sweep: {{methods: [{', '.join(METHODS)}], learning_rates: [1.0e-3, 5.0e-4], {launch}}}\n"
    )
    return cfg


def results(out: Path) -> dict[str, dict]:
    found = {}
    for rdir in sorted(p for p in out.iterdir() if (p / "DONE.json").is_file()):
        summary = json.loads((rdir / "eval" / "final" / "summary.json").read_text())
        found[rdir.name] = {k: summary[k] for k in ("fingerprint", "splits", "aggregates")}
    return found


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from unlearnkit.models.tiny import save_tiny_model

    root = tmp_path_factory.mktemp("grid")
    save_tiny_model(root / "tiny", seed=0)
    generate_synthetic(root / "bench", n_authors=10, questions_per_author=3, seed=1, n_tasks=3)
    return root


@pytest.fixture(scope="module")
def sequential(root: Path) -> dict[str, dict]:
    out = root / "sequential"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("UNLEARNKIT_CACHE", str(root / "cache-sequential"))
            assert (
                main(["run", "--config", str(write_grid(root, out, "launcher: sequential"))]) == 0
            )
    finally:
        torch.set_num_threads(threads)
    found = results(out)
    assert len(found) == 4
    return found


@pytest.fixture
def own_cache(root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UNLEARNKIT_CACHE", str(tmp_path / "cache"))


def kill_when_checkpointed(rdir: Path, killed: dict) -> threading.Thread:
    """SIGKILL the process running ``rdir`` once it has a complete checkpoint, mid-training."""

    def watch() -> None:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and not killed:
            ckpt = rdir / "checkpoints" / "checkpoint-1" / "trainer_state.json"
            running = rdir / "RUNNING.json"
            if ckpt.is_file() and running.is_file():
                pid = json.loads(running.read_text())["pid"]
                os.kill(pid, signal.SIGKILL)
                killed["pid"] = pid
                killed["done_before_kill"] = (rdir / "DONE.json").is_file()
                return
            time.sleep(0.02)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_ray_grid_with_a_killed_worker_resumes_to_the_sequential_results(
    root, tmp_path, sequential, own_cache, capsys, monkeypatch
):
    pytest.importorskip("ray")
    # Ray's memory monitor kills a worker when the whole machine nears full memory, whoever
    # uses it (a shared CI runner): only our kill may end a run here.
    monkeypatch.setenv("RAY_memory_monitor_refresh_ms", "0")
    out = tmp_path / "runs"
    cfg = write_grid(root, out, "launcher: ray, workers: 2, cpus_per_run: 1")
    killed: dict = {}
    watcher = kill_when_checkpointed(out / VICTIM, killed)
    assert main(["run", "--config", str(cfg)]) == 2  # one run failed: reported, others went on
    watcher.join(timeout=1)
    assert killed and not killed["done_before_kill"]  # killed mid-run
    err = capsys.readouterr().err
    assert "1 job(s) of the grid failed" in err and str(out / VICTIM / "run.log") in err
    failed = json.loads((out / VICTIM / "FAILED.json").read_text())
    assert failed["log"] == str(out / VICTIM / "run.log") and failed["tail"]
    assert not (out / VICTIM / "DONE.json").exists()
    assert (out / VICTIM / "checkpoints" / "checkpoint-1").is_dir()
    assert sorted(results(out)) == sorted(set(sequential) - {VICTIM})

    assert main(["run", "--config", str(cfg)]) == 0  # the re-launch runs only the killed one
    log = capsys.readouterr().out
    assert "3 run(s) finished earlier, skipped" in log
    attempts = (out / VICTIM / "run.log").read_text().split(f"=== run {VICTIM}")
    assert len(attempts) == 3  # (before the first), the killed attempt, the resumed one
    assert "step 8/8" in attempts[2] and "step 1/8" not in attempts[2]  # went on, not restarted
    assert not (out / VICTIM / "FAILED.json").exists()
    assert results(out) == sequential
    with sqlite3.connect(out / "results.db") as con:
        rows = con.execute("SELECT run FROM results WHERE stage = 'final'").fetchall()
    assert sorted(r[0] for r in rows) == sorted(sequential)


def test_submitit_local_executor_runs_the_grid(root, tmp_path, sequential, own_cache):
    pytest.importorskip("submitit")
    out = tmp_path / "runs"
    cfg = write_grid(root, out, "launcher: slurm, workers: 2, slurm: {cluster: local}")
    assert main(["run", "--config", str(cfg)]) == 0
    assert results(out) == sequential
    status = json.loads((out / "_grid" / "status.json").read_text())
    assert status["done"] == 4 and status["failed"] == [] and status["running"] == []


def test_local_pool_reports_a_failed_run_and_finishes_the_others(root, tmp_path, own_cache, capsys):
    out = tmp_path / "runs"
    # AltPO without method.alternates fails inside its run; GA+GD must still finish
    cfg = write_grid(root, out, "launcher: local, workers: 2")
    cfg.write_text(
        cfg.read_text().replace(
            "[GA+GD, IDK+AP], learning_rates: [1.0e-3, 5.0e-4]", "[GA+GD, AltPO]"
        )
    )
    assert main(["run", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    bad = out / "fictitious-bench-forget10-AltPO-lr0.001-s0"
    assert f"1 job(s) of the grid failed: {bad.name} ({bad / 'run.log'})" in err
    assert "alternates" in (bad / "run.log").read_text()
    assert json.loads((bad / "FAILED.json").read_text())["reason"] == "exit code 1"
    assert list(results(out)) == ["fictitious-bench-forget10-GA+GD-lr0.001-s0"]
    running = json.loads((out / "_grid").joinpath("status.json").read_text())
    assert running["failed"] == [bad.name]
