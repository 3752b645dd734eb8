"""Pure metric functions and aggregates against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from unlearnkit.eval.metrics import (
    METRIC_NAMES,
    METRIC_SPECS,
    MetricSpec,
    aggregate,
    forget_efficacy,
    forget_quality,
    model_utility,
    normalized_probability,
    normalized_probability_per_item,
    probability,
    probability_per_item,
    rouge_l_recall,
    rouge_l_recall_batch,
    token_entropy,
    truth_ratio,
    truth_ratio_per_item,
    truth_ratio_scores,
)
from unlearnkit.registry import METRICS

LN2, LN4, LN16 = math.log(2), math.log(4), math.log(16)

# ---------------------------------------------------------------------------------------------
# ROUGE-L recall


def test_rouge_l_recall_hand_computed() -> None:
    assert rouge_l_recall("Paris", "paris") == 1.0  # lowercased
    # gen: paris is the capital; ref: the capital of france is paris -> LCS "the capital" = 2 / 6
    assert rouge_l_recall("Paris is the capital", "The capital of France is Paris") == (
        pytest.approx(2 / 6)
    )
    # stemming: dogs -> dog, running/runs -> run: LCS 2 of 2 reference tokens
    assert rouge_l_recall("dogs running", "dog runs") == 1.0
    # recall, not precision: extra generated words do not lower it
    assert rouge_l_recall("yes the author was born in paris indeed", "born in paris") == 1.0


def test_rouge_l_recall_empty_generation() -> None:
    assert rouge_l_recall("", "The author was born in Paris.") == 0.0
    assert rouge_l_recall("   ", "born") == 0.0


def test_rouge_l_recall_batch() -> None:
    gens = ["Paris is the capital", "", "dogs running"]
    refs = ["The capital of France is Paris", "anything", "dog runs"]
    assert rouge_l_recall_batch(gens, refs) == pytest.approx([2 / 6, 0.0, 1.0])
    with pytest.raises(ValueError, match="2 generations but 1 references"):
        rouge_l_recall_batch(["a", "b"], ["a"])


# ---------------------------------------------------------------------------------------------
# Token entropy


def test_token_entropy_hand_computed() -> None:
    # f = (1/2, 1/2): H = 1 bit; log2(4) = 2
    assert token_entropy([1, 1, 2, 2]) == pytest.approx(1.0 / 2.0)
    assert token_entropy(["a", "b", "a", "b"]) == pytest.approx(0.5)
    # all distinct: H = log2(n) -> 1
    assert token_entropy([1, 2, 3]) == pytest.approx(1.0)
    # f = (2/3, 1/3): H = log2(3) - 2/3; divided by log2(3)
    assert token_entropy([7, 7, 9]) == pytest.approx(1 - 2 / (3 * math.log2(3)))
    # one repeated token
    assert token_entropy([5, 5, 5, 5]) == 0.0


def test_token_entropy_short_sequences() -> None:
    assert token_entropy([]) == 0.0  # empty generation
    assert token_entropy([42]) == 0.0


# ---------------------------------------------------------------------------------------------
# Probability


def test_probability_hand_computed() -> None:
    assert probability_per_item([0.0, LN2]) == pytest.approx([1.0, 0.5])
    assert probability([0.0, LN2]) == pytest.approx(0.75)
    assert probability(np.array([LN4])) == pytest.approx(0.25)


@pytest.mark.parametrize(
    ("bad", "match"),
    [([], "empty"), ([[0.1, 0.2]], r"shape \(N,\)"), ([0.1, float("nan")], "NaN")],
)
def test_probability_bad_input(bad: list, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        probability(bad)


def test_normalized_probability_hand_computed() -> None:
    answer = [LN2, 0.0]  # p = 0.5, 1
    perturbed = [[LN4, LN4], [LN2, LN4]]  # p = (0.25, 0.25), (0.5, 0.25)
    # 0.5 / (0.5 + 0.5) = 1/2;  1 / (1 + 0.75) = 4/7
    assert normalized_probability_per_item(answer, perturbed) == pytest.approx([0.5, 4 / 7])
    assert normalized_probability(answer, perturbed) == pytest.approx(15 / 28)


def test_normalized_probability_is_stable_for_large_nll() -> None:
    # exp(-1000) underflows to 0 in float64: a naive ratio would be 0/0
    assert normalized_probability([1000.0], [[1000.0, 1000.0]]) == pytest.approx(1 / 3)
    assert normalized_probability([1000.0], [[1000.0 + LN2]]) == pytest.approx(2 / 3)


def test_perturbed_answers_missing() -> None:
    with pytest.raises(ValueError, match="no perturbed answers"):
        normalized_probability([0.1, 0.2], np.zeros((2, 0)))
    with pytest.raises(ValueError, match="no perturbed answers"):
        truth_ratio([0.1], [[]], forget=True)
    with pytest.raises(ValueError, match="same number K"):
        truth_ratio([0.1, 0.2], [[0.1], [0.1, 0.2]], forget=False)
    with pytest.raises(ValueError, match="3 rows but there are 2 items"):
        truth_ratio([0.1, 0.2], [[0.1]] * 3, forget=False)
    with pytest.raises(ValueError, match=r"shape \(N, K\)"):
        normalized_probability([0.1], [0.1])


# ---------------------------------------------------------------------------------------------
# Truth Ratio


def test_truth_ratio_hand_computed() -> None:
    # item 1: base p = 1/2, perturbed p = 1/4, 1/16 -> mean NLL ln 8 -> R = exp(ln 8 - ln 2) = 4
    # item 2: base p = 1/4, perturbed p = 1/2, 1/2 -> R = exp(ln 2 - ln 4) = 1/2
    base = [LN2, LN4]
    perturbed = [[LN4, LN16], [LN2, LN2]]
    assert truth_ratio_per_item(base, perturbed) == pytest.approx([4.0, 0.5])
    # forget: 1 - min(R, 1/R) -> 1 - 1/4 = 0.75, 1 - 1/2 = 0.5
    assert truth_ratio_scores([4.0, 0.5], forget=True) == pytest.approx([0.75, 0.5])
    assert truth_ratio(base, perturbed, forget=True) == pytest.approx(0.625)
    # others: max(0, 1 - 1/R) -> 0.75, max(0, 1 - 2) = 0
    assert truth_ratio_scores([4.0, 0.5], forget=False) == pytest.approx([0.75, 0.0])
    assert truth_ratio(base, perturbed, forget=False) == pytest.approx(0.375)


def test_truth_ratio_uses_geometric_mean_of_perturbed() -> None:
    # mean of NLLs (geometric mean of probabilities), not mean of probabilities:
    # perturbed NLL 0 and ln 16 -> mean ln 4 -> R = exp(ln 4 - ln 2) = 2
    assert truth_ratio_per_item([LN2], [[0.0, LN16]]) == pytest.approx([2.0])


def test_truth_ratio_indistinguishable() -> None:
    # R = 1: the model cannot tell true from false -> 0 on every split
    assert truth_ratio([1.0], [[0.5, 1.5]], forget=True) == pytest.approx(0.0)
    assert truth_ratio([1.0], [[0.5, 1.5]], forget=False) == pytest.approx(0.0)
    # R = 0 (base impossible): forget 1 - min(0, inf) = 1; others max(0, 1 - inf) = 0
    assert truth_ratio_scores([0.0], forget=True) == [1.0]
    assert truth_ratio_scores([0.0], forget=False) == [0.0]


# ---------------------------------------------------------------------------------------------
# Aggregates


def test_model_utility_harmonic_mean() -> None:
    assert model_utility([0.5, 1.0]) == pytest.approx(2 / 3)  # 2 / (2 + 1)
    assert model_utility([0.2, 0.5, 1.0]) == pytest.approx(3 / 8)  # 3 / (5 + 2 + 1)
    assert model_utility([0.4]) == pytest.approx(0.4)
    assert model_utility([0.3, 0.0, 0.9]) == 0.0
    with pytest.raises(ValueError, match="empty"):
        model_utility([])
    with pytest.raises(ValueError, match="non-negative"):
        model_utility([0.5, -0.1])


def test_forget_efficacy() -> None:
    assert forget_efficacy([0.2, 0.4]) == pytest.approx(0.7)
    assert forget_efficacy([1.0, 1.0, 1.0]) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="empty"):
        forget_efficacy([])


def test_forget_quality_ks_pvalue() -> None:
    # identical samples: KS statistic 0 -> p-value 1
    assert forget_quality([0.1, 0.5, 0.9, 2.0], [0.1, 0.5, 0.9, 2.0]) == pytest.approx(1.0)
    # fully separated samples of 3 and 3: D = 1; under H0 all C(6,3) = 20 orderings are equally
    # likely and 2 of them (all of one sample first) reach D = 1 -> exact p = 2/20
    assert forget_quality([1.0, 2.0, 3.0], [4.0, 5.0, 6.0]) == pytest.approx(0.1)


def tofu_split_metrics() -> dict[str, dict[str, float | None]]:
    return {
        "forget": {
            "rouge_l": 0.2,
            "probability": 0.4,
            "truth_ratio": 0.6,
            "token_entropy": 0.9,  # not part of Forget Efficacy
            "cosine_similarity": 0.8,
            "entailment": None,  # NLI model missing
        },
        "retain": dict.fromkeys(METRIC_NAMES, 0.5),
        "real_authors": dict.fromkeys(METRIC_NAMES, 1.0),
        "world_facts": {**dict.fromkeys(METRIC_NAMES, 1.0), "entailment": None},
    }


def test_aggregate_tofu_with_missing_metric() -> None:
    out = aggregate(
        tofu_split_metrics(),
        "tofu",
        forget_truth_ratios=[1.0, 2.0, 3.0],
        retain_truth_ratios=[4.0, 5.0, 6.0],
    )
    # 6 values of 0.5 and 11 of 1.0: 17 / (6 * 2 + 11 * 1)
    assert out["model_utility"] == pytest.approx(17 / 23)
    assert len(out["computed_over"]["model_utility"]) == 17
    assert "retain/rouge_l" in out["computed_over"]["model_utility"]
    assert out["skipped"]["model_utility"] == ["world_facts/entailment"]
    assert "forget/rouge_l" not in out["computed_over"]["model_utility"]
    assert out["model_utility_retain"] == pytest.approx(0.5)
    assert len(out["computed_over"]["model_utility_retain"]) == 6
    # 1 - mean(0.2, 0.4, 0.6, 0.8)
    assert out["forget_efficacy"] == pytest.approx(0.5)
    assert out["computed_over"]["forget_efficacy"] == [
        "forget/rouge_l",
        "forget/probability",
        "forget/truth_ratio",
        "forget/cosine_similarity",
    ]
    assert out["skipped"]["forget_efficacy"] == ["forget/entailment"]
    assert out["forget_quality"] == pytest.approx(0.1)


def test_aggregate_missing_split_and_no_retain_model() -> None:
    metrics = tofu_split_metrics()
    del metrics["world_facts"]
    out = aggregate(metrics, "tofu")
    assert out["model_utility"] == pytest.approx(12 / (6 * 2 + 6 * 1))
    assert out["skipped"]["model_utility"] == ["world_facts/*"]
    assert out["forget_quality"] is None
    assert out["skipped"]["forget_quality"]


def test_aggregate_real_world() -> None:
    metrics = {
        "forget": dict.fromkeys(METRIC_NAMES, 0.25),
        "neighbor": {**dict.fromkeys(METRIC_NAMES, 0.5), "truth_ratio": 0.25},
    }
    out = aggregate(metrics, "real_world")
    # 5 values of 0.5 and one of 0.25: 6 / (5 * 2 + 4)
    assert out["model_utility"] == pytest.approx(6 / 14)
    assert out["model_utility_retain"] is None
    assert out["skipped"]["model_utility_retain"] == ["retain/*"]
    assert out["forget_efficacy"] == pytest.approx(0.75)
    with pytest.raises(ValueError, match="unknown benchmark kind 'tofu2'"):
        aggregate(metrics, "tofu2")


def test_aggregate_nothing_to_compute() -> None:
    out = aggregate({"forget": dict.fromkeys(METRIC_NAMES)}, "real_world")
    assert out["model_utility"] is None and out["forget_efficacy"] is None
    assert out["skipped"]["model_utility"] == ["neighbor/*"]
    assert len(out["skipped"]["forget_efficacy"]) == 5


# ---------------------------------------------------------------------------------------------
# Declarations


def test_metric_specs_registered() -> None:
    expected = {
        "rouge_l",
        "probability",
        "truth_ratio",
        "token_entropy",
        "cosine_similarity",
        "entailment",
    }
    assert set(METRIC_NAMES) == expected
    assert expected <= set(METRICS.names())
    for name in expected:
        spec = METRICS.get(name)
        assert isinstance(spec, MetricSpec) and spec is METRIC_SPECS[name]
        assert spec.higher_is_better is True
        assert spec.description
