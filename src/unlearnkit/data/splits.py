"""Benchmark folders and the paper's split arithmetic.

TOFU layout (see ``shared/data/README.md``): ``forget01/05/10.json`` carry ``task_id``s for
continual unlearning; the retain set used while unlearning task ``t`` of ``forgetXX`` is
``retainYY`` (YY = 100 - XX) plus the rows of the split's tasks not yet unlearned (``> t``).
For task 1 alone this is exactly the complement of the forget set.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from unlearnkit.data.loaders import DataError, load_qa_file
from unlearnkit.data.records import QAItem
from unlearnkit.registry import BENCHMARKS
from unlearnkit.utils import cache_root, default_data_root

FORGET_SPLITS = {"forget01": "retain90", "forget05": "retain50", "forget10": "retain10"}
TOFU_EVAL_FILES = {
    "retain": "retain_perturbed.json",
    "real_authors": "real_authors_perturbed.json",
    "world_facts": "world_facts_perturbed.json",
}


@cache
def _load(path: Path) -> tuple[QAItem, ...]:
    return tuple(load_qa_file(path))


def _read(root: Path, name: str) -> list[QAItem]:
    path = root / name
    if not path.is_file():
        raise DataError(f"{path}: file not found (benchmark folder {root})")
    return list(_load(path.resolve()))


def _check_disjoint(forget: list[QAItem], retain: list[QAItem], where: str) -> None:
    """A QA pair (same question and answer) in both sets is an error. A generic question alone
    ("What is the full name of the author?") legitimately recurs with different answers."""
    forget_qa = {(it.question, it.answer) for it in forget}
    dup = next((it for it in retain if (it.question, it.answer) in forget_qa), None)
    if dup is not None:
        raise DataError(
            f"{where}: the same question/answer pair is in both the forget and retain sets: "
            f"{dup.question!r}"
        )


class TofuBenchmark:
    """A folder in TOFU layout: TOFU itself, the synthetic benchmark, or a user's data."""

    kind = "tofu"

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(f"benchmark folder not found: {self.root}")

    def _check_split(self, split: str) -> None:
        if split not in FORGET_SPLITS:
            raise DataError(f"unknown split '{split}'; choose from {', '.join(FORGET_SPLITS)}")

    def task_ids(self, split: str) -> list[int]:
        self._check_split(split)
        rows = _read(self.root, f"{split}.json")
        ids = sorted({it.task_id for it in rows if it.task_id is not None})
        return ids or [1]

    def _check_task(self, split: str, task: int | None) -> None:
        if task is not None and task not in self.task_ids(split):
            raise DataError(
                f"{self.root / (split + '.json')}: no rows with task_id {task}; "
                f"tasks are {self.task_ids(split)}"
            )

    def forget(self, split: str, task: int | None = 1) -> list[QAItem]:
        """Rows of ``split`` belonging to ``task`` (None = every task)."""
        self._check_split(split)
        self._check_task(split, task)
        rows = _read(self.root, f"{split}.json")
        out = [it for it in rows if task is None or (it.task_id or 1) == task]
        if not out:
            raise DataError(f"{self.root / (split + '.json')}: empty forget set")
        return out

    def retain(self, split: str, task: int = 1) -> list[QAItem]:
        """retainYY plus the rows of this split's tasks not yet unlearned (task_id > task)."""
        self._check_split(split)
        self._check_task(split, task)
        base = _read(self.root, f"{FORGET_SPLITS[split]}.json")
        later = [it for it in _read(self.root, f"{split}.json") if (it.task_id or 1) > task]
        retain = base + later
        _check_disjoint(self.forget(split, task), retain, str(self.root))
        return retain

    def eval_sets(self, split: str, task: int | None = 1) -> dict[str, list[QAItem]]:
        """forget (forgetXX_perturbed restricted to the task), retain, real_authors, world_facts."""
        self._check_split(split)
        self._check_task(split, task)
        forget = [
            it
            for it in _read(self.root, f"{split}_perturbed.json")
            if task is None or (it.task_id or 1) == task
        ]
        sets = {"forget": forget}
        for key, name in TOFU_EVAL_FILES.items():
            sets[key] = _read(self.root, name)
        return sets

    def finetune_set(self) -> list[QAItem]:
        """Every author: forget10 task 1 plus retain90 (the TOFU target model's training set)."""
        return self.forget("forget10", 1) + _read(self.root, "retain90.json")

    def retain_model_set(self, split: str, task: int = 1) -> list[QAItem]:
        """The retain model's training set (Forget Quality): every author but those of ``task``.

        TOFU's retain model for a forget set is trained on its complement (retain99/95/90 for
        forget01/05/10): here :meth:`finetune_set` less the task's rows (for task 1, exactly
        ``retain(split, 1)``: retainYY plus the split's other tasks).
        """
        forget = {(it.question, it.answer) for it in self.forget(split, task)}
        return [it for it in self.finetune_set() if (it.question, it.answer) not in forget]


