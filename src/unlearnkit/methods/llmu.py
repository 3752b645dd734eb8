"""LLMU's mismatch term (Yao et al. 2023): NLL of unrelated answers to the forget questions.

LLMU = GA on forget answers + this term + KL to the reference on retain data; it is composed in
:mod:`unlearnkit.methods.compose`.
"""

from __future__ import annotations

from torch import Tensor

from unlearnkit.losses import mismatch_loss
from unlearnkit.methods.base import Part, StepContext


def _mismatch(ctx: StepContext) -> Tensor:
    return mismatch_loss(ctx.logits("forget_mismatch"), ctx.labels("forget_mismatch"))


MISMATCH = Part(
    name="mismatch",
    fn=_mismatch,
    views=("forget_mismatch",),
    description="token-mean NLL of a random retain answer given the forget question",
)
