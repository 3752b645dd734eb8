"""Evaluation engines: everything the runner asks of the evaluated model, behind one interface.

An engine answers four requests (lm-evaluation-harness's ``LM`` is the model to follow):

* ``generate(splits)``: greedy answers to every split's questions, pooled into one pass;
* ``score(questions, answers, bases, perturbed)``: teacher-forced mean answer NLLs
  ``Lbar(a | q) = -1/|a| sum_t log p(a_t | q, a_<t)`` of a split's answers, Truth Ratio bases and
  perturbed answers (:func:`unlearnkit.eval.scoring.score_split`);
* ``token_stats(questions, answers)``: per-token log-probabilities of the answers and the
  statistics the memorization metrics and membership-inference attacks read
  (:class:`unlearnkit.eval.metrics.AnswerTokens`);
* ``grad_norms(questions, answers)``: the GradNorm attack's per-item gradient norm.

It owns batching, token budgets, tokenization (separate or joint), the shared-prefix prefill,
the in-place key/value cache and the reuse of generation's prompt states by ``score``: those
states are kept inside the engine, handed to the first ``score`` of the same question (in
generation order) and freed then; a new ``generate`` drops any left over.

Two engines compute the same numbers:

* :class:`FastEngine`: the fast path (:mod:`~unlearnkit.eval.generation`,
  :mod:`~unlearnkit.eval.kv_cache`, :mod:`~unlearnkit.eval.scoring`);
* :class:`ReferenceEngine`: one item at a time, ``model.generate`` and full-sequence forward
  passes, no cache reuse; slow, for tests that hold the fast path to it.

Both apply the profile's rules (:class:`EngineSettings`): the token budget (``default``: per item;
``paper``: per batch of 30 consecutive items of a split, :func:`batch_budgets`), whether texts are
stripped, whether question and answer are tokenized as one string, and the float32 reduction over
the vocabulary (``paper``: the paper's layout, :func:`~unlearnkit.eval.scoring.token_nlls`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from transformers import PreTrainedModel

from unlearnkit.config import EvalConfig
from unlearnkit.data.formatting import PromptFormatter
from unlearnkit.eval.generation import Generation, batch_budgets, generate_answers
from unlearnkit.eval.metrics.answer_tokens import AnswerTokens
from unlearnkit.eval.scoring import PromptState, score_split
from unlearnkit.eval.token_stats import answer_grad_norms, answer_token_stats

# open-unlearning's generation has no limit on prompt + new tokens (max_new_tokens only).
OU_NO_LENGTH_CAP = 2**31 - 1


@dataclass(frozen=True)
class EngineSettings:
    """What an engine needs from the evaluation config and the profile."""

    batch_size: int  # teacher-forcing batch
    generation_batch_size: int | None  # None: the largest batch whose cache fits cache_bytes
    max_new_tokens: int
    generation_max_length: int
    cache_bytes: int = 4 * 2**30  # generation's key/value cache (automatic batch)
    prompt_state_bytes: int = 0  # generation's prompt states kept for scoring
    paper: bool = False  # the paper's budgets, unstripped texts, joint tokenization
    # open-unlearning's evaluator: joint tokenization, its collator's attention mask (0 at every
    # pad-token id), its float32 reduction, max_new_tokens without a prompt-length cap
    open_unlearning: bool = False

    @classmethod
    def from_config(cls, cfg: EvalConfig, profile: str = "default") -> EngineSettings:
        paper = profile == "paper"
        ou = profile == "open-unlearning"
        return cls(
            batch_size=cfg.batch_size,
            generation_batch_size=cfg.generation_batch_size,
            max_new_tokens=cfg.max_new_tokens,
            # open-unlearning generates max_new_tokens whatever the prompt's length
            generation_max_length=OU_NO_LENGTH_CAP if ou else cfg.generation_max_length,
            cache_bytes=cfg.generation_cache_mib * 2**20,
            # the paper's joint tokenization scores from other prompts than generation's
            prompt_state_bytes=0 if paper or ou else cfg.prompt_cache_mib * 2**20,
            paper=paper,
            open_unlearning=ou,
        )

    @property
    def joint(self) -> bool:
        """Question and answer tokenized as one string (the paper's and open-unlearning's)."""
        return self.paper or self.open_unlearning


class Engine(Protocol):
    """What the runner asks of a model (see the module docstring)."""

    settings: EngineSettings

    def generate(self, splits: Mapping[str, list[str]]) -> dict[str, list[Generation]]: ...

    def score(
        self,
        questions: list[str],
        answers: list[str],
        bases: list[str] | None,
        perturbed: list[list[str]] | None,
        desc: str = "score",
    ) -> dict[str, np.ndarray]: ...

    def token_stats(self, questions: list[str], answers: list[str]) -> list[AnswerTokens]: ...

    def grad_norms(self, questions: list[str], answers: list[str]) -> list[float]: ...


class _BaseEngine:
    """The profile's budget rule and the requests both engines answer alike."""

    #: score one item at a time over full sequences (the reference), not in shared batches
    _one_item = False

    def __init__(
        self,
        model: PreTrainedModel,
        formatter: PromptFormatter,
        settings: EngineSettings,
        pad_id: int,
        progress: bool = False,
    ) -> None:
        self.model, self.formatter, self.settings = model, formatter, settings
        self.pad_id, self.progress = pad_id, progress

    def _budgets(self, splits: Mapping[str, list[str]]) -> list[int] | None:
        """The paper's budgets (per batch of 30 consecutive items of each split), else None
        (:func:`~unlearnkit.eval.generation.token_budget` of each item's own prompt)."""
        if not self.settings.paper:
            return None
        out: list[int] = []
        for questions in splits.values():
            lens = [len(self.formatter.encode_prompt(q)) for q in questions]
            out += batch_budgets(
                lens, self.settings.max_new_tokens, self.settings.generation_max_length
            )
        return out

    def _generate(
        self,
        splits: Mapping[str, list[str]],
        batch_size: int | None,
        prune: bool,
        states_out: list[PromptState | None] | None,
    ) -> dict[str, list[Generation]]:
        """Every split's questions in one pooled call (sorted by length, batches filled across
        splits), cut back into splits."""
        questions = [q for qs in splits.values() for q in qs]
        gens = generate_answers(
            self.model,
            self.formatter,
            questions,
            batch_size=batch_size,
            cache_bytes=self.settings.cache_bytes,
            max_new_tokens=self.settings.max_new_tokens,
            generation_max_length=self.settings.generation_max_length,
            pad_id=self.pad_id,
            desc="generate",
            progress=self.progress,
            prune=prune,
            prompt_state_bytes=self.settings.prompt_state_bytes if states_out is not None else 0,
            budgets=self._budgets(splits),
            strip=not self.settings.paper,
            states_out=states_out,
            mask_pad=self.settings.open_unlearning,
        )
        out: dict[str, list[Generation]] = {}
        start = 0
        for name, qs in splits.items():
            out[name] = gens[start : start + len(qs)]
            start += len(qs)
        return out

    def _take_state(self, question: str) -> PromptState | None:
        """A prompt state generation saved for ``question`` (none on this engine)."""
        return None

    @property
    def _batch_size(self) -> int:
        """Items per scoring batch: the configured size, or one item at a time (reference)."""
        return 1 if self._one_item else self.settings.batch_size

    def score(
        self,
        questions: list[str],
        answers: list[str],
        bases: list[str] | None,
        perturbed: list[list[str]] | None,
        desc: str = "score",
    ) -> dict[str, np.ndarray]:
        states = [self._take_state(q) for q in questions]
        return score_split(
            self.model,
            self.formatter,
            questions,
            answers,
            bases,
            perturbed,
            batch_size=self._batch_size,
            pad_id=self.pad_id,
            desc=desc,
            progress=self.progress,
            shared=not self._one_item,
            prompt_states=states if any(st is not None for st in states) else None,
            joint=self.settings.joint,
            # open-unlearning reduces as the paper's code does (cross_entropy on (B, V, T))
            paper_rounding=self.settings.joint,
            mask_pad=self.settings.open_unlearning,
        )

    def token_stats(self, questions: list[str], answers: list[str]) -> list[AnswerTokens]:
        return answer_token_stats(
            self.model,
            self.formatter,
            questions,
            answers,
            batch_size=self._batch_size,
            pad_id=self.pad_id,
            progress=self.progress,
            open_unlearning=self.settings.open_unlearning,
        )

    def grad_norms(self, questions: list[str], answers: list[str]) -> list[float]:
        """GradNorm statistic per item (one backward pass each; no batching to share)."""
        return answer_grad_norms(
            self.model,
            self.formatter,
            questions,
            answers,
            pad_id=self.pad_id,
            open_unlearning=self.settings.open_unlearning,
        )


