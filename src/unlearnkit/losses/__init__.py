"""Pure loss functions of unlearnkit (no model calls).

Inputs are logits ``(B, T, V)`` with labels ``(B, T)`` (``-100`` = not counted; position t
predicts label t + 1), or per-sequence summed NLLs ``(B,)`` from :func:`sequence_nll`.
Every function computes in float32 (float64 for float64 inputs) and returns that dtype.
"""

from unlearnkit.losses.field import (
    activation_mse,
    ceu_loss,
    logit_margin_loss,
    satimp_loss,
    simnpo_loss,
    undial_loss,
    wga_loss,
)
from unlearnkit.losses.nll import (
    IGNORE_INDEX,
    batch_token_nll,
    mean_token_nll,
    sequence_nll,
    token_entropy_next,
)
from unlearnkit.losses.regularizers import ap_loss, gd_loss, kl_loss, kl_loss_all_positions
from unlearnkit.losses.targeted import dpo_loss, idk_loss
from unlearnkit.losses.untargeted import ga_loss, me_loss, mismatch_loss, npo_loss

__all__ = [
    "IGNORE_INDEX",
    "activation_mse",
    "ap_loss",
    "batch_token_nll",
    "ceu_loss",
    "dpo_loss",
    "ga_loss",
    "gd_loss",
    "idk_loss",
    "kl_loss",
    "kl_loss_all_positions",
    "logit_margin_loss",
    "me_loss",
    "mean_token_nll",
    "mismatch_loss",
    "npo_loss",
    "satimp_loss",
    "sequence_nll",
    "simnpo_loss",
    "token_entropy_next",
    "undial_loss",
    "wga_loss",
]
