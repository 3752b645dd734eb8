"""A run killed with SIGKILL at any moment resumes with ``--resume`` to the same weights.

Each test kills a real ``unlearn`` subprocess at a named point (``UNLEARNKIT_TEST_KILL_AT``, see
:func:`unlearnkit.utils.crash_point`): while a checkpoint is being written, while the final
model is being written, while a result file is being written. The resumed run (in this process,
through the CLI) must reach exactly the weights of one uninterrupted run, computed once per
module. Both use one CPU thread, so the same kernels run in the same order: the weights are
compared bit for bit.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import unlearnkit
from unlearnkit.cli import main
from unlearnkit.data.synth import generate_synthetic
from unlearnkit.train.trainer import UnlearnTrainer

KILL_ENV = "UNLEARNKIT_TEST_KILL_AT"  # unlearnkit.utils.crash_point
SRC = Path(unlearnkit.__file__).resolve().parents[1]  # the subprocess runs this same code
TRAIN = [
    "train.max_steps=4",
    "train.batch_size=2",
    "train.per_device_batch_size=1",
    "train.checkpoint_every=1",
    "train.warmup_epochs=0",
    "train.learning_rate=1e-3",
]
EVAL = ["eval.ds_size=2", "eval.max_new_tokens=2", "eval.nli_model=null", "eval.use_cache=false"]


# The killed subprocess runs with OMP_NUM_THREADS=1; the in-process runs match it.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from unlearnkit.models.tiny import save_tiny_model

    root = tmp_path_factory.mktemp("crash")
    save_tiny_model(root / "tiny", seed=0)
    generate_synthetic(root / "bench", n_authors=10, questions_per_author=3, seed=1, n_tasks=3)
    return {"root": root, "model": root / "tiny", "bench": root / "bench"}


def _unlearn_argv(assets: dict[str, Path], out: Path) -> list[str]:
    return ["unlearn", "--model", str(assets["model"]), "--benchmark", str(assets["bench"]),
            "--split", "forget10", "--method", "ME+GD", "--out", str(out), *TRAIN]  # fmt: skip


def _finetune_argv(assets: dict[str, Path], out: Path) -> list[str]:
    return ["finetune", "--model", str(assets["model"]), "--benchmark", str(assets["bench"]),
            "--out", str(out), *TRAIN]  # fmt: skip


def _continual_argv(assets: dict[str, Path], out: Path) -> list[str]:
    return ["run", "--scenario", "continual", "--model", str(assets["model"]), "--benchmark",
            str(assets["bench"]), "--split", "forget05", "--method", "GA+GD", "--out", str(out),
            "tasks=[1,2]", "train.max_steps=3", *TRAIN[1:], *EVAL]  # fmt: skip


def _killed(argv: list[str], point: str) -> subprocess.CompletedProcess:
    """Run the CLI in a subprocess that SIGKILLs itself at ``point``; check that it died so."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", KILL_ENV: point, "TQDM_DISABLE": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, "-m", "unlearnkit", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, proc.stderr[-3000:])
    return proc


