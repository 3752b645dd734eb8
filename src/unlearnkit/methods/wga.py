"""WGA: gradient ascent weighted by each token's own probability (Wang et al. 2025)."""

from __future__ import annotations

from torch import Tensor

from unlearnkit.losses import wga_loss
from unlearnkit.methods.base import Part, Setting, StepContext
from unlearnkit.registry import FORGET_OBJECTIVES


def _wga(ctx: StepContext) -> Tensor:
    return wga_loss(ctx.logits("forget"), ctx.labels("forget"), ctx.param("beta"))


WGA = Part(
    name="WGA",
    fn=_wga,
    views=("forget",),
    description="Weighted Gradient Ascent: -mean p^beta * NLL per forget token (recipe: WGA+GD)",
    paper="Wang et al. 2025, arXiv:2502.19301",
    settings={"beta": Setting(1.0, "exponent of p(token) in the weight", positive=True)},
)
FORGET_OBJECTIVES.add(WGA.name, WGA, description=WGA.listing)
