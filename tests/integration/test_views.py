"""A data view is one declared record: registering a toy view and a toy part that reads it is all
a new method needs (dataset, collator, reference cache, step context and trainer read it)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from unlearnkit.config import MethodConfig
from unlearnkit.data.formatting import PromptFormatter
from unlearnkit.data.records import QAItem
from unlearnkit.losses import npo_loss
from unlearnkit.methods import (
    VIEWS,
    Part,
    StepContext,
    UnlearningCollator,
    UnlearningDataset,
    View,
    attach_reference_nlls,
    build_method,
    compute_reference_nlls,
    register_view,
    unregister_view,
)
from unlearnkit.methods.data import cyclic_permutation
from unlearnkit.models.tiny import tiny_model
from unlearnkit.registry import FORGET_OBJECTIVES
from unlearnkit.settings import load_config
from unlearnkit.train import run_unlearning

FORGET = [QAItem(f"Who wrote book {i}?", f"Ann {i} did.") for i in range(8)]
RETAIN = [QAItem(f"Where is city {i}?", f"On river {i}.") for i in range(12)]
REFUSALS = ["I don't know.", "No idea.", "I cannot answer that."]


def _echo_pair(dataset: UnlearningDataset, i: int) -> tuple[str, str]:
    """The toy view: the forget question answered by the question itself."""
    question = dataset.forget[i].question
    return question, question


def _echo_npo(ctx: StepContext) -> torch.Tensor:
    return npo_loss(ctx.nll("forget_echo"), ctx.ref_nll("forget_echo"), ctx.beta)


@pytest.fixture
def echo():
    """Register the view and a part reading it (with cached reference NLLs), then remove both."""
    register_view(View("forget_echo", "forget", pair=_echo_pair, description="forget Q + itself"))
    part = Part(
        "ECHO",
        fn=_echo_npo,
        views=("forget_echo",),
        needs_reference=True,
        cached_ref_views=("forget_echo",),
        settings={"beta": 0.1},
    )
    FORGET_OBJECTIVES.add(part.name, part)
    try:
        yield part
    finally:
        FORGET_OBJECTIVES.remove(part.name)
        unregister_view("forget_echo")
    assert "forget_echo" not in VIEWS and "ECHO" not in FORGET_OBJECTIVES


def test_a_registered_view_flows_from_dataset_to_the_step(echo):
    model, tok = tiny_model(seed=0)
    method = build_method(MethodConfig(name="ECHO+GD"), pad_id=int(tok.pad_token_id))
    assert method.views == ("retain", "forget_echo")  # registration order: after the built-ins
    assert method.cached_ref_views == ("forget_echo",) and method.needs_retain
    fmt = PromptFormatter(tok)
    ds = UnlearningDataset(FORGET, RETAIN, [], fmt, method.views)
    assert ds.pair(3, "forget_echo") == (FORGET[3].question, FORGET[3].question)
    assert ds[3]["forget_echo"]["input_ids"] == fmt.encode(*_echo_pair(ds, 3))["input_ids"]
    attach_reference_nlls(
        ds, compute_reference_nlls(model, ds, method.cached_ref_views, pad_id=method.pad_id)
    )
    batch = UnlearningCollator(method.pad_id)([ds[i] for i in range(4)])
    assert set(batch) == {"forget_echo", "retain"}
    assert batch["forget_echo"]["ref_nll"].dtype == torch.float64
    assert batch["forget_echo"]["ref_nll"].shape == (4,)
    _, parts = method.compute(model, batch, None)
    # The reference is the model itself: NPO = (2 / beta) ln 2 exactly at the first step.
    assert parts["forget"].item() == pytest.approx(20 * math.log(2), abs=1e-4)


def test_a_registered_view_trains_end_to_end(echo, tiny_model_dir: Path, tmp_path: Path):
    cfg = load_config(
        None,
        [
            "method.name=ECHO+GD",
            "train.batch_size=4",
            "train.per_device_batch_size=2",
            "train.max_steps=3",
            "train.warmup_epochs=0",
            "train.learning_rate=1e-3",
        ],
    )
    out = run_unlearning(cfg, FORGET, RETAIN, tmp_path / "echo", tiny_model_dir)
    blob = torch.load(tmp_path / "echo" / "ref_nll.pt", weights_only=True)
    assert set(blob["nll"]) == {"forget_echo"} and blob["nll"]["forget_echo"].shape == (8,)
    log = tmp_path / "echo" / "train_log.jsonl"
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert all(math.isfinite(r["loss"]) for r in rows)
    assert rows[0]["loss_forget"] == pytest.approx(20 * math.log(2), abs=1e-3)
    after, before = (
        load_file(str(out / "model.safetensors")),
        load_file(str(tiny_model_dir / "model.safetensors")),
    )
    assert max((after[k].double() - before[k].double()).abs().max().item() for k in after) > 0


def test_view_declarations_are_checked() -> None:
    with pytest.raises(ValueError, match="needs its own salt"):
        View("forget_idk2", "forget", "refusal")
    with pytest.raises(ValueError, match="unknown side"):
        View("x", "both")
    with pytest.raises(ValueError, match="unknown data view 'forget_echo'"):
        Part("P", fn=_echo_npo, views=("forget_echo",))
    with pytest.raises(ValueError, match="only fixed-pairing views can be cached"):
        Part(
            "P", fn=_echo_npo, views=("retain",), needs_reference=True, cached_ref_views=("retain",)
        )
    with pytest.raises(ValueError, match="already registered"):
        register_view(View("forget", "forget"))


def test_builtin_views_keep_the_pairing_of_earlier_runs() -> None:
    """Each view's draw is the stream ``(seed, salt[, epoch])`` earlier runs used."""
    _, tok = tiny_model(seed=0)
    seed, n = 7, len(FORGET)
    ds = UnlearningDataset(
        FORGET, RETAIN, REFUSALS, PromptFormatter(tok), list(VIEWS), seed=seed,
        alternates={f.question: ["x.", "y.", "z."] for f in FORGET},
    )  # fmt: skip
    ds.set_epoch(2)

    def stream(salt: int, *epoch: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence([seed, salt, *epoch]))

    salts = {"forget_idk": 1, "forget_mismatch": 2, "retain": 3, "retain_idk": 4}
    for name, salt in salts.items():
        size = len(REFUSALS) if VIEWS.get(name).answer == "refusal" else len(RETAIN)
        epoch = () if VIEWS.get(name).fixed else (2,)
        expected = cyclic_permutation(n, size, stream(salt, *epoch))
        assert ds.draws[name].tolist() == expected.tolist(), name
    rng = stream(5)
    assert ds.alternates_drawn["forget_alt"] == [
        ["x.", "y.", "z."][rng.integers(3)] for _ in FORGET
    ]
    partner = ds.draws["retain"]
    assert ds.pair(1, "retain_idk") == (
        RETAIN[partner[1]].question,
        REFUSALS[ds.draws["retain_idk"][1]],
    )
