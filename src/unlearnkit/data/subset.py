"""A small TOFU: the first N real TOFU authors, laid out as a TOFU folder with the split rule of
the synthetic generator (:func:`unlearnkit.data.synth.plan_splits`).

The small-scale recipe of issue 19 fine-tunes SmolLM2-135M on such a subset: the real authors'
questions and perturbed answers, at a size a 2-core CPU can learn. Authors are taken in the
order of ``forget10_perturbed.json`` (its task 1 is TOFU's standard forget10), then
``retain_perturbed.json``: 20 rows each, the files' own order. With N = 40 and 10 tasks the
forget splits are 4 x 1 author (forget01, 2.5%), 10 x 2 (forget05, 5%) and 9 x 4 (forget10,
10%); ``holdout.json`` holds the next ``n_holdout`` authors, which no other file contains (the
membership-inference non-members). ``real_authors`` and ``world_facts`` are TOFU's own.

The folder is derived data, written under the cache (``tofu_small`` benchmark) or wherever
``unlearn data subset --out`` says; ``subset_meta.yaml`` records the source and the authors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from unlearnkit.data.loaders import DataError
from unlearnkit.data.synth import plan_splits, tofu_layout, write_files
from unlearnkit.utils import atomic_write_text, read_jsonl

ROWS_PER_AUTHOR = 20
META_FILE = "subset_meta.yaml"
AUTHOR_FILES = ("forget10_perturbed.json", "retain_perturbed.json")
GENERAL_FILES = ("real_authors_perturbed.json", "world_facts_perturbed.json")
KEEP = ("question", "answer", "paraphrased_answer", "perturbed_answer", "paraphrased_question")


def tofu_authors(source: Path) -> list[list[dict[str, Any]]]:
    """TOFU's 200 authors as lists of their 20 perturbed-file rows, in the module's order."""
    authors: list[list[dict[str, Any]]] = []
    for name in AUTHOR_FILES:
        path = Path(source) / name
        if not path.is_file():
            raise DataError(f"{source}: no {name}; a TOFU subset needs the paper's TOFU files")
        rows = [{k: r[k] for k in KEEP if k in r} for r in read_jsonl(path)]
        if len(rows) % ROWS_PER_AUTHOR:
            raise DataError(f"{path}: {len(rows)} rows is not a multiple of {ROWS_PER_AUTHOR}")
        authors.extend(rows[i : i + ROWS_PER_AUTHOR] for i in range(0, len(rows), ROWS_PER_AUTHOR))
    return authors


def write_tofu_subset(
    source: Path, out_dir: Path, n_authors: int = 40, n_tasks: int = 10, n_holdout: int = 2
) -> dict[str, int]:
    """Write the first ``n_authors`` TOFU authors of ``source`` in TOFU layout to ``out_dir``
    (plus ``holdout.json`` of the next ``n_holdout``); returns rows per file. Same arguments and
    source, byte-identical files."""
    if n_authors < 2:
        raise ValueError(f"a TOFU subset needs at least 2 authors, got {n_authors}")
    if n_tasks < 1 or n_holdout < 0:
        raise ValueError(f"n_tasks must be >= 1 and n_holdout >= 0, got {n_tasks}, {n_holdout}")
    authors = tofu_authors(Path(source))
    if n_authors + n_holdout > len(authors):
        raise ValueError(
            f"{source} has {len(authors)} authors; {n_authors} + {n_holdout} holdout asked"
        )
    plan = plan_splits(n_authors, n_tasks)
    files = tofu_layout(authors[:n_authors], plan)
    for name in GENERAL_FILES:
        files[name] = read_jsonl(Path(source) / name)
    if n_holdout:
        files["holdout.json"] = [
            r for i in range(n_authors, n_authors + n_holdout) for r in authors[i]
        ]
    out_dir = Path(out_dir)
    counts = write_files(out_dir, files)
    meta = {
        "generator": "unlearnkit.data.subset.write_tofu_subset",
        "source": str(Path(source).resolve()),
        "n_authors": n_authors,
        "n_tasks": n_tasks,
        "n_holdout": n_holdout,
        "authors_per_task": {split: len(tasks[0]) for split, tasks in plan.items()},
        "tasks": {split: len(tasks) for split, tasks in plan.items()},
        "rows": counts,
        "first_question_of_each_author": [
            a[0]["question"] for a in authors[: n_authors + n_holdout]
        ],
    }
    atomic_write_text(out_dir / META_FILE, yaml.safe_dump(meta, sort_keys=False, width=100))
    return counts
