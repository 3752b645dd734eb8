"""The result cache wraps an evaluation: a hit is copied, a miss runs and is stored."""

from __future__ import annotations

import json
from pathlib import Path

from unlearnkit.eval import cache as result_cache


def _runner(out: Path, key: str, calls: list[int]):
    def run() -> dict:
        calls.append(1)
        out.mkdir(parents=True, exist_ok=True)
        (out / "forget.jsonl").write_text('{"index": 0}\n')
        summary = {"cache_key": key, "value": len(calls)}
        (out / "summary.json").write_text(json.dumps(summary))
        return summary

    return run


def test_cached_runs_once_then_copies(tmp_path: Path) -> None:
    root, calls = tmp_path / "cache", []
    first = result_cache.cached(
        "k1", ["forget"], tmp_path / "a", _runner(tmp_path / "a", "k1", calls), root=root
    )
    assert first == {"cache_key": "k1", "value": 1} and len(calls) == 1
    assert (root / "eval" / "k1" / "forget.jsonl").is_file()
    again = result_cache.cached(
        "k1", ["forget"], tmp_path / "b", _runner(tmp_path / "b", "k1", calls), root=root
    )
    assert again == first and len(calls) == 1  # copied, not run
    assert (tmp_path / "b" / "forget.jsonl").read_text() == '{"index": 0}\n'
    # a stale hit (e.g. a metric whose model is available now) runs again
    result_cache.cached(
        "k1", ["forget"], tmp_path / "c", _runner(tmp_path / "c", "k1", calls), root=root,
        stale=lambda hit: True,
    )  # fmt: skip
    assert len(calls) == 2
    # disabled: always runs, stores nothing
    result_cache.cached(
        "k2", ["forget"], tmp_path / "d", _runner(tmp_path / "d", "k2", calls), root=root,
        enabled=False,
    )  # fmt: skip
    assert len(calls) == 3 and not (root / "eval" / "k2").exists()


def test_an_incomplete_store_is_not_a_hit(tmp_path: Path) -> None:
    root, calls = tmp_path / "cache", []
    folder = result_cache.cache_dir("k", root)
    folder.mkdir(parents=True)
    (folder / "forget.jsonl").write_text("{}\n")  # interrupted before the summary was stored
    result_cache.cached(
        "k", ["forget"], tmp_path / "a", _runner(tmp_path / "a", "k", calls), root=root
    )
    assert len(calls) == 1 and result_cache.lookup("k", ["forget"], root) == folder
