"""One plain sentence per unlearned run saying what happened, derived from its metrics.

Each sentence compares the run with the model before unlearning (the table's ``before`` row of
the same benchmark and split) and names the cause of what stands out:

- Forget side: how far Forget Efficacy (FE) rose, with the forget ROUGE-L before and after, and
  the share of forget answers that are refusals (targeted methods answer "I don't know").
- Utility side: Model Utility (MU) kept or lost. MU is a harmonic mean, so it is 0 as soon as one
  of its values is 0 and it follows its smallest values; the sentence names the weakest
  retain-side metric, and says when the model refuses retain questions too (e.g. IDK+GD).
- Forget Quality (FQ, a KS-test p-value), when a retain model was evaluated: whether the forget
  truth ratios are told apart from the retain model's at the 5% level.

Wording thresholds (on [0, 1] scales): a change under :data:`SMALL` is "barely", a rise of FE of
at least :data:`LARGE` is "much", MU under half its value before is "most of its utility lost",
and a split is "refused" when at least half of its answers are refusals.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from unlearnkit.report.store import read_jsonl_lenient, read_run_config
from unlearnkit.report.tables import (
    METRICS,
    SPLITS,
    ScenarioTable,
    last_stage_per_run,
    row_value,
)

SMALL = 0.02
LARGE = 0.10
REFUSING = 0.5
FQ_LEVEL = 0.05
FORGET_SPLIT = "forget"
RETAIN_SIDE_SPLITS = ("retain", "neighbor", "real_authors", "world_facts")

_WORDS = re.compile(r"[a-z0-9']+")


def _norm(text: str) -> str:
    return " ".join(_WORDS.findall(text.lower().replace("’", "'")))


def refusal_share(generations: Iterable[str | None], refusals: Iterable[str]) -> float | None:
    """Share of ``generations`` that contain one of the ``refusals`` (case, punctuation and
    spacing ignored); None when there is no generation."""
    patterns = [p for p in (_norm(r) for r in refusals) if p]
    texts = [_norm(g) for g in generations if g is not None]
    if not texts:
        return None
    hits = sum(any(p in t for p in patterns) for t in texts)
    return hits / len(texts)


def _refusal_list(run_dir: Path) -> list[str]:
    from unlearnkit.data.loaders import load_refusals

    path = ((read_run_config(run_dir).get("data") or {}).get("refusals")) or None
    try:
        return load_refusals(path)
    except (OSError, ValueError):  # a moved refusal file: the defaults still say something
        return load_refusals(None)


def run_refusal_shares(run_dir: Path, stage: str) -> dict[str, float]:
    """Refusal share of each evaluated split of ``run_dir``'s ``stage`` (from its generations)."""
    refusals = _refusal_list(run_dir)
    shares: dict[str, float] = {}
    for path in sorted((Path(run_dir) / "eval" / stage).glob("*.jsonl")):
        share = refusal_share((r.get("generation") for r in read_jsonl_lenient(path)), refusals)
        if share is not None:
            shares[path.stem] = share
    return shares


def _change(name: str, before: float | None, after: float) -> str:
    return f"{name} {after:.3f}" if before is None else f"{name} {before:.3f} → {after:.3f}"


def _split_metric(key: str) -> str:
    split, metric = key.split("/", 1)
    return f"{SPLITS.get(split, split).lower()} {METRICS.get(metric, metric)}"


def _weakest_utility_metric(row: dict[str, Any]) -> tuple[str, float] | None:
    values = [
        (key, value)
        for key in (row.get("metrics") or {})
        if "/" in key and key.split("/", 1)[0] in RETAIN_SIDE_SPLITS
        for value in [row_value(row, key)]
        if value is not None
    ]
    return min(values, key=lambda kv: kv[1]) if values else None


def _retain_split(row: dict[str, Any]) -> str | None:
    keys = row.get("metrics") or {}
    return next((s for s in RETAIN_SIDE_SPLITS if f"{s}/rouge_l" in keys), None)


def _forget_clause(row: dict[str, Any], before: dict[str, Any] | None, shares: dict) -> str:
    fe = row_value(row, "forget_efficacy")
    if fe is None:
        return "Forget Efficacy was not computed"
    fe0 = row_value(before, "forget_efficacy") if before else None
    r, r0 = (
        row_value(row, "forget/rouge_l"),
        row_value(before, "forget/rouge_l") if before else None,
    )
    detail = _change("Forget Efficacy", fe0, fe)
    if r is not None:
        detail += (
            f", forget ROUGE-L {r:.2f}" if r0 is None else f", forget ROUGE-L {r0:.2f} → {r:.2f}"
        )
    if fe0 is None:
        head = "forgot"
    elif fe - fe0 >= LARGE:
        head = "forgot much of the forget set"
    elif fe - fe0 >= SMALL:
        head = "forgot a little"
    else:
        head = "barely forgot anything"
    clause = f"{head} ({detail})"
    share = shares.get(FORGET_SPLIT)
    if share is not None and share >= REFUSING:
        clause += f", answering {share:.0%} of forget questions with a refusal"
    return clause


