"""The batch's settings (:class:`BatchConfig`, also its command line) and rows (:class:`Entry`, :class:`Graded`)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_GRADER = (sys.executable, "-m", "grader")
#: Output names a submission's folder must not take.
RESERVED = {
    "gradebook.csv",
    "summary.md",
    "summary.json",
    "pass_rates.png",
    "score_histogram.png",
    "misconceptions.png",
}
LOG_LIMIT = 2_000_000  # bytes of grader output kept per submission
EPS = 1e-9


@dataclass
class BatchConfig:
    submissions: Path = field(
        metadata={
            "positional": True,
            "help": "Folder with one entry per student: a folder holding rewards.py, or a .py file (alice.py).",
        }
    )
    out: Path = field(
        metadata={"help": "Output folder (gradebook.csv, summary, charts, one folder per submission)."}
    )
    no_training: bool = field(
        default=False, metadata={"help": "Skip the training checks (passes --no-training to the grader)."}
    )
    jobs: int = field(
        default=os.cpu_count() or 1,
        metadata={"help": "How many submissions to grade at once (one grader process each)."},
    )
    seed: int | None = field(
        default=None, metadata={"help": "Grading seed passed to every grade (--seed); default: the grader's."}
    )
    timeout: float = field(
        default=1800.0,
        metadata={
            "help": "Seconds after which one grade is killed and scored 0 (a safety net: the grader bounds "
            "its own time)."
        },
    )
    quiet: bool = field(
        default=False, metadata={"help": "No progress bar and no summary table on the terminal."}
    )


@dataclass
class Entry:
    """One student's submission as found in SUBMISSIONS_DIR."""

    name: str
    source: Path  # the folder or file in SUBMISSIONS_DIR
    file: Path | None  # the file to grade; None when there is none
    error: str = ""
    note: str = ""


@dataclass
class Graded:
    """One row of the gradebook."""

    name: str
    score: float
    max_score: float | None
    tests: list[dict[str, Any]]  # as in results.json (validated)
    error: str = ""
    note: str = ""
    exit_code: int | None = None
    seconds: float = 0.0
    submission_file: str = ""
