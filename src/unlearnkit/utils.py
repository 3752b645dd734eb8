"""Small shared helpers: atomic writes, JSON lines, seeding, the test-only crash points."""

from __future__ import annotations

import json
import os
import random
import signal
import tempfile
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

KILL_ENV = "UNLEARNKIT_TEST_KILL_AT"
_crash_hits: Counter[str] = Counter()


def crash_point(name: str) -> None:
    """Test hook: with ``UNLEARNKIT_TEST_KILL_AT=<name>:<n>`` the process SIGKILLs itself the
    n-th time it reaches the point ``name`` (no cleanup, no ``finally``: a real crash).

    Points: ``checkpoint`` (a checkpoint half written), ``final-model`` (the model folder half
    written), ``write:<file name>`` (an atomic write half done). Without the variable this is a
    dictionary look-up.
    """
    spec = os.environ.get(KILL_ENV)
    if not spec:
        return
    point, _, count = spec.rpartition(":")
    if point != name:
        return
    _crash_hits[name] += 1
    if str(_crash_hits[name]) == count.strip():
        os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))


def fsync_dir(path: Path) -> None:
    """Make a rename or a new entry in the folder ``path`` durable (no-op where unsupported)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # e.g. Windows, some network file systems
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` so that a crash never leaves a half-written file.

    A temporary file in the same folder is written, flushed to disk and renamed over ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            half = len(data) // 2
            fh.write(data[:half])
            fh.flush()
            crash_point(f"write:{path.name}")
            fh.write(data[half:])
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    """Write ``text`` (UTF-8) atomically: a temporary file renamed over ``path``."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, data: Any) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> Path:
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    return atomic_write_text(path, text)


class UnreadableFileError(ValueError):
    """A file that exists but cannot be read as what it should be; the message names the file
    and, where it has one, the line."""


def read_text(path: str | Path) -> str:
    """A UTF-8 text file's contents; bytes that are not UTF-8 are an error naming the file, the
    line and the byte (instead of Python's bare ``'utf-8' codec can't decode byte ...``)."""
    path = Path(path)
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise UnreadableFileError(
            f"{path}: line {line}: not UTF-8 (byte 0x{data[exc.start]:02x} at column {column}); "
            "save the file as UTF-8"
        ) from None


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Records of a JSON-lines file; a bad line is an error naming the file and the line."""
    rows = []
    for lineno, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise UnreadableFileError(
                f"{path}: line {lineno}: malformed JSON ({exc.msg}; a truncated file?)"
            ) from None
    return rows


def read_json(path: str | Path) -> Any:
    """A JSON file; malformed or truncated JSON is an error naming the file and the line."""
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise UnreadableFileError(
            f"{path}: line {exc.lineno}: malformed JSON ({exc.msg}; a truncated file?)"
        ) from None


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def default_data_root() -> Path:
    """Where shared benchmark data lives: $UNLEARNKIT_DATA, else ../shared/data from the repo."""
    env = os.environ.get("UNLEARNKIT_DATA")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for parent in here.parents:
        cand = parent.parent / "shared" / "data"
        if (parent / "pyproject.toml").exists() and cand.is_dir():
            return cand
    return Path.cwd().parent / "shared" / "data"


def cache_root() -> Path:
    return Path(os.environ.get("UNLEARNKIT_CACHE", Path.home() / ".cache" / "unlearnkit"))
