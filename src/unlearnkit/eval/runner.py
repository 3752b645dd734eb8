"""The evaluation runner: reads the benchmark's protocol, asks the engine, computes the metrics,
aggregates and writes.

:func:`evaluate` resolves everything once (:func:`plan_evaluation`: the protocol's splits and
references, the profile's settings, the retain model's saved values), then
:func:`run_evaluation` asks the engine (:mod:`unlearnkit.eval.engine`) once for every split's
generations (pooled) and per split for the teacher-forced NLLs (:mod:`unlearnkit.eval.split_metrics`
gathers these products), computes every registered metric from them, the paper's six included
(:mod:`unlearnkit.eval.registered_metrics`), and aggregates them as the protocol says. The result
cache (:func:`unlearnkit.eval.cache.cached`) wraps the run. Writes ``<out_dir>/<split>.jsonl``
(one record per item with every per-item value) and ``<out_dir>/summary.json`` (metrics,
aggregates, missing metrics with their reasons, timings per phase). See docs/DESIGN.md, section
Evaluation.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from transformers import PreTrainedModel, PreTrainedTokenizerBase

import unlearnkit
from unlearnkit.config import EvalConfig
from unlearnkit.data.formatting import PromptFormatter
from unlearnkit.data.records import QAItem
from unlearnkit.eval import cache as result_cache
from unlearnkit.eval import open_unlearning_logs as OU
from unlearnkit.eval import registered_metrics as R
from unlearnkit.eval.engine import EngineSettings, FastEngine
from unlearnkit.eval.metrics.outputs import SplitOutputs
from unlearnkit.eval.metrics.specs import registered_metrics
from unlearnkit.eval.protocol import EvalProtocol, protocol_for
from unlearnkit.eval.split_metrics import (
    NLI_CPU_BATCH,
    PhaseTimer,
    add_answer_tokens,
    aux_now_available,
    load_aux,
    score_aux,
    split_outputs,
)
from unlearnkit.eval.split_specs import SplitSpec, validate_split
from unlearnkit.eval.threads import with_eval_threads
from unlearnkit.models.loading import ensure_pad_token, load_model
from unlearnkit.utils import atomic_write_json, read_jsonl, write_jsonl

log = logging.getLogger(__name__)

__all__ = ["NLI_CPU_BATCH", "EvalPlan", "evaluate", "plan_evaluation", "run_evaluation"]

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
    "open-unlearning": (
        "greedy; max_new_tokens new tokens per item whatever the prompt's length; prompt tokens "
        "equal to the pad token get attention 0 (its collator); decoded by model.generate; stops "
        "at the end-of-sequence tokens"
    ),
}


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
    ``forget.jsonl``, or open-unlearning's logs file (``TOFU_EVAL.json``,
    :mod:`unlearnkit.eval.open_unlearning_logs`, matched by row index). Items are matched by
    question; a question the retain model was not evaluated on is a ValueError (Forget Quality
    must compare the same items).
    """
    path = Path(retain_eval).expanduser()
    ou_logs = OU.read_logs(path)
    if ou_logs is not None:
        return OU.truth_ratios(path, ou_logs, forget)
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


@dataclass
class EvalPlan:
    """An evaluation resolved once, before any model work."""

    protocol: EvalProtocol
    profile: str
    cfg: EvalConfig  # as the profile implies it for this benchmark
    sets: dict[str, list[QAItem]]  # the evaluated splits, capped at ds_size
    specs: dict[str, SplitSpec]  # each split's references
    holdout: list[QAItem] | None  # non-members, scored against the forget split only
    retain_ratios: list[float] | None  # the retain model's forget truth ratios (Forget Quality)
    reference: R.RetainReference | None  # the retain model's saved evaluation (privacy)

    @property
    def forget(self) -> list[QAItem] | None:
        return self.sets.get(self.protocol.forget_split)

    @property
    def saved_splits(self) -> list[str]:
        """The splits written: the evaluated ones, then the holdout's records."""
        return [*self.sets, *([self.protocol.holdout_split] if self.holdout else [])]


def plan_evaluation(
    eval_sets: dict[str, list[QAItem]],
    cfg: EvalConfig,
    benchmark: str | EvalProtocol,
    profile: str = "default",
) -> EvalPlan:
    """The protocol's splits (``cfg.splits``, ``ds_size``) with their references, validated,
    and the retain model's saved values; every error here comes before any model work."""
    protocol = protocol_for(benchmark)
    cfg = protocol.effective_config(cfg, profile)
    check_eval_config(cfg)
    sets = select_splits(eval_sets, cfg)
    holdout = sets.pop(protocol.holdout_split, None)
    specs = {name: protocol.split_spec(name, profile) for name in sets}
    for name, items in sets.items():
        validate_split(name, items, specs[name])
    forget = sets.get(protocol.forget_split)
    retain_ratios = None
    if cfg.retain_eval and forget is not None:
        retain_ratios = load_retain_truth_ratios(cfg.retain_eval, forget)
    reference = (
        R.load_retain_reference(cfg.retain_eval, forget, holdout) if cfg.retain_eval else None
    )
    holdout = holdout if forget is not None else None
    return EvalPlan(protocol, profile, cfg, sets, specs, holdout, retain_ratios, reference)


