"""Evaluation result cache: a key from the model's weights, the eval config and the data.

:func:`cached` wraps an evaluation: a complete, consistent result under the key is copied to the
output folder instead of running it; otherwise the evaluation runs, writes the output folder, and
its files are stored under the key.

The key is sha256 over (a) the weights fingerprint: sha256 of every parameter and buffer of the
model (names, shapes, dtypes and raw bytes, in state-dict order), so any changed weight gives a
new key; (b) the evaluation settings that change a number; (c) the prompt template and tokenizer;
(d) the evaluated items themselves (after the ``ds_size`` cap); (e) the retain model's truth
ratios when Forget Quality is computed; (f) :data:`CACHE_VERSION`, bumped when the runner's
outputs change meaning; (g) the registered metrics' names and versions
(:func:`unlearnkit.eval.metrics.specs.registered_metrics`), so a metric registered, removed or
bumped never reuses a stale result. A hit is a folder ``<cache_root>/eval/<key>/`` holding
``summary.json`` and one ``<split>.jsonl`` per split; it is only trusted when every file is
present and the summary records the same key.

Hashing costs about one read of the weights (~1 s for 135M fp32 parameters on a laptop CPU).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from unlearnkit.utils import cache_root, read_json

log = logging.getLogger(__name__)

CACHE_VERSION = 5  # 3: EM, ES, Min-K%, Min-K%++ and GradNorm leave out the final EOS;
# 4: under profile open-unlearning, LOSS/ZLib/Reference read its float32 reduction;
# 5: under profile open-unlearning, the Truth Ratio carries its + 1e-10


def weights_fingerprint(model: torch.nn.Module) -> str:
    """sha256 (hex) of every tensor of ``model.state_dict()`` with its name, shape and dtype."""
    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        t = tensor.detach()
        h.update(f"{name}|{tuple(t.shape)}|{t.dtype}\n".encode())
        if t.numel() == 0:
            continue
        flat = t.contiguous().reshape(-1).view(torch.uint8).cpu()  # raw bytes, any dtype
        h.update(memoryview(flat.numpy()))
    return h.hexdigest()


def json_digest(obj: Any) -> str:
    """sha256 of a JSON-serialisable object (sorted keys, so dict order never matters)."""
    text = json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def cache_key(
    fingerprint: str,
    eval_settings: dict[str, Any],
    template: dict[str, Any],
    data: dict[str, list[dict[str, Any]]],
    benchmark_kind: str,
    extra: dict[str, Any] | None = None,
) -> str:
    """The result key (hex): see the module docstring for what it covers."""
    return json_digest(
        {
            "version": CACHE_VERSION,
            "fingerprint": fingerprint,
            "eval": eval_settings,
            "template": template,
            "data": json_digest(data),
            "benchmark_kind": benchmark_kind,
            "extra": extra or {},
        }
    )


def cache_dir(key: str, root: Path | None = None) -> Path:
    return (root or cache_root()) / "eval" / key


def lookup(key: str, splits: list[str], root: Path | None = None) -> Path | None:
    """The cached result folder for ``key`` when complete and consistent, else None."""
    folder = cache_dir(key, root)
    summary = folder / "summary.json"
    if not summary.is_file() or any(not (folder / f"{s}.jsonl").is_file() for s in splits):
        return None
    try:
        recorded = json.loads(summary.read_text(encoding="utf-8")).get("cache_key")
    except (OSError, json.JSONDecodeError):
        return None
    return folder if recorded == key else None


def copy_result(src: Path, dst: Path, splits: list[str]) -> None:
    """Copy ``summary.json`` and the split files from ``src`` to ``dst`` (same folder: no-op)."""
    dst.mkdir(parents=True, exist_ok=True)
    if src.resolve() == dst.resolve():
        return
    for name in [*(f"{s}.jsonl" for s in splits), "summary.json"]:  # the summary marks completion
        tmp = dst / f".{name}.{os.getpid()}.tmp"  # two runs of a grid may store one key at once
        shutil.copyfile(src / name, tmp)
        tmp.replace(dst / name)


def cached(
    key: str,
    splits: list[str],
    out: Path,
    run: Callable[[], dict[str, Any]],
    *,
    enabled: bool = True,
    stale: Callable[[Path], bool] = lambda hit: False,
    root: Path | None = None,
) -> dict[str, Any]:
    """The summary of the evaluation under ``key``, written to ``out`` with its ``splits``.

    ``enabled`` and a hit that is not ``stale`` (e.g. it lacks a metric whose auxiliary model can
    be loaded now): the cached files are copied to ``out``. Otherwise ``run()`` writes ``out`` and
    returns the summary; with ``enabled`` its files are then stored under ``key`` (the summary
    last, so an interrupted store is never a hit).
    """
    if enabled:
        hit = lookup(key, splits, root)
        if hit is not None and not stale(hit):
            log.info("evaluation unchanged (key %s): reusing %s", key[:12], hit)
            copy_result(hit, out, splits)
            return read_json(out / "summary.json")
    summary = run()
    if enabled:
        copy_result(out, cache_dir(key, root), splits)
    return summary
