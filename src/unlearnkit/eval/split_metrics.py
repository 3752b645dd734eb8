"""The paper's six metrics of each split, from the engine's generations and NLLs and from the
auxiliary models (Yuan et al. 2025; the references of :mod:`unlearnkit.eval.split_specs`).

:func:`split_values` computes ROUGE-L, Token Entropy, Probability and Truth Ratio of one split
and its per-item records; :func:`add_aux_metrics` adds Cosine Similarity and the Entailment Score
of every split at once (one call per auxiliary model).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from transformers import PreTrainedTokenizerBase

from unlearnkit.config import EvalConfig
from unlearnkit.data.records import QAItem
from unlearnkit.eval import metrics as M
from unlearnkit.eval.engine import Engine
from unlearnkit.eval.generation import Generation
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
            elapsed = time.perf_counter() - start
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


def split_values(
    name: str,
    items: list[QAItem],
    gens: list[Generation],
    spec: SplitSpec,
    engine: Engine,
    tokenizer: PreTrainedTokenizerBase,
    generation_max_length: int,
    timer: PhaseTimer,
) -> tuple[list[dict[str, Any]], dict[str, float | None], list[float]]:
    """Teacher forcing + generation metrics of one split (aux metrics come later).

    Returns the per-item records, the split's metric values and the per-item truth ratios R.
    """
    questions = [it.question for it in items]
    base_is_answer = spec.truth_ratio_base == spec.probability_reference
    with timer.phase("teacher_forcing", name):
        nll = engine.score(
            questions,
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
    texts = [g.text for g in gens]
    rouge_refs = [getattr(it, spec.rouge_reference) for it in items]
    with timer.phase("rouge_l", name):
        rouge = M.rouge_l_recall_batch(texts, rouge_refs)
    with timer.phase("token_entropy", name):
        # The generation's tokens under the evaluated model's tokenizer (re-tokenized text, so the
        # value can be recomputed from the saved record).
        gen_tokens = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
        entropy = [M.token_entropy(toks) for toks in gen_tokens]
    with timer.phase("probability_truth_ratio", name):
        p_answer = M.probability_per_item(nll["answer"])
        if spec.normalized_probability:
            p_item = M.normalized_probability_per_item(nll["answer"], nll["perturbed"])
        else:
            p_item = p_answer
        if engine.settings.open_unlearning:  # its 1e-10, and its forget direction (1 - ours)
            ratios = M.truth_ratio_per_item_open_unlearning(nll["base"], nll["perturbed"])
            tr_item = M.truth_ratio_scores_open_unlearning(ratios, forget=spec.forget)
        else:
            ratios = M.truth_ratio_per_item(nll["base"], nll["perturbed"])
            tr_item = M.truth_ratio_scores(ratios, forget=spec.forget)

    records = []
    for i, (it, g) in enumerate(zip(items, gens, strict=True)):
        records.append(
            {
                "index": i,
                "question": it.question,
                "answer": it.answer,
                "probability_reference": spec.probability_reference,
                "generation": g.text,
                "rouge_reference": rouge_refs[i],
                "cosine_reference": getattr(it, spec.cosine_reference),
                "entailment_reference": getattr(it, spec.entailment_reference),
                "truth_ratio_base": spec.truth_ratio_base,
                "rouge_l": rouge[i],
                "token_entropy": entropy[i],
                "n_generated_tokens": len(g.token_ids),
                "token_budget": g.budget,
                "hit_token_budget": g.hit_budget,
                "nll_answer": float(nll["answer"][i]),
                "answer_probability": p_answer[i],
                "probability": p_item[i],
                "nll_base": float(nll["base"][i]),
                "nll_perturbed": [float(x) for x in nll["perturbed"][i]],
                "truth_ratio_raw": ratios[i],
                "truth_ratio": tr_item[i],
                "cosine_similarity": None,
                "entailment": None,
            }
        )
    values: dict[str, float | None] = {
        "rouge_l": float(np.mean(rouge)),
        "probability": float(np.mean(p_item)),
        "truth_ratio": float(np.mean(tr_item)),
        "token_entropy": float(np.mean(entropy)),
        "cosine_similarity": None,
        "entailment": None,
    }
    return records, values, ratios


def _by_split(records: dict[str, list[Any]], flat: list[float]) -> dict[str, list[float]]:
    """Cut a list of per-item values over all splits (in ``records`` order) back into splits."""
    out, start = {}, 0
    for name, recs in records.items():
        out[name] = flat[start : start + len(recs)]
        start += len(recs)
    return out


def add_aux_metrics(
    records: dict[str, list[dict[str, Any]]],
    values: dict[str, dict[str, float | None]],
    specs: dict[str, SplitSpec],
    embedder: Any,
    nli: Any,
    cfg: EvalConfig,
    profile: str,
    timer: PhaseTimer,
) -> None:
    """Cosine similarity and the Entailment Score of every split, per item and per split, from
    the auxiliary models (None: left as None). Each model scores every split's pairs in one call
    (sorted, fuller batches)."""
    if embedder is not None:
        with timer.phase("cosine_similarity"):
            cos = embedder.cosine(
                [r["generation"] for recs in records.values() for r in recs],
                [r["cosine_reference"] for recs in records.values() for r in recs],
                batch_size=max(cfg.batch_size, 32),
                embed_empty=profile == "paper",  # the paper embeds "" like any text
            )
        for name, part in _by_split(records, cos).items():
            for r, c in zip(records[name], part, strict=True):
                r["cosine_similarity"] = c
            values[name]["cosine_similarity"] = float(np.mean(part))
    if nli is not None:
        with timer.phase("entailment"):
            scores = nli.entailment_scores(
                {
                    name: (
                        [r["generation"] for r in recs],
                        [r["entailment_reference"] for r in recs],
                        [r["rouge_l"] for r in recs],  # the gate: ROUGE-L vs its own reference
                        specs[name].entailment_order,
                    )
                    for name, recs in records.items()
                },
                batch_size=cfg.nli_batch_size
                or (NLI_CPU_BATCH if str(nli.device) == "cpu" else cfg.batch_size),
            )
        for name, (score, per_item) in scores.items():
            for r, e in zip(records[name], per_item, strict=True):
                r["entailment"] = e
            values[name]["entailment"] = score
