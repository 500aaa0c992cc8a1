"""The Gradescope bundle's settings (:class:`GradescopeConfig`, also the ``build`` command line) and constants."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

# Not imported from grader.tools.handout: the runner inside the bundle imports this module, and the bundle does
# not carry the instructor's handout builder.
REPO_ROOT = Path(__file__).resolve().parents[3]
BUNDLE_NAME = "gradescope-autograder"
CONFIG_NAME = "autograder.json"
#: Project files the bundle carries (folders end with "/"); everything else stays out. Its README.md is written
#: by the build (pip needs one: pyproject.toml names it), never the instructor's.
BUNDLE_SOURCES = ("exercise/", "grader/", "pyproject.toml")
#: What the runner inside the bundle imports from the instructor tools (``python -m grader.tools.gradescope
#: run``); the rest of grader/tools/ (the builders, batch grading, the calibration) stays out, as in a handout.
RUNNER_FILES = frozenset(
    f"grader/tools/{name}"
    for name in (
        "__init__.py",
        "gradescope/__init__.py",
        "gradescope/__main__.py",
        "gradescope/cli.py",
        "gradescope/config.py",
        "gradescope/run.py",
    )
)
SKIP_PARTS = {"__pycache__", ".pytest_cache", ".hypothesis", ".mypy_cache", ".ruff_cache"}
#: The grader's --time-budget on Gradescope, the bundle's one time setting. Gradescope stops an autograder
#: after its timeout (10 minutes unless the assignment sets another) and then shows the student nothing at all,
#: so the grader must stop itself first: 8 minutes leaves 2 for starting Python, killing the submission and
#: writing results.json.
DEFAULT_TIME_BUDGET = 480.0
#: run_autograder stops a grader still running this long after its budget (stuck: not the submission's time,
#: which the budget already ended) while Gradescope still waits, and writes a failure report instead.
BUDGET_GRACE_S = 60.0


@dataclass
class GradescopeConfig:
    out: Path = field(metadata={"help": f"Folder to write {BUNDLE_NAME}.zip (and its unpacked copy) into."})
    seed: int | None = field(
        default=None,
        metadata={
            "help": "Grading seed baked into the bundle (students grade locally with the default seed, 0). "
            "Default: drawn at random now and recorded in the bundle's autograder.json."
        },
    )
    no_training: bool = field(
        default=False, metadata={"help": "Skip the training checks on Gradescope (--no-training)."}
    )
    time_budget: float = field(
        default=DEFAULT_TIME_BUDGET,
        metadata={
            "help": "Seconds one grade may take on Gradescope (the grader's --time-budget): after it, unfinished "
            f"checks score 0 with the reason and the results are written; a grader still running "
            f"{BUDGET_GRACE_S:g} s later is stopped and the student told to ask you. Keep it at least two minutes "
            "below the assignment's autograder timeout (Gradescope's default is 10 minutes), or students see no "
            "results at all."
        },
    )
    feedback_level: Literal["hint", "explain", "solution"] = field(
        default="hint",
        metadata={
            "help": "How much the feedback students see on Gradescope explains: hint (what is wrong and where to "
            "look), explain (adds the derivation), solution (adds the fix). The bundle holds no text above it."
        },
    )
    python_version: str = field(
        default="3.10", metadata={"help": "Minimum Python version setup.sh accepts before installing one."}
    )
    repo: Path = field(default=REPO_ROOT, metadata={"help": "The instructor repository to build from."})
