"""SQLite index of every evaluated run: one row per (run folder, evaluation stage).

The run folders on disk are the source of truth (``config.yaml``, ``eval/<stage>/summary.json``);
the database is an index over them that :meth:`ResultsStore.index_runs` can rebuild at any time,
so it never drifts from what is on disk. Key facts (scenario, method, split, lr, the three
aggregates) are plain columns for filtering and sorting; every per-split metric is kept in the
``metrics`` JSON column (``{"forget/rouge_l": 0.41, ...}``) and the whole summary in ``summary``.

Several processes may record at once (a sweep runs in parallel): each write is one
``BEGIN IMMEDIATE`` transaction and the connection waits up to ``timeout`` seconds for the lock.
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from unlearnkit.utils import read_json

# 2: the profile column; 3: recovery_rouge_l (attack stages); added in place to older stores
SCHEMA_VERSION = 3

# Scalar columns besides the JSON ones, in table order. Filters of query() use these names.
KEY_COLUMNS: dict[str, str] = {
    "run": "TEXT NOT NULL",
    "stage": "TEXT NOT NULL",
    "run_dir": "TEXT NOT NULL",
    "scenario": "TEXT",
    "profile": "TEXT",  # default | paper (None: a run recorded before profiles existed)
    "method": "TEXT",
    "benchmark": "TEXT",
    "split": "TEXT",
    "task": "INTEGER",
    "seed": "INTEGER",
    "lr": "REAL",
    "model_utility": "REAL",
    "forget_efficacy": "REAL",
    "forget_quality": "REAL",
    # attack stages (``attack-<name>``): recovery of forget ROUGE-L (unlearnkit.attacks.recovery)
    "recovery_rouge_l": "REAL",
    "created_at": "TEXT",
}
JSON_COLUMNS = ("metrics", "aggregates", "summary", "config")

_CREATE = (
    "CREATE TABLE IF NOT EXISTS results ("
    + ", ".join(f"{name} {decl}" for name, decl in KEY_COLUMNS.items())
    + ", metrics TEXT, aggregates TEXT, summary TEXT, config TEXT,"
    + " PRIMARY KEY (run_dir, stage))"
)

_TASK_STAGE = re.compile(r"^task(\d+)$")
_EPOCH_STAGE = re.compile(r"^epoch(\d+)$")


def _num(value: Any) -> float | None:
    """A finite float, or None for missing / non-numeric / NaN values."""
    if value is None or isinstance(value, bool):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def flatten_metrics(summary: dict[str, Any]) -> dict[str, float | None]:
    """``summary["splits"]`` as ``{"<split>/<metric>": value}`` (non-numeric values -> None)."""
    out: dict[str, float | None] = {}
    for split, metrics in (summary.get("splits") or {}).items():
        if not isinstance(metrics, dict):
            continue
        for name, value in metrics.items():
            out[f"{split}/{name}"] = _num(value)
    return out


def stage_task(stage: str) -> int | None:
    """``"task3"`` -> 3, any other stage -> None."""
    m = _TASK_STAGE.match(stage)
    return int(m.group(1)) if m else None


def is_attack_stage(stage: str) -> bool:
    """``attack-<name>``: an attack's evaluation (never a run's headline stage)."""
    return stage.startswith("attack-")


def stage_sort_key(stage: str) -> tuple[int, int, str]:
    """Chronological order of stages: before, epoch1.., task1.., final, then others."""
    if stage == "before":
        return (0, 0, stage)
    if m := _EPOCH_STAGE.match(stage):
        return (1, int(m.group(1)), stage)
    if m := _TASK_STAGE.match(stage):
        return (2, int(m.group(1)), stage)
    if stage == "final":
        return (3, 0, stage)
    return (4, 0, stage)


def read_jsonl_lenient(path: Path) -> list[dict[str, Any]]:
    """JSON lines, skipping lines that do not parse (a killed run may leave a partial line)."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            rows.append(obj)
    return rows


def read_run_config(run_dir: Path) -> dict[str, Any]:
    """The resolved ``config.yaml`` of a run as a dict ({} when absent or unreadable)."""
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from None
    return data if isinstance(data, dict) else {}


