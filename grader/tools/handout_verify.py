"""The handout's verification: no forbidden path, the student file still the stub, no file holding the
reference's code (function bodies compared as syntax trees, distinctive lines as text) or a KL penalty's
per-token term, and the grader at the build's feedback level."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from grader.contract import STUDENT_FUNCTIONS
from grader.tools.handout_feedback import feedback_level_problems
from grader.tools.handout_files import (
    CATALOGUE_FILE,
    CLASSROOM_WORKFLOW,
    MANIFEST,
    SCANNED_SUFFIXES,
    STUDENT_FILE,
    _is_allowed,
    is_excluded,
)
from grader.tools.solution_forms import solution_forms


class HandoutError(RuntimeError):
    """The handout could not be built, or failed verification."""


def _strip_docstring(body: list[ast.stmt]) -> list[ast.stmt]:
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
        if isinstance(body[0].value.value, str):
            return body[1:]
    return body


def _parse(source: str) -> ast.Module | None:
    try:
        return ast.parse(source)
    except SyntaxError:
        return None


def _shape(body: list[ast.stmt]) -> tuple[str, ...]:
    """The statement kinds of a function body: equal bodies have equal shapes, and comparing shapes first spares
    dumping the body of every function of every shipped file."""
    return tuple(type(stmt).__name__ for stmt in body)


def _functions(tree: ast.AST | None) -> list[tuple[str, list[ast.stmt]]]:
    """(name, body without its docstring) of every function in ``tree`` with a body left."""
    found = []
    for node in ast.walk(tree) if tree is not None else ():
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            body = _strip_docstring(node.body)
            if body:
                found.append((node.name, body))
    return found


def _dump(body: list[ast.stmt]) -> str:
    """A normalised dump of a function body: equal for equal code, whatever its formatting and comments."""
    return "\n".join(ast.dump(stmt, annotate_fields=False) for stmt in body)


def _docstring_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            lines.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    return lines


def _function_lines(tree: ast.AST) -> set[int]:
    """Line numbers inside function bodies (where an implementation lives, unlike module-level constants)."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for stmt in node.body:
                lines.update(range(stmt.lineno, (stmt.end_lineno or stmt.lineno) + 1))
    return lines


def _code_lines(
    source: str, tree: ast.AST | None, min_chars: int = 0, functions_only: bool = False
) -> set[str]:
    """Normalised (whitespace-free) code lines of ``source`` (parsed: ``tree``, None if it does not parse): no
    comments, no docstrings, no blank lines; with ``functions_only``, only lines inside function bodies."""
    if tree is not None:
        skip = _docstring_lines(tree)
        keep = _function_lines(tree) if functions_only else None
    else:
        skip, keep = set(), None
    lines = set()
    for number, line in enumerate(source.splitlines(), start=1):
        if number in skip or (keep is not None and number not in keep):
            continue
        code = line.split("#", 1)[0] if "#" in line and "'" not in line and '"' not in line else line
        normalised = "".join(code.split())
        if normalised and not normalised.startswith("#") and len(normalised) >= min_chars:
            lines.add(normalised)
    return lines


