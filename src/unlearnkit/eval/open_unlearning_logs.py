"""open-unlearning's evaluation logs (``TOFU_EVAL.json``) as a retain model's evaluation.

open-unlearning users pass a retain model's logs as ``eval.tofu.retain_logs_path``; the same file
works as ``--retain-eval`` / ``eval.retain_eval`` here. Its format (open-unlearning
``src/evals/base.py``: one key per metric, pre-computed metrics included; every per-item table is
``value_by_index``, keyed by the item's row index in its split as a string):

- ``forget_truth_ratio``: ``{"agg_value", "value_by_index": {i: {"score": s_i}}}`` with
  s_i = p(perturbed) / (p(paraphrased) + 1e-10), the inverse of our R_i (``truth_ratio.py``);
  Forget Quality's KS test gives the same p-value on s or 1/s (a monotone map of both samples);
- ``mia_min_k``: ``{"agg_value": AUC, "forget": ..., "holdout": ...}``, PrivLeak's reference AUC;
- ``mia_loss``: ``{"forget"|"holdout": {"value_by_index": {i: {"score": mean answer NLL}}}}`` and
  ``forget_Q_A_Prob``: ``{"value_by_index": {i: {"prob", "avg_loss"}}}``, the retain model's
  answer NLLs for the Reference attack.

Rows are matched by index: row i is the i-th item of our forget (holdout) split, so the retain
model must have been evaluated on the same split in the same order. Where the logs carry the
prompt text (``forget_Q_A_ROUGE``'s ``input``), each of our questions is checked against it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from unlearnkit.data.records import QAItem

# A key only open-unlearning's logs have (our summary.json has "aggregates").
OU_KEYS = ("forget_truth_ratio", "mia_min_k", "forget_Q_A_Prob", "mia_loss", "forget_quality")


def read_logs(path: str | Path) -> dict[str, Any] | None:
    """The parsed logs when ``path`` is an open-unlearning logs file, else None."""
    p = Path(path).expanduser()
    if not p.is_file() or p.suffix != ".json":
        return None
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(data, dict) or "aggregates" in data:
        return None
    return data if any(k in data for k in OU_KEYS) else None


def _by_index(table: Any, where: str) -> dict[int, Any]:
    if not isinstance(table, dict) or not isinstance(table.get("value_by_index"), dict):
        raise ValueError(f"open-unlearning logs: {where} has no 'value_by_index' table")
    try:
        return {int(k): v for k, v in table["value_by_index"].items()}
    except ValueError as err:
        raise ValueError(f"open-unlearning logs: {where} has a non-integer index") from err


def _check_rows(rows: dict[int, Any], items: list[QAItem], where: str, path: Path) -> None:
    if sorted(rows) != list(range(len(items))):
        raise ValueError(
            f"eval.retain_eval: {path}: {where} has {len(rows)} rows (indices "
            f"{min(rows, default=None)}..{max(rows, default=None)}), our split has {len(items)}; "
            "evaluate the retain model on the same split, in the same order"
        )


def _check_questions(logs: dict[str, Any], items: list[QAItem], path: Path) -> None:
    """Each forget question appears in the prompt open-unlearning logged for its row."""
    rouge = logs.get("forget_Q_A_ROUGE")
    if not isinstance(rouge, dict) or not isinstance(rouge.get("value_by_index"), dict):
        return
    for i, rec in _by_index(rouge, "forget_Q_A_ROUGE").items():
        text = rec.get("input") if isinstance(rec, dict) else None
        if isinstance(text, str) and i < len(items) and items[i].question not in text:
            raise ValueError(
                f"eval.retain_eval: {path}: row {i} of the retain model's forget split is not "
                f"our forget question {items[i].question[:80]!r}; the splits differ"
            )


def truth_ratios(path: str | Path, logs: dict[str, Any], forget: list[QAItem]) -> list[float]:
    """Our R_i = 1 / s_i for each forget item (R = inf where s = 0)."""
    p = Path(path)
    if "forget_truth_ratio" not in logs:
        raise ValueError(
            f"eval.retain_eval: {p} has no 'forget_truth_ratio' (Forget Quality needs the retain "
            "model's forget truth ratios; evaluate it with forget_Truth_Ratio or forget_quality)"
        )
    rows = _by_index(logs["forget_truth_ratio"], "forget_truth_ratio")
    _check_rows(rows, forget, "forget_truth_ratio", p)
    _check_questions(logs, forget, p)
    out = []
    for i in range(len(forget)):
        s = rows[i].get("score") if isinstance(rows[i], dict) else None
        if not isinstance(s, int | float) or not math.isfinite(s) or s < 0:
            raise ValueError(f"eval.retain_eval: {p}: forget_truth_ratio row {i}: bad score {s!r}")
        out.append(math.inf if s == 0 else 1.0 / float(s))
    return out


def reference(
    path: str | Path,
    logs: dict[str, Any],
    forget: list[QAItem] | None,
    holdout: list[QAItem] | None,
) -> tuple[float | None, dict[str, float]]:
    """(the retain model's Min-K% AUC or None, question -> its mean answer NLL)."""
    p = Path(path)
    mink = logs.get("mia_min_k")
    auc = mink.get("agg_value") if isinstance(mink, dict) else None
    nll: dict[str, float] = {}
    loss = logs.get("mia_loss") if isinstance(logs.get("mia_loss"), dict) else {}
    for name, items in (("forget", forget), ("holdout", holdout)):
        if not items or name not in loss:
            continue
        rows = _by_index(loss[name], f"mia_loss.{name}")
        _check_rows(rows, items, f"mia_loss.{name}", p)
        nll.update({it.question: float(rows[i]["score"]) for i, it in enumerate(items)})
    if forget and "forget_Q_A_Prob" in logs and not any(it.question in nll for it in forget):
        rows = _by_index(logs["forget_Q_A_Prob"], "forget_Q_A_Prob")
        _check_rows(rows, forget, "forget_Q_A_Prob", p)
        nll.update({it.question: float(rows[i]["avg_loss"]) for i, it in enumerate(forget)})
    return (None if auc is None else float(auc)), nll
