"""ME: maximize the next-token entropy on forget data (Yuan et al. 2025)."""

from __future__ import annotations

from torch import Tensor

from unlearnkit.losses import me_loss
from unlearnkit.methods.base import Part, Setting, StepContext
from unlearnkit.registry import FORGET_OBJECTIVES


def _me(ctx: StepContext) -> Tensor:
    return me_loss(ctx.logits("forget"), ctx.labels("forget"), epsilon=ctx.param("me_epsilon"))


ME = Part(
    name="ME",
    fn=_me,
    views=("forget",),
    description="Maximizing Entropy: mean KL(uniform || p) over counted forget positions",
    paper="Yuan et al. 2025, arXiv:2410.08109",
    settings={
        "me_epsilon": Setting(
            0.0,
            "0 = the exact closed form of KL(U || p); > 0 = sum U (log U - log(p + eps)) "
            "(the paper's code: 1e-12)",
            minimum=0.0,
        )
    },
)
FORGET_OBJECTIVES.add(ME.name, ME, description=ME.listing)
