"""Report plots (matplotlib, PNG). Figures are built with the object API on the Agg canvas, so
nothing touches pyplot's global state or needs a display.

- :func:`plot_mu_fe`: Model Utility vs Forget Efficacy, one labelled point per method (the
  paper's main picture: top right is best).
- :func:`plot_metric_bars`: the six metrics of one split, one bar per method.
- :func:`plot_continual`: Model Utility and Forget Efficacy after each task.
- :func:`plot_loss_curves`: training loss (and its parts) per run, from ``train_log.jsonl``.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from unlearnkit.report.store import stage_task
from unlearnkit.report.tables import (
    METRICS,
    SPLITS,
    ScenarioTable,
    last_stage_per_run,
    row_value,
)
from unlearnkit.utils import atomic_write_bytes

MU_LABEL = "Model Utility (higher = more kept)"
FE_LABEL = "Forget Efficacy (higher = more forgotten)"


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def set_unit_axis(ax: Any, axis: str = "y", room: float = 0.0) -> None:
    """Fix ``axis`` ("x" or "y") of ``ax`` to the [0, 1] range of a bounded metric (MU, FE, FQ's
    p-value and every per-split metric), with a small margin so points on 0 or 1 stay visible
    and ``room`` more above 1 (for value labels). A fixed range keeps reports comparable and never
    stretches a change of 0.002 into a climb across the whole plot."""
    lo, hi = -0.03, 1.03 + room
    if axis == "x":
        ax.set_xlim(lo, hi)
    elif axis == "y":
        ax.set_ylim(lo, hi)
    else:
        raise ValueError(f"axis must be 'x' or 'y', got {axis!r}")


def save_figure(fig: Figure, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return atomic_write_bytes(path, buf.getvalue())


def _colors(names: list[str]) -> dict[str, Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return {name: cmap(i % 10) for i, name in enumerate(dict.fromkeys(names))}


def plot_mu_fe(table: ScenarioTable, path: Path) -> Path | None:
    """Scatter of Model Utility (y) against Forget Efficacy (x); None when no row has both."""
    rows = [
        r
        for r in last_stage_per_run(table)
        if row_value(r, "model_utility") is not None and row_value(r, "forget_efficacy") is not None
    ]
    if not rows:
        return None
    colors = _colors([r.get("method") or r["label"] for r in rows if not r["is_before"]])
    fig = _new_figure(7.5, 5.5)
    ax = fig.subplots()
    seen: set[str] = set()
    labels: list[tuple[str, float, float]] = []
    for r in rows:
        x, y = row_value(r, "forget_efficacy"), row_value(r, "model_utility")
        if r["is_before"]:
            name, color, marker, size = "before unlearning", "black", "*", 200
        else:
            name = r.get("method") or r["label"]
            color, marker, size = colors[name], "o", 80
        ax.scatter(
            [x],
            [y],
            s=size,
            marker=marker,
            color=color,
            edgecolor="white",
            linewidth=0.8,
            zorder=3,
            label=None if name in seen else name,
        )
        seen.add(name)
        text = r["label"] if r["stage"] in ("final", "before") else f"{r['label']} ({r['stage']})"
        labels.append((text, x, y))
    ax.set_xlabel(FE_LABEL)
    ax.set_ylabel(MU_LABEL)
    ax.set_title(f"{table.scenario}: Model Utility vs Forget Efficacy (top right is best)")
    ax.grid(True, alpha=0.3)
    set_unit_axis(ax, "x")
    set_unit_axis(ax, "y")
    ax.legend(loc="best", fontsize=8, title="method", title_fontsize=8)
    place_labels(ax, labels)
    return save_figure(fig, path)


# Offsets (points) tried in turn for a point's label; the first whose box overlaps no label
# placed before wins; a label moved away from its point gets a thin leader line.
_LABEL_OFFSETS = [(6, 5), (6, -12), (-6, 5), (-6, -12)] + [
    (dx, dy) for r in (18, 30, 42, 54) for dx, dy in ((8, r), (8, -r - 7), (-8, r), (-8, -r - 7))
]


def place_labels(ax: Any, labels: list[tuple[str, float, float]]) -> list[Any]:
    """Annotate each (text, x, y) so that no two labels' boxes overlap, trying the offsets of
    ``_LABEL_OFFSETS`` (right/left, above/below, then further out with a leader line). The axes'
    limits must be final. Returns the annotation artists, in the order given."""
    renderer = ax.figure.canvas.get_renderer()
    placed: list[Any] = []  # boxes (display coordinates) of the labels placed so far
    artists = []
    for text, x, y in labels:
        for i, (dx, dy) in enumerate(_LABEL_OFFSETS):
            far = i >= 4
            ann = ax.annotate(
                text,
                (x, y),
                xytext=(dx, dy),
                textcoords="offset points",
                ha="left" if dx > 0 else "right",
                fontsize=8,
                zorder=4,
                arrowprops={"arrowstyle": "-", "lw": 0.5, "color": "0.4"} if far else None,
            )
            box = ann.get_window_extent(renderer).expanded(1.05, 1.1)
            if not any(box.overlaps(b) for b in placed) or i == len(_LABEL_OFFSETS) - 1:
                placed.append(box)
                artists.append(ann)
                break
            ann.remove()
    return artists


def table_splits(table: ScenarioTable) -> list[str]:
    """Splits that have at least one metric column, in table order."""
    return list(dict.fromkeys(c.key.split("/", 1)[0] for c in table.columns if "/" in c.key))


def plot_metric_bars(table: ScenarioTable, split: str, path: Path) -> Path | None:
    """One panel per metric of ``split``, one horizontal bar per method; None if no values."""
    rows = last_stage_per_run(table)
    metrics = [c.key.split("/", 1)[1] for c in table.columns if c.key.startswith(f"{split}/")]
    if not rows or not metrics:
        return None
    labels = [r["label"] for r in rows]
    colors = _colors([r.get("method") or r["label"] for r in rows if not r["is_before"]])
    ncols = min(3, len(metrics))
    nrows = -(-len(metrics) // ncols)
    fig = _new_figure(4.2 * ncols + 1.5, 0.35 * len(rows) * nrows + 1.6 * nrows + 0.6)
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=True)
    for i, metric in enumerate(metrics):
        ax = axes[i // ncols][i % ncols]
        values = [row_value(r, f"{split}/{metric}") for r in rows]
        bar_colors = [
            "0.3" if r["is_before"] else colors[r.get("method") or r["label"]] for r in rows
        ]
        ypos = list(range(len(rows)))
        ax.barh(ypos, [0.0 if v is None else v for v in values], color=bar_colors)
        for y, v in zip(ypos, values, strict=True):
            text = "–" if v is None else f"{v:.3g}"
            ax.text(0 if v is None else v, y, f" {text}", va="center", fontsize=7)
        ax.set_yticks(ypos, labels, fontsize=8)
        ax.set_title(METRICS.get(metric, metric) + f" ({metric})", fontsize=9)
        set_unit_axis(ax, "x", room=0.12)  # every metric is in [0, 1]; room for the labels
        ax.grid(True, axis="x", alpha=0.3)
    axes[0][0].invert_yaxis()  # the y axis is shared: invert once, table order top to bottom
    for j in range(len(metrics), nrows * ncols):
        axes[j // ncols][j % ncols].set_visible(False)
    fig.suptitle(f"{table.scenario}: metrics on the {SPLITS.get(split, split)} split")
    return save_figure(fig, path)


def plot_continual(table: ScenarioTable, path: Path) -> Path | None:
    """Model Utility and Forget Efficacy after each task, one line per run starting at task 0:
    the model before unlearning (the table's ``before`` row of the run's benchmark and split,
    when it was evaluated). None if no run has tasks."""
    series: dict[str, list[dict[str, Any]]] = {}
    for r in table.rows:
        if not r["is_before"] and stage_task(r["stage"]) is not None:
            series.setdefault(r["run_dir"], []).append(r)
    if not series:
        return None
    befores = {(r.get("benchmark"), r.get("split")): r for r in table.rows if r["is_before"]}
    names = [rows[0].get("method") or rows[0]["label"] for rows in series.values()]
    colors = _colors(names)
    fig = _new_figure(11, 4.5)
    axes = fig.subplots(1, 2)
    for ax, key, ylabel in (
        (axes[0], "model_utility", MU_LABEL),
        (axes[1], "forget_efficacy", FE_LABEL),
    ):
        drew_before = False
        for rows, name in zip(series.values(), names, strict=True):
            rows = sorted(rows, key=lambda r: stage_task(r["stage"]) or 0)
            before = befores.get((rows[0].get("benchmark"), rows[0].get("split")))
            pts = [(stage_task(r["stage"]), row_value(r, key)) for r in rows]
            if before is not None:
                pts.insert(0, (0, row_value(before, key)))
            pts = [(t, v) for t, v in pts if v is not None]
            if pts:
                ax.plot(
                    *zip(*pts, strict=True), marker="o", color=colors[name], label=rows[0]["label"]
                )
            if pts and pts[0][0] == 0:  # the original model, marked at task 0
                ax.scatter(
                    [0],
                    [pts[0][1]],
                    marker="*",
                    s=160,
                    color="black",
                    zorder=3,
                    label=None if drew_before else "before unlearning",
                )
                drew_before = True
        ax.set_xlabel("task (0 = before unlearning)" if drew_before else "task")
        ax.set_ylabel(ylabel)
        set_unit_axis(ax, "y")
        ax.grid(True, alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    axes[0].set_title("Model Utility after each task")
    axes[1].set_title("Forget Efficacy after each task")
    axes[1].legend(fontsize=8, loc="best")
    fig.suptitle(f"{table.scenario}: continual unlearning")
    return save_figure(fig, path)


def loss_series(log: list[dict[str, Any]]) -> tuple[list[float], dict[str, list[float | None]]]:
    """x values and ``{"loss": [...], "loss_forget": [...]}`` from train_log rows with a loss.

    x is the logged ``step`` when it increases strictly; otherwise (a continual run restarting
    its step count each task) the position of the row.
    """
    rows = [r for r in log if isinstance(r.get("loss"), (int, float))]
    steps = [r.get("step") for r in rows]
    increasing = all(isinstance(s, (int, float)) for s in steps) and all(
        b > a for a, b in zip(steps, steps[1:], strict=False)
    )
    xs = [float(s) for s in steps] if increasing else [float(i + 1) for i in range(len(rows))]
    keys = ["loss"] + sorted({k for r in rows for k in r if k.startswith("loss_")})
    series: dict[str, list[float | None]] = {}
    for k in keys:
        series[k] = [float(r[k]) if isinstance(r.get(k), (int, float)) else None for r in rows]
    return xs, series


def plot_loss_curves(
    logs: list[tuple[str, list[dict[str, Any]]]], title: str, path: Path
) -> Path | None:
    """One panel per run (label, train_log rows): total loss solid, its parts dashed."""
    logs = [(label, log) for label, log in logs if loss_series(log)[0]]
    if not logs:
        return None
    ncols = min(3, len(logs))
    nrows = -(-len(logs) // ncols)
    fig = _new_figure(4.6 * ncols, 3.4 * nrows + 0.5)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for i, (label, log) in enumerate(logs):
        ax = axes[i // ncols][i % ncols]
        xs, series = loss_series(log)
        for k, values in series.items():
            pts = [(x, v) for x, v in zip(xs, values, strict=True) if v is not None]
            if pts:
                ax.plot(
                    *zip(*pts, strict=True),
                    linestyle="-" if k == "loss" else "--",
                    linewidth=1.8 if k == "loss" else 1.2,
                    label=k,
                )
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    for j in range(len(logs), nrows * ncols):
        axes[j // ncols][j % ncols].set_visible(False)
    fig.suptitle(title)
    return save_figure(fig, path)
