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

Where its parts live: what goes in (:mod:`grader.tools.handout_files`), the verification
(:mod:`grader.tools.handout_verify`), the feedback level (:mod:`grader.tools.handout_feedback`); this module
builds the handout.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import string
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from grader.checks import feedback
from grader.dataclass_cli import parse_into
from grader.tools.bundle import git_files, write_zip
from grader.tools.handout_feedback import feedback_level_problems, rubric_with_level, set_feedback_level
from grader.tools.handout_files import (
    ALLOWED,
    CATALOGUE_FILE,
    CLASSROOM_WORKFLOW,
    DATA_DIRS,
    FORBIDDEN_NAMES,
    FORBIDDEN_PARTS,
    FORBIDDEN_SUFFIXES,
    INSTRUCTOR_ONLY,
    MANIFEST,
    REFERENCE_FILE,
    REPO_ROOT,
    RUBRIC_FILE,
    SCANNED_SUFFIXES,
    STUDENT_FILE,
    TEMPLATE,
    _is_allowed,
    is_excluded,
    select_files,
)
from grader.tools.handout_verify import (
    HandoutError,
    SolutionFingerprint,
    solution_form_problems,
    verify_handout,
)

__all__ = [
    "ALLOWED",
    "CATALOGUE_FILE",
    "CLASSROOM_WORKFLOW",
    "DATA_DIRS",
    "DEFAULT_SUBMIT",
    "FORBIDDEN_NAMES",
    "FORBIDDEN_PARTS",
    "FORBIDDEN_SUFFIXES",
    "INSTRUCTOR_ONLY",
    "MANIFEST",
    "REFERENCE_FILE",
    "REPO_ROOT",
    "RUBRIC_FILE",
    "SCANNED_SUFFIXES",
    "STUDENT_FILE",
    "TEMPLATE",
    "Handout",
    "HandoutConfig",
    "HandoutError",
    "SolutionFingerprint",
    "build_handout",
    "feedback_level_problems",
    "is_excluded",
    "main",
    "render_readme",
    "rubric_with_level",
    "select_files",
    "set_feedback_level",
    "solution_form_problems",
    "verify_handout",
]

DEFAULT_SUBMIT = (
    "Submit **only** `exercise/rewards.py`, the way your course asks (for example by uploading it to Gradescope, "
    "or by pushing it to your GitHub Classroom repository). Do not rename it and do not submit other files."
)


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
