"""The registry's metrics beyond the paper's six, against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from unlearnkit.eval.metrics import (
    METRIC_NAMES,
    METRIC_SPECS,
    AnswerTokens,
    exact_memorization,
    extraction_strength,
    metric_label,
    mia_auc,
    model_utility_open_unlearning,
    privacy_leakage,
)
from unlearnkit.eval.metrics.mia import (
    gradnorm_score,
    loss_score,
    min_k_plus_plus_score,
    min_k_score,
    reference_score,
    zlib_score,
)
from unlearnkit.eval.metrics.rouge import rouge1_recall_batch
from unlearnkit.registry import METRICS


def tokens(logp, hits=None, mu=None, var=None, text="abc", **kw) -> AnswerTokens:
    n = len(logp)
    return AnswerTokens(
        text=text,
        logp=np.asarray(logp, dtype=np.float64),
        greedy_hit=np.asarray(hits if hits is not None else [True] * n),
        mean_logp=np.asarray(mu if mu is not None else [0.0] * n, dtype=np.float64),
        var_logp=np.asarray(var if var is not None else [1.0] * n, dtype=np.float64),
        **kw,
    )


def test_rouge1_recall_hand_computed() -> None:
    # ref unigrams: the, capital, of, france, is, paris (6); gen shares paris, is, the, capital
    got = rouge1_recall_batch(["Paris is the capital", ""], ["The capital of France is Paris"] * 2)
    assert got == [pytest.approx(4 / 6), 0.0]
    assert rouge1_recall_batch(["books book"], ["Books"]) == [1.0]  # stemmed


# ---------------------------------------------------------------------------------------------
# Memorization


# Each case's last value belongs to the answer's final EOS token, which the field (open-unlearning's
# tokenwise_vocab_logprobs / tokenwise_logprobs) leaves out of EM, ES, Min-K%, Min-K%++ and
# GradNorm: flipping it must not change these metrics.


def test_exact_memorization_hand_computed() -> None:
    # text tokens (1, 0, 1, 1) -> 3/4; the EOS (missed or hit) is not counted
    assert exact_memorization(tokens([0.0] * 5, hits=[1, 0, 1, 1, 0])) == 0.75
    assert exact_memorization(tokens([0.0] * 5, hits=[1, 0, 1, 1, 1])) == 0.75
    assert exact_memorization(tokens([0.0] * 4, hits=[0, 0, 0, 1])) == 0.0
    assert exact_memorization(tokens([0.0], hits=[1])) == 1.0  # EOS only: kept


@pytest.mark.parametrize(
    ("hits", "expected"),
    [
        ([1, 1, 1, 1, 0], 1.0),  # k* = 0: the whole text is predicted (the missed EOS is out)
        ([1, 0, 1, 1, 1], 0.5),  # the rest is exact after the prefix of 2 tokens
        ([0, 1, 1, 0], 2 / 3),  # after the first token
        ([1, 1, 0, 1], 0.0),  # the last text token is wrong: k* = A (open-unlearning: 1/3)
    ],
)
def test_extraction_strength_hand_computed(hits: list[int], expected: float) -> None:
    assert extraction_strength(tokens([0.0] * len(hits), hits=hits)) == pytest.approx(expected)


# ---------------------------------------------------------------------------------------------
# Membership-inference scores and AUC


def test_attack_scores_hand_computed() -> None:
    t = tokens([-1.0, -2.0, -3.0], text="abc", reference_nll=3.0, grad_norm=0.25)
    assert loss_score(t) == pytest.approx(-2.0)  # Lbar = 2: the EOS (-3) counts for LOSS
    assert zlib_score(t) == pytest.approx(-2.0 / 11)  # zlib.compress(b"abc") is 11 bytes
    assert reference_score(t) == pytest.approx(1.0)  # -(2 - 3)
    assert gradnorm_score(t) == -0.25
    assert reference_score(tokens([-1.0])) is None and gradnorm_score(tokens([-1.0])) is None


def test_min_k_takes_the_lowest_40_percent_before_the_eos() -> None:
    # A' = 5 text tokens: floor(0.4 * 5) = 2 lowest of (-1, -5, -2, -4, -3) -> mean(-5, -4);
    # the EOS's -9 would be the lowest if it counted
    assert min_k_score(tokens([-1.0, -5.0, -2.0, -4.0, -3.0, -9.0])) == pytest.approx(-4.5)
    # A' = 2: floor(0.8) = 0, at least one token -> the lowest
    assert min_k_score(tokens([-1.0, -3.0, -9.0])) == pytest.approx(-3.0)
    assert min_k_score(tokens([-9.0])) == pytest.approx(-9.0)  # EOS only: kept


def test_min_k_plus_plus_standardises_by_the_models_distribution() -> None:
    # z = ((-1 + 0.5) / 0.5, (-2 + 1) / 2) = (-1, -0.5); A' = 2 -> the lowest, -1; the EOS's
    # z = (-9 - 0) / 1 = -9 is left out
    t = tokens([-1.0, -2.0, -9.0], mu=[-0.5, -1.0, 0.0], var=[0.25, 4.0, 1.0])
    assert min_k_plus_plus_score(t) == pytest.approx(-1.0)
    # sigma = 0 (a one-token distribution): z = 0 rather than 0/0
    t = tokens([0.0, -2.0, -9.0], mu=[0.0, -1.0, 0.0], var=[0.0, 4.0, 1.0])
    assert min_k_plus_plus_score(t) == pytest.approx(-0.5)


def test_mia_auc_hand_computed() -> None:
    # member/non-member pairs: 3>1, 3>2.5, 2>1, 2<2.5 -> 3 of 4
    assert mia_auc([3.0, 2.0], [1.0, 2.5]) == pytest.approx(0.75)
    assert mia_auc([1.0], [1.0]) == pytest.approx(0.5)  # ties count one half
    with pytest.raises(ValueError, match="members and non-members"):
        mia_auc([1.0], [])


def test_every_attack_ranks_members_with_lower_loss_above_non_members() -> None:
    """Members: higher log-probs, more confident distributions, smaller gradients."""
    members = [
        tokens([-0.1 - 0.01 * i] * 5, mu=[-0.2] * 5, var=[0.1] * 5, text="a" * (5 + i),
               reference_nll=1.0, grad_norm=0.1 + 0.01 * i)
        for i in range(4)
    ]  # fmt: skip
    nonmembers = [
        tokens([-2.0 - 0.01 * i] * 5, mu=[-0.2] * 5, var=[0.1] * 5, text="a" * (5 + i),
               reference_nll=1.0, grad_norm=1.0 + 0.01 * i)
        for i in range(4)
    ]  # fmt: skip
    attacks = [s for s in METRIC_SPECS.values() if s.kind == "mia"]
    assert {s.name for s in attacks} == {
        "mia_loss", "mia_zlib", "mia_min_k", "mia_min_k_plus_plus", "mia_reference", "mia_gradnorm"
    }  # fmt: skip
    for spec in attacks:
        auc = mia_auc([spec.compute(t) for t in members], [spec.compute(t) for t in nonmembers])
        assert auc == 1.0, spec.name
        swapped = mia_auc([spec.compute(t) for t in nonmembers], [spec.compute(t) for t in members])
        assert swapped == 0.0, spec.name


# ---------------------------------------------------------------------------------------------
# Privacy leakage and the two Model Utilities


def test_privacy_leakage_hand_computed() -> None:
    assert privacy_leakage(0.8, 0.5) == pytest.approx(-60.0)  # (0.2 - 0.5) / 0.5 * 100
    assert privacy_leakage(0.5, 0.5) == pytest.approx(0.0)
    assert privacy_leakage(0.3, 0.6) == pytest.approx(75.0)  # (0.7 - 0.4) / 0.4 * 100
    with pytest.raises(ValueError, match="AUC_retain = 1"):
        privacy_leakage(0.5, 1.0)
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        privacy_leakage(1.5, 0.5)


def test_open_unlearning_utility_is_the_harmonic_mean_of_nine_values() -> None:
    split = {m: 1.0 for m in METRIC_NAMES}
    values = {
        "forget": dict.fromkeys(METRIC_NAMES, 0.01),  # never counts
        "retain": {**split, "probability": 0.5, "token_entropy": 0.01},  # TE does not count
        "real_authors": {**split, "rouge_l": 0.25},
        "world_facts": {**split, "cosine_similarity": None},  # CS does not count
    }
    value, used, skipped = model_utility_open_unlearning(values)
    assert value == pytest.approx(9 / (2 + 4 + 7))  # 1/0.5 + 1/0.25 + 7 * 1/1
    assert len(used) == 9 and skipped == []
    del values["world_facts"]["truth_ratio"]
    value, _, skipped = model_utility_open_unlearning(values)
    assert value is None and skipped == ["world_facts/truth_ratio"]


# ---------------------------------------------------------------------------------------------
# Registry


def test_every_metric_registers_once_with_label_direction_and_needs() -> None:
    for name, spec in METRIC_SPECS.items():
        assert METRICS.get(name) is spec
        assert spec.label and spec.needs and spec.description
        assert metric_label(name) == spec.label
        # every metric, the paper's six included, is computed from its entry
        assert spec.compute is not None, name
    assert metric_label("not_a_metric") == "not_a_metric"
    labels = [s.label for s in METRIC_SPECS.values()]
    assert len(labels) == len(set(labels))
