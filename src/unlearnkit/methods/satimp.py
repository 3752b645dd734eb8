"""SatImp: gradient ascent weighted by saturation and importance (Yang et al. 2025)."""

from __future__ import annotations

from torch import Tensor

from unlearnkit.losses import satimp_loss
from unlearnkit.methods.base import Part, Setting, StepContext
from unlearnkit.registry import FORGET_OBJECTIVES


def _satimp(ctx: StepContext) -> Tensor:
    return satimp_loss(
        ctx.logits("forget"), ctx.labels("forget"), ctx.param("beta"), ctx.param("beta2")
    )


SATIMP = Part(
    name="SatImp",
    fn=_satimp,
    views=("forget",),
    description="SatImp: -mean p^beta (1-p)^beta2 * NLL per forget token "
    "(recipe: SatImp+GD, forget_coeff 0.1)",
    paper="Yang et al. 2025, arXiv:2505.11953",
    settings={
        "beta": Setting(5.0, "exponent of p (beta1)", positive=True),
        "beta2": Setting(1.0, "exponent of 1 - p (importance)", positive=True),
    },
    forget_coeff=0.1,
)
FORGET_OBJECTIVES.add(SATIMP.name, SATIMP, description=SATIMP.listing)
