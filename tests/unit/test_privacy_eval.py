"""Memorization and membership-inference metrics wired into the runner, on the tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from author_items import author_item

from unlearnkit.config import EvalConfig
from unlearnkit.data.collator import pad_batch
from unlearnkit.data.formatting import IGNORE_INDEX, PromptFormatter
from unlearnkit.data.records import QAItem
from unlearnkit.eval import runner
from unlearnkit.eval.scoring import score_split
from unlearnkit.eval.token_stats import answer_grad_norms, answer_token_stats
from unlearnkit.models.tiny import tiny_model
from unlearnkit.utils import read_jsonl

torch.set_num_threads(1)


def item(i: int) -> QAItem:
    return author_item(i, original=True)


FORGET = [item(i) for i in range(4)]
HOLDOUT = [item(40 + i) for i in range(4)]


def cfg(**kw) -> EvalConfig:
    base = dict(ds_size=None, batch_size=3, max_new_tokens=4, nli_model=None, use_cache=False)
    return EvalConfig(**{**base, **kw})


@pytest.fixture()
def tiny():
    model, tok = tiny_model(seed=0)
    model.eval()
    return model, tok, PromptFormatter(tok)


def overfit(model, fmt: PromptFormatter, items: list[QAItem], steps: int = 40) -> None:
    """A few full-batch Adam steps on ``items``: they become training members."""
    batch = pad_batch([fmt.encode(it.question, it.answer) for it in items], pad_id=0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        model(**batch).loss.backward()
        opt.step()
    model.eval()


def test_token_statistics_agree_with_the_scoring_path(tiny) -> None:
    model, tok, fmt = tiny
    items = FORGET + HOLDOUT
    questions, answers = [it.question for it in items], [it.answer for it in items]
    stats = answer_token_stats(model, fmt, questions, answers, batch_size=3, pad_id=0)
    for shared in (True, False):
        nll = score_split(model, fmt, questions, answers, None, None, batch_size=2, pad_id=0,
                          progress=False, shared=shared)["answer"]  # fmt: skip
        # Two float32 paths over different paddings: a few ulps of a log-softmax (~1e-6) apart.
        np.testing.assert_allclose([t.mean_nll for t in stats], nll, rtol=0, atol=1e-5)
    # Hits, mean and variance of one item, by hand from a float64 forward pass of it alone.
    feat = fmt.encode(questions[1], answers[1])
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([feat["input_ids"]])).logits[0].double()
    labels = torch.tensor(feat["labels"])
    pos = (labels[1:] != IGNORE_INDEX).nonzero().squeeze(1)  # predicting positions
    logp = torch.log_softmax(logits[pos], dim=-1)  # (A, V)
    target = labels[1:][pos]
    t = stats[1]
    np.testing.assert_allclose(t.logp, logp.gather(1, target[:, None]).squeeze(1), atol=1e-5)
    assert (t.greedy_hit == (logp.argmax(-1) == target).numpy()).all()
    mu = (logp.exp() * logp).sum(-1)
    np.testing.assert_allclose(t.mean_logp, mu, atol=1e-5)
    np.testing.assert_allclose(t.var_logp, (logp.exp() * logp**2).sum(-1) - mu**2, atol=1e-4)


def test_grad_norms_by_hand_and_training_gradients_untouched(tiny) -> None:
    model, tok, fmt = tiny
    for p in model.parameters():
        p.grad = torch.full_like(p, 3.0)  # a training run's accumulated gradients
    with torch.no_grad():  # as from a training callback: the gradients are still taken
        norms = answer_grad_norms(model, fmt, [FORGET[0].question], [FORGET[0].answer], pad_id=0)
    assert all((p.grad == 3.0).all() for p in model.parameters())
    model.zero_grad(set_to_none=True)
    feat = fmt.encode(FORGET[0].question, FORGET[0].answer)
    labels = list(feat["labels"])
    assert labels[-1] == tok.eos_token_id  # the answer's final EOS ...
    feat["labels"] = labels[:-1] + [-100]  # ... is left out of GradNorm's mean NLL
    out = model(**{k: torch.tensor([v]) for k, v in feat.items()})  # loss = mean answer NLL
    out.loss.backward()
    expected = np.mean([p.grad.norm().item() for p in model.parameters() if p.grad is not None])
    assert norms[0] == pytest.approx(expected, rel=1e-5)
    model.zero_grad(set_to_none=True)
    feat["labels"] = labels  # with the EOS the statistic differs
    model(**{k: torch.tensor([v]) for k, v in feat.items()}).loss.backward()
    with_eos = np.mean([p.grad.norm().item() for p in model.parameters() if p.grad is not None])
    assert abs(norms[0] - with_eos) > 1e-3 * with_eos


def test_members_with_lower_loss_give_auc_above_one_half(tiny, tmp_path: Path) -> None:
    """End to end: the tiny model fine-tuned on the forget items (members), never on the holdout.

    Its pre-training state serves as the retain model (it never saw the forget set either)."""
    model, tok, fmt = tiny
    sets = {"forget": FORGET, "retain": [item(20 + i) for i in range(2)], "holdout": HOLDOUT}
    retain = runner.evaluate(model, tok, sets, cfg(), tmp_path / "retain", fmt, progress=False)
    overfit(model, fmt, FORGET)
    summary = runner.evaluate(
        model, tok, sets, cfg(retain_eval=str(tmp_path / "retain")), tmp_path / "target", fmt,
        progress=False,
    )  # fmt: skip
    agg = summary["aggregates"]
    for attack in ("mia_loss", "mia_zlib", "mia_min_k", "mia_min_k_plus_plus", "mia_reference",
                   "mia_gradnorm"):  # fmt: skip
        assert agg[attack] > 0.5, attack
    assert agg["mia_loss"] == 1.0  # members' loss is far below every non-member's
    # Privacy leakage against the retain model's own Min-K% AUC, said in the summary.
    auc_retain = retain["aggregates"]["mia_min_k"]
    assert summary["privacy"]["auc_retain"] == auc_retain
    expected = ((1 - agg["mia_min_k"]) - (1 - auc_retain)) / (1 - auc_retain) * 100
    assert agg["privacy_leakage"] == pytest.approx(expected)
    assert agg["privacy_leakage"] < 0  # the forget set looks learned
    assert "mia_reference" in retain["missing"] and "mia_reference" not in summary["missing"]
    assert "retain model evaluation" in summary["privacy"]["auc_retain_source"]
    assert "no retain model evaluation" in retain["privacy"]["auc_retain_source"]
    # Memorization rose on the forget set; per-item values in forget.jsonl match the split's.
    forget = summary["splits"]["forget"]
    assert forget["exact_memorization"] > retain["splits"]["forget"]["exact_memorization"]
    recs = read_jsonl(tmp_path / "target" / "forget.jsonl")
    for name in ("exact_memorization", "extraction_strength"):
        assert forget[name] == pytest.approx(np.mean([r[name] for r in recs]))
        assert name not in summary["splits"]["retain"]
    holdout = read_jsonl(tmp_path / "target" / "holdout.jsonl")
    assert [r["question"] for r in holdout] == [it.question for it in HOLDOUT]
    member = [r["mia_loss_score"] for r in recs]
    assert min(member) > max(r["mia_loss_score"] for r in holdout)
    # Both Model Utilities are named; the 9-value one is None without world facts.
    assert "model_utility" in agg and agg["model_utility_open_unlearning"] is None
    assert agg["skipped"]["model_utility_open_unlearning"] == ["real_authors/*", "world_facts/*"]


def test_gradnorm_can_be_turned_off(tiny, tmp_path: Path) -> None:
    model, tok, fmt = tiny
    sets = {"forget": FORGET[:2], "retain": HOLDOUT[2:], "holdout": HOLDOUT[:2]}
    summary = runner.evaluate(model, tok, sets, cfg(mia_gradnorm=False), tmp_path, fmt,
                              progress=False)  # fmt: skip
    assert summary["aggregates"]["mia_gradnorm"] is None
    assert "eval.mia_gradnorm is false" in summary["missing"]["mia_gradnorm"]
    assert summary["aggregates"]["mia_loss"] is not None


def test_without_holdout_the_attacks_are_missing_with_the_reason(tiny, tmp_path: Path) -> None:
    model, tok, fmt = tiny
    sets = {"forget": FORGET[:2], "retain": HOLDOUT[:2]}
    summary = runner.evaluate(model, tok, sets, cfg(), tmp_path, fmt, progress=False)
    assert summary["aggregates"]["mia_loss"] is None
    assert "no holdout split" in summary["missing"]["mia_loss"]
    assert "exact_memorization" in summary["splits"]["forget"]
    assert not (tmp_path / "holdout.jsonl").exists()


def test_cached_result_keeps_the_holdout_records(tiny, tmp_path: Path, monkeypatch) -> None:
    model, tok, fmt = tiny
    monkeypatch.setenv("UNLEARNKIT_CACHE", str(tmp_path / "cache"))
    sets = {"forget": FORGET[:2], "retain": HOLDOUT[2:], "holdout": HOLDOUT[:2]}
    first = runner.evaluate(model, tok, sets, cfg(use_cache=True), tmp_path / "a", fmt,
                            progress=False)  # fmt: skip
    again = runner.evaluate(model, tok, sets, cfg(use_cache=True), tmp_path / "b", fmt,
                            progress=False)  # fmt: skip
    assert again["cache_key"] == first["cache_key"]
    assert read_jsonl(tmp_path / "b" / "holdout.jsonl") == read_jsonl(
        tmp_path / "a" / "holdout.jsonl"
    )
    other = runner.evaluate(model, tok, {**sets, "holdout": HOLDOUT[:1]}, cfg(use_cache=True),
                            tmp_path / "c", fmt, progress=False)  # fmt: skip
    assert other["cache_key"] != first["cache_key"]
    assert json.loads((tmp_path / "c" / "summary.json").read_text())["privacy"]["non_members"] == 1
