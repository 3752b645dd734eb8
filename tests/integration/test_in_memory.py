"""Training hands its model over in memory: evaluation and attacks never load it again.

``unlearn`` saves the model once and returns it (:class:`~unlearnkit.train.common.Trained`) as a
fresh load of its folder would be; the scenarios evaluate and attack that object.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from unlearnkit.cli import main
from unlearnkit.config import RunConfig
from unlearnkit.data.splits import TofuBenchmark
from unlearnkit.data.synth import generate_synthetic
from unlearnkit.models.loading import load_model
from unlearnkit.train.common import checkpointing
from unlearnkit.train.unlearn import unlearn

FAST = [
    "train.max_steps=2",
    "train.batch_size=2",
    "train.per_device_batch_size=2",
    "eval.ds_size=3",
    "eval.max_new_tokens=4",
    "eval.nli_model=null",
]


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    generate_synthetic(root, n_authors=10, questions_per_author=3, seed=1, n_tasks=3)
    return root


@pytest.mark.parametrize("lora", [False, True])
def test_unlearn_returns_the_saved_model_as_a_fresh_load_would_be(
    tmp_path, synth, tiny_model_dir, lora
):
    cfg = RunConfig()
    cfg.method.name = "GA+GD"
    cfg.train.max_steps, cfg.train.batch_size, cfg.train.per_device_batch_size = 2, 2, 2
    cfg.train.gradient_checkpointing = True
    cfg.lora.enabled = lora
    bench = TofuBenchmark(synth)
    forget, retain = bench.forget("forget10", 1), bench.retain("forget10", 1)
    trained = unlearn(cfg, forget, retain, tmp_path / "run", str(tiny_model_dir))
    assert trained.path == tmp_path / "run" / "model" and trained.model is not None
    fresh, _ = load_model(str(trained.path), device="cpu", dtype="float32")
    ours = trained.model.state_dict()
    theirs = fresh.state_dict()
    assert ours.keys() == theirs.keys()  # LoRA merged: a plain model
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs)
    assert not trained.model.training
    assert not checkpointing(trained.model)
    assert all(p.requires_grad for p in trained.model.parameters())
    assert all(p.grad is None for p in trained.model.parameters())
    ids = torch.tensor([[1, 5, 9, 3]])
    with torch.no_grad():
        assert torch.equal(trained.model(ids).logits, fresh.eval()(ids).logits)
    # a finished run hands over only its folder
    again = unlearn(cfg, forget, retain, tmp_path / "run", str(tiny_model_dir), resume=True)
    assert again.path == trained.path and again.model is None


def test_scenario_never_loads_the_unlearned_model_from_its_folder(
    tmp_path, synth, tiny_model_dir, monkeypatch
):
    from unlearnkit.models import loading

    real, loaded = loading.load_model, []

    def counting(name, **kw):
        loaded.append(str(name))
        return real(name, **kw)

    monkeypatch.setattr(loading, "load_model", counting)
    out = tmp_path / "runs"
    argv = ["run", "--scenario", "fictitious", "--model", str(tiny_model_dir), "--benchmark",
            str(synth), "--split", "forget10", "--method", "ME+GD", "--out", str(out),
            "attack.names=[hint]", *FAST]  # fmt: skip
    assert main(argv) == 0
    (rdir,) = [p for p in out.iterdir() if p.is_dir()]
    assert (rdir / "eval" / "final" / "forget.jsonl").is_file()
    assert (rdir / "eval" / "attack-hint" / "forget.jsonl").is_file()
    assert str(tiny_model_dir) in loaded  # the target, evaluated before unlearning
    assert not [p for p in loaded if p.startswith(str(rdir))]  # final eval and attack: in memory
