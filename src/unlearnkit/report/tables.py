"""Result tables: one per scenario, method x (aggregates, six metrics per split).

Input rows are those of :class:`unlearnkit.report.store.ResultsStore.query`. Each run gives its
headline stage (``final``; every ``taskN`` stage for continual runs) and each (benchmark, split)
group gets one ``before unlearning`` row from the first run that evaluated the original model.
Missing values print as ``–`` in Markdown and as an empty cell in CSV.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unlearnkit.eval.metrics.specs import METRIC_SPECS, metric_label
from unlearnkit.report.store import is_attack_stage, stage_sort_key, stage_task

MISSING = "–"

# Labels come from the metric registry (unlearnkit.eval.metrics.specs).
AGGREGATES: list[tuple[str, str]] = [
    (k, metric_label(k)) for k in ("model_utility", "forget_efficacy", "forget_quality")
]
# Shown after MU/FE/FQ when any row of the table has a value: the other Model Utility, MUSE's
# privacy leakage and every membership-inference AUC.
OPTIONAL_AGGREGATES: list[tuple[str, str]] = [
    (s.name, s.label)
    for s in METRIC_SPECS.values()
    if s.kind == "mia" or s.name in ("model_utility_open_unlearning", "privacy_leakage")
]
METRICS: dict[str, str] = {
    s.name: s.label
    for s in METRIC_SPECS.values()
    if s.kind in ("paper", "generation", "answer_tokens")
}
SPLITS: dict[str, str] = {
    "forget": "Forget",
    "retain": "Retain",
    "neighbor": "Neighbor",
    "real_authors": "Real Authors",
    "world_facts": "World Facts",
}
META_COLUMNS = [
    "run", "profile", "method", "stage", "benchmark", "split", "task", "seed", "lr", "run_dir",
]  # fmt: skip


@dataclass
class Column:
    key: str  # "model_utility" or "<split>/<metric>"
    header: str  # Markdown header


@dataclass
class ScenarioTable:
    scenario: str
    columns: list[Column]  # value columns, after the label (and stage) columns
    rows: list[dict[str, Any]]  # store rows + "label" + "is_before"
    show_stage: bool = False
    notes: list[str] = field(default_factory=list)
    explanations: list[str] = field(default_factory=list)  # a sentence per run (report.explain)
    # Columns that separate nothing in this table (every row has the same value): key -> value.
    # Their cells print NOT_SEPARABLE and a note says why.
    unseparable: dict[str, float] = field(default_factory=dict)
    attacks: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (label, attacks.json)


NOT_SEPARABLE = "n.s."


def same_on_every_row(rows: list[dict[str, Any]], key: str, min_rows: int = 3) -> float | None:
    """The value ``key`` has on every row, when at least ``min_rows`` rows all have it (within
    1e-9) and one of them is the model before unlearning; else None. Forget Quality on a few forget
    items does this: the KS test's p-value takes few distinct values, so the model before
    unlearning and every method can land on the same one."""
    values = [row_value(r, key) for r in rows]
    if len(values) < min_rows or any(v is None for v in values):
        return None
    if not any(r.get("is_before") for r in rows):
        return None
    first = values[0]
    return first if all(abs(v - first) <= 1e-9 for v in values) else None  # type: ignore[operator]


def format_value(value: Any) -> str:
    """Three decimals; p-values below 1e-3 in scientific notation; None/NaN -> ``–``."""
    if value is None or isinstance(value, bool):
        return MISSING
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(v):
        return MISSING
    if v != 0 and abs(v) < 1e-3:
        return f"{v:.2e}"
    return f"{v:.3f}"


def format_lr(value: Any) -> str:
    return MISSING if value is None else f"{float(value):.0e}"


def row_value(row: dict[str, Any], key: str) -> float | None:
    """A value column of a store row: an aggregate (a column of its own, else read from the
    ``aggregates`` JSON) or ``<split>/<metric>``."""
    if "/" in key:
        value = (row.get("metrics") or {}).get(key)
    else:
        value = row[key] if key in row else (row.get("aggregates") or {}).get(key)
    if value is None:
        return None
    v = float(value)
    return v if math.isfinite(v) else None


def _split_order(split: str) -> tuple[int, str]:
    order = list(SPLITS)
    return (order.index(split), split) if split in order else (len(order), split)


def _metric_order(metric: str) -> tuple[int, str]:
    order = list(METRICS)
    return (order.index(metric), metric) if metric in order else (len(order), metric)


def metric_columns(rows: list[dict[str, Any]]) -> list[Column]:
    """Per-split metric columns present in any row, splits then metrics in canonical order."""
    keys = {k for r in rows for k in (r.get("metrics") or {})}
    pairs = sorted(
        (tuple(k.split("/", 1)) for k in keys if "/" in k),
        key=lambda p: (_split_order(p[0]), _metric_order(p[1])),
    )
    return [
        Column(f"{s}/{m}", f"{SPLITS.get(s, s)} {METRICS.get(m, m)}")
        for s, m in pairs  # type: ignore[misc]
    ]


def headline_rows(records: list[dict[str, Any]]) -> tuple[list[dict], list[dict]]:
    """Split store rows into (unlearned rows to tabulate, candidate ``before`` rows)."""
    by_run: dict[str, list[dict]] = {}
    for r in records:
        by_run.setdefault(r["run_dir"], []).append(r)
    chosen, befores = [], []
    for stages in by_run.values():
        stages = sorted(stages, key=lambda r: stage_sort_key(r["stage"]))
        befores.extend(r for r in stages if r["stage"] == "before")
        after = [r for r in stages if r["stage"] != "before" and not is_attack_stage(r["stage"])]
        tasks = [r for r in after if stage_task(r["stage"]) is not None]
        if tasks:
            chosen.extend(tasks)
        elif any(r["stage"] == "final" for r in after):
            chosen.extend(r for r in after if r["stage"] == "final")
        elif after:
            chosen.append(after[-1])  # e.g. only epochN stages: the latest one
    return chosen, befores


def _labels(rows: list[dict[str, Any]]) -> list[str]:
    """Method names, with the facts that differ between runs (split, lr, seed...) appended."""
    varying = [
        k
        for k in ("profile", "benchmark", "split", "lr", "seed")
        if len({r.get(k) for r in rows}) > 1 and any(r.get(k) is not None for r in rows)
    ]

    def base(r: dict[str, Any]) -> str:
        parts = []
        for k in varying:
            v = r.get(k)
            if v is None:
                continue
            if k == "lr":
                parts.append(f"lr={format_lr(v)}")
            elif k == "seed":
                parts.append(f"seed={v}")
            elif k == "profile":
                parts.append(f"profile={v}")
            else:  # a benchmark may be a folder path: its name is enough
                parts.append(Path(str(v)).name or str(v))
        name = r.get("method") or r["run"]
        return f"{name} [{', '.join(parts)}]" if parts else name

    labels = [base(r) for r in rows]
    # Two different runs with the same label (same method and settings): add the run name.
    runs_per_label: dict[str, set[str]] = {}
    for r, lab in zip(rows, labels, strict=True):
        runs_per_label.setdefault(lab, set()).add(r["run_dir"])
    return [
        f"{lab} ({r['run']})" if len(runs_per_label[lab]) > 1 else lab
        for r, lab in zip(rows, labels, strict=True)
    ]


def scenario_tables(records: list[dict[str, Any]]) -> list[ScenarioTable]:
    """One :class:`ScenarioTable` per scenario (sorted by name) from store rows."""
    by_scenario: dict[str, list[dict]] = {}
    for r in records:
        by_scenario.setdefault(r.get("scenario") or "unknown", []).append(r)
    tables = []
    for scenario in sorted(by_scenario):
        chosen, befores = headline_rows(by_scenario[scenario])
        # One "before" row per (benchmark, split) of the tabulated runs (or of all befores).
        groups = {(r.get("benchmark"), r.get("split")) for r in chosen} or {
            (r.get("benchmark"), r.get("split")) for r in befores
        }
        before_rows = []
        for group in sorted(groups, key=lambda g: (str(g[0]), str(g[1]))):
            match = [r for r in befores if (r.get("benchmark"), r.get("split")) == group]
            if match:
                b = dict(match[0])
                b["method"] = "before unlearning"
                b["seed"] = b["lr"] = None
                before_rows.append(b)
        labels = _labels(chosen)
        rows = [dict(r, label=lab, is_before=False) for r, lab in zip(chosen, labels, strict=True)]
        tagged = []
        for b in before_rows:
            extra = [Path(str(x)).name for x in (b.get("benchmark"), b.get("split")) if x]
            tag = f" [{', '.join(extra)}]" if extra and len(groups) > 1 else ""
            tagged.append(dict(b, label=b["method"] + tag, is_before=True))
        rows = tagged + rows
        show_stage = any(r["stage"] not in ("final", "before") for r in rows)
        optional = [
            (k, h) for k, h in OPTIONAL_AGGREGATES if any(row_value(r, k) is not None for r in rows)
        ]
        columns = [Column(k, h) for k, h in AGGREGATES + optional] + metric_columns(rows)
        profiles = sorted({str(r.get("profile") or "default") for r in chosen})
        notes = [f"Profile: {', '.join(profiles)} (docs/paper-differences.md)"] if profiles else []
        unseparable = {}
        fq = same_on_every_row(rows, "forget_quality")
        if fq is not None:
            unseparable["forget_quality"] = fq
            notes.append(
                f"{NOT_SEPARABLE} = not separable: Forget Quality is {format_value(fq)} on every "
                "row, the model before unlearning included. With this few forget items the KS "
                "test's p-value takes few distinct values, and it tells no method apart here."
            )
        tables.append(
            ScenarioTable(scenario, columns, rows, show_stage, notes, unseparable=unseparable)
        )
    return tables


def last_stage_per_run(table: ScenarioTable) -> list[dict[str, Any]]:
    """Table rows keeping only the latest stage of each run (continual: the last task)."""
    latest: dict[tuple[str, bool], dict[str, Any]] = {}
    for r in table.rows:
        key = (r["run_dir"], r["is_before"])
        if key not in latest or stage_sort_key(r["stage"]) > stage_sort_key(latest[key]["stage"]):
            latest[key] = r
    return [r for r in table.rows if latest.get((r["run_dir"], r["is_before"])) is r]


def cell_text(table: ScenarioTable, row: dict[str, Any], key: str) -> str:
    """A value cell as printed: ``n.s.`` in a column that separates nothing in ``table``."""
    return NOT_SEPARABLE if key in table.unseparable else format_value(row_value(row, key))


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def to_markdown(table: ScenarioTable, columns: list[str] | None = None) -> str:
    """A GitHub Markdown table; ``columns`` restricts the value columns to these keys."""
    cols = [c for c in table.columns if columns is None or c.key in columns]
    head = ["Method"] + (["Stage"] if table.show_stage else []) + [c.header for c in cols]
    lines = [
        "| " + " | ".join(head) + " |",
        "|"
        + "|".join(["---"] + (["---"] if table.show_stage else []) + ["---:"] * len(cols))
        + "|",
    ]
    for r in table.rows:
        cells = [_md_escape(r["label"])]
        if table.show_stage:
            cells.append(r["stage"])
        cells += [cell_text(table, r, c.key) for c in cols]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


COMPACT_COLUMNS = [
    "model_utility",
    "forget_efficacy",
    "forget_quality",
    "privacy_leakage",  # these two only where a run has a holdout split
    "mia_min_k",
    "forget/rouge_l",
    "retain/rouge_l",
    "neighbor/rouge_l",
]


def to_csv(table: ScenarioTable) -> str:
    """CSV with every meta column and raw (unrounded) values; missing values are empty."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["label", *META_COLUMNS, *(c.key for c in table.columns)])
    for r in table.rows:
        meta = ["" if r.get(k) is None else r.get(k) for k in META_COLUMNS]
        values = [row_value(r, c.key) for c in table.columns]
        writer.writerow([r["label"], *meta, *("" if v is None else repr(v) for v in values)])
    return buf.getvalue()
