"""Check a benchmark folder: every file parses, every split identity holds."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from unlearnkit.data.loaders import DataError, load_qa_file
from unlearnkit.data.splits import FORGET_SPLITS, TOFU_EVAL_FILES, RealWorldBenchmark, TofuBenchmark

PERTURBED_FIELDS = ("perturbed_answers",)


@dataclass
class ValidationReport:
    root: Path
    layout: str
    rows: dict[str, int] = field(default_factory=dict)
    tasks: dict[str, list[int]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def format(self) -> str:
        lines = [f"{self.root} ({self.layout} layout)"]
        for name, n in self.rows.items():
            t = self.tasks.get(name)
            extra = f"  tasks {t[0]}..{t[-1]} ({len(t)})" if t else ""
            lines.append(f"  {name:32s} {n:6d} rows{extra}")
        if self.problems:
            lines.append(f"{len(self.problems)} problem(s):")
            lines += [f"  - {p}" for p in self.problems]
        else:
            lines.append("OK: every file parses and every split identity holds")
        return "\n".join(lines)


def validate_folder(root: str | Path) -> ValidationReport:
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"not a folder: {root}")
    real_world = (root / "neighbor.json").is_file()
    report = ValidationReport(root=root, layout="real-world" if real_world else "tofu")
    files = sorted(root.glob("*.json"))
    if not files:
        raise DataError(f"{root}: no *.json files (expected TOFU or real-world layout)")
    loaded = {}
    for path in files:
        try:
            items = load_qa_file(path)
        except DataError as exc:
            report.problems.append(str(exc))
            continue
        loaded[path.name] = items
        report.rows[path.name] = len(items)
        ids = sorted({it.task_id for it in items if it.task_id is not None})
        if ids:
            report.tasks[path.name] = ids
        if path.stem.endswith("_perturbed"):
            for i, it in enumerate(items, start=1):
                if not it.perturbed_answers:
                    report.problems.append(f"{path}:{i}: missing field 'perturbed_answer'")
                    break
    if report.problems:
        return report
    try:
        if real_world:
            bench = RealWorldBenchmark(root)
            bench.retain()  # checks forget/neighbour disjointness
        else:
            tofu = TofuBenchmark(root)
            for split in FORGET_SPLITS:
                if f"{split}.json" not in loaded:
                    continue
                for task in tofu.task_ids(split):
                    tofu.retain(split, task)  # disjointness per task
            missing = [n for n in TOFU_EVAL_FILES.values() if n not in loaded]
            if missing:
                report.problems.append(f"evaluation files missing: {', '.join(missing)}")
    except DataError as exc:
        report.problems.append(str(exc))
    return report
