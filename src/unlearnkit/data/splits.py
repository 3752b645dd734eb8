"""Benchmark folders and the paper's split arithmetic.

Two TOFU layouts load as they are (one file per *config*: ``<config>.json`` JSON lines, or
Parquet / Arrow files in a ``<config>/`` folder or ``data/<config>-*.parquet``, as the hub and
``datasets`` write them):

- the paper's (``shared/data/README.md``): ``forget01/05/10`` carry ``task_id``s for continual
  unlearning; the retain set used while unlearning task ``t`` of ``forgetXX`` is ``retainYY``
  (``retain90/50/10``: the authors outside all of the split's tasks) plus the rows of the split's
  tasks not unlearned so far (every task outside ``unlearned``, which defaults to ``[t]``;
  continual runs pass the tasks done so far and ``t``, in any order). For a single task this is
  the complement of the forget set.
- the hub's (``locuslab/TOFU``): ``full``, ``forget01/05/10`` without ``task_id`` (one task each),
  their complements ``retain99/95/90``, ``holdout01/05/10`` (authors the target never saw), the
  ``*_perturbed`` evaluation sets. The retain set is the complement of the forget set (the
  ``retainYY`` file, else ``full`` minus the forget set). The paper's continual tasks are not
  derivable from it (the task order is the paper's own): asking for them is a one-line error.

Holdout (the non-members of membership inference), every source the folder has: the hub's
``holdoutXX`` of the forget split, the rows of ``holdout.json`` (``unlearn data synth
--holdout-authors N``), and, with ``holdout_authors`` = N > 0, the last N authors of retain90,
carved out: then no fine-tuning set (target, retain model) and no retain set of unlearning
contains them. TOFU's files are author-ordered, 20 rows per author (a synthetic folder records
its own count).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml

from unlearnkit.data.loaders import QA_SUFFIXES, DataError, load_qa_file
from unlearnkit.data.records import QAItem
from unlearnkit.registry import BENCHMARKS
from unlearnkit.utils import cache_root, default_data_root

# The paper's retain set of each forget split: the authors outside all of its tasks.
FORGET_SPLITS = {"forget01": "retain90", "forget05": "retain50", "forget10": "retain10"}
# The hub's retain set of each (single-task) forget split: its complement.
HUB_RETAIN = {"forget01": "retain99", "forget05": "retain95", "forget10": "retain90"}
# TOFU's holdout sets (hub layout): as many rows as the forget split, of unseen authors.
HOLDOUT_SPLITS = {"forget01": "holdout01", "forget05": "holdout05", "forget10": "holdout10"}
HOLDOUT_FILE = "holdout"  # the synthetic generator's holdout authors (holdout.json)
TOFU_ROWS_PER_AUTHOR = 20
SYNTHETIC_HOLDOUT_AUTHORS = 4  # the registered synthetic benchmark: 40 authors + 4 non-members
TOFU_EVAL_FILES = {
    "retain": "retain_perturbed.json",
    "real_authors": "real_authors_perturbed.json",
    "world_facts": "world_facts_perturbed.json",
}
PAPER_FILES_HINT = (
    "the paper's data files have them (forgetXX.json with task_id, retain90/50/10.json), "
    "e.g. --benchmark ../shared/data/tofu"
)


@cache
def _load(paths: tuple[Path, ...]) -> tuple[QAItem, ...]:
    return tuple(it for path in paths for it in load_qa_file(path))


def _table_files(folder: Path) -> list[Path]:
    """The data files of one config folder: its Parquet/Arrow/JSON files, from the most recent
    sub-folder when ``datasets`` kept several versions (``<config>/0.0.0/<hash>/``)."""
    files = [
        f
        for f in folder.rglob("*")
        if f.suffix in QA_SUFFIXES and f.is_file() and not f.name.startswith(".")
        and f.name not in ("dataset_info.json", "state.json", "dataset_dict.json")
    ]  # fmt: skip
    if not files:
        return []
    newest = max({f.parent for f in files}, key=lambda d: d.stat().st_mtime)
    return sorted(f for f in files if f.parent == newest)


def config_files(root: Path, config: str) -> list[Path]:
    """The files holding ``config`` in ``root`` (empty when the folder does not have it)."""
    for suffix in QA_SUFFIXES:
        if (root / f"{config}{suffix}").is_file():
            return [root / f"{config}{suffix}"]
    if (root / config).is_dir():
        return _table_files(root / config)
    return sorted(f for f in (root / "data").glob(f"{config}[-.]*") if f.suffix in QA_SUFFIXES)


def _read(root: Path, config: str) -> list[QAItem]:
    files = config_files(root, config)
    if not files:
        raise DataError(
            f"{root / (config + '.json')}: file not found (benchmark folder {root}; "
            f"nor {config}.parquet, {config}/ or data/{config}-*)"
        )
    return list(_load(tuple(f.resolve() for f in files)))


def _pairs(items: list[QAItem]) -> set[tuple[str, str]]:
    return {(it.question, it.answer) for it in items}


def _check_disjoint(forget: list[QAItem], retain: list[QAItem], where: str) -> None:
    """A QA pair (same question and answer) in both sets is an error. A generic question alone
    ("What is the full name of the author?") legitimately recurs with different answers."""
    forget_qa = _pairs(forget)
    dup = next((it for it in retain if (it.question, it.answer) in forget_qa), None)
    if dup is not None:
        raise DataError(
            f"{where}: the same question/answer pair is in both the forget and retain sets: "
            f"{dup.question!r}"
        )


class TofuBenchmark:
    """A folder in TOFU layout (the paper's or the hub's): TOFU, the synthetic benchmark, or a
    user's data."""

    kind = "tofu"
    # forget sets are named splits (forget01, forget05, ...): data.split applies
    named_forget_splits = True

    def __init__(self, root: str | Path, holdout_authors: int = 0) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(f"benchmark folder not found: {self.root}")
        if holdout_authors < 0:
            raise DataError(f"holdout_authors must be >= 0, got {holdout_authors}")
        self.holdout_authors = holdout_authors

    def rows_per_author(self) -> int:
        """Questions per author: the synthetic folder's own count, else TOFU's 20."""
        meta = self.root / "synth_meta.yaml"
        if meta.is_file():
            spec = yaml.safe_load(meta.read_text(encoding="utf-8")).get("spec") or {}
            return int(spec.get("questions_per_author", TOFU_ROWS_PER_AUTHOR))
        return TOFU_ROWS_PER_AUTHOR

    def _carved(self) -> list[QAItem]:
        """The last ``holdout_authors`` authors of retain90 (none when 0)."""
        if not self.holdout_authors:
            return []
        rows = _read(self.root, "retain90")
        n = self.holdout_authors * self.rows_per_author()
        evaluated = _pairs(_read(self.root, "retain_perturbed"))
        if n >= len(rows) or any((it.question, it.answer) in evaluated for it in rows[-n:]):
            raise DataError(
                f"{self.root}: holdout_authors={self.holdout_authors} ({n} rows) would take "
                "authors of the retain evaluation split (retain_perturbed); choose fewer"
            )
        return rows[-n:]

    def _without_holdout(self, rows: list[QAItem]) -> list[QAItem]:
        carved = _pairs(self._carved())
        return [it for it in rows if (it.question, it.answer) not in carved] if carved else rows

    def has(self, config: str) -> bool:
        return bool(config_files(self.root, config))

    def _check_split(self, split: str) -> None:
        if split not in FORGET_SPLITS:
            raise DataError(f"unknown split '{split}'; choose from {', '.join(FORGET_SPLITS)}")

    def has_task_ids(self, split: str) -> bool:
        """False for the hub's layout: the split is one task (task 1)."""
        self._check_split(split)
        return any(it.task_id is not None for it in _read(self.root, split))

    def task_ids(self, split: str) -> list[int]:
        self._check_split(split)
        rows = _read(self.root, split)
        ids = sorted({it.task_id for it in rows if it.task_id is not None})
        return ids or [1]

    def _check_task(self, split: str, task: int | None) -> None:
        if task is None or task in self.task_ids(split):
            return
        if not self.has_task_ids(split):
            raise DataError(
                f"{self.root}: {split} has no 'task_id' field, so it is a single task (task 1, "
                f"the hub's TOFU layout); task {task} needs continual splits: {PAPER_FILES_HINT}"
            )
        raise DataError(
            f"{self.root / (split + '.json')}: no rows with task_id {task}; "
            f"tasks are {self.task_ids(split)}"
        )

    def check_continual(self, split: str) -> None:
        """Continual unlearning needs task ids: a one-line error naming what is missing."""
        if not self.has_task_ids(split):
            raise DataError(
                f"continual unlearning needs task ids, but {split} in {self.root} has no "
                f"'task_id' field (the hub's TOFU layout has one task per split): "
                f"{PAPER_FILES_HINT}"
            )

    def forget(self, split: str, task: int | None = 1) -> list[QAItem]:
        """Rows of ``split`` belonging to ``task`` (None = every task)."""
        self._check_split(split)
        self._check_task(split, task)
        rows = _read(self.root, split)
        out = [it for it in rows if task is None or (it.task_id or 1) == task]
        if not out:
            raise DataError(f"{self.root / (split + '.json')}: empty forget set")
        return out

    def _full_minus(self, split: str) -> list[QAItem]:
        drop = _pairs(_read(self.root, split))
        return [it for it in _read(self.root, "full") if (it.question, it.answer) not in drop]

    def base_retain(self, split: str) -> list[QAItem]:
        """The authors outside all of the split's tasks (the retain model's training set).

        The paper's layout: ``retain90/50/10`` (else ``full`` minus the split). The hub's
        layout (no task ids): the complement ``retain99/95/90`` (else ``full`` minus the split,
        else the paper's retain file).
        """
        self._check_split(split)
        if self.has_task_ids(split):
            name, derived = FORGET_SPLITS[split], self.has("full")
            choices = [name]
        else:
            name, derived = HUB_RETAIN[split], self.has("full")
            choices = [name, FORGET_SPLITS[split]]
        if self.has(name):
            return _read(self.root, name)
        if derived:
            return self._full_minus(split)
        for other in choices[1:]:
            if self.has(other):
                return _read(self.root, other)
        raise DataError(
            f"{self.root}: no retain set for {split}: neither {' nor '.join(choices)} nor "
            "'full' (to take the split out of) is in the folder"
        )

    def retain(self, split: str, task: int = 1, unlearned: list[int] | None = None) -> list[QAItem]:
        """The base retain set plus the rows of this split's tasks not unlearned so far.

        ``unlearned`` lists the tasks unlearned so far, ``task`` included (None = ``[task]``):
        a row stays in retain when its task is not in that list.
        """
        self._check_split(split)
        self._check_task(split, task)
        done = set(unlearned or []) | {task}
        pending = [it for it in _read(self.root, split) if (it.task_id or 1) not in done]
        retain = self._without_holdout(self.base_retain(split)) + pending
        _check_disjoint(self.forget(split, task), retain, str(self.root))
        return retain

    def eval_sets(self, split: str, task: int | None = 1) -> dict[str, list[QAItem]]:
        """forget (forgetXX_perturbed restricted to the task), retain, real_authors, world_facts."""
        self._check_split(split)
        self._check_task(split, task)
        forget = [
            it
            for it in _read(self.root, f"{split}_perturbed")
            if task is None or (it.task_id or 1) == task
        ]
        sets = {"forget": forget}
        for key, name in TOFU_EVAL_FILES.items():
            sets[key] = _read(self.root, Path(name).stem)
        holdout = self._holdout_rows(split)
        if holdout:
            sets["holdout"] = holdout
        return sets

    def finetune_set(self) -> list[QAItem]:
        """Every author: forget10 task 1 plus retain90 (the TOFU target model's training set),
        or the hub's ``full`` when those are absent."""
        if not (self.has("forget10") and self.has("retain90")) and self.has("full"):
            return self._without_holdout(_read(self.root, "full"))
        return self.forget("forget10", 1) + self._without_holdout(_read(self.root, "retain90"))

    def retain_model_set(self, split: str, task: int = 1) -> list[QAItem]:
        """The retain model's training set (Forget Quality): every author but those of ``task``.

        TOFU's retain model for a forget set is trained on its complement (retain99/95/90 for
        forget01/05/10): here :meth:`finetune_set` less the task's rows (for task 1, exactly
        ``retain(split, 1)``: retainYY plus the split's other tasks).
        """
        forget = {(it.question, it.answer) for it in self.forget(split, task)}
        return [it for it in self.finetune_set() if (it.question, it.answer) not in forget]

    @property
    def has_holdout(self) -> bool:
        """True when the folder holds a holdout: the hub's holdout01/05/10, ``holdout.json``, or
        authors carved out with ``holdout_authors``."""
        names = [*HOLDOUT_SPLITS.values(), HOLDOUT_FILE]
        return bool(self.holdout_authors) or any(self.has(name) for name in names)

    def _holdout_rows(self, split: str) -> list[QAItem]:
        self._check_split(split)
        rows = [row for name in (HOLDOUT_SPLITS[split], HOLDOUT_FILE) if self.has(name)
                for row in _read(self.root, name)]  # fmt: skip
        return rows + self._carved()

    def holdout(self, split: str) -> list[QAItem]:
        """Non-members for ``split``: the hub's holdoutXX, ``holdout.json`` and the carved
        retain90 authors (whichever the folder has): authors the target never saw."""
        rows = self._holdout_rows(split)
        if not rows:
            raise DataError(
                f"{self.root}: no holdout for {split}: neither '{HOLDOUT_SPLITS[split]}' (the "
                "hub's locuslab/TOFU has holdout01/05/10) nor holdout.json, and "
                "data.holdout_authors is 0"
            )
        return rows


