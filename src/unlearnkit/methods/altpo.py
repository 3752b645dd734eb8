"""AltDPO, the forget part of AltPO (Mekala et al. 2024): DPO with an alternative answer preferred.

AltPO = ``AltDPO+GD``: like IdkDPO (``DPO+GD``), but the preferred answer to a forget question is
a plausible *alternative* answer (a wrong fact in the same style) rather than a refusal, read from
``method.alternates``: JSON lines ``{"question": ..., "alternate": "..."}`` (or
``"alternates": [...]``, one chosen per question with the run's seed). Generating alternatives
with the model, as the paper does, is left to the user.
"""

from __future__ import annotations

import json
from pathlib import Path

from torch import Tensor

from unlearnkit.losses import dpo_loss
from unlearnkit.methods.base import Part, Setting, StepContext
from unlearnkit.registry import FORGET_OBJECTIVES


def _altdpo(ctx: StepContext) -> Tensor:
    return dpo_loss(
        ctx.nll("forget"),
        ctx.nll("forget_alt"),
        ctx.ref_nll("forget"),
        ctx.ref_nll("forget_alt"),
        ctx.beta,
    )


def load_alternates(path: str | Path) -> dict[str, list[str]]:
    """``{question: [alternative answers]}`` from a JSON-lines file; errors name file and line."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"method.alternates: file not found: {p}")
    out: dict[str, list[str]] = {}
    for lineno, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{p}:{lineno}: not valid JSON ({exc.msg})") from None
        answers = row.get("alternates", row.get("alternate")) if isinstance(row, dict) else None
        if isinstance(answers, str):
            answers = [answers]
        question = row.get("question") if isinstance(row, dict) else None
        if (
            not isinstance(question, str)
            or not answers
            or not all(isinstance(a, str) and a.strip() for a in answers)
        ):
            raise ValueError(
                f'{p}:{lineno}: expected {{"question": str, "alternate": str}} '
                'or {"question": str, "alternates": [str, ...]}'
            )
        out.setdefault(question, []).extend(answers)
    if not out:
        raise ValueError(f"{p}: no alternative answers found")
    return out


ALTDPO = Part(
    name="AltDPO",
    fn=_altdpo,
    views=("forget", "forget_alt"),
    needs_reference=True,
    cached_ref_views=("forget", "forget_alt"),
    description="DPO with an alternative answer (method.alternates) preferred over the forget "
    "answer (recipe: AltPO = AltDPO+GD)",
    paper="Mekala et al. 2024, arXiv:2409.13474",
    settings={"beta": Setting(0.1, "DPO inverse temperature", positive=True)},
)
FORGET_OBJECTIVES.add(ALTDPO.name, ALTDPO, description=ALTDPO.listing)
