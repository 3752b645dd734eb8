"""Attacks in the report: a recovery table, a picture and a sentence per run.

Reads a run's ``attacks.json`` (:func:`unlearnkit.attacks.recovery.attacks_report`, written by
the attack stage of ``unlearn run``, or ``<out>/attacks/attacks.json`` by ``unlearn eval
--attacks``). The picture shows, per recovery metric, the forget-set value before unlearning,
unlearned, after each attack and of the retain model (each attack's values are means over the
items it evaluated; the before / unlearned / retain bars are over every attacked item).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from unlearnkit.report.plots import _new_figure, save_figure, set_unit_axis
from unlearnkit.report.tables import METRICS, MISSING, format_value
from unlearnkit.utils import read_json

ATTACKS_FILE = "attacks.json"


def read_attacks(run_dir: Path) -> dict[str, Any] | None:
    """A run folder's ``attacks.json`` (None when the run ran no attack)."""
    path = Path(run_dir) / ATTACKS_FILE
    return read_json(path) if path.is_file() else None


def _f(value: Any) -> str:
    return MISSING if value is None else format_value(value)


def attack_table_rows(report: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """(header, rows): one row per attack with, per metric, unlearned -> after and recovery,
    then the seconds spent attacking and evaluating; the worst case and robustness last."""
    metrics = report["metrics"]
    header = ["Attack"]
    for m in metrics:
        label = METRICS.get(m, m)
        header += [f"{label} before", f"{label} unlearned", f"{label} after", f"{label} retain",
                   f"{label} recovery", f"{label} recovery (no floor)"]  # fmt: skip
    header += ["attack s", "eval s"]
    rows = []
    seconds = report.get("seconds", {})
    for name, by_metric in report["attacks"].items():
        row = [name]
        for m in metrics:
            r = by_metric[m]
            row += [_f(r["before"]), _f(r["unlearned"]), _f(r["after"]), _f(r["retain"]),
                    _f(r["recovery"]), _f(r.get("recovery_no_floor"))]  # fmt: skip
        sec = seconds.get(name, {})
        row += [_f(sec.get("attack")), _f(sec.get("eval"))]
        rows.append(row)
    worst = ["worst case per item"]
    for m in metrics:
        r = report["worst_case"][m]
        worst += [_f(r["before"]), _f(r["unlearned"]), _f(r["after"]), _f(r["retain"]),
                  _f(r["recovery"]), _f(r.get("recovery_no_floor"))]  # fmt: skip
    rows.append(worst + ["", ""])
    return header, rows


def attacks_markdown(title: str, report: dict[str, Any]) -> str:
    header, rows = attack_table_rows(report)
    lines = [f"### Attacks: {title}\n", "| " + " | ".join(header) + " |"]
    lines.append("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    rob = report.get("robustness_score")
    rob0 = report.get("robustness_score_no_floor")
    lines.append(
        f"\nRobustness score: {_f(rob)} (1 - worst-case recovery, mean over metrics; "
        f"{_f(rob0)} without the retain model's floor)"
    )
    for name, extra in (report.get("extra_metrics") or {}).items():
        lines.append(f"{name}: " + ", ".join(f"{k} {_f(v)}" for k, v in extra.items()))
    lines.append("")
    return "\n".join(lines) + "\n"


def format_attacks(report: dict[str, Any]) -> str:
    """Plain text for ``unlearn eval --attacks``."""
    header, rows = attack_table_rows(report)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    out = ["  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True))]
    out += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    out.append(
        f"robustness score: {_f(report.get('robustness_score'))} "
        f"({_f(report.get('robustness_score_no_floor'))} without the retain model's floor)"
    )
    for name, extra in (report.get("extra_metrics") or {}).items():
        out.append(f"{name}: " + ", ".join(f"{k} {_f(v)}" for k, v in extra.items()))
    if report["baselines"].get("before") is None:
        out.append("recovery needs the model before unlearning: --before-eval <its eval folder>")
    return "\n".join(out)


def explain_attacks(label: str, report: dict[str, Any]) -> list[str]:
    """A sentence per metric naming the attack that brings back the most of it, e.g.
    "ME+GD's forget ROUGE-L returns from 0.20 to 0.70 after 4-bit quantization (recovery 0.62 of
    the 0.95 before unlearning)"."""
    phrases = report.get("phrases", {})
    out = []
    for m in report["metrics"]:
        rows = [(n, r[m]) for n, r in report["attacks"].items() if r[m]["after"] is not None]
        if not rows:
            continue
        name, r = max(rows, key=lambda nr: nr[1]["after"] - nr[1]["unlearned"])
        what = f"{label}'s forget {METRICS.get(m, m)}"
        how = phrases.get(name, f"the {name} attack")
        change = r["after"] - r["unlearned"]
        if change < 0.005:
            text = f"{what} stays at or below {r['unlearned']:.2f} under every attack"
            out.append(text + ".")
            continue
        text = f"{what} returns from {r['unlearned']:.2f} to {r['after']:.2f} after {how}"
        extra = []
        if r["recovery"] is not None and r["retain"] is not None:
            extra.append(
                f"recovery {r['recovery']:.2f} with the retain model's {r['retain']:.2f} as the "
                f"floor, {r['recovery_no_floor']:.2f} without"
            )
        elif r["recovery"] is not None:
            extra.append(f"recovery {r['recovery']:.2f}")
        if r["before"] is not None:
            extra.append(f"{r['before']:.2f} before unlearning")
        out.append(text + (f" ({'; '.join(extra)})" if extra else "") + ".")
    return out


def plot_attacks(title: str, report: dict[str, Any], path: Path) -> Path | None:
    """Bars per metric: before, unlearned, each attack, retain (forget set)."""
    metrics = [m for m in report["metrics"] if report["attacks"]]
    if not metrics:
        return None
    names = list(report["attacks"])
    fig = _new_figure(4.0 * len(metrics) + 1.0, 0.3 * (len(names) + 3) + 1.6)
    axes = fig.subplots(1, len(metrics), squeeze=False, sharey=True)[0]
    for ax, m in zip(axes, metrics, strict=True):
        worst = report["worst_case"][m]
        bars = [("before", worst["before"], "0.3"), ("unlearned", worst["unlearned"], "tab:blue")]
        bars += [(n, report["attacks"][n][m]["after"], "tab:red") for n in names]
        bars += [("retain model", worst["retain"], "tab:green")]
        ypos = list(range(len(bars)))
        ax.barh(ypos, [0.0 if v is None else v for _, v, _ in bars], color=[c for *_, c in bars])
        for y, (_, v, _) in zip(ypos, bars, strict=True):
            ax.text(0 if v is None else v, y, f" {'–' if v is None else f'{v:.3g}'}", va="center",
                    fontsize=7)  # fmt: skip
        ax.set_yticks(ypos, [b[0] for b in bars], fontsize=8)
        ax.set_title(f"forget {METRICS.get(m, m)}", fontsize=9)
        set_unit_axis(ax, "x", room=0.12)
        ax.grid(True, axis="x", alpha=0.3)
    axes[0].invert_yaxis()
    fig.suptitle(f"{title}: forget set before / unlearned / after each attack / retain")
    return save_figure(fig, path)
