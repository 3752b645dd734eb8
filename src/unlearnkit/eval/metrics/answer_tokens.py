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
    reference model; None when not computed. ``rule``: ``"open-unlearning"`` under that profile
    (extraction strength then follows its loop), else ``"default"``.
    """

    text: str
    logp: np.ndarray
    greedy_hit: np.ndarray
    mean_logp: np.ndarray
    var_logp: np.ndarray
    grad_norm: float | None = None
    reference_nll: float | None = None
    # "open-unlearning": the metrics follow that profile's rules (extraction strength's loop)
    rule: str = "default"
    # open-unlearning's mean answer NLL (its float32 cross-entropy over the transposed logits,
    # summed then divided), which its LOSS, ZLib and Reference attacks read; None = from logp
    reduced_nll: float | None = None

    def __post_init__(self) -> None:
        n = len(self.logp)
        if n == 0:
            raise ValueError("AnswerTokens: an answer has at least one token (its EOS)")
        for name in ("greedy_hit", "mean_logp", "var_logp"):
            if len(getattr(self, name)) != n:
                raise ValueError(
                    f"AnswerTokens.{name} has {len(getattr(self, name))} values, not {n}"
                )

    def field_view(self) -> AnswerTokens:
        """The answer without its final token (the end-of-sequence token), as the field scores
        exact memorization, extraction strength, Min-K% and Min-K%++ (open-unlearning's
        ``tokenwise_logprobs``/``tokenwise_vocab_logprobs`` drop the last labelled position).

        An answer with no token but its EOS (A = 1) keeps it: there is nothing else to score.
        Probability and the LOSS, ZLib and Reference attacks keep the EOS (:attr:`mean_nll`).
        """
        if len(self.logp) < 2:
            return self
        return AnswerTokens(
            text=self.text,
            logp=np.asarray(self.logp)[:-1],
            greedy_hit=np.asarray(self.greedy_hit)[:-1],
            mean_logp=np.asarray(self.mean_logp)[:-1],
            var_logp=np.asarray(self.var_logp)[:-1],
            grad_norm=self.grad_norm,
            reference_nll=self.reference_nll,
            rule=self.rule,
        )  # reduced_nll is the whole answer's: not the view's

    @property
    def mean_nll(self) -> float:
        """Lbar = -1/A sum_t log p(a_t | q, a_<t), the value the Probability metric uses
        (:attr:`reduced_nll` when set: open-unlearning's own float32 reduction of it)."""
        if self.reduced_nll is not None:
            return float(self.reduced_nll)
        return float(-np.mean(np.asarray(self.logp, dtype=np.float64)))
