"""``unlearn eval`` over two CPU processes equals the one-process evaluation."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from unlearnkit.cli import main
from unlearnkit.data.synth import generate_synthetic
from unlearnkit.utils import read_jsonl

SRC = Path(__file__).resolve().parents[2] / "src"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _close(a, b, path: str) -> None:
    """Equal structure; numbers within 1e-5 (different batch compositions round differently)."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            _close(a[k], b[k], f"{path}/{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _close(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, (int, float)):
        assert b == pytest.approx(a, rel=1e-5, abs=1e-5), path
    else:
        assert a == b, path


def test_two_processes_equal_one_process(tiny_model_dir: Path, tmp_path: Path) -> None:
    bench = tmp_path / "synth"
    generate_synthetic(bench, n_authors=12, questions_per_author=4, seed=0, n_holdout=2)
    args = ["eval", "--model", str(tiny_model_dir), "--benchmark", str(bench), "--split",
            "forget10", "--no-cache", "--quiet", "eval.ds_size=5", "eval.max_new_tokens=6",
            "eval.batch_size=2", "eval.nli_model=null"]  # fmt: skip
    one, two = tmp_path / "one", tmp_path / "two"
    assert main([*args, "--out", str(one)]) == 0
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}  # fmt: skip
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes",
           "2", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--main_process_port", str(_free_port()), "-m", "unlearnkit",
           *args, "--out", str(two)]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    s1 = json.loads((one / "summary.json").read_text())
    s2 = json.loads((two / "summary.json").read_text())
    assert s2["processes"] == 2
    assert s1["n_items"] == s2["n_items"] and s1["n_items"]["forget"] == 4
    _close(s1["splits"], s2["splits"], "splits")
    _close(s1["aggregates"], s2["aggregates"], "aggregates")
    assert s1["missing"] == s2["missing"] and s1["privacy"] == s2["privacy"]
    for split in ("forget", "retain", "real_authors", "world_facts", "holdout"):
        r1, r2 = read_jsonl(one / f"{split}.jsonl"), read_jsonl(two / f"{split}.jsonl")
        _close(r1, r2, split)  # same items, same order, same generations and per-item values
