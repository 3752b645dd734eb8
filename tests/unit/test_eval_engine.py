"""The evaluation engines: the fast path equals the one-item-at-a-time reference, under both
profiles, and the fast engine frees the prompt states it keeps for scoring."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unlearnkit.data.formatting import PromptFormatter
from unlearnkit.eval.engine import EngineSettings, FastEngine, ReferenceEngine
from unlearnkit.models.tiny import tiny_model

torch.set_num_threads(1)

# Both engines run the tiny model in float64. Their NLLs differ only by the rounding of
# differently shaped (padded, batched, cached) matrix products: relative error about
# width x depth x 2^-53 (64 x 4 x 1.1e-16 ~ 3e-14) of values of order log(V) ~ 6. The bound
# leaves four orders of magnitude above that and is far below any real difference.
TOL = 1e-9


def _questions(prefix: str, n: int) -> list[str]:
    # lengths spread over a factor ~3 so that batches pad, prefill chunks and budgets differ
    return [f"{prefix} {i}: where was the author {'very ' * (i % 7)}born?" for i in range(n)]


def _answers(prefix: str, n: int, k: int = 3) -> tuple[list[str], list[str], list[list[str]]]:
    answers = [f"The {prefix} author {i} was born in city {i}." for i in range(n)]
    bases = [f"City {i} is where {prefix} author {i} was born." for i in range(n)]
    perturbed = [[f"Author {i} was born in town {j}{'!' * j}" for j in range(k)] for i in range(n)]
    return answers, bases, perturbed


@pytest.fixture(scope="module")
def tiny64():
    model, tok = tiny_model(seed=0)
    model = model.double().eval()
    return model, tok, PromptFormatter(tok)


def _engines(tiny64, paper: bool) -> tuple[FastEngine, ReferenceEngine]:
    model, tok, fmt = tiny64
    settings = EngineSettings(
        batch_size=4,
        generation_batch_size=8,
        max_new_tokens=10,
        # under the paper profile the longest prompt of each 30-item block sets its budget
        generation_max_length=85,
        prompt_state_bytes=0 if paper else 2**30,
        paper=paper,
    )
    pad = int(tok.pad_token_id)
    return FastEngine(model, fmt, settings, pad), ReferenceEngine(model, fmt, settings, pad)


@pytest.mark.parametrize("paper", [False, True], ids=["default", "paper"])
def test_fast_engine_equals_the_reference_engine(tiny64, paper: bool) -> None:
    fast, ref = _engines(tiny64, paper)
    # 33 forget items: two blocks of the paper's 30-item generation batches
    splits = {"forget": _questions("F", 33), "retain": _questions("R", 9)}
    got, want = fast.generate(splits), ref.generate(splits)
    assert list(got) == list(want) == list(splits)
    for name in splits:
        assert got[name] == want[name]  # text, token ids, budget, hit_budget: identical
    budgets = [g.budget for g in got["forget"]]
    if paper:  # one budget per block of 30 consecutive items
        assert set(budgets[:30]) == {budgets[0]} and set(budgets[30:]) == {budgets[30]}
    assert len(set(budgets)) > 1  # the budget rule did bind on some prompts
    if not paper:
        assert fast.held_prompt_states == 33 + 9
    for name, questions in splits.items():
        answers, bases, perturbed = _answers(name, len(questions))
        a = fast.score(questions, answers, bases, perturbed)
        b = ref.score(questions, answers, bases, perturbed)
        for key in ("answer", "base", "perturbed"):
            assert a[key].shape == b[key].shape
            np.testing.assert_allclose(a[key], b[key], rtol=0, atol=TOL)
        sa, sb = fast.token_stats(questions, answers), ref.token_stats(questions, answers)
        for x, y in zip(sa, sb, strict=True):
            np.testing.assert_allclose(x.logp, y.logp, rtol=0, atol=TOL)
            assert np.array_equal(x.greedy_hit, y.greedy_hit)
            np.testing.assert_allclose(x.mean_logp, y.mean_logp, rtol=0, atol=TOL)
        # per-token log-probs and the scored mean NLL are the same numbers
        np.testing.assert_allclose([-x.logp.mean() for x in sa], a["answer"], rtol=0, atol=TOL)
    assert fast.held_prompt_states == 0  # each state was freed by the score that used it


def test_fast_engine_reuses_and_frees_prompt_states(tiny64) -> None:
    fast, _ = _engines(tiny64, paper=False)
    model = tiny64[0]
    questions = _questions("Q", 6)
    answers, bases, perturbed = _answers("Q", 6)
    fast.generate({"forget": questions})
    assert fast.held_prompt_states == 6
    calls: list[tuple[int, ...]] = []
    hook = model.register_forward_pre_hook(
        lambda mod, a, k: calls.append(tuple(k["input_ids"].shape)), with_kwargs=True
    )
    try:
        fast.score(questions[:3], answers[:3], bases[:3], perturbed[:3])
        reused = len(calls)
        assert fast.held_prompt_states == 3  # the scored questions' states are freed
        fast.score(questions[:3], answers[:3], bases[:3], perturbed[:3])
        fresh = len(calls) - reused
    finally:
        hook.remove()
    assert fresh == reused + 1  # without a held state the prompts are computed again
    fast.generate({"forget": questions[:2]})  # a new generation drops what was left
    assert fast.held_prompt_states == 2
    fast.release()
    assert fast.held_prompt_states == 0
