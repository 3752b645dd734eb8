"""The equality checks of issue 23, within one commit: what a refactoring must not change is
compared byte for byte on the tiny model (float32, one thread).

- Training: the same seed saves a byte-identical model; another learning rate does not (so the
  check can fail).
- The hand-over: evaluating the model a training stage returns in memory writes every split's
  JSONL byte-identical to evaluating its saved folder, under the default and the paper profile.
- The harness that compares two commits (``benchmarks/behaviour_check.py``) gives the same
  hashes twice on one commit, so a difference between commits is the change's.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from unlearnkit.config import RunConfig
from unlearnkit.data.splits import TofuBenchmark
from unlearnkit.data.synth import generate_holdout, generate_synthetic
from unlearnkit.scenarios.common import evaluate_model
from unlearnkit.train.unlearn import unlearn


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth-eq")
    generate_synthetic(root, n_authors=10, questions_per_author=3, seed=2)
    generate_holdout(root, 2)
    return root


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _cfg(method: str, seed: int = 0, profile: str = "default") -> RunConfig:
    cfg = RunConfig(profile=profile)
    cfg.method.name = method
    cfg.train.seed = seed
    cfg.train.max_steps, cfg.train.batch_size, cfg.train.per_device_batch_size = 2, 2, 2
    cfg.model.dtype, cfg.model.device = "float32", "cpu"
    cfg.data.max_length = 64
    cfg.eval.ds_size, cfg.eval.max_new_tokens, cfg.eval.nli_model = 4, 6, None
    cfg.eval.use_cache, cfg.eval.threads = False, 1
    return cfg


def _unlearn(cfg: RunConfig, synth: Path, model: Path, out: Path):
    bench = TofuBenchmark(synth)
    forget, retain = bench.forget("forget10", 1), bench.retain("forget10", 1)
    return unlearn(cfg, forget, retain, out, str(model))


@pytest.mark.parametrize("method", ["ME+GD", "NPO+KL"])
def test_the_same_seed_saves_a_byte_identical_model(tmp_path, synth, tiny_model_dir, method):
    cfgs = [_cfg(method), _cfg(method), _cfg(method)]
    cfgs[2].train.learning_rate *= 2
    weights = [
        _sha(_unlearn(cfg, synth, tiny_model_dir, tmp_path / f"{i}").path / "model.safetensors")
        for i, cfg in enumerate(cfgs)
    ]
    assert weights[0] == weights[1]
    assert weights[0] != weights[2]


@pytest.mark.parametrize("profile", ["default", "paper"])
def test_evaluating_the_model_in_memory_writes_what_its_folder_writes(
    tmp_path, synth, tiny_model_dir, profile
):
    cfg = _cfg("GA+GD", profile=profile)
    trained = _unlearn(cfg, synth, tiny_model_dir, tmp_path / "run")
    assert trained.model is not None
    sets = TofuBenchmark(synth).eval_sets("forget10", 1)
    assert "holdout" in sets
    evaluate_model(trained, cfg, sets, tmp_path / "memory", "tofu")
    evaluate_model(str(trained.path), cfg, sets, tmp_path / "folder", "tofu")
    files = sorted(p.name for p in (tmp_path / "memory").glob("*.jsonl"))
    assert len(files) == len(sets) >= 4
    for name in files:
        assert (tmp_path / "memory" / name).read_bytes() == (
            tmp_path / "folder" / name
        ).read_bytes(), name


def test_the_behaviour_harness_repeats_itself_on_one_commit(tmp_path, synth, tiny_model_dir):
    from benchmarks.behaviour_check import eval_records

    first = eval_records(tmp_path / "a", tiny_model_dir, synth)
    second = eval_records(tmp_path / "b", tiny_model_dir, synth)
    assert first == second
    assert {key.split("/")[0] for key in first} == {"default", "paper", "open-unlearning"}
