"""Model Utility as open-unlearning aggregates it on TOFU (9 values), beside the paper's (18).

* paper (Yuan et al. 2025; ``model_utility``): harmonic mean of the six metrics (ROUGE-L,
  Probability, Truth Ratio, Token Entropy, Cosine Similarity, Entailment) on retain, real
  authors and world facts: 18 values.
* open-unlearning (``model_utility_open_unlearning``, as TOFU defined it): harmonic mean of
  Probability, ROUGE-L recall and Truth Ratio on the same three splits: 9 values,

      MU_OU = 9 / sum_{s in {retain, real_authors, world_facts}} sum_{m in {Prob, ROUGE, TR}} 1/v_sm

  where Probability is normalised over the perturbed answers on real authors and world facts and
  TR = mean max(0, 1 - 1/R): our split values are exactly these inputs.
"""

from __future__ import annotations

from collections.abc import Mapping

from unlearnkit.eval.metrics.aggregate import _collect, model_utility
from unlearnkit.eval.metrics.specs import register_metric

OU_SPLITS: tuple[str, ...] = ("retain", "real_authors", "world_facts")
OU_METRICS: tuple[str, ...] = ("probability", "rouge_l", "truth_ratio")


@register_metric(
    "model_utility_open_unlearning",
    label="MU (OU, 9)",
    higher_is_better=True,
    needs=("generation", "answer_nll"),
    kind="aggregate",
    description="open-unlearning's Model Utility: harmonic mean of Prob, ROUGE-L and TR on "
    "retain, real authors and world facts (9 values; the paper's MU has 18)",
)
def model_utility_open_unlearning(
    split_metrics: Mapping[str, Mapping[str, float | None]],
) -> tuple[float | None, list[str], list[str]]:
    """MU_OU over the 9 values present; returns (value or None, used, skipped) where ``used`` and
    ``skipped`` name "split/metric" entries. Any missing entry makes the value None: a harmonic
    mean over fewer values is not the same quantity."""
    values, used, skipped = _collect(split_metrics, OU_SPLITS, OU_METRICS)
    value = model_utility(values) if values and not skipped else None
    return value, used, skipped