class RealWorldBenchmark:
    """Real people to forget (``forget.json``, one task per person) and their neighbours."""

    kind = "real_world"
    has_holdout = False
    # one forget set (forget.json, a task per person): data.split does not apply
    named_forget_splits = False

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(f"benchmark folder not found: {self.root}")

    def task_ids(self, split: str = "forget") -> list[int]:
        return sorted({it.task_id or 1 for it in _read(self.root, "forget")})

    def forget(self, split: str = "forget", task: int | None = None) -> list[QAItem]:
        rows = _read(self.root, "forget")
        out = [it for it in rows if task is None or (it.task_id or 1) == task]
        if not out:
            raise DataError(f"{self.root / 'forget.json'}: no rows with task_id {task}")
        return out

    def retain(self, split: str = "forget", task: int | None = None) -> list[QAItem]:
        retain = _read(self.root, "neighbor")
        _check_disjoint(self.forget(split, task), retain, str(self.root))
        return retain

    def neighbor(self) -> list[QAItem]:
        return _read(self.root, "neighbor")

    def eval_sets(self, split: str = "forget", task: int | None = None) -> dict[str, list[QAItem]]:
        forget = [
            it
            for it in _read(self.root, "forget_perturbed")
            if task is None or (it.task_id or 1) == task
        ]
        return {"forget": forget, "neighbor": _read(self.root, "neighbor_perturbed")}


