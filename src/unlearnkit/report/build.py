"""``build_report``: run folders -> results store -> tables, plots, generations, HTML page.

Output folder layout::

    report.md                 every scenario table (Markdown)
    table_<scenario>.csv      raw values with run metadata
    plots/<scenario>_*.png    MU vs FE scatter, metric bars per split, continual curves, losses,
                              attacks (before / unlearned / each attack / retain) per run
    index.html                self-contained page (tables, embedded plots, generations)
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from unlearnkit.report.attacks import explain_attacks, plot_attacks, read_attacks
from unlearnkit.report.explain import explain_table
from unlearnkit.report.html import Generations, ScenarioSection, render_html
from unlearnkit.report.markdown import report_markdown
from unlearnkit.report.plots import (
    plot_continual,
    plot_loss_curves,
    plot_metric_bars,
    plot_mu_fe,
    table_splits,
)
from unlearnkit.report.store import ResultsStore, find_run_dirs, read_jsonl_lenient, run_stages
from unlearnkit.report.tables import (
    SPLITS,
    ScenarioTable,
    last_stage_per_run,
    scenario_tables,
    to_csv,
)
from unlearnkit.utils import atomic_write_text

RETAIN_SIDE_SPLITS = ("retain", "neighbor")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "x"


def sample_indices(n_items: int, k: int) -> list[int]:
    """``k`` evenly spaced indices over ``n_items`` (all of them when k >= n_items)."""
    if k <= 0 or n_items <= 0:
        return []
    if k >= n_items:
        return list(range(n_items))
    if k == 1:
        return [0]
    return sorted({round(i * (n_items - 1) / (k - 1)) for i in range(k)})


def collect_generations(table: ScenarioTable, k: int) -> list[Generations]:
    """Side-by-side generations for the forget split and the retain (or neighbour) split.

    Runs are grouped by (benchmark, split); items are sampled from the first run's latest
    stage and matched to the other runs and to ``eval/before`` by question text.
    """
    if k <= 0:
        return []
    rows = [r for r in last_stage_per_run(table) if not r["is_before"]]
    groups: dict[tuple[Any, Any], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r.get("benchmark"), r.get("split")), []).append(r)
    out = []
    for (benchmark, split), members in groups.items():
        for eval_split in _generation_splits(members):
            gen = _group_generations(members, eval_split, k)
            if gen.items:
                where = ", ".join(str(x) for x in (benchmark, split) if x)
                gen.title = f"{SPLITS.get(eval_split, eval_split)} items" + (
                    f" ({where})" if where else ""
                )
                out.append(gen)
    return out


def _generation_splits(members: list[dict[str, Any]]) -> list[str]:
    present = {
        p.stem for r in members for p in (Path(r["run_dir"]) / "eval" / r["stage"]).glob("*.jsonl")
    }
    splits = ["forget"] if "forget" in present else []
    splits += [s for s in RETAIN_SIDE_SPLITS if s in present][:1]
    return splits


def _group_generations(members: list[dict[str, Any]], split: str, k: int) -> Generations:
    labels = [r["label"] + ("" if r["stage"] == "final" else f" ({r['stage']})") for r in members]
    after: dict[str, dict[str, Any]] = {}
    reference: list[dict[str, Any]] = []
    for r, label in zip(members, labels, strict=True):
        recs = read_jsonl_lenient(Path(r["run_dir"]) / "eval" / r["stage"] / f"{split}.jsonl")
        after[label] = {str(x.get("question")): x.get("generation") for x in recs}
        if not reference and recs:
            reference = recs
    before: dict[str, Any] = {}
    for r in members:
        recs = read_jsonl_lenient(Path(r["run_dir"]) / "eval" / "before" / f"{split}.jsonl")
        for x in recs:
            before.setdefault(str(x.get("question")), x.get("generation"))
    gen = Generations(title=split, run_labels=labels)
    for i in sample_indices(len(reference), k):
        q = str(reference[i].get("question"))
        gen.items.append(
            {
                "question": q,
                "answer": reference[i].get("answer"),
                "before": before.get(q),
                "after": {lab: after[lab].get(q) for lab in labels},
            }
        )
    return gen


def add_attacks(table: ScenarioTable) -> None:
    """Each unlearned run's ``attacks.json`` into ``table.attacks``, with its sentences."""
    for r in last_stage_per_run(table):
        report = None if r["is_before"] else read_attacks(Path(r["run_dir"]))
        if report is not None:
            table.attacks.append((r["label"], report))
            table.explanations.extend(explain_attacks(r["label"], report))


def _missing_notes(table: ScenarioTable) -> list[str]:
    """Deduplicated reasons the evaluations gave for missing metrics."""
    reasons: dict[str, str] = {}
    for r in table.rows:
        missing = (r.get("summary") or {}).get("missing")
        for name, why in (missing if isinstance(missing, dict) else {}).items():
            reasons.setdefault(str(name), str(why))
    return [f"{name} not computed: {why}" for name, why in sorted(reasons.items())]