class FastEngine(_BaseEngine):
    """The fast path: length-sorted batches, shared-prefix prefill, in-place key/value cache,
    finished rows dropped, and generation's prompt states reused by :meth:`score`."""

    def __init__(
        self,
        model: PreTrainedModel,
        formatter: PromptFormatter,
        settings: EngineSettings,
        pad_id: int,
        progress: bool = False,
    ) -> None:
        super().__init__(model, formatter, settings, pad_id, progress)
        # question -> its generations' prompt states (None where over the memory budget), in
        # generation order; each is handed to one score and dropped.
        self._states: dict[str, deque[PromptState | None]] = {}

    @property
    def held_prompt_states(self) -> int:
        """Prompt states generated and not yet scored (held in memory)."""
        return sum(st is not None for q in self._states.values() for st in q)

    def release(self) -> None:
        """Drop every prompt state still held."""
        self._states.clear()

    def generate(self, splits: Mapping[str, list[str]]) -> dict[str, list[Generation]]:
        self.release()
        states: list[PromptState | None] = []
        out = self._generate(splits, self.settings.generation_batch_size, True, states)
        if states:  # aligned with the pooled questions
            for q, st in zip((q for qs in splits.values() for q in qs), states, strict=True):
                self._states.setdefault(q, deque()).append(st)
        return out

    def _take_state(self, question: str) -> PromptState | None:
        """The next held state of ``question`` (generation order), freed from the engine."""
        held = self._states.get(question)
        if not held:
            return None
        state = held.popleft()
        if not held:
            del self._states[question]
        return state


class ReferenceEngine(_BaseEngine):
    """One item at a time: ``model.generate`` for the answers, full-sequence forward passes for
    the likelihoods; no padding between items, no cache reuse."""

    _one_item = True

    def generate(self, splits: Mapping[str, list[str]]) -> dict[str, list[Generation]]:
        return self._generate(splits, 1, False, None)
