"""The ``open-unlearning`` evaluation profile: open-unlearning's rules on tiny hand-built cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from author_items import author_item

from unlearnkit.config import EvalConfig, RunConfig
from unlearnkit.data.formatting import PromptFormatter
from unlearnkit.data.records import QAItem
from unlearnkit.eval import runner
from unlearnkit.eval.engine import OU_NO_LENGTH_CAP, EngineSettings
from unlearnkit.eval.generation import generate_answers
from unlearnkit.eval.metrics import AnswerTokens, extraction_strength
from unlearnkit.eval.token_stats import answer_token_stats
from unlearnkit.models.tiny import tiny_model
from unlearnkit.profiles import profile_defaults
from unlearnkit.utils import read_jsonl

torch.set_num_threads(1)


def item(i: int) -> QAItem:
    return author_item(i)


@pytest.fixture()
def tiny_pad_eos():
    """The tiny model with pad = EOS, as SmolLM2 ships it: the chat template's own EOS
    separators then look like padding to open-unlearning's collator."""
    model, tok = tiny_model(seed=0)
    model.eval()
    tok.pad_token = tok.eos_token
    return model, tok, PromptFormatter(tok)


def test_extraction_strength_follows_open_unlearnings_loop() -> None:
    def tokens(hits: list[int], rule: str) -> AnswerTokens:
        n = len(hits)
        z = np.zeros(n)
        return AnswerTokens("a", z, np.asarray(hits, dtype=bool), z, z + 1, rule=rule)

    # text tokens (1, 1, 0), then the EOS: the last text token is missed
    assert extraction_strength(tokens([1, 1, 0, 1], "default")) == 0.0  # k* = A = 3
    # open-unlearning's `for k in range(valid_len)` stops at k = A - 1 = 2: 1 - 2/3
    assert extraction_strength(tokens([1, 1, 0, 1], "open-unlearning")) == pytest.approx(1 / 3)
    # elsewhere the two agree: the rest is exact after 2 tokens
    for rule in ("default", "open-unlearning"):
        assert extraction_strength(tokens([1, 0, 1, 1, 0], rule)) == pytest.approx(0.5)


def test_token_stats_use_joint_tokenization_and_the_collators_mask(tiny_pad_eos) -> None:
    model, tok, fmt = tiny_pad_eos
    eos = tok.eos_token_id
    q, a = item(3).question, item(3).answer
    ids, n_question = fmt.encode_joint(q, a)
    assert eos in ids[:n_question]  # the chat template's separator: masked by the collator
    mask = [int(t != eos) for t in ids]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids]), attention_mask=torch.tensor([mask])).logits[
            0
        ]  # (T, V)
    logp = torch.log_softmax(logits.double(), -1)[n_question - 1 : -1]  # predicts ids[nq:]
    expected = logp.gather(1, torch.tensor(ids[n_question:])[:, None]).squeeze(1).numpy()
    (ou,) = answer_token_stats(model, fmt, [q], [a], batch_size=2, pad_id=eos, open_unlearning=True)
    np.testing.assert_allclose(ou.logp, expected, atol=1e-5)
    assert ou.rule == "open-unlearning"
    (ours,) = answer_token_stats(model, fmt, [q], [a], batch_size=2, pad_id=eos)
    assert ours.rule == "default"
    assert np.abs(ours.logp[: len(expected)] - expected).max() > 1e-3  # the mask matters


def test_generation_with_the_collators_mask_is_batch_invariant(tiny_pad_eos) -> None:
    """Left padding and the in-prompt masked separators: each answer is the same in a batch
    of two prompts of different lengths as alone (positions follow the mask)."""
    model, tok, fmt = tiny_pad_eos
    qs = [item(1).question, "Who is the author whose books are set in a small river town?"]
    kw = dict(max_new_tokens=6, generation_max_length=OU_NO_LENGTH_CAP, pad_id=tok.eos_token_id)
    together = generate_answers(model, fmt, qs, batch_size=2, progress=False, mask_pad=True, **kw)
    alone = [
        generate_answers(model, fmt, [q], batch_size=1, progress=False, mask_pad=True, **kw)[0]
        for q in qs
    ]
    assert [g.token_ids for g in together] == [g.token_ids for g in alone]


