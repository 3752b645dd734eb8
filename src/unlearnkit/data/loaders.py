"""Loaders for QA files in the TOFU JSON-lines layout, and refusal lists.

Every error names the file, the line and the field, so a user can fix bad data directly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from unlearnkit.data.records import QAItem
from unlearnkit.utils import UnreadableFileError, read_text


class DataError(UnreadableFileError):
    """A data file is missing, empty or malformed."""


# file field -> QAItem field
_FIELD_MAP = {
    "question": "question",
    "answer": "answer",
    "paraphrased_answer": "paraphrased_answer",
    "perturbed_answer": "perturbed_answers",
    "paraphrased_question": "paraphrased_question",
    "original_answer": "original_answer",
    "golden_answer": "golden_answer",
    "task_id": "task_id",
    "name": "name",
}


def _parse_row(obj: Any, path: Path, lineno: int) -> QAItem:
    where = f"{path}:{lineno}"
    if not isinstance(obj, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    for required in ("question", "answer"):
        if required not in obj:
            raise DataError(f"{where}: missing field '{required}'")
        if not isinstance(obj[required], str) or not obj[required].strip():
            raise DataError(f"{where}: field '{required}' must be a non-empty string")
    kwargs: dict[str, Any] = {}
    for key, value in obj.items():
        target = _FIELD_MAP.get(key)
        if target is None or value is None:
            continue  # unknown fields are tolerated (datasets carry extras)
        if target == "perturbed_answers":
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise DataError(f"{where}: field 'perturbed_answer' must be a list of strings")
        elif target == "task_id":
            try:
                value = int(value)
            except (TypeError, ValueError):
                raise DataError(
                    f"{where}: field 'task_id' must be an integer, got {value!r}"
                ) from None
        elif not isinstance(value, str):
            raise DataError(f"{where}: field '{key}' must be a string")
        kwargs[target] = value
    return QAItem(**kwargs)


TABLE_SUFFIXES = (".parquet", ".arrow")
QA_SUFFIXES = (".json", ".jsonl", *TABLE_SUFFIXES)


def load_qa_table(path: Path) -> list[QAItem]:
    """Rows of a Parquet file (the hub's converted datasets) or of an Arrow file written by
    ``datasets`` (its download cache, ``save_to_disk``); errors name the file and the row."""
    try:
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            rows = pq.read_table(path).to_pylist()
        else:
            from datasets import Dataset

            rows = Dataset.from_file(str(path)).to_list()
    except Exception as exc:  # truncated or foreign file: name it, keep one line
        msg = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise DataError(f"{path}: not a readable {path.suffix[1:]} file ({msg})") from None
    if not rows:
        raise DataError(f"{path}: file has no records")
    return [_parse_row(obj, path, i) for i, obj in enumerate(rows, start=1)]


def load_qa_file(path: str | Path) -> list[QAItem]:
    """Read a JSON-lines QA file (a JSON array is accepted too), or a Parquet / Arrow table."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if path.suffix in TABLE_SUFFIXES:
        return load_qa_table(path)
    text = read_text(path)
    if not text.strip():
        raise DataError(f"{path}: file is empty")
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{exc.lineno}: malformed JSON: {exc.msg}") from None
        return [_parse_row(obj, path, i + 1) for i, obj in enumerate(rows)]
    items = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{lineno}: malformed JSON: {exc.msg}") from None
        items.append(_parse_row(obj, path, lineno))
    if not items:
        raise DataError(f"{path}: file has no records")
    return items


def load_refusals(path: str | Path | None = None) -> list[str]:
    """Refusal templates for IDK/DPO/AP: one per line (JSON strings or plain text).

    ``None`` gives the project's own list (:data:`unlearnkit.data.refusals.DEFAULT_REFUSALS`).
    """
    if path is None:
        from unlearnkit.data.refusals import DEFAULT_REFUSALS

        return list(DEFAULT_REFUSALS)
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: refusal file not found")
    out = []
    for lineno, line in enumerate(read_text(path).splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        if line.startswith(("{", '"')):
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                raise DataError(f"{path}:{lineno}: malformed JSON line") from None
            line = obj if isinstance(obj, str) else obj.get("text") or obj.get("answer") or ""
            if not isinstance(line, str) or not line.strip():
                raise DataError(f"{path}:{lineno}: expected a string or an object with 'text'")
        out.append(line)
    if not out:
        raise DataError(f"{path}: no refusal templates in file")
    return out
