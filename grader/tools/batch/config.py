"""The batch's settings (:class:`BatchConfig`, also its command line) and rows (:class:`Entry`, :class:`Graded`)."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from grader.cli import GradeConfig
from grader.grading.results import VISIBILITIES

DEFAULT_GRADER = (sys.executable, "-m", "grader")
#: Output names a submission's folder must not take.
RESERVED = {
    "gradebook.csv",
    "summary.md",
    "summary.json",
    "pass_rates.png",
    "score_histogram.png",
    "misconceptions.png",
    "leaderboard.png",
}
#: Batch files that are not a submission's: a submission's folder name never starts with "_" (see discover).
SHARED_DIR = "_shared"
#: Beside each submission's results.json: what was graded and how, so that --resume knows what is done.
MARKER = "batch.json"
#: The batch's copy of the rubric in SHARED_DIR (with --hidden-visibility).
RUBRIC_COPY = "rubric.toml"
LOG_LIMIT = 2_000_000  # bytes of grader output kept per submission
EPS = 1e-9

#: The grader's options (its :class:`~grader.cli.GradeConfig`) a course sets for every grade of a batch: declared
#: there once, forwarded to each grade as given (see :func:`grader.tools.batch.grade.grader_options`).
FORWARDED = ("feedback_level", "rubric", "isolation")
#: Their types, for the annotations below: the batch's option is the grader's, whatever it becomes.
_GRADER = typing.get_type_hints(GradeConfig)
_FeedbackLevel = _GRADER["feedback_level"]
_Rubric = _GRADER["rubric"]
_Isolation = _GRADER["isolation"]


def _grader_field(name: str) -> Any:
    """The field of the grader's option ``name``: its default and help, said once, in :mod:`grader.cli`."""
    grader = {f.name: f for f in dataclasses.fields(GradeConfig)}[name]
    help_text = f"Every grade's --{name.replace('_', '-')}: {grader.metadata['help']}"
    return field(default=grader.default, metadata={**grader.metadata, "help": help_text})


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
    jobs: int | None = field(
        default=None,
        metadata={
            "help": "How many submissions to grade at once (one grader process each) with --executor local "
            "(default: this machine's CPUs divided by --cpus-per-grade, so that every grade gets its CPU quota); "
            "Ray schedules by --cpus-per-grade / --gpus-per-grade instead."
        },
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
    training_preset: Literal["auto", "tiny", "gpt2"] = field(
        default="auto",
        metadata={
            "help": "The grader's --training-preset (auto: each grade picks gpt2 on CUDA once its thresholds are calibrated, else tiny)."
        },
    )
    shared_baseline: bool = field(
        default=True,
        metadata={
            "help": "Make the training checks' baseline run (it uses no submission code) once per batch and "
            "give it to every grade (--baseline-run), instead of once per grade"
        },
    )
    resume: bool = field(
        default=False,
        metadata={
            "help": "Keep the submissions OUT already holds a valid result for (same file, same options; the "
            "grader finished normally) and grade only the others."
        },
    )
    executor: Literal["local", "ray"] = field(
        default="local",
        metadata={
            "help": "Where grades run: local (a process pool on this machine) or ray (one Ray task per "
            "submission, on an embedded Ray head or the cluster at --ray-address; pip install .[cluster])."
        },
    )
    ray_address: str | None = field(
        default=None,
        metadata={
            "help": "With --executor ray: the cluster to use (auto, HOST:PORT or ray://HOST:10001). Default: "
            "start a Ray head on this machine for the batch (local only, no dashboard).",
            "metavar": "ADDR",
        },
    )
    cpus_per_grade: float = field(
        default=1.0,
        metadata={
            "help": "CPUs each grade gets: its submission's CPU quota (the grader's --cpus), the default --jobs "
            "of --executor local (CPUs / this), and with --executor ray what each grade reserves (its training "
            "runs then use that many processes).",
            "metavar": "N",
        },
    )
    gpus_per_grade: float = field(
        default=0.0,
        metadata={
            "help": "With --executor ray: GPUs each grade reserves (1 for the gpt2 preset).",
            "metavar": "N",
        },
    )
    time_budget: float | None = field(
        default=None,
        metadata={
            "help": "The grader's --time-budget for each grade, in seconds (default: the grader's). Raise it on a "
            "busy machine or for the gpt2 preset.",
            "metavar": "SECONDS",
        },
    )
    feedback_level: _FeedbackLevel = _grader_field("feedback_level")
    rubric: _Rubric = _grader_field("rubric")
    isolation: _Isolation = _grader_field("isolation")
    hidden_visibility: str | None = field(
        default=None,
        metadata={
            "help": "When Gradescope shows students the results of the rubric's hidden checks (those only the "
            "instructor's grader has): written into the batch's copy of the rubric ([defaults] "
            "hidden_visibility), which every grade uses. Default: the rubric's.",
            "choices": VISIBILITIES,
        },
    )
    quiet: bool = field(
        default=False, metadata={"help": "No progress bar and no summary table on the terminal."}
    )

    def local_jobs(self) -> int:
        """Grades at once with --executor local: --jobs, else as many as the CPUs hold at --cpus-per-grade each."""
        if self.jobs is not None:
            return self.jobs
        return max(1, int((os.cpu_count() or 1) / self.cpus_per_grade + 1e-9))

    def rubric_file(self) -> Path | None:
        """The rubric file every grade is given (``--rubric``): the batch's copy in ``OUT/_shared`` when it sets
        the hidden checks' visibility, else ``--rubric``; None: the grader's own."""
        if self.hidden_visibility is not None:
            return self.out / SHARED_DIR / RUBRIC_COPY
        return self.rubric

    def grade_options(self) -> dict[str, Any]:
        """The options a grade's result depends on (a result made with others is not done for --resume); the
        rubric by its content, so that an edited rubric file grades again."""
        from grader.grading.rubric import DEFAULT_RUBRIC

        try:
            rubric_sha256 = hashlib.sha256((self.rubric_file() or DEFAULT_RUBRIC).read_bytes()).hexdigest()
        except OSError:
            rubric_sha256 = None
        return {
            "no_training": self.no_training,
            "seed": self.seed,
            "training_preset": self.training_preset,
            "feedback_level": self.feedback_level,
            "isolation": self.isolation,
            "rubric_sha256": rubric_sha256,
        }


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
    #: why the row is what it is, when not an ordinary grade (:mod:`grader.tools.batch.reasons`); "" otherwise
    reason: str = ""
