"""Self-contained HTML report: tables, plots embedded as base64 PNG, side-by-side generations.

The page has no external resource (no script, stylesheet, font or image URL), so it can be
mailed or archived as one file. Every text from the runs is HTML-escaped.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from unlearnkit.eval.metrics.specs import METRIC_SPECS
from unlearnkit.report.tables import (
    METRICS,
    OPTIONAL_AGGREGATES,
    SPLITS,
    ScenarioTable,
    cell_text,
)

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1400px; padding: 0 1em; color: #222; }
h1, h2, h3 { font-weight: 600; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 13px; margin: .5em 0 1.5em; }
th, td { border: 1px solid #ddd; padding: 4px 8px; vertical-align: top; }
th { background: #f3f3f3; position: sticky; top: 0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.before td { background: #fafafa; font-style: italic; }
table.gen td { max-width: 28em; white-space: pre-wrap; word-wrap: break-word; }
table.gen td.q { font-weight: 500; }
img { max-width: 100%; border: 1px solid #eee; margin: .5em 0; }
.note { color: #666; font-size: 13px; }
"""


@dataclass
class Generations:
    """Sampled items of one split for a group of runs sharing benchmark and split."""

    title: str
    run_labels: list[str]
    # one dict per item: question, answer, before, and "after" = {run label: generation or None}
    items: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ScenarioSection:
    table: ScenarioTable
    csv_name: str
    plots: list[tuple[str, Path]]  # (caption, PNG path)
    generations: list[Generations]


def _esc(value: Any) -> str:
    return "–" if value is None else html.escape(str(value))


def png_data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _settings_link(row: dict[str, Any]) -> str:
    """The row's label, linked to its run's resolved configuration (every setting of the method)."""
    config = Path(str(row.get("run_dir") or "")) / "config.yaml"
    if not row.get("run_dir") or not config.is_file():
        return _esc(row["label"])
    href = config.resolve().as_uri()
    return f'<a href="{_esc(href)}" title="resolved settings">{_esc(row["label"])}</a>'


def table_html(table: ScenarioTable) -> str:
    head = ["Method"] + (["Stage"] if table.show_stage else []) + [c.header for c in table.columns]
    titles = [""] + ([""] if table.show_stage else []) + [c.key for c in table.columns]
    out = ['<div class="scroll"><table class="results"><thead><tr>']
    out += [f'<th title="{_esc(t)}">{_esc(h)}</th>' for h, t in zip(head, titles, strict=True)]
    out.append("</tr></thead><tbody>")
    for r in table.rows:
        cls = ' class="before"' if r["is_before"] else ""
        cells = [f"<td>{_settings_link(r)}</td>"]
        if table.show_stage:
            cells.append(f"<td>{_esc(r['stage'])}</td>")
        cells += [f'<td class="num">{_esc(cell_text(table, r, c.key))}</td>' for c in table.columns]
        out.append(f"<tr{cls}>" + "".join(cells) + "</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def generations_html(gen: Generations) -> str:
    head = ["Question", "Ground truth", "Before"] + gen.run_labels
    out = [f"<h4>{_esc(gen.title)}</h4>", '<div class="scroll"><table class="gen"><thead><tr>']
    out += [f"<th>{_esc(h)}</th>" for h in head]
    out.append("</tr></thead><tbody>")
    for item in gen.items:
        cells = [
            f'<td class="q">{_esc(item["question"])}</td>',
            f"<td>{_esc(item['answer'])}</td>",
            f"<td>{_esc(item['before'])}</td>",
        ]
        cells += [f"<td>{_esc(item['after'].get(lab))}</td>" for lab in gen.run_labels]
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def _legend() -> str:
    aggs = {
        "MU": "Model Utility: aggregate of the metrics on the retain-side splits "
        "(higher = more knowledge kept)",
        "FE": "Forget Efficacy: aggregate of the metrics on the forget split, oriented so that "
        "higher = more forgotten",
        "FQ": "Forget Quality: KS-test p-value of forget-set truth ratios against a retain "
        "model (needs eval.retain_eval)",
    }
    aggs.update({label: METRIC_SPECS[key].description for key, label in OPTIONAL_AGGREGATES})
    items = [f"<li><b>{_esc(k)}</b>: {_esc(v)}</li>" for k, v in aggs.items()]
    metrics = ", ".join(f"{_esc(short)} = {_esc(key)}" for key, short in METRICS.items())
    splits = ", ".join(_esc(v) for v in SPLITS.values())
    items.append(f"<li>Per-split metrics ({splits}): {metrics}</li>")
    items.append("<li>– = not computed (see the notes under each table)</li>")
    return '<ul class="note">' + "".join(items) + "</ul>"


def attacks_html(label: str, report: dict[str, Any]) -> str:
    """A run's attack table (:func:`unlearnkit.report.attacks.attack_table_rows`)."""
    from unlearnkit.report.attacks import attack_table_rows

    header, rows = attack_table_rows(report)
    out = [f"<h3>Attacks: {_esc(label)}</h3><table><tr>"]
    out += [f"<th>{_esc(h)}</th>" for h in header]
    out.append("</tr>")
    for r in rows:
        out.append("<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in r) + "</tr>")
    out.append("</table>")
    rob = report.get("robustness_score")
    out.append(
        f'<p class="note">Robustness score: {_esc(None if rob is None else f"{rob:.3f}")} '
        "(1 - worst-case recovery per item, mean over metrics)</p>"
    )
    return "".join(out)


def render_html(
    sections: list[ScenarioSection],
    title: str = "unlearnkit report",
    runs_without_eval: list[Path] | None = None,
    sources: list[str] | None = None,
) -> str:
    """The full page as a string."""
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_esc(title)}</h1>",
        f'<p class="note">Generated {now}'
        + (f" from {_esc(', '.join(sources))}" if sources else "")
        + ".</p>",
        _legend(),
    ]
    if sections:
        out.append(
            "<p>Scenarios: "
            + ", ".join(
                f'<a href="#scenario-{_esc(s.table.scenario)}">{_esc(s.table.scenario)}</a>'
                for s in sections
            )
            + "</p>"
        )
    for s in sections:
        t = s.table
        out.append(f'<h2 id="scenario-{_esc(t.scenario)}">Scenario: {_esc(t.scenario)}</h2>')
        out.append(table_html(t))
        if t.explanations:
            out.append("<h3>What happened</h3><ul>")
            out += [f"<li>{_esc(e)}</li>" for e in t.explanations]
            out.append("</ul>")
        for label, report in t.attacks:
            out.append(attacks_html(label, report))
        out.append(f'<p class="note">Raw values: {_esc(s.csv_name)}</p>')
        out += [f'<p class="note">{_esc(n)}</p>' for n in t.notes]
        for caption, path in s.plots:
            out.append(f"<h3>{_esc(caption)}</h3>")
            out.append(f'<img alt="{_esc(caption)}" src="{png_data_uri(path)}">')
        if s.generations:
            out.append("<h3>Generations before and after unlearning</h3>")
            out += [generations_html(g) for g in s.generations]
    if runs_without_eval:
        out.append("<h2>Runs without evaluation</h2><ul>")
        out += [f"<li>{_esc(p)}</li>" for p in runs_without_eval]
        out.append("</ul>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"