def run_meta_from_config(config: dict[str, Any]) -> dict[str, Any]:
    """Key facts of a run from its resolved config (layout of ``unlearnkit.config.RunConfig``)."""
    data = config.get("data") or {}
    method = config.get("method") or {}
    train = config.get("train") or {}
    return {
        "scenario": config.get("scenario"),
        "profile": config.get("profile"),
        "method": method.get("name"),
        "benchmark": data.get("benchmark"),
        # real_world has no split (data.split is ignored there), as in scenarios' own records
        "split": None if config.get("scenario") == "real_world" else data.get("split"),
        "task": data.get("task"),
        "seed": train.get("seed"),
        "lr": train.get("learning_rate"),
    }


def find_run_dirs(root: Path) -> list[Path]:
    """Run folders at or below ``root``: folders with ``config.yaml`` or ``eval/*/summary.json``.

    A run folder's own subfolders are not searched further (``model/`` or ``eval/`` are never
    runs). Sorted by path.
    """
    root = Path(root)
    if not root.is_dir():
        return []
    if _is_run_dir(root):
        return [root]
    found: list[Path] = []
    for child in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        found.extend(find_run_dirs(child))
    return found


def _is_run_dir(path: Path) -> bool:
    return (path / "config.yaml").is_file() or any((path / "eval").glob("*/summary.json"))


def run_stages(run_dir: Path) -> list[str]:
    """Evaluation stages of a run folder that have a ``summary.json``, in chronological order."""
    stages = [p.parent.name for p in (Path(run_dir) / "eval").glob("*/summary.json")]
    return sorted(stages, key=stage_sort_key)


