"""The evaluation runner: one pass per split, auxiliary models loaded once, results cached.

For every split: greedy generation (:mod:`unlearnkit.eval.generation`), teacher-forced NLLs of the
answer, the Truth Ratio base and the perturbed answers (:mod:`unlearnkit.eval.scoring`), then the
six metrics of :mod:`unlearnkit.eval.metrics` with the references of
:mod:`unlearnkit.eval.split_specs`. Writes ``<out_dir>/<split>.jsonl`` (one record per item with
every per-item value) and ``<out_dir>/summary.json`` (metrics, aggregates, missing metrics with
their reasons, timings per phase). See docs/DESIGN.md, section Evaluation.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from transformers import PreTrainedModel, PreTrainedTokenizerBase

import unlearnkit
from unlearnkit.config import PROFILES, EvalConfig
from unlearnkit.data.formatting import PromptFormatter
from unlearnkit.data.records import QAItem
from unlearnkit.eval import cache as result_cache
from unlearnkit.eval import metrics as M
from unlearnkit.eval import registered_metrics as R
from unlearnkit.eval.generation import Generation, batch_budgets, generate_answers
from unlearnkit.eval.scoring import score_split
from unlearnkit.eval.split_specs import SplitSpec, split_spec, validate_split
from unlearnkit.eval.threads import with_eval_threads
from unlearnkit.models.loading import ensure_pad_token, load_model
from unlearnkit.utils import atomic_write_json, read_json, read_jsonl, write_jsonl

log = logging.getLogger(__name__)

GENERATION_RULES = {
    "default": (
        "greedy; new tokens per item = min(max_new_tokens, generation_max_length - prompt tokens); "
        "stops at the end-of-sequence tokens (tokenizer and generation_config)"
    ),
    "paper": (
        "greedy; new tokens per item = min(max_new_tokens, generation_max_length - longest prompt "
        "of its batch of 30 consecutive items of the split); stops at the end-of-sequence tokens "
        "(tokenizer and generation_config); text not stripped"
    ),
}


# Default NLI batch on CPU (eval.nli_batch_size unset): there a larger batch is slower, not faster.
NLI_CPU_BATCH = 4


class _Timer:
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


def check_eval_config(cfg: EvalConfig) -> None:
    """Range checks for an EvalConfig built in code (load_config validates the CLI/YAML path)."""
    for name in (
        "batch_size",
        "generation_batch_size",
        "generation_cache_mib",
        "max_new_tokens",
        "generation_max_length",
    ):
        value = getattr(cfg, name)
        if name == "generation_batch_size" and value is None:
            continue  # auto
        if not isinstance(value, int) or value <= 0:
            raise ValueError(f"eval.{name} must be a positive integer, got {value!r}")
    if cfg.ds_size is not None and cfg.ds_size <= 0:
        raise ValueError(f"eval.ds_size must be > 0 or null, got {cfg.ds_size}")


def effective_eval_config(cfg: EvalConfig, profile: str, benchmark_kind: str) -> EvalConfig:
    """The evaluation settings a profile implies: under ``paper`` the real-world benchmark
    evaluates every item (the paper's real-world config sets ``ds_size: null``; its TOFU config
    keeps 300)."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile '{profile}'; choose from {', '.join(PROFILES)}")
    if profile == "paper" and benchmark_kind == "real_world" and cfg.ds_size is not None:
        return dataclasses.replace(cfg, ds_size=None)
    return cfg


def select_splits(eval_sets: dict[str, list[QAItem]], cfg: EvalConfig) -> dict[str, list[QAItem]]:
    """The splits named by ``cfg.splits`` (all when None), each capped at its first ``ds_size``."""
    names = list(eval_sets) if cfg.splits is None else list(cfg.splits)
    unknown = [s for s in names if s not in eval_sets]
    if unknown:
        raise ValueError(
            f"unknown evaluation split(s) {', '.join(unknown)}; choose from {', '.join(eval_sets)}"
        )
    if not names:
        raise ValueError("no evaluation split selected (eval.splits is empty)")
    cap = cfg.ds_size
    return {s: list(eval_sets[s][:cap] if cap is not None else eval_sets[s]) for s in names}


