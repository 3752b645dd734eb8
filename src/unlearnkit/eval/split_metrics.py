"""What the engine and the auxiliary models produce for each split: the input of every registered
metric (:mod:`unlearnkit.eval.registered_metrics` computes them; the references are those of
:mod:`unlearnkit.eval.split_specs`).

:func:`split_outputs` gathers one split's generations and teacher-forced NLLs,
:func:`add_answer_tokens` the answers' token statistics of the forget split and the holdout, and
:func:`score_aux` the auxiliary models' values of every split at once (one call per model).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from transformers import PreTrainedTokenizerBase

from unlearnkit.config import EvalConfig
from unlearnkit.data.records import QAItem
from unlearnkit.eval import metrics as M
from unlearnkit.eval.engine import Engine
from unlearnkit.eval.generation import Generation
from unlearnkit.eval.metrics.outputs import SplitOutputs
from unlearnkit.eval.split_specs import SplitSpec
from unlearnkit.utils import read_json

log = logging.getLogger(__name__)

# Default NLI batch on CPU (eval.nli_batch_size unset): there a larger batch is slower, not faster.
NLI_CPU_BATCH = 4


class PhaseTimer:
    """Wall-clock seconds per phase, summed over splits and kept per split."""

    def __init__(self) -> None:
        self.total: dict[str, float] = defaultdict(float)
        self.per_split: dict[str, dict[str, float]] = defaultdict(dict)

    @contextmanager
    def phase(self, name: str, split: str | None = None) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - start, split)

    def add(self, name: str, elapsed: float, split: str | None = None) -> None:
        self.total[name] += elapsed
        if split is not None:
            self.per_split[split][name] = round(elapsed, 3)


def aux_now_available(cached: Path, cfg: EvalConfig) -> bool:
    """True when a cached result lacks a metric whose auxiliary model can be loaded now (e.g. the
    NLI model was offline then): the result is then recomputed rather than reused."""
    missing = read_json(cached / "summary.json").get("missing", {})
    loaders = {
        "cosine_similarity": lambda: M.get_embedding_scorer(cfg.embedding_model),
        "entailment": lambda: M.get_entailment_scorer(cfg.nli_model),
    }
    for metric, load in loaders.items():
        if metric in missing:
            try:
                load()
            except M.AuxModelUnavailable:
                continue
            return True
    return False


def load_aux(cfg: EvalConfig, timer: PhaseTimer, missing: dict[str, str]) -> tuple[Any, Any]:
    """The embedding and NLI scorers (each loaded once per process) or None with the reason."""
    embedder = nli = None
    with timer.phase("load_embedding_model"):
        try:
            embedder = M.get_embedding_scorer(cfg.embedding_model)
        except M.AuxModelUnavailable as err:
            missing["cosine_similarity"] = f"no embedding model could be loaded: {err.reason}"
    with timer.phase("load_nli_model"):
        try:
            nli = M.get_entailment_scorer(cfg.nli_model)
        except M.AuxModelUnavailable as err:
            missing["entailment"] = f"no NLI model could be loaded: {err.reason}"
    for metric, reason in missing.items():
        log.warning("%s will be reported as missing: %s", metric, reason)
    return embedder, nli


def split_outputs(
    name: str,
    items: list[QAItem],
    gens: list[Generation],
    spec: SplitSpec,
    engine: Engine,
    tokenizer: PreTrainedTokenizerBase,
    generation_max_length: int,
    timer: PhaseTimer,
) -> SplitOutputs:
    """One evaluated split's products: its generations and the teacher-forced NLLs of its
    answers, (paraphrased) Truth Ratio bases and perturbed answers."""
    base_is_answer = spec.truth_ratio_base == spec.probability_reference
    with timer.phase("teacher_forcing", name):
        nll = engine.score(
            [it.question for it in items],
            [getattr(it, spec.probability_reference) for it in items],
            # When the Truth Ratio base is the scored answer itself (real authors, world facts),
            # it is scored once and reused rather than run through the model a second time.
            None if base_is_answer else [getattr(it, spec.truth_ratio_base) for it in items],
            [list(it.perturbed_answers) for it in items],
            desc=f"score {name}",
        )
        if base_is_answer:
            nll["base"] = nll["answer"]
    no_room = sum(1 for g in gens if g.budget == 0)
    if no_room:
        log.warning(
            "%s: %d prompts are at least eval.generation_max_length (%d) tokens long: their "
            "generations are empty",
            name,
            no_room,
            generation_max_length,
        )
    return SplitOutputs(items, spec, gens, tokenizer, nll, engine.settings.open_unlearning)


def add_answer_tokens(
    engine: Engine,
    forget: SplitOutputs,
    holdout: list[QAItem] | None,
    reference: Any,
    gradnorm: bool,
) -> SplitOutputs | None:
    """The answers' token statistics of the forget split (memorization) and, with ``holdout``,
    of the holdout's items too, with what the attacks need (gradient norms, the reference
    model's NLLs: ``reference``, a :class:`~unlearnkit.eval.registered_metrics.RetainReference`
    or None); returns the holdout's outputs (None without a holdout)."""
    items = forget.items + (holdout or [])
    stats = engine.token_stats([it.question for it in items], [it.answer for it in items])
    n = len(forget.items)
    forget.tokens = stats[:n]
    if not holdout:
        return None
    attacks = M.metrics_of_kind("mia")
    if gradnorm and any("gradients" in s.needs for s in attacks):
        norms = engine.grad_norms([it.question for it in items], [it.answer for it in items])
        for t, g in zip(stats, norms, strict=True):
            t.grad_norm = g
    if reference is not None:
        for it, t in zip(items, stats, strict=True):
            t.reference_nll = reference.nll.get(it.question)
    forget.membership = True
    return SplitOutputs(holdout, tokens=stats[n:], membership=True)


def score_aux(
    outputs: dict[str, SplitOutputs],
    embedder: Any,
    nli: Any,
    cfg: EvalConfig,
    profile: str,
    timer: PhaseTimer,
) -> None:
    """The auxiliary models' per-item values (cosine similarity, entailment) of every evaluated
    split, into its outputs (a model that is None: left None). Each model scores every split's
    pairs in one call (sorted, fuller batches)."""
    splits = {name: out for name, out in outputs.items() if out.evaluated}
    if embedder is not None:
        with timer.phase("cosine_similarity"):
            cos = embedder.cosine(
                [g for out in splits.values() for g in out.texts],
                [r for out in splits.values() for r in out.references("cosine")],
                batch_size=max(cfg.batch_size, 32),
                embed_empty=profile == "paper",  # the paper embeds "" like any text
            )
        start = 0
        for out in splits.values():
            out.cosine = cos[start : start + len(out.items)]
            start += len(out.items)
    if nli is not None:
        with timer.phase("entailment"):
            scores = nli.entailment_scores(
                {
                    name: (
                        out.texts,
                        out.references("entailment"),
                        out.rouge_l,  # the gate: ROUGE-L against its own reference
                        out.spec.entailment_order,  # type: ignore[union-attr]
                    )
                    for name, out in splits.items()
                },
                batch_size=cfg.nli_batch_size
                or (NLI_CPU_BATCH if str(nli.device) == "cpu" else cfg.batch_size),
            )
        for name, (_, per_item) in scores.items():
            splits[name].entailment = per_item
