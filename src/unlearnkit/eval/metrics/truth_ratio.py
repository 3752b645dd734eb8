"""Truth Ratio (TOFU, Maini et al. 2024; as used by Yuan et al. 2025).

Per item: R = exp(1/K sum_j Lbar(pert_j) - Lbar(base)) = p(base) / geomean_j p(pert_j), where Lbar
is the mean token NLL and base is the paraphrased answer (forget, retain) or the answer (real
authors, world facts). R > 1: the model prefers the correct answer.

Split value:
- forget set:  TR = 1 - 1/N sum_i min(R_i, 1/R_i)   (0 when the model cannot tell true from false)
- other sets:  TR = 1/N sum_i max(0, 1 - 1/R_i)
On the forget set a value near 0 means the model no longer separates true from false answers.

open-unlearning (``src/evals/metrics/memorization.py``, ``truth_ratio``) computes
s = p(pert) / (p(base) + 1e-10) with p = exp(-Lbar), p(pert) = exp(-mean_j Lbar(pert_j)), and
averages min(s, 1/(s + 1e-10)) on the forget set ("closer_to_1_better") and max(0, 1 - s)
elsewhere ("true_better"). :func:`truth_ratio_per_item_open_unlearning` gives R = 1/s with its
1e-10, which moves s by a relative 1e-10 / p(base): 6.7e-6 when p(base) is 1.5e-5.
"""

from __future__ import annotations

import numpy as np

from unlearnkit.eval.metrics._arrays import ArrayLike1D, ArrayLike2D, as_1d, as_perturbed


def truth_ratio_per_item(base_avg_nll: ArrayLike1D, perturbed_avg_nll: ArrayLike2D) -> list[float]:
    """R_i = exp(mean_j Lbar(pert_ij) - Lbar(base_i)); ``base``: (N,), ``perturbed``: (N, K)."""
    base = as_1d(base_avg_nll, "base_avg_nll")  # (N,)
    perturbed = as_perturbed(perturbed_avg_nll, base.shape[0], "perturbed_avg_nll")  # (N, K)
    return np.exp(perturbed.mean(axis=1) - base).tolist()


OPEN_UNLEARNING_EPS = 1e-10  # open-unlearning's wrong_prob / (correct_prob + 1e-10)


def truth_ratio_per_item_open_unlearning(
    base_avg_nll: ArrayLike1D, perturbed_avg_nll: ArrayLike2D
) -> list[float]:
    """R_i = 1 / s_i with open-unlearning's s_i = exp(-mean_j Lbar(pert_ij)) / (exp(-Lbar(base_i))
    + 1e-10), computed as its code does (float64 NumPy on the per-item mean NLLs)."""
    base = as_1d(base_avg_nll, "base_avg_nll")  # (N,)
    perturbed = as_perturbed(perturbed_avg_nll, base.shape[0], "perturbed_avg_nll")  # (N, K)
    s = np.exp(-perturbed.mean(axis=1)) / (np.exp(-base) + OPEN_UNLEARNING_EPS)
    with np.errstate(divide="ignore"):
        return (1.0 / s).tolist()


def truth_ratio_scores_open_unlearning(ratios: ArrayLike1D, forget: bool) -> list[float]:
    """open-unlearning's per-item values, s = 1/R: min(s, 1/(s + 1e-10)) on the forget set
    (closer to 1 is better), max(0, 1 - s) elsewhere."""
    r = as_1d(ratios, "ratios")  # (N,)
    with np.errstate(divide="ignore"):
        s = 1.0 / r
    if forget:
        return np.minimum(s, 1.0 / (s + OPEN_UNLEARNING_EPS)).tolist()
    return np.maximum(0.0, 1.0 - s).tolist()


def truth_ratio_scores(ratios: ArrayLike1D, forget: bool) -> list[float]:
    """Per-item contribution whose mean is the split's Truth Ratio.

    forget: 1 - min(R, 1/R); otherwise: max(0, 1 - 1/R).
    """
    r = as_1d(ratios, "ratios")  # (N,)
    if (r < 0).any():
        raise ValueError("truth ratios must be >= 0 (they are ratios of probabilities)")
    with np.errstate(divide="ignore"):
        inv = 1.0 / r  # R = 0 -> inf, handled by min/max below
    if forget:
        return (1.0 - np.minimum(r, inv)).tolist()
    return np.maximum(0.0, 1.0 - inv).tolist()


def truth_ratio(base_avg_nll: ArrayLike1D, perturbed_avg_nll: ArrayLike2D, forget: bool) -> float:
    """Truth Ratio of a split: see the module docstring for R and the two split formulas."""
    ratios = truth_ratio_per_item(base_avg_nll, perturbed_avg_nll)
    return float(np.mean(truth_ratio_scores(ratios, forget)))