Benchmark = TofuBenchmark | RealWorldBenchmark


def load_holdout(benchmark: Benchmark, split: str) -> list[QAItem]:
    """TOFU's holdout set matching ``split`` (privacy metrics: members vs non-members); a
    one-line error when the benchmark has none."""
    if not benchmark.has_holdout:
        raise DataError(
            f"benchmark {benchmark.root} has no holdout sets (holdout01/05/10, in the hub's "
            "locuslab/TOFU layout)"
        )
    return benchmark.holdout(split)  # type: ignore[union-attr]


def _synthetic_root() -> Path:
    return cache_root() / "data" / "synthetic"


@BENCHMARKS.register("tofu", description="TOFU fictitious authors (folder from shared/data)")
def _tofu() -> Benchmark:
    return TofuBenchmark(default_data_root() / "tofu")


@BENCHMARKS.register("real_world", description="Real people and their neighbours")
def _real_world() -> Benchmark:
    return RealWorldBenchmark(default_data_root() / "real_world")


@BENCHMARKS.register(
    "synthetic", description="Invented authors generated offline (unlearn data synth)"
)
def _synthetic() -> Benchmark:
    from unlearnkit.data.synth import generate_holdout, generate_synthetic

    root = _synthetic_root()
    if not (root / "forget01.json").is_file():
        generate_synthetic(root)
    if not config_files(root, HOLDOUT_FILE):  # a folder written before holdouts existed
        generate_holdout(root, SYNTHETIC_HOLDOUT_AUTHORS)
    return TofuBenchmark(root)


