"""Untargeted forget objectives: GA, NPO, ME and LLMU's mismatch term.

Untargeted unlearning only says what the model must *not* answer on the forget set; these
losses push the likelihood of the forget answer down (GA, NPO) or flatten the next-token
distribution (ME). All are minimised.
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor

from unlearnkit.losses.nll import (
    batch_token_nll,
    check_beta,
    check_same_shape,
    counted_rows,
)


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

    computed in this closed form: no uniform or softmax ``(B, T, V)`` tensor is built, only the
    counted rows are upcast. Counted positions are those predicting a label != -100 (question
    tokens count when the question is not masked, as in ME+GD's default; padding never does).
    The paper's code evaluates ``sum U (log U - log(p + 1e-12))``; the closed form is the exact
    value (the two differ only where some p_t(v) is below ~1e-12). Minimum 0 at uniform logits.

    Args:
        logits: ``(B, T, V)`` logits on the forget batch; labels: ``(B, T)``, ``-100`` = ignored.

    Returns:
        A float32 scalar >= 0 (0 when no position is counted).
    """
    rows, _, _ = counted_rows(logits, labels)  # (N, V) float32
    vocab = logits.shape[-1]
    kl = rows.logsumexp(dim=-1) - rows.mean(dim=-1) - math.log(vocab)  # (N,)
    return kl.sum() / max(kl.numel(), 1)


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
