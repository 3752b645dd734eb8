"""The report's Markdown document: every scenario table, its sentences, its attacks, its notes."""

from __future__ import annotations

from unlearnkit.report.attacks import attacks_markdown
from unlearnkit.report.tables import COMPACT_COLUMNS, ScenarioTable, to_markdown


def report_markdown(tables: list[ScenarioTable], compact: bool = False) -> str:
    """All scenario tables as one Markdown document (``compact``: MU/FE/FQ + ROUGE-L only)."""
    parts = []
    for t in tables:
        parts.append(f"## Scenario: {t.scenario}\n")
        parts.append(to_markdown(t, COMPACT_COLUMNS if compact else None))
        if t.explanations:
            parts.append("What happened:\n\n" + "".join(f"- {e}\n" for e in t.explanations))
        if t.attacks and not compact:
            parts.extend(attacks_markdown(label, report) for label, report in t.attacks)
        parts.extend(f"\n_{note}_\n" for note in t.notes)
    return "\n".join(parts)