TOFU_SMALL_AUTHORS = 40  # the small-scale recipe's subset (issue 19): forget 1 / 2 / 4 authors
TOFU_SMALL_HOLDOUT = 2


@BENCHMARKS.register(
    "tofu_small",
    description=f"the first {TOFU_SMALL_AUTHORS} real TOFU authors in TOFU layout (forget "
    "1/2/4 authors; built once from shared/data/tofu into the cache)",
)
def _tofu_small() -> Benchmark:
    import shutil

    from unlearnkit.data.subset import write_tofu_subset

    root = cache_root() / "data" / f"tofu_small-{TOFU_SMALL_AUTHORS}"
    if not (root / "forget01.json").is_file():
        staging = root.with_name(root.name + ".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        write_tofu_subset(
            default_data_root() / "tofu", staging, TOFU_SMALL_AUTHORS, n_holdout=TOFU_SMALL_HOLDOUT
        )
        shutil.rmtree(root, ignore_errors=True)
        staging.rename(root)
    return TofuBenchmark(root)


def _snapshot(path: Path) -> Path:
    """A hub cache folder (``datasets--owner--name/snapshots/<revision>/``) stands for its newest
    snapshot, so the folder the hub client downloaded to can be given as it is."""
    snapshots = path / "snapshots"
    if config_files(path, "forget01") or not snapshots.is_dir():
        return path
    revisions = [d for d in snapshots.iterdir() if d.is_dir()]
    return max(revisions, key=lambda d: d.stat().st_mtime) if revisions else path