def _cache_key(plan: EvalPlan, fingerprint: str, formatter: PromptFormatter) -> str:
    """The result cache's key: weights, the settings that change a number, template, data."""
    settings = {
        k: v
        for k, v in dataclasses.asdict(plan.cfg).items()
        if k not in ("use_cache", "prompt_cache_mib", "threads")
    }
    settings["retain_eval"] = None  # the path does not matter, its truth ratios do (below)
    settings["profile"] = plan.profile
    data = {**plan.sets, plan.protocol.holdout_split: plan.holdout or []}
    return result_cache.cache_key(
        fingerprint,
        settings,
        formatter.template_info(),
        {name: [it.to_dict() for it in items] for name, items in data.items()},
        plan.protocol.kind,
        extra={
            "metrics": registered_metrics(),
            "retain_truth_ratios": plan.retain_ratios,
            "retain_reference": plan.reference.to_key() if plan.reference else None,
        },
    )


def run_evaluation(
    model: PreTrainedModel,
    formatter: PromptFormatter,
    plan: EvalPlan,
    pad_id: int,
    timer: PhaseTimer,
    progress: bool = True,
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, Any]]:
    """The evaluation proper: (records per split, summary without the model's identity).

    The engine generates for every split at once (pooled: fuller batches) and scores each split;
    the auxiliary models then score every split at once; every registered metric is computed
    from these products (:func:`R.metric_records`); the aggregates are the protocol's.
    """
    missing: dict[str, str] = {}
    embedder, nli = load_aux(plan.cfg, timer, missing)
    outputs = _engine_pass(model, formatter, plan, pad_id, timer, progress)
    score_aux(outputs, embedder, nli, plan.cfg, plan.profile, timer)
    records = R.metric_records(outputs, timer)
    values = {name: R.split_values(records[name]) for name in plan.sets}
    aggregates = _aggregates(plan, records, values, missing)
    privacy: dict[str, Any] = {}
    if plan.forget is not None:
        agg, computed_over, privacy_missing, privacy = R.privacy_aggregates(
            records, plan.protocol, plan.reference
        )
        aggregates.update(agg)
        aggregates["computed_over"].update(computed_over)
        missing.update(privacy_missing)
    return records, _summary(plan, formatter, records, values, aggregates, privacy, missing, timer)


def _engine_pass(
    model: PreTrainedModel,
    formatter: PromptFormatter,
    plan: EvalPlan,
    pad_id: int,
    timer: PhaseTimer,
    progress: bool,
) -> dict[str, SplitOutputs]:
    """What the model itself computes: every split's generations and scores, the answers'
    token statistics of the forget split and the holdout (then last). The model's train/eval
    mode is restored on return."""
    cfg = plan.cfg
    engine = FastEngine(model, formatter, EngineSettings.from_config(cfg, plan.profile), pad_id,
                        progress)  # fmt: skip
    outputs: dict[str, SplitOutputs] = {}
    was_training = model.training
    model.eval()
    try:
        with timer.phase("generate"):
            generations = engine.generate(
                {name: [it.question for it in items] for name, items in plan.sets.items()}
            )
        for name, items in plan.sets.items():
            outputs[name] = split_outputs(
                name, items, generations[name], plan.specs[name], engine, formatter.tokenizer,
                cfg.generation_max_length, timer,
            )  # fmt: skip
        forget = outputs.get(plan.protocol.forget_split)
        if forget is not None:
            with timer.phase("answer_tokens"):
                holdout = add_answer_tokens(engine, forget, plan.holdout, plan.reference,
                                            cfg.mia_gradnorm)  # fmt: skip
            if holdout is not None:
                outputs[plan.protocol.holdout_split] = holdout
    finally:
        engine.release()
        model.train(was_training)
    return outputs


def _aggregates(
    plan: EvalPlan,
    records: dict[str, list[dict[str, Any]]],
    values: dict[str, dict[str, float | None]],
    missing: dict[str, str],
) -> dict[str, Any]:
    """The protocol's aggregates of this evaluation (:func:`R.protocol_aggregates`)."""
    forget = plan.protocol.forget_split
    ratios = [r["truth_ratio_raw"] for r in records[forget]] if forget in plan.sets else None
    return R.protocol_aggregates(
        values, plan.protocol, ratios, plan.retain_ratios, missing,
        forget_evaluated=plan.forget is not None,
    )  # fmt: skip


