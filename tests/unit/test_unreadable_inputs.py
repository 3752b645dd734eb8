"""Every unreadable input names its file and, where it has one, its line."""

from __future__ import annotations

import json
import shutil

import pytest

from unlearnkit.cli import main
from unlearnkit.config import ConfigError
from unlearnkit.data.loaders import load_qa_file
from unlearnkit.models.loading import load_model
from unlearnkit.settings import load_config
from unlearnkit.utils import read_json, read_jsonl, read_text

ROWS = [{"question": f"Who wrote book {i}?", "answer": f"Ann {i} did."} for i in range(5)]


def _jsonl(rows: list[dict]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def test_non_utf8_bytes_name_file_line_and_byte(tmp_path):
    path = tmp_path / "retain90.json"
    data = _jsonl(ROWS)
    third = data.index(b"Who wrote book 2")
    path.write_bytes(data[:third] + b"\xff" + data[third:])
    with pytest.raises(ValueError) as err:
        read_text(path)
    assert str(err.value).startswith(f"{path}: line 3: not UTF-8 (byte 0xff at column 15)")
    with pytest.raises(ValueError, match=f"{path}: line 3: not UTF-8"):
        load_qa_file(path)


def test_data_validate_reports_a_non_utf8_file_in_one_line(tmp_path, capsys):
    folder = tmp_path / "bench"
    folder.mkdir()
    (folder / "forget01.json").write_bytes(_jsonl(ROWS[:2]))
    data = _jsonl(ROWS)
    (folder / "retain90.json").write_bytes(data[:-10] + b"\xff\xfe" + data[-10:])
    assert main(["data", "validate", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {folder / 'retain90.json'}: line 5: not UTF-8")
    assert err.count("\n") == 1


def test_truncated_json_lines_and_arrays_name_the_line(tmp_path):
    lines = tmp_path / "forget01.json"
    lines.write_bytes(_jsonl(ROWS)[:-12])  # the last record cut short, as by a full disk
    with pytest.raises(ValueError, match=f"{lines}:5: malformed JSON"):
        load_qa_file(lines)
    with pytest.raises(ValueError, match=f"{lines}: line 5: malformed JSON .*truncated"):
        read_jsonl(lines)
    array = tmp_path / "world_facts.json"
    array.write_text(json.dumps(ROWS, indent=1)[:-30])
    with pytest.raises(ValueError, match=f"{array}:\\d+: malformed JSON"):
        load_qa_file(array)
    summary = tmp_path / "summary.json"
    summary.write_text('{\n  "splits": {\n    "forget": {"rouge_l": 0.5')
    with pytest.raises(ValueError, match=f"{summary}: line 3: malformed JSON"):
        read_json(summary)


def test_model_folder_without_weights(tiny_model_dir, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "model.safetensors").unlink()
    with pytest.raises(ValueError, match=f"^{folder}: no model weights \\(model.safetensors or"):
        load_model(folder, device="cpu")
    (folder / "config.json").unlink()
    with pytest.raises(ValueError, match=f"^{folder}: no config.json; not a model folder"):
        load_model(folder, device="cpu")
    with pytest.raises(ValueError, match=f"^{tmp_path}/runs/x/model: model folder not found"):
        load_model(tmp_path / "runs" / "x" / "model", device="cpu")


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_corrupt_safetensors_names_the_file(tiny_model_dir, tmp_path, damage):
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"\x00" * 64)
    with pytest.raises(ValueError, match=f"^{weights}: not a readable safetensors file"):
        load_model(folder, device="cpu")


def test_yaml_errors_name_the_file_and_line(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("method:\n  name: ME+GD\ntrain:\n  epochs: [1, 2\n")
    with pytest.raises(ConfigError, match=f"^{path}: line \\d: not valid YAML"):
        load_config(path)
    path.write_text("method:\n  name: ME+GD\ntrain:\n  epochs: 2\n  lerning_rate: 1e-5\n")
    with pytest.raises(
        ConfigError, match=f"^{path}: line 5: unknown config key 'train.lerning_rate'"
    ):
        load_config(path)
    path.write_text("model:\n  name: yes\n")
    with pytest.raises(ConfigError, match=f"^{path}: line 2: model.name: expected a string"):
        load_config(path)
    path.write_bytes(b"method:\n  name: \xe9\n")
    with pytest.raises(ValueError, match=f"^{path}: line 2: not UTF-8"):
        load_config(path)
