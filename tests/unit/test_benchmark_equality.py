"""The naive baselines of benchmarks/ compute the same numbers as unlearnkit's path.

The benchmark ratios only compare equal work if both sides compute the same values (issue 6):
same loss within 1e-4, same teacher-forced metric values within 1e-5, identical greedy
generations for at least 95% of items. Checked here on the tiny model; no timing.
"""

from __future__ import annotations

import pytest
import torch

from benchmarks.baselines import (
    TRAIN_LENGTH,
    naive_cosine,
    naive_entailment,
    naive_me_loss,
    naive_sequence_nll,
    naive_step_loss,
    naive_token_entropy,
    pad_fixed,
)
from benchmarks.bench_eval import (
    build_nli_standin,
    compare,
    nli_margin_fn,
    run_baseline,
    run_ours,
)
from benchmarks.bench_step import build_batches, coefficients
from unlearnkit.config import EvalConfig
from unlearnkit.data.records import QAItem
from unlearnkit.losses import me_loss, sequence_nll
from unlearnkit.methods.data import attach_reference_nlls, compute_reference_nlls
from unlearnkit.models.tiny import tiny_model


def _items(n: int, prefix: str, k: int = 3) -> list[QAItem]:
    return [
        QAItem(
            question=f"{prefix} question number {i}: who wrote book {i}?",
            answer=f"Book {i} was written by author {i} in {1900 + i}.",
            paraphrased_answer=f"Author {i} wrote book {i}, in {1900 + i}.",
            perturbed_answers=[f"Book {i} was written by person {j}." for j in range(k)],
            original_answer=f"The answer to {prefix} {i} is author {i}.",
        )
        for i in range(n)
    ]


def _logits_labels() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    logits = (torch.randn(3, 9, 40, generator=gen) * 4).requires_grad_()  # (B, T, V)
    labels = torch.randint(0, 40, (3, 9), generator=gen)  # (B, T)
    labels[0, :4] = -100  # masked question
    labels[1, 6:] = -100  # padding
    return logits, labels


def test_naive_me_loss_equals_me_loss_value_and_gradient() -> None:
    logits, labels = _logits_labels()
    naive = naive_me_loss(logits, labels)
    (g_naive,) = torch.autograd.grad(naive, logits)
    ours = me_loss(logits, labels)
    (g_ours,) = torch.autograd.grad(ours, logits)
    assert abs(float(naive.detach()) - float(ours.detach())) <= 1e-4
    assert torch.allclose(g_naive, g_ours, atol=1e-6)
    # Uniform logits: KL(U || U) = 0 for both.
    flat = torch.zeros(2, 5, 40)
    assert abs(float(naive_me_loss(flat, torch.zeros(2, 5, dtype=torch.long)))) < 1e-6


def test_naive_sequence_nll_equals_sequence_nll_with_fixed_padding() -> None:
    logits, labels = _logits_labels()
    padded_logits = torch.cat([logits.detach(), torch.randn(3, 4, 40)], dim=1)  # (B, 13, V)
    padded_labels = torch.cat([labels, torch.full((3, 4), -100)], dim=1)  # padding never counts
    expected, _ = sequence_nll(logits.detach(), labels)
    assert torch.allclose(naive_sequence_nll(padded_logits, padded_labels), expected, atol=1e-5)


def test_pad_fixed_pads_and_truncates_to_the_fixed_length() -> None:
    feats = [
        {"input_ids": [5, 6, 7], "labels": [-100, 6, 7], "attention_mask": [1, 1, 1]},
        {"input_ids": list(range(10)), "labels": list(range(10)), "attention_mask": [1] * 10},
    ]
    out = pad_fixed(feats, 6, pad_id=0)
    assert out["input_ids"].tolist() == [[5, 6, 7, 0, 0, 0], [0, 1, 2, 3, 4, 5]]
    assert out["labels"][0].tolist() == [-100, 6, 7, -100, -100, -100]
    assert out["attention_mask"][0].tolist() == [1, 1, 1, 0, 0, 0]


def test_naive_token_entropy_hand_computed() -> None:
    assert naive_token_entropy([1, 2, 3, 4]) == pytest.approx(1.0)
    assert naive_token_entropy([7, 7, 7]) == 0.0
    assert naive_token_entropy([1]) == 0.0
    # counts {a: 2, b: 1, c: 1} over n = 4: H = 1.5 bits, / log2(4) = 0.75
    assert naive_token_entropy([1, 1, 2, 3]) == pytest.approx(0.75)


