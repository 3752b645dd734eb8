"""Plots of bounded metrics keep fixed [0, 1] axes; the continual plot starts before unlearning."""

from __future__ import annotations

from pathlib import Path

import pytest

from unlearnkit.report import plots as plots_mod
from unlearnkit.report.tables import Column, ScenarioTable

UNIT = (-0.03, 1.03)


def _row(run: str, stage: str, mu: float, fe: float, before: bool = False) -> dict:
    return {
        "run_dir": f"/runs/{run}",
        "run": run,
        "stage": stage,
        "label": "before unlearning" if before else run,
        "method": "before unlearning" if before else run,
        "is_before": before,
        "benchmark": "synthetic",
        "split": "forget05",
        "model_utility": mu,
        "forget_efficacy": fe,
        "forget_quality": None,
        "metrics": {"forget/rouge_l": 1 - fe, "retain/rouge_l": mu},
    }


@pytest.fixture
def figures(monkeypatch: pytest.MonkeyPatch) -> list:
    """The figures the plot functions save (instead of writing PNG files)."""
    saved: list = []

    def keep(fig, path: Path) -> Path:
        saved.append(fig)
        return path

    monkeypatch.setattr(plots_mod, "save_figure", keep)
    return saved


def _continual_table() -> ScenarioTable:
    # The case: Model Utility moving by 0.002 only must not fill the plot's height.
    rows = [
        _row("cont", "before", 0.2606, 0.20, before=True),
        _row("NPO+GD", "task1", 0.2600, 0.30),
        _row("NPO+GD", "task2", 0.2587, 0.45),
    ]
    columns = [Column("model_utility", "MU"), Column("forget_efficacy", "FE")]
    return ScenarioTable("continual", columns, rows, show_stage=True)


def test_set_unit_axis(figures: list) -> None:
    fig = plots_mod._new_figure(3, 3)
    ax = fig.subplots()
    ax.plot([0, 1], [0.2587, 0.2606])
    plots_mod.set_unit_axis(ax, "y")
    plots_mod.set_unit_axis(ax, "x", room=0.1)
    assert ax.get_ylim() == pytest.approx(UNIT)
    assert ax.get_xlim() == pytest.approx((-0.03, 1.13))
    with pytest.raises(ValueError, match="axis must be"):
        plots_mod.set_unit_axis(ax, "z")


def test_continual_plot_has_unit_axes_and_starts_at_the_before_point(figures: list) -> None:
    assert plots_mod.plot_continual(_continual_table(), Path("c.png")) is not None
    (fig,) = figures
    mu_ax, fe_ax = fig.axes
    for ax, first in ((mu_ax, 0.2606), (fe_ax, 0.20)):
        assert ax.get_ylim() == pytest.approx(UNIT)
        (line,) = ax.get_lines()
        assert list(line.get_xdata()) == [0, 1, 2]  # the run's line starts at the original model
        assert line.get_ydata()[0] == pytest.approx(first)
        assert ax.get_xlabel() == "task (0 = before unlearning)"
    labels = fe_ax.get_legend_handles_labels()[1]
    assert labels == ["NPO+GD", "before unlearning"]


def test_continual_plot_without_before_has_no_task_zero(figures: list) -> None:
    table = _continual_table()
    table.rows = [r for r in table.rows if not r["is_before"]]
    plots_mod.plot_continual(table, Path("c.png"))
    (fig,) = figures
    for ax in fig.axes:
        assert list(ax.get_lines()[0].get_xdata()) == [1, 2]
        assert ax.get_xlabel() == "task"  # no "0 = before unlearning" with no point at 0
        assert ax.get_ylim() == pytest.approx(UNIT)


def test_mu_fe_and_metric_bars_have_unit_axes(figures: list) -> None:
    rows = [_row("x", "before", 0.5, 0.2, before=True), _row("ME+GD", "final", 0.49, 0.21)]
    columns = [
        Column("model_utility", "MU"),
        Column("forget/rouge_l", "Forget ROUGE-L"),
        Column("retain/rouge_l", "Retain ROUGE-L"),
    ]
    table = ScenarioTable("fictitious", columns, rows)
    plots_mod.plot_mu_fe(table, Path("a.png"))
    plots_mod.plot_metric_bars(table, "forget", Path("b.png"))
    scatter, bars = figures
    assert scatter.axes[0].get_xlim() == pytest.approx(UNIT)
    assert scatter.axes[0].get_ylim() == pytest.approx(UNIT)
    assert bars.axes[0].get_xlim()[0] == pytest.approx(UNIT[0])
    assert bars.axes[0].get_xlim()[1] > 1.0  # [0, 1] plus room for the value labels


def test_mu_fe_labels_of_close_points_do_not_overlap(figures: list) -> None:
    """The demo's IDK+AP and IDK+GD sat on the same spot: their labels must not cover each other."""
    rows = [
        _row("x", "before", 0.52, 0.30, before=True),
        _row("IDK+AP", "final", 0.0, 0.81),
        _row("IDK+GD", "final", 0.0, 0.83),
        _row("IDK+KL", "final", 0.0, 0.82),
        _row("GA+GD", "final", 0.40, 0.73),
    ]
    table = ScenarioTable("fictitious", [Column("model_utility", "MU")], rows)
    plots_mod.plot_mu_fe(table, Path("a.png"))
    (fig,) = figures
    renderer = fig.canvas.get_renderer()
    texts = [t for t in fig.axes[0].texts if t.get_text() in {r["label"] for r in rows}]
    assert len(texts) == len(rows)
    boxes = [t.get_window_extent(renderer) for t in texts]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not a.overlaps(b)


def test_place_labels_would_overlap_without_it(figures: list) -> None:
    """The check above can fail: the first offset alone puts two labels on the same spot."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure()
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    a = ax.annotate("IDK+AP", (0.5, 0.5), xytext=(6, 5), textcoords="offset points")
    b = ax.annotate("IDK+GD", (0.51, 0.5), xytext=(6, 5), textcoords="offset points")
    r = fig.canvas.get_renderer()
    assert a.get_window_extent(r).overlaps(b.get_window_extent(r))
    ax.texts[1].remove()
    ax.texts[0].remove()
    c, d = plots_mod.place_labels(ax, [("IDK+AP", 0.5, 0.5), ("IDK+GD", 0.51, 0.5)])
    assert not c.get_window_extent(r).overlaps(d.get_window_extent(r))