def _summary(
    plan: EvalPlan,
    formatter: PromptFormatter,
    records: dict[str, list[dict[str, Any]]],
    values: dict[str, dict[str, float | None]],
    aggregates: dict[str, Any],
    privacy: dict[str, Any],
    missing: dict[str, str],
    timer: PhaseTimer,
) -> dict[str, Any]:
    """``summary.json``'s body (the model's identity and the timings are added by the caller);
    warns about splits with empty generations."""
    empty = {n: sum(1 for r in records[n] if not r["generation"]) for n in plan.sets}
    for name, count in empty.items():
        if count:
            log.warning("%s: %d of %d generations are empty", name, count, len(records[name]))
    return {
        "benchmark": plan.protocol.kind,
        "profile": plan.profile,
        "eval_config": dataclasses.asdict(plan.cfg),
        "template": formatter.template_info(),
        "generation": GENERATION_RULES[plan.profile],
        "n_items": {n: len(items) for n, items in plan.sets.items()},
        "splits": values,
        "aggregates": aggregates,
        "privacy": privacy,
        "missing": missing,
        "empty_generations": empty,
        "timings": {},
        "timings_per_split": dict(timer.per_split),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "unlearnkit_version": unlearnkit.__version__,
    }


def _write(
    out: Path,
    records: dict[str, list[dict[str, Any]]],
    summary: dict[str, Any],
    timer: PhaseTimer,
    t_start: float,
) -> None:
    """``<split>.jsonl`` for every split, then ``summary.json`` (last: it marks a complete
    result) with the timings."""
    with timer.phase("write"):
        for name, recs in records.items():
            write_jsonl(out / f"{name}.jsonl", recs)
        summary["timings"] = {k: round(v, 3) for k, v in timer.total.items()}
        summary["timings"]["total"] = round(time.perf_counter() - t_start, 3)
        atomic_write_json(out / "summary.json", summary)


def _model_of(
    model_or_path: PreTrainedModel | str | Path,
    tokenizer: PreTrainedTokenizerBase | None,
    model_name: str | None,
    timer: PhaseTimer,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, str]:
    """(model, tokenizer, name) of :func:`evaluate`'s argument: a folder or hub id is loaded, a
    model object needs its tokenizer."""
    if isinstance(model_or_path, (str, Path)):
        with timer.phase("load_model"):
            model, loaded_tok = load_model(model_or_path)
        return model, tokenizer or loaded_tok, model_name or str(model_or_path)
    if tokenizer is None:
        raise ValueError("evaluate: a tokenizer is required when a model object is given")
    name = model_name or str(getattr(model_or_path.config, "_name_or_path", "") or "model")
    return model_or_path, tokenizer, name


@with_eval_threads
def evaluate(
    model_or_path: PreTrainedModel | str | Path,
    tokenizer: PreTrainedTokenizerBase | None,
    eval_sets: dict[str, list[QAItem]],
    cfg: EvalConfig,
    out_dir: str | Path,
    formatter: PromptFormatter | None = None,
    benchmark_kind: str | EvalProtocol = "tofu",
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
    ``benchmark_kind``: a benchmark kind or its :class:`~unlearnkit.eval.protocol.EvalProtocol`.
    With ``cfg.use_cache`` an unchanged (weights, config, template, data) evaluation is copied
    from the cache instead of recomputed. Returns the summary dict. The model's train/eval mode
    is restored on return.

    ``profile``: ``default`` (our choices) or ``paper`` (the paper code's evaluation: joint
    question+answer tokenization, its batch-dependent generation budget, unstripped texts,
    real-world Probability on ``golden_answer`` over every item; docs/paper-differences.md,
    section Evaluation).
    """
    timer = PhaseTimer()
    t_start = time.perf_counter()
    plan = plan_evaluation(eval_sets, cfg, benchmark_kind, profile)
    model, tokenizer, model_name = _model_of(model_or_path, tokenizer, model_name, timer)
    ensure_pad_token(tokenizer)
    formatter = formatter or PromptFormatter(tokenizer)
    with timer.phase("fingerprint"):
        fingerprint = result_cache.weights_fingerprint(model)
    key = _cache_key(plan, fingerprint, formatter)
    out = Path(out_dir)

    def run() -> dict[str, Any]:
        pad_id = int(tokenizer.pad_token_id)  # type: ignore[union-attr]
        records, body = run_evaluation(model, formatter, plan, pad_id, timer, progress)
        summary = {"model": model_name, "fingerprint": fingerprint, "cache_key": key, **body}
        _write(out, records, summary, timer, t_start)
        return summary

    return result_cache.cached(
        key,
        plan.saved_splits,
        out,
        run,
        enabled=plan.cfg.use_cache,
        stale=lambda hit: aux_now_available(hit, plan.cfg),
    )
