"""What the engine and the auxiliary models produced for one split: the input of every registered
metric's computation (:mod:`unlearnkit.eval.registered_metrics` gathers it and computes them)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from unlearnkit.data.records import QAItem
from unlearnkit.eval.metrics._rouge import rouge_l_recall_batch
from unlearnkit.eval.metrics.answer_tokens import AnswerTokens
from unlearnkit.eval.split_specs import SplitSpec

if TYPE_CHECKING:  # torch and transformers stay out of the registry's imports (CLI, report)
    from transformers import PreTrainedTokenizerBase

    from unlearnkit.eval.generation import Generation


@dataclass(eq=False)
class SplitOutputs:
    """One split's products. An evaluated split has its spec, generations and teacher-forced
    NLLs; the holdout (non-members, scored only for membership inference) has neither. The
    forget split and the holdout have their answers' token statistics.

    ``nll``: the teacher-forced mean answer NLLs, ``answer`` and ``base`` (N,) and ``perturbed``
    (N, K). ``membership``: the items are ranked by the membership-inference attacks (the forget
    split and the holdout, when there is a holdout). ``cosine``, ``entailment``: the auxiliary
    models' per-item values (None: the model could not be loaded).
    """

    items: list[QAItem]
    spec: SplitSpec | None = None
    generations: list[Generation] | None = None
    tokenizer: PreTrainedTokenizerBase | None = None  # the evaluated model's
    nll: dict[str, Any] | None = None
    open_unlearning: bool = False  # the open-unlearning profile's Truth Ratio
    tokens: list[AnswerTokens] | None = None
    membership: bool = False
    cosine: list[float] | None = None
    entailment: list[float] | None = None

    @property
    def evaluated(self) -> bool:
        return self.generations is not None

    @property
    def texts(self) -> list[str]:
        return [g.text for g in self.generations or []]

    def references(self, kind: str) -> list[str]:
        """Each item's reference answer of ``kind`` (``rouge``, ``cosine``, ``entailment``,
        ``probability``), as the split's spec names it."""
        field = getattr(self.spec, f"{kind}_reference")
        return [getattr(it, field) for it in self.items]

    @cached_property
    def rouge_l(self) -> list[float]:
        """ROUGE-L recall of each generation against the split's ROUGE reference: the metric
        and the Entailment Score's gate (computed once)."""
        return rouge_l_recall_batch(self.texts, self.references("rouge"))
