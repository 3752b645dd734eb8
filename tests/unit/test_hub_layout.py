"""The hub's TOFU layout (locuslab/TOFU) loads as it is from a local folder, offline.

The folders are built here from the synthetic generator the way the hub lays TOFU out: ``full``,
``forget01/05/10`` without ``task_id``, their complements ``retain99/95/90``, ``holdout01/05/10``
(other authors) and the ``*_perturbed`` sets; as JSON-lines files (the repository's files, also
what the hub client's cache holds), as Parquet files in per-config folders (the hub's converted
datasets) and as Arrow files written by ``datasets``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from unlearnkit.cli import main
from unlearnkit.data.loaders import DataError, load_qa_file
from unlearnkit.data.splits import (
    HOLDOUT_SPLITS,
    HUB_RETAIN,
    TofuBenchmark,
    load_holdout,
    open_benchmark,
)
from unlearnkit.data.synth import generate_synthetic

SPLITS = list(HUB_RETAIN)
EVAL_CONFIGS = ["retain_perturbed", "real_authors_perturbed", "world_facts_perturbed"]


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _pairs(rows) -> set[tuple[str, str]]:
    return {
        (r["question"], r["answer"]) if isinstance(r, dict) else (r.question, r.answer)
        for r in rows
    }


def _task1(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "task_id"} for r in rows if r["task_id"] == "1"]


@pytest.fixture(scope="module")
def hub_configs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict]]:
    """Every config of the hub's TOFU, as rows, derived from a synthetic paper-layout folder."""
    root = tmp_path_factory.mktemp("paper")
    generate_synthetic(root / "paper", n_authors=20, questions_per_author=2, seed=1, n_tasks=3)
    generate_synthetic(root / "unseen", n_authors=20, questions_per_author=2, seed=2, n_tasks=3)
    paper, unseen = root / "paper", root / "unseen"
    full = _task1(_rows(paper / "forget10.json")) + _rows(paper / "retain90.json")
    full = [{"question": r["question"], "answer": r["answer"]} for r in full]
    configs: dict[str, list[dict]] = {"full": full}
    for split, retain in HUB_RETAIN.items():
        configs[split] = _task1(_rows(paper / f"{split}.json"))
        configs[f"{split}_perturbed"] = _task1(_rows(paper / f"{split}_perturbed.json"))
        gone = _pairs(configs[split])
        configs[retain] = [r for r in full if (r["question"], r["answer"]) not in gone]
        configs[HOLDOUT_SPLITS[split]] = _task1(_rows(unseen / f"{split}.json"))
    for name in EVAL_CONFIGS:
        configs[name] = _rows(paper / f"{name}.json")
    assert not _pairs(configs["holdout10"]) & _pairs(full)  # unseen authors
    return configs


