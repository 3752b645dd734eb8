"""Membership-inference attacks: forget set (members) against a holdout set (non-members).

Each attack gives every item a membership score s (higher = looks more like a training member);
the split value is the area under the ROC curve of s separating members (label 1) from
non-members (label 0):

    AUC = P(s(member) > s(non-member)) + 1/2 P(s(member) = s(non-member))

AUC = 1: the forget set still looks like training data; 0.5: it looks like unseen data. All
statistics are over the answer tokens given the question, as open-unlearning scores them (its
labels mask the question). With Lbar = -1/A sum_t log p(a_t | q, a_<t) over the A answer tokens
(the final EOS included) and A' = A - 1 the tokens before that EOS:

* LOSS (Yeom et al. 2018):          s = -Lbar
* ZLib (Carlini et al. 2021):        s = -Lbar / zlib(a), zlib(a) = bytes of zlib-compressed answer
* Min-K% (Shi et al. 2024, k=0.4):   s = mean of the lowest max(1, floor(k A')) log p(a_t | ...)
  over the A' tokens before the EOS
* Min-K%++ (Zhang et al. 2025):      s = the same mean over z_t = (log p(a_t) - mu_t) / sigma_t,
  mu_t, sigma_t^2 the mean and variance of log p(v) for v ~ p(. | q, a_<t)
* Reference (Carlini et al. 2022):   s = -(Lbar - Lbar_ref), Lbar_ref under a reference model
* GradNorm (Wang et al. 2024):       s = -g, g = 1/|P| sum_{W in P} ||dLbar'/dW||_2 over the
  parameter tensors P, Lbar' the mean NLL of the A' tokens before the EOS (open-unlearning's
  statistic)

The EOS rule is the field's: open-unlearning keeps the final EOS in the mean NLL of Probability,
LOSS, ZLib and Reference, and drops it (``tokenwise_logprobs``) for Min-K%, Min-K%++ and
GradNorm. An answer with no token but its EOS keeps it. Scores are oriented "higher = member"
here; open-unlearning negates them and labels the holdout 1, which gives the same AUC.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence

import numpy as np

from unlearnkit.eval.metrics.answer_tokens import AnswerTokens
from unlearnkit.eval.metrics.specs import register_metric

MIN_K = 0.4  # share of the lowest-scoring tokens Min-K% and Min-K%++ average


def mia_auc(member_scores: Sequence[float], nonmember_scores: Sequence[float]) -> float:
    """AUC of membership scores (higher = member): members labelled 1, non-members 0."""
    from sklearn.metrics import roc_auc_score  # imported here: the CLI and report start faster

    if not member_scores or not nonmember_scores:
        raise ValueError(
            f"mia_auc needs members and non-members, got {len(member_scores)} and "
            f"{len(nonmember_scores)}"
        )
    labels = [1] * len(member_scores) + [0] * len(nonmember_scores)
    scores = np.asarray([*member_scores, *nonmember_scores], dtype=np.float64)
    if not np.isfinite(scores).all():
        raise ValueError("mia_auc: membership scores must be finite")
    return float(roc_auc_score(labels, scores))


def _lowest_mean(values: np.ndarray, k: float) -> float:
    n = max(1, math.floor(k * values.size))
    return float(np.sort(values)[:n].mean())


@register_metric(
    "mia_loss",
    label="MIA LOSS",
    higher_is_better=False,
    needs=("token_logprobs", "holdout"),
    kind="mia",
    description="AUC of the LOSS attack (mean answer NLL), forget vs holdout",
)
def loss_score(tokens: AnswerTokens) -> float:
    """s = -Lbar."""
    return -tokens.mean_nll


@register_metric(
    "mia_zlib",
    label="MIA ZLib",
    higher_is_better=False,
    needs=("token_logprobs", "holdout"),
    kind="mia",
    description="AUC of the ZLib attack (NLL / zlib-compressed length), forget vs holdout",
)
def zlib_score(tokens: AnswerTokens) -> float:
    """s = -Lbar / len(zlib.compress(answer as UTF-8))."""
    return -tokens.mean_nll / len(zlib.compress(tokens.text.encode("utf-8")))


@register_metric(
    "mia_min_k",
    label="MIA Min-K",
    higher_is_better=False,
    needs=("token_logprobs", "holdout"),
    kind="mia",
    description="AUC of Min-K% (k = 0.4: mean of the lowest 40% token log-probs)",
)
def min_k_score(tokens: AnswerTokens) -> float:
    """s = mean of the lowest max(1, floor(0.4 A')) log-probabilities of the tokens before the
    EOS."""
    return _lowest_mean(np.asarray(tokens.field_view().logp, dtype=np.float64), MIN_K)


@register_metric(
    "mia_min_k_plus_plus",
    label="MIA Min-K++",
    higher_is_better=False,
    needs=("token_logprobs", "holdout"),
    kind="mia",
    description="AUC of Min-K%++ (k = 0.4, token log-probs standardised by the model's own "
    "next-token distribution)",
)
def min_k_plus_plus_score(tokens: AnswerTokens) -> float:
    """s = mean of the lowest max(1, floor(0.4 A')) z_t = (log p(a_t) - mu_t) / sigma_t over the
    tokens before the EOS.

    A position whose distribution is a single token (sigma_t = 0) has z_t = 0: its token is
    exactly as likely as the model expects (0/0 otherwise).
    """
    tokens = tokens.field_view()
    logp = np.asarray(tokens.logp, dtype=np.float64)
    mu = np.asarray(tokens.mean_logp, dtype=np.float64)
    sigma = np.sqrt(np.clip(np.asarray(tokens.var_logp, dtype=np.float64), 0.0, None))
    z = np.divide(logp - mu, sigma, out=np.zeros_like(logp), where=sigma > 0)
    return _lowest_mean(z, MIN_K)


@register_metric(
    "mia_reference",
    label="MIA Ref",
    higher_is_better=False,
    needs=("token_logprobs", "holdout", "reference_model"),
    kind="mia",
    description="AUC of the Reference attack (NLL minus a reference model's NLL)",
)
def reference_score(tokens: AnswerTokens) -> float | None:
    """s = -(Lbar - Lbar_ref); None without the reference model's value."""
    if tokens.reference_nll is None:
        return None
    return -(tokens.mean_nll - tokens.reference_nll)


@register_metric(
    "mia_gradnorm",
    label="MIA GradNorm",
    higher_is_better=False,
    needs=("holdout", "gradients"),
    kind="mia",
    description="AUC of the GradNorm attack (mean per-tensor gradient norm of the answer NLL "
    "before its EOS)",
)
def gradnorm_score(tokens: AnswerTokens) -> float | None:
    """s = -g; None when the gradient norm was not computed."""
    return None if tokens.grad_norm is None else -tokens.grad_norm
