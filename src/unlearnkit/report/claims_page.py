"""The claims page: each finding of the paper with its numbers, its spread, a plot and the
verdict of :mod:`unlearnkit.report.claims`, written as Markdown with PNG plots and the raw JSON.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from unlearnkit.report.claims import CLAIMS, MARGIN, Claim, ClaimResult, Point, points_by_cell
from unlearnkit.utils import atomic_write_bytes, atomic_write_text

VALUE_LABELS = {"model_utility": "Model Utility", "forget/token_entropy": "forget Token Entropy"}


def _front(points: Sequence[Point]) -> list[Point]:
    """The Pareto front (higher FE and higher MU are better), by increasing FE."""
    front = [
        p
        for p in points
        if not any(q.fe >= p.fe and q.mu >= p.mu and (q.fe, q.mu) != (p.fe, p.mu) for q in points)
    ]
    return sorted(front, key=lambda p: p.fe)


def plot_claim(result: ClaimResult, rows: Sequence[Mapping[str, Any]], path: Path) -> Path | None:
    """Model Utility against Forget Efficacy (one panel per forget split, every seed's runs, each
    method's Pareto front drawn as a line); for a continual claim, the compared value per task
    is in the table and the plot shows task 1's selection points. Labels are in a legend, so
    they never overlap."""
    claim = result.claim
    points = points_by_cell(rows, claim.value, claim.continual)
    methods = [claim.subject, *claim.baselines]
    panels = sorted({cell.split("/")[0] for m in methods for cell in points.get(m, {})})
    if not panels:
        return None
    fig = Figure(figsize=(4.2 * len(panels) + 1.8, 3.6), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    colors = {m: f"C{i}" for i, m in enumerate(methods)}
    for ax, panel in zip(axes, panels, strict=True):
        for m in methods:
            pts = [
                p
                for cell, ps in points.get(m, {}).items()
                if cell.split("/")[0] == panel
                for p in ps
            ]
            if not pts:
                continue
            ax.scatter([p.fe for p in pts], [p.mu for p in pts], s=18, color=colors[m], alpha=0.6)
            front = _front(pts)
            ax.plot([p.fe for p in front], [p.mu for p in front], color=colors[m], label=m, lw=1.5)
        ax.set_title(panel if not claim.continual else f"task 1, {panel}")
        ax.set_xlabel("Forget Efficacy")
        ax.set_ylabel("Model Utility")
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right upper", fontsize=8)
    buf_path = path.with_suffix(".png")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    atomic_write_bytes(buf_path, buf.getvalue())
    return buf_path


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def claim_section(result: ClaimResult, plot: Path | None, page_dir: Path) -> str:
    claim = result.claim
    label = VALUE_LABELS[claim.value] + (" (mean over tasks)" if claim.continual else "")
    lines = [f"## {claim.statement}", "", f"**Verdict: {result.verdict}.**", ""]
    for comp in result.comparisons:
        lines.append(f"### {claim.subject} against {comp.baseline}: {comp.verdict}")
        lines.append("")
        if not comp.cells:
            lines.extend(["No cell has runs of both methods.", ""])
            continue
        deltas = [c.delta for c in comp.cells]
        mean = sum(deltas) / len(deltas)
        lines.append(
            f"{label} difference over {len(deltas)} cell(s): mean {mean:+.3f}, "
            f"min {min(deltas):+.3f}, max {max(deltas):+.3f} (margin {MARGIN})."
        )
        lines.append("")
        head = f"| cell | matched FE | {claim.subject} lr | {claim.subject} | {comp.baseline} lr "
        head += f"| {comp.baseline} | difference | outcome |"
        if claim.reach:
            head += " max FE difference |"
        lines.append(head)
        lines.append("|" + "---|" * (9 if claim.reach else 8))
        for c in comp.cells:
            row = (
                f"| {c.cell} | {c.fe_star:.3f} | {c.subject.lr} | {_fmt(c.subject.value)} | "
                f"{c.baseline.lr} | {_fmt(c.baseline.value)} | {c.delta:+.3f} | {c.outcome} |"
            )
            if claim.reach:
                row += f" {_fmt(c.reach_delta)} |"
            lines.append(row)
        lines.append("")
    if plot is not None:
        lines.extend([f"![{claim.key}]({plot.relative_to(page_dir).as_posix()})", ""])
    return "\n".join(lines)


def write_claims_page(
    results: Sequence[ClaimResult],
    rows: Sequence[Mapping[str, Any]],
    out: Path,
    provenance: str = "",
) -> Path:
    """Write ``out`` (Markdown), its plots in ``<out stem>/``, ``<out stem>/claims.json`` (the
    verdicts and every compared run) and ``<out stem>/results.json`` (the raw results: every
    evaluated stage of every run, its settings and metrics) beside it. Returns the page's path."""
    assets = out.parent / out.stem
    assets.mkdir(parents=True, exist_ok=True)
    parts = [
        "# The paper's findings, checked on our runs",
        "",
        "Generated by `unlearn claims` from the results store; do not edit by hand. The rule "
        "(matched Forget Efficacy, margin, verdicts) is fixed in `unlearnkit/report/claims.py` "
        "and written down in [claims-rule.md](claims-rule.md) before any run.",
        "",
    ]
    if provenance:
        parts.extend([provenance, ""])
    parts.extend(["## The runs", "", *recipe_lines(rows)])
    parts.extend(every_run_lines(rows))
    parts.extend(["## Verdicts", ""])
    parts.append("| finding | verdict |")
    parts.append("|---|---|")
    parts.extend(f"| {r.claim.statement} | {r.verdict} |" for r in results)
    parts.append("")
    for r in results:
        plot = plot_claim(r, rows, assets / r.claim.key)
        parts.append(claim_section(r, plot, out.parent))
    atomic_write_text(out, "\n".join(parts))
    raw = {"margin": MARGIN, "claims": [r.to_json() for r in results]}
    atomic_write_text(assets / "claims.json", json.dumps(raw, indent=2, default=str) + "\n")
    results_json = json.dumps(raw_results(rows), indent=1, default=str, sort_keys=True)
    atomic_write_text(assets / "results.json", results_json + "\n")
    return out


def recipe_lines(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """What the runs behind the page were, read from their saved configs: model, benchmark,
    scenarios, splits, seeds, each method's learning rates and the shared training and
    evaluation settings (a setting that varies is listed with all its values)."""

    def values(get: Any) -> str:
        found = sorted({str(v) for v in (get(r) for r in rows) if v not in (None, "")})
        return ", ".join(found) if found else "-"

    def cfg(row: Mapping[str, Any], *keys: str) -> Any:
        node: Any = row.get("config") or {}
        for k in keys:
            node = node.get(k) if isinstance(node, Mapping) else None
        return node

    lrs: dict[str, set] = {}
    for r in rows:
        if r.get("method") and r.get("lr") is not None:
            lrs.setdefault(str(r["method"]), set()).add(float(r["lr"]))
    grid = "; ".join(
        f"{m} {', '.join(f'{x:g}' for x in sorted(v))}" for m, v in sorted(lrs.items())
    )
    return [
        "| setting | value |",
        "|---|---|",
        f"| model | {values(lambda r: cfg(r, 'model', 'name'))} |",
        f"| benchmark | {values(lambda r: r.get('benchmark'))} |",
        f"| scenarios | {values(lambda r: r.get('scenario'))} |",
        f"| forget splits | {values(lambda r: r.get('split'))} |",
        f"| seeds | {values(lambda r: r.get('seed'))} |",
        f"| learning rates | {grid or '-'} |",
        f"| epochs | {values(lambda r: cfg(r, 'train', 'epochs'))} |",
        f"| batch size | {values(lambda r: cfg(r, 'train', 'batch_size'))} |",
        f"| evaluated items per split | {values(lambda r: cfg(r, 'eval', 'ds_size'))} |",
        f"| continual tasks | {values(lambda r: cfg(r, 'tasks'))} |",
        "",
    ]


def claims_summary(claims_json: Path) -> list[str]:
    """One line per claim of a claims page's ``claims.json``: the statement, the verdict and,
    per baseline, the cells for/against; a line saying where the page would be when absent."""
    if not claims_json.is_file():
        return [f"(no claims page here: {claims_json} is generated by benchmarks/claims_grid.sh)"]
    raw = json.loads(claims_json.read_text())
    lines = []
    for c in raw.get("claims", []):
        claim = c["claim"]
        parts = []
        for comp in c.get("comparisons", []):
            cells = comp.get("cells", [])
            outcomes = [cell["outcome"] for cell in cells]
            counts = ", ".join(f"{outcomes.count(o)} {o}" for o in ("for", "tie", "against"))
            reach = [x["reach_delta"] for x in cells if claim.get("reach") and x.get("reach_delta")]
            short = [d for d in reach if d < -MARGIN]
            if short:  # the reach check: the subject's forgetting stays below the baseline's
                counts += f"; its max Forget Efficacy {min(short):+.3f} against the baseline's"
            text = f" ({counts})" if outcomes else ""
            parts.append(f"{comp['baseline']}: {comp['verdict']}{text}")
        statement = claim["statement"].rstrip(".")
        lines.append(f"- {statement}: {c['verdict']}. " + "; ".join(parts))
    return lines


RAW_KEYS = (
    "run", "stage", "scenario", "profile", "method", "benchmark", "split", "task", "seed", "lr",
    "model_utility", "forget_efficacy", "forget_quality", "forget_quality_after", "metrics",
    "aggregates",
)  # fmt: skip


def every_run_lines(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every fictitious run's final evaluation, one row each (the methods no claim names, such
    as DPO, included): forget split, method, learning rate, seed, Model Utility, Forget
    Efficacy, Forget Quality (when a run has it), and the forget split's ROUGE-L and Token
    Entropy."""
    finals = [r for r in rows if r.get("scenario") == "fictitious" and r.get("stage") == "final"]
    if not finals:
        return []
    finals = sorted(
        finals,
        key=lambda r: (
            str(r.get("split")), str(r.get("method")), float(r.get("lr") or 0), str(r.get("seed"))
        ),
    )  # fmt: skip
    fq = any(r.get("forget_quality") is not None for r in finals)
    lines = [
        "## Every fictitious run (final evaluation)",
        "",
        "| split | method | lr | seed | Model Utility | Forget Efficacy "
        + ("| Forget Quality " if fq else "")
        + "| forget ROUGE-L | forget Token Entropy |",
        "|---|---|---:|---:|---:|---:|" + ("---:|" if fq else "") + "---:|---:|",
    ]
    for r in finals:
        m = r.get("metrics") or {}
        lr = r.get("lr")
        quality = f"| {_fmt_p(r.get('forget_quality'))} " if fq else ""
        lines.append(
            f"| {r.get('split')} | {r.get('method')} | {'-' if lr is None else f'{float(lr):g}'} "
            f"| {r.get('seed')} | {_fmt(r.get('model_utility'))} "
            f"| {_fmt(r.get('forget_efficacy'))} {quality}"
            f"| {_fmt(m.get('forget/rouge_l'))} | {_fmt(m.get('forget/token_entropy'))} |"
        )
    return [*lines, ""]


def _fmt_p(x: float | None) -> str:
    """A p-value: 3 significant digits (Forget Quality spans many orders of magnitude)."""
    return "-" if x is None else f"{x:.3g}"


def raw_results(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The results store's rows as the claims page's raw results: settings and values of every
    evaluated stage (no local paths), sorted by run and stage."""
    out = [{k: row.get(k) for k in RAW_KEYS} for row in rows]
    return sorted(out, key=lambda r: (str(r["run"]), str(r["stage"])))


__all__ = ["CLAIMS", "Claim", "claims_summary", "plot_claim", "raw_results", "write_claims_page"]
