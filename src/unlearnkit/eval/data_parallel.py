"""Data-parallel evaluation: several processes (``torchrun`` / ``accelerate launch``) share the
items, the main process gathers them and writes what a one-process run writes.

Process r of W evaluates items r, r + W, r + 2W, ... of every split (the holdout too; under the
``paper`` profile whole blocks of 30 consecutive items, the paper's generation batches, so each
item keeps its paper generation budget) with
:func:`unlearnkit.eval.runner.evaluate`; the per-item records are gathered on the main process
and put back in their one-process order. Every split value and every aggregate (Model Utility,
Forget Efficacy, Forget Quality, the membership-inference AUCs, privacy leakage) is recomputed
from the gathered per-item values by the runner's own functions
(:func:`~unlearnkit.eval.registered_metrics.split_values`,
:func:`~unlearnkit.eval.registered_metrics.privacy_aggregates`), so the result equals a
one-process run up to the float rounding of different batch compositions.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from unlearnkit.config import EvalConfig
from unlearnkit.data.formatting import PromptFormatter
from unlearnkit.data.records import QAItem
from unlearnkit.eval import metrics as M
from unlearnkit.eval import registered_metrics as R
from unlearnkit.eval.generation import PAPER_GENERATION_BATCH
from unlearnkit.eval.protocol import EvalProtocol, protocol_for
from unlearnkit.eval.runner import (
    evaluate,
    load_retain_truth_ratios,
    select_splits,
)
from unlearnkit.utils import atomic_write_json, read_jsonl, write_jsonl


def shard_indices(n: int, world: int, rank: int, block: int = 1) -> list[int]:
    """The item indices (of ``n``) process ``rank`` of ``world`` evaluates: blocks of ``block``
    consecutive items dealt round-robin (block 1: items rank, rank + W, ...)."""
    return [i for i in range(n) if (i // block) % world == rank]


def shard_block(profile: str) -> int:
    """Items dealt together: the paper's generation batch under ``paper`` (budgets are per batch
    of consecutive items), else one."""
    return PAPER_GENERATION_BATCH if profile == "paper" else 1


def _gather_records(
    shards: list[dict[str, list[dict[str, Any]]]], sets: dict[str, list[QAItem]], block: int
) -> dict[str, list[dict[str, Any]]]:
    """Every split's records (of ``sets`` that the shards hold) in their one-process order."""
    records: dict[str, list[dict[str, Any]]] = {}
    for name in [n for n in sets if n in shards[0]]:
        out: list[dict[str, Any] | None] = [None] * len(sets[name])
        for rank, recs in enumerate(shards):
            positions = shard_indices(len(sets[name]), len(shards), rank, block)
            for i, rec in zip(positions, recs[name], strict=True):
                out[i] = {**rec, "index": i}
        records[name] = out  # type: ignore[assignment]
    return records


def merge_shards(
    shards: list[tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]],
    sets: dict[str, list[QAItem]],
    cfg: EvalConfig,
    benchmark_kind: str | EvalProtocol,
    block: int = 1,
) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """(summary, records) of the whole evaluation from each process's (summary, records),
    process r holding :func:`shard_indices` (W = len(shards)) of every split in ``sets``."""
    protocol = protocol_for(benchmark_kind)
    forget, holdout = protocol.forget_split, protocol.holdout_split
    base = shards[0][0]
    records = _gather_records([recs for _, recs in shards], sets, block)
    splits = [n for n in records if n != holdout]
    values = {n: R.split_values(records[n]) for n in splits}  # as the runner reads them
    missing: dict[str, str] = {}
    for summary, _ in shards:
        missing.update(summary["missing"])
    retain_ratios = None
    if cfg.retain_eval and forget in sets:
        retain_ratios = load_retain_truth_ratios(cfg.retain_eval, sets[forget])
    forget_ratios = [r["truth_ratio_raw"] for r in records[forget]] if forget in records else None
    aggregates = R.protocol_aggregates(
        values, protocol, forget_ratios, retain_ratios, missing, forget_evaluated=forget in sets
    )  # the same path as a one-process evaluation
    for key in base["aggregates"]:  # the attacks and PrivLeak: None unless computed below
        aggregates.setdefault(key, None)
    privacy: dict[str, Any] = {}
    if holdout in records:
        for spec in M.metrics_of_kind("mia"):
            missing.pop(spec.name, None)
        reference = (
            R.load_retain_reference(cfg.retain_eval, sets.get(forget), sets.get(holdout))
            if cfg.retain_eval
            else None
        )
        agg, over, miss, privacy = R.privacy_aggregates(records, protocol, reference)
        aggregates.update(agg)
        aggregates["computed_over"].update(over)
        missing.update(miss)
    summary = {
        **base,
        "cache_key": None,  # each process's key covers its shard only
        "n_items": {n: len(sets[n]) for n in splits},
        "splits": values,
        "aggregates": aggregates,
        "privacy": privacy,
        "missing": missing,
        "empty_generations": {n: sum(1 for r in records[n] if not r["generation"]) for n in splits},
        "timings": base["timings"],  # the main process's
        "timings_per_process": [s["timings"] for s, _ in shards],
        "timings_per_split": base["timings_per_split"],
        "processes": len(shards),
    }
    return summary, records


def evaluate_data_parallel(
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
) -> dict[str, Any] | None:
    """:func:`~unlearnkit.eval.runner.evaluate` over every process of the launch; one process:
    exactly ``evaluate``. Every process must call it; the main process writes ``out_dir`` and
    returns the summary, the others return None."""
    from accelerate import PartialState

    state = PartialState()
    world, rank = state.num_processes, state.process_index
    if world == 1:
        return evaluate(model_or_path, tokenizer, eval_sets, cfg, out_dir, formatter,
                        benchmark_kind, model_name=model_name, progress=progress,
                        profile=profile)  # fmt: skip
    cfg = protocol_for(benchmark_kind).effective_config(cfg, profile)
    sets = select_splits(eval_sets, cfg)  # ds_size and eval.splits apply before sharding
    small = {n: len(items) for n, items in sets.items() if len(items) < world}
    if small:
        raise ValueError(f"data-parallel evaluation over {world} processes: splits {small} "
                         "have fewer items than processes")  # fmt: skip
    block = shard_block(profile)
    shard = {
        name: [items[i] for i in shard_indices(len(items), world, rank, block)]
        for name, items in sets.items()
    }
    shard_cfg = dataclasses.replace(cfg, splits=None, ds_size=None, use_cache=False)
    with tempfile.TemporaryDirectory() as tmp:
        summary = evaluate(model_or_path, tokenizer, shard, shard_cfg, tmp, formatter,
                           benchmark_kind, model_name=model_name,
                           progress=progress and state.is_main_process,
                           profile=profile)  # fmt: skip
        records = {
            n: read_jsonl(Path(tmp) / f"{n}.jsonl")
            for n in shard
            if (Path(tmp) / f"{n}.jsonl").is_file()
        }
    import torch.distributed as dist

    gathered: list[Any] | None = [None] * world if state.is_main_process else None
    dist.gather_object((summary, records), gathered, dst=0)
    if not state.is_main_process:
        return None
    merged, all_records = merge_shards(gathered, sets, cfg, benchmark_kind, block)  # type: ignore[arg-type]
    out = Path(out_dir)
    for name, recs in all_records.items():
        write_jsonl(out / f"{name}.jsonl", recs)
    atomic_write_json(out / "summary.json", merged)
    return merged
