"""CE-U: cross-entropy to the model's own distribution without the true token (Yang 2025)."""

from __future__ import annotations

from torch import Tensor

from unlearnkit.losses import ceu_loss
from unlearnkit.methods.base import Part, Setting, StepContext
from unlearnkit.registry import FORGET_OBJECTIVES


def _ceu(ctx: StepContext) -> Tensor:
    return ceu_loss(ctx.logits("forget"), ctx.labels("forget"), int(ctx.param("ignore_first")))


CEU = Part(
    name="CE-U",
    fn=_ceu,
    views=("forget",),
    description="Cross-Entropy Unlearning: H(softmax(z with z[y] = -inf), p) on forget tokens, "
    "first answer token left out (recipe: CE-U alone)",
    paper="Yang et al. 2025, arXiv:2503.01224",
    settings={"ignore_first": Setting(1, "first answer tokens left out", type="int")},
)
FORGET_OBJECTIVES.add(CEU.name, CEU, description=CEU.listing)
