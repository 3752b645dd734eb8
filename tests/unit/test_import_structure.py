"""The package's import structure: the layers of docs/DESIGN.md, no import back up a layer and no
import cycle between files. Every ``import unlearnkit...`` counts, at module level or inside a
function (a lazy import is still a dependency)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "unlearnkit"

# The table of docs/DESIGN.md ("Layers"): a module may import its own layer and the layers below.
# The longest matching prefix decides a module's layer.
LAYERS: dict[str, int] = {
    "unlearnkit": 1,  # the package's face (__init__: version only)
    "unlearnkit.utils": 1,
    "unlearnkit.registry": 1,
    "unlearnkit.setting": 1,
    "unlearnkit.losses": 1,
    "unlearnkit.config": 2,
    "unlearnkit.data": 3,
    "unlearnkit.models": 3,
    "unlearnkit.methods": 4,
    "unlearnkit.profiles": 5,
    "unlearnkit.runtime": 5,
    "unlearnkit.train": 6,
    "unlearnkit.eval": 6,
    "unlearnkit.settings": 7,
    "unlearnkit.attacks": 7,
    "unlearnkit.report": 8,
    "unlearnkit.scenarios": 9,
    "unlearnkit.commands": 10,
    "unlearnkit.cli": 11,
    "unlearnkit.__main__": 11,
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _layer(module: str) -> int:
    best = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len)
    return LAYERS[best]


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _known(name: str, modules: set[str]) -> str | None:
    """The file-module that ``name`` names (a submodule import names its deepest known module)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(files)
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(module, is_package, node)
                # ``from pkg import submodule`` imports the submodule
                targets = [f"{base}.{a.name}" for a in node.names] + [base]
            for t in targets:
                if not t.startswith("unlearnkit"):
                    continue
                hit = _known(t, modules)
                if hit and hit != module:
                    graph[module].add(hit)
    # ``from pkg import name`` lists both pkg.name and pkg: keep pkg only where name is no module
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one file (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _edges_without_package_faces(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """A package's ``__init__`` that only re-exports is the package itself: an import of the
    package from inside it is not a cycle of files; drop edges from a package to its parent."""
    out: dict[str, set[str]] = {}
    for m, targets in graph.items():
        out[m] = {t for t in targets if not m.startswith(t + ".")}
    return out


def test_the_scanner_sees_known_imports() -> None:
    """The scanner is not blind: imports we know exist are found, module-level and lazy."""
    graph = import_graph()
    assert "unlearnkit.registry" in graph["unlearnkit.data.splits"]
    assert "unlearnkit.data.synth" in graph["unlearnkit.data.splits"]  # a lazy import
    assert len(graph) > 50


def test_cycle_and_layer_checks_catch_a_constructed_violation() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _layer("unlearnkit.eval.metrics.rouge") == LAYERS["unlearnkit.eval"]
    assert _layer("unlearnkit.train") > _layer("unlearnkit.methods")


def test_no_import_cycles() -> None:
    cycles = _cycles(_edges_without_package_faces(import_graph()))
    assert not cycles, "import cycles between files: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_no_import_back_up_a_layer() -> None:
    upward = [
        f"{m} (layer {_layer(m)}) -> {t} (layer {_layer(t)})"
        for m, targets in sorted(import_graph().items())
        for t in sorted(targets)
        if _layer(t) > _layer(m)
    ]
    assert not upward, "imports that run back up a layer:\n" + "\n".join(upward)


@pytest.mark.parametrize("prefix", sorted(LAYERS))
def test_every_layer_names_real_modules(prefix: str) -> None:
    """A layer that names nothing would hide a renamed package from the checks."""
    assert any(m == prefix or m.startswith(prefix + ".") for m in import_graph())
