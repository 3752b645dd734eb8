"""Truth Ratio (TOFU, Maini et al. 2024; as used by Yuan et al. 2025).

Per item: R = exp(1/K sum_j Lbar(pert_j) - Lbar(base)) = p(base) / geomean_j p(pert_j), where Lbar
is the mean token NLL and base is the paraphrased answer (forget, retain) or the answer (real
authors, world facts). R > 1: the model prefers the correct answer.

Split value:
- forget set:  TR = 1 - 1/N sum_i min(R_i, 1/R_i)   (0 when the model cannot tell true from false)
- other sets:  TR = 1/N sum_i max(0, 1 - 1/R_i)
On the forget set a value near 0 means the model no longer separates true from false answers.
"""

from __future__ import annotations

import numpy as np

from unlearnkit.eval.metrics._arrays import ArrayLike1D, ArrayLike2D, as_1d, as_perturbed


def truth_ratio_per_item(base_avg_nll: ArrayLike1D, perturbed_avg_nll: ArrayLike2D) -> list[float]:
    """R_i = exp(mean_j Lbar(pert_ij) - Lbar(base_i)); ``base``: (N,), ``perturbed``: (N, K)."""
    base = as_1d(base_avg_nll, "base_avg_nll")  # (N,)
    perturbed = as_perturbed(perturbed_avg_nll, base.shape[0], "perturbed_avg_nll")  # (N, K)
    return np.exp(perturbed.mean(axis=1) - base).tolist()


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
