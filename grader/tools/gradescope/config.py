"""The Gradescope bundle's settings (:class:`GradescopeConfig`, also the ``build`` command line) and constants."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from grader.tools.handout import REPO_ROOT

BUNDLE_NAME = "gradescope-autograder"
CONFIG_NAME = "autograder.json"
#: Project files the bundle carries (folders end with "/"); everything else stays out.
BUNDLE_SOURCES = ("exercise/", "grader/", "pyproject.toml", "README.md")
SKIP_PARTS = {"__pycache__", ".pytest_cache", ".hypothesis", ".mypy_cache", ".ruff_cache"}
DEFAULT_TIMEOUT = 3000.0  # seconds for one grade; Gradescope's own limit is set in the assignment settings
#: The grader's --time-budget on Gradescope. Gradescope stops an autograder after its timeout (10 minutes
#: unless the assignment sets another) and then shows the student nothing at all, so the grader must stop
#: itself first: 8 minutes leaves 2 for starting Python, killing the submission and writing results.json.
DEFAULT_TIME_BUDGET = 480.0
#: run_autograder stops a grader that overran its own budget by this much (stuck: not the submission's time)
#: while Gradescope still waits, and writes a failure report instead.
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
    timeout: float = field(
        default=DEFAULT_TIMEOUT,
        metadata={"help": "Seconds one grade may take before it is stopped and scored 0."},
    )
    time_budget: float = field(
        default=DEFAULT_TIME_BUDGET,
        metadata={
            "help": "The grader's --time-budget on Gradescope: after it, unfinished checks score 0 with the "
            "reason and the results are written. Keep it below the assignment's autograder timeout "
            "(Gradescope's default is 10 minutes) by a minute or two, or students see no results at all."
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
