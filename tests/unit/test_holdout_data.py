"""Holdout splits (membership-inference non-members): synthetic holdout authors, TOFU carving."""

from __future__ import annotations

from pathlib import Path

import pytest

from unlearnkit.cli import main
from unlearnkit.data.loaders import DataError
from unlearnkit.data.splits import TofuBenchmark, open_benchmark
from unlearnkit.data.synth import generate_holdout, generate_synthetic


def _files(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(root.glob("*.json"))}


def test_synthetic_holdout_authors_are_in_no_other_file(tmp_path: Path) -> None:
    plain, with_holdout = tmp_path / "plain", tmp_path / "holdout"
    generate_synthetic(plain, n_authors=12, questions_per_author=4, seed=1)
    counts = generate_synthetic(with_holdout, n_authors=12, questions_per_author=4, seed=1,
                                n_holdout=3)  # fmt: skip
    assert counts["holdout.json"] == 3 * 4
    files = _files(with_holdout)
    holdout = files.pop("holdout.json")
    assert files == _files(plain)  # the other files do not depend on the holdout
    bench = TofuBenchmark(with_holdout)
    sets = bench.eval_sets("forget01", 1)
    assert len(sets["holdout"]) == 12 and "holdout" not in TofuBenchmark(plain).eval_sets(
        "forget01"
    )
    other = b"".join(files.values()).decode()
    # holdout questions (author names inside) never appear in a training or evaluation file
    assert all(it.question not in other for it in sets["holdout"])
    trained = {it.question for it in bench.finetune_set()}
    assert trained.isdisjoint(it.question for it in sets["holdout"])
    # deterministic
    generate_holdout(plain, 3)
    assert (plain / "holdout.json").read_bytes() == holdout


def test_cli_synth_writes_holdout(tmp_path: Path, capsys) -> None:
    out = tmp_path / "syn"
    assert main(["data", "synth", "--out", str(out), "--authors", "12", "--questions", "4",
                 "--holdout-authors", "2"]) == 0  # fmt: skip
    assert "holdout.json" in capsys.readouterr().out
    assert len((out / "holdout.json").read_text().splitlines()) == 8
    assert main(["data", "validate", str(out)]) == 0
    assert main(["data", "synth", "--out", str(out), "--holdout-authors", "-1"]) == 2


def test_tofu_holdout_carved_from_the_authors_fine_tuning_leaves_out(shared_data: Path) -> None:
    root = shared_data / "tofu"
    plain = open_benchmark(str(root))
    bench = open_benchmark(str(root), holdout_authors=2)
    retain90 = [it.question for it in TofuBenchmark(root).retain_model_set("forget01")]
    holdout = bench.eval_sets("forget01", 1)["holdout"]
    assert [it.question for it in holdout] == retain90[-40:]  # 2 authors x 20 rows, the last ones
    carved = {it.question for it in holdout}
    assert len(bench.finetune_set()) == len(plain.finetune_set()) - 40
    for rows in (
        bench.finetune_set(),
        bench.retain("forget01", 1),
        bench.retain_model_set("forget05"),
    ):
        assert carved.isdisjoint(it.question for it in rows)
    assert "holdout" not in plain.eval_sets("forget01", 1)
    with pytest.raises(DataError, match="retain evaluation split"):
        open_benchmark(str(root), holdout_authors=170)  # would reach retain_perturbed's authors
    with pytest.raises(DataError, match="TOFU-layout"):
        open_benchmark(str(shared_data / "real_world"), holdout_authors=1)
