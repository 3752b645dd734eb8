"""``unlearn eval`` end to end: tiny random model, synthetic benchmark, tiny NLI classifier."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from unlearnkit.cli import main
from unlearnkit.eval.metrics import METRIC_NAMES
from unlearnkit.models.tiny import save_tiny_nli_model
from unlearnkit.utils import read_jsonl, write_jsonl

COMMON = ["eval.max_new_tokens=8", "eval.batch_size=4", "--quiet"]


def build_nli_model(path: Path) -> Path:
    """A tiny random BERT classifier with NLI labels and a word-level tokenizer (any text maps to
    [UNK] where unknown), saved as a plain folder."""
    save_tiny_nli_model(
        path,
        "the author was born in city is of a book wrote".split(),
        {0: "entailment", 1: "neutral", 2: "contradiction"},
        hidden_size=16,
        max_length=128,
    )
    return path


def records(folder: Path, split: str) -> list[dict]:
    return read_jsonl(folder / f"{split}.jsonl")


def test_eval_cli_on_synthetic_benchmark(tiny_model_dir: Path, tmp_path: Path, capsys) -> None:
    nli = build_nli_model(tmp_path / "nli")
    out = tmp_path / "eval"
    argv = ["eval", "--model", str(tiny_model_dir), "--benchmark", "synthetic", "--split",
            "forget01", "--task", "1", "--out", str(out), "eval.ds_size=3",
            f"eval.nli_model={nli}", *COMMON]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "model_utility" in printed and f"results: {out}" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["splits"]) == {"forget", "retain", "real_authors", "world_facts"}
    for split, values in summary["splits"].items():
        assert set(METRIC_NAMES) | {"rouge1"} <= set(values)  # the paper's six and ROUGE-1
        recs = records(out, split)
        assert len(recs) == 3
        for r in recs:
            for key in ("question", "answer", "generation", *METRIC_NAMES, "nll_perturbed"):
                assert key in r
            assert r["entailment"] in (0.0, 1.0)  # the NLI model was loaded and asked
    assert summary["missing"].keys() <= {"cosine_similarity", "forget_quality", "mia_reference"}
    assert summary["aggregates"]["model_utility"] is not None
    # The synthetic benchmark has holdout authors: every other attack and PrivLeak are reported,
    # and the printed table shows them with the registry's labels.
    for name in ("mia_loss", "mia_zlib", "mia_min_k", "mia_min_k_plus_plus", "mia_gradnorm"):
        assert 0.0 <= summary["aggregates"][name] <= 1.0
    assert summary["aggregates"]["privacy_leakage"] is not None
    assert summary["privacy"]["non_members"] == 3
    assert len(records(out, "holdout")) == 3
    assert "MIA Min-K++" in printed and "PrivLeak" in printed and "ROUGE-1" in printed
    assert 0.0 <= summary["splits"]["forget"]["exact_memorization"] <= 1.0
    assert summary["eval_config"]["ds_size"] == 3
    assert summary["timings"]["generate"] > 0
    # The same command again is served from the cache: identical summary, same key.
    again_out = tmp_path / "again"
    argv[argv.index("--out") + 1] = str(again_out)
    assert main(argv) == 0
    assert json.loads((again_out / "summary.json").read_text()) == summary

    # Forget Quality against that evaluation (used as the "retain model" evaluation).
    fq_out = tmp_path / "fq"
    assert main(["eval", "--model", str(tiny_model_dir), "--benchmark", "synthetic",
                 "--out", str(fq_out), "--retain-eval", str(out), "eval.ds_size=3",
                 "eval.nli_model=null", "eval.splits=forget", *COMMON]) == 0  # fmt: skip
    fq = json.loads((fq_out / "summary.json").read_text())
    assert fq["aggregates"]["forget_quality"] == pytest.approx(1.0)  # same model: same ratios
    assert fq["missing"]["entailment"].startswith("no NLI model could be loaded")


def test_eval_cli_real_world(tiny_model_dir: Path, shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "rw"
    bench = shared_data / "real_world"
    argv = ["eval", "--model", str(tiny_model_dir), "--benchmark", str(bench), "--task", "1",
            "--out", str(out), "eval.ds_size=2", "eval.nli_model=null", *COMMON]  # fmt: skip
    assert main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["splits"]) == {"forget", "neighbor"}
    assert summary["benchmark"] == "real_world"
    golden = [r["golden_answer"] for r in read_jsonl(bench / "neighbor_perturbed.json")[:2]]
    assert [r["rouge_reference"] for r in records(out, "neighbor")] == golden
    assert summary["aggregates"]["model_utility_retain"] is None  # no retain split here
    assert "forget_quality" not in summary["missing"]


def test_eval_cli_split_without_perturbed_answers(
    tiny_model_dir: Path, tmp_path: Path, capsys
) -> None:
    bench = tmp_path / "bench"
    row = {"question": "Who wrote the book?", "answer": "The author wrote it.", "task_id": 1}
    full = {**row, "paraphrased_answer": "It was written by the author.",
            "perturbed_answer": ["A painter wrote it.", "Nobody wrote it."]}  # fmt: skip
    write_jsonl(bench / "forget01.json", [row])
    no_perturbed = {**row, "paraphrased_answer": "It was written by the author."}
    write_jsonl(bench / "forget01_perturbed.json", [no_perturbed])  # no perturbed_answer field
    write_jsonl(bench / "retain90.json", [{"question": "Q?", "answer": "A."}])
    write_jsonl(bench / "retain_perturbed.json", [{**full, "question": "Q?"}])
    general = {"question": "Capital of France?", "answer": "Paris",
               "perturbed_answer": ["Rome", "Oslo"], "original_answer": "It is Paris."}  # fmt: skip
    write_jsonl(bench / "real_authors_perturbed.json", [general])
    write_jsonl(bench / "world_facts_perturbed.json", [general])
    argv = ["eval", "--model", str(tiny_model_dir), "--benchmark", str(bench),
            "--out", str(tmp_path / "out"), "eval.nli_model=null", *COMMON]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "error: evaluation split 'forget' has no perturbed answers" in err
    assert not (tmp_path / "out" / "summary.json").exists()
