"""The six metrics of Yuan et al. 2025, the field's privacy and memorization metrics, and their
aggregates, as plain functions registered in :mod:`unlearnkit.eval.metrics.specs`.

Likelihood metrics take per-item mean token NLLs (arrays in, number out; ``*_per_item`` variants
return per-example values). Generation metrics take strings or token ids. The auxiliary-model
metrics (cosine similarity, entailment) live in scorer classes loaded once per process.
"""

from unlearnkit.eval.metrics._hub import AuxModelUnavailable
from unlearnkit.eval.metrics.aggregate import (
    EFFICACY_METRICS,
    aggregate,
    forget_efficacy,
    forget_quality,
    model_utility,
)
from unlearnkit.eval.metrics.answer_tokens import AnswerTokens
from unlearnkit.eval.metrics.entailment import (
    ROUGE_GATE,
    EntailmentScorer,
    NLIUnavailable,
    find_entailment_label,
    get_entailment_scorer,
)
from unlearnkit.eval.metrics.entropy import token_entropy
from unlearnkit.eval.metrics.memorization import exact_memorization, extraction_strength
from unlearnkit.eval.metrics.mia import MIN_K, mia_auc
from unlearnkit.eval.metrics.privacy import NO_RETAIN_AUC, PRIVACY_ATTACK, privacy_leakage
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
from unlearnkit.eval.metrics.specs import (
    METRIC_NAMES,
    METRIC_SPECS,
    MetricSpec,
    metric_label,
    metrics_of_kind,
    register_metric,
)
from unlearnkit.eval.metrics.truth_ratio import (
    truth_ratio,
    truth_ratio_per_item,
    truth_ratio_per_item_open_unlearning,
    truth_ratio_scores,
    truth_ratio_scores_open_unlearning,
)
from unlearnkit.eval.metrics.utility import model_utility_open_unlearning

__all__ = [
    "model_utility_open_unlearning",
    "register_metric",
    "metrics_of_kind",
    "metric_label",
    "privacy_leakage",
    "PRIVACY_ATTACK",
    "NO_RETAIN_AUC",
    "mia_auc",
    "MIN_K",
    "extraction_strength",
    "exact_memorization",
    "AnswerTokens",
    "DEFAULT_EMBEDDING_MODEL",
    "EFFICACY_METRICS",
    "METRIC_NAMES",
    "METRIC_SPECS",
    "ROUGE_GATE",
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
    "truth_ratio_per_item_open_unlearning",
    "truth_ratio_scores",
    "truth_ratio_scores_open_unlearning",
]
