"""The small TOFU (data/subset.py): real authors in TOFU layout, split identities, holdout apart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from unlearnkit.data.splits import TofuBenchmark
from unlearnkit.data.subset import write_tofu_subset
from unlearnkit.data.validate import validate_folder


def _fake_tofu(root: Path, forget_authors: int = 8, retain_authors: int = 2) -> Path:
    """A TOFU-like source: authors 'A0'..'An' with 20 rows each, in the paper's files."""

    def rows(first: int, n: int) -> list[dict]:
        return [
            {
                "task_id": "1",
                "question": f"A{a} q{j}?",
                "answer": f"A{a} answer {j}.",
                "paraphrased_answer": f"A{a} para {j}.",
                "perturbed_answer": [f"A{a} wrong {j} {k}." for k in range(3)],
                "paraphrased_question": f"A{a} pq{j}?",
            }
            for a in range(first, first + n)
            for j in range(20)
        ]

    root.mkdir(parents=True)
    files = {
        "forget10_perturbed.json": rows(0, forget_authors),
        "retain_perturbed.json": rows(forget_authors, retain_authors),
        "real_authors_perturbed.json": [
            {"question": "q?", "answer": "a", "perturbed_answer": ["x"]}
        ],
        "world_facts_perturbed.json": [
            {"question": "w?", "answer": "b", "perturbed_answer": ["y"]}
        ],
    }
    for name, data in files.items():
        (root / name).write_text("".join(json.dumps(r) + "\n" for r in data))
    return root


def test_a_subset_keeps_the_first_authors_in_tofu_layout(tmp_path: Path) -> None:
    src = _fake_tofu(tmp_path / "src")
    counts = write_tofu_subset(src, tmp_path / "small", n_authors=9, n_tasks=3, n_holdout=1)
    report = validate_folder(str(tmp_path / "small"))
    assert report.ok, report.format()
    bench = TofuBenchmark(tmp_path / "small")
    forget = bench.forget("forget01", 1)
    retain = bench.retain("forget01", 1)
    authors = {r.question.split()[0] for r in forget + retain}
    # the 9 first authors: the 8 of forget10_perturbed, then the first of retain_perturbed
    assert authors == {f"A{i}" for i in range(9)}
    assert not {r.question for r in forget} & {r.question for r in retain}
    holdout = {r.question.split()[0] for r in bench.holdout("forget01")}
    assert holdout == {"A9"} and counts["holdout.json"] == 20
    first = bench.eval_sets("forget01", 1)["forget"][0]
    assert first.perturbed_answers == ["A0 wrong 0 0.", "A0 wrong 0 1.", "A0 wrong 0 2."]


def test_the_same_arguments_write_byte_identical_files(tmp_path: Path) -> None:
    src = _fake_tofu(tmp_path / "src")
    write_tofu_subset(src, tmp_path / "a", n_authors=6, n_tasks=2)
    write_tofu_subset(src, tmp_path / "b", n_authors=6, n_tasks=2)
    for f in sorted((tmp_path / "a").glob("*.json")):
        assert f.read_bytes() == (tmp_path / "b" / f.name).read_bytes(), f.name


def test_asking_for_more_authors_than_the_source_has_is_a_one_line_error(tmp_path) -> None:
    src = _fake_tofu(tmp_path / "src")
    with pytest.raises(ValueError, match="has 10 authors"):
        write_tofu_subset(src, tmp_path / "x", n_authors=10, n_holdout=1)


def test_the_registered_small_tofu_has_forget_splits_of_1_2_and_4_authors(shared_data) -> None:
    from unlearnkit.data.splits import open_benchmark

    bench = open_benchmark("tofu_small")
    assert [len(bench.forget(s, 1)) for s in ("forget01", "forget05", "forget10")] == [20, 40, 80]
    assert len(bench.task_ids("forget01")) == 4  # continual: 4 tasks of one author
    assert bench.has_holdout
