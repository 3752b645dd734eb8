"""Compose a method by name: ``FORGET+REGULARIZER`` (``ME+GD``), ``FORGET`` alone, ``LLMU``, or a
named recipe (``IdkDPO`` = ``DPO+GD``, ``AltPO``, ``PDU``, see :data:`RECIPES`).

The training loss is::

    L = forget_coeff * L_forget + regularization_coeff * L_regularizer

(LLMU: ``forget_coeff * L_GA + mismatch_coeff * L_mismatch + regularization_coeff * L_KL``).
Defaults of the paper's TOFU scripts: ``forget_coeff`` 0.1 and no question masking for ME+GD,
1.0 with question masking for every other method (the ``paper`` profile adds its per-benchmark
values, :mod:`unlearnkit.profiles`). Masking applies to the forget view only.
A part from another paper brings its paper's coefficient (SimNPO 0.125, SatImp 0.1) and
settings (``Part.settings``: ``method.beta`` etc. left unset mean each part's own default).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from unlearnkit.config import MethodConfig
from unlearnkit.methods.base import Part, Setting, StepContext
from unlearnkit.methods.llmu import MISMATCH
from unlearnkit.methods.views import VIEWS, Batch
from unlearnkit.registry import FORGET_OBJECTIVES, METHODS, REGULARIZERS
from unlearnkit.setting import check_declared

# Named recipes: compositions of registered parts under the name their paper gives them.
RECIPES: dict[str, tuple[str, str, str]] = {
    # name: (forget objective, regularizer, description)
    "IdkDPO": ("DPO", "GD", "IdkDPO (TOFU, Maini et al. 2024): DPO with a refusal preferred + GD"),
    "AltPO": (
        "AltDPO",
        "GD",
        "AltPO (Mekala et al. 2024): DPO with an alternative answer preferred + GD",
    ),
    "PDU": (
        "LMF",
        "PD",
        "PDU (Entesari et al. 2025): logit-margin flattening, retain NLL held <= eps by a "
        "primal-dual multiplier",
    ),
}


@dataclass(frozen=True)
class Term:
    """One weighted part of a method's loss; ``key`` names it in logs (``loss_<key>``)."""

    key: str
    part: Part
    coeff: float
    settings: dict[str, Any] = field(default_factory=dict)  # the part's resolved settings


