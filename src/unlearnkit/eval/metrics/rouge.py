"""ROUGE-L and ROUGE-1 recall of a generation against its reference answer.

ROUGE-L recall = LCS(generation, reference) / len(reference), over Porter-stemmed lowercase word
tokens (``rouge_score`` with ``use_stemmer=True``, as in TOFU and Yuan et al. 2025).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from rouge_score import rouge_scorer

from unlearnkit.eval.metrics.specs import register_metric


@lru_cache(maxsize=1)
def _scorer() -> rouge_scorer.RougeScorer:
    # Building the scorer loads the stemmer; one per process is enough.
    return rouge_scorer.RougeScorer(["rougeL", "rouge1"], use_stemmer=True)


def rouge_l_recall(generation: str, reference: str) -> float:
    """ROUGE-L recall = |LCS(gen, ref)| / |ref| in stemmed word tokens.

    An empty generation (or a reference with no word token) scores 0.0.
    """
    return float(_scorer().score(reference, generation)["rougeL"].recall)


def rouge_l_recall_batch(generations: Sequence[str], references: Sequence[str]) -> list[float]:
    """Per-item :func:`rouge_l_recall`, reusing one scorer."""
    if len(generations) != len(references):
        raise ValueError(
            f"rouge_l_recall_batch: {len(generations)} generations but {len(references)} references"
        )
    scorer = _scorer()
    return [
        float(scorer.score(ref, gen)["rougeL"].recall)
        for gen, ref in zip(generations, references, strict=True)
    ]


@register_metric(
    "rouge1",
    label="ROUGE-1",
    higher_is_better=True,
    needs=("generation",),
    kind="generation",
    description="ROUGE-1 recall (stemmed) of the greedy generation against the reference answer",
)
def rouge1_recall_batch(generations: Sequence[str], references: Sequence[str]) -> list[float]:
    """ROUGE-1 recall = |unigrams(gen) & unigrams(ref)| / |unigrams(ref)|, counted with
    multiplicity over stemmed word tokens (the paper's code logs it beside ROUGE-L)."""
    scorer = _scorer()
    return [
        float(scorer.score(ref, gen)["rouge1"].recall)
        for gen, ref in zip(generations, references, strict=True)
    ]