def test_forget_truth_ratio_in_open_unlearnings_direction(tiny_pad_eos, tmp_path: Path) -> None:
    model, tok, fmt = tiny_pad_eos
    sets = {"forget": [item(0), item(1)], "retain": [item(20)], "holdout": [item(40), item(41)]}
    cfg = EvalConfig(ds_size=None, batch_size=3, max_new_tokens=4, nli_model=None, use_cache=False)
    summary = runner.evaluate(
        model, tok, sets, cfg, tmp_path, fmt, progress=False, profile="open-unlearning"
    )
    assert summary["profile"] == "open-unlearning"
    for rec in read_jsonl(tmp_path / "forget.jsonl"):
        s = 1 / rec["truth_ratio_raw"]  # open-unlearning's p(perturbed) / p(paraphrased)
        assert rec["truth_ratio"] == pytest.approx(min(s, 1 / s))  # closer_to_1_better
    for rec in read_jsonl(tmp_path / "retain.jsonl"):
        assert rec["truth_ratio"] == pytest.approx(max(0.0, 1 - 1 / rec["truth_ratio_raw"]))
    assert summary["aggregates"]["mia_min_k"] is not None


def test_the_profile_is_known_and_generates_without_a_prompt_length_cap() -> None:
    assert RunConfig(profile="open-unlearning").profile == "open-unlearning"
    assert profile_defaults("open-unlearning", "tofu", "fictitious", "GA") == {}
    settings = EngineSettings.from_config(EvalConfig(), "open-unlearning")
    assert settings.open_unlearning and settings.joint and not settings.paper
    assert settings.generation_max_length == OU_NO_LENGTH_CAP


def test_loss_attacks_read_open_unlearnings_float32_reduction(tiny_pad_eos) -> None:
    """open-unlearning's LOSS, ZLib and Reference attacks read ``evaluate_probability``'s
    avg_loss: float32 cross-entropy over the transposed logits, summed, divided by the count.
    Under the profile the token statistics carry that value; the default keeps the float64 mean
    of the per-token log-probabilities."""
    import torch.nn.functional as F

    from unlearnkit.eval.metrics.mia import loss_score

    model, tok, fmt = tiny_pad_eos
    eos = tok.eos_token_id
    qs, answers = [item(i).question for i in (1, 2)], [item(i).answer for i in (1, 2)]
    ou = answer_token_stats(model, fmt, qs, answers, batch_size=2, pad_id=eos, open_unlearning=True)
    for q, a, stats in zip(qs, answers, ou, strict=True):
        ids, n_question = fmt.encode_joint(q, a)
        labels = torch.tensor([[-100] * n_question + ids[n_question:]])
        mask = torch.tensor([[int(t != eos) for t in ids]])
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids]), attention_mask=mask).logits
        ce = F.cross_entropy(
            logits[:, :-1].float().transpose(-1, -2), labels[:, 1:], ignore_index=-100,
            reduction="none",
        )  # fmt: skip
        avg_loss = float(ce.sum() / (labels[:, 1:] != -100).sum())
        assert stats.reduced_nll == pytest.approx(avg_loss, abs=2e-6)
        assert stats.mean_nll == stats.reduced_nll
        assert loss_score(stats) == -stats.reduced_nll
        assert stats.field_view().reduced_nll is None  # the view is not the whole answer
    default = answer_token_stats(model, fmt, qs, answers, batch_size=2, pad_id=eos)
    for stats in default:
        assert stats.reduced_nll is None
        assert stats.mean_nll == float(-np.mean(stats.logp))


def test_truth_ratio_carries_open_unlearnings_epsilon_hand_computed() -> None:
    from unlearnkit.eval.metrics import (
        truth_ratio_per_item,
        truth_ratio_per_item_open_unlearning,
        truth_ratio_scores_open_unlearning,
    )

    # p(base) = e^-11 (1.67e-5), p(pert) = e^-6: s = e^-6 / (e^-11 + 1e-10) by hand
    base, pert = [11.0], [[5.0, 6.0, 7.0]]
    s = np.exp(-6.0) / (np.exp(-11.0) + 1e-10)
    (r,) = truth_ratio_per_item_open_unlearning(base, pert)
    assert 1 / r == pytest.approx(s, rel=1e-12)
    (ours,) = truth_ratio_per_item(base, pert)  # exp(6 - 11) without the 1e-10
    assert abs(1 / ours - s) / s == pytest.approx(1e-10 / np.exp(-11.0), rel=1e-6)  # 6.0e-6
    assert truth_ratio_scores_open_unlearning([r], forget=False) == [max(0.0, 1 - s)]
    (f,) = truth_ratio_scores_open_unlearning([r], forget=True)
    assert f == pytest.approx(min(s, 1 / (s + 1e-10)), rel=1e-12)  # closer_to_1_better
