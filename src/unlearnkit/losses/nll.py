"""Next-token negative log-likelihood helpers shared by every loss.

Conventions (the same as Hugging Face causal-LM losses and the TOFU / Yuan et al. 2025 code):

- ``logits`` has shape ``(B, T, V)`` and ``labels`` has shape ``(B, T)``; ``labels == -100``
  marks positions that do not count (masked question tokens, padding).
- Position ``t`` of the logits predicts ``labels[:, t + 1]`` (shift by one), so the last logit
  row is never used and ``labels[:, 0]`` is never predicted.
- A *counted position* is a shifted position whose target label is not ``-100``.
- Everything is computed in float32, or in float64 for float64 logits (:func:`upcast`; bf16
  logits are upcast row by row after the counted rows are selected, so no full ``(B, T, V)``
  float32 copy of the whole batch is made when most positions are masked). float64 models exist
  for exact comparisons (tests whose tolerance is derived from float64 rounding).
"""

from __future__ import annotations

import math
import numbers

import torch
import torch.nn.functional as F
from torch import Tensor

IGNORE_INDEX = -100


def upcast(t: Tensor) -> Tensor:
    """``t`` in its loss-computation dtype: float32, or its own dtype when wider (float64)."""
    return t.to(torch.promote_types(t.dtype, torch.float32))


def check_logits_labels(logits: Tensor, labels: Tensor) -> None:
    """Raise ``ValueError`` unless ``logits`` is ``(B, T, V)`` and ``labels`` is ``(B, T)``."""
    if logits.dim() != 3:
        raise ValueError(f"logits must have shape (B, T, V); got {tuple(logits.shape)}")
    if labels.shape != logits.shape[:2]:
        raise ValueError(
            f"labels must have shape (B, T) = {tuple(logits.shape[:2])}; got {tuple(labels.shape)}"
        )


def counted_rows(logits: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Select the logit rows of the counted (shifted, label != -100) positions.

    Returns ``(rows, targets, batch_index)``: ``rows`` is ``(N, V)`` float32 (N = number of
    counted positions in the batch), ``targets`` is ``(N,)`` the token each row must predict and
    ``batch_index`` is ``(N,)`` the sequence each row belongs to. Only the selected rows are
    copied, then upcast, so memory scales with the counted tokens, not with ``B * T``.
    """
    check_logits_labels(logits, labels)
    shift_logits = logits[:, :-1, :]  # (B, T-1, V) view, no copy
    shift_labels = labels[:, 1:]  # (B, T-1)
    mask = shift_labels != IGNORE_INDEX  # (B, T-1)
    rows = upcast(shift_logits[mask])  # (N, V) float32 (float64 for float64 logits)
    targets = shift_labels[mask]  # (N,)
    batch_index = mask.nonzero(as_tuple=True)[0]  # (N,)
    return rows, targets, batch_index


def sequence_nll(logits: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Summed next-token NLL of each sequence and its number of counted tokens.

    Equation::

        nll(x, y) = - sum_{t : y[t+1] != -100} log softmax(z[t])[y[t+1]]

    i.e. ``-log pi(y | x)`` for the whole counted answer (including the end-of-sequence token
    when the formatter counts it), as in TOFU's ``get_batch_loss`` used by NPO / DPO / AP.

    Args:
        logits: ``(B, T, V)`` model outputs (any float dtype; computed in float32).
        labels: ``(B, T)`` token ids, ``-100`` where a position is not counted.

    Returns:
        ``(nll, count)``: ``nll`` is ``(B,)`` float32, ``count`` is ``(B,)`` int64 (a sequence with
        no counted token has ``nll == 0`` and ``count == 0``).
    """
    rows, targets, batch_index = counted_rows(logits, labels)  # (N, V), (N,), (N,)
    token_nll = F.cross_entropy(rows, targets, reduction="none")  # (N,) float32
    batch = logits.shape[0]
    nll = torch.zeros(batch, dtype=token_nll.dtype, device=logits.device)  # (B,)
    nll = nll.index_add(0, batch_index, token_nll)  # (B,)
    count = torch.bincount(batch_index, minlength=batch)  # (B,) int64
    return nll, count


def mean_token_nll(logits: Tensor, labels: Tensor) -> Tensor:
    """Per-sequence mean next-token NLL: ``sequence_nll / max(count, 1)``.

    Args:
        logits: ``(B, T, V)``; labels: ``(B, T)`` with ``-100`` for ignored positions.

    Returns:
        ``(B,)`` float32; 0 for a sequence with no counted token.
    """
    nll, count = sequence_nll(logits, labels)  # (B,), (B,)
    return nll / count.clamp(min=1).to(nll.dtype)


def batch_token_nll(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean next-token NLL over *all* counted tokens of the batch (a scalar).

    Equation::

        L = (1 / N) * sum_i sum_{t : y_i[t+1] != -100} -log softmax(z_i[t])[y_i[t+1]]

    where N is the number of counted tokens in the batch. This is exactly the loss a Hugging
    Face causal LM returns when called with ``labels=`` (the reduction the paper's code uses for
    GA, GD, IDK and the LLMU mismatch term): long answers weigh more than short ones. Returns
    0 (with a gradient path) when no token is counted.
    """
    rows, targets, _ = counted_rows(logits, labels)  # (N, V), (N,)
    token_nll = F.cross_entropy(rows, targets, reduction="none")  # (N,)
    return token_nll.sum() / max(token_nll.numel(), 1)


def token_entropy_next(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean next-token predictive entropy over the counted positions (a scalar, nats).

    Equation::

        H = (1 / N) * sum_{counted t} -sum_v p_t(v) log p_t(v),    p_t = softmax(z[t])

    A diagnostic (ME should raise it on forget data toward ``log V``); 0 when nothing counts.
    """
    rows, _, _ = counted_rows(logits, labels)  # (N, V)
    log_p = F.log_softmax(rows, dim=-1)  # (N, V)
    entropy = -(log_p.exp() * log_p).sum(dim=-1)  # (N,)
    return entropy.sum() / max(entropy.numel(), 1)


def check_beta(beta: float) -> None:
    """Raise ``ValueError`` unless the inverse temperature ``beta`` is a finite number > 0."""
    real = isinstance(beta, numbers.Real) and not isinstance(beta, bool)
    if not (real and math.isfinite(beta) and beta > 0):
        raise ValueError(f"beta must be a finite number > 0; got {beta!r}")


def check_same_shape(**tensors: Tensor) -> None:
    """Raise ``ValueError`` unless every given per-sequence tensor is 1-D with the same shape."""
    shapes = {name: tuple(t.shape) for name, t in tensors.items()}
    first = next(iter(shapes.values()))
    if len(first) != 1 or any(shape != first for shape in shapes.values()):
        raise ValueError(f"expected 1-D per-sequence tensors of one shape (B,); got {shapes}")
