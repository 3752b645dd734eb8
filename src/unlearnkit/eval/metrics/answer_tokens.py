"""One item's answer under teacher forcing, token by token: the input of the memorization
metrics and of the membership-inference attacks (:mod:`unlearnkit.eval.token_stats` fills it)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(eq=False)
class AnswerTokens:
    """The A tokens of an answer (its end-of-sequence token included) given the question.

    ``logp``: (A,) log p(a_t | q, a_<t); ``greedy_hit``: (A,) whether argmax_v p(v | q, a_<t)
    is a_t; ``mean_logp``: (A,) mu_t = sum_v p(v) log p(v) and ``var_logp``: (A,)
    sigma_t^2 = sum_v p(v) (log p(v))^2 - mu_t^2, the mean and variance of the log-probability
    of a token drawn from the model's own next-token distribution (Min-K%++).
    ``grad_norm``: the GradNorm statistic, ``reference_nll``: the mean answer NLL under a
    reference model; None when not computed.
    """

    text: str
    logp: np.ndarray
    greedy_hit: np.ndarray
    mean_logp: np.ndarray
    var_logp: np.ndarray
    grad_norm: float | None = None
    reference_nll: float | None = None

    def __post_init__(self) -> None:
        n = len(self.logp)
        if n == 0:
            raise ValueError("AnswerTokens: an answer has at least one token (its EOS)")
        for name in ("greedy_hit", "mean_logp", "var_logp"):
            if len(getattr(self, name)) != n:
                raise ValueError(
                    f"AnswerTokens.{name} has {len(getattr(self, name))} values, not {n}"
                )

    @property
    def mean_nll(self) -> float:
        """Lbar = -1/A sum_t log p(a_t | q, a_<t), the value the Probability metric uses."""
        return float(-np.mean(np.asarray(self.logp, dtype=np.float64)))
