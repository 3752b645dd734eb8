"""Regularizers on retain data: GD, KL and AP (answer preservation)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from unlearnkit.losses.nll import (
    batch_token_nll,
    check_beta,
    check_logits_labels,
    check_same_shape,
    counted_rows,
    upcast,
)


def gd_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Gradient Descent on retain data (GD; Liu et al. 2022, Maini et al. 2024).

    Equation (x, y from the retain set D_r)::

        L_GD = (1 / N) * sum_i sum_{counted t} -log p_theta(y_i[t+1] | x_i, y_i[<=t])

    Reduction: mean over all counted tokens of the batch (the Hugging Face model loss).

    Args:
        logits: ``(B, T, V)`` on the retain batch; labels: ``(B, T)``, ``-100`` = ignored.

    Returns:
        A float32 scalar.
    """
    return batch_token_nll(logits, labels)


def kl_loss(logits: Tensor, ref_logits: Tensor, labels: Tensor) -> Tensor:
    """KL regularizer: KL(p_ref || p_theta) of next-token distributions on retain data.

    Equation::

        L_KL = (1 / N) * sum_{counted t} sum_v p_ref,t(v) * (log p_ref,t(v) - log p_theta,t(v))

    averaged over the N counted positions (those predicting a label != -100), so padding and
    masked question tokens never count. The paper's code (from TOFU) instead averages over every
    position of the padded batch; averaging over counted positions makes the value independent
    of padding. ``ref_logits`` is treated as a constant (no gradient flows into it).

    Args:
        logits: ``(B, T, V)`` of the model being trained.
        ref_logits: ``(B, T, V)`` of the frozen reference model on the same inputs.
        labels: ``(B, T)``, ``-100`` = ignored.

    Returns:
        A float32 scalar >= 0 (0 when no position is counted).
    """
    check_logits_labels(logits, labels)
    if ref_logits.shape != logits.shape:
        raise ValueError(
            f"ref_logits must have the shape of logits {tuple(logits.shape)}; "
            f"got {tuple(ref_logits.shape)}"
        )
    rows, _, _ = counted_rows(logits, labels)  # (N, V) float32
    ref_rows, _, _ = counted_rows(ref_logits.detach(), labels)  # (N, V) float32
    log_p = F.log_softmax(rows, dim=-1)  # (N, V)
    log_p_ref = F.log_softmax(ref_rows, dim=-1)  # (N, V)
    kl = F.kl_div(log_p, log_p_ref, reduction="none", log_target=True).sum(dim=-1)  # (N,)
    return kl.sum() / max(kl.numel(), 1)


def kl_loss_all_positions(logits: Tensor, ref_logits: Tensor) -> Tensor:
    """KL(p_ref || p_theta) averaged over *every* position of the batch, labels ignored.

    Equation (B sequences of T positions, padding and question included)::

        L_KL_all = (1 / (B * T)) * sum_{b, t} sum_v p_ref,b,t(v) (log p_ref,b,t(v) - log p_b,t(v))

    This is the reduction of the paper's code (``kl_div(..., reduction="batchmean")`` on the
    ``(B * T, V)`` rows of a batch padded to a fixed length), used by the ``paper`` profile
    (``method.kl_positions=all``). Its value depends on the padding: with fixed-length padding most
    of the mass sits on padded positions.

    Args:
        logits: ``(B, T, V)`` of the model being trained; ref_logits: the reference's, same shape.

    Returns:
        A float32 (float64 for float64 inputs) scalar >= 0.
    """
    if logits.dim() != 3 or ref_logits.shape != logits.shape:
        raise ValueError(
            f"logits and ref_logits must have one (B, T, V) shape; got {tuple(logits.shape)} "
            f"and {tuple(ref_logits.shape)}"
        )
    vocab = logits.shape[-1]
    log_p = F.log_softmax(upcast(logits).reshape(-1, vocab), dim=-1)  # (B*T, V)
    log_p_ref = F.log_softmax(upcast(ref_logits.detach()).reshape(-1, vocab), dim=-1)  # (B*T, V)
    return F.kl_div(log_p, log_p_ref, reduction="batchmean", log_target=True)


def ap_loss(nll_ans: Tensor, nll_idk: Tensor, beta: float) -> Tensor:
    """Answer Preservation (AP; Yuan et al. 2025, "A Closer Look at Machine Unlearning for LLMs").

    On retain data, keeps the true answer ``y`` preferred over the refusal ``y_idk`` without a
    reference model:

    Equation::

        L_AP = -(1 / beta) * E[ log sigmoid(-beta * log(pi_theta(y_idk | x) / pi_theta(y | x))) ]
             = -(1 / beta) * mean_i log sigmoid(beta * (nll_idk_i - nll_ans_i))

    with per-sequence summed NLLs (:func:`sequence_nll`).

    Args:
        nll_ans: ``(B,)`` summed NLL of the retain answers.
        nll_idk: ``(B,)`` summed NLL of a refusal to the same retain questions.
        beta: inverse temperature > 0 (paper default 0.1).

    Returns:
        A float32 scalar; ``(1 / beta) log 2`` when both NLLs are equal.
    """
    check_beta(beta)
    check_same_shape(nll_ans=nll_ans, nll_idk=nll_idk)
    return -(1.0 / beta) * F.logsigmoid(beta * (upcast(nll_idk) - upcast(nll_ans))).mean()
