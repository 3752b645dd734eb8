"""Forget objectives of the wider field (the methods open-unlearning compares), as pure functions.

SimNPO, WGA, SatImp, UNDIAL, CE-U, the logit-margin flattening of PDU and RMU's activation
distance. Conventions as in :mod:`unlearnkit.losses.nll`: logits ``(B, T, V)``, labels ``(B, T)``
with ``-100`` for positions that do not count, position ``t`` predicting ``labels[:, t + 1]``;
float32 computation; every "token mean" is over the counted positions of the whole batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from unlearnkit.losses.nll import (
    IGNORE_INDEX,
    check_beta,
    check_logits_labels,
    counted_rows,
    sequence_nll,
)


def _zero(logits: Tensor) -> Tensor:
    """A zero loss that keeps a gradient path (no counted position in the batch)."""
    return logits.float().sum() * 0.0


def simnpo_loss(logits: Tensor, labels: Tensor, beta: float, delta: float = 0.0) -> Tensor:
    """SimNPO (Fan et al. 2024, "Simplicity Prevails: Rethinking Negative Preference
    Optimization for LLM Unlearning"): reference-free, length-normalised NPO with a margin.

    Equation::

        L_SimNPO = -(2 / beta) * mean_i log sigmoid(beta * (nll_i / |y_i| - delta))

    with ``nll_i = -log pi(y_i | x_i)`` the summed answer NLL and ``|y_i|`` its counted tokens.
    At ``nll_i / |y_i| = delta`` it equals ``(2 / beta) log 2`` and it falls as the mean token
    NLL rises. open-unlearning counts ``|y|`` on the unshifted labels; we count the predicted
    (shifted) positions, the same number whenever the question is masked.

    Args:
        logits: ``(B, T, V)`` on the forget batch; labels: ``(B, T)``.
        beta: inverse temperature > 0 (paper default 4.5). delta: margin (paper default 0).

    Returns:
        A float32 scalar.
    """
    check_beta(beta)
    nll, count = sequence_nll(logits, labels)  # (B,), (B,)
    per_token = nll / count.clamp(min=1).to(nll.dtype)  # (B,)
    return -(2.0 / beta) * F.logsigmoid(beta * (per_token - float(delta))).mean()


def _weighted_ascent(logits: Tensor, labels: Tensor, weight_fn) -> Tensor:
    rows, targets, _ = counted_rows(logits, labels)  # (N, V), (N,)
    if rows.shape[0] == 0:
        return _zero(logits)
    ce = F.cross_entropy(rows, targets, reduction="none")  # (N,)
    p = torch.exp(-ce.detach())  # (N,) the model's probability of the true token, a constant
    return -(weight_fn(p) * ce).mean()


def wga_loss(logits: Tensor, labels: Tensor, beta: float = 1.0) -> Tensor:
    """Weighted Gradient Ascent (WGA; Wang et al. 2025, "Rethinking LLM Unlearning Objectives:
    A Gradient Perspective and Go Beyond").

    Equation (token mean over the N counted positions; ``p_t = pi(y_t | x, y_<t)``, detached)::

        L_WGA = -(1 / N) * sum_t p_t^beta * (-log p_t)

    Gradient ascent whose per-token weight fades as the token is forgotten, which keeps
    already-forgotten tokens from driving the model off.

    Args:
        logits: ``(B, T, V)`` on the forget batch; labels: ``(B, T)``. beta: >= 0 (default 1).

    Returns:
        A float32 scalar (<= 0).
    """
    if beta < 0:
        raise ValueError(f"WGA's beta must be >= 0, got {beta}")
    return _weighted_ascent(logits, labels, lambda p: p**beta)


def satimp_loss(logits: Tensor, labels: Tensor, beta1: float = 5.0, beta2: float = 1.0) -> Tensor:
    """SatImp (Yang et al. 2025, "Exploring Criteria of Loss Reweighting to Enhance LLM
    Unlearning"): gradient ascent weighted by saturation ``p^beta1`` and importance
    ``(1 - p)^beta2``.

    Equation (token mean over the N counted positions; ``p_t`` detached)::

        L_SatImp = -(1 / N) * sum_t p_t^beta1 * (1 - p_t)^beta2 * (-log p_t)

    Args:
        logits: ``(B, T, V)``; labels: ``(B, T)``. beta1, beta2: >= 0 (defaults 5 and 1).

    Returns:
        A float32 scalar (<= 0).
    """
    if beta1 < 0 or beta2 < 0:
        raise ValueError(f"SatImp's beta1 and beta2 must be >= 0, got {beta1}, {beta2}")
    return _weighted_ascent(logits, labels, lambda p: p**beta1 * (1.0 - p) ** beta2)


def undial_loss(logits: Tensor, ref_logits: Tensor, labels: Tensor, beta: float = 10.0) -> Tensor:
    """UNDIAL (Dong et al. 2024, "UNDIAL: Self-Distillation with Adjusted Logits for Robust
    Unlearning in Large Language Models").

    The frozen model's logits with the true token's logit lowered by ``beta`` are the teacher;
    the model is distilled toward them. Equation (token mean over the N counted positions)::

        q_t = softmax(z_ref[t] - beta * onehot(y_t)),   L_UNDIAL = (1 / N) sum_t H(q_t, p_theta,t)

    ``H(q, p) = -sum_v q(v) log p(v)`` (its gradient is that of KL(q || p)). open-unlearning
    averages over every position of the padded batch, prompt and padding included; we count
    only the answer positions, so padding cannot dilute the loss.

    Args:
        logits: ``(B, T, V)`` of the model being trained; ref_logits: the frozen copy's, same
            shape (a constant); labels: ``(B, T)``. beta: logit reduction > 0 (default 10).

    Returns:
        A float32 scalar.
    """
    check_beta(beta)
    check_logits_labels(logits, labels)
    if ref_logits.shape != logits.shape:
        raise ValueError(
            f"ref_logits must have the shape of logits {tuple(logits.shape)}; "
            f"got {tuple(ref_logits.shape)}"
        )
    rows, targets, _ = counted_rows(logits, labels)  # (N, V)
    if rows.shape[0] == 0:
        return _zero(logits)
    teacher, _, _ = counted_rows(ref_logits.detach(), labels)  # (N, V)
    teacher = teacher.scatter_add(
        1, targets[:, None], torch.full_like(teacher[:, :1], -float(beta))
    )  # (N, V)
    return F.cross_entropy(rows, F.softmax(teacher, dim=-1))


def drop_first_answer_tokens(labels: Tensor, n: int = 1) -> Tensor:
    """``labels`` with the first ``n`` counted labels of each sequence set to ``-100``."""
    counted = labels != IGNORE_INDEX  # (B, T)
    first = (counted.cumsum(dim=-1) <= n) & counted
    return labels.masked_fill(first, IGNORE_INDEX)


def ceu_loss(logits: Tensor, labels: Tensor, ignore_first: int = 1) -> Tensor:
    """CE-U, cross-entropy unlearning (Yang et al. 2025, "CE-U: Cross Entropy Unlearning").

    The target is the model's own next-token distribution with the true token removed::

        q_t = softmax(stopgrad(z_t) with z_t[y_t] = -inf),   L_CE-U = (1 / N) sum_t H(q_t, p_t)

    over the N counted positions, after the first ``ignore_first`` answer tokens of each
    sequence are left out (the paper's footnote: the first answer token is too ambiguous to
    unlearn). The gradient is ``p_t - q_t``: the true token's probability is pushed to 0 and
    the rest renormalised, never pushed toward an arbitrary distribution.

    Args:
        logits: ``(B, T, V)``; labels: ``(B, T)``. ignore_first: answer tokens left out (1).

    Returns:
        A float32 scalar.
    """
    check_logits_labels(logits, labels)
    rows, targets, _ = counted_rows(logits, drop_first_answer_tokens(labels, ignore_first))
    if rows.shape[0] == 0:
        return _zero(logits)
    target_logits = rows.detach().scatter(1, targets[:, None], float("-inf"))  # (N, V)
    return F.cross_entropy(rows, F.softmax(target_logits, dim=-1))


def logit_margin_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Logit-margin flattening, PDU's forget loss (Entesari et al. 2025, "Constrained Entropic
    Unlearning: A Primal-Dual Framework for Large Language Models").

    Equation (mean over the N counted positions)::

        L_LMF = (1 / N) * sum_t (max_v z_t(v) - mean_v z_t(v))^2

    A bounded, softmax-free surrogate of maximum entropy: 0 exactly when the logits of a
    position are flat. open-unlearning masks the logits with the unshifted labels (the rows
    *after* the answer tokens); we use the rows that predict the answer tokens.

    Args:
        logits: ``(B, T, V)``; labels: ``(B, T)``.

    Returns:
        A float32 scalar >= 0.
    """
    rows, _, _ = counted_rows(logits, labels)  # (N, V)
    if rows.shape[0] == 0:
        return _zero(logits)
    margin = rows.amax(dim=-1) - rows.mean(dim=-1)  # (N,)
    return (margin**2).mean()


def activation_mse(hidden: Tensor, target: Tensor, labels: Tensor) -> Tensor:
    """RMU's activation distance (Li et al. 2024, "The WMDP Benchmark", representation
    misdirection), per sequence over its counted tokens, then over the batch.

    Equation (``h_i,t`` a chosen layer's activation, ``d`` its width, ``M_i`` the tokens with a
    label != -100)::

        D = (1 / B) * sum_i (1 / |M_i|) * sum_{t in M_i} (1 / d) * ||h_i,t - target_i,t||^2

    RMU's forget term uses ``target = c * u`` (a fixed random unit vector scaled by the steering
    coefficient); its retain term the frozen model's activations. A sequence with no counted
    token contributes 0 (open-unlearning divides by zero there).

    Args:
        hidden: ``(B, T, d)``; target: ``(B, T, d)`` or ``(d,)``; labels: ``(B, T)``.

    Returns:
        A float32 scalar >= 0.
    """
    if hidden.dim() != 3 or labels.shape != hidden.shape[:2]:
        raise ValueError(
            f"hidden must be (B, T, d) with labels (B, T); got {tuple(hidden.shape)}, "
            f"{tuple(labels.shape)}"
        )
    mask = (labels != IGNORE_INDEX).float()  # (B, T)
    sq = (hidden.float() - target.detach().float()).pow(2).mean(dim=-1)  # (B, T)
    per_seq = (sq * mask).sum(dim=-1) / mask.sum(dim=-1).clamp(min=1)  # (B,)
    return per_seq.mean()
