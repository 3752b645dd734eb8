"""The six metrics of Yuan et al. 2025: names, direction and meaning, registered in METRICS."""

from __future__ import annotations

from dataclasses import dataclass

from unlearnkit.registry import METRICS


@dataclass(frozen=True)
class MetricSpec:
    """What a metric means.

    ``higher_is_better`` is read on the sets the model must keep (retain, real authors, world
    facts, neighbours): higher = more knowledge kept. On the forget set the goal is the reverse,
    which is why Forget Efficacy is 1 - mean of the forget-set values.
    """

    name: str
    higher_is_better: bool
    description: str
    needs_generation: bool  # computed from the greedy generation (vs. teacher forcing only)


METRIC_SPECS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        MetricSpec(
            "rouge_l",
            True,
            "ROUGE-L recall (stemmed) of the greedy generation against the reference answer",
            True,
        ),
        MetricSpec(
            "probability",
            True,
            "mean exp(-mean token NLL) of the answer; normalized against perturbed answers on "
            "real authors / world facts",
            False,
        ),
        MetricSpec(
            "truth_ratio",
            True,
            "how much more likely the (paraphrased) answer is than its perturbed versions",
            False,
        ),
        MetricSpec(
            "token_entropy",
            True,
            "unigram entropy of the generation's tokens / log2(n): low means repetitive output",
            True,
        ),
        MetricSpec(
            "cosine_similarity",
            True,
            "max(0, cosine) of sentence embeddings of the generation and the reference",
            True,
        ),
        MetricSpec(
            "entailment",
            True,
            "share of generations an NLI model labels as entailment with the reference "
            "(ROUGE-L recall < 0.1 counts as not entailed)",
            True,
        ),
    )
}

METRIC_NAMES: tuple[str, ...] = tuple(METRIC_SPECS)

for _spec in METRIC_SPECS.values():
    if _spec.name not in METRICS:  # importing twice (e.g. a reload) must not fail
        METRICS.add(_spec.name, _spec, description=_spec.description)
