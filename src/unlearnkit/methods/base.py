"""What a method part is, and the per-step context that gathers its inputs.

A *part* is a forget objective (GA, NPO, DPO, IDK, ME, SimNPO, ...) or a regularizer (GD, KL, AP,
...). It names the data *views* it reads, whether it needs the frozen reference model, which
reference NLLs can be cached once per task (they depend only on fixed forget-side sequences),
its own settings with their paper defaults, and the views whose hidden states (one chosen
layer) it reads. Parts only gather inputs and call the pure functions of :mod:`unlearnkit.losses`.

The views (``forget``, ``forget_idk``, ``retain``, ...; each a tokenized (question, answer) pair
per example) are declared in :mod:`unlearnkit.methods.views`, and a step's batch is nested by
view: ``batch["forget"]["input_ids"]``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from unlearnkit.config import declare_setting
from unlearnkit.data.formatting import IGNORE_INDEX
from unlearnkit.losses import sequence_nll
from unlearnkit.methods.views import REF_NLL, VIEWS, Batch
from unlearnkit.setting import Setting, listing


@dataclass(frozen=True)
class Part:
    """One loss term: a forget objective or a regularizer.

    ``fn(ctx)`` returns a scalar tensor; ``views`` lists the data views it reads (each declared
    in :mod:`unlearnkit.methods.views`; an undeclared one is an error here);
    ``needs_reference`` says the frozen reference model is used; ``cached_ref_views`` are views
    whose reference NLLs are computed once per task (never per step); ``per_step_reference`` says
    the reference model must stay loaded during training (e.g. KL needs reference logits).
    ``settings`` are the part's own hyperparameters with its paper's defaults (``ctx.param``
    reads them; ``method.<setting>`` overrides them); ``forget_coeff`` and ``learning_rate`` are
    the paper's defaults when the user sets none; ``hidden_views`` are views whose activations
    at ``method.layer`` it reads; ``end_step(state, settings)`` runs after each optimizer step
    on the part's state (saved with checkpoints, e.g. PD's multiplier).
    """

    name: str
    fn: Callable[[StepContext], Tensor]
    views: tuple[str, ...]
    needs_reference: bool = False
    cached_ref_views: tuple[str, ...] = ()
    description: str = ""
    paper: str = ""
    settings: Mapping[str, Setting] = field(default_factory=dict)
    forget_coeff: float | None = None
    learning_rate: float | None = None
    hidden_views: tuple[str, ...] = ()
    end_step: Callable[[dict[str, Any], Mapping[str, Any]], None] | None = None

    def __post_init__(self) -> None:
        # A setting given by its default alone is declared from it (Setting.infer).
        declared = {
            name: value if isinstance(value, Setting) else Setting.infer(name, value)
            for name, value in self.settings.items()
        }
        object.__setattr__(self, "settings", declared)
        for name in declared:  # method.<name> is now a known key (config.MethodConfig)
            declare_setting("method", name)
        # Every view a part names must be declared (methods/views.py); forget-side only cached.
        VIEWS.order((*self.views, *self.cached_ref_views, *self.hidden_views))
        moving = [v for v in self.cached_ref_views if not VIEWS.get(v).fixed]
        if moving:
            raise ValueError(f"part {self.name}: only fixed-pairing views can be cached, {moving}")

    @property
    def listing(self) -> str:
        """One line for ``unlearn ls``: what it does, its paper and its settings (name=default,
        the choices of a choice setting)."""
        line = f"{self.description} [{self.paper}]" if self.paper else self.description
        return line + listing(self.settings, "method")

    @property
    def per_step_reference(self) -> bool:
        return self.needs_reference and not self.cached_ref_views


def _pad_cat(batch: Batch, views: list[str], pad_id: int) -> dict[str, Tensor]:
    """Right-pad every view to one length and stack them along the batch dimension."""
    longest = max(batch[v]["input_ids"].shape[1] for v in views)
    pad_values = {"input_ids": pad_id, "labels": IGNORE_INDEX, "attention_mask": 0}
    out: dict[str, Tensor] = {}
    for key, pad_value in pad_values.items():
        chunks = []
        for v in views:
            t = batch[v][key]  # (B_v, T_v)
            extra = longest - t.shape[1]
            if extra:
                t = torch.nn.functional.pad(t, (0, extra), value=pad_value)
            chunks.append(t)
        out[key] = torch.cat(chunks, dim=0)  # (sum B_v, T)
    return out


def find_layer(model: torch.nn.Module, layer: int | str) -> torch.nn.Module:
    """The decoder layer ``layer`` of ``model``: an index into its stack of layers, or a module
    name (``model.layers.7``; a suffix matches, so wrapped models work too).

    Raises a one-line ``ValueError`` naming the valid choices.
    """
    modules = dict(model.named_modules())
    if isinstance(layer, int) or (isinstance(layer, str) and re.fullmatch(r"-?\d+", layer)):
        index = int(layer)
        stacks = [
            (name, m)
            for name, m in modules.items()
            if isinstance(m, torch.nn.ModuleList) and name.split(".")[-1] in ("layers", "h")
        ]
        if len(stacks) != 1:
            raise ValueError(
                f"cannot find one stack of decoder layers in {type(model).__name__}; "
                "give method.layer as a module name (e.g. model.layers.7)"
            )
        name, stack = stacks[0]
        if not 0 <= index < len(stack):
            raise ValueError(
                f"method.layer {index} is out of range: the model has {len(stack)} layers; "
                f"choose 0..{len(stack) - 1}"
            )
        return stack[index]
    matches = [m for n, m in modules.items() if n == layer or n.endswith("." + str(layer))]
    if len(matches) != 1:
        close = [n for n in modules if n.endswith("layers." + str(layer).split(".")[-1])][:3]
        raise ValueError(
            f"method.layer '{layer}' matches {len(matches)} modules; give an index or a module "
            f"name such as {', '.join(close) or 'model.layers.7'}"
        )
    return matches[0]


def forward_with_hidden(
    model: torch.nn.Module, layer: int | str | None, **inputs: Any
) -> tuple[Any, Tensor | None]:
    """Run ``model(**inputs)`` and capture the output of ``layer`` (None: nothing captured).

    A forward hook keeps the layer's activations ``(B, T, d)`` from the same pass, so a part
    that needs hidden states costs no second forward pass.
    """
    if layer is None:
        return model(**inputs), None
    captured: list[Tensor] = []

    def hook(_module: torch.nn.Module, _args: Any, output: Any) -> None:
        captured.append(output[0] if isinstance(output, tuple) else output)

    handle = find_layer(model, layer).register_forward_hook(hook)
    try:
        out = model(**inputs)
    finally:
        handle.remove()
    return out, captured[0]


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
        batch: Batch,
        ref_model: torch.nn.Module | None,
        views: tuple[str, ...],
        beta: float | None = None,
        pad_id: int = 0,
        *,
        layer: int | str | None = None,
        seed: int = 0,
    ) -> None:
        self.model = model
        self.batch = batch
        self.ref_model = ref_model
        self.views = views
        self.pad_id = pad_id
        self.layer = layer  # the layer whose activations parts read (None: none needed)
        self.seed = seed
        # The settings and state of the part being computed (set by Method.compute).
        self.params: dict[str, Any] = {} if beta is None else {"beta": beta}
        self.state: dict[str, Any] = {}
        self._logits: dict[str, Tensor] = {}
        self._hidden: dict[str, Tensor] = {}
        self._nll: dict[str, Tensor] = {}

    @property
    def beta(self) -> float:
        return float(self.params["beta"])

    def param(self, name: str) -> Any:
        """The resolved setting ``name`` of the part being computed."""
        return self.params[name]

    def labels(self, view: str) -> Tensor:
        return self.batch[view]["labels"]  # (B, T)

    def logits(self, view: str) -> Tensor:
        """Logits of the trained model on ``view``: (B, T_view, V)."""
        if view not in self._logits:
            self._forward_all()
        return self._logits[view]

    def _forward_all(self) -> None:
        views = [v for v in self.views if v in self.batch]
        joint = _pad_cat(self.batch, views, self.pad_id)
        out, hidden = forward_with_hidden(
            self.model,
            self.layer,
            input_ids=joint["input_ids"],
            attention_mask=joint["attention_mask"],
            use_cache=False,
        )
        logits = out.logits  # (sum B_v, T, V)
        start = 0
        for v in views:
            b, t = self.batch[v]["input_ids"].shape
            self._logits[v] = logits[start : start + b, :t]  # (B_v, T_v, V)
            if hidden is not None:
                self._hidden[v] = hidden[start : start + b, :t]  # (B_v, T_v, d)
            start += b

    def hidden(self, view: str) -> Tensor:
        """Activations of the trained model at ``self.layer`` on ``view``: (B, T_view, d)."""
        if self.layer is None:
            raise RuntimeError("no layer was chosen for hidden states (method.layer)")
        if view not in self._hidden:
            self._forward_all()
        return self._hidden[view]

    def ref_hidden(self, view: str) -> Tensor:
        """Activations of the frozen reference at ``self.layer`` on ``view`` (no gradient)."""
        if self.ref_model is None:
            raise RuntimeError("this method needs the reference model, but none was loaded")
        with torch.no_grad():
            _, hidden = forward_with_hidden(
                self.ref_model,
                self.layer,
                input_ids=self.batch[view]["input_ids"],
                attention_mask=self.batch[view]["attention_mask"],
                use_cache=False,
            )
        assert hidden is not None  # a layer is set whenever a part reads hidden states
        return hidden.detach()

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
                input_ids=self.batch[view]["input_ids"],
                attention_mask=self.batch[view]["attention_mask"],
                use_cache=False,
            )
        return out.logits.detach()

    def ref_nll(self, view: str) -> Tensor:
        """Reference NLL per sequence: (B,). Read from the per-task cache when present."""
        cached = self.batch[view].get(REF_NLL)
        if cached is not None:
            return cached  # float64; the losses convert it to their dtype
        return sequence_nll(self.ref_logits(view), self.labels(view))[0]
