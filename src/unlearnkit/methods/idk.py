"""IDK: fine-tune on a refusal template for each forget question (Maini et al. 2024)."""

from __future__ import annotations

from torch import Tensor

from unlearnkit.losses import idk_loss
from unlearnkit.methods.base import Part, StepContext
from unlearnkit.registry import FORGET_OBJECTIVES


def _idk(ctx: StepContext) -> Tensor:
    return idk_loss(ctx.logits("forget_idk"), ctx.labels("forget_idk"))


IDK = Part(
    name="IDK",
    fn=_idk,
    views=("forget_idk",),
    description="IDK fine-tuning: NLL of a refusal given the forget question",
    paper="TOFU, Maini et al. 2024, arXiv:2401.06121",
)
FORGET_OBJECTIVES.add(IDK.name, IDK, description=IDK.listing)
