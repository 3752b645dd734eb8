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
    upcast,
)

# Rows of the (N, V) counted logits processed at a time by ME: 8 x 49152 x 4 B = 1.5 MiB, so a
# chunk stays in a core's L2 cache across the max / exp / sum passes over it.
_ME_CHUNK_ROWS = 8


def _contiguous_runs(index: Tensor) -> list[tuple[int, int]]:
    """Sorted flat row indices ``(N,)`` -> ``[(start, stop), ...]`` runs of consecutive rows.

    Counted positions of a batch are one run per sequence (question + answer, then padding), so
    the chunks below are views of the logits: no gathered copy.
    """
    if index.numel() == 0:
        return []
    breaks = (index[1:] - index[:-1] != 1).nonzero(as_tuple=True)[0] + 1  # run starts (excl. 0)
    starts = [0, *breaks.tolist()]
    stops = [*breaks.tolist(), index.numel()]
    flat_index = index.tolist()
    return [(flat_index[a], flat_index[b - 1] + 1) for a, b in zip(starts, stops, strict=True)]


def _chunks(runs: list[tuple[int, int]]):
    """``(start, stop)`` row slices of at most ``_ME_CHUNK_ROWS`` rows covering ``runs``."""
    for a, b in runs:
        for c in range(a, b, _ME_CHUNK_ROWS):
            yield c, min(b, c + _ME_CHUNK_ROWS)


class _MaxEntropyKL(torch.autograd.Function):
    """sum over counted rows of KL(U || softmax(z)), chunked, with a hand-written backward.

    The gradient d/dz KL(U || softmax(z)) = softmax(z) - 1/V needs one exp pass over the logits,
    and so does the value (logsumexp). For float32 logits the forward pass writes the
    unnormalised ``exp(z - max)`` of each chunk straight into a buffer the size of the logits,
    which the backward pass turns into the gradient in place: one exp pass in all, one (B, T, V)
    buffer (the gradient, which autograd needs anyway), and no uniform, softmax, log-softmax or
    gathered copy. Lower-precision logits keep only the per-row logsumexp and recompute the
    softmax in float32 in the backward pass (a bf16 ``exp`` buffer would lose the small
    ``p - 1/V`` differences).
    """

    @staticmethod
    def forward(ctx, logits: Tensor, index: Tensor) -> Tensor:  # type: ignore[override]
        flat = logits.reshape(-1, logits.shape[-1])  # (B*T, V), a view when contiguous
        vocab = flat.shape[-1]
        runs = _contiguous_runs(index)
        keep_exp = flat.dtype == torch.float32
        work_dtype = torch.promote_types(flat.dtype, torch.float32)  # float64 stays float64
        lse = torch.empty(flat.shape[0], 1, dtype=work_dtype, device=flat.device)  # (B*T, 1)
        buf = None
        inv_sum = torch.empty_like(lse)  # (B*T, 1), float32 path only
        if keep_exp:
            buf = torch.empty_like(flat)  # (B*T, V): becomes the gradient of the logits
            prev = 0
            for a, b in runs:  # rows that do not count get a zero gradient
                buf[prev:a] = 0
                prev = b
            buf[prev:] = 0
        total = torch.zeros((), dtype=work_dtype, device=flat.device)
        for a, b in _chunks(runs):
            rows = flat[a:b]  # (C, V) view
            if keep_exp:
                work = buf[a:b]  # type: ignore[index]
                row_max = rows.amax(dim=-1, keepdim=True)  # (C, 1)
                torch.sub(rows, row_max, out=work).exp_()
                row_sum = work.sum(dim=-1, keepdim=True)  # (C, 1) = exp(lse - max)
                lse[a:b] = row_sum.log().add_(row_max)
                # for the backward pass: softmax(z) = exp(z - max) / sum
                inv_sum[a:b] = row_sum.reciprocal_()
                mean = rows.mean(dim=-1, keepdim=True)
            else:
                up = upcast(rows)
                lse[a:b] = up.logsumexp(dim=-1, keepdim=True)
                mean = up.mean(dim=-1, keepdim=True)
            total = total + (lse[a:b] - mean).sum()
        ctx.runs = runs
        ctx.logits_shape = logits.shape
        ctx.consumed = False
        if keep_exp:
            ctx.save_for_backward(buf, inv_sum)
        else:
            ctx.save_for_backward(logits, lse)
        ctx.keep_exp = keep_exp
        return total - index.numel() * math.log(vocab)

    @staticmethod
    def backward(ctx, grad_out: Tensor):  # type: ignore[override]
        g = upcast(grad_out)  # 0-dim; a tensor, so no device sync
        if ctx.keep_exp:
            if ctx.consumed:
                raise RuntimeError(
                    "me_loss's backward pass turns its buffer into the gradient in place and can "
                    "run once per forward pass; call me_loss again to backpropagate again"
                )
            ctx.consumed = True
            buf, inv_sum = ctx.saved_tensors
            for a, b in _chunks(ctx.runs):
                # (exp(z - max) / sum - 1/V) * g, in place
                buf[a:b].mul_(inv_sum[a:b] * g).sub_(g / buf.shape[-1])
            return buf.view(ctx.logits_shape), None
        logits, lse = ctx.saved_tensors
        flat = logits.reshape(-1, logits.shape[-1])
        vocab = flat.shape[-1]
        grad = torch.zeros_like(flat)  # (B*T, V): rows that do not count get no gradient
        for a, b in _chunks(ctx.runs):
            probs = (upcast(flat[a:b]) - lse[a:b]).exp_()  # (C, V) softmax
            grad[a:b] = (probs - 1.0 / vocab).mul_(g).to(grad.dtype)
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
    nll = upcast(nll)
    neg_log_ratio = nll - ref_nll.detach().to(nll.dtype)  # (B,)
    return -(2.0 / beta) * F.logsigmoid(beta * neg_log_ratio).mean()


