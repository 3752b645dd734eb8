"""RMU, representation misdirection (Li et al. 2024, WMDP), as a forget part and a regularizer.

- ``RMU`` (forget): the activations of ``method.layer`` on forget tokens are pushed toward
  ``c * u``, a fixed random direction ``u`` (uniform in [0, 1)^d, normalised; drawn once from
  ``train.seed``, so a resumed run draws the same) scaled by ``method.steering_coeff`` ``c``.
- ``ED`` (regularizer, "embedding difference"): the same layer's activations on retain tokens
  are kept close to the frozen reference model's.

Both read the activations from the forward pass the loss already runs (a forward hook on the
chosen layer), so RMU costs no second pass of the trained model. Defaults follow
open-unlearning's TOFU configuration: layer 7, steering coefficient 2, every parameter trained
(WMDP trains only ``layers.(5|6|7).mlp.down_proj.weight``: set ``method.trainable_params``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from unlearnkit.losses import activation_mse
from unlearnkit.methods.base import Part, Setting, StepContext
from unlearnkit.registry import FORGET_OBJECTIVES, REGULARIZERS

# the layer whose activations RMU moves and ED holds (open-unlearning: 7)
_LAYER = Setting(7, "layer index or module name whose activations are read", type="layer")


def control_vector(dim: int, steering_coeff: float, seed: int) -> Tensor:
    """``c * u / ||u||`` with ``u ~ U[0, 1)^dim`` from a generator seeded by ``seed``: (dim,)."""
    gen = torch.Generator().manual_seed(int(seed))
    u = torch.rand(dim, generator=gen, dtype=torch.float32)  # (d,)
    return u / u.norm() * float(steering_coeff)


def _rmu(ctx: StepContext) -> Tensor:
    hidden = ctx.hidden("forget")  # (B, T, d)
    target = control_vector(hidden.shape[-1], ctx.param("steering_coeff"), ctx.seed)
    return activation_mse(hidden, target.to(hidden.device), ctx.labels("forget"))


def _ed(ctx: StepContext) -> Tensor:
    return activation_mse(ctx.hidden("retain"), ctx.ref_hidden("retain"), ctx.labels("retain"))


RMU = Part(
    name="RMU",
    fn=_rmu,
    views=("forget",),
    description="Representation Misdirection: a layer's forget activations pushed toward a "
    "random direction (recipe: RMU+ED)",
    paper="Li et al. 2024 (WMDP), arXiv:2403.03218",
    settings={
        "layer": _LAYER,
        "steering_coeff": Setting(2.0, "norm of the random target activation"),
    },
    hidden_views=("forget",),
)
ED = Part(
    name="ED",
    fn=_ed,
    views=("retain",),
    needs_reference=True,
    description="Embedding Difference: a layer's retain activations kept close to the frozen "
    "model's (RMU's retain term)",
    paper="Li et al. 2024 (WMDP), arXiv:2403.03218",
    settings={"layer": _LAYER},
    hidden_views=("retain",),
)
FORGET_OBJECTIVES.add(RMU.name, RMU, description=RMU.listing)
REGULARIZERS.add(ED.name, ED, description=ED.listing)
