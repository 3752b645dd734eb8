"""Compose a method by name: ``FORGET+REGULARIZER`` (``ME+GD``), ``FORGET`` alone, or ``LLMU``.

The training loss is::

    L = forget_coeff * L_forget + regularization_coeff * L_regularizer

(LLMU: ``forget_coeff * L_GA + mismatch_coeff * L_mismatch + regularization_coeff * L_KL``).
Defaults of the paper's TOFU scripts: ``forget_coeff`` 0.1 and no question masking for ME+GD,
1.0 with question masking for every other method (the ``paper`` profile adds its per-scenario
values, :mod:`unlearnkit.profiles`). Masking applies to the forget view only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

from unlearnkit.config import MethodConfig
from unlearnkit.methods.base import REFUSAL_VIEWS, VIEWS, Part, StepContext
from unlearnkit.methods.llmu import MISMATCH
from unlearnkit.registry import FORGET_OBJECTIVES, METHODS, REGULARIZERS


@dataclass(frozen=True)
class Term:
    """One weighted part of a method's loss; ``key`` names it in logs (``loss_<key>``)."""

    key: str
    part: Part
    coeff: float


@dataclass
class Method:
    """A composed unlearning method: weighted parts plus the settings they share."""

    name: str
    terms: list[Term]
    beta: float
    mask_question: bool
    pad_id: int = 0
    skipped: list[str] = field(default_factory=list)  # parts with coefficient 0 (not computed)
    kl_positions: str = "counted"  # KL averaged over counted answer positions, or "all" B x T
    me_epsilon: float = 0.0  # ME: 0 = closed form; > 0 = log(p + eps) (the paper's 1e-12)

    @property
    def reads_all_positions(self) -> tuple[str, ...]:
        """Views whose every position counts in some term (KL with ``kl_positions="all"``)."""
        if self.kl_positions != "all":
            return ()
        return tuple(v for t in self.terms if t.part.name == "KL" for v in t.part.views)

    def fixed_length_views(self) -> tuple[str, ...]:
        """Views whose padding changes the loss, so fixed-length padding must be built for them:
        the forget view when its question is unmasked (its labels cover the padding) and the
        views KL averages over every position. Other views are numerically unaffected."""
        views = set(self.reads_all_positions)
        if not self.mask_question and "forget" in self.views:
            views.add("forget")
        return tuple(v for v in VIEWS if v in views)

    @property
    def views(self) -> tuple[str, ...]:
        used = {v for t in self.terms for v in t.part.views}
        return tuple(v for v in VIEWS if v in used)

    @property
    def needs_reference(self) -> bool:
        return any(t.part.needs_reference for t in self.terms)

    @property
    def per_step_reference(self) -> bool:
        """The reference model must stay loaded while training (e.g. KL), not only for caching."""
        return any(t.part.per_step_reference for t in self.terms)

    @property
    def cached_ref_views(self) -> tuple[str, ...]:
        used = {v for t in self.terms for v in t.part.cached_ref_views}
        return tuple(v for v in VIEWS if v in used)

    @property
    def needs_refusals(self) -> bool:
        return any(v in REFUSAL_VIEWS for v in self.views)

    @property
    def needs_retain(self) -> bool:
        return any(v.startswith("retain") or v == "forget_mismatch" for v in self.views)

    def compute(
        self, model: torch.nn.Module, batch: dict[str, Tensor], ref_model: torch.nn.Module | None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Total loss and each (unweighted) part: ``sum_k coeff_k * part_k``."""
        ctx = StepContext(
            model,
            batch,
            ref_model,
            self.views,
            self.beta,
            self.pad_id,
            kl_positions=self.kl_positions,
            me_epsilon=self.me_epsilon,
        )
        parts: dict[str, Tensor] = {}
        total: Tensor | None = None
        for term in self.terms:
            value = term.part.fn(ctx)  # scalar
            parts[term.key] = value
            weighted = term.coeff * value
            total = weighted if total is None else total + weighted
        assert total is not None  # a method always has at least one term (checked when built)
        return total, parts

    def describe(self) -> dict[str, object]:
        """The resolved settings, recorded beside each run's outputs."""
        return {
            "name": self.name,
            "terms": {t.key: {"part": t.part.name, "coeff": t.coeff} for t in self.terms},
            "beta": self.beta,
            "mask_question": self.mask_question,
            "mask_question_views": ["forget"],
            "kl_positions": self.kl_positions,
            "me_epsilon": self.me_epsilon,
            "needs_reference": self.needs_reference,
            "cached_ref_views": list(self.cached_ref_views),
            "skipped_zero_coeff": list(self.skipped),
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
            f"method '{name}' must be FORGET, FORGET+REGULARIZER or LLMU "
            f"(forget: {', '.join(FORGET_OBJECTIVES.names())}; "
            f"regularizer: {', '.join(REGULARIZERS.names())})"
        )
    if len(pieces) == 1:
        if pieces[0].upper() == "LLMU":
            return "LLMU", None
        if pieces[0] not in FORGET_OBJECTIVES and pieces[0].upper() not in FORGET_OBJECTIVES:
            METHODS.get(pieces[0])  # raises: "unknown method 'NPX' (did you mean 'NPO'?); ..."
        forget: Part = FORGET_OBJECTIVES.get(pieces[0])
        return forget.name, None
    forget = FORGET_OBJECTIVES.get(pieces[0])
    regularizer: Part = REGULARIZERS.get(pieces[1])
    return forget.name, regularizer.name


def canonical_name(name: str) -> str:
    forget, reg = parse_method_name(name)
    return forget if reg is None else f"{forget}+{reg}"


def paper_defaults(name: str) -> tuple[float, bool]:
    """``(forget_coeff, mask_question)`` the paper uses for method ``name``."""
    if canonical_name(name) == "ME+GD":
        return 0.1, False
    return 1.0, True


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
    beta = cfg.beta
    if isinstance(beta, bool) or not math.isfinite(beta) or beta <= 0:
        raise ValueError(
            f"method.beta must be a finite number > 0, got {beta!r}; e.g. method.beta=0.1"
        )
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
    terms = [t for t in candidates if t.coeff > 0]
    skipped = [t.key for t in candidates if t.coeff == 0]
    if not terms:
        raise ValueError(
            f"every coefficient of method '{name}' is 0, so nothing would be trained; "
            "set method.forget_coeff > 0"
        )
    if cfg.kl_positions not in ("counted", "all"):
        raise ValueError(
            f"unknown method.kl_positions '{cfg.kl_positions}'; choose from counted, all"
        )
    if not math.isfinite(cfg.me_epsilon) or cfg.me_epsilon < 0:
        raise ValueError(f"method.me_epsilon must be a finite number >= 0, got {cfg.me_epsilon}")
    return Method(
        name=name,
        terms=terms,
        beta=float(beta),
        mask_question=mask,
        pad_id=pad_id,
        skipped=skipped,
        kl_positions=cfg.kl_positions,
        me_epsilon=float(cfg.me_epsilon),
    )


def _register_methods() -> None:
    """List every composable name in METHODS so `unlearn ls methods` shows them."""
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
