"""The paper's findings as claims checked against the results store, by a rule fixed in code.

Each :class:`Claim` names a subject method, its baselines and the value compared. The rule
(written down in docs/claims-rule.md before any grid was run, and applied only here):

* **Cells.** A comparison is made per cell: (forget split, seed) for the fictitious claims, the
  seed for the continual one. A method's points in a cell are its runs over the learning-rate
  grid.
* **Matched Forget Efficacy.** In a cell, ``fe* = min(max FE of A, max FE of B)``: the highest
  Forget Efficacy both methods reach. Each method is represented by the run a user would pick
  there: the highest Model Utility among its runs with FE >= fe*. The compared value (Model
  Utility, or the forget split's Token Entropy) is read on that run. For the continual claim the
  selection is made on task 1 and the value is the Model Utility averaged over every task.
* **Outcome of a cell.** ``delta = value(A) - value(B)``: *for* when delta > margin, *against*
  when delta < -margin, *tie* otherwise. The margin is 0.02 (all compared values are in [0, 1]).
* **Verdict of a comparison.** *holds*: every cell is for. *does not hold*: no cell is for and at
  least half are against. Otherwise *not separable at this scale*. No cell: *not run*.
* **Verdict of a claim**, over the baselines that were run (those not run are named after it):
  *holds* when it holds against every one; *does not hold* when it fails against any; *not run*
  when nothing was run; otherwise *not separable at this scale*.
  A claim with a ``reach`` check (ME+GD "reaches high Forget Efficacy") also needs the subject's
  max FE not below the baseline's by more than the margin in any cell.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from unlearnkit.report.store import stage_task

MARGIN = 0.02
HOLDS, FAILS, UNSEPARABLE, NOT_RUN = (
    "holds",
    "does not hold",
    "not separable at this scale",
    "not run",
)
Value = Literal["model_utility", "forget/token_entropy"]


@dataclass(frozen=True)
class Claim:
    key: str
    statement: str
    subject: str
    baselines: tuple[str, ...]
    value: Value
    continual: bool = False
    reach: bool = False  # also check that the subject reaches the baselines' Forget Efficacy


CLAIMS: tuple[Claim, ...] = (
    Claim(
        "me_gd_utility",
        "ME+GD reaches high Forget Efficacy and keeps Model Utility (against GA- and NPO-based "
        "untargeted methods).",
        "ME+GD",
        ("GA+GD", "GA+KL", "NPO+GD", "NPO+KL"),
        "model_utility",
        reach=True,
    ),
    Claim(
        "me_gd_fluent",
        "GA- and NPO-based untargeted methods give low-entropy (repetitive) answers on the forget "
        "set; ME+GD's answers keep a higher Token Entropy.",
        "ME+GD",
        ("GA+GD", "GA+KL", "NPO+GD", "NPO+KL"),
        "forget/token_entropy",
    ),
    Claim(
        "idk_ap_utility",
        "IDK+AP keeps Model Utility above IDK+GD and IDK+KL at comparable Forget Efficacy.",
        "IDK+AP",
        ("IDK+GD", "IDK+KL"),
        "model_utility",
    ),
    Claim(
        "continual_me_gd",
        "Over continual tasks, ME+GD degrades Model Utility less than GA+GD and NPO+GD.",
        "ME+GD",
        ("GA+GD", "NPO+GD"),
        "model_utility",
        continual=True,
    ),
    Claim(
        "continual_idk_ap",
        "Over continual tasks, IDK+AP degrades Model Utility less than IDK+GD.",
        "IDK+AP",
        ("IDK+GD",),
        "model_utility",
        continual=True,
    ),
)


@dataclass(frozen=True)
class Point:
    """One run of a method in a cell (one learning rate)."""

    lr: float | None
    fe: float
    mu: float
    value: float | None  # the compared value on this run (continual: MU averaged over tasks)
    run: str = ""  # the run's name (its folder's, no path)


@dataclass
class CellResult:
    cell: str
    fe_star: float
    subject: Point
    baseline: Point
    delta: float
    outcome: str  # for | against | tie
    reach_delta: float | None = None


@dataclass
class Comparison:
    baseline: str
    verdict: str
    cells: list[CellResult] = field(default_factory=list)


@dataclass
class ClaimResult:
    claim: Claim
    verdict: str
    comparisons: list[Comparison]

    def to_json(self) -> dict[str, Any]:
        return {
            "claim": asdict(self.claim),
            "verdict": self.verdict,
            "comparisons": [asdict(c) for c in self.comparisons],
        }


def select(points: Sequence[Point], fe_star: float) -> Point:
    """The run a user would pick at Forget Efficacy ``fe_star``: the highest Model Utility
    among runs with FE >= fe_star (ties: the lower FE, then the lower learning rate)."""
    eligible = [p for p in points if p.fe >= fe_star - 1e-12]
    if not eligible:
        raise ValueError(f"no run reaches Forget Efficacy {fe_star}")
    return max(eligible, key=lambda p: (p.mu, -p.fe, -(p.lr or 0.0)))


def outcome(delta: float, margin: float = MARGIN) -> str:
    return "for" if delta > margin else "against" if delta < -margin else "tie"


def compare_cell(
    cell: str, a: Sequence[Point], b: Sequence[Point], margin: float = MARGIN
) -> CellResult:
    """One cell of the rule: matched Forget Efficacy, then the compared value."""
    fe_star = min(max(p.fe for p in a), max(p.fe for p in b))
    pa, pb = select(a, fe_star), select(b, fe_star)
    if pa.value is None or pb.value is None:
        raise ValueError(f"cell {cell}: the compared value is missing on a selected run")
    delta = pa.value - pb.value
    reach = max(p.fe for p in a) - max(p.fe for p in b)
    return CellResult(cell, fe_star, pa, pb, delta, outcome(delta, margin), reach)


def comparison_verdict(cells: Sequence[CellResult], reach: bool, margin: float = MARGIN) -> str:
    if not cells:
        return NOT_RUN
    outcomes = [c.outcome for c in cells]
    short_reach = reach and any((c.reach_delta or 0.0) < -margin for c in cells)
    if all(o == "for" for o in outcomes) and not short_reach:
        return HOLDS
    if "for" not in outcomes and outcomes.count("against") * 2 >= len(outcomes):
        return FAILS
    if reach and all((c.reach_delta or 0.0) < -margin for c in cells):
        return FAILS  # never reaches the baseline's forgetting
    return UNSEPARABLE


def claim_verdict(comparisons: Sequence[Comparison]) -> str:
    """The claim's verdict over the baselines that were run; those not run are named after it."""
    ran = [c.verdict for c in comparisons if c.verdict != NOT_RUN]
    missing = [c.baseline for c in comparisons if c.verdict == NOT_RUN]
    if not ran:
        return NOT_RUN
    if all(v == HOLDS for v in ran):
        verdict = HOLDS
    elif FAILS in ran:
        verdict = FAILS
    else:
        verdict = UNSEPARABLE
    return f"{verdict} ({', '.join(missing)} not run)" if missing else verdict


