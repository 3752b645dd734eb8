"""Results store, tables, plots and HTML report on hand-written run folders."""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import threading
from pathlib import Path

import pytest
import yaml

from unlearnkit.report import plots as plots_mod
from unlearnkit.report.build import build_report, sample_indices
from unlearnkit.report.plots import loss_series
from unlearnkit.report.store import ResultsStore, find_run_dirs, stage_sort_key
from unlearnkit.report.tables import format_value, scenario_tables, to_csv, to_markdown

METRIC_KEYS = [
    "rouge_l",
    "probability",
    "truth_ratio",
    "token_entropy",
    "cosine_similarity",
    "entailment",
]


def _metrics(base: float, entailment: float | None = 0.5) -> dict[str, float | None]:
    vals: dict[str, float | None] = {
        k: round(base + 0.01 * i, 4) for i, k in enumerate(METRIC_KEYS)
    }
    vals["entailment"] = entailment
    return vals


def _summary(mu: float | None, fe: float | None, fq: float | None, forget: float, **kw) -> dict:
    missing = kw.pop("missing", {})
    return {
        "model": "tiny",
        "fingerprint": "abc",
        "benchmark": "synthetic",
        "eval_config": {"ds_size": 3},
        "splits": {
            "forget": _metrics(forget, kw.get("entailment", 0.5)),
            "retain": _metrics(0.6, kw.get("entailment", 0.5)),
        },
        "aggregates": {"model_utility": mu, "forget_efficacy": fe, "forget_quality": fq},
        "missing": missing,
        "timings": {"generate": 1.0},
    }


QUESTIONS = [f"Who wrote book {i}?" for i in range(4)]


def _items(split: str, tag: str) -> list[dict]:
    return [
        {"question": f"[{split}] {q}", "answer": f"Author {i}", "generation": f"{tag} gen {i}"}
        for i, q in enumerate(QUESTIONS)
    ]


