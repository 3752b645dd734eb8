"""Exact memorization and extraction strength of an answer under teacher forcing.

Both read the greedy next-token predictions along the reference answer a = (a_1 .. a_A), its
final end-of-sequence token left out as the field does (open-unlearning's
``tokenwise_vocab_logprobs`` drops the last labelled position; :meth:`AnswerTokens.field_view`):
hit_t = [argmax_v p(v | q, a_<t) = a_t] for t = 1 .. A, A counting the answer's text tokens.
"""

from __future__ import annotations

import numpy as np

from unlearnkit.eval.metrics.answer_tokens import AnswerTokens
from unlearnkit.eval.metrics.specs import register_metric


@register_metric(
    "exact_memorization",
    label="EM",
    higher_is_better=True,
    needs=("token_logprobs",),
    kind="answer_tokens",
    description="share of answer tokens the greedy next-token prediction gets right",
)
def exact_memorization(tokens: AnswerTokens) -> float:
    """EM = 1/A sum_t hit_t over the answer's tokens before its EOS (Tirumala et al. 2022)."""
    return float(np.mean(np.asarray(tokens.field_view().greedy_hit, dtype=np.float64)))


@register_metric(
    "extraction_strength",
    label="ExS",
    higher_is_better=True,
    needs=("token_logprobs",),
    kind="answer_tokens",
    description="1 - (shortest answer prefix after which the rest is predicted exactly) / length",
)
def extraction_strength(tokens: AnswerTokens) -> float:
    """ES = 1 - k*/A with k* = min {k in 0..A : hit_t for every t > k} (Carlini et al. 2021).

    Over the answer's tokens before its EOS. k* = 0 when every token is predicted (ES = 1);
    k* = A when even the last one is not (ES = 0). open-unlearning's loop stops at k = A - 1, so
    there an answer whose last token is missed scores 1/A (docs/open-unlearning.md).
    """
    hits = np.asarray(tokens.field_view().greedy_hit, dtype=bool)  # (A,)
    n = hits.size
    misses = np.flatnonzero(~hits)
    k = 0 if misses.size == 0 else int(misses[-1]) + 1  # the suffix after the last miss is exact
    if tokens.rule == "open-unlearning":
        k = min(k, n - 1)  # its ``for k in range(valid_len)`` ends at A - 1
    return 1.0 - k / n