def _mean(values: Iterable[float]) -> float:
    vals = list(values)
    return sum(vals) / len(vals)


def points_by_cell(rows: Iterable[Mapping[str, Any]], value: str, continual: bool) -> dict:
    """``{method: {cell: [Point, ...]}}`` from results-store rows (:meth:`ResultsStore.query`).

    Fictitious: the ``final`` stage of runs without tasks, cell ``<split>/seed<k>``. Continual:
    the ``taskN`` stages of one run, cell ``seed<k>``; FE and MU of task 1 select, and the value
    is the Model Utility averaged over the tasks.
    """
    out: dict[str, dict[str, list[Point]]] = defaultdict(lambda: defaultdict(list))
    by_run: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for r in rows:
        by_run[str(r.get("run_dir"))].append(r)
    for run, stages in by_run.items():
        tasks = sorted(
            (r for r in stages if stage_task(str(r.get("stage"))) is not None),
            key=lambda r: stage_task(str(r["stage"])) or 0,
        )
        first = stages[0]
        method = first.get("method")
        if not method:
            continue
        if continual:
            if len(tasks) < 2 or stage_task(str(tasks[0]["stage"])) != 1:
                continue
            fe, mu = tasks[0].get("forget_efficacy"), tasks[0].get("model_utility")
            mus = [r.get("model_utility") for r in tasks]
            if fe is None or mu is None or any(m is None for m in mus):
                continue
            point = Point(first.get("lr"), fe, mu, _mean(mus), str(first.get("run") or run))
            out[method][f"seed{first.get('seed')}"].append(point)
            continue
        final = [r for r in stages if r.get("stage") == "final"]
        if tasks or not final:
            continue
        r = final[0]
        fe, mu = r.get("forget_efficacy"), r.get("model_utility")
        if fe is None or mu is None:
            continue
        v = mu if value == "model_utility" else (r.get("metrics") or {}).get(value)
        cell = f"{r.get('split')}/seed{r.get('seed')}"
        out[method][cell].append(Point(r.get("lr"), fe, mu, v, str(r.get("run") or run)))
    return out


def check_claims(
    rows: Sequence[Mapping[str, Any]],
    claims: Sequence[Claim] = CLAIMS,
    margin: float = MARGIN,
) -> list[ClaimResult]:
    """Apply the rule to every claim; cells where either method has no run are left out."""
    results = []
    for claim in claims:
        points = points_by_cell(rows, claim.value, claim.continual)
        comparisons = []
        for base in claim.baselines:
            a, b = points.get(claim.subject, {}), points.get(base, {})
            cells = [
                compare_cell(cell, a[cell], b[cell], margin) for cell in sorted(set(a) & set(b))
            ]
            comparisons.append(
                Comparison(base, comparison_verdict(cells, claim.reach, margin), cells)
            )
        results.append(ClaimResult(claim, claim_verdict(comparisons), comparisons))
    return results