def load_retain_truth_ratios(retain_eval: str | Path, forget: list[QAItem]) -> list[float]:
    """Per-item forget-set truth ratios R of a retain model, aligned with ``forget``.

    ``retain_eval``: the retain model's evaluation folder (or its ``summary.json``) holding
    ``forget.jsonl``. Items are matched by question; a question the retain model was not
    evaluated on is a ValueError (Forget Quality must compare the same items).
    """
    path = Path(retain_eval).expanduser()
    folder = path.parent if path.is_file() else path
    records_path = folder / "forget.jsonl"
    if not records_path.is_file():
        raise ValueError(
            f"eval.retain_eval: {records_path} not found; point it at the evaluation folder of "
            "a retain model (holding summary.json and forget.jsonl)"
        )
    by_question: dict[str, float] = {}
    for line_no, rec in enumerate(read_jsonl(records_path), start=1):
        if "question" not in rec or rec.get("truth_ratio_raw") is None:
            raise ValueError(f"{records_path}, line {line_no}: no 'question'/'truth_ratio_raw'")
        by_question[rec["question"]] = float(rec["truth_ratio_raw"])
    absent = [it.question for it in forget if it.question not in by_question]
    if absent:
        raise ValueError(
            f"eval.retain_eval: the retain model's evaluation ({records_path}) lacks "
            f"{len(absent)} of the {len(forget)} forget questions (first: {absent[0][:80]!r}); "
            "evaluate the retain model on the same split, task and ds_size"
        )
    return [by_question[it.question] for it in forget]


def _aux_now_available(cached: Path, cfg: EvalConfig) -> bool:
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


def _load_aux(cfg: EvalConfig, timer: _Timer, missing: dict[str, str]) -> tuple[Any, Any]:
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


def _generate_all(
    sets: dict[str, list[QAItem]],
    model: PreTrainedModel,
    formatter: PromptFormatter,
    cfg: EvalConfig,
    pad_id: int,
    progress: bool,
    profile: str = "default",
) -> dict[str, list[Generation]]:
    """Greedy answers for every split in one pass over the questions.

    Pooling the splits lets the generator sort every prompt by length and fill its batches
    across splits (fewer, fuller batches); each answer depends only on its own prompt and its
    token budget. Under the ``paper`` profile the budgets are the paper's, set per batch of 30
    consecutive items of each split (:func:`batch_budgets`), and the texts are not stripped.
    """
    questions = [it.question for items in sets.values() for it in items]
    paper = profile == "paper"
    budgets = None
    if paper:
        budgets = []
        for items in sets.values():
            lens = [len(formatter.encode_prompt(it.question)) for it in items]
            budgets += batch_budgets(lens, cfg.max_new_tokens, cfg.generation_max_length)
    gens = generate_answers(
        model,
        formatter,
        questions,
        batch_size=cfg.generation_batch_size,
        cache_bytes=cfg.generation_cache_mib * 2**20,
        max_new_tokens=cfg.max_new_tokens,
        generation_max_length=cfg.generation_max_length,
        pad_id=pad_id,
        desc="generate",
        progress=progress,
        # the paper's joint tokenization scores from other prompts than generation's
        prompt_state_bytes=0 if paper else cfg.prompt_cache_mib * 2**20,
        budgets=budgets,
        strip=not paper,
    )
    out: dict[str, list[Generation]] = {}
    start = 0
    for name, items in sets.items():
        out[name] = gens[start : start + len(items)]
        start += len(items)
    return out


def _split_values(
    name: str,
    items: list[QAItem],
    gens: list[Generation],
    spec: SplitSpec,
    model: PreTrainedModel,
    formatter: PromptFormatter,
    cfg: EvalConfig,
    pad_id: int,
    timer: _Timer,
    progress: bool,
    profile: str = "default",
) -> tuple[list[dict[str, Any]], dict[str, float | None], list[float]]:
    """Teacher forcing + generation metrics of one split (aux metrics come later).

    Returns the per-item records, the split's metric values and the per-item truth ratios R.
    Under the ``paper`` profile question and answer are tokenized as one string
    (:meth:`PromptFormatter.encode_joint`) and the vocabulary is reduced with the paper's float32
    rounding (:func:`unlearnkit.eval.scoring.token_nlls`).
    """
    questions = [it.question for it in items]
    base_is_answer = spec.truth_ratio_base == spec.probability_reference
    with timer.phase("teacher_forcing", name):
        nll = score_split(
            model,
            formatter,
            questions,
            [getattr(it, spec.probability_reference) for it in items],
            # When the Truth Ratio base is the scored answer itself (real authors, world facts),
            # it is scored once and reused rather than run through the model a second time.
            None if base_is_answer else [getattr(it, spec.truth_ratio_base) for it in items],
            [list(it.perturbed_answers) for it in items],
            batch_size=cfg.batch_size,
            pad_id=pad_id,
            desc=f"score {name}",
            progress=progress,
            prompt_states=[g.prompt_state for g in gens],
            joint=profile == "paper",
            paper_rounding=profile == "paper",
        )
        for g in gens:
            g.prompt_state = None  # scored: free the memory
        if base_is_answer:
            nll["base"] = nll["answer"]
    no_room = sum(1 for g in gens if g.budget == 0)
    if no_room:
        log.warning(
            "%s: %d prompts are at least eval.generation_max_length (%d) tokens long: their "
            "generations are empty",
            name,
            no_room,
            cfg.generation_max_length,
        )
    texts = [g.text for g in gens]
    rouge_refs = [getattr(it, spec.rouge_reference) for it in items]
    with timer.phase("rouge_l", name):
        rouge = M.rouge_l_recall_batch(texts, rouge_refs)
    with timer.phase("token_entropy", name):
        tokenizer = formatter.tokenizer
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


