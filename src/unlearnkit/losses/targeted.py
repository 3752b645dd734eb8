"""Targeted forget objectives: IDK and DPO (the model is taught a refusal on forget questions)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from unlearnkit.losses.nll import batch_token_nll, check_beta, check_same_shape, upcast


def idk_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """IDK fine-tuning (Maini et al. 2024, TOFU): NLL of a refusal given the forget question.

    Equation::

        L_IDK = (1 / N) * sum_i sum_{counted t} -log p_theta(y_idk[t+1] | x_i, y_idk[<=t])

    Reduction: mean over all counted tokens of the batch (the Hugging Face model loss, as the
    paper's code uses).

    Args:
        logits: ``(B, T, V)`` on (forget question, refusal); labels: ``(B, T)``, ``-100`` = ignored.

    Returns:
        A float32 scalar.
    """
    return batch_token_nll(logits, labels)


def dpo_loss(
    nll_ans: Tensor,
    nll_idk: Tensor,
    ref_nll_ans: Tensor,
    ref_nll_idk: Tensor,
    beta: float,
) -> Tensor:
    """Direct Preference Optimization (Rafailov et al. 2023) with the refusal preferred.

    The refusal ``y_idk`` is the preferred answer and the forget answer ``y`` the rejected one:

    Equation::

        L_DPO = -(2 / beta) * E[ log sigmoid( beta * log(pi_theta(y_idk | x) / pi_ref(y_idk | x))
                                           - beta * log(pi_theta(y | x) / pi_ref(y | x)) ) ]
              = -(2 / beta) * mean_i log sigmoid(beta * ((nll_ans_i - nll_idk_i)
                                                        - (ref_nll_ans_i - ref_nll_idk_i)))

    with per-sequence summed NLLs (:func:`sequence_nll`). The ``2 / beta`` scale follows the
    paper's code (Yuan et al. 2025), which makes DPO and NPO comparable.

    Args:
        nll_ans, nll_idk: ``(B,)`` summed NLL of the forget answer / refusal, model being trained.
        ref_nll_ans, ref_nll_idk: ``(B,)`` the same under the frozen reference (constants).
        beta: inverse temperature > 0 (paper default 0.1).

    Returns:
        A float32 scalar; ``(2 / beta) log 2`` when the model equals the reference.
    """
    check_beta(beta)
    check_same_shape(
        nll_ans=nll_ans, nll_idk=nll_idk, ref_nll_ans=ref_nll_ans, ref_nll_idk=ref_nll_idk
    )
    policy = upcast(nll_ans) - upcast(nll_idk)  # (B,) log pi(idk) - log pi(ans)
    reference = (ref_nll_ans.detach() - ref_nll_idk.detach()).to(policy.dtype)  # (B,)
    return -(2.0 / beta) * F.logsigmoid(beta * (policy - reference)).mean()
