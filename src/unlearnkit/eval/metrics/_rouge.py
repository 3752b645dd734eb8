"""ROUGE-L recall of a generation against its reference answer (no registration here: the paper
metrics' computations and ROUGE-1 both read this module).

ROUGE-L recall = LCS(generation, reference) / len(reference), over Porter-stemmed lowercase word
tokens (``rouge_score`` with ``use_stemmer=True``, as in TOFU and Yuan et al. 2025).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from rouge_score import rouge_scorer


@lru_cache(maxsize=1)
def scorer() -> rouge_scorer.RougeScorer:
    # Building the scorer loads the stemmer; one per process is enough.
    return rouge_scorer.RougeScorer(["rougeL", "rouge1"], use_stemmer=True)


def rouge_l_recall(generation: str, reference: str) -> float:
    """ROUGE-L recall = |LCS(gen, ref)| / |ref| in stemmed word tokens.

    An empty generation (or a reference with no word token) scores 0.0.
    """
    return float(scorer().score(reference, generation)["rougeL"].recall)


def rouge_l_recall_batch(generations: Sequence[str], references: Sequence[str]) -> list[float]:
    """Per-item :func:`rouge_l_recall`, reusing one scorer."""
    if len(generations) != len(references):
        raise ValueError(
            f"rouge_l_recall_batch: {len(generations)} generations but {len(references)} references"
        )
    rouge = scorer()
    return [
        float(rouge.score(ref, gen)["rougeL"].recall)
        for gen, ref in zip(generations, references, strict=True)
    ]
