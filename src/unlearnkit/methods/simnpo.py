"""SimNPO: reference-free, length-normalised NPO with a margin (Fan et al. 2024)."""

from __future__ import annotations

from torch import Tensor

from unlearnkit.losses import simnpo_loss
from unlearnkit.methods.base import Part, Setting, StepContext
from unlearnkit.registry import FORGET_OBJECTIVES


def _simnpo(ctx: StepContext) -> Tensor:
    return simnpo_loss(
        ctx.logits("forget"), ctx.labels("forget"), ctx.param("beta"), ctx.param("delta")
    )


SIMNPO = Part(
    name="SimNPO",
    fn=_simnpo,
    views=("forget",),
    description="Simple NPO: -(2/beta) mean logsigmoid(beta (nll/|y| - delta)), no reference "
    "(paper recipe: SimNPO+GD, forget_coeff 0.125)",
    paper="Fan et al. 2024, arXiv:2410.07163",
    settings={
        "beta": Setting(4.5, "inverse temperature", positive=True),
        "delta": Setting(0.0, "margin on the length-normalised NLL"),
    },
    forget_coeff=0.125,
)
FORGET_OBJECTIVES.add(SIMNPO.name, SIMNPO, description=SIMNPO.listing)
