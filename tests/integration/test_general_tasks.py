"""lm-evaluation-harness integration on the tiny in-memory model, with a local JSON task.

One evaluation (module fixture) runs a 6-item multiple-choice task written here, next to the
hub task ``arc_challenge`` that cannot be fetched offline; the tests check the score against the
per-example log-likelihoods recomputed directly from the model.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

pytest.importorskip("lm_eval", reason="lm-eval not installed: pip install 'unlearnkit[general]'")

from unlearnkit.models.tiny import tiny_model  # noqa: E402
from unlearnkit.scenarios.general import (  # noqa: E402
    GENERAL_TASKS,
    GeneralTaskResult,
    main_metric,
    run_general_tasks,
)

TASK = "unlearnkit_tiny_mc"
ITEMS = [
    {"question": "What color is the sky?", "choices": ["blue", "green", "red"], "answer": 0},
    {"question": "How many legs has a cat?", "choices": ["two", "four", "six"], "answer": 1},
    {"question": "Which is a fruit?", "choices": ["stone", "chair", "apple"], "answer": 2},
    {"question": "Water freezes at?", "choices": ["0 C", "50 C", "100 C"], "answer": 0},
    {"question": "The opposite of up?", "choices": ["left", "down", "over"], "answer": 1},
    {"question": "A baby dog is a?", "choices": ["kitten", "calf", "puppy"], "answer": 2},
]


def _write_task(folder: Path) -> None:
    data = folder / "items.jsonl"
    data.write_text("".join(json.dumps(item) + "\n" for item in ITEMS))
    (folder / f"{TASK}.yaml").write_text(
        f"task: {TASK}\n"
        "dataset_path: json\n"
        "dataset_kwargs:\n"
        "  data_files:\n"
        f"    test: {json.dumps(str(data))}\n"
        "test_split: test\n"
        "output_type: multiple_choice\n"
        'doc_to_text: "Question: {{question}}\\nAnswer:"\n'
        'doc_to_choice: "{{choices}}"\n'
        'doc_to_target: "{{answer}}"\n'
        "metric_list:\n"
        "  - metric: acc\n"
        "    aggregation: mean\n"
        "    higher_is_better: true\n"
    )


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("lm-eval-tasks")
    _write_task(folder)
    model, tok = tiny_model(seed=0)
    model.train()  # the run must hand the model back in the mode it came in
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_HUB_OFFLINE", "1")
    import datasets.config
    from huggingface_hub import constants

    mp.setattr(constants, "HF_HUB_OFFLINE", True)
    mp.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    try:
        result = run_general_tasks(
            model,
            tok,
            [TASK, "arc_challenge"],
            include_path=str(folder),
            batch_size=4,
            log_samples=True,
        )
    finally:
        mp.undo()
    return result, model, tok, folder


def _choice_logliks(model, tok, context: str, choices: list[str]) -> list[float]:
    """sum_t log p(choice_t | context, choice_<t) for each " choice", computed directly."""
    ctx = tok(context, add_special_tokens=False)["input_ids"]
    out = []
    with torch.no_grad():
        for choice in choices:
            cont = tok(" " + choice, add_special_tokens=False)["input_ids"]
            ids = torch.tensor([ctx + cont])  # (1, T)
            logp = model(ids).logits.float().log_softmax(-1)  # (1, T, V)
            # the logits at position t predict token t+1
            pred = logp[0, len(ctx) - 1 : -1]  # (len(cont), V)
            out.append(pred.gather(-1, torch.tensor(cont)[:, None]).sum().item())
    return out


def test_local_task_score_matches_per_sample_results(evaluated) -> None:
    result, model, _, _ = evaluated
    assert isinstance(result, GeneralTaskResult)
    assert set(result.scores) == {TASK}
    assert result.metrics[TASK] == "acc,none"
    score = result.scores[TASK]
    assert 0.0 <= score <= 1.0
    samples = result.samples[TASK]
    assert len(samples) == len(ITEMS)
    per_sample = [s["acc"] for s in samples]
    assert set(per_sample) <= {0.0, 1.0}
    assert score == pytest.approx(sum(per_sample) / len(ITEMS))
    assert result.details[TASK]["results"]["acc,none"] == score
    assert model.training, "run_general_tasks must restore the model's train mode"


def test_per_sample_acc_is_argmax_of_recomputed_logliks(evaluated) -> None:
    result, model, tok, _ = evaluated
    model.eval()
    by_doc = {s["doc_id"]: s for s in result.samples[TASK]}
    for i, item in enumerate(ITEMS):
        logliks = _choice_logliks(
            model, tok, f"Question: {item['question']}\nAnswer:", item["choices"]
        )
        harness = [float(r[0]) for r in by_doc[i]["filtered_resps"]]
        assert harness == pytest.approx(logliks, abs=1e-3)
        best = max(range(len(logliks)), key=logliks.__getitem__)
        assert by_doc[i]["acc"] == float(best == item["answer"])


def test_unavailable_hub_task_is_reported_not_fatal(evaluated) -> None:
    result, _, _, _ = evaluated
    assert "arc_challenge" not in result.scores
    reason = result.unavailable["arc_challenge"]
    assert "offline" in reason and "ai2_arc" in reason
    lines = result.summary_lines()
    assert any(line.startswith("arc_challenge: unavailable") for line in lines)
    assert any(line.startswith(f"{TASK}: ") and "acc,none" in line for line in lines)


def test_main_metric_choice() -> None:
    assert GENERAL_TASKS == ["arc_challenge", "mmlu", "truthfulqa_mc1", "triviaqa", "gsm8k"]
    gsm = {
        "alias": "gsm8k",
        "exact_match,strict-match": 0.1,
        "exact_match_stderr,strict-match": 0.01,
        "exact_match,flexible-extract": 0.2,
    }
    assert main_metric("gsm8k", gsm) == "exact_match,flexible-extract"  # the paper's key
    assert main_metric("my_gsm_variant", gsm) == "exact_match,strict-match"
    arc = {"acc,none": 0.3, "acc_stderr,none": 0.02, "acc_norm,none": 0.4}
    assert main_metric("arc_challenge", arc) == "acc_norm,none"
    assert main_metric("other_mc", arc) == "acc,none"
    with pytest.raises(ValueError, match="no accuracy-like metric"):
        main_metric("ppl_task", {"word_perplexity,none": 12.0})


def test_unknown_task_name_is_a_clear_error(evaluated) -> None:
    folder = evaluated[3]  # same include_path: reuses the task index built by the fixture
    model, tok = tiny_model(seed=0)
    with pytest.raises(ValueError, match="unknown lm_eval task 'arc_chalenge'.*arc_challenge"):
        run_general_tasks(model, tok, ["arc_chalenge"], include_path=str(folder))
    with pytest.raises(ValueError, match="limit must be a positive"):
        run_general_tasks(model, tok, [TASK], include_path=str(folder), limit=0)
