"""UNDIAL: self-distillation toward the frozen model's adjusted logits (Dong et al. 2024)."""

from __future__ import annotations

from torch import Tensor

from unlearnkit.losses import undial_loss
from unlearnkit.methods.base import Part, Setting, StepContext
from unlearnkit.registry import FORGET_OBJECTIVES


def _undial(ctx: StepContext) -> Tensor:
    # The teacher is the frozen reference; its (B, T, V) logits are recomputed per step.
    return undial_loss(
        ctx.logits("forget"), ctx.ref_logits("forget"), ctx.labels("forget"), ctx.param("beta")
    )


UNDIAL = Part(
    name="UNDIAL",
    fn=_undial,
    views=("forget",),
    needs_reference=True,
    description="UNDIAL: cross-entropy to softmax(z_ref - beta onehot(y)) on forget tokens "
    "(recipe: UNDIAL alone, learning rate 1e-4)",
    paper="Dong et al. 2024, arXiv:2402.10052",
    settings={"beta": Setting(10.0, "how far the true token logit is lowered", positive=True)},
    learning_rate=1e-4,
)
FORGET_OBJECTIVES.add(UNDIAL.name, UNDIAL, description=UNDIAL.listing)