def _utility_clause(
    row: dict[str, Any], before: dict[str, Any] | None, shares: dict
) -> tuple[str, bool]:
    """The utility clause and whether it is the headline (utility collapsed)."""
    mu = row_value(row, "model_utility")
    if mu is None:
        return "Model Utility was not computed", False
    mu0 = row_value(before, "model_utility") if before else None
    retain = _retain_split(row)
    share = shares.get(retain) if retain else None
    refuses = share is not None and share >= REFUSING
    rouge = row_value(row, f"{retain}/rouge_l") if retain else None
    weakest = _weakest_utility_metric(row)
    if refuses:
        name = SPLITS.get(retain or "", retain or "").lower()
        rouge_text = "" if rouge is None else f", {name} ROUGE-L {rouge:.2f}"
        cause = (
            f"the model now refuses {name} questions too ({share:.0%} of its {name} answers are "
            f"refusals{rouge_text})"
        )
    elif weakest is not None:
        cause = f"its weakest retain-side metric is {_split_metric(weakest[0])} {weakest[1]:.3f}"
    else:
        cause = ""
    if mu == 0.0 and mu0 == 0.0:
        return (
            f"Model Utility was already 0.000 before unlearning ({cause or 'a value is 0'})",
            False,
        )
    if mu == 0.0:
        why = cause or "one of its values is 0"
        return (
            f"Model Utility {mu:.3f} because {why} (a harmonic mean is 0 when one value is)",
            True,
        )
    change = _change("Model Utility", mu0, mu)
    if mu0 is not None and mu < 0.5 * mu0:
        return f"lost most of its utility ({change}) because {cause}", True
    if mu0 is not None and mu0 - mu >= SMALL:
        return f"lost some utility ({change}{'; ' + cause if cause else ''})", False
    if refuses:
        return f"kept its utility ({change}) although {cause}", False
    return f"kept its utility ({change})", False


def _quality_clause(row: dict[str, Any]) -> str | None:
    fq = row_value(row, "forget_quality")
    if fq is None:
        return None
    if fq >= FQ_LEVEL:
        return (
            f"its forget answers' truth ratios cannot be told apart from the retain model's "
            f"(Forget Quality {fq:.3g} ≥ {FQ_LEVEL})"
        )
    return (
        f"its forget answers' truth ratios still differ from the retain model's "
        f"(Forget Quality {fq:.2g} < {FQ_LEVEL})"
    )


def explain_row(
    row: dict[str, Any],
    before: dict[str, Any] | None,
    shares: dict[str, float] | None = None,
    quality_separates: bool = True,
) -> str:
    """One sentence for an unlearned table row; ``before`` is the row of the original model
    (None when it was not evaluated) and ``shares`` the refusal share of each split. Forget
    Quality is left out when it separates nothing in the table (``quality_separates`` False)."""
    shares = shares or {}
    forget = _forget_clause(row, before, shares)
    utility, headline = _utility_clause(row, before, shares)
    quality = _quality_clause(row) if quality_separates else None
    clauses = [utility, forget] if headline else [forget, utility]
    if quality:
        clauses.append(quality)
    text = "; ".join(clauses)
    return f"{row['label']}: {text[0].upper()}{text[1:]}."


def explain_table(table: ScenarioTable) -> list[str]:
    """A sentence per unlearned run of ``table`` (its latest stage), in table order."""
    befores = {(r.get("benchmark"), r.get("split")): r for r in table.rows if r["is_before"]}
    out = []
    for r in last_stage_per_run(table):
        if r["is_before"]:
            continue
        shares = run_refusal_shares(Path(r["run_dir"]), r["stage"])
        before = befores.get((r.get("benchmark"), r.get("split")))
        out.append(explain_row(r, before, shares, "forget_quality" not in table.unseparable))
    return out


def explain_tables(tables: list[ScenarioTable]) -> list[ScenarioTable]:
    """Fill each table's ``explanations`` (see :func:`explain_table`); returns ``tables``."""
    for table in tables:
        table.explanations = explain_table(table)
    return tables
