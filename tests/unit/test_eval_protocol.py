"""Benchmark protocols: each benchmark declares its evaluation splits, references and
aggregation; the evaluation reads the protocol and never branches on the benchmark kind."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from unlearnkit.config import EvalConfig
from unlearnkit.data.formatting import PromptFormatter
from unlearnkit.data.records import QAItem
from unlearnkit.eval import runner
from unlearnkit.eval.metrics import aggregate
from unlearnkit.eval.protocol import PROTOCOLS, EvalProtocol, known_splits, protocol_for
from unlearnkit.eval.split_specs import REAL_WORLD_SPLITS, TOFU_SPLITS
from unlearnkit.models.tiny import tiny_model

SRC = Path(__file__).resolve().parents[2] / "src" / "unlearnkit"


def test_every_protocol_is_consistent() -> None:
    for kind in PROTOCOLS.names():
        p = protocol_for(kind)
        assert p.kind == kind
        assert p.forget_split in p.splits
        assert set(p.utility_splits) <= set(p.splits) - {p.forget_split}
        assert p.holdout_split not in p.splits  # non-members are only scored, never evaluated
        if p.paper.probability_reference:
            for name in p.splits:
                ref = p.split_spec(name, "paper").probability_reference
                assert ref == p.paper.probability_reference
    assert protocol_for("tofu").utility_splits == ("retain", "real_authors", "world_facts")
    assert protocol_for("real_world").utility_splits == ("neighbor",)
    assert not protocol_for("real_world").forget_quality and protocol_for("tofu").forget_quality
    assert set(known_splits()) == set(TOFU_SPLITS) | set(REAL_WORLD_SPLITS)
    with pytest.raises(ValueError, match="unknown benchmark kind 'tofu2'"):
        protocol_for("tofu2")
    with pytest.raises(ValueError, match="unknown evaluation split 'retain'"):
        protocol_for("real_world").split_spec("retain")


def test_paper_profile_rules_come_from_the_protocol() -> None:
    cfg = EvalConfig(ds_size=300)
    real, tofu = protocol_for("real_world"), protocol_for("tofu")
    assert real.effective_config(cfg, "paper").ds_size is None  # every item
    assert real.effective_config(cfg, "default").ds_size == 300
    assert tofu.effective_config(cfg, "paper").ds_size == 300
    assert real.split_spec("forget", "paper").probability_reference == "golden_answer"
    assert real.split_spec("forget").probability_reference == "answer"
    assert tofu.split_spec("retain", "paper") == tofu.split_spec("retain")
    with pytest.raises(ValueError, match="unknown profile"):
        tofu.effective_config(cfg, "papr")


def test_evaluation_code_never_branches_on_the_benchmark_kind() -> None:
    """Only the protocol module names benchmark kinds in the evaluation path."""
    files = sorted((SRC / "eval").rglob("*.py"))
    compare = re.compile(r"(kind|benchmark\w*)\s*[!=]=|[!=]=\s*\"(tofu|synthetic|real_world)\"")
    offenders = [
        f"{f.relative_to(SRC)}:{n}: {line.strip()}"
        for f in files
        if f.name != "protocol.py"
        for n, line in enumerate(f.read_text().splitlines(), start=1)
        if compare.search(line) and "s.kind == kind" not in line  # metric kinds, not benchmarks
    ]
    assert offenders == []


def _item(i: int) -> QAItem:
    return QAItem(
        question=f"Who is person {i}?",
        answer=f"Person {i} is a painter from town {i}.",
        paraphrased_answer=f"A painter from town {i}, person {i}.",
        perturbed_answers=[f"Person {i} is a baker from town {j}." for j in range(2)],
        golden_answer=f"a painter {i}",
    )


def test_a_new_benchmark_is_one_declared_protocol(tmp_path: Path) -> None:
    """A benchmark the runner has never heard of evaluates from its protocol alone: its splits,
    references, utility splits and whether Forget Quality applies."""
    protocol = EvalProtocol(
        "painters",
        {"forget": REAL_WORLD_SPLITS["forget"], "colleagues": REAL_WORLD_SPLITS["neighbor"]},
        utility_splits=("colleagues",),
        forget_quality=False,
    )
    model, tok = tiny_model(seed=0)
    sets = {"forget": [_item(0), _item(1)], "colleagues": [_item(2), _item(3)]}
    cfg = EvalConfig(batch_size=2, max_new_tokens=4, nli_model=None, use_cache=False)
    summary = runner.evaluate(model, tok, sets, cfg, tmp_path, PromptFormatter(tok), protocol)
    assert summary["benchmark"] == "painters"
    assert "forget_quality" not in summary["missing"]  # the protocol says it does not apply
    agg = summary["aggregates"]
    assert all(x.startswith("colleagues/") for x in agg["computed_over"]["model_utility"])
    again = aggregate(summary["splits"], protocol)
    for name in ("model_utility", "model_utility_retain", "forget_efficacy", "forget_quality"):
        assert agg[name] == again[name]
        assert agg["computed_over"].get(name) == again["computed_over"].get(name)
    recs = (tmp_path / "forget.jsonl").read_text()
    assert '"rouge_reference": "a painter 0"' in recs  # the declared reference: golden_answer


def test_eval_output_folder_follows_the_benchmark_layout_not_its_name() -> None:
    """A real-world folder under any name is named by its one forget set, not data.split."""
    from unlearnkit.commands.eval import default_out
    from unlearnkit.config import RunConfig
    from unlearnkit.data.splits import RealWorldBenchmark, TofuBenchmark

    cfg = RunConfig()
    cfg.model.name = "models/tiny/"
    cfg.data.benchmark = "data/my_people"
    cfg.data.split = "forget05"
    tofu, real = TofuBenchmark.named_forget_splits, RealWorldBenchmark.named_forget_splits
    assert default_out(cfg, 2, tofu).name == "tiny_my_people_forget05_task2"
    assert default_out(cfg, None, real).name == "tiny_my_people_forget_taskall"
