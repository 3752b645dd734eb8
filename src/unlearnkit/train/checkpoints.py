"""Crash-safe checkpoints and model folders: visible only once complete.

A checkpoint is written into a staging folder (``checkpoints/.tmp-checkpoint-N/``), every file
is flushed to disk, and only then is it renamed to ``checkpoints/checkpoint-N``. A rename within
one file system is atomic, so a process killed at any moment leaves either no ``checkpoint-N``
or a complete one. Old checkpoints are renamed away (``.del-checkpoint-N``) before they are
deleted, for the same reason. The final model folder is staged and renamed the same way.

Resuming picks the newest *complete* checkpoint: one whose ``trainer_state.json`` (the engine
writes it last) parses. Staging and deletion leftovers, and incomplete ``checkpoint-N`` folders
written by older versions, are removed before training starts.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Literal

from unlearnkit.utils import fsync_dir

logger = logging.getLogger(__name__)

Resume = bool | Literal["auto"]
"""``True``: continue from the newest complete checkpoint (said once when there is none);
``"auto"``: the same, silently starting from the beginning when there is nothing to resume
(scenarios that always continue, e.g. a continual sequence); ``False``: a fresh run."""

STAGING_PREFIX = ".tmp-"
DELETING_PREFIX = ".del-"
TRAINER_STATE = "trainer_state.json"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")


def check_resume(resume: object) -> Resume:
    if resume is True or resume is False or resume == "auto":
        return resume  # type: ignore[return-value]
    raise ValueError(f"resume must be True, False or 'auto', got {resume!r}")


def checkpoint_step(path: Path) -> int | None:
    match = _CHECKPOINT.match(path.name)
    return int(match.group(1)) if match else None


def is_complete_checkpoint(path: Path) -> bool:
    """True when ``path`` holds a finished checkpoint (its trainer state is readable)."""
    try:
        state = json.loads((path / TRAINER_STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(state, dict) and "global_step" in state


def is_complete_model(path: Path) -> bool:
    """A published model folder: its config and weights (full or LoRA-merged) are present."""
    return (path / "config.json").is_file() and any((path / w).is_file() for w in _WEIGHTS)


def _checkpoints(checkpoint_dir: Path) -> list[tuple[int, Path]]:
    if not checkpoint_dir.is_dir():
        return []
    found = []
    for child in checkpoint_dir.iterdir():
        step = checkpoint_step(child)
        if step is not None and child.is_dir():
            found.append((step, child))
    return sorted(found)


def complete_checkpoints(checkpoint_dir: str | Path) -> list[Path]:
    """Complete checkpoints, oldest first."""
    return [p for _, p in _checkpoints(Path(checkpoint_dir)) if is_complete_checkpoint(p)]


def newest_complete_checkpoint(checkpoint_dir: str | Path) -> Path | None:
    done = complete_checkpoints(checkpoint_dir)
    return done[-1] if done else None


def remove_tree(path: Path) -> None:
    """Delete a folder so that no half-deleted copy keeps its name: rename it away first."""
    if not path.exists():
        return
    doomed = path.with_name(DELETING_PREFIX + path.name)
    if doomed.exists():
        shutil.rmtree(doomed, ignore_errors=True)
    path.replace(doomed)
    shutil.rmtree(doomed, ignore_errors=True)


def clean_interrupted(checkpoint_dir: str | Path) -> list[Path]:
    """Remove what interrupted writes and deletions left in ``checkpoint_dir``; returns them.

    Staging (``.tmp-*``) and deletion (``.del-*``) folders, and ``checkpoint-N`` folders without
    a readable trainer state (written by a version that did not stage checkpoints).
    """
    root = Path(checkpoint_dir)
    if not root.is_dir():
        return []
    removed = []
    for child in sorted(root.iterdir()):
        leftover = child.name.startswith((STAGING_PREFIX, DELETING_PREFIX))
        broken = checkpoint_step(child) is not None and not is_complete_checkpoint(child)
        if child.is_dir() and (leftover or broken):
            shutil.rmtree(child, ignore_errors=True)
            removed.append(child)
    if removed:
        logger.warning(
            "removed %d incomplete checkpoint folder(s) left by an interrupted run: %s",
            len(removed),
            ", ".join(p.name for p in removed),
        )
    return removed


def fsync_tree(folder: Path) -> None:
    """Flush every file under ``folder`` (and the folders themselves) to disk."""
    for dirpath, _, filenames in os.walk(folder):
        for name in filenames:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(dirpath))


def publish(staged: Path, final: Path) -> Path:
    """Make the complete folder ``staged`` visible as ``final`` in one rename.

    A leftover at ``final`` (never complete, else the caller would not write again) is renamed
    away and deleted first.
    """
    fsync_tree(staged)
    remove_tree(final)
    staged.replace(final)
    fsync_dir(final.parent)
    return final


def rotate(checkpoint_dir: str | Path, keep: int | None) -> None:
    """Keep the newest ``keep`` complete checkpoints (None: all)."""
    if keep is None or keep <= 0:
        return
    for old in complete_checkpoints(checkpoint_dir)[:-keep]:
        remove_tree(old)
