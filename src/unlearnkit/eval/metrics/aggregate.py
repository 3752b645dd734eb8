"""Aggregates of Yuan et al. 2025: Model Utility, Forget Efficacy, and TOFU's Forget Quality."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from scipy.stats import ks_2samp

from unlearnkit.eval.metrics._arrays import as_1d
from unlearnkit.eval.metrics.specs import METRIC_NAMES, MetricSpec, add_metric_spec, register_metric
from unlearnkit.eval.protocol import EvalProtocol, protocol_for

RETAIN_SPLIT = "retain"
# Forget Efficacy leaves Token Entropy out: it measures fluency, not knowledge.
EFFICACY_METRICS: tuple[str, ...] = tuple(m for m in METRIC_NAMES if m != "token_entropy")


@register_metric(
    "model_utility",
    label="MU",
    higher_is_better=True,
    needs=("generation", "answer_nll", "aux_model"),
    kind="aggregate",
    description="the paper's Model Utility: harmonic mean of the six metrics on every non-forget "
    "split (TOFU: 18 values)",
)
def model_utility(values: Sequence[float]) -> float:
    """Model Utility = harmonic mean n / sum_i (1 / v_i) of metric values in [0, 1].

    Any value equal to 0 makes the harmonic mean 0 (its limit). Empty input or a negative or NaN
    value is a ValueError.
    """
    arr = as_1d(values, "model_utility values")  # (n,)
    if (arr < 0).any():
        raise ValueError(f"model_utility needs non-negative values, got {arr.tolist()}")
    if (arr == 0).any():
        return 0.0
    return float(arr.size / np.sum(1.0 / arr))


@register_metric(
    "forget_efficacy",
    label="FE",
    higher_is_better=True,
    needs=("generation", "answer_nll", "aux_model"),
    kind="aggregate",
    description="1 - mean of the forget set's metrics other than Token Entropy",
)
def forget_efficacy(values: Sequence[float]) -> float:
    """Forget Efficacy = 1 - mean of the forget-set metrics (all but Token Entropy)."""
    arr = as_1d(values, "forget_efficacy values")  # (n,)
    return float(1.0 - arr.mean())


@register_metric(
    "forget_quality",
    label="FQ",
    higher_is_better=True,
    needs=("answer_nll", "reference_model"),
    kind="aggregate",
    description="KS-test p-value of forget-set truth ratios against a retain model's",
)
def forget_quality(truth_ratios: Sequence[float], retain_truth_ratios: Sequence[float]) -> float:
    """Forget Quality (TOFU) = p-value of the two-sample Kolmogorov-Smirnov test.

    Compares the per-item truth ratios R on the forget set of the evaluated model with those of a
    model trained on the retain data only; a high p-value means the two are indistinguishable.
    """
    a = as_1d(truth_ratios, "truth_ratios")
    b = as_1d(retain_truth_ratios, "retain_truth_ratios")
    return float(ks_2samp(a, b).pvalue)


add_metric_spec(
    MetricSpec(
        "model_utility_retain",
        "MU (retain)",
        True,
        "Model Utility over the retain split's six metrics only",
        ("generation", "answer_nll", "aux_model"),
        "aggregate",
        model_utility,
    )
)


def _present(value: float | None) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _collect(
    split_metrics: Mapping[str, Mapping[str, float | None]],
    splits: Sequence[str],
    metrics: Sequence[str],
) -> tuple[list[float], list[str], list[str]]:
    """Values, their "split/metric" names, and the skipped names (missing split or metric)."""
    values: list[float] = []
    used: list[str] = []
    skipped: list[str] = []
    for split in splits:
        if split not in split_metrics:
            skipped.append(f"{split}/*")
            continue
        for metric in metrics:
            value = split_metrics[split].get(metric)
            if _present(value):
                values.append(float(value))  # type: ignore[arg-type]
                used.append(f"{split}/{metric}")
            else:
                skipped.append(f"{split}/{metric}")
    return values, used, skipped


def aggregate(
    split_metrics: Mapping[str, Mapping[str, float | None]],
    benchmark: str | EvalProtocol,
    *,
    forget_truth_ratios: Sequence[float] | None = None,
    retain_truth_ratios: Sequence[float] | None = None,
) -> dict[str, Any]:
    """Model Utility, its retain-only variant, Forget Efficacy and (optionally) Forget Quality.

    ``split_metrics``: split name -> {metric name -> value, None when missing}. Model Utility is
    the harmonic mean of the six metrics over every non-forget split (the protocol's
    ``utility_splits`` are expected: TOFU: retain, real_authors, world_facts; real_world:
    neighbor); Model Utility (retain) uses the retain split only; Forget Efficacy = 1 - mean of
    the forget split's metrics other than token_entropy. ``benchmark``: a benchmark kind or its
    :class:`~unlearnkit.eval.protocol.EvalProtocol`. Forget Quality is
    computed when both per-item truth-ratio lists (R on the forget set: this model, retain model)
    are given. Missing values are skipped; ``computed_over`` lists what each aggregate used and
    ``skipped`` what it left out ("split/metric", "split/*" for a split that was not evaluated).
    An aggregate with nothing to compute over is None.
    """
    protocol = protocol_for(benchmark)
    expected = protocol.utility_splits
    extra = [s for s in split_metrics if s != protocol.forget_split and s not in expected]
    utility_splits = [*expected, *extra]

    out: dict[str, Any] = {"computed_over": {}, "skipped": {}}

    def record(
        name: str,
        values: list[float],
        used: list[str],
        skipped: list[str],
        fn: Callable[[list[float]], float],
    ) -> None:
        out[name] = fn(values) if values else None
        out["computed_over"][name] = used
        out["skipped"][name] = skipped

    record("model_utility", *_collect(split_metrics, utility_splits, METRIC_NAMES), model_utility)
    # real_world has no retain split: the retain-only variant is then None, listed as skipped.
    retain = _collect(split_metrics, [RETAIN_SPLIT], METRIC_NAMES)
    record("model_utility_retain", *retain, model_utility)
    forget = _collect(split_metrics, [protocol.forget_split], EFFICACY_METRICS)
    record("forget_efficacy", *forget, forget_efficacy)

    if forget_truth_ratios is not None and retain_truth_ratios is not None:
        out["forget_quality"] = forget_quality(forget_truth_ratios, retain_truth_ratios)
        out["computed_over"]["forget_quality"] = [
            f"forget/truth_ratio per item ({len(forget_truth_ratios)}) vs retain model "
            f"({len(retain_truth_ratios)})"
        ]
    else:
        out["forget_quality"] = None
        out["skipped"]["forget_quality"] = ["no per-item truth ratios of a retain model"]
    return out
