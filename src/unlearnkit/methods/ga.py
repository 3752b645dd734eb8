"""GA: gradient ascent on the forget answers (Jang et al. 2023)."""

from __future__ import annotations

from torch import Tensor

from unlearnkit.losses import ga_loss
from unlearnkit.methods.base import Part, StepContext
from unlearnkit.registry import FORGET_OBJECTIVES


def _ga(ctx: StepContext) -> Tensor:
    return ga_loss(ctx.logits("forget"), ctx.labels("forget"))


GA = Part(
    name="GA",
    fn=_ga,
    views=("forget",),
    description="Gradient Ascent: minus the token-mean NLL of the forget answers",
    paper="Jang et al. 2023, arXiv:2210.01504",
)
FORGET_OBJECTIVES.add(GA.name, GA, description=GA.listing)