def write_hub_folder(root: Path, configs: dict[str, list[dict]], fmt: str) -> Path:
    """Lay ``configs`` out as the hub (or ``datasets``) would; returns the folder to open."""
    root.mkdir(parents=True)
    if fmt == "hub-cache":  # huggingface_hub's cache: datasets--owner--name/snapshots/<rev>/
        write_hub_folder(root / "snapshots" / "0123abcd", configs, "json")
        return root
    for name, rows in configs.items():
        if fmt == "json":
            (root / f"{name}.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
        elif fmt == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            (root / name).mkdir()
            pq.write_table(pa.Table.from_pylist(rows), root / name / "train-00000-of-00001.parquet")
        elif fmt == "arrow":
            from datasets import Dataset

            Dataset.from_list(rows).save_to_disk(str(root / name))
    (root / "README.md").write_text("---\nconfigs:\n- config_name: full\n---\n")
    return root


@pytest.mark.parametrize("fmt", ["json", "parquet", "arrow", "hub-cache"])
def test_hub_layout_loads_as_it_is(tmp_path, hub_configs, fmt):
    bench = open_benchmark(str(write_hub_folder(tmp_path / "TOFU", hub_configs, fmt)))
    assert isinstance(bench, TofuBenchmark)
    full = _pairs(hub_configs["full"])
    for split in SPLITS:
        forget = bench.forget(split)
        assert not bench.has_task_ids(split) and bench.task_ids(split) == [1]
        assert _pairs(forget) == _pairs(hub_configs[split]) and len(forget) > 0
        retain = bench.retain(split)
        # the retain set is the complement of the forget set
        assert _pairs(retain) == full - _pairs(forget)
        assert len(retain) + len(forget) == len(full)
        assert _pairs(bench.retain_model_set(split)) == full - _pairs(forget)
        sets = bench.eval_sets(split)
        # the hub's holdout of the split is evaluated too (the MIA non-members)
        assert set(sets) == {"forget", "retain", "real_authors", "world_facts", "holdout"}
        assert _pairs(sets["holdout"]) == _pairs(hub_configs[HOLDOUT_SPLITS[split]])
        assert len(sets["forget"]) == len(forget) and sets["forget"][0].perturbed_answers
        assert bench.has_holdout
        holdout = load_holdout(bench, split)
        assert _pairs(holdout) == _pairs(hub_configs[HOLDOUT_SPLITS[split]])
    assert _pairs(bench.finetune_set()) == full


def test_retain_set_is_derived_from_full_when_the_retain_files_are_absent(tmp_path, hub_configs):
    configs = {k: v for k, v in hub_configs.items() if not k.startswith("retain9")}
    bench = open_benchmark(str(write_hub_folder(tmp_path / "TOFU", configs, "json")))
    full = _pairs(hub_configs["full"])
    for split in SPLITS:
        assert _pairs(bench.retain(split)) == full - _pairs(hub_configs[split])
    (tmp_path / "TOFU" / "full.json").unlink()
    with pytest.raises(DataError) as err:
        bench.retain("forget01")
    msg = str(err.value)
    assert "\n" not in msg and "retain99" in msg and "'full'" in msg


def test_continual_tasks_on_the_hub_layout_are_a_one_line_error(
    tmp_path, hub_configs, tiny_model_dir, capsys
):
    root = write_hub_folder(tmp_path / "TOFU", hub_configs, "json")
    bench = open_benchmark(str(root))
    with pytest.raises(DataError, match="no 'task_id' field") as err:
        bench.forget("forget05", 2)
    assert "forgetXX.json with task_id" in str(err.value)
    argv = ["run", "--scenario", "continual", "--model", str(tiny_model_dir), "--benchmark",
            str(root), "--split", "forget01", "--method", "GA+GD",
            "--out", str(tmp_path / "r")]  # fmt: skip
    assert main(argv) == 2
    err_text = capsys.readouterr().err.strip()
    assert (
        err_text.startswith("error: continual unlearning needs task ids") and "\n" not in err_text
    )
    assert "forget01" in err_text and not (tmp_path / "r").exists()


def test_paper_layout_has_no_holdout(tmp_path):
    generate_synthetic(tmp_path / "paper", n_authors=20, questions_per_author=2, seed=1, n_tasks=3)
    bench = open_benchmark(str(tmp_path / "paper"))
    assert bench.has_task_ids("forget01") and not bench.has_holdout
    with pytest.raises(DataError, match="no holdout sets"):
        load_holdout(bench, "forget01")


def test_hub_id_asks_the_hub_only_for_configs_it_has(tmp_path, hub_configs, monkeypatch):
    """``--benchmark locuslab/TOFU`` (hub faked from a local folder): no request for the
    paper's retain50/retain10, which the hub does not have."""
    import datasets

    local = write_hub_folder(tmp_path / "hub", hub_configs, "json")
    requested: list[str] = []

    def config_names(repo_id, **kwargs):
        assert repo_id == "locuslab/TOFU"
        return sorted(hub_configs)

    def load_dataset(repo_id, name=None, split=None, **kwargs):
        requested.append(name)
        if name not in hub_configs:  # what the hub answers for an unknown config
            raise ValueError(f"BuilderConfig '{name}' not found. Available: {sorted(hub_configs)}")
        return datasets.Dataset.from_list(_rows(local / f"{name}.json"))

    monkeypatch.setattr(datasets, "get_dataset_config_names", config_names)
    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    bench = open_benchmark("locuslab/TOFU")
    assert requested and set(requested) <= set(hub_configs)
    assert "retain50" not in requested and "retain10" not in requested
    full = _pairs(hub_configs["full"])
    assert _pairs(bench.retain("forget01")) == full - _pairs(hub_configs["forget01"])
    assert bench.has_holdout
    requested.clear()
    open_benchmark("locuslab/TOFU")  # cached: the hub is not asked again
    assert requested == []


def test_truncated_parquet_file_is_named(tmp_path, hub_configs):
    folder = write_hub_folder(tmp_path / "TOFU", hub_configs, "parquet")
    part = folder / "forget01" / "train-00000-of-00001.parquet"
    part.write_bytes(part.read_bytes()[:50])
    with pytest.raises(DataError, match=r"train-00000-of-00001\.parquet: not a readable parquet"):
        load_qa_file(part)
