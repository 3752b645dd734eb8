"""What a method part is, and the per-step context that gathers its inputs.

A *part* is a forget objective (GA, NPO, DPO, IDK, ME) or a regularizer (GD, KL, AP). It names
the data *views* it reads, whether it needs the frozen reference model, and which reference NLLs
can be cached once per task (they depend only on fixed forget-side sequences). Parts only gather
inputs and call the pure functions of :mod:`unlearnkit.losses`.

Views (each a tokenized (question, answer) pair per example, see :mod:`unlearnkit.methods.data`):

- ``forget``           forget question + its answer
- ``forget_idk``       forget question + a refusal template (IDK, DPO)
- ``forget_mismatch``  forget question + the answer of an unrelated retain question (LLMU)
- ``retain``           retain question + its answer (GD, KL)
- ``retain_idk``       retain question + a refusal template (AP)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from unlearnkit.data.formatting import IGNORE_INDEX
from unlearnkit.losses import sequence_nll

VIEWS = ("forget", "forget_idk", "forget_mismatch", "retain", "retain_idk")
FORGET_SIDE_VIEWS = ("forget", "forget_idk", "forget_mismatch")
REFUSAL_VIEWS = ("forget_idk", "retain_idk")
TENSOR_KEYS = ("input_ids", "labels", "attention_mask")


def ref_nll_key(view: str) -> str:
    """Batch key holding the cached reference NLL of ``view`` (a float per example)."""
    return f"ref_nll_{view}"


@dataclass(frozen=True)
class Part:
    """One loss term: a forget objective or a regularizer.

    ``fn(ctx)`` returns a scalar tensor; ``views`` lists the data it reads;
    ``needs_reference`` says the frozen reference model is used; ``cached_ref_views`` are views
    whose reference NLLs are computed once per task (never per step); ``per_step_reference`` says
    the reference model must stay loaded during training (e.g. KL needs reference logits).
    """

    name: str
    fn: Callable[[StepContext], Tensor]
    views: tuple[str, ...]
    needs_reference: bool = False
    cached_ref_views: tuple[str, ...] = ()
    description: str = ""

    @property
    def per_step_reference(self) -> bool:
        return self.needs_reference and not self.cached_ref_views


def _pad_cat(batch: dict[str, Tensor], views: list[str], pad_id: int) -> dict[str, Tensor]:
    """Right-pad every view to one length and stack them along the batch dimension."""
    longest = max(batch[f"{v}_input_ids"].shape[1] for v in views)
    pad_values = {"input_ids": pad_id, "labels": IGNORE_INDEX, "attention_mask": 0}
    out: dict[str, Tensor] = {}
    for key, pad_value in pad_values.items():
        chunks = []
        for v in views:
            t = batch[f"{v}_{key}"]  # (B_v, T_v)
            extra = longest - t.shape[1]
            if extra:
                t = torch.nn.functional.pad(t, (0, extra), value=pad_value)
            chunks.append(t)
        out[key] = torch.cat(chunks, dim=0)  # (sum B_v, T)
    return out


class StepContext:
    """The inputs of one training step, computed lazily and at most once.

    The trained model runs *one* forward pass over all the views the method needs (padded to a
    common length and concatenated), which keeps DDP/FSDP/DeepSpeed wrappers happy and uses the
    accelerator better than several small passes. Reference quantities come from the batch when
    they were cached, and from the reference model (no gradient) otherwise.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        batch: dict[str, Tensor],
        ref_model: torch.nn.Module | None,
        views: tuple[str, ...],
        beta: float,
        pad_id: int = 0,
    ) -> None:
        self.model = model
        self.batch = batch
        self.ref_model = ref_model
        self.views = views
        self.beta = beta
        self.pad_id = pad_id
        self._logits: dict[str, Tensor] = {}
        self._nll: dict[str, Tensor] = {}

    def labels(self, view: str) -> Tensor:
        return self.batch[f"{view}_labels"]  # (B, T)

    def logits(self, view: str) -> Tensor:
        """Logits of the trained model on ``view``: (B, T_view, V)."""
        if view not in self._logits:
            self._forward_all()
        return self._logits[view]

    def _forward_all(self) -> None:
        views = [v for v in self.views if f"{v}_input_ids" in self.batch]
        joint = _pad_cat(self.batch, views, self.pad_id)
        out = self.model(
            input_ids=joint["input_ids"], attention_mask=joint["attention_mask"], use_cache=False
        )
        logits = out.logits  # (sum B_v, T, V)
        start = 0
        for v in views:
            b, t = self.batch[f"{v}_input_ids"].shape
            self._logits[v] = logits[start : start + b, :t]  # (B_v, T_v, V)
            start += b

    def nll(self, view: str) -> Tensor:
        """Summed answer NLL per sequence under the trained model: (B,)."""
        if view not in self._nll:
            self._nll[view] = sequence_nll(self.logits(view), self.labels(view))[0]
        return self._nll[view]

    def ref_logits(self, view: str) -> Tensor:
        """Logits of the frozen reference model on ``view`` (no gradient): (B, T, V)."""
        if self.ref_model is None:
            raise RuntimeError("this method needs the reference model, but none was loaded")
        with torch.no_grad():
            out = self.ref_model(
                input_ids=self.batch[f"{view}_input_ids"],
                attention_mask=self.batch[f"{view}_attention_mask"],
                use_cache=False,
            )
        return out.logits.detach()

    def ref_nll(self, view: str) -> Tensor:
        """Reference NLL per sequence: (B,). Read from the per-task cache when present."""
        key = ref_nll_key(view)
        if key in self.batch:
            return self.batch[key]  # float64; the losses convert it to their dtype
        return sequence_nll(self.ref_logits(view), self.labels(view))[0]
