"""Evaluation runner: generation, teacher-forced scoring, split specs, cache, bad input.

Everything runs on the tiny random Llama of ``unlearnkit.models.tiny`` and a few synthetic items.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import ks_2samp

from unlearnkit.config import EvalConfig
from unlearnkit.data.formatting import IGNORE_INDEX, PromptFormatter
from unlearnkit.data.records import QAItem
from unlearnkit.eval import cache as result_cache
from unlearnkit.eval import engine, runner
from unlearnkit.eval import metrics as M
from unlearnkit.eval.generation import Generation, generate_answers, token_budget
from unlearnkit.eval.protocol import split_spec
from unlearnkit.eval.scoring import mean_nlls, score_split, sequence_mean_nll
from unlearnkit.eval.split_specs import validate_split
from unlearnkit.models.tiny import tiny_model, tiny_tokenizer

torch.set_num_threads(1)


def item(i: int, k: int = 3) -> QAItem:
    return QAItem(
        question=f"Where was author number {i} born?",
        answer=f"Author {i} was born in city {i}.",
        paraphrased_answer=f"City {i} is the birthplace of author {i}.",
        perturbed_answers=[f"Author {i} was born in town {j}." for j in range(k)],
        original_answer=f"The author number {i} was born in the city {i}.",
    )


def tofu_sets(n: int = 3) -> dict[str, list[QAItem]]:
    return {
        "forget": [item(i) for i in range(n)],
        "retain": [item(10 + i) for i in range(n)],
        "real_authors": [item(20 + i) for i in range(n)],
    }


@pytest.fixture()
def tiny():
    model, tok = tiny_model(seed=0)
    model.eval()
    return model, tok, PromptFormatter(tok)


def fast_cfg(**kw) -> EvalConfig:
    base = dict(ds_size=None, batch_size=2, max_new_tokens=6, nli_model=None, use_cache=True)
    base.update(kw)
    return EvalConfig(**base)


# ---------------------------------------------------------------------------------------------
# generation


def test_token_budget_counts_the_prompt() -> None:
    assert token_budget(50, 200, 200) == 150  # paper: max_length 200 including the prompt
    assert token_budget(10, 20, 200) == 20  # max_new_tokens is the tighter limit
    assert token_budget(200, 200, 200) == 0
    assert token_budget(250, 200, 200) == 0  # never negative


def test_batched_left_padded_generation_matches_one_by_one(tiny) -> None:
    model, tok, fmt = tiny
    questions = ["Hi?", "Where was the author of many long books born, and when?", "Who?"]
    batched = generate_answers(
        model, fmt, questions, batch_size=3, max_new_tokens=5, generation_max_length=500,
        pad_id=tok.pad_token_id, progress=False,
    )  # fmt: skip
    for q, got in zip(questions, batched, strict=True):
        (alone,) = generate_answers(
            model, fmt, [q], batch_size=1, max_new_tokens=5, generation_max_length=500,
            pad_id=tok.pad_token_id, progress=False,
        )  # fmt: skip
        assert got.token_ids == alone.token_ids
        assert got.text == alone.text
        assert len(got.token_ids) <= 5


def test_generation_respects_max_length_including_prompt(tiny) -> None:
    model, tok, fmt = tiny
    questions = ["short?", "a much longer question than the other one?"]
    lens = [len(fmt.encode_prompt(q)) for q in questions]
    limit = lens[0] + 3  # 3 new tokens for the short prompt, none for the long one
    gens = generate_answers(
        model, fmt, questions, batch_size=2, max_new_tokens=50, generation_max_length=limit,
        pad_id=tok.pad_token_id, progress=False,
    )  # fmt: skip
    assert [g.budget for g in gens] == [3, 0]
    assert len(gens[0].token_ids) <= 3
    assert gens[1] == Generation("", [], lens[1], 0, True)  # empty generation, explicitly


def _prompt_batch(fmt, questions, pad_id):
    from unlearnkit.data.collator import pad_batch

    prompts = [fmt.encode_prompt(q) for q in questions]
    batch = pad_batch(
        [{"input_ids": p, "attention_mask": [1] * len(p)} for p in prompts], pad_id, side="left"
    )
    return batch["input_ids"], batch["attention_mask"]


def test_pruned_greedy_decode_equals_model_generate(tiny) -> None:
    from unlearnkit.eval import generation

    model, tok, fmt = tiny
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():  # larger random weights: varied outputs (the default init repeats one)
        for p in model.parameters():
            p.copy_(0.5 * torch.randn(p.shape, generator=gen))
    questions = [f"Question {i}: " + "word " * (i % 5) + "?" for i in range(9)]
    ids, mask = _prompt_batch(fmt, questions, tok.pad_token_id)
    budgets = [3, 12, 7, 12, 1, 9, 12, 5, 12]
    free = generation._hf_generate(model, ids, mask, budgets, {fmt.eos_id}, tok.pad_token_id)

    # A stop token the random model does emit, so rows end at different steps on their own.
    def spread(t: int) -> int:  # distinct first positions of t over the rows (absent = -1)
        return len({row.index(t) if t in row else -1 for row, _ in free})

    stop = {fmt.eos_id, max({t for row, _ in free for t in row}, key=spread)}
    want = generation._hf_generate(model, ids, mask, budgets, stop, tok.pad_token_id)
    got = generation.greedy_decode(model, ids, mask, budgets, stop)
    assert got == want
    lengths = {len(row) for row, _ in got}
    assert len(lengths) > 2  # rows did finish at different steps (and were dropped)
    assert any(stopped for _, stopped in got) and not all(stopped for _, stopped in got)
    for (row, stopped), b in zip(got, budgets, strict=True):
        assert len(row) <= b and (stopped or len(row) == b)


def test_generation_falls_back_to_model_generate_without_a_plain_cache(tiny, monkeypatch) -> None:
    from unlearnkit.eval import generation, kv_cache

    model, tok, fmt = tiny
    questions = ["Hi?", "Where was the author born?"]
    kw = dict(batch_size=2, max_new_tokens=6, generation_max_length=500, pad_id=tok.pad_token_id)
    pruned = generate_answers(model, fmt, questions, progress=False, **kw)
    calls = []
    real = generation._hf_generate
    monkeypatch.setattr(kv_cache, "shareable_cache", lambda cache: False)
    monkeypatch.setattr(
        generation, "_hf_generate", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    fallback = generate_answers(model, fmt, questions, progress=False, **kw)
    assert calls and fallback == pruned


def test_teacher_forcing_reuses_the_prompts_generation_computed(tiny) -> None:
    model, tok, fmt = tiny
    items = [item(i, k=3) for i in range(5)]
    questions = [it.question for it in items]
    kw = dict(max_new_tokens=4, generation_max_length=500, pad_id=tok.pad_token_id)
    states: list = []
    generate_answers(
        model, fmt, questions, batch_size=3, progress=False, prompt_state_bytes=2**30,
        states_out=states, **kw,
    )  # fmt: skip
    assert len(states) == len(questions) and all(st is not None for st in states)
    assert states[0].length == len(fmt.encode_prompt(questions[0]))
    args = (
        model, fmt, questions, [it.answer for it in items],
        [it.paraphrased_answer for it in items], [it.perturbed_answers for it in items],
    )  # fmt: skip
    shapes: list[tuple[int, ...]] = []
    hook = model.register_forward_pre_hook(
        lambda mod, a, k: shapes.append(tuple(k["input_ids"].shape)), with_kwargs=True
    )
    reused = score_split(
        *args, batch_size=5, pad_id=tok.pad_token_id, progress=False, prompt_states=states
    )
    n_reused = len(shapes)
    fresh = score_split(*args, batch_size=5, pad_id=tok.pad_token_id, progress=False)
    hook.remove()
    assert n_reused == len(shapes) - n_reused - 1  # the same passes, minus the prompt pass
    for key in ("answer", "base", "perturbed"):
        assert np.allclose(reused[key], fresh[key], rtol=1e-5, atol=1e-6)
    # A memory budget keeps states only while they fit; 0 (or no states_out) keeps none.
    one = states[0].nbytes
    small: list = []
    generate_answers(
        model, fmt, questions, batch_size=5, progress=False, prompt_state_bytes=one,
        states_out=small, **kw,
    )  # fmt: skip
    assert 1 <= sum(st is not None for st in small) < 5
    kept = sum(st.nbytes for st in small if st is not None)
    assert kept <= one
    none: list = []
    generate_answers(model, fmt, questions, batch_size=5, progress=False, states_out=none, **kw)
    assert len(none) == len(questions) and all(st is None for st in none)


def test_evaluate_with_and_without_prompt_reuse_agree(tiny, tmp_path: Path) -> None:
    model, tok, fmt = tiny
    sets = tofu_sets(3)
    on = runner.evaluate(model, tok, sets, fast_cfg(use_cache=False), tmp_path / "on", fmt)
    off_cfg = fast_cfg(use_cache=False, prompt_cache_mib=0)
    off = runner.evaluate(model, tok, sets, off_cfg, tmp_path / "off", fmt)
    for split in sets:
        for key in ("probability", "truth_ratio", "rouge_l"):
            assert on["splits"][split][key] == pytest.approx(off["splits"][split][key], abs=1e-5)


# ---------------------------------------------------------------------------------------------
# teacher forcing


def test_sequence_mean_nll_hand_computed() -> None:
    # V = 2. Logits [0, ln 3] -> p = (1/4, 3/4). Sequence of 4 tokens, labels on tokens 2 and 3.
    lp = torch.tensor([0.0, math.log(3.0)])
    logits = lp.repeat(1, 4, 1)  # (1, 4, 2)
    labels = torch.tensor([[IGNORE_INDEX, IGNORE_INDEX, 1, 0]])  # (1, 4)
    # position 1 predicts token 2 (=1, p 3/4), position 2 predicts token 3 (=0, p 1/4)
    expected = -(math.log(0.75) + math.log(0.25)) / 2
    assert sequence_mean_nll(logits, labels).item() == pytest.approx(expected, rel=1e-6)
    # keeping only the last 3 positions (logits_to_keep) gives the same number
    assert sequence_mean_nll(logits[:, 1:], labels).item() == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="outside the kept logits"):
        sequence_mean_nll(logits[:, 2:], labels)


def test_token_nlls_are_float64_accurate_on_a_large_vocabulary() -> None:
    from unlearnkit.eval.scoring import token_nlls

    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 5, 49152, generator=gen) * 6  # (B, K, V), float32, a 49k vocabulary
    target = torch.randint(0, 49152, (2, 5), generator=gen)
    target[1, 3:] = IGNORE_INDEX
    got = token_nlls(logits, target)  # (B, K)
    exact = -torch.log_softmax(logits.double(), dim=-1).gather(-1, target.clamp(min=0)[..., None])[
        ..., 0
    ]
    counted = target != IGNORE_INDEX
    assert float((got.double() - exact)[counted].abs().max()) < 1e-5
    assert torch.all(got[~counted] == 0)


def manual_answer_nll(model, fmt: PromptFormatter, question: str, answer: str) -> float:
    """Unbatched reference: mean NLL of the answer tokens + EOS, question excluded."""
    q = fmt.encode_prompt(question)
    a = fmt.tokenizer(answer, add_special_tokens=False)["input_ids"] + [fmt.eos_id]
    ids = torch.tensor([q + a])
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids).logits[0].float(), dim=-1)  # (T, V)
    total = sum(-logp[len(q) - 1 + t, tok].item() for t, tok in enumerate(a))
    return total / len(a)


def test_mean_nlls_dynamic_padding_matches_unbatched(tiny) -> None:
    model, tok, fmt = tiny
    pairs = [("Q one?", "A"), ("A longer second question here?", "A much longer answer to it.")]
    shapes: list[tuple[int, ...]] = []
    hook = model.register_forward_pre_hook(
        lambda mod, args, kwargs: shapes.append(tuple(kwargs["input_ids"].shape)),
        with_kwargs=True,
    )
    got = mean_nlls(model, [fmt.encode(q, a) for q, a in pairs], tok.pad_token_id)
    hook.remove()
    longest = max(len(fmt.encode(q, a)["input_ids"]) for q, a in pairs)
    assert shapes == [(2, longest)]  # one pass, padded to the longest item only
    for (q, a), value in zip(pairs, got, strict=True):
        assert value == pytest.approx(manual_answer_nll(model, fmt, q, a), rel=1e-5)


def test_mean_nlls_through_a_peft_wrapper(tiny) -> None:
    import copy

    from peft import LoraConfig, get_peft_model

    model, tok, fmt = tiny
    feats = [fmt.encode("Q one?", "A"), fmt.encode("Another question?", "Longer answer here.")]
    lora = LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"])
    wrapped = get_peft_model(copy.deepcopy(model), lora)  # LoRA B = 0: same function
    got = mean_nlls(wrapped, feats, tok.pad_token_id)
    assert got == pytest.approx(mean_nlls(model, feats, tok.pad_token_id), rel=1e-6)
    items = [item(0, k=2), item(1, k=2)]
    args = ([it.question for it in items], [it.answer for it in items], None,
            [it.perturbed_answers for it in items])  # fmt: skip
    a = score_split(wrapped, fmt, *args, batch_size=2, pad_id=tok.pad_token_id, progress=False)
    b = score_split(model, fmt, *args, batch_size=2, pad_id=tok.pad_token_id, progress=False)
    np.testing.assert_allclose(a["perturbed"], b["perturbed"], rtol=1e-5)


@pytest.mark.parametrize("shared", [True, False])
def test_score_split_one_pass_for_all_perturbed_answers_of_a_batch(tiny, shared: bool) -> None:
    model, tok, fmt = tiny
    items = [item(i, k=3) for i in range(3)]
    shapes: list[tuple[int, ...]] = []
    hook = model.register_forward_pre_hook(
        lambda mod, args, kwargs: shapes.append(tuple(kwargs["input_ids"].shape)),
        with_kwargs=True,
    )
    out = score_split(
        model, fmt, [it.question for it in items], [it.answer for it in items],
        [it.paraphrased_answer for it in items], [it.perturbed_answers for it in items],
        batch_size=2, pad_id=tok.pad_token_id, progress=False, shared=shared,
    )  # fmt: skip
    hook.remove()
    if shared:
        # per batch of B items: the prompts once, then the 2B answers + paraphrases and the KB
        # perturbed answers, length-sorted, B rows per pass, all on the prompts' cache
        assert [s[0] for s in shapes] == [2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1]
    else:
        # batch of 2 items: answers + paraphrases (4 rows), then 2 x 3 perturbed in ONE pass
        # (6 rows); then the last item: 2 rows and 3 rows.
        assert [s[0] for s in shapes] == [4, 6, 2, 3]
    assert out["perturbed"].shape == (3, 3)
    for i, it in enumerate(items):
        assert out["answer"][i] == pytest.approx(
            manual_answer_nll(model, fmt, it.question, it.answer), rel=1e-5
        )
        assert out["base"][i] == pytest.approx(
            manual_answer_nll(model, fmt, it.question, it.paraphrased_answer), rel=1e-5
        )
        for j in range(3):
            assert out["perturbed"][i, j] == pytest.approx(
                manual_answer_nll(model, fmt, it.question, it.perturbed_answers[j]), rel=1e-5
            )


def test_score_split_falls_back_when_the_cache_cannot_be_shared(
    tiny, monkeypatch: pytest.MonkeyPatch
) -> None:
    from unlearnkit.eval import scoring

    model, tok, fmt = tiny
    items = [item(i, k=2) for i in range(2)]
    args = (
        model, fmt, [it.question for it in items], [it.answer for it in items], None,
        [it.perturbed_answers for it in items],
    )  # fmt: skip
    reference = score_split(*args, batch_size=2, pad_id=tok.pad_token_id, progress=False)
    monkeypatch.setattr(
        scoring, "shareable_cache", lambda cache: False
    )  # e.g. a sliding-window cache
    fallback = score_split(*args, batch_size=2, pad_id=tok.pad_token_id, progress=False)
    assert "base" not in fallback
    np.testing.assert_allclose(fallback["answer"], reference["answer"], rtol=1e-5)
    np.testing.assert_allclose(fallback["perturbed"], reference["perturbed"], rtol=1e-5)


# ---------------------------------------------------------------------------------------------
# split specs and bad input


def test_split_specs_follow_the_paper() -> None:
    assert split_spec("tofu", "forget").entailment_order == "gen_ref"
    assert split_spec("tofu", "retain").entailment_order == "ref_gen"
    assert split_spec("tofu", "world_facts").cosine_reference == "original_answer"
    assert split_spec("tofu", "real_authors").normalized_probability
    assert split_spec("tofu", "real_authors").truth_ratio_base == "answer"
    assert split_spec("tofu", "retain").truth_ratio_base == "paraphrased_answer"
    assert split_spec("real_world", "neighbor").entailment_order == "gen_ref"
    assert split_spec("real_world", "forget").rouge_reference == "golden_answer"
    with pytest.raises(ValueError, match="choose from forget, neighbor"):
        split_spec("real_world", "retain")


def test_missing_perturbed_answers_name_the_split(tiny) -> None:
    model, tok, fmt = tiny
    sets = tofu_sets(2)
    sets["retain"][1].perturbed_answers = []
    with pytest.raises(ValueError, match="split 'retain' has no perturbed answers for 1 of 2"):
        runner.evaluate(model, tok, sets, fast_cfg(), "/nonexistent/never-written", fmt)
    sets["retain"][1].perturbed_answers = ["x"]
    with pytest.raises(
        ValueError, match="'retain': item 1 has 1 perturbed answers but item 0 has 3"
    ):
        validate_split("retain", sets["retain"], split_spec("tofu", "retain"))
    sets["forget"][0].paraphrased_answer = None
    with pytest.raises(ValueError, match="'forget': item 0 .* has no 'paraphrased_answer'"):
        validate_split("forget", sets["forget"], split_spec("tofu", "forget"))


def test_bad_eval_config_values_are_errors(tiny) -> None:
    model, tok, fmt = tiny
    with pytest.raises(ValueError, match="eval.generation_max_length must be a positive integer"):
        runner.evaluate(model, tok, tofu_sets(), fast_cfg(generation_max_length=0), "/x", fmt)
    with pytest.raises(ValueError, match="eval.ds_size must be > 0"):
        runner.evaluate(model, tok, tofu_sets(), fast_cfg(ds_size=0), "/x", fmt)


def test_unknown_split_selection_is_an_error(tiny) -> None:
    model, tok, fmt = tiny
    with pytest.raises(ValueError, match="unknown evaluation split.*retian.*choose from forget"):
        runner.evaluate(model, tok, tofu_sets(), fast_cfg(splits=["retian"]), "/x", fmt)


# ---------------------------------------------------------------------------------------------
# the whole runner


def test_evaluate_writes_records_consistent_with_summary(tiny, tmp_path: Path) -> None:
    model, tok, fmt = tiny
    model.train()  # the trainer calls the runner mid-training: the mode must come back
    summary = runner.evaluate(model, tok, tofu_sets(3), fast_cfg(ds_size=2), tmp_path, fmt)
    assert model.training
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk["splits"] == summary["splits"]
    assert summary["n_items"] == {"forget": 2, "retain": 2, "real_authors": 2}
    assert "entailment" in summary["missing"] and "forget_quality" in summary["missing"]
    for phase in ("generate", "teacher_forcing", "rouge_l", "total"):
        assert summary["timings"][phase] >= 0
    for split in ("forget", "retain", "real_authors"):
        recs = [json.loads(x) for x in (tmp_path / f"{split}.jsonl").read_text().splitlines()]
        assert len(recs) == 2
        values = summary["splits"][split]
        assert values["entailment"] is None  # missing, never replaced
        assert values["rouge_l"] == pytest.approx(np.mean([r["rouge_l"] for r in recs]))
        assert values["token_entropy"] == pytest.approx(np.mean([r["token_entropy"] for r in recs]))
        for r in recs:
            assert r["answer_probability"] == pytest.approx(math.exp(-r["nll_answer"]))
            ratio = math.exp(np.mean(r["nll_perturbed"]) - r["nll_base"])
            assert r["truth_ratio_raw"] == pytest.approx(ratio)
        if split == "real_authors":  # normalized: p(a) / (p(a) + sum_j p(pert_j)); base = answer
            for r in recs:
                p = [math.exp(-r["nll_answer"])] + [math.exp(-x) for x in r["nll_perturbed"]]
                assert r["probability"] == pytest.approx(p[0] / sum(p))
                assert r["nll_base"] == pytest.approx(r["nll_answer"])
            expected_tr = np.mean([max(0.0, 1 - 1 / r["truth_ratio_raw"]) for r in recs])
        elif split == "forget":
            expected_tr = 1 - np.mean(
                [min(r["truth_ratio_raw"], 1 / r["truth_ratio_raw"]) for r in recs]
            )
        else:
            expected_tr = np.mean([max(0.0, 1 - 1 / r["truth_ratio_raw"]) for r in recs])
        assert values["truth_ratio"] == pytest.approx(expected_tr)
        assert values["probability"] == pytest.approx(np.mean([r["probability"] for r in recs]))
    agg = summary["aggregates"]
    assert "retain/entailment" not in agg["computed_over"]["model_utility"]
    assert "forget/token_entropy" not in agg["computed_over"]["forget_efficacy"]


def _count_generation(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = engine.generate_answers

    def spy(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, "generate_answers", spy)
    return calls


def test_cache_reuses_unchanged_and_recomputes_changed(
    tiny, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, tok, fmt = tiny
    sets = {"forget": [item(0), item(1)]}
    calls = _count_generation(monkeypatch)
    first = runner.evaluate(model, tok, sets, fast_cfg(), tmp_path / "a", fmt)
    assert len(calls) == 1
    # unchanged model, config and data: nothing recomputed, same numbers, copied to the new folder
    again = runner.evaluate(model, tok, sets, fast_cfg(), tmp_path / "b", fmt)
    assert len(calls) == 1 and again == first
    assert (tmp_path / "b" / "forget.jsonl").read_text() == (
        tmp_path / "a" / "forget.jsonl"
    ).read_text()
    # changed config -> recomputed
    runner.evaluate(model, tok, sets, fast_cfg(max_new_tokens=4), tmp_path / "c", fmt)
    assert len(calls) == 2
    # changed data -> recomputed
    runner.evaluate(model, tok, {"forget": [item(0), item(2)]}, fast_cfg(), tmp_path / "d", fmt)
    assert len(calls) == 3
    # one changed weight -> new fingerprint -> recomputed, with different numbers
    with torch.no_grad():
        model.model.layers[0].mlp.down_proj.weight[0, 0] += 1.0
    changed = runner.evaluate(model, tok, sets, fast_cfg(), tmp_path / "e", fmt)
    assert len(calls) == 4
    assert changed["fingerprint"] != first["fingerprint"]
    # use_cache=False always recomputes
    runner.evaluate(model, tok, sets, fast_cfg(use_cache=False), tmp_path / "e", fmt)
    assert len(calls) == 5


def test_cache_key_covers_the_registered_metrics_and_their_versions(
    tiny, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A metric whose version is bumped (its values changed meaning) or a metric registered
    since is never served a result cached before."""
    import dataclasses

    from unlearnkit.eval.metrics import specs

    model, tok, fmt = tiny
    sets = {"forget": [item(0)]}
    calls = _count_generation(monkeypatch)
    runner.evaluate(model, tok, sets, fast_cfg(), tmp_path / "a", fmt)
    runner.evaluate(model, tok, sets, fast_cfg(), tmp_path / "b", fmt)
    assert len(calls) == 1
    name = "exact_memorization"
    bumped = dataclasses.replace(specs.METRIC_SPECS[name], version=2)
    monkeypatch.setitem(specs.METRIC_SPECS, name, bumped)
    assert (name, 2) in specs.registered_metrics()
    runner.evaluate(model, tok, sets, fast_cfg(), tmp_path / "c", fmt)
    assert len(calls) == 2
    extra = dataclasses.replace(bumped, name="a_new_metric", compute=lambda tokens: 0.0)
    monkeypatch.setitem(specs.METRIC_SPECS, "a_new_metric", extra)
    runner.evaluate(model, tok, sets, fast_cfg(), tmp_path / "d", fmt)
    assert len(calls) == 3


