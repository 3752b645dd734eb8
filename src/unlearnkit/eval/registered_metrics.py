"""The registry's metrics beyond the paper's six, computed from their registry entries.

The runner's fused pass (generation, teacher forcing, auxiliary models) computes the paper's six
metrics; this module adds, from :mod:`unlearnkit.eval.metrics.specs`:

* every ``generation`` metric on every split, from the generations already made;
* every ``answer_tokens`` metric (exact memorization, extraction strength) on the forget split,
  from one teacher-forced pass over its answers (:mod:`unlearnkit.eval.token_stats`);
* with a holdout split (non-members): every ``mia`` attack's AUC, forget against holdout, and
  MUSE's privacy leakage against a retain model's saved evaluation (or AUC_retain = 0.5);
* open-unlearning's 9-value Model Utility beside the paper's.

Registering a metric of one of these kinds is all it takes for it to appear in ``<split>.jsonl``,
``summary.json``, ``unlearn eval``'s table and the report.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from unlearnkit.data.records import QAItem
from unlearnkit.eval import metrics as M
from unlearnkit.eval import open_unlearning_logs as OU
from unlearnkit.eval.engine import Engine
from unlearnkit.eval.protocol import FORGET_SPLIT, HOLDOUT_SPLIT, EvalProtocol
from unlearnkit.utils import read_jsonl

log = logging.getLogger(__name__)


def add_generation_metrics(
    records: dict[str, list[dict[str, Any]]], values: dict[str, dict[str, float | None]]
) -> None:
    """Each registered ``generation`` metric, per item (in ``records``) and per split (mean)."""
    for spec in M.metrics_of_kind("generation"):
        for split, recs in records.items():
            per_item = spec.compute(  # type: ignore[misc]
                [r["generation"] for r in recs], [r["rouge_reference"] for r in recs]
            )
            for r, v in zip(recs, per_item, strict=True):
                r[spec.name] = v
            values[split][spec.name] = float(np.mean(per_item))


def open_unlearning_utility(
    values: dict[str, dict[str, float | None]], aggregates: dict[str, Any]
) -> None:
    """Add ``model_utility_open_unlearning`` (9 values) to ``aggregates`` beside the paper's."""
    value, used, skipped = M.model_utility_open_unlearning(values)
    aggregates["model_utility_open_unlearning"] = value
    aggregates["computed_over"]["model_utility_open_unlearning"] = used
    aggregates["skipped"]["model_utility_open_unlearning"] = skipped


def protocol_aggregates(
    values: dict[str, dict[str, float | None]],
    protocol: EvalProtocol,
    forget_truth_ratios: list[float] | None,
    retain_truth_ratios: list[float] | None,
    missing: dict[str, str],
    *,
    forget_evaluated: bool,
) -> dict[str, Any]:
    """The protocol's aggregates (Model Utility, Forget Efficacy, Forget Quality) and
    open-unlearning's Model Utility from the split values; notes in ``missing`` what could not
    be computed. One path for a one-process evaluation and the data-parallel merge."""
    if retain_truth_ratios is None and forget_evaluated and protocol.forget_quality:
        missing["forget_quality"] = (
            "no retain model evaluation given (eval.retain_eval / --retain-eval)"
        )
    aggregates = M.aggregate(
        values,
        protocol,
        forget_truth_ratios=forget_truth_ratios if retain_truth_ratios is not None else None,
        retain_truth_ratios=retain_truth_ratios,
    )
    open_unlearning_utility(values, aggregates)
    return aggregates


@dataclass
class RetainReference:
    """What a retain model's saved evaluation offers: its Min-K% AUC and per-question NLLs."""

    source: str
    auc: float | None  # the retain model's AUC of the privacy attack (None: not evaluated)
    nll: dict[str, float] = field(default_factory=dict)  # question -> mean answer NLL

    def to_key(self) -> dict[str, Any]:
        return {"auc": self.auc, "nll": sorted(self.nll.items())}


def load_retain_reference(
    retain_eval: str | Path,
    forget: list[QAItem] | None = None,
    holdout: list[QAItem] | None = None,
) -> RetainReference:
    """Read a retain model's evaluation folder (or its summary.json): the privacy attack's AUC
    from ``summary.json`` and the answer NLLs of ``forget.jsonl`` and ``holdout.jsonl``; or
    open-unlearning's logs (``TOFU_EVAL.json``), whose rows are matched to ``forget`` and
    ``holdout`` by index (:mod:`unlearnkit.eval.open_unlearning_logs`)."""
    path = Path(retain_eval).expanduser()
    ou_logs = OU.read_logs(path)
    if ou_logs is not None:
        auc, nll = OU.reference(path, ou_logs, forget, holdout)
        return RetainReference(str(path), auc, nll)
    folder = path.parent if path.is_file() else path
    summary_path = folder / "summary.json"
    auc = None
    if summary_path.is_file():
        agg = json.loads(summary_path.read_text(encoding="utf-8")).get("aggregates") or {}
        auc = agg.get(M.PRIVACY_ATTACK)
    nll: dict[str, float] = {}
    for name in (FORGET_SPLIT, HOLDOUT_SPLIT):
        file = folder / f"{name}.jsonl"
        if file.is_file():
            for rec in read_jsonl(file):
                if rec.get("nll_answer") is not None:
                    nll[rec["question"]] = float(rec["nll_answer"])
    return RetainReference(str(folder), None if auc is None else float(auc), nll)