# The kind each registered name opens (its class's ``kind``), known without opening it.
REGISTERED_KINDS = {
    "tofu": TofuBenchmark.kind,
    "real_world": RealWorldBenchmark.kind,
    "synthetic": TofuBenchmark.kind,
    "tofu_small": TofuBenchmark.kind,
}


def benchmark_kind(name_or_path: str) -> str | None:
    """The kind of benchmark (``tofu`` or ``real_world``) that :func:`open_benchmark` would open
    for ``name_or_path``, from the name or the folder's file names alone (no data is read), so
    settings can follow the benchmark before anything is loaded. None for a name that names no
    benchmark (reported when it is checked or opened)."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        root = _snapshot(path)
        return RealWorldBenchmark.kind if config_files(root, "neighbor") else TofuBenchmark.kind
    if name_or_path in BENCHMARKS:
        return REGISTERED_KINDS.get(name_or_path)
    if "/" in name_or_path and not path.exists():
        return TofuBenchmark.kind  # a hub id: read in TOFU layout
    return None


def open_benchmark(name_or_path: str, holdout_authors: int = 0) -> Benchmark:
    """A registered benchmark name, a folder (TOFU or real-world layout), or a hub id.

    ``holdout_authors``: TOFU layout only, authors carved out of retain90 as a holdout split
    (see the module docstring)."""
    bench = _open_benchmark(name_or_path)
    if holdout_authors:
        if not isinstance(bench, TofuBenchmark):
            raise DataError(
                f"data.holdout_authors needs a TOFU-layout benchmark, not '{name_or_path}'"
            )
        bench.holdout_authors = holdout_authors
        bench._carved()  # validated now, before any model work
    return bench


def _open_benchmark(name_or_path: str) -> Benchmark:
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        path = _snapshot(path)
        if config_files(path, "neighbor"):
            return RealWorldBenchmark(path)
        return TofuBenchmark(path)
    if name_or_path in BENCHMARKS:
        return BENCHMARKS.get(name_or_path)()
    if "/" in name_or_path and not path.exists():
        return TofuBenchmark(download_hub_benchmark(name_or_path))
    raise DataError(
        f"unknown benchmark '{name_or_path}': not a folder; "
        f"registered: {', '.join(BENCHMARKS.names())}"
    )


# What a run can use from a TOFU-layout hub dataset (locuslab/TOFU has every one of these; the
# paper's retain50/retain10 and task ids are not on the hub). Required: the forget splits and
# the evaluation sets; the retain sets come from retainYY or from full.
HUB_TOFU_REQUIRED = [
    "forget01", "forget05", "forget10",
    "forget01_perturbed", "forget05_perturbed", "forget10_perturbed",
    "retain_perturbed", "real_authors_perturbed", "world_facts_perturbed",
]  # fmt: skip
HUB_TOFU_OPTIONAL = ["full", "retain90", "retain95", "retain99", *HOLDOUT_SPLITS.values()]
HUB_DONE = "hub.json"


def download_hub_benchmark(repo_id: str) -> Path:
    """Fetch a TOFU-layout dataset from the hub (e.g. ``locuslab/TOFU``) into the cache.

    Only configs the dataset has are asked for; each is written as ``<config>.json`` (JSON
    lines), and ``hub.json`` (written last) lists them.
    """
    from unlearnkit.utils import atomic_write_json, write_jsonl

    target = cache_root() / "data" / repo_id.replace("/", "__")
    if (target / HUB_DONE).is_file():
        return target
    try:
        import datasets

        available = set(datasets.get_dataset_config_names(repo_id))
        missing = [c for c in HUB_TOFU_REQUIRED if c not in available]
        if not missing:
            wanted = HUB_TOFU_REQUIRED + [c for c in HUB_TOFU_OPTIONAL if c in available]
            for config in wanted:
                ds = datasets.load_dataset(repo_id, config, split="train")
                write_jsonl(target / f"{config}.json", (dict(r) for r in ds))
    except Exception as exc:  # offline, unknown repo
        raise DataError(
            f"could not fetch '{repo_id}' from the Hugging Face hub ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:200] if str(exc) else ''}). Offline? Point --benchmark at "
            "a folder in TOFU layout instead, e.g. --benchmark ../shared/data/tofu"
        ) from None
    if missing:
        raise DataError(
            f"'{repo_id}' on the hub is not in TOFU layout: it lacks the config(s) "
            f"{', '.join(missing)}"
        )
    atomic_write_json(target / HUB_DONE, {"repo": repo_id, "configs": wanted})
    return target