@pytest.mark.parametrize("method_name", ["ME+GD", "NPO+GD"])
def test_naive_step_loss_equals_method_compute(method_name: str) -> None:
    model, tok = tiny_model(seed=0)
    ref_model, _ = tiny_model(seed=1)  # a different reference, so NPO's ratio is not trivial
    ref_model.eval()
    forget, retain = _items(6, "forget"), _items(8, "retain")
    method, dataset, ours_batch, naive = build_batches(method_name, tok, forget, retain, n=4)
    assert naive["forget"]["input_ids"].shape == (4, TRAIN_LENGTH)
    if method.cached_ref_views:
        nlls = compute_reference_nlls(
            ref_model, dataset, method.cached_ref_views, batch_size=4, pad_id=method.pad_id
        )
        attach_reference_nlls(dataset, nlls)
        from unlearnkit.methods.data import UnlearningCollator

        ours_batch = UnlearningCollator(method.pad_id)([dataset[i] for i in range(4)])
    ours_total, ours_parts = method.compute(model, ours_batch, None)
    naive_total, naive_parts = naive_step_loss(
        method_name, model, ref_model, naive["forget"], naive["retain"], **coefficients(method)
    )
    assert abs(ours_total.item() - naive_total.item()) <= 1e-4
    for key in ("forget", "regularizer"):
        assert abs(ours_parts[key].item() - naive_parts[key].item()) <= 1e-4
    # The gradients agree as well (what the optimizer sees).
    g_ours = torch.autograd.grad(ours_total, list(model.parameters()))
    naive_total, _ = naive_step_loss(
        method_name, model, ref_model, naive["forget"], naive["retain"], **coefficients(method)
    )
    g_naive = torch.autograd.grad(naive_total, list(model.parameters()))
    for a, b in zip(g_ours, g_naive, strict=True):
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-4)


@pytest.fixture(scope="module")
def aux_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    pytest.importorskip("sentence_transformers")
    from unlearnkit.eval.metrics.similarity import EmbeddingUnavailable, resolve_embedding_model

    try:
        embed = resolve_embedding_model("all-minilm-l6-v2")
    except EmbeddingUnavailable as err:
        pytest.skip(f"packaged embedding model not installed: {err.reason}")
    nli = build_nli_standin(tmp_path_factory.mktemp("nli") / "tiny-nli", size="tiny")
    return embed, str(nli)


def test_naive_aux_metrics_equal_the_project_scorers(aux_models: tuple[str, str]) -> None:
    from unlearnkit.eval.metrics.entailment import EntailmentScorer
    from unlearnkit.eval.metrics.similarity import EmbeddingScorer

    embed, nli = aux_models
    gens = ["The author was born in Paris.", "", "He wrote many novels about the sea."]
    refs = ["The writer was born in France.", "Some reference.", "His books are about the sea."]
    ours_cos = EmbeddingScorer(embed, device="cpu").cosine(gens, refs, batch_size=8)
    naive_cos = naive_cosine(gens, refs, embed)
    assert naive_cos[1] == ours_cos[1] == 0.0  # empty generation
    assert max(abs(a - b) for a, b in zip(ours_cos, naive_cos, strict=True)) <= 1e-5
    rouge = [0.5, 0.05, 0.3]  # the middle item is gated out (ROUGE-L < 0.1)
    _, ours_es = EntailmentScorer(nli, device="cpu").entailment_score(
        gens, refs, rouge, order="gen_ref", batch_size=8
    )
    assert naive_entailment(gens, refs, rouge, nli) == ours_es
    assert ours_es[1] == 0.0


def _eval_cfg(embed: str, nli: str, batch_size: int, max_new_tokens: int) -> EvalConfig:
    return EvalConfig(
        ds_size=None,
        batch_size=batch_size,
        generation_batch_size=batch_size,
        max_new_tokens=max_new_tokens,
        generation_max_length=200,
        embedding_model=embed,
        nli_model=nli,
        use_cache=False,
    )


