"""ROUGE-L and ROUGE-1 recall of a generation against its reference answer.

ROUGE-L recall (:mod:`unlearnkit.eval.metrics._rouge`) = LCS(generation, reference) /
len(reference), over Porter-stemmed lowercase word tokens (``rouge_score`` with
``use_stemmer=True``, as in TOFU and Yuan et al. 2025). ROUGE-1 is registered here.
"""

from __future__ import annotations

from collections.abc import Sequence

from unlearnkit.eval.metrics._rouge import rouge_l_recall, rouge_l_recall_batch, scorer
from unlearnkit.eval.metrics.specs import register_metric

__all__ = ["rouge1_recall_batch", "rouge_l_recall", "rouge_l_recall_batch"]


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
    rouge = scorer()
    return [
        float(rouge.score(ref, gen)["rouge1"].recall)
        for gen, ref in zip(generations, references, strict=True)
    ]
