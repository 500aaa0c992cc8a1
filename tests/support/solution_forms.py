"""What "handing out the answer" looks like, for the tests of the feedback levels, the handout and the bundle.

:data:`SOLUTION_FORMS` matches the contract's per-token terms as texts write them (the handout build's scan,
:mod:`grader.tools.solution_forms`, which also checks code by its syntax tree).
:func:`feedback_sources` collects every text a copy of the grader can show a student: its data and text files,
and the string literals of its Python modules (not their docstrings or comments, which feedback never
contains; the grader's code necessarily computes the right values, which no feedback level changes).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from grader.tools.solution_forms import TEXT_FORMS

#: The handout build's own scan of spellings (grader/tools/solution_forms.py), which these tests also apply to
#: everything a grader shows: ``1 - r``, ``1 - exp(...)``, ``expm1``, ``log pi - log pi_ref``, ``lp - lr``, ``k1 = ...``.
SOLUTION_FORMS = TEXT_FORMS

SCANNER = "grader/tools/solution_forms.py"
TEXT_SUFFIXES = (".toml", ".md", ".txt", ".json", ".cfg")


def _docstring_nodes(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and body:
            first = body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def python_strings(source: str) -> Iterator[tuple[int, str]]:
    """(line, text) of every string literal of ``source`` except docstrings (f-strings: their literal parts)."""
    tree = ast.parse(source)
    docs = _docstring_nodes(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            yield node.lineno, node.value


def feedback_sources(folder: Path) -> Iterator[tuple[str, str]]:
    """(where, text) for every text under ``folder/grader`` that feedback can be made of, and the README."""
    for path in sorted((folder / "grader").rglob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(folder).as_posix()
        if rel == SCANNER:
            continue  # the scan's own patterns: never shown to anyone
        if path.suffix == ".py":
            for line, text in python_strings(path.read_text(encoding="utf-8")):
                yield f"{rel}:{line}", text
        elif path.suffix in TEXT_SUFFIXES:
            yield rel, path.read_text(encoding="utf-8")
    if (folder / "README.md").is_file():
        yield "README.md", (folder / "README.md").read_text(encoding="utf-8")


def leaks(folder: Path) -> list[str]:
    """Where a solution form appears in what ``folder``'s grader can show, with the match."""
    return [
        f"{where}: {match.group(0)!r}"
        for where, text in feedback_sources(folder)
        for match in [SOLUTION_FORMS.search(text)]
        if match
    ]
