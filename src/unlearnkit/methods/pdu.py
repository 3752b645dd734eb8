"""PDU, primal-dual unlearning (Entesari et al. 2025), as a forget part and a regularizer.

- ``LMF`` (forget): logit-margin flattening, ``(max_v z - mean_v z)^2`` on forget positions.
- ``PD`` (regularizer): the retain NLL held below ``eps`` by a Lagrange multiplier ``lambda``::

      L = L_forget + lambda * (L_retain - eps),   lambda <- max(0, lambda + eta * (L_retain - eps))

  The primal step is the optimizer's; the dual ascent step runs after each optimizer step on
  the mean retain loss of that step (averaged over accumulation steps and processes, so every
  process holds the same ``lambda``). ``lambda`` starts at 1, ``eta`` is ``method.dual_lr``
  (1), ``eps`` is ``method.retain_eps`` or, when unset, the first step's retain loss (the
  constraint: do not get worse than the model to unlearn). Both are saved with every
  checkpoint (``method_state.json``), so a resumed run continues with the same multiplier.

open-unlearning updates ``lambda`` after every micro-batch and can delay updates for warm-up
epochs; updating once per optimizer step makes the result independent of how the batch is split
into accumulation steps.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from unlearnkit.losses import gd_loss, logit_margin_loss
from unlearnkit.methods.base import Part, Setting, StepContext
from unlearnkit.registry import FORGET_OBJECTIVES, REGULARIZERS

INITIAL_MULTIPLIER = 1.0  # open-unlearning's alpha


def _lmf(ctx: StepContext) -> Tensor:
    return logit_margin_loss(ctx.logits("forget"), ctx.labels("forget"))


def _pd(ctx: StepContext) -> Tensor:
    retain = gd_loss(ctx.logits("retain"), ctx.labels("retain"))  # scalar
    state = ctx.state
    state.setdefault("multiplier", INITIAL_MULTIPLIER)
    seen = retain.detach()
    state["_sum"] = state["_sum"] + seen if "_sum" in state else seen
    state["_n"] = state.get("_n", 0) + 1
    eps = state.get("eps", ctx.param("retain_eps"))
    # Before eps is known (first step, no method.retain_eps) the shift is this batch's own loss:
    # the gradient, lambda * grad L_retain, does not depend on it.
    shift = seen if eps is None else eps
    return state["multiplier"] * (retain - shift)


def dual_step(state: dict[str, Any], settings: Mapping[str, Any]) -> None:
    """Dual ascent on the multiplier from the mean retain loss of the step just taken."""
    if "_sum" not in state:
        return
    mean = state.pop("_sum") / state.pop("_n")
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.all_reduce(mean, op=torch.distributed.ReduceOp.SUM)
        mean = mean / torch.distributed.get_world_size()
    observed = float(mean)
    if state.get("eps") is None:
        eps = settings.get("retain_eps")
        state["eps"] = observed if eps is None else float(eps)
    step = float(settings["dual_lr"]) * (observed - state["eps"])
    state["multiplier"] = max(0.0, float(state["multiplier"]) + step)


LMF = Part(
    name="LMF",
    fn=_lmf,
    views=("forget",),
    description="Logit-Margin Flattening: mean (max_v z - mean_v z)^2 on forget positions "
    "(PDU's forget loss; recipe: PDU = LMF+PD)",
    paper="Entesari et al. 2025, arXiv:2506.05314",
)
PD = Part(
    name="PD",
    fn=_pd,
    views=("retain",),
    description="Primal-dual retain constraint: lambda (NLL_retain - eps), lambda by dual ascent",
    paper="Entesari et al. 2025, arXiv:2506.05314",
    settings={
        "retain_eps": Setting(None, "retain-loss bound; None = the first step's retain loss"),
        "dual_lr": Setting(1.0, "step size of the multiplier's dual ascent"),
    },
    end_step=dual_step,
)
FORGET_OBJECTIVES.add(LMF.name, LMF, description=LMF.listing)
REGULARIZERS.add(PD.name, PD, description=PD.listing)
