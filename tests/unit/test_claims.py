"""The claims rule (report/claims.py) on constructed results whose verdict is known by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from unlearnkit.cli import main
from unlearnkit.report.claims import (
    CLAIMS,
    FAILS,
    HOLDS,
    NOT_RUN,
    UNSEPARABLE,
    Claim,
    Point,
    check_claims,
    compare_cell,
    select,
)
from unlearnkit.report.claims_page import claims_summary, write_claims_page

IDK = next(c for c in CLAIMS if c.key == "idk_ap_utility")
ME = next(c for c in CLAIMS if c.key == "me_gd_utility")
CONT = next(c for c in CLAIMS if c.key == "continual_idk_ap")


def _row(method, lr, fe, mu, *, split="forget01", seed=0, stage="final", te=None, run=None):
    return {
        "run_dir": run or f"/runs/{method}-{split}-lr{lr}-s{seed}",
        "stage": stage,
        "method": method,
        "split": split,
        "seed": seed,
        "lr": lr,
        "task": 1,  # the store fills data.task into every stage of a fictitious run
        "forget_efficacy": fe,
        "model_utility": mu,
        "metrics": {"forget/token_entropy": te},
    }


def _grid(method, fes_mus, **kw):
    return [
        _row(method, lr, fe, mu, **kw)
        for lr, (fe, mu) in zip((1e-5, 3e-5, 1e-4), fes_mus, strict=False)
    ]


def test_select_takes_the_best_utility_among_runs_that_reach_the_matched_efficacy() -> None:
    pts = [Point(1e-5, 0.3, 0.9, 0.9), Point(3e-5, 0.6, 0.7, 0.7), Point(1e-4, 0.8, 0.2, 0.2)]
    assert select(pts, 0.5).lr == 3e-5  # 0.7 beats 0.2; the 0.3-FE run does not reach 0.5
    assert select(pts, 0.3).lr == 1e-5
    with pytest.raises(ValueError, match="no run reaches"):
        select(pts, 0.9)


def test_a_cell_compares_at_the_highest_efficacy_both_reach() -> None:
    a = [Point(1, 0.4, 0.8, 0.8), Point(2, 0.7, 0.6, 0.6)]
    b = [Point(1, 0.5, 0.5, 0.5), Point(2, 0.9, 0.1, 0.1)]
    cell = compare_cell("c", a, b)
    assert cell.fe_star == pytest.approx(0.7)  # min(0.7, 0.9)
    # A: its 0.7-FE run (MU 0.6); B: its 0.9-FE run (MU 0.1), the only one reaching 0.7
    assert cell.delta == pytest.approx(0.5)
    assert cell.outcome == "for"
    assert cell.reach_delta == pytest.approx(-0.2)


def test_idk_ap_holds_when_it_keeps_more_utility_in_every_cell() -> None:
    rows = []
    for seed in (0, 1):
        rows += _grid("IDK+AP", [(0.3, 0.6), (0.5, 0.55), (0.7, 0.5)], seed=seed)
        rows += _grid("IDK+GD", [(0.3, 0.5), (0.6, 0.2), (0.8, 0.0)], seed=seed)
        rows += _grid("IDK+KL", [(0.3, 0.55), (0.6, 0.3), (0.7, 0.1)], seed=seed)
    (res,) = check_claims(rows, [IDK])
    assert [c.verdict for c in res.comparisons] == [HOLDS, HOLDS]
    assert res.verdict == HOLDS
    assert len(res.comparisons[0].cells) == 2  # one cell per seed


def test_reversed_results_do_not_hold_and_mixed_ones_are_not_separable() -> None:
    reversed_rows = _grid("IDK+AP", [(0.3, 0.3), (0.5, 0.2), (0.7, 0.1)]) + _grid(
        "IDK+GD", [(0.3, 0.6), (0.5, 0.5), (0.7, 0.4)]
    )
    (res,) = check_claims(reversed_rows, [IDK])
    assert res.comparisons[0].verdict == FAILS
    assert res.comparisons[1].verdict == NOT_RUN  # no IDK+KL run
    assert res.verdict == f"{FAILS} (IDK+KL not run)"

    mixed = []
    mixed += _grid("IDK+AP", [(0.3, 0.6), (0.5, 0.55), (0.7, 0.5)], seed=0)
    mixed += _grid("IDK+GD", [(0.3, 0.5), (0.6, 0.2), (0.8, 0.0)], seed=0)
    mixed += _grid("IDK+AP", [(0.3, 0.5), (0.5, 0.5), (0.7, 0.5)], seed=1)
    mixed += _grid("IDK+GD", [(0.3, 0.5), (0.5, 0.51), (0.7, 0.49)], seed=1)  # a tie
    (res,) = check_claims(mixed, [IDK])
    assert res.comparisons[0].verdict == UNSEPARABLE
    assert res.verdict == f"{UNSEPARABLE} (IDK+KL not run)"


def test_the_reach_check_keeps_a_method_that_forgets_less_from_holding() -> None:
    """ME+GD keeps more utility at the matched FE, but never forgets as much as GA+GD."""
    rows = _grid("ME+GD", [(0.2, 0.6), (0.3, 0.6), (0.4, 0.6)]) + _grid(
        "GA+GD", [(0.3, 0.5), (0.6, 0.3), (0.9, 0.1)]
    )
    claim = Claim("t", "t", "ME+GD", ("GA+GD",), "model_utility", reach=True)
    (res,) = check_claims(rows, [claim])
    cell = res.comparisons[0].cells[0]
    assert cell.outcome == "for" and cell.reach_delta == pytest.approx(-0.5)
    assert res.verdict == FAILS  # it never reaches the baseline's forgetting
    without_reach = Claim("t", "t", "ME+GD", ("GA+GD",), "model_utility")
    assert check_claims(rows, [without_reach])[0].verdict == HOLDS
    assert ME.reach


def test_token_entropy_is_read_on_the_selected_run() -> None:
    claim = next(c for c in CLAIMS if c.key == "me_gd_fluent")
    rows = [
        _row("ME+GD", 1e-5, 0.6, 0.5, te=0.9),
        _row("GA+GD", 1e-5, 0.6, 0.4, te=0.2),
        _row("GA+GD", 1e-4, 0.9, 0.1, te=0.05),
    ]
    (res,) = check_claims(rows, [claim])
    cell = res.comparisons[0].cells[0]
    assert cell.baseline.lr == 1e-5  # the best-utility GA+GD run that reaches 0.6
    assert cell.delta == pytest.approx(0.7)


def test_continual_claims_select_on_task_one_and_average_utility_over_tasks() -> None:
    rows = []
    for method, lr, curve in [
        ("IDK+AP", 1e-5, [(0.5, 0.6), (0.5, 0.55), (0.5, 0.5)]),
        ("IDK+GD", 1e-5, [(0.6, 0.6), (0.6, 0.3), (0.6, 0.1)]),
    ]:
        for t, (fe, mu) in enumerate(curve, start=1):
            rows.append(_row(method, lr, fe, mu, stage=f"task{t}", run=f"/runs/{method}"))
    (res,) = check_claims(rows, [CONT])
    cell = res.comparisons[0].cells[0]
    assert cell.subject.value == pytest.approx(0.55)
    assert cell.baseline.value == pytest.approx(1.0 / 3)
    assert res.verdict == HOLDS


def test_the_page_has_every_claim_its_plot_and_raw_json(tmp_path: Path) -> None:
    rows = _grid("IDK+AP", [(0.3, 0.6), (0.5, 0.55), (0.7, 0.5)]) + _grid(
        "IDK+GD", [(0.3, 0.5), (0.6, 0.2), (0.8, 0.0)]
    )
    # a method no claim names is still listed with its final evaluation
    rows.insert(0, {**_row("DPO+GD", 1e-4, 0.8, 0.5, te=0.9), "scenario": "fictitious"})
    results = check_claims(rows)
    page = write_claims_page(results, rows, tmp_path / "claims.md")
    text = page.read_text()
    for r in results:
        assert r.claim.statement in text
    assert "IDK+AP against IDK+GD: holds" in text
    assert "## The runs" in text and "| learning rates | DPO+GD 0.0001; IDK+AP " in text
    assert "## Every fictitious run (final evaluation)" in text
    assert "| DPO+GD | 0.0001 | 0 | 0.500 | 0.800 | - | 0.900 |" in text
    assert (tmp_path / "claims" / "idk_ap_utility.png").stat().st_size > 1000
    raw = json.loads((tmp_path / "claims" / "claims.json").read_text())
    assert {c["claim"]["key"] for c in raw["claims"]} == {c.key for c in CLAIMS}
    results_raw = json.loads((tmp_path / "claims" / "results.json").read_text())
    assert len(results_raw) == len(rows)
    by_method = {(r["method"], r["lr"]): r for r in results_raw}
    assert by_method[("IDK+GD", rows[-1]["lr"])]["model_utility"] == rows[-1]["model_utility"]
    assert all("run_dir" not in r for r in results_raw)
    summary = claims_summary(tmp_path / "claims" / "claims.json")
    assert len(summary) == len(CLAIMS)
    idk = next(line for line in summary if line.startswith("- IDK+AP keeps"))
    assert "IDK+GD: holds (1 for, 0 tie, 0 against)" in idk
    assert "IDK+KL: not run" in idk
    assert "no claims page here" in claims_summary(tmp_path / "absent.json")[0]


def _fake_run(root: Path, method: str, lr: float, fe: float, mu: float) -> None:
    run = root / f"{method}-{lr}"
    (run / "eval" / "final").mkdir(parents=True)
    cfg = {
        "scenario": "fictitious",
        "method": {"name": method},
        "data": {"benchmark": "tofu", "split": "forget01", "task": 1},
        "train": {"seed": 0, "learning_rate": lr},
    }
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    summary = {"aggregates": {"model_utility": mu, "forget_efficacy": fe}, "splits": {}}
    (run / "eval" / "final" / "summary.json").write_text(json.dumps(summary))


def test_the_command_reads_run_folders_and_writes_the_page(tmp_path, capsys) -> None:
    runs = tmp_path / "runs"
    _fake_run(runs, "IDK+AP", 1e-5, 0.5, 0.6)
    _fake_run(runs, "IDK+GD", 1e-5, 0.5, 0.3)
    out = tmp_path / "docs" / "claims.md"
    assert main(["claims", str(runs), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "holds (IDK+KL not run)  IDK+AP keeps Model Utility" in printed
    assert "IDK+AP against IDK+GD: holds" in out.read_text()
    assert main(["claims", "--out", str(out)]) == 2  # nothing to check: a one-line error
    assert "nothing to check" in capsys.readouterr().err


def _records(folder: Path, ratios: list[float]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rows = [
        {"question": f"q{i}?", "answer": f"a{i}", "truth_ratio_raw": r}
        for i, r in enumerate(ratios)
    ]
    (folder / "forget.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_forget_quality_after_the_runs_is_the_ks_test_of_their_saved_truth_ratios(
    tmp_path, capsys
) -> None:
    from scipy.stats import ks_2samp

    runs = tmp_path / "runs"
    _fake_run(runs, "IDK+AP", 1e-5, 0.5, 0.6)
    _fake_run(runs, "IDK+GD", 1e-5, 0.5, 0.3)
    ours = {"IDK+AP": [0.9, 0.8, 0.7, 0.95], "IDK+GD": [0.2, 0.1, 0.3, 0.25]}
    for run in runs.iterdir():
        _records(
            run / "eval" / "final",
            ours[yaml.safe_load((run / "config.yaml").read_text())["method"]["name"]],
        )
    retain = [0.85, 0.75, 0.9, 0.7]
    # the retain model's records in another order: items are matched by question
    _records(tmp_path / "retain" / "eval", retain)
    lines = (tmp_path / "retain" / "eval" / "forget.jsonl").read_text().splitlines()
    (tmp_path / "retain" / "eval" / "forget.jsonl").write_text("\n".join(lines[::-1]) + "\n")
    out = tmp_path / "docs" / "claims.md"
    argv = [
        "claims",
        str(runs),
        "--out",
        str(out),
        "--retain-eval",
        f"forget01={tmp_path / 'retain' / 'eval'}",
    ]
    assert main(argv) == 0
    page = out.read_text()
    assert "Forget Quality of 2 of them computed after the runs" in page
    raw = json.loads((out.parent / "claims" / "results.json").read_text())
    fq = {r["method"]: r["forget_quality"] for r in raw}
    for method, values in ours.items():
        expected = ks_2samp(values, retain).pvalue
        assert fq[method] == pytest.approx(expected, rel=1e-12)
        assert f"{expected:.3g}" in page
    assert fq["IDK+AP"] > fq["IDK+GD"]
    # a folder without forget.jsonl, or a spec without SPLIT=, is a one-line error
    assert main([*argv[:-1], f"forget01={tmp_path}"]) == 2
    assert main([*argv[:-1], "forget01"]) == 2
    assert "SPLIT=FOLDER" in capsys.readouterr().err
