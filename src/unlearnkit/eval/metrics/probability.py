"""Answer probability under teacher forcing (TOFU; Yuan et al. 2025).

Inputs are per-item mean token NLLs (Lbar = -1/|a| sum_t log p(a_t | q, a_<t), the answer's EOS
token included, question and padding excluded), so every probability is length-normalized.
"""

from __future__ import annotations

import numpy as np

from unlearnkit.eval.metrics._arrays import ArrayLike1D, ArrayLike2D, as_1d, as_perturbed


def probability_per_item(avg_nll: ArrayLike1D) -> list[float]:
    """p_i = exp(-Lbar_i) for each item; ``avg_nll`` has shape (N,)."""
    nll = as_1d(avg_nll, "avg_nll")  # (N,)
    return np.exp(-nll).tolist()


def probability(avg_nll: ArrayLike1D) -> float:
    """Probability = 1/N sum_i exp(-Lbar(a_i)), the mean length-normalized answer likelihood."""
    return float(np.mean(probability_per_item(avg_nll)))


def normalized_probability_per_item(
    answer_avg_nll: ArrayLike1D, perturbed_avg_nll: ArrayLike2D
) -> list[float]:
    """p(a_i) / (p(a_i) + sum_j p(pert_ij)), with p(x) = exp(-Lbar(x)).

    ``answer_avg_nll``: (N,); ``perturbed_avg_nll``: (N, K). Computed as the first entry of
    softmax([-Lbar(a), -Lbar(pert_1), ..., -Lbar(pert_K)]) so that large NLLs do not underflow.
    """
    answer = as_1d(answer_avg_nll, "answer_avg_nll")  # (N,)
    perturbed = as_perturbed(perturbed_avg_nll, answer.shape[0], "perturbed_avg_nll")  # (N, K)
    logits = -np.concatenate([answer[:, None], perturbed], axis=1)  # (N, 1 + K)
    logits -= logits.max(axis=1, keepdims=True)  # stable softmax
    weights = np.exp(logits)  # (N, 1 + K)
    return (weights[:, 0] / weights.sum(axis=1)).tolist()


def normalized_probability(answer_avg_nll: ArrayLike1D, perturbed_avg_nll: ArrayLike2D) -> float:
    """Normalized Probability = 1/N sum_i p(a_i) / (p(a_i) + sum_j p(pert_ij)).

    Used on Real Authors and World Facts (TOFU), where the answer competes with K perturbed ones.
    """
    return float(np.mean(normalized_probability_per_item(answer_avg_nll, perturbed_avg_nll)))
