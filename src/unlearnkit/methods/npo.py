"""NPO: negative preference optimization against a frozen reference (Zhang et al. 2024)."""

from __future__ import annotations

from torch import Tensor

from unlearnkit.losses import npo_loss
from unlearnkit.methods.base import Part, Setting, StepContext
from unlearnkit.registry import FORGET_OBJECTIVES


def _npo(ctx: StepContext) -> Tensor:
    # The reference NLL of each forget answer is fixed for the task: read from the cache.
    return npo_loss(ctx.nll("forget"), ctx.ref_nll("forget"), ctx.beta)


NPO = Part(
    name="NPO",
    fn=_npo,
    views=("forget",),
    needs_reference=True,
    cached_ref_views=("forget",),
    description="Negative Preference Optimization: -(2/beta) mean logsigmoid(beta (nll - ref_nll))",
    paper="Zhang et al. 2024, arXiv:2404.05868",
    settings={"beta": Setting(0.1, "NPO inverse temperature", positive=True)},
)
FORGET_OBJECTIVES.add(NPO.name, NPO, description=NPO.listing)