def _write_run(
    root: Path,
    name: str,
    *,
    scenario: str = "fictitious",
    method: str = "ME+GD",
    lr: float = 1e-5,
    seed: int = 0,
    split: str = "forget01",
    stages: dict[str, dict] | None = None,
    train_log: list[dict] | None = None,
) -> Path:
    run = root / name
    run.mkdir(parents=True)
    config = {
        "name": name,
        "scenario": scenario,
        "data": {"benchmark": "synthetic", "split": split, "task": 1},
        "method": {"name": method},
        "train": {"learning_rate": lr, "seed": seed},
    }
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    for stage, summary in (stages or {}).items():
        d = run / "eval" / stage
        d.mkdir(parents=True)
        (d / "summary.json").write_text(json.dumps(summary))
        for split_name in ("forget", "retain"):
            rows = _items(split_name, f"{name}/{stage}")
            (d / f"{split_name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if train_log is not None:
        (run / "train_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in train_log))
    return run


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    out = tmp_path / "runs"
    before = _summary(0.70, 0.20, 1.5e-20, forget=0.9)
    _write_run(
        out,
        "megd",
        method="ME+GD",
        stages={"before": before, "final": _summary(0.5123, 0.6344, 0.0123, forget=0.1)},
        train_log=[
            {"step": s, "epoch": s / 4, "loss": 3.0 - 0.4 * s, "loss_forget": 1.0 - 0.1 * s}
            for s in range(1, 6)
        ],
    )
    _write_run(
        out,
        "idkap",
        method="IDK+AP",
        stages={
            "before": before,
            "final": _summary(
                0.61, 0.4, 1.23e-5, forget=0.3, entailment=None, missing={"entailment": "no NLI"}
            ),
        },
        train_log=[{"step": s, "loss": 2.0 / s, "loss_regularizer": 0.5} for s in range(1, 4)],
    )
    _write_run(
        out,
        "cont",
        scenario="continual",
        method="NPO+GD",
        stages={
            "before": before,
            "task1": _summary(0.65, 0.30, None, forget=0.5),
            "task2": _summary(0.60, 0.45, None, forget=0.4),
            "task3": _summary(0.55, 0.50, None, forget=0.3),
        },
    )
    _write_run(out, "noeval", method="GA+GD")
    return out


# --------------------------------------------------------------------------- store


def test_stage_order() -> None:
    stages = ["final", "task10", "epoch2", "task2", "before", "epoch1"]
    assert sorted(stages, key=stage_sort_key) == [
        "before",
        "epoch1",
        "epoch2",
        "task2",
        "task10",
        "final",
    ]


def test_record_and_query(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path / "results.db")
    meta = {
        "scenario": "fictitious",
        "method": "ME+GD",
        "benchmark": "tofu",
        "split": "forget01",
        "task": 1,
        "seed": 3,
        "lr": 2e-5,
    }
    store.record(tmp_path / "r1", "final", _summary(0.5, 0.6, 0.01, forget=0.2), meta)
    store.record(tmp_path / "r1", "task4", _summary(0.4, 0.7, None, forget=0.2), meta)
    store.record(
        tmp_path / "r2", "final", _summary(0.3, 0.8, None, forget=0.2), meta | {"method": "GA+GD"}
    )
    assert len(store) == 3
    (row,) = store.query(method="ME+GD", stage="final")
    assert row["run"] == "r1"
    assert row["run_dir"] == str((tmp_path / "r1").resolve())
    assert (row["scenario"], row["benchmark"], row["split"], row["seed"]) == (
        "fictitious",
        "tofu",
        "forget01",
        3,
    )
    assert row["lr"] == pytest.approx(2e-5)
    assert (row["model_utility"], row["forget_efficacy"], row["forget_quality"]) == (0.5, 0.6, 0.01)
    assert row["metrics"]["forget/rouge_l"] == 0.2
    assert row["metrics"]["retain/probability"] == 0.61
    assert row["summary"]["model"] == "tiny"
    assert row["task"] == 1
    # a taskN stage sets the task column; None aggregates stay NULL
    (t4,) = store.query(stage="task4")
    assert t4["task"] == 4 and t4["forget_quality"] is None
    assert [r["run"] for r in store.query(method=["GA+GD", "ME+GD"], stage="final")] == ["r2", "r1"]
    assert len(store.query(forget_quality=None)) == 2
    # same (run, stage) replaces the row
    store.record(tmp_path / "r1", "final", _summary(0.9, 0.6, 0.01, forget=0.2), meta)
    assert len(store) == 3
    assert store.query(run="r1", stage="final")[0]["model_utility"] == 0.9
    with pytest.raises(ValueError, match="unknown results filter 'mehtod'"):
        store.query(mehtod="x")


def test_concurrent_writers(tmp_path: Path) -> None:
    db = tmp_path / "results.db"
    ResultsStore(db)
    errors: list[BaseException] = []

    def writer(i: int) -> None:
        try:
            store = ResultsStore(db, timeout=30)
            for j in range(10):
                store.record(
                    tmp_path / f"run{i}",
                    f"task{j + 1}",
                    _summary(0.5, 0.5, None, 0.1),
                    {"method": f"m{i}"},
                )
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(ResultsStore(db)) == 40


def test_index_runs_matches_disk(runs: Path, tmp_path: Path) -> None:
    store = ResultsStore(tmp_path / "results.db")
    assert [p.name for p in find_run_dirs(runs)] == ["cont", "idkap", "megd", "noeval"]
    # 2 + 2 + 4 stages; the run without eval has no row
    assert store.index_runs(runs) == 8
    assert store.index_runs(runs) == 8  # idempotent
    assert len(store) == 8
    cont = store.query(run="cont")
    assert [r["stage"] for r in cont] == ["before", "task1", "task2", "task3"]
    assert [r["task"] for r in cont] == [1, 1, 2, 3]
    assert {r["scenario"] for r in cont} == {"continual"}
    # a deleted run disappears from the index on the next rebuild
    import shutil

    shutil.rmtree(runs / "idkap")
    assert store.index_runs(runs) == 6
    assert store.query(run="idkap") == []


# --------------------------------------------------------------------------- tables


def test_format_value() -> None:
    assert format_value(0.41234) == "0.412"
    assert format_value(1) == "1.000"
    assert format_value(0.0) == "0.000"
    assert format_value(1.23e-5) == "1.23e-05"
    assert format_value(None) == "–"
    assert format_value(float("nan")) == "–"


def test_scenario_tables(runs: Path, tmp_path: Path) -> None:
    store = ResultsStore(tmp_path / "results.db")
    store.index_runs(runs)
    tables = {t.scenario: t for t in scenario_tables(store.query())}
    assert sorted(tables) == ["continual", "fictitious"]
    fict = tables["fictitious"]
    assert [r["label"] for r in fict.rows] == ["before unlearning", "IDK+AP", "ME+GD"]
    md = to_markdown(fict)
    lines = md.splitlines()
    assert lines[0].startswith("| Method | MU | FE | FQ | Forget ROUGE-L | Forget Prob |")
    # ME+GD final: forget metrics 0.1, 0.11, ...; entailment 0.5; retain 0.6...
    assert "| ME+GD | 0.512 | 0.634 | 0.012 | 0.100 | 0.110 | 0.120 | 0.130 | 0.140 | 0.500 |" in md
    # IDK+AP: tiny FQ in scientific notation, missing entailment as a dash
    idk = next(line for line in lines if line.startswith("| IDK+AP"))
    assert "| 1.23e-05 |" in idk
    assert idk.split(" | ")[9] == "–"  # forget entailment column
    assert "| before unlearning | 0.700 | 0.200 | 1.50e-20 |" in md
    cont = tables["continual"]
    assert cont.show_stage
    assert [(r["label"], r["stage"]) for r in cont.rows] == [
        ("before unlearning", "before"),
        ("NPO+GD", "task1"),
        ("NPO+GD", "task2"),
        ("NPO+GD", "task3"),
    ]
    parsed = list(csv.DictReader(io.StringIO(to_csv(fict))))
    idk_row = next(r for r in parsed if r["label"] == "IDK+AP")
    assert idk_row["forget/entailment"] == ""
    assert float(idk_row["forget_quality"]) == 1.23e-5
    assert idk_row["method"] == "IDK+AP" and idk_row["stage"] == "final"


def test_labels_disambiguate_varying_settings(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    s = _summary(0.5, 0.5, None, forget=0.2)
    _write_run(out, "a", lr=1e-5, stages={"final": s})
    _write_run(out, "b", lr=5e-5, stages={"final": s})
    _write_run(out, "c", lr=5e-5, stages={"final": s})
    store = ResultsStore(tmp_path / "r.db")
    store.index_runs(out)
    (table,) = scenario_tables(store.query())
    assert [r["label"] for r in table.rows] == [
        "ME+GD [lr=1e-05]",
        "ME+GD [lr=5e-05] (b)",
        "ME+GD [lr=5e-05] (c)",
    ]


def test_before_row_per_split_group(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    before = _summary(0.7, 0.2, None, forget=0.9)
    s = _summary(0.5, 0.5, None, forget=0.2)
    _write_run(out, "f5", split="forget05", stages={"before": before, "final": s})
    _write_run(out, "f1", split="forget01", stages={"before": before, "final": s})
    store = ResultsStore(tmp_path / "r.db")
    store.index_runs(out)
    (table,) = scenario_tables(store.query())
    assert [r["label"] for r in table.rows] == [
        "before unlearning [synthetic, forget01]",
        "before unlearning [synthetic, forget05]",
        "ME+GD [forget01]",
        "ME+GD [forget05]",
    ]
    assert [r["is_before"] for r in table.rows] == [True, True, False, False]


def test_real_world_runs_have_no_split(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    _write_run(out, "rw", scenario="real_world", stages={"final": _summary(0.5, 0.5, None, 0.2)})
    store = ResultsStore(tmp_path / "r.db")
    store.index_runs(out)
    (row,) = store.query(scenario="real_world")
    assert row["split"] is None and row["method"] == "ME+GD"


# --------------------------------------------------------------------------- report


def test_build_report(runs: Path, tmp_path: Path) -> None:
    from PIL import Image

    out = tmp_path / "report"
    page = build_report([runs], runs / "results.db", out, sample_generations=2)
    assert page == out / "index.html"
    assert len(ResultsStore(runs / "results.db")) == 8

    md = (out / "report.md").read_text()
    assert "## Scenario: fictitious" in md and "## Scenario: continual" in md
    assert "| ME+GD | 0.512 | 0.634 |" in md
    assert "## Runs without evaluation" in md and "noeval" in md
    assert (out / "table_fictitious.csv").is_file() and (out / "table_continual.csv").is_file()

    pngs = sorted(p.name for p in (out / "plots").glob("*.png"))
    assert pngs == [
        "continual_bars_forget.png",
        "continual_bars_retain.png",
        "continual_continual.png",
        "continual_mu_fe.png",
        "fictitious_bars_forget.png",
        "fictitious_bars_retain.png",
        "fictitious_loss.png",
        "fictitious_mu_fe.png",
    ]
    for name in pngs:
        with Image.open(out / "plots" / name) as im:
            im.verify()
            assert im.format == "PNG" and im.size[0] > 300 and im.size[1] > 200

    html = page.read_text()
    assert html.count('src="data:image/png;base64,') == len(pngs)
    assert not re.search(r'(src|href)="(https?:|//|plots/)', html)  # self-contained
    assert 'title="resolved settings">ME+GD</a></td>' in html  # its settings a click away
    assert ">0.634<" in html and ">1.23e-05<" in html
    assert "entailment not computed: no NLI" in html
    # side by side: question, ground truth, before, after per method; items 0 and 3 sampled
    assert "[forget] Who wrote book 0?" in html and "[forget] Who wrote book 3?" in html
    assert "[forget] Who wrote book 1?" not in html
    assert "[retain] Who wrote book 3?" in html
    assert "idkap/before gen 3" in html  # before: first run of the group (table order)
    assert "megd/final gen 3" in html and "idkap/final gen 3" in html
    assert "cont/task3 gen 0" in html  # continual: the last task's generations
    assert "<th>NPO+GD (task3)</th>" in html and "<th>ME+GD</th>" in html
    # no temporary files left behind by the atomic writes
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]


def test_html_escapes_run_text(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    run = _write_run(out, "x", stages={"final": _summary(0.5, 0.5, None, forget=0.2)})
    evil = {"question": "<script>alert(1)</script>", "answer": "a & b", "generation": "<b>x</b>"}
    (run / "eval" / "final" / "forget.jsonl").write_text(json.dumps(evil) + "\n")
    html = build_report([run], None, tmp_path / "rep").read_text()
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "a &amp; b" in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html
    assert (tmp_path / "rep" / "results.db").is_file()  # default db next to the report


def test_report_from_db_only(runs: Path, tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    ResultsStore(db).index_runs(runs)
    page = build_report(None, db, tmp_path / "rep")
    assert "NPO+GD" in page.read_text()


def test_empty_inputs_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no runs given"):
        build_report([], None, tmp_path / "o")
    with pytest.raises(ValueError, match="run folder not found"):
        build_report([tmp_path / "nope"], None, tmp_path / "o")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no run folders found"):
        build_report([tmp_path / "empty"], None, tmp_path / "o")
    _write_run(tmp_path / "only", "noeval")
    with pytest.raises(ValueError, match="no evaluated runs"):
        build_report([tmp_path / "only"], None, tmp_path / "o")
    with pytest.raises(ValueError, match="results database not found"):
        build_report(None, tmp_path / "missing.db", tmp_path / "o")
    with pytest.raises(ValueError, match="give run folders or a results database"):
        build_report(None, None, tmp_path / "o")


def test_plot_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "p.png"
    target.write_bytes(b"old")

    def boom(src: str, dst: str) -> None:
        raise OSError("disk full")

    import unlearnkit.utils as utils_mod

    monkeypatch.setattr(utils_mod.os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        plots_mod.atomic_write_bytes(target, b"new")  # what the plots write through
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["p.png"]


def test_loss_series_and_sampling() -> None:
    xs, series = loss_series(
        [{"step": 5, "loss": 1.0, "loss_forget": 0.5}, {"step": 10, "loss": 0.5}, {"eval": 1}]
    )
    assert xs == [5.0, 10.0]
    assert series == {"loss": [1.0, 0.5], "loss_forget": [0.5, None]}
    # steps restart (continual tasks): x is the row position
    xs, _ = loss_series(
        [{"step": 1, "loss": 1.0}, {"step": 2, "loss": 1.0}, {"step": 1, "loss": 2}]
    )
    assert xs == [1.0, 2.0, 3.0]
    assert sample_indices(10, 3) == [0, 4, 9]  # round(0), round(4.5)=4, round(9)
    assert sample_indices(3, 5) == [0, 1, 2]
    assert sample_indices(5, 0) == []


def test_report_command(runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from unlearnkit.commands import report as report_cmd

    parser = argparse.ArgumentParser()
    report_cmd.add_parser(parser.add_subparsers())
    args = parser.parse_args(["report", str(runs), "--samples", "1"])
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    assert "| Method | MU | FE | FQ | Forget ROUGE-L | Retain ROUGE-L |" in printed
    assert "| ME+GD | 0.512 | 0.634 | 0.012 | 0.100 | 0.600 |" in printed
    # a sentence per method (fixture: MU 0.70 -> 0.5123, FE 0.20 -> 0.6344)
    assert "- ME+GD: Forgot much of the forget set (Forget Efficacy 0.200 → 0.634" in printed
    assert (
        "lost some utility (Model Utility 0.700 → 0.512; its weakest retain-side metric " in printed
    )
    for page in ("report.md", "index.html"):
        assert "ME+GD: Forgot much of the forget set" in (runs / "report" / page).read_text()
    assert f"HTML report: {runs / 'report' / 'index.html'}" in printed
    assert (runs / "results.db").is_file() and (runs / "report" / "index.html").is_file()


def test_tables_show_mia_privacy_and_both_utilities_when_present(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    plain = _summary(0.7, 0.2, None, forget=0.9)
    with_mia = _summary(0.5, 0.5, None, forget=0.2)
    with_mia["aggregates"].update(
        {"mia_loss": 0.75, "mia_min_k": 0.625, "privacy_leakage": -25.0,
         "model_utility_open_unlearning": 0.41, "mia_reference": None}
    )  # fmt: skip
    with_mia["splits"]["forget"].update({"exact_memorization": 0.3, "rouge1": 0.2})
    _write_run(out, "a", stages={"final": plain})
    _write_run(out, "b", method="GA", stages={"final": with_mia})
    store = ResultsStore(tmp_path / "r.db")
    store.index_runs(out)
    (table,) = scenario_tables(store.query())
    md = to_markdown(table)
    header = md.splitlines()[0]
    for label in ("MU", "MU (OU, 9)", "PrivLeak", "MIA LOSS", "MIA Min-K", "Forget EM",
                  "Forget ROUGE-1"):  # fmt: skip
        assert f"| {label} |" in header, label
    assert "MIA Ref" not in header  # no run has a value for it
    row_b = next(line for line in md.splitlines() if line.startswith("| GA"))
    assert "| 0.750 |" in row_b and "| -25.000 |" in row_b and "| 0.410 |" in row_b
    (only_plain,) = scenario_tables(store.query(method="ME+GD"))
    assert "MIA" not in to_markdown(only_plain).splitlines()[0]


def test_forget_quality_that_separates_nothing_says_so(tmp_path: Path) -> None:
    """The demo printed FQ 0.019 on every row, before unlearning included: the table must say
    that the column separates nothing instead of repeating the number."""
    from unlearnkit.report.explain import explain_tables
    from unlearnkit.report.markdown import report_markdown
    from unlearnkit.report.tables import NOT_SEPARABLE

    out = tmp_path / "runs"
    before = _summary(0.7, 0.2, 0.0186, forget=0.9)
    _write_run(out, "a", stages={"before": before, "final": _summary(0.5, 0.5, 0.0186, 0.2)})
    _write_run(out, "b", lr=5e-5, stages={"final": _summary(0.4, 0.6, 0.0186, 0.1)})
    store = ResultsStore(tmp_path / "r.db")
    store.index_runs(out)
    (table,) = explain_tables(scenario_tables(store.query()))
    assert table.unseparable == {"forget_quality": pytest.approx(0.0186)}
    text = report_markdown([table])
    fq_col = [c.key for c in table.columns].index("forget_quality") + 1
    rows = to_markdown(table).splitlines()[2:]
    assert len(rows) == 3  # before, a, b
    for line in rows:
        assert line.split("|")[1 + fq_col].strip() == NOT_SEPARABLE
    assert "Forget Quality is 0.019 on every row" in text
    assert not any("Forget Quality" in e for e in table.explanations)

    # one run whose FQ differs: the column separates, and the numbers are printed
    _write_run(out, "c", lr=1e-4, stages={"final": _summary(0.3, 0.7, 0.4, 0.05)})
    store.index_runs(out)
    (table,) = explain_tables(scenario_tables(store.query()))
    assert table.unseparable == {}
    assert "0.400" in to_markdown(table)
    assert any("Forget Quality" in e for e in table.explanations)
