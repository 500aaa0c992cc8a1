"""The grader's floor plan, enforced: packages import only downwards, and no module imports itself in a circle.

Layers, lowest first (docs/design.md, "Layout"): a module may import its own layer and the layers below, never
one above. Every import counts, the ones inside functions too (a lazy import is still a dependency); only
``if TYPE_CHECKING:`` blocks are left out (names for the type checker, never run).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

GRADER = Path(__file__).resolve().parents[2] / "grader"

#: Lowest first. A module's layer is that of the longest prefix listed here.
LAYERS: tuple[tuple[str, ...], ...] = (
    (
        "grader.dataclass_cli",
        "grader.contract",
    ),  # what everything shares: the student contract, option parsing
    ("grader.sandbox",),  # running student code safely
    ("grader.training",),  # making training runs (uses the sandbox)
    ("grader.checks",),  # judging: property checks, training checks, feedback texts (use the engine)
    ("grader.grading",),  # a grade: rubric, runner, results, report (runs the checks)
    ("grader.cli", "grader.versions", "grader.__main__"),  # python -m grader
    ("grader.tools", "grader.classroom", "grader"),  # instructor tools (use the CLI)
)


def _layer(module: str) -> int:
    best, found = -1, None
    for n, names in enumerate(LAYERS):
        for name in names:
            if (module == name or module.startswith(name + ".")) and len(name) > best:
                best, found = len(name), n
    assert found is not None, f"{module} is in no layer: add it to LAYERS"
    return found


def _module_name(path: Path) -> str:
    parts = path.relative_to(GRADER.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(path: Path) -> set[str]:
    """The grader modules ``path`` imports (any depth, TYPE_CHECKING blocks excluded)."""
    return imports_of(path.read_text(encoding="utf-8"), _module_name(path), path.name == "__init__.py")


def imports_of(source: str, module: str, is_package: bool = False) -> set[str]:
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)  # `from pkg import module`
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(source))
    return {name for name in found if name == "grader" or name.startswith("grader.")}


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in GRADER.rglob("*.py")}
    # `from grader.x import name` names a module only when that module exists
    return {name: {m for m in _imports(path) if m in modules and m != name} for name, path in modules.items()}


def upward(graph: dict[str, set[str]]) -> list[str]:
    return [
        f"{module} (layer {_layer(module)}) imports {target} (layer {_layer(target)})"
        for module, targets in sorted(graph.items())
        for target in sorted(targets)
        if _layer(target) > _layer(module) and not module.startswith(target + ".")  # a package's own __init__
    ]


def cycles(graph: dict[str, set[str]]) -> list[str]:
    # a package's __init__ re-exporting its modules is not a cycle with them
    edges = {
        m: {t for t in ts if t in graph and not t.startswith(m + ".") and not m.startswith(t + ".")}
        for m, ts in graph.items()
    }
    found, state = [], {}

    def walk(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(edges[node]):
            if state.get(nxt) == "open":
                found.append(" -> ".join([*stack[stack.index(nxt) :], nxt]))
            elif nxt not in state:
                walk(nxt, [*stack, nxt])
        state[node] = "done"

    for start in sorted(edges):
        if start not in state:
            walk(start, [start])
    return found


def test_every_module_imports_only_its_layer_and_below():
    problems = upward(_graph())
    assert not problems, "imports that go up a layer:\n" + "\n".join(problems)


def test_no_module_imports_itself_in_a_circle():
    problems = cycles(_graph())
    assert not problems, "import cycles:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    "source, expected",
    [
        ("from grader.grading.results import X", {"grader.grading.results", "grader.grading.results.X"}),
        ("def f():\n    from grader.tools import batch", {"grader.tools", "grader.tools.batch"}),
        ("from . import harness", {"grader.checks", "grader.checks.harness"}),
        (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from grader.cli import GradeConfig",
            set(),
        ),
    ],
)
def test_the_scan_sees_lazy_and_relative_imports_and_skips_type_checking_blocks(source, expected):
    assert imports_of(source, "grader.checks.kl") == expected


def test_the_rules_catch_an_upward_import_and_a_cycle():
    """The checks themselves can fail: a checks module importing the runner, two modules importing each other."""
    assert upward({"grader.checks.kl": {"grader.grading.runner"}, "grader.grading.runner": set()})
    assert cycles(
        {
            "grader.grading.rubric": {"grader.grading.results"},
            "grader.grading.results": {"grader.grading.rubric"},
        }
    )
    assert not cycles(
        {"grader.tools.batch": {"grader.tools.batch.run"}, "grader.tools.batch.run": {"grader.tools.batch"}}
    )
