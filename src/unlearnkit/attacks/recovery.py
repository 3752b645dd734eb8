"""Recovery: how much of the forget set's knowledge an attack brings back.

For a forget-set metric m (ROUGE-L, Probability: higher = more of the forgotten answer), over the
forget items an attack evaluated, with means b (the model before unlearning), u (unlearned),
a (after the attack) and, where a retain model was evaluated, r (the retain model, which never
saw the forget set)::

    floor    = max(u, r)            (u when there is no retain model)
    recovery = (max(a, r) - floor) / (b - floor)

0 = nothing came back, 1 = back to the model before unlearning. Raising a metric only up to the
retain model's value recovers nothing (a model that never saw the forget set gets there too), so
the retain value is the floor; ``recovery_no_floor`` = (a - u) / (b - u) is reported beside it.
Recovery is None when ``b - floor`` is not positive (unlearning did not lower the metric below
the floor: there is nothing to recover).

Worst case: for each forget item, the attack that gives the highest value of the metric. The
run's robustness for the metric is ``1 - clip(recovery of the worst case, 0, 1)`` (the worst case
per item, averaged over the items, in the recovery formula); ``robustness_score`` is the mean of
those over the recovery metrics (``robustness_score_no_floor``: the same without the retain
model's floor).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from unlearnkit.utils import read_json, read_jsonl

RECOVERY_METRICS: tuple[str, ...] = ("rouge_l", "probability")
EPS = 1e-9


def recovery(
    after: float, unlearned: float, before: float, retain: float | None = None
) -> float | None:
    """The recovery of one metric (module docstring); None when there is nothing to recover."""
    floor = unlearned if retain is None else max(unlearned, retain)
    if before - floor <= EPS:
        return None
    top = after if retain is None else max(after, retain)
    return (top - floor) / (before - floor)


def _robustness(rec: float | None) -> float | None:
    return None if rec is None else 1.0 - min(max(rec, 0.0), 1.0)


def _by_question(folder: Path | None, split: str = "forget") -> dict[str, dict[str, Any]]:
    if folder is None:
        return {}
    path = Path(folder) / f"{split}.jsonl"
    if not path.is_file():
        raise ValueError(f"{path} not found: evaluate that model on the forget split first")
    return {str(r["question"]): r for r in read_jsonl(path)}


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def attack_items(attack_dir: Path) -> list[tuple[str, dict[str, Any]]]:
    """(original forget question, attacked record) per evaluated forget item of an attack."""
    summary = read_json(Path(attack_dir) / "summary.json")
    sources = summary["attack"]["source_questions"]
    records = read_jsonl(Path(attack_dir) / "forget.jsonl")
    if len(sources) != len(records):
        raise ValueError(f"{attack_dir}: {len(records)} forget records for {len(sources)} sources")
    return list(zip(sources, records, strict=True))


def recovery_table(
    items: list[tuple[str, float]],
    unlearned: dict[str, dict[str, Any]],
    before: dict[str, dict[str, Any]],
    retain: dict[str, dict[str, Any]],
    metric: str,
) -> dict[str, Any]:
    """Means over the items present everywhere, and the recovery of ``metric``."""
    keep = [
        (q, a) for q, a in items
        if q in unlearned and (not before or q in before) and (not retain or q in retain)
    ]  # fmt: skip
    row: dict[str, Any] = {
        "n_items": len(keep),
        "after": _mean([a for _, a in keep]),
        "unlearned": _mean([float(unlearned[q][metric]) for q, _ in keep]),
        "before": _mean([float(before[q][metric]) for q, _ in keep]) if before else None,
        "retain": _mean([float(retain[q][metric]) for q, _ in keep]) if retain else None,
    }
    row["recovery"] = row["recovery_no_floor"] = None
    if keep and row["before"] is not None:
        row["recovery"] = recovery(row["after"], row["unlearned"], row["before"], row["retain"])
        row["recovery_no_floor"] = recovery(row["after"], row["unlearned"], row["before"])
    return row


def attacks_report(
    attack_dirs: dict[str, Path],
    unlearned_dir: Path,
    before_dir: Path | None = None,
    retain_dir: Path | None = None,
) -> dict[str, Any]:
    """Recovery per attack and metric, the worst case per item and the robustness of a run."""
    unlearned = _by_question(unlearned_dir)
    before = _by_question(before_dir)
    retain = _by_question(retain_dir)
    per_attack: dict[str, dict[str, Any]] = {}
    worst: dict[str, dict[str, tuple[str, float]]] = {}  # question -> metric -> (attack, value)
    for name, folder in attack_dirs.items():
        pairs = attack_items(folder)
        per_attack[name] = {}
        for metric in RECOVERY_METRICS:
            vals = [(q, float(r[metric])) for q, r in pairs if r.get(metric) is not None]
            per_attack[name][metric] = recovery_table(vals, unlearned, before, retain, metric)
            for q, v in vals:
                best = worst.setdefault(q, {}).get(metric)
                if best is None or v > best[1]:
                    worst[q][metric] = (name, v)
    worst_items = []
    for q, by_metric in worst.items():
        item: dict[str, Any] = {"question": q}
        for metric, (name, value) in by_metric.items():
            item[metric] = {
                "attack": name,
                "after": value,
                "unlearned": unlearned.get(q, {}).get(metric),
                "before": before.get(q, {}).get(metric) if before else None,
                "retain": retain.get(q, {}).get(metric) if retain else None,
            }
        worst_items.append(item)
    robustness: dict[str, float | None] = {}
    robustness_no_floor: dict[str, float | None] = {}
    worst_case: dict[str, dict[str, Any]] = {}
    for metric in RECOVERY_METRICS:
        vals = [(q, m[metric][1]) for q, m in worst.items() if metric in m]
        row = recovery_table(vals, unlearned, before, retain, metric)
        worst_case[metric] = row
        robustness[metric] = _robustness(row["recovery"])
        robustness_no_floor[metric] = _robustness(row["recovery_no_floor"])
    present = [v for v in robustness.values() if v is not None]
    present_no_floor = [v for v in robustness_no_floor.values() if v is not None]
    return {
        "metrics": list(RECOVERY_METRICS),
        "baselines": {
            "unlearned": str(unlearned_dir),
            "before": str(before_dir) if before_dir else None,
            "retain": str(retain_dir) if retain_dir else None,
        },
        "attacks": per_attack,
        "worst_case": worst_case,
        "robustness": robustness,
        "robustness_score": float(np.mean(present)) if present else None,
        "robustness_no_floor": robustness_no_floor,
        "robustness_score_no_floor": float(np.mean(present_no_floor)) if present_no_floor else None,
        "worst_case_items": worst_items,
    }
