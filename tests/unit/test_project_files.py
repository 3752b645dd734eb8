"""The project's metadata agrees with itself: Python floor, README, lint target, CI script."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Standard-library names newer than some Python versions: (module, name) -> first version.
NEWER_NAMES = {
    ("datetime", "UTC"): (3, 11),
    ("typing", "Self"): (3, 11),
    ("typing", "Never"): (3, 11),
    ("typing", "assert_never"): (3, 11),
    ("typing", "reveal_type"): (3, 11),
    ("tomllib", None): (3, 11),
    ("typing", "override"): (3, 12),
    ("itertools", "batched"): (3, 12),
}


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _floor() -> tuple[int, int]:
    spec = _pyproject()["project"]["requires-python"]
    match = re.fullmatch(r">=\s*(\d+)\.(\d+)", spec.strip())
    assert match, f"requires-python should be a plain floor like '>=3.11', got {spec!r}"
    return int(match[1]), int(match[2])


def _newer_names_used(path: Path) -> list[tuple[str, tuple[int, int]]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                if (node.module, alias.name) in NEWER_NAMES:
                    found.append(
                        (f"{node.module}.{alias.name}", NEWER_NAMES[node.module, alias.name])
                    )
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if (alias.name, None) in NEWER_NAMES:
                    found.append((alias.name, NEWER_NAMES[alias.name, None]))
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            key = (node.value.id, node.attr)
            if key in NEWER_NAMES:
                found.append((f"{key[0]}.{key[1]}", NEWER_NAMES[key]))
    return found


def test_code_imports_on_every_python_the_metadata_allows():
    floor = _floor()
    too_new = [
        f"{path.relative_to(ROOT)}: {name} needs Python {need[0]}.{need[1]}"
        for folder in ("src", "benchmarks", "tests")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for name, need in _newer_names_used(path)
        if need > floor
    ]
    assert not too_new, f"requires-python allows {floor}: " + "; ".join(too_new)


def test_python_floor_is_the_same_in_metadata_lint_target_and_docs():
    major, minor = _floor()
    assert _pyproject()["tool"]["ruff"]["target-version"] == f"py{major}{minor}"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    stated = set(re.findall(r"Python (\d+\.\d+)\+", readme))
    assert stated == {f"{major}.{minor}"}, f"README states Python {stated}"
    design = (ROOT / "docs" / "DESIGN.md").read_text(encoding="utf-8")
    assert set(re.findall(r"Python >= (\d+\.\d+)", design)) <= {f"{major}.{minor}"}


def test_ci_also_runs_the_suite_with_the_shared_data_hidden():
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    command = re.search(r"python3 -m venv \.venv && .*pytest -q\n", readme)
    assert command and command[0] in script  # the README's test command, exactly
    hidden = [line for line in script.splitlines() if "UNLEARNKIT_DATA=" in line]
    assert hidden and "pytest" in hidden[-1] and "-rs" in hidden[-1]
    assert "mktemp -d" in script  # an empty folder, not a guessed path
