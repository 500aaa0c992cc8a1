"""Checks the grade's deadline cut short (:mod:`grader.grading.budget` keeps the time): the results of those not
run or not finished, whether the machine rather than the submission took the time (then they are not gradable),
and the summary's note on them.

Separate from :mod:`grader.grading.runner` because the rule that decides whose time it was
(:data:`MACHINE_TIME_SHARE`) is a policy of its own, tested in process (tests/unit/test_runner_units.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from grader.grading.budget import TAG_NOT_RUN, TAG_UNFINISHED, BudgetedSubmission, TimeBudget
from grader.grading.results import TestResult
from grader.grading.rubric import RubricEntry
from grader.grading.verdicts import _result
from grader.training.engine import TrainingEngine

#: A training check cut short by the grade's deadline is the machine's when the submission's own calls took less
#: than this share of the budget, counting its calls inside the training runs (the lanes report them with each
#: step): the rest went into the training runs, which are the grader's work.
MACHINE_TIME_SHARE = 0.5


def _machines_time(budgeted: BudgetedSubmission, budget: TimeBudget, engine: TrainingEngine) -> bool:
    """The submission's calls (the grade's own, and inside the training runs: their longest lane) took less than
    :data:`MACHINE_TIME_SHARE` of the budget."""
    return budgeted.call_seconds + engine.submission_seconds() < MACHINE_TIME_SHARE * budget.seconds


def _machine_out_of_time(entry: RubricEntry, message: str, tag: str) -> TestResult:
    """Not gradable: the deadline cut a training check short while the machine, not the submission, took the
    time (no points lost, left out of the maximum, flagged for a regrade)."""
    return _result(
        entry,
        0.0,
        f"NOT GRADABLE (not your code's fault; no points lost, left out of the maximum): {message}",
        extra_tags=[tag],
        gradable=False,
    )


def _out_of_time(entry: RubricEntry, message: str, tag: str) -> TestResult:
    """0 points because the grade's time budget ran out (not an internal error: the submission's time)."""
    return _result(entry, 0.0, message, extra_tags=[tag])


def _budget_note(budget: TimeBudget, tests: Sequence[TestResult]) -> str:
    cut = [t for t in tests if TAG_NOT_RUN in t.tags or TAG_UNFINISHED in t.tags]
    points = math.fsum(t.max_score for t in cut)
    return (
        f"The grading time budget of {budget.seconds:g} s ran out: {len(cut)} checks ({points:g} points) were "
        "not finished and score 0: slow functions, or a slow or busy machine (the checks say more)."
    )