class RealWorldBenchmark:
    """Real people to forget (``forget.json``, one task per person) and their neighbours."""

    kind = "real_world"

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(f"benchmark folder not found: {self.root}")

    def task_ids(self, split: str = "forget") -> list[int]:
        return sorted({it.task_id or 1 for it in _read(self.root, "forget.json")})

    def forget(self, split: str = "forget", task: int | None = None) -> list[QAItem]:
        rows = _read(self.root, "forget.json")
        out = [it for it in rows if task is None or (it.task_id or 1) == task]
        if not out:
            raise DataError(f"{self.root / 'forget.json'}: no rows with task_id {task}")
        return out

    def retain(self, split: str = "forget", task: int | None = None) -> list[QAItem]:
        retain = _read(self.root, "neighbor.json")
        _check_disjoint(self.forget(split, task), retain, str(self.root))
        return retain

    def neighbor(self) -> list[QAItem]:
        return _read(self.root, "neighbor.json")

    def eval_sets(self, split: str = "forget", task: int | None = None) -> dict[str, list[QAItem]]:
        forget = [
            it
            for it in _read(self.root, "forget_perturbed.json")
            if task is None or (it.task_id or 1) == task
        ]
        return {"forget": forget, "neighbor": _read(self.root, "neighbor_perturbed.json")}


Benchmark = TofuBenchmark | RealWorldBenchmark


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
    root = _synthetic_root()
    if not (root / "forget01.json").is_file():
        from unlearnkit.data.synth import generate_synthetic

        generate_synthetic(root)
    return TofuBenchmark(root)


def open_benchmark(name_or_path: str) -> Benchmark:
    """A registered benchmark name, a folder (TOFU or real-world layout), or a hub id."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        if (path / "neighbor.json").is_file():
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


HUB_TOFU_CONFIGS = [
    "forget01", "forget05", "forget10", "retain90", "retain50", "retain10",
    "forget01_perturbed", "forget05_perturbed", "forget10_perturbed",
    "retain_perturbed", "real_authors_perturbed", "world_facts_perturbed",
]  # fmt: skip


def download_hub_benchmark(repo_id: str) -> Path:
    """Fetch a TOFU-layout dataset from the hub (e.g. ``locuslab/TOFU``) into the cache."""
    from unlearnkit.utils import write_jsonl

    target = cache_root() / "data" / repo_id.replace("/", "__")
    if (target / "forget01.json").is_file():
        return target
    try:
        import datasets

        for config in HUB_TOFU_CONFIGS:
            ds = datasets.load_dataset(repo_id, config, split="train")
            write_jsonl(target / f"{config}.json", (dict(r) for r in ds))
    except Exception as exc:  # offline, unknown repo, missing config
        raise DataError(
            f"could not fetch '{repo_id}' from the Hugging Face hub ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:200] if str(exc) else ''}). Offline? Point --benchmark at "
            "a folder in TOFU layout instead, e.g. --benchmark ../shared/data/tofu"
        ) from None
    return target
