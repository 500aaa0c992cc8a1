"""Find the student's ``rewards.py`` in whatever a student uploaded.

Used by batch grading (one folder or file per student) and by the Gradescope runner (``/autograder/submission``).
Students rename files, upload the whole repository, or zip a folder inside a folder; graders must neither guess
wildly nor give up on the obvious case. The rules, in order:

1. ``rewards.py`` directly in the folder;
2. ``exercise/rewards.py`` (the student uploaded their whole handout);
3. exactly one ``rewards.py`` anywhere below the folder;
4. exactly one ``.py`` file anywhere below the folder (a renamed ``rewards.py``, e.g. ``alice_rewards.py``).

Anything else is an error with a message that says what was found. Hidden entries, ``__pycache__`` and macOS
``__MACOSX`` debris are ignored; so are files bigger than :data:`MAX_SUBMISSION_BYTES` (not a hand-written file).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from grader.contract import MAX_SUBMISSION_BYTES

SUBMISSION_FILENAME = "rewards.py"
_IGNORED_DIRS = {"__pycache__", "__MACOSX", "node_modules", ".git", ".venv", "venv", ".nox"}
_MAX_FILES_SCANNED = 10_000


@dataclass(frozen=True)
class Located:
    """Where the submission is (``path``), or why there is none (``error``)."""

    path: Path | None
    error: str = ""
    note: str = ""  # e.g. "graded alice_rewards.py (the only .py file)"


def _python_files(folder: Path) -> list[Path]:
    """Every non-hidden ``.py`` file below ``folder``, sorted, without following symlinked folders."""
    found: list[Path] = []
    scanned = 0
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _IGNORED_DIRS)
        for name in sorted(files):
            scanned += 1
            if scanned > _MAX_FILES_SCANNED:
                return found
            if name.endswith(".py") and not name.startswith((".", "._")):
                found.append(Path(root) / name)
    return found


def _relative(path: Path, folder: Path) -> str:
    try:
        return path.relative_to(folder).as_posix()
    except ValueError:
        return path.name


def check_file(path: Path, root: Path | None = None) -> str:
    """An error message if ``path`` cannot be a submission, else ``""``.

    Rejected: symbolic links (a link to the reference solution would otherwise earn its marks), files that
    resolve outside ``root`` (a linked folder), non-regular files and oversized files.
    """
    if path.is_symlink():
        return f"{path.name} is a symbolic link, not a file"
    if root is not None and not path.resolve().is_relative_to(root.resolve()):
        return f"{path.name} lies outside the submission folder (through a symbolic link)"
    if not path.is_file():
        return f"{path.name} is not a regular file"
    size = path.stat().st_size
    if size > MAX_SUBMISSION_BYTES:
        return f"{path.name} is {size} bytes, more than the {MAX_SUBMISSION_BYTES} allowed for rewards.py"
    return ""


def locate_submission(entry: Path) -> Located:
    """Find the file to grade for one student's ``entry`` (a ``.py`` file or a folder)."""
    if entry.is_symlink():
        return Located(None, f"{entry.name} is a symbolic link; submissions must be plain files or folders")
    if entry.is_file():
        if not entry.name.endswith(".py"):
            return Located(None, f"{entry.name} is not a .py file (upload rewards.py)")
        problem = check_file(entry)
        return Located(None, problem) if problem else Located(entry)
    if not entry.is_dir():
        return Located(None, f"{entry} does not exist")

    for candidate in (entry / SUBMISSION_FILENAME, entry / "exercise" / SUBMISSION_FILENAME):
        if candidate.exists() or candidate.is_symlink():
            problem = check_file(candidate, entry)
            return Located(None, problem) if problem else Located(candidate)

    python_files = _python_files(entry)
    named = [p for p in python_files if p.name == SUBMISSION_FILENAME]
    if len(named) == 1:
        chosen, why = named[0], "the only rewards.py"
    elif len(named) > 1:
        listing = ", ".join(_relative(p, entry) for p in named[:5])
        return Located(None, f"found {len(named)} files named rewards.py ({listing}); upload exactly one")
    elif len(python_files) == 1:
        chosen, why = python_files[0], "the only .py file"
    elif not python_files:
        return Located(None, "no rewards.py (and no other .py file) in the submission")
    else:
        listing = ", ".join(_relative(p, entry) for p in python_files[:5])
        more = f" and {len(python_files) - 5} more" if len(python_files) > 5 else ""
        return Located(
            None,
            f"no rewards.py, and {len(python_files)} other .py files ({listing}{more}): cannot tell which to grade",
        )
    problem = check_file(chosen, entry)
    if problem:
        return Located(None, problem)
    return Located(chosen, note=f"graded {_relative(chosen, entry)} ({why})")