@with_eval_threads
def evaluate(
    model_or_path: PreTrainedModel | str | Path,
    tokenizer: PreTrainedTokenizerBase | None,
    eval_sets: dict[str, list[QAItem]],
    cfg: EvalConfig,
    out_dir: str | Path,
    formatter: PromptFormatter | None = None,
    benchmark_kind: str = "tofu",
    *,
    model_name: str | None = None,
    progress: bool = True,
    profile: str = "default",
) -> dict[str, Any]:
    """Evaluate a model on ``eval_sets`` and write ``<out_dir>/<split>.jsonl`` + ``summary.json``.

    ``model_or_path``: a loaded causal LM (then ``tokenizer`` is required) or anything
    :func:`unlearnkit.models.loading.load_model` accepts. ``formatter`` defaults to the chat
    preset. A tokenizer without a pad token gets the documented fallback of
    :func:`unlearnkit.models.loading.ensure_pad_token` (pad = eos; padding is always masked).
    With ``cfg.use_cache`` an unchanged (weights, config, template, data) evaluation is copied
    from the cache instead of recomputed. Returns the summary dict. The model's train/eval mode
    is restored on return.

    ``profile``: ``default`` (our choices) or ``paper`` (the paper code's evaluation: joint
    question+answer tokenization, its batch-dependent generation budget, unstripped texts,
    real-world Probability on ``golden_answer`` over every item; docs/paper-differences.md,
    section Evaluation).
    """
    cfg = effective_eval_config(cfg, profile, benchmark_kind)
    check_eval_config(cfg)
    timer = _Timer()
    t_start = time.perf_counter()
    out = Path(out_dir)
    if isinstance(model_or_path, (str, Path)):
        with timer.phase("load_model"):
            model, loaded_tok = load_model(model_or_path)
        tokenizer = tokenizer or loaded_tok
        model_name = model_name or str(model_or_path)
    else:
        model = model_or_path
        if tokenizer is None:
            raise ValueError("evaluate: a tokenizer is required when a model object is given")
        model_name = model_name or str(getattr(model.config, "_name_or_path", "") or "model")
    ensure_pad_token(tokenizer)
    pad_id = int(tokenizer.pad_token_id)
    formatter = formatter or PromptFormatter(tokenizer)

    sets = select_splits(eval_sets, cfg)
    # The holdout split (non-members of the membership-inference attacks) is only scored,
    # against the forget split.
    holdout = sets.pop(R.HOLDOUT_SPLIT, None)
    holdout = holdout if "forget" in sets else None
    saved_splits = [*sets, *([R.HOLDOUT_SPLIT] if holdout else [])]
    specs = {name: split_spec(benchmark_kind, name, profile) for name in sets}
    for name, items in sets.items():
        validate_split(name, items, specs[name])
    retain_ratios = None
    if cfg.retain_eval and "forget" in sets:
        retain_ratios = load_retain_truth_ratios(cfg.retain_eval, sets["forget"])
    reference = R.load_retain_reference(cfg.retain_eval) if cfg.retain_eval else None

    with timer.phase("fingerprint"):
        fingerprint = result_cache.weights_fingerprint(model)
    settings = {
        k: v
        for k, v in dataclasses.asdict(cfg).items()
        if k not in ("use_cache", "prompt_cache_mib", "threads")
    }
    settings["retain_eval"] = None  # the path does not matter, its truth ratios do (below)
    settings["profile"] = profile
    key = result_cache.cache_key(
        fingerprint,
        settings,
        formatter.template_info(),
        {
            name: [it.to_dict() for it in items]
            for name, items in {**sets, R.HOLDOUT_SPLIT: holdout or []}.items()
        },
        benchmark_kind,
        extra={
            "retain_truth_ratios": retain_ratios,
            "retain_reference": reference.to_key() if reference else None,
        },
    )
    if cfg.use_cache:
        hit = result_cache.lookup(key, saved_splits)
        if hit is not None and not _aux_now_available(hit, cfg):
            log.info("evaluation unchanged (key %s): reusing %s", key[:12], hit)
            result_cache.copy_result(hit, out, saved_splits)
            return read_json(out / "summary.json")

    missing: dict[str, str] = {}
    embedder, nli = _load_aux(cfg, timer, missing)
    records: dict[str, list[dict[str, Any]]] = {}
    values: dict[str, dict[str, float | None]] = {}
    ratios: dict[str, list[float]] = {}
    privacy: R.PrivacyResult | None = None
    was_training = model.training
    model.eval()
    try:
        with timer.phase("generate"):
            generations = _generate_all(sets, model, formatter, cfg, pad_id, progress, profile)
        for name, items in sets.items():
            records[name], values[name], ratios[name] = _split_values(
                name,
                items,
                generations[name],
                specs[name],
                model,
                formatter,
                cfg,
                pad_id,
                timer,
                progress,
                profile,
            )
        with timer.phase("registered_metrics"):
            R.add_generation_metrics(records, values)
            if "forget" in sets:
                privacy = R.memorization_and_privacy(
                    model,
                    formatter,
                    sets["forget"],
                    holdout,
                    batch_size=cfg.batch_size,
                    pad_id=pad_id,
                    reference=reference,
                    gradnorm=cfg.mia_gradnorm,
                    progress=progress,
                )
    finally:
        model.train(was_training)

    # The auxiliary models score every split's pairs in one call each (sorted, fuller batches).
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

    if retain_ratios is None and "forget" in sets and benchmark_kind != "real_world":
        missing["forget_quality"] = (
            "no retain model evaluation given (eval.retain_eval / --retain-eval)"
        )
    aggregates = M.aggregate(
        values,
        "tofu" if benchmark_kind == "synthetic" else benchmark_kind,
        forget_truth_ratios=ratios.get("forget") if retain_ratios is not None else None,
        retain_truth_ratios=retain_ratios,
    )
    R.open_unlearning_utility(values, aggregates)
    if privacy is not None:
        for r, extra in zip(records["forget"], privacy.forget_items, strict=True):
            r.update(extra)
        values["forget"].update(privacy.forget_values)
        aggregates.update(privacy.aggregates)
        aggregates["computed_over"].update(privacy.computed_over)
        missing.update(privacy.missing)
        if privacy.holdout_records:
            records[R.HOLDOUT_SPLIT] = privacy.holdout_records
    empty = {n: sum(1 for r in records[n] if not r["generation"]) for n in sets}
    for name, count in empty.items():
        if count:
            log.warning("%s: %d of %d generations are empty", name, count, len(records[name]))

    summary: dict[str, Any] = {
        "model": model_name,
        "fingerprint": fingerprint,
        "cache_key": key,
        "benchmark": benchmark_kind,
        "profile": profile,
        "eval_config": dataclasses.asdict(cfg),
        "template": formatter.template_info(),
        "generation": GENERATION_RULES[profile],
        "n_items": {n: len(items) for n, items in sets.items()},
        "splits": values,
        "aggregates": aggregates,
        "privacy": privacy.details if privacy is not None else {},
        "missing": missing,
        "empty_generations": empty,
        "timings": {},
        "timings_per_split": dict(timer.per_split),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "unlearnkit_version": unlearnkit.__version__,
    }
    with timer.phase("write"):
        for name, recs in records.items():
            write_jsonl(out / f"{name}.jsonl", recs)
        summary["timings"] = {k: round(v, 3) for k, v in timer.total.items()}
        summary["timings"]["total"] = round(time.perf_counter() - t_start, 3)
        atomic_write_json(out / "summary.json", summary)  # written last: marks a complete result
        if cfg.use_cache:
            folder = result_cache.cache_dir(key)
            for name in saved_splits:
                write_jsonl(folder / f"{name}.jsonl", records[name])
            atomic_write_json(folder / "summary.json", summary)
    return summary
