"""No function over 60 lines where a run's orchestration lives (issue 23): ``train/``,
``scenarios/`` and the evaluation runner. Counted from ``def`` to the last line, docstring
included, as :mod:`ast` reports them."""

from __future__ import annotations

import ast
from pathlib import Path

import unlearnkit

LIMIT = 60
PACKAGE = Path(unlearnkit.__file__).parent
CHECKED = [
    *sorted((PACKAGE / "train").glob("*.py")),
    *sorted((PACKAGE / "scenarios").glob("*.py")),
    PACKAGE / "eval" / "runner.py",
]


def long_functions(path: Path, limit: int = LIMIT) -> list[str]:
    """``name:line (n lines)`` of every function in ``path`` longer than ``limit`` lines."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        f"{path.name}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > limit
    ]


def test_the_checker_counts_def_to_last_line(tmp_path: Path) -> None:
    def source(n_body: int) -> str:
        body = "\n".join(f"        x{i} = {i}" for i in range(n_body))
        return f"class A:\n    def method(self):\n{body}\n"

    at_limit, over = tmp_path / "at.py", tmp_path / "over.py"
    at_limit.write_text(source(LIMIT - 1))  # def line + 59 = 60 lines
    over.write_text(source(LIMIT))
    assert long_functions(at_limit) == []
    assert long_functions(over) == [f"over.py:2 method ({LIMIT + 1} lines)"]


def test_no_function_over_60_lines_in_train_scenarios_and_the_runner() -> None:
    assert len(CHECKED) > 10
    found = [hit for path in CHECKED for hit in long_functions(path)]
    assert not found, "functions over 60 lines:\n" + "\n".join(found)