@dataclass
class Method:
    """A composed unlearning method: weighted parts plus the settings they share."""

    name: str
    terms: list[Term]
    beta: float | None
    mask_question: bool
    pad_id: int = 0
    skipped: list[str] = field(default_factory=list)  # parts with coefficient 0 (not computed)
    layer: int | str | None = None  # the layer whose activations parts read (RMU)
    trainable_params: str | None = None  # regex of the parameters to train (None: all)
    learning_rate: float | None = None  # the paper's default when the user sets none
    seed: int = 0  # fixed random quantities of a part (RMU's direction) derive from it
    # Per-term state that evolves with training (PD's multiplier), saved with checkpoints;
    # keys starting with "_" are transient (this step's running sums) and never saved.
    state: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def reads_all_positions(self) -> tuple[str, ...]:
        """Views whose every position counts in some term (KL with ``kl_positions="all"``)."""
        return tuple(
            v for t in self.terms if t.settings.get("kl_positions") == "all" for v in t.part.views
        )

    def fixed_length_views(self) -> tuple[str, ...]:
        """Views whose padding changes the loss, so fixed-length padding must be built for them:
        the views whose question is unmasked (their labels cover the padding; the forget view
        under ``mask_question=False``) and the views KL averages over every position. Other
        views are numerically unaffected."""
        views = set(self.reads_all_positions)
        views.update(v for v in self.views if not VIEWS.get(v).masks_question(self.mask_question))
        return VIEWS.order(views)

    @property
    def views(self) -> tuple[str, ...]:
        return VIEWS.order(v for t in self.terms for v in t.part.views)

    @property
    def needs_reference(self) -> bool:
        return any(t.part.needs_reference for t in self.terms)

    @property
    def per_step_reference(self) -> bool:
        """The reference model must stay loaded while training (e.g. KL), not only for caching."""
        return any(t.part.per_step_reference for t in self.terms)

    @property
    def cached_ref_views(self) -> tuple[str, ...]:
        return VIEWS.order(v for t in self.terms for v in t.part.cached_ref_views)

    @property
    def needs_refusals(self) -> bool:
        return "refusals" in VIEWS.needs(self.views)

    @property
    def needs_retain(self) -> bool:
        return "retain" in VIEWS.needs(self.views)

    @property
    def needs_alternates(self) -> bool:
        return "alternates" in VIEWS.needs(self.views)

    def compute(
        self, model: torch.nn.Module, batch: Batch, ref_model: torch.nn.Module | None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Total loss and each (unweighted) part: ``sum_k coeff_k * part_k``; ``batch`` nested
        by view (``batch["forget"]["input_ids"]``)."""
        ctx = StepContext(
            model,
            batch,
            ref_model,
            self.views,
            None,
            self.pad_id,
            layer=self.layer,
            seed=self.seed,
        )
        parts: dict[str, Tensor] = {}
        total: Tensor | None = None
        for term in self.terms:
            ctx.params = term.settings
            ctx.state = self.state.setdefault(term.key, {})
            value = term.part.fn(ctx)  # scalar
            parts[term.key] = value
            weighted = term.coeff * value
            total = weighted if total is None else total + weighted
        assert total is not None  # a method always has at least one term (checked when built)
        return total, parts

    def end_step(self) -> None:
        """After each optimizer step: let stateful parts update (PD's dual ascent)."""
        for term in self.terms:
            if term.part.end_step is not None:
                term.part.end_step(self.state.setdefault(term.key, {}), term.settings)

    def state_dict(self) -> dict[str, dict[str, Any]]:
        """The saved part of the state (JSON-ready; transient keys left out)."""
        return {
            key: {k: v for k, v in st.items() if not k.startswith("_")}
            for key, st in self.state.items()
            if any(not k.startswith("_") for k in st)
        }

    def load_state_dict(self, state: Mapping[str, Mapping[str, Any]]) -> None:
        self.state = {key: dict(st) for key, st in state.items()}

    def describe(self) -> dict[str, object]:
        """The resolved settings, recorded beside each run's outputs."""
        return {
            "name": self.name,
            "terms": {t.key: {"part": t.part.name, "coeff": t.coeff} for t in self.terms},
            "settings": {t.key: dict(t.settings) for t in self.terms if t.settings},
            "beta": self.beta,
            "mask_question": self.mask_question,
            "mask_question_views": [v for v in VIEWS if VIEWS.get(v).mask_follows_method],
            "needs_reference": self.needs_reference,
            "cached_ref_views": list(self.cached_ref_views),
            "skipped_zero_coeff": list(self.skipped),
            "layer": self.layer,
            "trainable_params": self.trainable_params,
        }


def _check_coeff(value: float, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{where} must be a finite number >= 0, got {value!r}; set {where}=1.0")
    if value < 0:
        raise ValueError(
            f"{where} must be >= 0, got {value} (every term is minimized; the sign is built in)"
        )
    return float(value)


def parse_method_name(name: str) -> tuple[str, str | None]:
    """``"me+gd"`` -> ``("ME", "GD")``; ``"NPO"`` -> ``("NPO", None)``; ``"LLMU"`` likewise.

    Raises ``ValueError`` naming the registry's choices for an unknown part.
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(
            f"method name must look like FORGET+REGULARIZER (e.g. ME+GD), got {name!r}"
        )
    pieces = [p.strip() for p in name.strip().split("+")]
    if len(pieces) > 2 or any(not p for p in pieces):
        raise ValueError(
            f"method '{name}' must be FORGET, FORGET+REGULARIZER, LLMU or a recipe "
            f"({', '.join(RECIPES)}) "
            f"(forget: {', '.join(FORGET_OBJECTIVES.names())}; "
            f"regularizer: {', '.join(REGULARIZERS.names())})"
        )
    if len(pieces) == 1:
        if pieces[0].upper() == "LLMU":
            return "LLMU", None
        recipe = recipe_of(pieces[0])
        if recipe is not None:
            return recipe
        if pieces[0] not in FORGET_OBJECTIVES and pieces[0].upper() not in FORGET_OBJECTIVES:
            METHODS.get(pieces[0])  # raises: "unknown method 'NPX' (did you mean 'NPO'?); ..."
        forget: Part = FORGET_OBJECTIVES.get(pieces[0])
        return forget.name, None
    forget = FORGET_OBJECTIVES.get(pieces[0])
    regularizer: Part = REGULARIZERS.get(pieces[1])
    return forget.name, regularizer.name


def recipe_of(name: str) -> tuple[str, str] | None:
    """``(forget, regularizer)`` of the named recipe ``name`` (any case), else None."""
    lowered = {k.lower(): k for k in RECIPES}
    key = lowered.get(name.strip().lower())
    return None if key is None else RECIPES[key][:2]


def canonical_name(name: str) -> str:
    forget, reg = parse_method_name(name)
    return forget if reg is None else f"{forget}+{reg}"


def paper_defaults(name: str) -> tuple[float, bool]:
    """``(forget_coeff, mask_question)`` the method's paper uses for method ``name``."""
    forget, _ = parse_method_name(name)
    if canonical_name(name) == "ME+GD":
        return 0.1, False
    part = FORGET_OBJECTIVES.get("GA" if forget == "LLMU" else forget)
    return (1.0 if part.forget_coeff is None else part.forget_coeff), True


def default_learning_rate(name: str) -> float | None:
    """The learning rate the forget objective's paper uses (None: the general default)."""
    forget, _ = parse_method_name(name)
    return None if forget == "LLMU" else FORGET_OBJECTIVES.get(forget).learning_rate


def _resolve_settings(part: Part, cfg: MethodConfig) -> dict[str, Any]:
    """The part's settings: its paper defaults, each overridden by ``method.<name>`` when set,
    checked by the part's own declaration (:class:`~unlearnkit.methods.base.Setting`)."""
    out: dict[str, Any] = {}
    for key, setting in part.settings.items():
        value = cfg.settings.get(key)
        out[key] = setting.check(key, setting.default if value is None else value)
    return out


def part_settings() -> dict[str, list[str]]:
    """Every setting some registered part declares -> the parts that declare it."""
    parts = [
        *(FORGET_OBJECTIVES.get(n) for n in FORGET_OBJECTIVES.names()),
        *(REGULARIZERS.get(n) for n in REGULARIZERS.names()),
        MISMATCH,
    ]
    out: dict[str, list[str]] = {}
    for part in parts:
        for key in part.settings:
            out.setdefault(key, []).append(part.name)
    return out


def check_method_settings(cfg: MethodConfig, names: list[str], chosen: set[str]) -> None:
    """Build method ``cfg`` under each of ``names`` (its parts check their own settings: a
    one-line ValueError) and refuse a part setting in ``chosen`` (the ``method.<key>`` the user
    set) that none of those methods' parts declares: it would change nothing. A key no part
    declares is unknown. Each setting's value is then stored as its part's type (an override's
    text ``"0.2"`` becomes 0.2)."""
    declared: dict[str, Setting] = {}
    for name in names:
        method = build_method(dataclasses.replace(cfg, name=name))
        for term in method.terms:
            for key, setting in term.part.settings.items():
                declared.setdefault(key, setting)
    check_declared(
        "method", cfg.settings, part_settings(), declared, chosen, ", ".join(names),
        whose="the parts'", listed_by="unlearn ls objectives",
        instead="choose a method that has it (unlearn ls objectives)",
    )  # fmt: skip


def build_method(cfg: MethodConfig, pad_id: int = 0) -> Method:
    """Resolve ``cfg`` (name, coefficients, paper defaults) into a :class:`Method`.

    Raises ``ValueError`` with a one-line fix for unknown names and bad coefficients.
    """
    forget_name, reg_name = parse_method_name(cfg.name)
    name = canonical_name(cfg.name)
    default_coeff, default_mask = paper_defaults(name)
    forget_coeff = _check_coeff(
        default_coeff if cfg.forget_coeff is None else cfg.forget_coeff, "method.forget_coeff"
    )
    reg_coeff = _check_coeff(cfg.regularization_coeff, "method.regularization_coeff")
    beta = cfg.beta  # checked by each part that declares it (Setting.check)
    mask = default_mask if cfg.mask_question is None else bool(cfg.mask_question)

    candidates: list[Term]
    if forget_name == "LLMU":
        mismatch_coeff = _check_coeff(cfg.mismatch_coeff, "method.mismatch_coeff")
        candidates = [
            Term("forget", FORGET_OBJECTIVES.get("GA"), forget_coeff),
            Term("mismatch", MISMATCH, mismatch_coeff),
            Term("regularizer", REGULARIZERS.get("KL"), reg_coeff),
        ]
    else:
        candidates = [Term("forget", FORGET_OBJECTIVES.get(forget_name), forget_coeff)]
        if reg_name is not None:
            candidates.append(Term("regularizer", REGULARIZERS.get(reg_name), reg_coeff))
    terms = [
        Term(t.key, t.part, t.coeff, _resolve_settings(t.part, cfg))
        for t in candidates
        if t.coeff > 0
    ]
    skipped = [t.key for t in candidates if t.coeff == 0]
    if not terms:
        raise ValueError(
            f"every coefficient of method '{name}' is 0, so nothing would be trained; "
            "set method.forget_coeff > 0"
        )
    layers = {t.settings.get("layer") for t in terms if t.part.hidden_views}
    if len(layers) > 1:  # every part reads method.layer, so only differing defaults get here
        raise ValueError(f"the parts of {name} read different layers {sorted(map(str, layers))}")
    if cfg.trainable_params is not None:
        _check_pattern(cfg.trainable_params)
    return Method(
        name=name,
        terms=terms,
        beta=None if beta is None else float(beta),
        mask_question=mask,
        pad_id=pad_id,
        skipped=skipped,
        layer=next(iter(layers)) if layers else None,
        trainable_params=cfg.trainable_params,
        learning_rate=default_learning_rate(cfg.name),
    )


def _check_pattern(pattern: str) -> None:
    import re

    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(
            f"method.trainable_params is not a valid regex ({exc}): {pattern!r}"
        ) from None


def select_trainable(model: torch.nn.Module, pattern: str) -> list[str]:
    """Train only the parameters whose name fully matches ``pattern``; returns their names.

    Raises a one-line ``ValueError`` (with a few parameter names) when nothing matches.
    """
    import re

    names = [n for n, _ in model.named_parameters()]
    chosen = [n for n in names if re.fullmatch(pattern, n)]
    if not chosen:
        raise ValueError(
            f"method.trainable_params {pattern!r} matches no parameter; names look like "
            f"{', '.join(names[:3])}"
        )
    keep = set(chosen)
    for n, p in model.named_parameters():
        p.requires_grad_(n in keep)
    return chosen


def _register_methods() -> None:
    """List every composable name in METHODS so `unlearn ls methods` shows them."""
    for name, (forget, reg, desc) in RECIPES.items():
        if name not in METHODS:
            METHODS.add(name, name, description=f"{desc} (= {forget}+{reg})")
    for forget in FORGET_OBJECTIVES.names():
        desc = FORGET_OBJECTIVES.describe()[forget]
        if forget not in METHODS:
            METHODS.add(forget, forget, description=f"{desc} (no regularizer)")
        for reg in REGULARIZERS.names():
            combo = f"{forget}+{reg}"
            if combo not in METHODS:
                METHODS.add(
                    combo, combo, description=f"{forget} on forget data, {reg} on retain data"
                )
    if "LLMU" not in METHODS:
        METHODS.add(
            "LLMU",
            "LLMU",
            description="LLMU (Yao et al. 2023): GA + mismatched-answer NLL + KL to the reference",
        )
