"""The paper's six metrics (Yuan et al. 2025) computed from a split's outputs
(:class:`~unlearnkit.eval.metrics.outputs.SplitOutputs`), registered in
:mod:`unlearnkit.eval.metrics.specs`.

Each returns the metric's per-item record fields: its value under its own name, after the
diagnostics it is read with (token counts, NLLs, raw truth ratios), in the order of
``<split>.jsonl``.
"""

from __future__ import annotations

from typing import Any

from unlearnkit.eval.metrics.entropy import token_entropy as entropy_of
from unlearnkit.eval.metrics.outputs import SplitOutputs
from unlearnkit.eval.metrics.probability import (
    normalized_probability_per_item,
    probability_per_item,
)
from unlearnkit.eval.metrics.truth_ratio import (
    truth_ratio_per_item,
    truth_ratio_per_item_open_unlearning,
    truth_ratio_scores,
    truth_ratio_scores_open_unlearning,
)

Fields = dict[str, list[Any]]


def rouge_l(out: SplitOutputs) -> Fields:
    return {"rouge_l": out.rouge_l}


def token_entropy(out: SplitOutputs) -> Fields:
    """Over the generation's tokens under the evaluated model's tokenizer (re-tokenized text,
    so the value can be recomputed from the saved record); with the generation's length and
    budget."""
    gens = out.generations or []
    tokens = [out.tokenizer(t, add_special_tokens=False)["input_ids"] for t in out.texts]  # type: ignore[misc]
    return {
        "token_entropy": [entropy_of(t) for t in tokens],
        "n_generated_tokens": [len(g.token_ids) for g in gens],
        "token_budget": [g.budget for g in gens],
        "hit_token_budget": [g.hit_budget for g in gens],
    }


def probability(out: SplitOutputs) -> Fields:
    """exp(-NLL) of the answer, normalized against the perturbed answers where the split's spec
    says so."""
    nll = out.nll or {}
    p_answer = probability_per_item(nll["answer"])
    normalized = out.spec is not None and out.spec.normalized_probability
    return {
        "nll_answer": [float(x) for x in nll["answer"]],
        "answer_probability": p_answer,
        "probability": (
            normalized_probability_per_item(nll["answer"], nll["perturbed"])
            if normalized
            else p_answer
        ),
    }


def truth_ratio(out: SplitOutputs) -> Fields:
    """The raw ratio R of each item and its score (forget: closeness to 1, else 1 - 1/R);
    open-unlearning's (its 1e-10, its forget direction) under that profile."""
    nll = out.nll or {}
    forget = out.spec is not None and out.spec.forget
    if out.open_unlearning:
        ratios = truth_ratio_per_item_open_unlearning(nll["base"], nll["perturbed"])
        scores = truth_ratio_scores_open_unlearning(ratios, forget=forget)
    else:
        ratios = truth_ratio_per_item(nll["base"], nll["perturbed"])
        scores = truth_ratio_scores(ratios, forget=forget)
    return {
        "nll_base": [float(x) for x in nll["base"]],
        "nll_perturbed": [[float(x) for x in row] for row in nll["perturbed"]],
        "truth_ratio_raw": ratios,
        "truth_ratio": scores,
    }


def cosine_similarity(out: SplitOutputs) -> Fields:
    """The embedding model's per-item values (None each: no embedding model)."""
    return {"cosine_similarity": out.cosine or [None] * len(out.items)}


def entailment(out: SplitOutputs) -> Fields:
    """The NLI model's per-item 1.0/0.0 (None each: no NLI model)."""
    return {"entailment": out.entailment or [None] * len(out.items)}
