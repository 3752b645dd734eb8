"""One sentence per method, derived from its metrics (and its answers' refusal share)."""

from __future__ import annotations

import json
from pathlib import Path

from unlearnkit.report.explain import explain_row, explain_table, refusal_share
from unlearnkit.report.tables import ScenarioTable


def _row(label: str, mu: float, fe: float, fq: float | None = None, **metrics: float) -> dict:
    return {
        "label": label,
        "is_before": label == "before unlearning",
        "model_utility": mu,
        "forget_efficacy": fe,
        "forget_quality": fq,
        "metrics": {k.replace("__", "/"): v for k, v in metrics.items()},
    }


BEFORE = _row(
    "before unlearning", 0.52, 0.21, None, forget__rouge_l=0.91, retain__rouge_l=0.88,
    retain__probability=0.60, world_facts__rouge_l=0.40,
)  # fmt: skip


def test_refusal_share_ignores_case_punctuation_and_missing_generations() -> None:
    refusals = ["I'm not sure about that.", "No idea."]
    gens = ["i'm NOT sure about that", "He wrote it.", None, "Well... no idea!", "Paris."]
    assert refusal_share(gens, refusals) == 2 / 4
    assert refusal_share([None], refusals) is None


def test_zero_utility_from_refusing_retain_questions_is_the_headline() -> None:
    row = _row(
        "IDK+GD", 0.0, 0.74, 0.02, forget__rouge_l=0.0, retain__rouge_l=0.0,
        retain__probability=0.3, world_facts__rouge_l=0.35,
    )  # fmt: skip
    text = explain_row(row, BEFORE, {"forget": 1.0, "retain": 0.75})
    assert text.startswith("IDK+GD: Model Utility 0.000 because the model now refuses retain")
    assert "75% of its retain answers are refusals, retain ROUGE-L 0.00" in text
    assert "forgot much of the forget set (Forget Efficacy 0.210 → 0.740" in text
    assert "forget ROUGE-L 0.91 → 0.00" in text
    assert "answering 100% of forget questions with a refusal" in text
    assert "still differ from the retain model's (Forget Quality 0.02 < 0.05)" in text


def test_zero_utility_without_refusals_names_the_zero_metric() -> None:
    row = _row("GA+GD", 0.0, 0.9, forget__rouge_l=0.0, retain__rouge_l=0.0, retain__probability=0.1)
    text = explain_row(row, BEFORE, {"forget": 0.0, "retain": 0.0})
    assert "because its weakest retain-side metric is retain ROUGE-L 0.000" in text
    # already 0 before unlearning: not the method's doing, and not the headline
    before = dict(BEFORE, model_utility=0.0)
    text = explain_row(row, before, {})
    assert text.startswith("GA+GD: Forgot much of the forget set")
    assert "Model Utility was already 0.000 before unlearning (its weakest" in text


def test_kept_utility_and_forgetting_come_in_that_order() -> None:
    row = _row(
        "ME+GD", 0.51, 0.60, 0.4, forget__rouge_l=0.2, retain__rouge_l=0.86,
        retain__probability=0.58,
    )  # fmt: skip
    text = explain_row(row, BEFORE, {})
    assert text == (
        "ME+GD: Forgot much of the forget set (Forget Efficacy 0.210 → 0.600, forget ROUGE-L "
        "0.91 → 0.20); kept its utility (Model Utility 0.520 → 0.510); its forget answers' truth "
        "ratios cannot be told apart from the retain model's (Forget Quality 0.4 ≥ 0.05)."
    )


def test_small_changes_and_partial_losses() -> None:
    row = _row("GA", 0.40, 0.22, forget__rouge_l=0.9, retain__rouge_l=0.7, retain__probability=0.5)
    text = explain_row(row, BEFORE, {})
    assert "Barely forgot anything (Forget Efficacy 0.210 → 0.220" in text
    assert (
        "lost some utility (Model Utility 0.520 → 0.400; its weakest retain-side metric is " in text
    )
    row = _row("NPO", 0.2, 0.5, forget__rouge_l=0.1, retain__rouge_l=0.3, retain__probability=0.2)
    assert explain_row(row, BEFORE, {}).startswith("NPO: Lost most of its utility (Model Utility")
    # without a before row: absolute values only
    text = explain_row(row, None, {})
    assert "(Forget Efficacy 0.500, forget ROUGE-L 0.10)" in text and "→" not in text


def test_explain_table_reads_each_runs_generations(tmp_path: Path) -> None:
    run = tmp_path / "idkgd"
    (run / "eval" / "final").mkdir(parents=True)
    (run / "config.yaml").write_text("data: {refusals: null}\n")
    rows = [{"generation": "I have no record of that."}, {"generation": "I genuinely don't know."}]
    (run / "eval" / "final" / "retain.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in rows)
    )
    row = _row("IDK+GD", 0.0, 0.7, retain__rouge_l=0.0, forget__rouge_l=0.0)
    row.update(run_dir=str(run), stage="final", benchmark="b", split="forget10")
    before = dict(BEFORE, run_dir=str(run), stage="before", benchmark="b", split="forget10")
    table = ScenarioTable("fictitious", [], [before, row])
    (text,) = explain_table(table)
    assert "refuses retain questions too (100% of its retain answers are refusals" in text
