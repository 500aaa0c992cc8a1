"""One check run and its verdict turned into points: :func:`run_check` calls a check within its budget and
makes the :class:`~grader.grading.results.TestResult` of its rubric entry (:func:`_result`, which every other
result of a grade is made with too: a check not run, cut short, or a grade that failed as a whole).

Separate from :mod:`grader.grading.runner`, which orders the checks and owns the sandbox and the deadline: this
is what one check's outcome is worth, whatever ran it (the quality tests call it on their own).
"""

from __future__ import annotations

import traceback
from collections.abc import Sequence
from pathlib import Path

from grader.checks.feedback import using_level
from grader.contract import CheckContext, CheckFunction, CheckOutcome, Submission
from grader.grading.results import TAG_NOT_GRADABLE, NotGradable, TestResult
from grader.grading.rubric import RubricEntry


def run_check(
    entry: RubricEntry,
    check: CheckFunction | None,
    submission: Submission,
    context: CheckContext,
    *,
    feedback_level: str | None = None,
) -> TestResult:
    """Run one check within its budget and turn its verdict into points; a failing check is the grader's error.
    Misconceptions are explained at ``feedback_level`` (None: the level in force, see :mod:`grader.checks.feedback`)."""
    if check is None:
        return _result(
            entry,
            0.0,
            f"Internal grader error: no check is registered under the id {entry.check_id!r}.",
            internal_error=True,
        )
    begin = getattr(submission, "begin_check", None)
    if begin is not None:
        begin(entry.budget_s)
    try:
        with using_level(feedback_level):
            outcome = check(submission, context)
    except NotGradable as exc:
        return _result(
            entry,
            0.0,
            f"NOT GRADABLE (not your code's fault; no points lost, left out of the maximum): {exc}",
            gradable=False,
        )
    except Exception as exc:  # noqa: BLE001
        frames = traceback.extract_tb(exc.__traceback__)
        where = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
        return _result(
            entry,
            0.0,
            f"Internal grader error in this check: {type(exc).__name__}: {exc}{where}. "
            "This is not your fault; please report it.",
            internal_error=True,
        )
    if (
        not isinstance(outcome, CheckOutcome)
        or isinstance(outcome.fraction, bool)
        or not isinstance(outcome.fraction, (int, float))
        or not 0.0 <= outcome.fraction <= 1.0
    ):
        return _result(
            entry,
            0.0,
            f"Internal grader error: the check returned {type(outcome).__name__} "
            f"{getattr(outcome, 'fraction', '')!r}, not a CheckOutcome with a fraction in [0, 1].",
            internal_error=True,
        )
    return _result(
        entry,
        float(outcome.fraction),
        _feedback(outcome),
        misconception=outcome.misconception,
        extra_tags=outcome.tags,
        artifacts=[str(a) for a in getattr(outcome, "artifacts", None) or ()],
        leaderboard=[e.to_dict() for e in outcome.leaderboard],
        measurements=dict(getattr(outcome, "measurements", None) or {}),
    )


def _feedback(outcome: CheckOutcome) -> str:
    """The check's feedback, plus its counterexample when the check did not include it. The misconception is
    the check's to explain (:meth:`grader.checks.misconceptions.Diagnosis.render`, at the level in force): the
    runner only adds points to the verdict."""
    parts = [outcome.feedback.strip()] if outcome.feedback.strip() else []
    if outcome.counterexample and outcome.counterexample not in outcome.feedback:
        parts.append("Counterexample:\n" + outcome.counterexample.rstrip())
    if not parts:
        parts.append("Passed." if outcome.fraction >= 1 else "Failed.")
    return "\n".join(parts)


def _result(
    entry: RubricEntry,
    fraction: float,
    output: str,
    *,
    internal_error: bool = False,
    misconception: str | None = None,
    extra_tags: Sequence[str] = (),
    artifacts: Sequence[str] = (),
    gradable: bool = True,
    leaderboard: Sequence[dict] = (),
    measurements: dict | None = None,
) -> TestResult:
    tags = [entry.function_tag, *entry.tags, *extra_tags]
    if not gradable:
        tags.append(TAG_NOT_GRADABLE)
    if misconception:
        tags.append(f"misconception:{misconception}")
    if entry.advisory:
        tags.append("advisory")
    return TestResult(
        name=entry.name,
        score=fraction * entry.points if gradable else 0.0,
        max_score=entry.points if gradable else 0.0,
        output=output,
        visibility=entry.visibility,
        tags=list(dict.fromkeys(tags)),
        check_id=entry.check_id,
        advisory=entry.advisory,
        misconception=misconception,
        internal_error=internal_error,
        # a check worth no points (advisory, or the training checks' control) that did not hold, or was not run,
        # is not "passed": its points hide nothing, its status must not either
        advisory_failed=(entry.advisory or entry.points == 0)
        and fraction < 1
        and not internal_error
        and gradable,
        artifacts=list(artifacts),
        leaderboard=list(leaderboard),
        measurements=dict(measurements or {}),
        gradable=gradable,
        points_not_graded=0.0 if gradable else entry.points,
    )