def _plots(table: ScenarioTable, plot_dir: Path) -> list[tuple[str, Path]]:
    slug = _slug(table.scenario)
    plots: list[tuple[str, Path | None]] = [
        ("Model Utility vs Forget Efficacy", plot_mu_fe(table, plot_dir / f"{slug}_mu_fe.png"))
    ]
    plots.append(
        ("Continual unlearning", plot_continual(table, plot_dir / f"{slug}_continual.png"))
    )
    for split in table_splits(table):
        path = plot_dir / f"{slug}_bars_{_slug(split)}.png"
        plots.append(
            (f"Metrics on {SPLITS.get(split, split)}", plot_metric_bars(table, split, path))
        )
    logs, seen = [], set()
    for r in table.rows:
        if r["is_before"] or r["run_dir"] in seen:
            continue
        seen.add(r["run_dir"])
        log = read_jsonl_lenient(Path(r["run_dir"]) / "train_log.jsonl")
        if log:
            logs.append((r["label"], log))
    title = f"{table.scenario}: training loss"
    plots.append(("Training loss", plot_loss_curves(logs, title, plot_dir / f"{slug}_loss.png")))
    for label, report in table.attacks:
        path = plot_dir / f"{slug}_attacks_{_slug(label)}.png"
        plots.append((f"Attacks on {label}", plot_attacks(label, report, path)))
    return [(caption, path) for caption, path in plots if path is not None]


def _load_records(
    run_dirs: list[Path] | None, db_path: Path
) -> tuple[list[dict[str, Any]], list[Path]]:
    """Index the given runs into the store and return their rows (and the run folders)."""
    if run_dirs is None:
        if not db_path.is_file():
            raise ValueError(f"results database not found: {db_path}; give run folders instead")
        records = ResultsStore(db_path).query()
        if not records:
            raise ValueError(f"{db_path}: the results database holds no evaluated runs")
        return records, sorted({Path(r["run_dir"]) for r in records})
    if not run_dirs:
        raise ValueError("no runs given: pass run folders or an output folder that contains runs")
    store = ResultsStore(db_path)
    found: list[Path] = []
    for d in map(Path, run_dirs):
        if not d.exists():
            raise ValueError(f"run folder not found: {d}")
        runs = find_run_dirs(d)
        if not runs:
            raise ValueError(
                f"{d}: no run folders found (a run folder holds config.yaml or "
                "eval/<stage>/summary.json)"
            )
        if runs == [d]:
            store.record_run(d)
        else:
            store.index_runs(d)  # also drops rows of runs deleted from disk
        found.extend(r.resolve() for r in runs)
    found = list(dict.fromkeys(found))
    records = store.query(run_dir=[str(p) for p in found])
    if not records:
        raise ValueError(
            "no evaluated runs: none of "
            + ", ".join(str(p) for p in found[:5])
            + (" ..." if len(found) > 5 else "")
            + " has eval/<stage>/summary.json"
        )
    return records, found


def build_report(
    run_dirs: list[Path] | None,
    db_path: Path | None,
    out_dir: Path,
    sample_generations: int = 5,
) -> Path:
    """Write the report of ``run_dirs`` (run folders or output folders holding runs) to ``out_dir``.

    ``run_dirs`` are (re)indexed into ``db_path`` (default ``out_dir/results.db``) first; with
    ``run_dirs=None`` every row of the existing ``db_path`` is reported. Returns the path of
    ``index.html``. Raises ValueError when there is nothing to report.
    """
    out_dir = Path(out_dir)
    db = Path(db_path) if db_path is not None else out_dir / "results.db"
    if run_dirs is None and db_path is None:
        raise ValueError("give run folders or a results database (--db)")
    records, runs = _load_records(run_dirs, db)
    without_eval = [p for p in runs if not run_stages(p)]

    tables = scenario_tables(records)
    sections = []
    for t in tables:
        t.notes.extend(_missing_notes(t))
        t.explanations = explain_table(t)
        add_attacks(t)
        csv_name = f"table_{_slug(t.scenario)}.csv"
        atomic_write_text(out_dir / csv_name, to_csv(t))
        sections.append(
            ScenarioSection(
                table=t,
                csv_name=csv_name,
                plots=_plots(t, out_dir / "plots"),
                generations=collect_generations(t, sample_generations),
            )
        )
    md = ["# unlearnkit report\n", report_markdown(tables)]
    if without_eval:
        md.append("\n## Runs without evaluation\n")
        md += [f"- {p}" for p in without_eval]
    atomic_write_text(out_dir / "report.md", "\n".join(md).rstrip() + "\n")
    sources = [str(p) for p in run_dirs] if run_dirs is not None else [str(db)]
    page = render_html(sections, runs_without_eval=without_eval, sources=sources)
    return atomic_write_text(out_dir / "index.html", page)
