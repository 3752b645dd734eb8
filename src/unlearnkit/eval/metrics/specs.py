"""The metric registry: every metric once, with its computation, direction, label and needs.

Every metric's entry carries its computation: the paper's six are registered below (their
computations in :mod:`unlearnkit.eval.metrics.paper`), every other metric by decorator next to
its definition (:func:`register_metric`). :mod:`unlearnkit.eval.registered_metrics` computes every
registered metric from what the engine produced for a split
(:class:`~unlearnkit.eval.metrics.outputs.SplitOutputs`: one greedy generation, one
teacher-forcing pass, the auxiliary models scoring every split at once), by kind:

* ``kind="paper"``: the paper's six (Yuan et al. 2025): ``compute(outputs) -> per-item record
  fields`` (the metric's value under its name), on every split, reported as the split's mean;
* ``kind="generation"``: ``compute(generations, references) -> per-item values``, on every split
  (reference: the split's ROUGE reference), reported as the split's mean;
* ``kind="answer_tokens"``: ``compute(tokens: AnswerTokens) -> value`` per item, from the answer's
  token statistics (:mod:`unlearnkit.eval.token_stats`), reported on the forget split;
* ``kind="mia"``: ``compute(tokens: AnswerTokens) -> membership score`` per item (higher = looks
  more like a training member, None when what it needs is absent); the forget set (members) is
  ranked against a holdout set (non-members) and the AUC is reported;
* ``kind="aggregate"``: a value over splits or attacks, computed by the runner (listed here for
  its label, direction and meaning).

Labels everywhere (``unlearn eval``'s table, the report) come from :func:`metric_label`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from unlearnkit.eval.metrics import paper
from unlearnkit.registry import METRICS

Kind = Literal["paper", "generation", "answer_tokens", "mia", "aggregate"]
# What a metric needs, for `unlearn ls metrics` and for the runner to know what to prepare.
Need = Literal[
    "generation",  # the greedy generation
    "answer_nll",  # teacher-forced NLLs of the answer (and paraphrased / perturbed answers)
    "token_logprobs",  # per-token log-probabilities of the answer (and their distribution)
    "holdout",  # a holdout split of non-members
    "gradients",  # a backward pass per item
    "reference_model",  # a reference (retain) model's saved evaluation
    "aux_model",  # an auxiliary model (embedding, NLI)
]


@dataclass(frozen=True)
class MetricSpec:
    """What a metric means and how it is computed.

    ``higher_is_better`` is read on the sets the model must keep (retain, real authors, world
    facts, neighbours): higher = more knowledge kept. On the forget set the goal is the reverse,
    which is why Forget Efficacy is 1 - mean of the forget-set values. For an MIA AUC, higher
    means the forget set still looks like training members (worse unlearning).
    """

    name: str
    label: str  # short column header
    higher_is_better: bool
    description: str
    needs: tuple[Need, ...]
    kind: Kind = "paper"
    compute: Callable[..., Any] | None = None
    # bumped when the metric's values change meaning; part of the evaluation cache's key
    version: int = 1

    @property
    def needs_generation(self) -> bool:
        return "generation" in self.needs


METRIC_SPECS: dict[str, MetricSpec] = {}


def add_metric_spec(spec: MetricSpec) -> None:
    """Register ``spec`` (a duplicate name is an error)."""
    if spec.name in METRIC_SPECS:
        raise ValueError(f"metric '{spec.name}' is already registered")
    METRIC_SPECS[spec.name] = spec
    if spec.name not in METRICS:  # importing twice (e.g. a reload) must not fail
        METRICS.add(spec.name, spec, description=spec.description)


def register_metric(
    name: str,
    *,
    label: str,
    higher_is_better: bool,
    needs: tuple[Need, ...],
    kind: Kind,
    description: str,
    version: int = 1,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: register the decorated function as metric ``name``'s computation
    (``version``: bump it when the function's values change meaning)."""

    def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
        spec = MetricSpec(name, label, higher_is_better, description, needs, kind, fn, version)
        add_metric_spec(spec)
        return fn

    return decorator


def metric_label(name: str) -> str:
    """The metric's short label (the name itself for an unregistered key)."""
    spec = METRIC_SPECS.get(name)
    return spec.label if spec is not None else name


def registered_metrics() -> list[tuple[str, int]]:
    """(name, version) of every registered metric, sorted: what the evaluation cache's key
    covers, so registering, removing or changing a metric never reuses a stale result."""
    return sorted((s.name, s.version) for s in METRIC_SPECS.values())


def metrics_of_kind(kind: Kind) -> list[MetricSpec]:
    """Registered metrics of one kind, in registration order."""
    return [s for s in METRIC_SPECS.values() if s.kind == kind]


for _spec in (
    MetricSpec(
        "rouge_l",
        "ROUGE-L",
        True,
        "ROUGE-L recall (stemmed) of the greedy generation against the reference answer",
        ("generation",),
        compute=paper.rouge_l,
    ),
    MetricSpec(
        "probability",
        "Prob",
        True,
        "mean exp(-mean token NLL) of the answer; normalized against perturbed answers on "
        "real authors / world facts",
        ("answer_nll",),
        compute=paper.probability,
    ),
    MetricSpec(
        "truth_ratio",
        "TR",
        True,
        "how much more likely the (paraphrased) answer is than its perturbed versions",
        ("answer_nll",),
        compute=paper.truth_ratio,
    ),
    MetricSpec(
        "token_entropy",
        "TE",
        True,
        "unigram entropy of the generation's tokens / log2(n): low means repetitive output",
        ("generation",),
        compute=paper.token_entropy,
    ),
    MetricSpec(
        "cosine_similarity",
        "CS",
        True,
        "max(0, cosine) of sentence embeddings of the generation and the reference",
        ("generation", "aux_model"),
        compute=paper.cosine_similarity,
    ),
    MetricSpec(
        "entailment",
        "ES",
        True,
        "share of generations an NLI model labels as entailment with the reference "
        "(ROUGE-L recall < 0.1 counts as not entailed)",
        ("generation", "aux_model"),
        compute=paper.entailment,
    ),
):
    add_metric_spec(_spec)

# The paper's six, in the paper's order: Model Utility and Forget Efficacy are computed over these.
METRIC_NAMES: tuple[str, ...] = tuple(s.name for s in metrics_of_kind("paper"))