@dataclass
class SolutionFingerprint:
    """What identifies the reference solution's code: its non-trivial function bodies and distinctive lines."""

    bodies: dict[str, str]
    lines: set[str]
    #: The statement kinds of ``bodies``: only functions of these shapes are compared (None: every function).
    shapes: set[tuple[str, ...]] | None = None

    @classmethod
    def from_files(cls, reference: Path, stub: Path | None) -> SolutionFingerprint:
        ref_source = reference.read_text(encoding="utf-8")
        stub_source = stub.read_text(encoding="utf-8") if stub is not None and stub.is_file() else ""
        ref_tree, stub_tree = _parse(ref_source), _parse(stub_source)
        stub_bodies = {_dump(body) for _, body in _functions(stub_tree)}
        bodies, shapes = {}, set()
        for name, body in _functions(ref_tree):
            dump = _dump(body)
            if dump not in stub_bodies:
                bodies[name] = dump
                shapes.add(_shape(body))
        # Lines of function bodies, at least 24 characters long, that the stub does not share: what remains is
        # the implementation (module-level constants such as a word regex are not the solution).
        lines = {
            line
            for line in _code_lines(ref_source, ref_tree, min_chars=24, functions_only=True)
            - _code_lines(stub_source, stub_tree)
            if not line.startswith(("def", "from", "import", "@"))
        }
        return cls(bodies, lines, shapes)

    def leaks(self, source: str) -> list[str]:
        """Why ``source`` contains (part of) the solution, or [] when it does not."""
        found = []
        tree = _parse(source)
        reverse = {body: name for name, body in self.bodies.items()}
        for name, body in _functions(tree):
            if self.shapes is not None and _shape(body) not in self.shapes:
                continue  # not the shape of any reference body: cannot be equal to one
            match = reverse.get(_dump(body))
            if match is not None:
                found.append(f"function {name}() has the body of the reference's {match}()")
        shared = sorted(self.lines & _code_lines(source, tree, min_chars=24))
        found.extend(f"reference line: {line}" for line in shared[:5])
        return found


def verify_handout(
    folder: Path,
    fingerprint: SolutionFingerprint | None,
    *,
    repo: Path | None = None,
    feedback_level: str | None = None,
) -> None:
    """Raise :class:`HandoutError` unless ``folder`` is a clean handout (with ``repo`` and ``feedback_level``:
    one whose grader shows at most that level, see :func:`feedback_level_problems`)."""
    problems: list[str] = []
    if repo is not None and feedback_level is not None:
        problems.extend(feedback_level_problems(folder, repo, feedback_level))
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if rel in ("README.md", MANIFEST, CLASSROOM_WORKFLOW) or path.is_dir():
            continue
        if is_excluded(rel) or not _is_allowed(rel):
            problems.append(f"{rel}: not allowed in a handout")
    for name in ("reference", "tests"):
        if (folder / name).exists():
            problems.append(f"{name}/ must not be in a handout")

    stub = folder / STUDENT_FILE
    if not stub.is_file():
        problems.append(f"{STUDENT_FILE} is missing")
    else:
        problems.extend(_stub_problems(stub.read_text(encoding="utf-8")))

    problems.extend(solution_form_problems(folder, feedback_level))
    if fingerprint is not None:
        for path in sorted(folder.rglob("*")):
            if not path.is_file() or path.suffix not in SCANNED_SUFFIXES:
                continue
            try:
                text = path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            for leak in fingerprint.leaks(text):
                problems.append(f"{path.relative_to(folder).as_posix()}: contains the solution ({leak})")
    if problems:
        raise HandoutError("the handout failed verification:\n  - " + "\n  - ".join(problems))


def solution_form_problems(folder: Path, feedback_level: str | None) -> list[str]:
    """Where a file of the handout computes or states a KL penalty's per-token term (:mod:`grader.tools.solution_forms`).
    The misconception catalogue is exempt when the handout is built above the ``hint`` level: the instructor chose
    to hand out the derivations (explain) or the fixes (solution), which name the terms."""
    problems = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if not path.is_file() or path.suffix not in SCANNED_SUFFIXES:
            continue
        if rel == CATALOGUE_FILE and feedback_level not in (None, "hint"):
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        for line, what in solution_forms(text, python=path.suffix == ".py"):
            problems.append(f"{rel}:{line}: states or computes a KL penalty's per-token term ({what!r})")
    return problems


def _stub_problems(source: str) -> list[str]:
    """The student file must define every contract function, each only raising NotImplementedError."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        return [f"{STUDENT_FILE} does not parse: {exc}"]
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    problems = []
    for name in STUDENT_FUNCTIONS:
        node = functions.get(name)
        if node is None:
            problems.append(f"{STUDENT_FILE} does not define {name}()")
            continue
        body = _strip_docstring(node.body)
        raises = [s for s in body if isinstance(s, ast.Raise)]
        if len(body) != 1 or not raises or "NotImplementedError" not in ast.dump(raises[0]):
            problems.append(
                f"{STUDENT_FILE}: {name}() is not a stub (it must only raise NotImplementedError)"
            )
    return problems
