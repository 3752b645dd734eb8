"""Forget Quality of finished runs, computed after the fact against a retain model's evaluation.

A run evaluated without a retain model (``eval.retain_eval`` unset) still saved every forget
item's truth ratio R (``truth_ratio_raw`` in ``eval/<stage>/forget.jsonl``). Forget Quality is
the KS test of those R against the retain model's R on the same questions, so it can be computed
later, once a retain model exists: the same per-item values and the same function
(:func:`unlearnkit.eval.metrics.forget_quality`) as the evaluation's own. ``unlearn claims
--retain-eval forget01=DIR`` uses it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from unlearnkit.data.records import QAItem
from unlearnkit.utils import read_jsonl


def parse_retain_evals(specs: Sequence[str]) -> dict[str, Path]:
    """``["forget01=DIR", ...]`` -> {split: folder}; each folder must hold ``forget.jsonl``."""
    out: dict[str, Path] = {}
    for spec in specs:
        split, sep, folder = spec.partition("=")
        if not sep or not split or not folder:
            raise ValueError(
                f"--retain-eval {spec!r}: give SPLIT=FOLDER, e.g. forget01=runs/r/eval"
            )
        path = Path(folder).expanduser()
        if not (path / "forget.jsonl").is_file():
            raise FileNotFoundError(
                f"--retain-eval {spec!r}: {path / 'forget.jsonl'} not found (the retain model's "
                "evaluation folder: unlearn eval --model <retain model> --split " + split + ")"
            )
        out[split] = path
    return out


def add_forget_quality(rows: list[dict[str, Any]], retain_evals: Mapping[str, Path]) -> int:
    """Fill ``forget_quality`` of every fictitious row whose split has a retain evaluation and
    that has none of its own, from its ``forget.jsonl``; marks it ``forget_quality_after``.
    Returns how many rows were filled."""
    from unlearnkit.eval.metrics import forget_quality
    from unlearnkit.eval.runner import load_retain_truth_ratios

    filled = 0
    for row in rows:
        ref = retain_evals.get(str(row.get("split")))
        if ref is None or row.get("scenario") != "fictitious":
            continue
        if row.get("forget_quality") is not None or not row.get("run_dir"):
            continue
        records = Path(row["run_dir"]) / "eval" / str(row.get("stage")) / "forget.jsonl"
        if not records.is_file():
            continue
        recs = list(read_jsonl(records))
        items = [QAItem(question=r["question"], answer=r["answer"]) for r in recs]
        retain = load_retain_truth_ratios(ref, items)
        row["forget_quality"] = forget_quality([r["truth_ratio_raw"] for r in recs], retain)
        row["forget_quality_after"] = f"{ref.parent.name}/{ref.name}"  # no local path
        filled += 1
    return filled


__all__ = ["add_forget_quality", "parse_retain_evals"]
