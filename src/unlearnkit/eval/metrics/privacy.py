"""Privacy leakage as MUSE defines it (Shi et al. 2024), against a retain model.

With AUC the Min-K% membership AUC of the forget set against the holdout set (1 = the forget set
looks like training members) and AUC_retain the same AUC of a model never trained on the forget
set:

    PrivLeak = ((1 - AUC) - (1 - AUC_retain)) / (1 - AUC_retain) x 100

0 = as private as the retain model; strongly negative = the forget set still looks learned
(under-unlearning); positive = it looks less familiar than unseen data (over-unlearning).
"""

from __future__ import annotations

from unlearnkit.eval.metrics.specs import register_metric

PRIVACY_ATTACK = "mia_min_k"  # the attack MUSE's PrivLeak is defined on
NO_RETAIN_AUC = 0.5  # AUC_retain when no retain model's evaluation is given


@register_metric(
    "privacy_leakage",
    label="PrivLeak",
    higher_is_better=False,
    needs=("token_logprobs", "holdout", "reference_model"),
    kind="aggregate",
    description="MUSE privacy leakage (%) of the Min-K% AUC against a retain model's; "
    "closer to 0 is better",
)
def privacy_leakage(auc: float, auc_retain: float) -> float:
    """PrivLeak = ((1 - AUC) - (1 - AUC_retain)) / (1 - AUC_retain) x 100."""
    for name, value in (("auc", auc), ("auc_retain", auc_retain)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"privacy_leakage: {name} must be in [0, 1], got {value}")
    if auc_retain == 1.0:
        raise ValueError("privacy_leakage: AUC_retain = 1 leaves nothing to normalise by")
    return ((1.0 - auc) - (1.0 - auc_retain)) / (1.0 - auc_retain) * 100.0
