"""Every registered metric, computed from its registry entry, and the aggregates over them.

The engine's products for each split (generations, teacher-forced NLLs, answer-token statistics,
the auxiliary models' scores) are gathered in a
:class:`~unlearnkit.eval.metrics.outputs.SplitOutputs`; :func:`metric_records` then computes
every metric of :mod:`unlearnkit.eval.metrics.specs` from it, by kind:

* ``paper`` (the paper's six) and ``generation`` metrics on every evaluated split;
* ``answer_tokens`` metrics (exact memorization, extraction strength) on the forget split;
* with a holdout split (non-members): every ``mia`` attack's membership score on the forget and
  holdout items; :func:`privacy_aggregates` ranks them (the AUC) and adds MUSE's privacy leakage
  against a retain model's saved evaluation (or AUC_retain = 0.5).

:func:`split_values` reads each split's values (the mean of its per-item values) off the records,
for a one-process evaluation and the data-parallel merge alike; :func:`protocol_aggregates` adds
the protocol's aggregates and open-unlearning's 9-value Model Utility. Registering a metric of
one of these kinds is all it takes for it to appear in ``<split>.jsonl``, ``summary.json``,
``unlearn eval``'s table and the report.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from unlearnkit.data.records import QAItem
from unlearnkit.eval import metrics as M
from unlearnkit.eval import open_unlearning_logs as OU
from unlearnkit.eval.metrics.outputs import SplitOutputs
from unlearnkit.eval.metrics.specs import METRIC_SPECS, MetricSpec
from unlearnkit.eval.protocol import FORGET_SPLIT, HOLDOUT_SPLIT, EvalProtocol
from unlearnkit.eval.split_metrics import PhaseTimer
from unlearnkit.utils import read_jsonl

log = logging.getLogger(__name__)

Records = dict[str, list[dict[str, Any]]]
Fields = dict[str, list[Any]]


def _paper(spec: MetricSpec, out: SplitOutputs) -> Fields | None:
    return spec.compute(out) if out.evaluated else None  # type: ignore[misc]


def _generation(spec: MetricSpec, out: SplitOutputs) -> Fields | None:
    if not out.evaluated:
        return None
    return {spec.name: spec.compute(out.texts, out.references("rouge"))}  # type: ignore[misc]


def _answer_tokens(spec: MetricSpec, out: SplitOutputs) -> Fields | None:
    if not out.evaluated or out.tokens is None:  # the forget split
        return None
    return {spec.name: [spec.compute(t) for t in out.tokens]}  # type: ignore[misc]


def _mia(spec: MetricSpec, out: SplitOutputs) -> Fields | None:
    if not out.membership or out.tokens is None:
        return None
    return {f"{spec.name}_score": [spec.compute(t) for t in out.tokens]}  # type: ignore[misc]


# The kinds computed per item, in the order of their fields in ``<split>.jsonl``: each kind's
# per-item record fields of one metric on one split (its value under its name, an attack's
# membership score under ``<name>_score``), None where the metric does not apply.
ITEM_FIELDS: dict[str, Callable[[MetricSpec, SplitOutputs], Fields | None]] = {
    "paper": _paper,
    "generation": _generation,
    "answer_tokens": _answer_tokens,
    "mia": _mia,
}
# The kinds with a value per split (an attack's value is its AUC, over two splits).
SPLIT_VALUE_KINDS = ("paper", "generation", "answer_tokens")


def record_order() -> list[MetricSpec]:
    """The metrics computed per item, in the order of their record fields: by kind, then by
    what they read (the generation, the teacher-forced NLLs, an auxiliary model: the Entailment
    Score gates on ROUGE-L), then in registration order."""
    kinds = list(ITEM_FIELDS)

    def rank(spec: MetricSpec) -> tuple[int, int]:
        stage = 2 if "aux_model" in spec.needs else 1 if "answer_nll" in spec.needs else 0
        return kinds.index(spec.kind), stage

    return sorted((s for s in METRIC_SPECS.values() if s.kind in kinds), key=rank)


def _header(out: SplitOutputs, i: int) -> dict[str, Any]:
    """A record's first fields: the item and, on an evaluated split, its generation and the
    references its metrics read; on the holdout, its mean answer NLL."""
    it = out.items[i]
    rec: dict[str, Any] = {"index": i, "question": it.question, "answer": it.answer}
    if out.spec is None or out.generations is None:  # the holdout
        rec["nll_answer"] = out.tokens[i].mean_nll if out.tokens is not None else None
        return rec
    spec = out.spec
    rec["probability_reference"] = spec.probability_reference
    rec["generation"] = out.generations[i].text
    for kind in ("rouge", "cosine", "entailment"):
        rec[f"{kind}_reference"] = getattr(it, getattr(spec, f"{kind}_reference"))
    rec["truth_ratio_base"] = spec.truth_ratio_base
    return rec


def metric_records(outputs: dict[str, SplitOutputs], timer: PhaseTimer) -> Records:
    """Every split's per-item records: :func:`_header`, then every registered metric's fields
    (:data:`ITEM_FIELDS`, in :func:`record_order`), each metric timed per split under its
    name."""
    specs = record_order()
    records: Records = {}
    for name, out in outputs.items():
        recs = [_header(out, i) for i in range(len(out.items))]
        for spec in specs:
            start = time.perf_counter()
            fields = ITEM_FIELDS[spec.kind](spec, out)
            if fields is None:
                continue  # the metric does not apply to this split
            timer.add(spec.name, time.perf_counter() - start, name)
            for key, per_item in fields.items():
                for rec, value in zip(recs, per_item, strict=True):
                    rec[key] = value
        records[name] = recs
    return records


def mean_or_none(values: list[Any]) -> float | None:
    return None if any(v is None for v in values) else float(np.mean(values))


def split_values(recs: list[dict[str, Any]]) -> dict[str, float | None]:
    """A split's value of every registered metric in its records ``recs``: the mean of the
    per-item values (None when one is missing), by kind then registration order."""
    present = recs[0] if recs else {}
    return {
        s.name: mean_or_none([r[s.name] for r in recs])
        for kind in SPLIT_VALUE_KINDS
        for s in M.metrics_of_kind(kind)  # type: ignore[arg-type]
        if s.name in present
    }


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


def privacy_aggregates(
    records: Records, protocol: EvalProtocol, reference: RetainReference | None
) -> tuple[dict[str, float | None], dict[str, list[str]], dict[str, str], dict[str, Any]]:
    """Each attack's AUC, the forget split's membership scores against the holdout's (read off
    the records), and the privacy leakage (:func:`mia_and_privacy`); without a holdout split,
    each is None with the reason. One path for a one-process evaluation and the data-parallel
    merge."""
    attacks = M.metrics_of_kind("mia")
    holdout = records.get(protocol.holdout_split)
    if not holdout:
        reason = "no holdout split (non-members) to compare the forget set with"
        missing = dict.fromkeys([*(s.name for s in attacks), "privacy_leakage"], reason)
        return dict.fromkeys(missing), {}, missing, {}
    forget = records[protocol.forget_split]
    both = [*forget, *holdout]
    scores = {s.name: [r[f"{s.name}_score"] for r in both] for s in attacks}
    return mia_and_privacy(scores, len(forget), reference)
