"""Build the student handout: a folder and a zip with the exercise stubs, the grader and a student README.

    python -m grader.tools handout --out DIR [--name NAME] [--classroom] [--force]

What goes in (an allow-list, never "everything except"): ``exercise/`` (stubs, pipeline, ``exercise/assets/``),
``grader/``, ``noxfile.py``, ``pyproject.toml``, ``.gitignore`` and a ``README.md`` generated from
``grader/tools/templates/STUDENT_README.md``. Files come from ``git ls-files --cached --others --exclude-standard``
when the repository is a git checkout (tracked files and new files not yet committed, but nothing git ignores:
caches, venvs, ``.nox``, results), otherwise from a walk of the same allow-list that skips caches; ``exercise/assets/`` is always taken from disk (built data the package needs).

What stays out: ``reference/`` (the solution), ``tests/`` (instructor tests, which exercise the reference),
``.ci/``, benchmarks, packaging debris, grading seeds (they are never in the repository: see
``grader/tools/gradescope/``), and the instructor's parts of the grader (see :data:`INSTRUCTOR_ONLY`): the
tools in ``grader/tools/`` (batch grading, the Gradescope builder, this builder) and the training-check
calibration tool and tables (``grader/tools/calibrate.py`` needs ``reference/``; the thresholds it wrote,
``calibration/thresholds.toml``, do ship). What remains of ``grader/`` is the
student's grading path: ``nox -s grade`` works offline in the handout.

Feedback level (:mod:`grader.checks.feedback`): the handout's ``grader/grading/rubric.toml`` is set to ``--feedback-level``
(default ``hint``) and its ``grader/checks/misconceptions/misconceptions.toml`` is *stripped* to that level: the texts that explain
more (the derivations, the solutions) are not in the handout at all, so no option of the student's copy can
show them.

After copying, the handout is *verified*: no forbidden path, the student file is still the stub (each contract
function raises ``NotImplementedError``), no file contains the reference's code (function bodies compared as
syntax trees, and its distinctive code lines compared as text), the rubric and catalogue are at the build's
feedback level, and no file contains a catalogue text above it. A failed verification deletes the half-built
handout and exits with status 2.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
import shutil
import string
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Literal

from grader.checks import feedback
from grader.contract import STUDENT_FUNCTIONS
from grader.dataclass_cli import parse_into
from grader.tools.bundle import git_files, walk, write_zip
from grader.tools.solution_forms import solution_forms

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = Path(__file__).resolve().parent / "templates" / "STUDENT_README.md"
CLASSROOM_WORKFLOW = ".github/workflows/classroom.yml"
MANIFEST = ".handout.json"
STUDENT_FILE = "exercise/rewards.py"
REFERENCE_FILE = "reference/rewards.py"

#: Top-level entries a handout may contain (folders end with "/").
ALLOWED = ("exercise/", "grader/", "noxfile.py", "pyproject.toml", ".gitignore")
#: Data folders copied from disk whether or not git tracks them.
DATA_DIRS = ("exercise/assets",)
#: Never in a handout, whatever the allow-list says.
FORBIDDEN_PARTS = {
    "reference",
    "tests",
    "benchmarks",
    ".ci",
    ".git",
    ".nox",
    ".venv",
    "venv",
    ".ci-venv",
    "__pycache__",
    ".pytest_cache",
    ".hypothesis",
    ".benchmarks",
    ".mypy_cache",
    ".ruff_cache",
    "runs",
    "outputs",
}
FORBIDDEN_SUFFIXES = (".pyc", ".pyo", ".egg-info", ".orig", ".rej", ".swp")
#: Text files scanned for solution code.
SCANNED_SUFFIXES = (".py", ".md", ".txt", ".toml", ".cfg", ".json", ".ipynb")
FORBIDDEN_NAMES = {"results.json", "results_training.png", "junit.xml", ".DS_Store", "autograder.json"}
#: Grader files only an instructor uses, which a handout leaves out: the training-check calibration (it runs the
#: reference solution and known-wrong variants, and describes why they fail) and the tables it writes.
#: Entries ending in "/" are folders: the instructor tools (batch, Gradescope, this builder).
INSTRUCTOR_ONLY = (
    "grader/tools/",
    "grader/training/calibration/*.md",
    "grader/checks/key/",  # the answer key: the right per-token terms, the wrong ones, the hidden checks
)
RUBRIC_FILE = "grader/grading/rubric.toml"
CATALOGUE_FILE = "grader/checks/misconceptions/misconceptions.toml"

DEFAULT_SUBMIT = (
    "Submit **only** `exercise/rewards.py`, the way your course asks (for example by uploading it to Gradescope, "
    "or by pushing it to your GitHub Classroom repository). Do not rename it and do not submit other files."
)


class HandoutError(RuntimeError):
    """The handout could not be built, or failed verification."""


@dataclass
class HandoutConfig:
    out: Path = field(metadata={"help": "Folder to write into: OUT/NAME/ (the handout) and OUT/NAME.zip."})
    name: str = field(default="rl-sentiment", metadata={"help": "Name of the handout folder and zip."})
    title: str = field(
        default="RL fine-tuning of a language model for positive sentiment",
        metadata={"help": "Title of the student README."},
    )
    submit: str = field(
        default=DEFAULT_SUBMIT, metadata={"help": "Markdown for the README's 'Submitting' section."}
    )
    classroom: bool = field(
        default=False,
        metadata={
            "help": f"Also include {CLASSROOM_WORKFLOW}, for a GitHub Classroom template repository "
            "(it grades with the instructor's grader: see the README's instructor section)."
        },
    )
    feedback_level: Literal["hint", "explain", "solution"] = field(
        default="hint",
        metadata={
            "help": "How much the handout's grader explains a failed check: hint (what is wrong and where to "
            "look), explain (adds the derivation), solution (adds the fix). Texts above it are left out."
        },
    )
    force: bool = field(
        default=False, metadata={"help": "Replace an existing handout of the same name in OUT."}
    )
    repo: Path = field(default=REPO_ROOT, metadata={"help": "The instructor repository to build from."})


@dataclass
class Handout:
    folder: Path
    zip_path: Path
    files: list[str]  # POSIX paths relative to the folder, sorted


# ---------------------------------------------------------------------------------------------------------------
# Selecting files
# ---------------------------------------------------------------------------------------------------------------


def is_excluded(rel: str) -> bool:
    """Whether a repository path stays out of a handout (and out of the Gradescope bundle's walk)."""
    path = PurePosixPath(rel)
    if any(p in FORBIDDEN_PARTS or p.endswith(FORBIDDEN_SUFFIXES) for p in path.parts):
        return True
    return path.name in FORBIDDEN_NAMES or any(
        rel.startswith(pattern) if pattern.endswith("/") else path.match(pattern)
        for pattern in INSTRUCTOR_ONLY
    )


def _is_allowed(rel: str) -> bool:
    return any(rel == a or (a.endswith("/") and rel.startswith(a)) for a in ALLOWED)


def select_files(repo: Path) -> list[str]:
    """The repository files that go into the handout (before README/manifest are generated)."""
    tracked = git_files(repo)
    if tracked is None:
        candidates: set[str] = set()
        for entry in ALLOWED:
            if (repo / entry.rstrip("/")).exists():
                candidates.update(walk(repo, entry.rstrip("/"), is_excluded))
    else:
        candidates = set(tracked)
    for data_dir in DATA_DIRS:
        if (repo / data_dir).is_dir():
            candidates.update(walk(repo, data_dir, is_excluded))
    selected = []
    for rel in candidates:
        path = repo / rel
        if not _is_allowed(rel) or is_excluded(rel):
            continue
        if path.is_symlink() or not path.is_file():  # deleted in the working tree, or a link: skip
            continue
        selected.append(rel)
    return sorted(selected)


# ---------------------------------------------------------------------------------------------------------------
# Verification: no solution in the handout
# ---------------------------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------------------------
# Feedback level: the copy's rubric names it, the copy's catalogue holds nothing above it
# ---------------------------------------------------------------------------------------------------------------


def rubric_with_level(text: str, level: str) -> str:
    """``text`` (a rubric file) with ``[feedback] level`` set to ``level``, comments and layout kept; a
    [feedback] table is added when there is none."""
    feedback.check_level(level)
    lines = text.splitlines(keepends=True)
    header = next((i for i, line in enumerate(lines) if re.match(r"\s*\[feedback\]\s*(#.*)?$", line)), None)
    if header is None:
        return text.rstrip("\n") + f'\n\n[feedback]\nlevel = "{level}"\n'
    end = next((i for i in range(header + 1, len(lines)) if lines[i].lstrip().startswith("[")), len(lines))
    for i in range(header + 1, end):
        if re.match(r"\s*level\s*=", lines[i]):
            lines[i] = f'level = "{level}"\n'
            return "".join(lines)
    lines.insert(header + 1, f'level = "{level}"\n')
    return "".join(lines)


def set_feedback_level(folder: Path, repo: Path, level: str, builder: str) -> None:
    """Make the grader copied into ``folder`` grade at ``level``: its rubric names the level, and its
    misconception catalogue is the repository's stripped to ``level`` (the texts above it are left out)."""
    rubric = folder / RUBRIC_FILE
    rubric.write_text(rubric_with_level(rubric.read_text(encoding="utf-8"), level), encoding="utf-8")
    catalogue = folder / CATALOGUE_FILE
    catalogue.write_text(feedback.strip_catalogue(repo / CATALOGUE_FILE, level, builder), encoding="utf-8")


def _normalised(text: str) -> str:
    return " ".join(text.split())


def feedback_level_problems(folder: Path, repo: Path, level: str) -> list[str]:
    """Why the grader in ``folder`` could show more than ``level``, or [] when it cannot: its rubric must name
    ``level``, its catalogue must stop at ``level``, and no file may contain a text of the levels above it."""
    from grader.grading.rubric import RubricError, load_rubric

    problems = []
    try:
        shown = load_rubric(folder / RUBRIC_FILE).feedback_level
        if shown != level:
            problems.append(f"{RUBRIC_FILE}: feedback level {shown!r}, not {level!r}")
    except RubricError as exc:
        problems.append(str(exc))
    try:
        held = feedback.load_catalogue(folder / CATALOGUE_FILE).level
        if feedback.rank(held) > feedback.rank(level):
            problems.append(f"{CATALOGUE_FILE}: holds {held!r} texts, above the handout's level {level!r}")
    except feedback.CatalogueError as exc:
        problems.append(str(exc))
    # The texts above the level, as written in the instructor's catalogue: every stretch between ${...} that is
    # long enough to be distinctive. Found in any file, it means the file carries what the level hides.
    # [shared] texts count as hidden unless a text the level keeps uses them.
    placeholder = re.compile(r"\$\{(\w+)\}")
    full = feedback.load_catalogue(repo / CATALOGUE_FILE)
    kept, above = feedback.LEVELS[: feedback.rank(level) + 1], feedback.LEVELS[feedback.rank(level) + 1 :]
    raw_kept = [raw for e in full.entries.values() for lv in kept for raw in e.texts.get(lv, {}).values()]
    raw_above = [raw for e in full.entries.values() for lv in above for raw in e.texts.get(lv, {}).values()]
    used = {name for raw in raw_kept for name in placeholder.findall(raw)}
    shared = next(iter(full.entries.values())).shared if full.entries else {}
    for name, value in shared.items():
        if name not in used:
            raw_above.extend(value.values() if isinstance(value, dict) else [value])
    hidden = {
        piece
        for raw in raw_above
        if isinstance(raw, str)
        for piece in map(_normalised, placeholder.split(raw))
        if len(piece) >= 40
    }
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.suffix not in SCANNED_SUFFIXES:
            continue
        try:
            text = _normalised(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, OSError):
            continue
        found = sorted(piece for piece in hidden if piece in text)
        if found:
            problems.append(
                f"{path.relative_to(folder).as_posix()}: contains feedback above the level {level!r} "
                f"({len(found)} passages, e.g. {found[0][:60]!r}...)"
            )
    return problems


# ---------------------------------------------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------------------------------------------


def _git_describe(repo: Path) -> str:
    if git_files(repo) is None:
        return ""
    try:
        proc = subprocess.run(
            ["git", "-C", str(repo), "describe", "--always", "--dirty", "--tags"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (subprocess.SubprocessError, OSError):
        return ""
    return proc.stdout.strip()


def _python_requires(repo: Path) -> str:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        return "3.10 or newer"
    try:
        spec = tomllib.loads((repo / "pyproject.toml").read_text(encoding="utf-8"))["project"][
            "requires-python"
        ]
    except (OSError, KeyError, ValueError):
        return "3.10 or newer"
    return f"{spec.removeprefix('>=')} or newer" if spec.startswith(">=") else spec


def render_readme(config: HandoutConfig, version: str) -> str:
    template = string.Template(TEMPLATE.read_text(encoding="utf-8"))
    note = f"<sub>Handout version {version}.</sub>\n" if version else ""
    return template.substitute(
        title=config.title,
        submit=config.submit,
        python_requires=_python_requires(config.repo),
        build_note=note,
        feedback_level=config.feedback_level,
        feedback_meaning=feedback.MEANING[config.feedback_level],
    )


def build_handout(config: HandoutConfig) -> Handout:
    repo = config.repo.resolve()
    out = config.out.resolve()
    if not (repo / STUDENT_FILE).is_file():
        raise HandoutError(f"{repo} does not look like the instructor repository (no {STUDENT_FILE})")
    # Building inside the repository is fine in a scratch place (e.g. dist/), never among the sources it copies.
    if out == repo or (repo in out.parents and _is_allowed(out.relative_to(repo).as_posix() + "/")):
        raise HandoutError(f"--out {out} is inside the repository's sources; choose another folder")
    folder = out / config.name
    zip_path = out / f"{config.name}.zip"
    if folder.exists():
        if not config.force:
            raise HandoutError(f"{folder} exists; pass --force to replace it")
        if not (folder / MANIFEST).is_file():
            raise HandoutError(f"{folder} exists and is not a handout (no {MANIFEST}); refusing to delete it")
        shutil.rmtree(folder)
    out.mkdir(parents=True, exist_ok=True)

    files = select_files(repo)
    try:
        for rel in files:
            target = folder / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(repo / rel, target)
        if (repo / CLASSROOM_WORKFLOW).is_file() and config.classroom:
            target = folder / CLASSROOM_WORKFLOW
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(repo / CLASSROOM_WORKFLOW, target)
            files.append(CLASSROOM_WORKFLOW)
        elif config.classroom:
            raise HandoutError(f"--classroom: {CLASSROOM_WORKFLOW} is missing from the repository")
        if RUBRIC_FILE not in files or CATALOGUE_FILE not in files:
            raise HandoutError(
                f"{RUBRIC_FILE} and {CATALOGUE_FILE} must be in the repository (the grader needs them)"
            )
        set_feedback_level(folder, repo, config.feedback_level, "handout")
        if ".gitignore" not in files:
            (folder / ".gitignore").write_text("__pycache__/\n.nox/\n.venv/\nresults.json\nruns/\noutputs/\n")
            files.append(".gitignore")
        version = _git_describe(repo)
        (folder / "README.md").write_text(render_readme(config, version), encoding="utf-8")
        files.append("README.md")

        reference = repo / REFERENCE_FILE
        fingerprint = (
            SolutionFingerprint.from_files(reference, repo / STUDENT_FILE) if reference.is_file() else None
        )
        verify_handout(folder, fingerprint, repo=repo, feedback_level=config.feedback_level)

        manifest = {
            "name": config.name,
            "version": version,
            "feedback_level": config.feedback_level,
            "files": {rel: hashlib.sha256((folder / rel).read_bytes()).hexdigest() for rel in sorted(files)},
        }
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        files.append(MANIFEST)
        files.sort()
        write_zip(folder, zip_path, files)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return Handout(folder, zip_path, files)


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_into(
        HandoutConfig,
        argv,
        prog="python -m grader.tools handout",
        description="Build the student handout (folder + zip): exercise stubs, grader, noxfile, README; no solution.",
    )
    try:
        handout = build_handout(config)
    except HandoutError as exc:
        print(f"handout: {exc}", file=sys.stderr)
        return 2
    print(f"handout: {len(handout.files)} files in {handout.folder} (feedback level {config.feedback_level})")
    print(f"handout: zip {handout.zip_path} ({handout.zip_path.stat().st_size / 1e6:.1f} MB)")
    return 0
