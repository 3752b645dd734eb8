"""Checkpoint bookkeeping on hand-made folders: what counts as complete, what is cleaned."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from unlearnkit.train.checkpoints import (
    check_resume,
    clean_interrupted,
    complete_checkpoints,
    is_complete_model,
    newest_complete_checkpoint,
    publish,
    rotate,
)


def _checkpoint(root: Path, step: int, complete: bool = True) -> Path:
    d = root / f"checkpoint-{step}"
    d.mkdir(parents=True)
    (d / "model.safetensors").write_bytes(b"w")
    if complete:
        (d / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    return d


def test_newest_complete_checkpoint_skips_broken_and_staged_folders(tmp_path):
    _checkpoint(tmp_path, 2)
    _checkpoint(tmp_path, 10)  # numeric order, not text order
    _checkpoint(tmp_path, 12, complete=False)  # an older version killed mid-write
    truncated = _checkpoint(tmp_path, 11, complete=False)
    (truncated / "trainer_state.json").write_text('{"global_st')  # killed while writing it
    _checkpoint(tmp_path / ".tmp-checkpoint-13", 13)  # staged, never published
    assert newest_complete_checkpoint(tmp_path) == tmp_path / "checkpoint-10"
    removed = clean_interrupted(tmp_path)
    assert sorted(p.name for p in removed) == [
        ".tmp-checkpoint-13",
        "checkpoint-11",
        "checkpoint-12",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-10", "checkpoint-2"]
    assert newest_complete_checkpoint(tmp_path / "absent") is None


def test_rotate_keeps_the_newest_and_publish_replaces_a_leftover(tmp_path):
    for step in (1, 2, 3):
        _checkpoint(tmp_path, step)
    rotate(tmp_path, 2)
    assert [p.name for p in complete_checkpoints(tmp_path)] == ["checkpoint-2", "checkpoint-3"]
    assert not list(tmp_path.glob(".del-*"))
    staged = tmp_path / ".tmp-model"
    staged.mkdir()
    (staged / "config.json").write_text("{}")
    (staged / "model.safetensors").write_bytes(b"w")
    final = tmp_path / "model"
    final.mkdir()
    (final / "config.json").write_text("{}")  # a leftover without weights: not a model
    assert not is_complete_model(final)
    publish(staged, final)
    assert is_complete_model(final) and not staged.exists()


@pytest.mark.parametrize("value", [True, False, "auto"])
def test_check_resume_accepts_the_three_modes(value):
    assert check_resume(value) == value


def test_check_resume_rejects_anything_else():
    with pytest.raises(ValueError, match="resume must be True, False or 'auto'"):
        check_resume("yes")