@pytest.fixture
def resumed_from(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """The checkpoint each in-process training run resumed from (None: from the start)."""
    seen: list[str | None] = []
    real = UnlearnTrainer.train

    def spy(self, *args, **kwargs):
        seen.append(kwargs.get("resume_from_checkpoint"))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(UnlearnTrainer, "train", spy)
    return seen


def _weights(model_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(model_dir / "model.safetensors"))


def _assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    differ = [k for k in wa if not torch.equal(wa[k], wb[k])]
    assert not differ, f"{len(differ)} tensors differ, e.g. {differ[0]}"


def _leftovers(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob(".tmp-*"))


def _steps(log: Path) -> list[int]:
    return [json.loads(line)["step"] for line in log.read_text().splitlines()]


def _straight(argv: list[str]) -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(argv) == 0
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def straight_unlearn(assets: dict[str, Path]) -> Path:
    """One uninterrupted run, shared by the module's tests; returns its model folder."""
    out = assets["root"] / "straight-unlearn"
    _straight(_unlearn_argv(assets, out))
    return out / "model"


@pytest.fixture(scope="module")
def straight_finetune(assets: dict[str, Path]) -> Path:
    out = assets["root"] / "straight-finetune"
    _straight(_finetune_argv(assets, out))
    return out / "model"


@pytest.mark.parametrize(
    "point, resumes_from",
    [
        ("checkpoint:2", "checkpoint-1"),  # checkpoint-2 half written: weights, no optimizer
        ("final-model:1", "checkpoint-4"),  # every step done, the model folder half written
    ],
)
def test_killed_unlearning_resumes_to_the_same_weights(
    assets, straight_unlearn, tmp_path, resumed_from, point, resumes_from
):
    out = tmp_path / "run"
    _killed(_unlearn_argv(assets, out), point)
    assert not (out / "model").exists()  # nothing half written is visible under its name
    visible = sorted(p.name for p in (out / "checkpoints").iterdir() if p.name[0] != ".")
    assert visible == [resumes_from]
    assert (out / "checkpoints" / resumes_from / "trainer_state.json").is_file()
    assert main(_unlearn_argv(assets, out) + ["--resume"]) == 0
    assert [Path(p).name for p in resumed_from] == [resumes_from]
    _assert_same_weights(out / "model", straight_unlearn)
    assert _steps(out / "train_log.jsonl") == [1, 2, 3, 4]
    assert _leftovers(out) == [] and not (out / "checkpoints").exists()


def test_checkpoint_left_incomplete_by_an_older_version_is_skipped(
    assets, straight_unlearn, tmp_path, resumed_from
):
    """The issue's case: the newest ``checkpoint-N`` is visible with a truncated optimizer.pt
    and no trainer_state.json (an unstaged write, killed). Resume uses the one before and
    removes the broken folder."""
    out = tmp_path / "run"
    assert main(_unlearn_argv(assets, out) + ["train.save_checkpoints=true"]) == 0
    shutil.rmtree(out / "model")
    broken = out / "checkpoints" / "checkpoint-4"
    (broken / "trainer_state.json").unlink()
    (broken / "optimizer.pt").write_bytes((broken / "optimizer.pt").read_bytes()[:99])
    assert main(_unlearn_argv(assets, out) + ["--resume"]) == 0
    assert [p and Path(p).name for p in resumed_from] == [None, "checkpoint-3"]
    _assert_same_weights(out / "model", straight_unlearn)
    assert not broken.exists()


@pytest.mark.slow
def test_killed_finetune_resumes_to_the_same_weights(
    assets, straight_finetune, tmp_path, resumed_from
):
    out = tmp_path / "ft"
    _killed(_finetune_argv(assets, out), "checkpoint:3")
    assert main(_finetune_argv(assets, out) + ["--resume"]) == 0
    assert [Path(p).name for p in resumed_from] == ["checkpoint-2"]
    _assert_same_weights(out / "model", straight_finetune)


@pytest.fixture(scope="module")
def straight_continual(assets: dict[str, Path]) -> Path:
    out = assets["root"] / "straight-continual"
    _straight(_continual_argv(assets, out))
    (rdir,) = [p for p in out.iterdir() if p.is_dir()]
    return rdir


def _db_stages(out: Path) -> list[str]:
    import sqlite3

    with sqlite3.connect(out / "results.db") as con:
        return [r[0] for r in con.execute("SELECT stage FROM results ORDER BY stage")]


@pytest.mark.parametrize(
    "point, resumes_from",
    [
        # task 1 saves checkpoints 1-3; the 5th checkpoint written is task 2's second
        ("checkpoint:5", ["checkpoint-1"]),
        # task 1's evaluation summary (the 2nd written, after the before stage's) half written:
        # task 1's model is reused, task 2 runs
        pytest.param("write:summary.json:2", [None], marks=pytest.mark.slow),
    ],
)
def test_killed_continual_sequence_resumes_the_task_where_it_stopped(
    assets, straight_continual, tmp_path, resumed_from, point, resumes_from
):
    out = tmp_path / "runs"
    _killed(_continual_argv(assets, out), point)
    (rdir,) = [p for p in out.iterdir() if p.is_dir()]
    assert main(_continual_argv(assets, out) + ["--resume"]) == 0
    assert [p and Path(p).name for p in resumed_from] == resumes_from
    _assert_same_weights(rdir / "task2" / "model", straight_continual / "task2" / "model")
    assert json.loads((rdir / "continual_state.json").read_text())["completed"] == [1, 2]
    for task in ("task1", "task2"):
        summary = json.loads((rdir / "eval" / task / "summary.json").read_text())
        expected = json.loads((straight_continual / "eval" / task / "summary.json").read_text())
        assert summary["fingerprint"] == expected["fingerprint"]  # the same weights evaluated
    # one row per stage, as in the uninterrupted run (before, task1, task2): nothing doubled
    assert _db_stages(out) == _db_stages(straight_continual.parent)
    assert _leftovers(rdir) == []


def _said(caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture, tmp: Path) -> str:
    """Everything the run told the user, without the paths (the test's folder names)."""
    out, err = capsys.readouterr()
    return (caplog.text + out + err).replace(str(tmp), "<tmp>").lower()


def test_resume_is_mentioned_only_when_asked_for(assets, tmp_path, caplog, capsys):
    """A fresh run says nothing about resuming; ``--resume`` with nothing to resume says so
    once."""
    argv = _unlearn_argv(assets, tmp_path / "fresh") + ["train.max_steps=1"]
    with caplog.at_level(logging.INFO):
        assert main(argv) == 0
    assert "resum" not in _said(caplog, capsys, tmp_path)
    caplog.clear()
    argv = _unlearn_argv(assets, tmp_path / "asked") + ["train.max_steps=1", "--resume"]
    with caplog.at_level(logging.INFO):
        assert main(argv) == 0
    said = _said(caplog, capsys, tmp_path)
    lines = [line for line in said.splitlines() if "resum" in line]
    assert len(lines) == 1 and "--resume: nothing to resume" in lines[0], said


def test_fresh_continual_run_does_not_talk_about_resuming(assets, tmp_path, caplog, capsys):
    argv = _continual_argv(assets, tmp_path / "c") + ["train.max_steps=1", "eval.splits=[forget]"]
    argv[argv.index("tasks=[1,2]")] = "tasks=[1]"
    with caplog.at_level(logging.INFO):
        assert main(argv) == 0
    assert "resum" not in _said(caplog, capsys, tmp_path)
    shutil.rmtree(tmp_path / "c")
    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert main(argv + ["--resume"]) == 0
    said = _said(caplog, capsys, tmp_path)
    lines = [line for line in said.splitlines() if "resum" in line]
    assert len(lines) == 1 and "--resume: nothing to resume" in lines[0], said
