"""What a grade's summary (the results' overall ``output``) says: the score, then the notes (hidden checks,
checks not gradable, a capped feedback level, an import that failed), the files written, what the submission
printed and the sandbox; and the results of a grade that failed as a whole (:func:`_everything_failed`).

Separate from :mod:`grader.grading.runner` so that the texts a student reads first are in one place, tested in
process (tests/unit/test_runner_units.py), apart from the code that runs the checks.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from grader.grading.results import GradingResults, TestResult
from grader.grading.rubric import RubricEntry
from grader.grading.verdicts import _result

Progress = Callable[[TestResult], None]


def not_gradable_note(tests: Sequence[TestResult]) -> str:
    """What the summary says of the checks that could not be judged on this machine."""
    cut = [t for t in tests if not t.gradable]
    points = math.fsum(t.points_not_graded for t in cut)
    return (
        f"Not gradable: {len(cut)} check{'s' if len(cut) != 1 else ''} ({points:g} points) could not be judged "
        "because of the machine, not your code (each says why). No points lost: they are left out of this "
        "score's maximum, and the grade is to be made again (exit status 3) on a machine that can judge them."
    )


def hidden_note(absent: Sequence[RubricEntry]) -> str:
    """What the report says of the hidden checks a student's copy of the grader does not have."""
    points = math.fsum(e.points for e in absent)
    return (
        f"Hidden checks: {len(absent)} more check{'s' if len(absent) != 1 else ''}, worth {points:g} points, "
        "are graded when you submit (the same properties on inputs nobody sees in advance); this score does not "
        "include them."
    )


def _level_capped(requested: str, shown: str) -> str:
    """The note when a copy of the grader holds less text than the level asked for (a handout's copy holds only
    the level it was built for)."""
    return (
        f"Feedback level {requested!r} was asked for, but this copy of the grader only contains the {shown!r} "
        f"texts: showing {shown!r}."
    )


def _import_feedback(message: str, status: str) -> str:
    lead = {
        "timeout": "Your submission did not finish importing",
        "crashed": "Your submission crashed while being imported",
    }
    head = lead.get(status, "Your submission could not be imported")
    return (
        f"{head}, so none of its functions could be graded.\n{message}\n"
        "Run `python exercise/rewards.py` to see the error; code at the top level of the file runs on import."
    )


def _everything_failed(
    entries: Sequence[RubricEntry],
    message: str,
    started: float,
    seed: int,
    *,
    internal: bool,
    progress: Progress | None = None,
) -> GradingResults:
    tests = [_result(e, 0.0, message, internal_error=internal) for e in entries]
    for test in tests:
        if progress is not None:
            progress(test)
    return GradingResults(
        tests=tests,
        execution_time=time.monotonic() - started,
        output=message,
        internal_error=internal,
        seed=seed,
    )


def _overall_output(
    results: GradingResults, path: Path, notes: list[str], captured: str, isolation: str
) -> str:
    """The grade's summary: the score, then ``notes`` (why the whole submission failed, skipped or withheld
    points, an exhausted budget), the files written, what the submission printed, and the sandbox used."""
    lines = [f"Graded {path.name}: {results.score:g} / {results.max_score:g} points (seed {results.seed})."]
    lines.extend(note for note in notes if note)
    files = list(dict.fromkeys(a for t in results.tests for a in t.artifacts))
    if files:
        lines.append("Plots written next to the results: " + ", ".join(files))
    if captured:
        lines.append("What your code printed while being graded (truncated):\n" + captured)
    lines.append(f"Sandbox: {isolation}.")
    return "\n".join(lines)