def test_naive_evaluation_equals_evaluate(aux_models: tuple[str, str], tmp_path) -> None:
    embed, nli = aux_models
    model, tok = tiny_model(seed=0)
    model.eval()
    sets = {
        "forget": _items(5, "forget", k=5),
        "retain": _items(5, "retain", k=5),
        "real_authors": _items(4, "real", k=3),
        "world_facts": _items(4, "world", k=3),
    }
    # batch 3: batches differ in composition (ours sorts by length, the baseline not)
    cfg = _eval_cfg(embed, nli, batch_size=3, max_new_tokens=6)
    ours = run_ours(model, tok, sets, cfg, tmp_path / "ours")
    base = run_baseline(model, tok, sets, cfg, embed, nli)
    check = compare(base, ours, list(sets))
    assert check["items"] == 18
    assert check["passed"], check
    assert check["teacher_forced_max_abs_diff"] <= 1e-5
    # compare() must notice a changed value: a metric off by 2e-5, an NLL off by 1e-3.
    base["forget"][1]["probability"] += 2e-5
    assert not compare(base, ours, list(sets))["passed"]
    base["forget"][1]["probability"] -= 2e-5
    assert compare(base, ours, list(sets))["passed"]
    base["retain"][0]["nll_answer"] += 1e-3
    assert not compare(base, ours, list(sets))["passed"]
    base["retain"][0]["nll_answer"] -= 1e-3
    # An entailment label that differs fails, unless the NLI model is at a near-tie there.
    flipped = next(r for r in base["forget"] if r["entailment"] is not None)
    flipped["entailment"] = 1.0 - flipped["entailment"]
    assert not compare(base, ours, list(sets))["passed"]
    assert not compare(base, ours, list(sets), lambda split, i: 0.5)["passed"]
    tie = compare(base, ours, list(sets), lambda split, i: 1e-6)
    assert tie["passed"] and len(tie["entailment_near_ties"]) == 1
    # the margin function reads the right pair: the stand-in's real margins are finite and >= 0
    margin = nli_margin_fn(nli, ours)
    assert all(margin(n, i) >= 0.0 for n in sets for i in range(len(sets[n])))


def test_naive_evaluation_sends_the_same_nli_pairs_as_evaluate(
    aux_models: tuple[str, str], tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both paths give the NLI model the same (premise, hypothesis) pairs on every split: on real
    authors and world facts the reference is the full sentence (``original_answer``), not the
    short ROUGE-L answer. The ROUGE-L gate is opened so that every pair reaches the model."""
    import benchmarks.baselines as baselines
    from unlearnkit.eval.metrics import entailment as entailment_mod

    embed, nli = aux_models
    monkeypatch.setattr(baselines, "ROUGE_GATE", -1.0)
    monkeypatch.setattr(entailment_mod, "ROUGE_GATE", -1.0)
    seen: dict[str, list[tuple[str, str]]] = {"ours": [], "baseline": []}
    entailed = entailment_mod.EntailmentScorer.entailed
    naive = baselines.naive_entailment

    def spy_ours(self, premises, hypotheses, batch_size=16):  # type: ignore[no-untyped-def]
        seen["ours"].extend(zip(premises, hypotheses, strict=True))
        return entailed(self, premises, hypotheses, batch_size)

    def spy_baseline(premises, hypotheses, rouge, model_path):  # type: ignore[no-untyped-def]
        seen["baseline"].extend(zip(premises, hypotheses, strict=True))
        return naive(premises, hypotheses, rouge, model_path)

    monkeypatch.setattr(entailment_mod.EntailmentScorer, "entailed", spy_ours)
    monkeypatch.setattr(baselines, "naive_entailment", spy_baseline)
    model, tok = tiny_model(seed=0)
    model.eval()
    sets = {"forget": _items(3, "forget", k=5), "world_facts": _items(3, "world", k=3)}
    cfg = _eval_cfg(embed, nli, batch_size=2, max_new_tokens=4)
    ours = run_ours(model, tok, sets, cfg, tmp_path / "ours")
    run_baseline(model, tok, sets, cfg, embed, nli)
    assert len(seen["ours"]) == len(seen["baseline"]) == 6
    assert sorted(seen["ours"]) == sorted(seen["baseline"])
    # world facts: (reference, generation), the reference being the full sentence
    world = [(r["entailment_reference"], r["generation"]) for r in ours["world_facts"]]
    assert world[0][0] == sets["world_facts"][0].original_answer
    assert set(world) <= set(seen["baseline"])
