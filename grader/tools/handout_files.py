"""What a handout holds: the allow-list, what stays out whatever it says (the instructor's parts of the grader,
caches, debris), the files the builder reads and writes, and the selection of a repository's files."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from grader.tools.bundle import git_files, walk

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