def mia_and_privacy(
    scores: dict[str, list[float | None]], n_members: int, reference: RetainReference | None
) -> tuple[dict[str, float | None], dict[str, list[str]], dict[str, str], dict[str, Any]]:
    """Each attack's AUC from its membership scores (``n_members`` forget items first, then the
    holdout items) and the privacy leakage: (aggregates, computed_over, missing, details)."""
    aggregates: dict[str, float | None] = {}
    computed_over: dict[str, list[str]] = {}
    missing: dict[str, str] = {}
    n_non = len(next(iter(scores.values()))) - n_members
    for name, values in scores.items():
        if any(v is None for v in values):
            aggregates[name] = None
            if "gradients" in M.METRIC_SPECS[name].needs:
                missing[name] = "gradient norms not computed (eval.mia_gradnorm is false)"
            elif reference is None:
                missing[name] = (
                    "no reference model evaluation given (eval.retain_eval / --retain-eval)"
                )
            else:
                missing[name] = (
                    "the retain model's evaluation (eval.retain_eval) lacks the answer NLLs of "
                    f"{sum(v is None for v in values)} forget/holdout questions"
                )
            continue
        aggregates[name] = M.mia_auc(values[:n_members], values[n_members:])  # type: ignore[arg-type]
        computed_over[name] = [f"forget ({n_members}, members) vs holdout ({n_non})"]

    auc = aggregates[M.PRIVACY_ATTACK]
    if reference is not None and reference.auc is not None:
        auc_retain, source = reference.auc, f"retain model evaluation {reference.source}"
    else:
        auc_retain = M.NO_RETAIN_AUC
        source = (
            f"AUC_retain = {M.NO_RETAIN_AUC}: no retain model evaluation given"
            if reference is None
            else f"AUC_retain = {M.NO_RETAIN_AUC}: {reference.source} has no {M.PRIVACY_ATTACK}"
        )
        log.warning("privacy leakage: %s", source)
    aggregates["privacy_leakage"] = (
        M.privacy_leakage(auc, auc_retain) if auc is not None and auc_retain < 1.0 else None
    )
    computed_over["privacy_leakage"] = [f"{M.PRIVACY_ATTACK} AUC vs AUC_retain {auc_retain:.4f}"]
    details = {
        "attack": M.PRIVACY_ATTACK,
        "auc_retain": auc_retain,
        "auc_retain_source": source,
        "members": n_members,
        "non_members": n_non,
    }
    return aggregates, computed_over, missing, details


@dataclass
class PrivacyResult:
    forget_items: list[dict[str, float | None]]  # per forget item: EM, ExS, membership scores
    forget_values: dict[str, float]  # EM, ExS means
    holdout_records: list[dict[str, Any]]
    aggregates: dict[str, float | None]
    computed_over: dict[str, list[str]]
    missing: dict[str, str]
    details: dict[str, Any]


def memorization_and_privacy(
    engine: Engine,
    forget: list[QAItem],
    holdout: list[QAItem] | None,
    *,
    reference: RetainReference | None,
    gradnorm: bool = True,
) -> PrivacyResult:
    """Memorization metrics of the forget split; with ``holdout``, every MIA AUC and PrivLeak."""
    items = forget + (holdout or [])
    stats = engine.token_stats([it.question for it in items], [it.answer for it in items])
    n = len(forget)
    forget_items: list[dict[str, float | None]] = [{} for _ in forget]
    forget_values: dict[str, float] = {}
    for spec in M.metrics_of_kind("answer_tokens"):
        per_item = [spec.compute(t) for t in stats[:n]]  # type: ignore[misc]
        for rec, v in zip(forget_items, per_item, strict=True):
            rec[spec.name] = v
        forget_values[spec.name] = float(np.mean(per_item))

    attacks = M.metrics_of_kind("mia")
    if not holdout:
        reason = "no holdout split (non-members) to compare the forget set with"
        missing = dict.fromkeys([*(spec.name for spec in attacks), "privacy_leakage"], reason)
        return PrivacyResult(
            forget_items, forget_values, [], dict.fromkeys(missing), {}, missing, {}
        )

    if gradnorm and any("gradients" in s.needs for s in attacks):
        norms = engine.grad_norms([it.question for it in items], [it.answer for it in items])
        for t, g in zip(stats, norms, strict=True):
            t.grad_norm = g
    if reference is not None:
        for it, t in zip(items, stats, strict=True):
            t.reference_nll = reference.nll.get(it.question)
    holdout_records = [
        {"index": i, "question": it.question, "answer": it.answer, "nll_answer": t.mean_nll}
        for i, (it, t) in enumerate(zip(holdout, stats[n:], strict=True))
    ]
    scores: dict[str, list[float | None]] = {}
    for spec in attacks:
        scores[spec.name] = [spec.compute(t) for t in stats]  # type: ignore[misc]
        for rec, v in zip([*forget_items, *holdout_records], scores[spec.name], strict=True):
            rec[f"{spec.name}_score"] = v
    aggregates, computed_over, missing, details = mia_and_privacy(scores, n, reference)
    return PrivacyResult(
        forget_items, forget_values, holdout_records, aggregates, computed_over, missing, details
    )
