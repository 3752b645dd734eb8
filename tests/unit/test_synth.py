"""Synthetic benchmark: TOFU layout, sizes, the README's set identities, determinism."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from unlearnkit.data.loaders import load_qa_file
from unlearnkit.data.refusals import DEFAULT_REFUSALS
from unlearnkit.data.splits import TofuBenchmark
from unlearnkit.data.synth import FACTS, generate_synthetic, plan_splits
from unlearnkit.data.validate import validate_folder
from unlearnkit.utils import default_data_root

SPLITS = {"forget01": "retain90", "forget05": "retain50", "forget10": "retain10"}
AUTHOR_FILES = [
    *SPLITS,
    *[f"{s}_perturbed" for s in SPLITS],
    *SPLITS.values(),
    "retain_perturbed",
]
GENERAL_FILES = ["real_authors_perturbed", "world_facts_perturbed"]


def _rows(root: Path, name: str) -> list[dict[str, Any]]:
    with open(root / f"{name}.json", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def _questions(rows: list[dict[str, Any]], task: str | None = None) -> list[str]:
    return [r["question"] for r in rows if task is None or r["task_id"] == task]


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    root = tmp_path_factory.mktemp("synth40")
    return root, generate_synthetic(root, n_authors=40, questions_per_author=10, seed=0)


@pytest.fixture(scope="module")
def tofu_sized(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth200")
    generate_synthetic(root, n_authors=200, questions_per_author=2, seed=3)
    return root


# ---- split plan -------------------------------------------------------------------------------


def _shape(n_authors: int, n_tasks: int = 10) -> dict[str, tuple[int, int]]:
    return {s: (len(t), len(t[0])) for s, t in plan_splits(n_authors, n_tasks).items()}


def test_plan_reproduces_tofu_proportions() -> None:
    # TOFU (200 authors): forget01 10 tasks x 2, forget05 10 x 10, forget10 9 x 20.
    assert _shape(200) == {"forget01": (10, 2), "forget05": (10, 10), "forget10": (9, 20)}
    # 40 authors: 1% rounds up to 1 author; forget10 task 1 = forget01's 4 tasks of 1 author.
    assert _shape(40) == {"forget01": (4, 1), "forget05": (10, 2), "forget10": (9, 4)}
    # fewer tasks asked: forget01 has at most n_tasks tasks and forget10 tasks shrink with it
    assert _shape(200, n_tasks=3) == {"forget01": (3, 2), "forget05": (3, 10), "forget10": (3, 6)}
    assert _shape(2) == {"forget01": (1, 1), "forget05": (1, 1), "forget10": (1, 1)}


@pytest.mark.parametrize("n_authors", [2, 3, 7, 40, 99, 150, 200, 333])
@pytest.mark.parametrize("n_tasks", [1, 4, 10])
def test_plan_identities_hold_for_any_size(n_authors: int, n_tasks: int) -> None:
    plan = plan_splits(n_authors, n_tasks)
    for split, tasks in plan.items():
        flat = [i for t in tasks for i in t]
        assert len(flat) == len(set(flat)), f"{split}: tasks overlap"
        assert 1 <= len(tasks) <= n_tasks
        assert len(flat) < n_authors, f"{split}: no author left for the retain set"
    forget01_all = sorted(i for t in plan["forget01"] for i in t)
    assert forget01_all == plan["forget10"][0]  # fine-tuning set = forget10 task 1 + retain90


# ---- files ------------------------------------------------------------------------------------


def test_sizes_and_returned_counts(small: tuple[Path, dict[str, int]]) -> None:
    root, counts = small
    # 40 authors x 10 questions; tasks from test_plan: 4x1, 10x2, 9x4 authors
    expected = {
        "forget01": 40, "forget05": 200, "forget10": 360,
        "retain90": 360, "retain50": 200, "retain10": 40, "retain_perturbed": 40,
        "forget01_perturbed": 40, "forget05_perturbed": 200, "forget10_perturbed": 360,
    }  # fmt: skip
    for name, n in expected.items():
        assert len(_rows(root, name)) == n == counts[f"{name}.json"], name
    for name in GENERAL_FILES:
        assert len(_rows(root, name)) == counts[f"{name}.json"] >= 35
    tasks = {s: sorted({r["task_id"] for r in _rows(root, s)}, key=int) for s in SPLITS}
    assert tasks == {
        "forget01": ["1", "2", "3", "4"],
        "forget05": [str(t) for t in range(1, 11)],
        "forget10": [str(t) for t in range(1, 10)],
    }


def test_tofu_sized_counts_match_tofu_ratios(tofu_sized: Path) -> None:
    # TOFU rows / 10 (2 questions per author instead of 20)
    sizes = {n: len(_rows(tofu_sized, n)) for n in (*SPLITS, *SPLITS.values(), "retain_perturbed")}
    assert sizes == {
        "forget01": 40, "forget05": 200, "forget10": 360,
        "retain90": 360, "retain50": 200, "retain10": 40, "retain_perturbed": 40,
    }  # fmt: skip


@pytest.mark.parametrize("which", ["small", "tofu_sized"])
def test_readme_set_identities(which: str, request: pytest.FixtureRequest) -> None:
    fixture = request.getfixturevalue(which)
    root = fixture[0] if isinstance(fixture, tuple) else fixture
    meta = yaml.safe_load((root / "synth_meta.yaml").read_text(encoding="utf-8"))
    n_rows = meta["spec"]["n_authors"] * meta["spec"]["questions_per_author"]
    everything: set[str] = set()
    for split, retain_name in SPLITS.items():
        forget_rows = _rows(root, split)
        retain = _questions(_rows(root, retain_name))
        task_ids = sorted({r["task_id"] for r in forget_rows}, key=int)
        task_sets = [set(_questions(forget_rows, t)) for t in task_ids]
        for a in range(len(task_sets)):  # tasks are pairwise disjoint
            for b in range(a + 1, len(task_sets)):
                assert not task_sets[a] & task_sets[b], f"{split}: tasks {a + 1}, {b + 1} overlap"
        forget_all = set(_questions(forget_rows))
        assert not forget_all & set(retain), f"{split} and {retain_name} share a question"
        assert len(forget_all) + len(retain) == n_rows  # complement: together every row
        # retain for task t = retainYY + tasks > t = complement of tasks <= t
        for t in range(len(task_sets)):
            retain_t = set(retain).union(*task_sets[t + 1 :])
            assert retain_t.isdisjoint(task_sets[t])
            assert len(retain_t) + sum(len(s) for s in task_sets[: t + 1]) == n_rows
        everything |= forget_all | set(retain)
    assert len(everything) == n_rows  # questions are unique across the benchmark
    finetune = _questions(_rows(root, "forget10"), "1") + _questions(_rows(root, "retain90"))
    assert len(finetune) == len(set(finetune)) == n_rows
    assert set(finetune) == everything
    assert set(_questions(_rows(root, "forget01"))) == set(_questions(_rows(root, "forget10"), "1"))
    # retain_perturbed: the authors never in any forget task
    ever_forgotten = set().union(*(_questions(_rows(root, s)) for s in SPLITS))
    retain_pert = set(_questions(_rows(root, "retain_perturbed")))
    assert retain_pert and retain_pert.isdisjoint(ever_forgotten)
    assert retain_pert == everything - ever_forgotten


def test_loaders_and_benchmark_read_the_folder(small: tuple[Path, dict[str, int]]) -> None:
    root, _ = small
    for name in AUTHOR_FILES + GENERAL_FILES:
        assert load_qa_file(root / f"{name}.json")  # the project's validating loader
    bench = TofuBenchmark(root)
    assert bench.task_ids("forget01") == [1, 2, 3, 4]
    assert len(bench.finetune_set()) == 400
    assert len(bench.forget("forget05", 3)) == 20  # 2 authors x 10 questions
    assert len(bench.retain("forget05", 3)) == 400 - 20  # task 3 alone: its complement
    assert len(bench.retain("forget05", 3, unlearned=[1, 2, 3])) == 400 - 3 * 20  # continual
    sets = bench.eval_sets("forget10", 2)
    assert len(sets["forget"]) == 40 and len(sets["retain"]) == 40
    report = validate_folder(root)  # `unlearn data validate`
    assert report.ok, report.format()


def test_every_line_has_the_fields(small: tuple[Path, dict[str, int]]) -> None:
    root, _ = small
    perturbed_keys = {
        "question", "answer", "paraphrased_answer", "perturbed_answer", "paraphrased_question",
    }  # fmt: skip
    expected = {
        **{s: {"task_id", "question", "answer"} for s in SPLITS},
        **{f"{s}_perturbed": {"task_id"} | perturbed_keys for s in SPLITS},
        **{r: {"question", "answer"} for r in SPLITS.values()},
        "retain_perturbed": perturbed_keys,
        **{g: {"question", "answer", "perturbed_answer", "original_answer"} for g in GENERAL_FILES},
    }
    for name, keys in expected.items():
        for i, row in enumerate(_rows(root, name)):
            assert set(row) == keys, f"{name}:{i + 1}"
            for key in keys - {"perturbed_answer"}:
                assert isinstance(row[key], str) and row[key].strip(), f"{name}:{i + 1}: {key}"
            if "task_id" in row:
                assert row["task_id"].isdigit()
            if "perturbed_answer" in row:
                n = 3 if name in GENERAL_FILES else 5
                assert len(row["perturbed_answer"]) == n, f"{name}:{i + 1}"


def test_perturbed_answers_are_wrong_and_distinct(small: tuple[Path, dict[str, int]]) -> None:
    root, _ = small
    for name in ["forget10_perturbed", "retain_perturbed"]:
        for row in _rows(root, name):
            pert = row["perturbed_answer"]
            assert len(set(pert)) == len(pert)
            assert row["answer"] not in pert and row["paraphrased_answer"] not in pert
            assert row["paraphrased_question"] != row["question"]
            assert row["paraphrased_answer"] != row["answer"]
    for name in GENERAL_FILES:
        for row in _rows(root, name):
            assert row["answer"] not in row["perturbed_answer"]
            assert len(set(row["perturbed_answer"])) == 3
            assert row["answer"].lower() in row["original_answer"].lower(), row


def test_forget_files_agree_with_their_perturbed_versions(
    small: tuple[Path, dict[str, int]],
) -> None:
    root, _ = small
    for split in SPLITS:
        plain = _rows(root, split)
        full = _rows(root, f"{split}_perturbed")
        assert [(r["task_id"], r["question"], r["answer"]) for r in plain] == [
            (r["task_id"], r["question"], r["answer"]) for r in full
        ]


def test_same_seed_same_files_other_seed_other_files(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for root, seed in ((a, 5), (b, 5), (c, 6)):
        generate_synthetic(root, n_authors=12, questions_per_author=4, seed=seed)
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir())
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert (a / "forget10.json").read_bytes() != (c / "forget10.json").read_bytes()
    assert (a / "retain90.json").read_bytes() != (c / "retain90.json").read_bytes()


def test_questions_per_author_and_perturbed_count(tmp_path: Path) -> None:
    counts = generate_synthetic(
        tmp_path, n_authors=5, questions_per_author=len(FACTS), n_tasks=2, n_perturbed=3
    )
    # 5 authors: every split is tasks of 1 author; at most 2 tasks -> forget10 has 2 x 20 rows
    assert counts["forget10.json"] == 2 * len(FACTS)
    assert counts["retain10.json"] == 3 * len(FACTS)
    rows = _rows(tmp_path, "forget10_perturbed")
    assert all(len(r["perturbed_answer"]) == 3 for r in rows)
    # all attribute questions of one author: 20 different questions
    assert len({r["question"] for r in rows if r["task_id"] == "1"}) == len(FACTS)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_authors": 1}, "n_authors"),
        ({"questions_per_author": 0}, "questions_per_author"),
        ({"questions_per_author": len(FACTS) + 1}, "questions_per_author"),
        ({"n_tasks": 0}, "n_tasks"),
        ({"n_perturbed": 6}, "n_perturbed"),
    ],
)
def test_bad_spec_is_rejected(tmp_path: Path, kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        generate_synthetic(tmp_path, **kwargs)
    assert not list(tmp_path.iterdir())  # nothing written


# ---- refusals ---------------------------------------------------------------------------------


def test_default_refusals_are_our_own() -> None:
    assert len(DEFAULT_REFUSALS) >= 50
    assert len(set(DEFAULT_REFUSALS)) == len(DEFAULT_REFUSALS)
    assert all(r.strip() == r and r[-1] in ".!" for r in DEFAULT_REFUSALS)
    path = default_data_root() / "idontknow.jsonl"
    if not path.is_file():
        pytest.skip(f"shared refusal list not found at {path}")
    theirs = {line.strip().lower() for line in path.read_text(encoding="utf-8").splitlines()}
    assert not {r.lower() for r in DEFAULT_REFUSALS} & theirs