class ResultsStore:
    """The ``results.db`` index. Opens a short-lived connection per operation."""

    def __init__(self, db_path: Path | str, timeout: float = 60.0) -> None:
        self.db_path = Path(db_path)
        self.timeout = timeout
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        with self._transaction() as conn:
            conn.execute(_CREATE)
            have = {row[1] for row in conn.execute("PRAGMA table_info(results)")}
            for name, decl in KEY_COLUMNS.items():
                if name not in have:  # a store written by an older version: add the column
                    conn.execute(f"ALTER TABLE results ADD COLUMN {name} {decl}")
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # isolation_level=None: we issue BEGIN/COMMIT ourselves so that writers take the lock
        # up front (BEGIN IMMEDIATE) instead of failing on a read->write upgrade.
        conn = sqlite3.connect(self.db_path, timeout=self.timeout, isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            yield conn
        finally:
            conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # ------------------------------------------------------------------ writing

    @staticmethod
    def _row(
        run_dir: Path,
        stage: str,
        summary: dict[str, Any],
        run_meta: dict[str, Any],
        created_at: str | None,
    ) -> dict[str, Any]:
        run_dir = Path(run_dir).resolve()
        aggregates = summary.get("aggregates") or {}
        task = stage_task(stage)
        if task is None:
            task = _int(run_meta.get("task"))
        if created_at is None:
            created_at = datetime.now(UTC).isoformat(timespec="seconds")
        return {
            "run": str(run_meta.get("run") or run_dir.name),
            "stage": stage,
            "run_dir": str(run_dir),
            "scenario": run_meta.get("scenario"),
            "profile": run_meta.get("profile"),
            "method": run_meta.get("method"),
            "benchmark": run_meta.get("benchmark") or summary.get("benchmark"),
            "split": run_meta.get("split"),
            "task": task,
            "seed": _int(run_meta.get("seed")),
            "lr": _num(run_meta.get("lr")),
            "model_utility": _num(aggregates.get("model_utility")),
            "forget_efficacy": _num(aggregates.get("forget_efficacy")),
            "forget_quality": _num(aggregates.get("forget_quality")),
            "recovery_rouge_l": _num(aggregates.get("recovery_rouge_l")),
            "created_at": created_at,
            "metrics": json.dumps(flatten_metrics(summary)),
            "aggregates": json.dumps(aggregates, default=str),
            "summary": json.dumps(summary, default=str),
            "config": json.dumps(run_meta.get("config") or {}, default=str),
        }

    @staticmethod
    def _insert(conn: sqlite3.Connection, row: dict[str, Any]) -> None:
        names = ", ".join(row)
        marks = ", ".join(f":{k}" for k in row)
        conn.execute(f"INSERT OR REPLACE INTO results ({names}) VALUES ({marks})", row)

    def record(
        self,
        run_dir: Path,
        stage: str,
        summary: dict[str, Any],
        run_meta: dict[str, Any],
        created_at: str | None = None,
    ) -> None:
        """Insert or replace the row of (``run_dir``, ``stage``).

        ``run_meta`` holds the key facts (scenario, method, benchmark, split, task, seed, lr, and
        optionally ``run`` = display name and ``config`` = the resolved config dict);
        see :func:`run_meta_from_config`. A ``taskN`` stage sets ``task`` to N.
        """
        if not stage:
            raise ValueError("stage must be a non-empty string (e.g. 'final', 'task3')")
        row = self._row(run_dir, stage, summary, run_meta, created_at)
        with self._transaction() as conn:
            self._insert(conn, row)

    def record_run(self, run_dir: Path) -> int:
        """Index every evaluated stage of one run folder, replacing its old rows. Returns rows."""
        run_dir = Path(run_dir).resolve()
        rows = self._rows_of_run(run_dir)
        with self._transaction() as conn:
            conn.execute("DELETE FROM results WHERE run_dir = ?", (str(run_dir),))
            for row in rows:
                self._insert(conn, row)
        return len(rows)

    def _rows_of_run(self, run_dir: Path) -> list[dict[str, Any]]:
        config = read_run_config(run_dir)
        meta = run_meta_from_config(config) | {"config": config}
        rows = []
        for stage in run_stages(run_dir):
            path = run_dir / "eval" / stage / "summary.json"
            summary = read_json(path)
            if not isinstance(summary, dict):
                raise ValueError(f"{path}: expected a JSON object")
            mtime = datetime.fromtimestamp(path.stat().st_mtime, UTC)
            rows.append(
                self._row(run_dir, stage, summary, meta, mtime.isoformat(timespec="seconds"))
            )
        return rows

    def index_runs(self, output_dir: Path) -> int:
        """Rebuild the rows of every run folder under ``output_dir`` from disk, in one transaction.

        Rows of runs below ``output_dir`` that no longer exist on disk are removed, so the index
        always matches the folders. Returns the number of rows written.
        """
        output_dir = Path(output_dir).resolve()
        rows = [row for d in find_run_dirs(output_dir) for row in self._rows_of_run(d.resolve())]
        prefix = str(output_dir)
        with self._transaction() as conn:
            conn.execute(
                "DELETE FROM results WHERE run_dir = ? OR substr(run_dir, 1, ?) = ?",
                (prefix, len(prefix) + 1, prefix.rstrip("/") + "/"),
            )
            for row in rows:
                self._insert(conn, row)
        return len(rows)

    # ------------------------------------------------------------------ reading

    def query(self, **filters: Any) -> list[dict[str, Any]]:
        """Rows matching every filter (``method="ME+GD"``, ``stage=["final", "task1"]``).

        A list/tuple value matches any of its items; None matches NULL. JSON columns come back
        parsed. Rows are ordered by scenario, method, run, then stage chronologically.
        """
        clauses, params = [], []
        for key, value in filters.items():
            if key not in KEY_COLUMNS:
                raise ValueError(
                    f"unknown results filter '{key}'; choose from {', '.join(KEY_COLUMNS)}"
                )
            if isinstance(value, (list, tuple, set)):
                values = list(value)
                if not values:
                    return []
                clauses.append(f"{key} IN ({', '.join('?' * len(values))})")
                params.extend(values)
            elif value is None:
                clauses.append(f"{key} IS NULL")
            else:
                clauses.append(f"{key} = ?")
                params.append(value)
        sql = "SELECT * FROM results"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        with self._connect() as conn:
            rows = [dict(r) for r in conn.execute(sql, params)]
        for row in rows:
            for col in JSON_COLUMNS:
                row[col] = json.loads(row[col]) if row[col] else {}
        rows.sort(
            key=lambda r: (
                r["scenario"] or "",
                r["method"] or "",
                r["run"],
                r["run_dir"],
                stage_sort_key(r["stage"]),
            )
        )
        return rows

    def __len__(self) -> int:
        with self._connect() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM results").fetchone()[0])
