"""Untargeted forget objectives: GA, NPO, ME and LLMU's mismatch term.

Untargeted unlearning only says what the model must *not* answer on the forget set; these
losses push the likelihood of the forget answer down (GA, NPO) or flatten the next-token
distribution (ME). All are minimised.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from unlearnkit.losses.nll import (
    IGNORE_INDEX,
    batch_token_nll,
    check_beta,
    check_logits_labels,
    check_same_shape,
)

# Rows of the (N, V) counted logits processed at a time by ME: bounds the float32 temporaries
# to ROWS x V (64 x 49152 x 4 B = 12 MiB) whatever the batch.
_ME_CHUNK_ROWS = 64


class _MaxEntropyKL(torch.autograd.Function):
    """sum over counted rows of KL(U || softmax(z)), chunked, with a hand-written backward.

    Forward keeps only the per-row logsumexp (N,); backward writes
    d/dz KL(U || softmax(z)) = softmax(z) - 1/V straight into the gradient of the logits, so no
    (B, T, V) intermediate (uniform, softmax, log-softmax or a gathered copy) is ever stored.
    """

    @staticmethod
    def forward(ctx, logits: Tensor, index: Tensor) -> Tensor:  # type: ignore[override]
        flat = logits.reshape(-1, logits.shape[-1])  # (B*T, V) view
        vocab = flat.shape[-1]
        lse = torch.empty(index.numel(), dtype=torch.float32, device=logits.device)  # (N,)
        total = torch.zeros((), dtype=torch.float32, device=logits.device)
        for start in range(0, index.numel(), _ME_CHUNK_ROWS):
            rows = flat[index[start : start + _ME_CHUNK_ROWS]].float()  # (C, V)
            chunk_lse = rows.logsumexp(dim=-1)  # (C,)
            lse[start : start + rows.shape[0]] = chunk_lse
            total = total + (chunk_lse - rows.mean(dim=-1)).sum()
        ctx.save_for_backward(logits, index, lse)
        return total - index.numel() * math.log(vocab)

    @staticmethod
    def backward(ctx, grad_out: Tensor):  # type: ignore[override]
        logits, index, lse = ctx.saved_tensors
        flat = logits.reshape(-1, logits.shape[-1])
        vocab = flat.shape[-1]
        grad = torch.zeros_like(flat)  # (B*T, V): rows that do not count get no gradient
        g = grad_out.float()
        for start in range(0, index.numel(), _ME_CHUNK_ROWS):
            idx = index[start : start + _ME_CHUNK_ROWS]
            rows = flat[idx].float()  # (C, V)
            probs = (rows - lse[start : start + idx.numel(), None]).exp_()  # softmax, in place
            grad[idx] = ((probs - 1.0 / vocab) * g).to(grad.dtype)
        return grad.view_as(logits), None


def ga_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Gradient Ascent (GA): minus the token-mean NLL of the forget batch.

    Equation::

        L_GA = -(1 / N) * sum_i sum_{counted t} -log p_theta(y_i[t+1] | x_i, y_i[<=t])

    Reduction: the mean over all N counted tokens of the batch (not over sequences), which is
    the Hugging Face model loss the paper's code negates (Jang et al. 2023; Yuan et al. 2025).

    Args:
        logits: ``(B, T, V)`` logits on the forget batch; labels: ``(B, T)``, ``-100`` = ignored.

    Returns:
        A float32 scalar; minimising it raises the forget NLL.
    """
    return -batch_token_nll(logits, labels)


def npo_loss(nll: Tensor, ref_nll: Tensor, beta: float) -> Tensor:
    """Negative Preference Optimization (Zhang et al. 2024, "Negative Preference Optimization").

    Equation::

        L_NPO = -(2 / beta) * E[ log sigmoid(-beta * log(pi_theta(y | x) / pi_ref(y | x))) ]
              = -(2 / beta) * mean_i log sigmoid(beta * (nll_i - ref_nll_i))

    with ``nll = -log pi(y | x)`` the per-sequence *summed* NLL (:func:`sequence_nll`). At
    ``nll == ref_nll`` it equals ``(2 / beta) log 2``; it decreases as ``nll`` grows.

    Args:
        nll: ``(B,)`` summed NLL of the forget answers under the model being trained.
        ref_nll: ``(B,)`` the same under the frozen reference model (treated as a constant).
        beta: inverse temperature > 0 (paper default 0.1).

    Returns:
        A float32 scalar.
    """
    check_beta(beta)
    check_same_shape(nll=nll, ref_nll=ref_nll)
    neg_log_ratio = nll.float() - ref_nll.detach().float()  # (B,)
    return -(2.0 / beta) * F.logsigmoid(beta * neg_log_ratio).mean()


def me_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Maximizing Entropy (ME; Yuan et al. 2025, "A Closer Look at Machine Unlearning for LLMs").

    Mean over counted positions of the KL divergence from the uniform distribution U over the
    vocabulary to the model's next-token distribution p_t = softmax(z_t).

    Equation::

        L_ME = (1 / N) * sum_{counted t} KL(U || p_t),    p_t = softmax(z[t]), U = uniform over V
        KL(U || p_t) = sum_v (1 / V) * log((1 / V) / p_t(v))
                     = logsumexp(z[t]) - mean_v(z[t]) - log V

    computed in this closed form: no uniform or softmax ``(B, T, V)`` tensor is built; the counted
    rows are processed in chunks (upcast per chunk) and the backward pass writes
    ``softmax(z_t) - 1/V`` directly into the logits' gradient. Counted positions are those
    predicting a label != -100 (question tokens count when the question is not masked, as in
    ME+GD's default; padding never does).
    The paper's code evaluates ``sum U (log U - log(p + 1e-12))``; the closed form is the exact
    value (the two differ only where some p_t(v) is below ~1e-12). Minimum 0 at uniform logits.

    Args:
        logits: ``(B, T, V)`` logits on the forget batch; labels: ``(B, T)``, ``-100`` = ignored.

    Returns:
        A float32 scalar >= 0 (0 when no position is counted).
    """
    check_logits_labels(logits, labels)
    # Position t predicts label t+1: counted rows are those whose next label is not ignored.
    counted = torch.zeros(labels.shape, dtype=torch.bool, device=labels.device)  # (B, T)
    counted[:, :-1] = labels[:, 1:] != IGNORE_INDEX
    index = counted.reshape(-1).nonzero(as_tuple=True)[0]  # (N,) flat row indices
    if index.numel() == 0:
        return logits.float().sum() * 0.0  # zero loss, zero gradient, still in the graph
    total = _MaxEntropyKL.apply(logits, index)
    return total / index.numel()


def mismatch_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """LLMU's mismatch term (Yao et al. 2023, "Large Language Model Unlearning").

    Token-mean NLL of *mismatched* answers (random answers of other questions) paired with the
    forget questions, pushing the model toward unrelated outputs:

    Equation::

        L_mis = (1 / N) * sum_i sum_{counted t} -log p_theta(y~_i[t+1] | x_i, y~_i[<=t])

    Reduction: mean over all counted tokens of the batch (Hugging Face model loss).

    Args:
        logits: ``(B, T, V)`` on (forget question, random answer); labels: ``(B, T)``.

    Returns:
        A float32 scalar.
    """
    return batch_token_nll(logits, labels)
