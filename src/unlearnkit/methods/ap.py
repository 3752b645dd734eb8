"""AP regularizer: answer preservation, the retain answer preferred over a refusal (Yuan et al.)."""

from __future__ import annotations

from torch import Tensor

from unlearnkit.losses import ap_loss
from unlearnkit.methods.base import Part, Setting, StepContext
from unlearnkit.registry import REGULARIZERS


def _ap(ctx: StepContext) -> Tensor:
    return ap_loss(ctx.nll("retain"), ctx.nll("retain_idk"), ctx.beta)


AP = Part(
    name="AP",
    fn=_ap,
    views=("retain", "retain_idk"),
    description="Answer Preservation: -(1/beta) mean log sigmoid(beta (nll_idk - nll_ans))",
    paper="Yuan et al. 2025, arXiv:2410.08109",
    settings={"beta": Setting(0.1, "inverse temperature of the preference", positive=True)},
)
REGULARIZERS.add(AP.name, AP, description=AP.listing)