def _records(folder: Path) -> dict[str, list[dict]]:
    return {
        f.stem: [json.loads(x) for x in f.read_text().splitlines()]
        for f in sorted(folder.glob("*.jsonl"))
    }


@pytest.mark.parametrize("kind", ["generation", "answer_tokens"])
def test_a_registered_metric_joins_records_and_summary_with_no_other_change(
    tiny, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """Registering a metric is all it takes (issue 23): its per-item values join each split's
    records it applies to (a generation metric: every split; an answer-token metric: the forget
    split) and their mean the split's values; every other field and value is unchanged, and
    removing it again gives the former output."""
    from unlearnkit.eval.metrics import specs

    model, tok, fmt = tiny
    sets = tofu_sets(2)
    cfg = fast_cfg(use_cache=False)

    def run(folder: str) -> tuple[dict, dict[str, list[dict]]]:
        summary = runner.evaluate(model, tok, sets, cfg, tmp_path / folder, fmt, progress=False)
        return summary, _records(tmp_path / folder)

    def per_generation(generations: list[str], references: list[str]) -> list[float]:
        return [float(len(g) + len(r)) for g, r in zip(generations, references, strict=True)]

    def per_answer(tokens: M.AnswerTokens) -> float:
        return float(len(tokens.logp))

    name = "a_test_metric"
    compute = per_generation if kind == "generation" else per_answer
    spec = M.MetricSpec(name, "Test", True, "a test metric", ("generation",), kind, compute)
    before, old = run("before")
    monkeypatch.setitem(specs.METRIC_SPECS, name, spec)
    after, new = run("after")
    monkeypatch.undo()
    again, back = run("again")

    applies = list(sets) if kind == "generation" else ["forget"]
    assert list(new) == list(old) == list(back)
    for split, recs in new.items():
        for o, n in zip(old[split], recs, strict=True):
            assert {k: v for k, v in n.items() if k != name} == o
            assert list(k for k in n if k != name) == list(o)  # the same order
            assert (name in n) == (split in applies)
        if split in applies:
            values = [r[name] for r in recs]
            if kind == "generation":
                assert values == per_generation(
                    [r["generation"] for r in recs], [r["rouge_reference"] for r in recs]
                )
            assert after["splits"][split][name] == pytest.approx(np.mean(values))
        rest = [(k, v) for k, v in after["splits"].get(split, {}).items() if k != name]
        assert rest == list(before["splits"].get(split, {}).items())
    assert after["aggregates"] == before["aggregates"] and after["missing"] == before["missing"]
    assert back == old and again["splits"] == before["splits"]


def test_cached_result_with_a_missing_metric_is_recomputed_once_available(
    tiny, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, tok, fmt = tiny
    sets = {"forget": [item(5)]}
    calls = _count_generation(monkeypatch)
    cfg = fast_cfg(nli_model="later-available")
    monkeypatch.setattr(
        M,
        "get_entailment_scorer",
        lambda name: (_ for _ in ()).throw(M.NLIUnavailable("offline (test)")),
    )
    first = runner.evaluate(model, tok, sets, cfg, tmp_path / "a", fmt)
    assert "offline (test)" in first["missing"]["entailment"] and len(calls) == 1
    runner.evaluate(model, tok, sets, cfg, tmp_path / "b", fmt)
    assert len(calls) == 1  # still unavailable: the cached result stands
    monkeypatch.setattr(M, "get_entailment_scorer", lambda name: RecordingNLI())
    again = runner.evaluate(model, tok, sets, cfg, tmp_path / "c", fmt)
    assert len(calls) == 2 and "entailment" not in again["missing"]
    assert again["splits"]["forget"]["entailment"] is not None


def test_weights_fingerprint() -> None:
    a, _ = tiny_model(seed=0)
    b, _ = tiny_model(seed=0)
    c, _ = tiny_model(seed=1)
    assert result_cache.weights_fingerprint(a) == result_cache.weights_fingerprint(b)
    assert result_cache.weights_fingerprint(a) != result_cache.weights_fingerprint(c)
    with torch.no_grad():
        b.model.norm.weight[3] = b.model.norm.weight[3] + 1e-3
    assert result_cache.weights_fingerprint(a) != result_cache.weights_fingerprint(b)
    assert result_cache.weights_fingerprint(
        a.to(torch.bfloat16)
    ) != result_cache.weights_fingerprint(tiny_model(seed=0)[0])


def test_tokenizer_without_pad_token_falls_back_to_eos(tmp_path: Path) -> None:
    model, _ = tiny_model(seed=0)
    tok = tiny_tokenizer()
    tok.pad_token = None
    assert tok.pad_token_id is None
    summary = runner.evaluate(model, tok, {"forget": [item(0), item(1)]}, fast_cfg(), tmp_path)
    assert tok.pad_token_id == tok.eos_token_id  # documented fallback (ensure_pad_token)
    assert summary["n_items"] == {"forget": 2}


def fake_generations(texts: list[str]):
    """A stand-in for generate_answers that returns ``texts`` (in order) as the generations."""

    def fake(model, formatter, questions, **kwargs):
        assert len(questions) == len(texts)
        return [Generation(t, [], 1, 10, False) for t in texts]

    return fake


def test_empty_generation_scores_zero(
    tiny, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, tok, fmt = tiny
    items = [item(0), item(1)]
    monkeypatch.setattr(engine, "generate_answers", fake_generations(["", items[1].answer]))
    # use_cache=False: the cache key cannot know that generation is faked here
    cfg = fast_cfg(use_cache=False)
    summary = runner.evaluate(model, tok, {"forget": items}, cfg, tmp_path, fmt)
    recs = [json.loads(x) for x in (tmp_path / "forget.jsonl").read_text().splitlines()]
    assert recs[0]["generation"] == ""
    assert recs[0]["rouge_l"] == 0.0 and recs[0]["token_entropy"] == 0.0
    assert recs[1]["rouge_l"] == 1.0  # the generation is the reference itself
    assert summary["splits"]["forget"]["rouge_l"] == pytest.approx(0.5)
    assert summary["empty_generations"] == {"forget": 1}
    if "cosine_similarity" not in summary["missing"]:  # the packaged embedder is installed
        assert recs[0]["cosine_similarity"] == 0.0
        assert recs[1]["cosine_similarity"] == pytest.approx(1.0, abs=1e-5)


class RecordingNLI:
    """Says 'entailment' for every pair and records the order and references each split used."""

    device = "cpu"

    def __init__(self) -> None:
        self.orders: list[str] = []
        self.references: list[list[str]] = []
        self.batch_sizes: list[int] = []

    def entailment_score(self, generations, references, rouge_recalls, order, batch_size=16):
        self.orders.append(order)
        self.references.append(list(references))
        per_item = [1.0 if r >= 0.1 else 0.0 for r in rouge_recalls]
        return sum(per_item) / len(per_item), per_item

    def entailment_scores(self, groups, batch_size=16):
        self.batch_sizes.append(batch_size)
        return {n: self.entailment_score(*g, batch_size=batch_size) for n, g in groups.items()}


def test_entailment_order_reference_and_rouge_gate_per_split(
    tiny, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, tok, fmt = tiny
    nli = RecordingNLI()
    monkeypatch.setattr(M, "get_entailment_scorer", lambda name: nli)
    sets = {"forget": [item(0), item(1)], "retain": [item(2), item(3)], "real_authors": [item(4)]}
    # per split: generations equal to the ROUGE reference (ROUGE 1) or unrelated (ROUGE 0)
    # (one generation call for all splits, in split order)
    texts = [sets["forget"][0].answer, "zzz", "zzz", sets["retain"][1].answer]
    texts.append(sets["real_authors"][0].answer)
    monkeypatch.setattr(
        engine, "generate_answers", lambda m, f, q, **kw: fake_generations(texts)(m, f, q)
    )
    cfg = fast_cfg(nli_model="fake", use_cache=False)
    summary = runner.evaluate(model, tok, sets, cfg, tmp_path, fmt)
    # (generation, reference) on forget only; real authors pair with the full original answer
    assert nli.orders == ["gen_ref", "ref_gen", "ref_gen"]
    assert nli.batch_sizes == [runner.NLI_CPU_BATCH]  # one call; the CPU default batch
    assert nli.references[0] == [sets["forget"][0].answer, sets["forget"][1].answer]
    assert nli.references[2] == [sets["real_authors"][0].original_answer]
    assert summary["splits"]["forget"]["entailment"] == 0.5
    assert summary["splits"]["retain"]["entailment"] == 0.5
    assert summary["splits"]["real_authors"]["entailment"] == 1.0
    assert "entailment" not in summary["missing"]
    runner.evaluate(model, tok, sets, fast_cfg(nli_model="fake", nli_batch_size=3), tmp_path, fmt)
    assert nli.batch_sizes[-1] == 3


def test_nli_without_entailment_label_is_a_clear_error(
    tiny, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, tok, fmt = tiny

    def no_label(name):
        raise ValueError("NLI model has no entailment label in config.id2label {0: 'yes', 1: 'no'}")

    monkeypatch.setattr(M, "get_entailment_scorer", no_label)
    with pytest.raises(ValueError, match="no entailment label"):
        runner.evaluate(model, tok, {"forget": [item(0)]}, fast_cfg(nli_model="x"), tmp_path, fmt)


def test_unavailable_embedding_model_is_reported_missing(tiny, tmp_path: Path) -> None:
    model, tok, fmt = tiny
    cfg = fast_cfg(embedding_model=str(tmp_path / "no-such-embedder"))
    summary = runner.evaluate(
        model, tok, {"forget": [item(0)], "retain": [item(1)]}, cfg, tmp_path, fmt
    )
    assert "not found" in summary["missing"]["cosine_similarity"]
    assert summary["splits"]["retain"]["cosine_similarity"] is None
    assert "retain/cosine_similarity" in summary["aggregates"]["skipped"]["model_utility"]


def test_forget_quality_from_a_saved_retain_evaluation(tiny, tmp_path: Path) -> None:
    model, tok, fmt = tiny
    forget = [item(i) for i in range(4)]
    retain_model, _ = tiny_model(seed=3)
    runner.evaluate(retain_model, tok, {"forget": forget}, fast_cfg(), tmp_path / "retain", fmt)
    retain_recs = [
        json.loads(x) for x in (tmp_path / "retain" / "forget.jsonl").read_text().splitlines()
    ]
    cfg = fast_cfg(retain_eval=str(tmp_path / "retain" / "summary.json"))
    summary = runner.evaluate(model, tok, {"forget": forget}, cfg, tmp_path / "model", fmt)
    recs = [json.loads(x) for x in (tmp_path / "model" / "forget.jsonl").read_text().splitlines()]
    expected = ks_2samp(
        [r["truth_ratio_raw"] for r in recs], [r["truth_ratio_raw"] for r in retain_recs]
    ).pvalue
    assert summary["aggregates"]["forget_quality"] == pytest.approx(expected)
    assert "forget_quality" not in summary["missing"]
    # the retain model against itself: identical distributions, p-value 1
    cfg_self = fast_cfg(retain_eval=str(tmp_path / "retain"))
    same = runner.evaluate(retain_model, tok, {"forget": forget}, cfg_self, tmp_path / "self", fmt)
    assert same["aggregates"]["forget_quality"] == pytest.approx(1.0)
    # a retain evaluation of other questions is refused
    with pytest.raises(ValueError, match="lacks 1 of the 4 forget questions"):
        runner.evaluate(model, tok, {"forget": forget[:3] + [item(9)]}, cfg, tmp_path / "x", fmt)
