"""open-unlearning's retain logs (TOFU_EVAL.json) as ``--retain-eval``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from author_items import author_item
from scipy.stats import ks_2samp

from unlearnkit.config import EvalConfig
from unlearnkit.data.formatting import PromptFormatter
from unlearnkit.data.records import QAItem
from unlearnkit.eval import open_unlearning_logs as OU
from unlearnkit.eval import runner
from unlearnkit.eval.registered_metrics import load_retain_reference
from unlearnkit.models.tiny import tiny_model
from unlearnkit.utils import read_jsonl

torch.set_num_threads(1)


def item(i: int) -> QAItem:
    return author_item(i)


FORGET = [item(i) for i in range(3)]
HOLDOUT = [item(40 + i) for i in range(3)]


def ou_logs(scores: list[float], nll_f: list[float], nll_h: list[float], auc: float) -> dict:
    """A TOFU_EVAL.json as open-unlearning writes it (string indices, value_by_index tables)."""

    def table(values: list[float]) -> dict:
        return {str(i): {"score": v} for i, v in enumerate(values)}

    return {
        "forget_truth_ratio": {"agg_value": 0.5, "value_by_index": table(scores)},
        "forget_Q_A_ROUGE": {
            "agg_value": 0.1,
            "value_by_index": {
                str(i): {
                    "input": f"<|im_start|>user\n{it.question}<|im_end|>\n",
                    "rougeL_recall": 0,
                }
                for i, it in enumerate(FORGET)
            },
        },
        "mia_min_k": {"agg_value": auc, "auc": auc, "forget": {}, "holdout": {}},
        "mia_loss": {
            "agg_value": 0.5,
            "forget": {"agg_value": 1.0, "value_by_index": table(nll_f)},
            "holdout": {"agg_value": 1.0, "value_by_index": table(nll_h)},
        },
    }


def write(tmp_path: Path, logs: dict) -> Path:
    path = tmp_path / "TOFU_EVAL.json"
    path.write_text(json.dumps(logs))
    return path


def test_hand_made_logs_give_inverse_ratios_auc_and_nlls(tmp_path: Path) -> None:
    path = write(tmp_path, ou_logs([0.5, 2.0, 0.25], [1.0, 2.0, 3.0], [4.0, 5.0, 6.0], 0.7))
    # s = p(pert) / p(para); our R = p(para) / p(pert) = 1 / s
    assert runner.load_retain_truth_ratios(path, FORGET) == [2.0, 0.5, 4.0]
    ref = load_retain_reference(path, FORGET, HOLDOUT)
    assert ref.auc == 0.7
    assert ref.nll == {
        **{it.question: v for it, v in zip(FORGET, [1.0, 2.0, 3.0], strict=True)},
        **{it.question: v for it, v in zip(HOLDOUT, [4.0, 5.0, 6.0], strict=True)},
    }
    # Forget Quality's KS test is the same on s as on 1/s (a decreasing map of both samples)
    a, b = [0.3, 1.7, 0.9], [0.5, 2.0, 0.25]
    assert ks_2samp([1 / x for x in a], [1 / x for x in b]).pvalue == ks_2samp(a, b).pvalue


def test_logs_of_another_split_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, ou_logs([0.5, 2.0], [1.0, 2.0], [4.0, 5.0], 0.7))
    with pytest.raises(ValueError, match="has 2 rows"):
        runner.load_retain_truth_ratios(path, FORGET)
    logs = ou_logs([0.5, 2.0, 0.25], [1.0, 2.0, 3.0], [4.0, 5.0, 6.0], 0.7)
    logs["forget_Q_A_ROUGE"]["value_by_index"]["1"]["input"] = "another question"
    with pytest.raises(ValueError, match="row 1 of the retain model's forget split"):
        runner.load_retain_truth_ratios(write(tmp_path, logs), FORGET)
    del logs["forget_truth_ratio"]
    with pytest.raises(ValueError, match="no 'forget_truth_ratio'"):
        runner.load_retain_truth_ratios(write(tmp_path, logs), FORGET)


def test_our_summary_json_is_not_taken_for_open_unlearning_logs(tmp_path: Path) -> None:
    (tmp_path / "summary.json").write_text(json.dumps({"aggregates": {"mia_min_k": 0.6}}))
    assert OU.read_logs(tmp_path / "summary.json") is None
    assert OU.read_logs(tmp_path) is None


def test_retain_logs_in_either_format_give_the_same_aggregates(tmp_path: Path) -> None:
    """A retain model evaluated by us, its values rewritten as open-unlearning's logs: Forget
    Quality, PrivLeak and the Reference attack are the same from either file."""
    model, tok = tiny_model(seed=0)
    model.eval()
    fmt = PromptFormatter(tok)
    cfg = dict(ds_size=None, batch_size=3, max_new_tokens=4, nli_model=None, use_cache=False)
    sets = {"forget": FORGET, "retain": [item(20)], "holdout": HOLDOUT}
    retain = runner.evaluate(
        model, tok, sets, EvalConfig(**cfg), tmp_path / "retain", fmt, progress=False
    )
    f = read_jsonl(tmp_path / "retain" / "forget.jsonl")
    h = read_jsonl(tmp_path / "retain" / "holdout.jsonl")
    logs = ou_logs(
        [1 / r["truth_ratio_raw"] for r in f],
        [r["nll_answer"] for r in f],
        [r["nll_answer"] for r in h],
        retain["aggregates"]["mia_min_k"],
    )
    path = write(tmp_path, logs)
    with torch.no_grad():  # another model: the target
        for p in model.parameters():
            p.mul_(1.05)
    ours = runner.evaluate(
        model, tok, sets, EvalConfig(**cfg, retain_eval=str(tmp_path / "retain")),
        tmp_path / "a", fmt, progress=False,
    )  # fmt: skip
    theirs = runner.evaluate(
        model, tok, sets, EvalConfig(**cfg, retain_eval=str(path)), tmp_path / "b", fmt,
        progress=False,
    )  # fmt: skip
    for key in ("forget_quality", "privacy_leakage", "mia_reference"):
        assert ours["aggregates"][key] is not None, key
        assert theirs["aggregates"][key] == pytest.approx(ours["aggregates"][key], rel=1e-12)
