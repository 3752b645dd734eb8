"""Attacks end to end: ``unlearn eval --attacks``, the attack stage of ``unlearn run``, the
results store and the report (tiny model, synthetic benchmark)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from unlearnkit.cli import main
from unlearnkit.data.synth import generate_synthetic

FAST = [
    "train.max_steps=2",
    "train.batch_size=2",
    "train.per_device_batch_size=2",
    "eval.ds_size=4",
    "eval.max_new_tokens=4",
    "eval.nli_model=null",
    "attack.relearn_steps=2",
    "attack.relearn_batch_size=2",
]


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    generate_synthetic(root, n_authors=10, questions_per_author=4, seed=1, n_tasks=3)
    return root


def test_eval_runs_the_attacks_of_one_setting(tmp_path, synth, tiny_model_dir, capsys) -> None:
    pytest.importorskip("optimum.quanto")
    before = tmp_path / "before"
    base = ["eval", "--model", str(tiny_model_dir), "--benchmark", str(synth), "--split",
            "forget10", "--quiet"]  # fmt: skip
    assert main([*base, "--out", str(before), *FAST]) == 0
    out = tmp_path / "eval"
    argv = [*base, "--out", str(out), "--attacks", "paraphrase,quant8,relearn",
            "--before-eval", str(before), *FAST]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "worst case per item" in printed and "robustness score" in printed
    report = json.loads((out / "attacks" / "attacks.json").read_text())
    assert list(report["attacks"]) == ["paraphrase", "quant8", "relearn"]
    assert report["baselines"]["before"] == str(before)
    # the same model before and after: nothing was unlearned, so there is nothing to recover
    assert report["attacks"]["quant8"]["rouge_l"]["recovery"] is None
    for name in report["attacks"]:
        summary = json.loads((out / "attacks" / name / "summary.json").read_text())
        assert set(summary["splits"]) == {"forget"}  # attack.splits' default
        assert summary["attack"]["seconds_eval"] > 0
    quant = json.loads((out / "attacks" / "quant8" / "summary.json").read_text())
    assert quant["attack"]["kernels"]["library"].startswith("optimum-quanto")
    # the same setting in the config form, and a bad name fails before any model work
    capsys.readouterr()
    assert main([*base, "--out", str(tmp_path / "x"), *FAST, "attack.names=[quant9]"]) == 2
    assert "unknown attack 'quant9'" in capsys.readouterr().err


def test_run_attacks_after_unlearning_store_and_report(tmp_path, synth, tiny_model_dir) -> None:
    out = tmp_path / "runs"
    argv = ["run", "--scenario", "fictitious", "--model", str(tiny_model_dir), "--benchmark",
            str(synth), "--split", "forget10", "--method", "GA+GD", "--out", str(out),
            "target.retain_model=true", "target.finetune=true", "target.epochs=1",
            "attack.names=[relearn, mcq]", *FAST]  # fmt: skip
    assert main(argv) == 0
    (rdir,) = [p for p in out.iterdir() if p.is_dir()]
    report = json.loads((rdir / "attacks.json").read_text())
    assert report["baselines"]["retain"] == str(rdir / "eval" / "retain_model")
    assert set(report["attacks"]) == {"relearn", "mcq"}
    assert json.loads((rdir / "DONE.json").read_text())["stages"][-1] == "attacks"
    with sqlite3.connect(out / "results.db") as con:
        stages = {r[0]: r[1] for r in con.execute("SELECT stage, recovery_rouge_l FROM results")}
    assert {"before", "final", "attack-relearn", "attack-mcq"} <= set(stages)
    rep_dir = tmp_path / "report"
    assert main(["report", str(out), "--out", str(rep_dir)]) == 0
    md = (rep_dir / "report.md").read_text()
    assert "### Attacks: GA+GD" in md and "worst case per item" in md
    assert "GA+GD's forget ROUGE-L" in md and "GA+GD's forget Prob" in md
    assert "mcq: mc_accuracy" in md
    # the headline row is still the final stage, not an attack
    assert "| attack-" not in md
    html = (rep_dir / "index.html").read_text()
    assert "Attacks on GA+GD" in html and "Robustness score" in html
    assert list((rep_dir / "plots").glob("*attacks*.png"))


def test_real_world_run_attacks_its_unlearned_model(tmp_path, shared_data, tiny_model_dir) -> None:
    out = tmp_path / "runs"
    argv = ["run", "--scenario", "real_world", "--model", str(tiny_model_dir), "--benchmark",
            str(shared_data / "real_world"), "--method", "GA+GD", "--out", str(out), "tasks=[1]",
            "attack.names=[relearn_retain, paraphrase]", *FAST]  # fmt: skip
    assert main(argv) == 0
    (rdir,) = [p for p in out.iterdir() if p.is_dir()]
    report = json.loads((rdir / "attacks.json").read_text())
    assert set(report["attacks"]) == {"relearn_retain", "paraphrase"}
    assert report["baselines"]["before"] == str(rdir / "eval" / "before")
    budget = json.loads((rdir / "eval" / "attack-relearn_retain" / "summary.json").read_text())[
        "attack"
    ]["budget"]
    assert budget["data"] == "retain set only" and budget["train_items"] == 400  # neighbours


def test_eval_attack_flags_fail_before_any_model_work(tmp_path, capsys) -> None:
    base = ["eval", "--model", "no-such-model", "--out", str(tmp_path / "x")]
    assert main([*base, "--attacks", " "]) == 2
    assert "--attacks needs at least one attack name" in capsys.readouterr().err
    assert main([*base, "--attacks", "quant4", "--before-eval", str(tmp_path)]) == 2
    assert "holds no forget.jsonl" in capsys.readouterr().err
