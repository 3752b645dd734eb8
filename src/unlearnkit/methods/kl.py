"""KL regularizer: stay close to the reference model's next-token distributions on retain data."""

from __future__ import annotations

from torch import Tensor

from unlearnkit.losses import kl_loss, kl_loss_all_positions
from unlearnkit.methods.base import Part, Setting, StepContext
from unlearnkit.registry import REGULARIZERS


def _kl(ctx: StepContext) -> Tensor:
    # The retain partner changes every epoch, so reference logits are computed per step.
    if ctx.param("kl_positions") == "all":
        return kl_loss_all_positions(ctx.logits("retain"), ctx.ref_logits("retain"))
    return kl_loss(ctx.logits("retain"), ctx.ref_logits("retain"), ctx.labels("retain"))


KL = Part(
    name="KL",
    fn=_kl,
    views=("retain",),
    needs_reference=True,
    description="KL(p_ref || p) of next-token distributions on retain data",
    paper="TOFU, Maini et al. 2024, arXiv:2401.06121",
    settings={
        "kl_positions": Setting(
            "counted",
            "positions the KL averages over: the counted answer positions, or all B x T "
            "positions of the (fixed-length) batch, padding included (the paper's code)",
            type="choice",
            choices=("counted", "all"),
        )
    },
)
REGULARIZERS.add(KL.name, KL, description=KL.listing)
