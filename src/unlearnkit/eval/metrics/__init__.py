"""The six metrics of Yuan et al. 2025 and their aggregates, as plain functions.

Likelihood metrics take per-item mean token NLLs (arrays in, number out; ``*_per_item`` variants
return per-example values). Generation metrics take strings or token ids. The auxiliary-model
metrics (cosine similarity, entailment) live in scorer classes loaded once per process.
"""

from unlearnkit.eval.metrics._hub import AuxModelUnavailable
from unlearnkit.eval.metrics.aggregate import (
    EFFICACY_METRICS,
    UTILITY_SPLITS,
    aggregate,
    forget_efficacy,
    forget_quality,
    model_utility,
)
from unlearnkit.eval.metrics.entailment import (
    ROUGE_GATE,
    EntailmentScorer,
    NLIUnavailable,
    find_entailment_label,
    get_entailment_scorer,
)
from unlearnkit.eval.metrics.entropy import token_entropy
from unlearnkit.eval.metrics.probability import (
    normalized_probability,
    normalized_probability_per_item,
    probability,
    probability_per_item,
)
from unlearnkit.eval.metrics.rouge import rouge_l_recall, rouge_l_recall_batch
from unlearnkit.eval.metrics.similarity import (
    DEFAULT_EMBEDDING_MODEL,
    EmbeddingScorer,
    EmbeddingUnavailable,
    get_embedding_scorer,
    resolve_embedding_model,
)
from unlearnkit.eval.metrics.specs import METRIC_NAMES, METRIC_SPECS, MetricSpec
from unlearnkit.eval.metrics.truth_ratio import (
    truth_ratio,
    truth_ratio_per_item,
    truth_ratio_scores,
)

__all__ = [
    "DEFAULT_EMBEDDING_MODEL",
    "EFFICACY_METRICS",
    "METRIC_NAMES",
    "METRIC_SPECS",
    "ROUGE_GATE",
    "UTILITY_SPLITS",
    "AuxModelUnavailable",
    "EmbeddingScorer",
    "EmbeddingUnavailable",
    "EntailmentScorer",
    "MetricSpec",
    "NLIUnavailable",
    "aggregate",
    "find_entailment_label",
    "forget_efficacy",
    "forget_quality",
    "get_embedding_scorer",
    "get_entailment_scorer",
    "model_utility",
    "normalized_probability",
    "normalized_probability_per_item",
    "probability",
    "probability_per_item",
    "resolve_embedding_model",
    "rouge_l_recall",
    "rouge_l_recall_batch",
    "token_entropy",
    "truth_ratio",
    "truth_ratio_per_item",
    "truth_ratio_scores",
]