def me_loss(logits: Tensor, labels: Tensor, epsilon: float = 0.0) -> Tensor:
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
    The paper's code evaluates ``sum U (log U - log(p + 1e-12))`` instead; ``epsilon > 0`` selects
    that form (the ``paper`` profile): ``(1/N) sum_t [-log V - (1/V) sum_v log(p_t(v) + eps)]``.
    The two differ where some p_t(v) is below ~eps, which a confident model has: the eps form
    caps each ``-log p`` at ``-log eps`` and so lowers both the value and the gradient's scale.
    Minimum 0 at uniform logits.

    Args:
        logits: ``(B, T, V)`` logits on the forget batch; labels: ``(B, T)``, ``-100`` = ignored.
        epsilon: 0 = the closed form; > 0 = the paper's ``log(p + epsilon)`` form.

    Returns:
        A float32 scalar >= 0 (0 when no position is counted).
    """
    check_logits_labels(logits, labels)
    # Position t predicts label t+1: counted rows are those whose next label is not ignored.
    counted = torch.zeros(labels.shape, dtype=torch.bool, device=labels.device)  # (B, T)
    counted[:, :-1] = labels[:, 1:] != IGNORE_INDEX
    index = counted.reshape(-1).nonzero(as_tuple=True)[0]  # (N,) flat row indices
    if index.numel() == 0:
        return upcast(logits).sum() * 0.0  # zero loss, zero gradient, still in the graph
    if epsilon > 0:
        rows = upcast(logits.reshape(-1, logits.shape[-1])[index])  # (N, V)
        vocab = rows.shape[-1]
        log_p_eps = (F.softmax(rows, dim=-1) + epsilon).log()  # (N, V)
        kl = -math.log(vocab) - log_p_eps.mean(dim=-1)  # (N,) KL(U || p + eps)
        return kl.sum() / index.numel()
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
