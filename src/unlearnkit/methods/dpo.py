"""DPO: the refusal preferred over the forget answer (Rafailov et al. 2023; TOFU / Yuan et al.)."""

from __future__ import annotations

from torch import Tensor

from unlearnkit.losses import dpo_loss
from unlearnkit.methods.base import Part, Setting, StepContext
from unlearnkit.registry import FORGET_OBJECTIVES


def _dpo(ctx: StepContext) -> Tensor:
    return dpo_loss(
        ctx.nll("forget"),
        ctx.nll("forget_idk"),
        ctx.ref_nll("forget"),
        ctx.ref_nll("forget_idk"),
        ctx.beta,
    )


DPO = Part(
    name="DPO",
    fn=_dpo,
    views=("forget", "forget_idk"),
    needs_reference=True,
    cached_ref_views=("forget", "forget_idk"),
    description="Direct Preference Optimization with a refusal as the preferred answer",
    paper="Rafailov et al. 2023, arXiv:2305.18290; TOFU, Maini et al. 2024",
    settings={"beta": Setting(0.1, "DPO inverse temperature", positive=True)},
)
FORGET_OBJECTIVES.add(DPO.name, DPO, description=DPO.listing)
