"""GD regularizer: keep the NLL of retain answers low."""

from __future__ import annotations

from torch import Tensor

from unlearnkit.losses import gd_loss
from unlearnkit.methods.base import Part, StepContext
from unlearnkit.registry import REGULARIZERS


def _gd(ctx: StepContext) -> Tensor:
    return gd_loss(ctx.logits("retain"), ctx.labels("retain"))


GD = Part(
    name="GD",
    fn=_gd,
    views=("retain",),
    description="Gradient Descent on retain data: token-mean NLL of the retain answers",
    paper="Liu et al. 2022; TOFU, Maini et al. 2024, arXiv:2401.06121",
)
REGULARIZERS.add(GD.name, GD, description=GD.listing)
