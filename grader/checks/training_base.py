"""What the training checks' scoring shares: a run's sentiment gain and its line for the feedback, and the
rules for a run that could not be scored: the submission's 0, or not gradable when the machine failed it.

Not gradable (:class:`~grader.grading.results.NotGradable`: no points lost, left out of the maximum) is what a
check is when the machine, not the submission, kept it from being judged:

* the control run (the baseline: none of the submission's code) failed, or did not learn: the KL checks compare
  with it, and a control that does not learn means this machine or preset cannot train with these thresholds,
  so the shaped check's verdict means nothing either (a control that failed for another reason, e.g. its time,
  leaves the shaped check gradable: that one compares with the forward run);
* a run failed in the grader rather than in the submission's code (``RunRecord.internal``: a training process
  that died, ran out of memory, lost its GPU, a pipeline error);
* a run missed its time budget while the machine was as slow without the submission's code
  (:func:`overrun_cause`): the control run of the grade missed it too, or the control's time, scaled to the work
  the run had to do within that budget, reached :data:`SLOW_MACHINE_SHARE` of it, or the run's own time outside
  the submission's calls did. A run that missed its budget because the submission's functions were slow is the
  submission's: 0, with the seconds they took.

Separate from the scorers (:mod:`grader.checks.training_kl`, :mod:`grader.checks.training_shaped`) because
every one of them applies these rules the same way, and they decide whose fault a failure is, which is a
policy of its own (tests/unit/test_not_gradable.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from grader.contract import CheckOutcome, NotGradable, Submission
from grader.training.runs import COST, RunRecord
from grader.training.settings import Thresholds

#: A run that missed its time budget is the machine's fault when the work it had to do within that budget, done
#: without the submission's code, took at least this share of the budget (see :func:`overrun_cause`).
SLOW_MACHINE_SHARE = 0.7


def gain(history: Sequence[dict[str, Any]]) -> float:
    """Final minus step-0 validation sentiment."""
    return float(history[-1]["sentiment_mean"]) - float(history[0]["sentiment_mean"])


def _sentiment_line(history: Sequence[dict[str, Any]]) -> str:
    first, last = history[0], history[-1]
    return (
        f"validation sentiment {first['sentiment_mean']:.3f} at step 0 -> {last['sentiment_mean']:.3f} at "
        f"step {last['step']} ({gain(history):+.3f})"
    )


def _usable(record: RunRecord | None) -> bool:
    return record is not None and record.usable


def control_problem(baseline: RunRecord | None, th: Thresholds) -> str | None:
    """Why the control run (the baseline: GRPO on the sentiment reward, none of the submission's code) cannot be
    compared with, or None when it finished and learned at least ``th.baseline_min_gain``."""
    if baseline is None or not baseline.usable:
        error = (baseline.error if baseline else None) or "it produced no validation history"
        return f"the control run (GRPO without a penalty, none of your code) failed on this machine: {error}"
    if gain(baseline.history) < th.baseline_min_gain:
        return (
            f"the control run (GRPO without a penalty, none of your code) did not learn on this machine "
            f"({_sentiment_line(baseline.history)}, needs at least {th.baseline_min_gain:+g}): this machine or "
            "preset does not train as the thresholds were calibrated for (instructors: check the models, or "
            "recalibrate with python -m grader.tools calibrate)"
        )
    return None


def _require_baseline(baseline: RunRecord | None, th: Thresholds) -> list[dict[str, Any]]:
    problem = control_problem(baseline, th)
    if problem is not None:
        raise NotGradable(f"This run is judged against the control run, and {problem}.")
    assert baseline is not None
    return baseline.history


def overrun_cause(record: RunRecord, baseline: RunRecord | None) -> str | None:
    """Why ``record``, a run that missed its time budget (``timed_out``), is the machine's fault, not the
    submission's; None when nothing shows the machine was as slow (then the submission's functions took the
    time). The evidence, any of:

    * the control run (none of the submission's code) also missed its budget;
    * the control's time, scaled by the run costs (``runs.COST``) to the work the run's training process had to
      do within the budget (``record.budget_cost``: this run and those before it in the same process), reached
      :data:`SLOW_MACHINE_SHARE` of the budget (a control made before this grade, ``made_earlier``, says nothing
      about the machine now and is not used);
    * the run's own time outside the submission's calls (``timing``: ``wall_seconds`` minus
      ``submission_seconds``) reached that share of it.
    """
    budget = record.budget_s
    if baseline is not None and baseline is not record and baseline.timed_out:
        return (
            "the control run, which runs none of your code, did not finish within its time budget either: the "
            "machine was too slow or too busy"
        )
    if not budget or budget <= 0:
        return None
    if baseline is not None and baseline.usable and baseline.wall_time_s and not baseline.made_earlier:
        per_unit = float(baseline.wall_time_s) / COST["baseline"]
        needed = per_unit * (record.budget_cost or COST.get(record.run, 1.0))
        if needed >= SLOW_MACHINE_SHARE * budget:
            return (
                f"the control run, which runs none of your code, took {baseline.wall_time_s:.0f} s on this "
                f"machine: without your code the work this run had to finish within its {budget:g} s would "
                f"have taken about {needed:.0f} s, so the machine was too slow or too busy"
            )
    timing = record.timing or {}
    wall, mine = timing.get("wall_seconds"), timing.get("submission_seconds")
    if _number(wall) and _number(mine) and wall - mine >= SLOW_MACHINE_SHARE * budget:
        return (
            f"of the {wall:.0f} s it ran, your functions took {mine:.1f} s and the training itself "
            f"{wall - mine:.0f} s: the machine was too slow or too busy"
        )
    return None


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _run_failed(record: RunRecord, label: str, baseline: RunRecord | None = None) -> CheckOutcome:
    """0 for a run that failed because of the submission; :class:`NotGradable` when the grader or the machine
    failed it (an internal failure, a missed budget that :func:`overrun_cause` puts on the machine)."""
    if record.internal:
        raise NotGradable(
            f"The run with {label} failed in the grader, not in your code: {record.error or 'no record'}"
        )
    error = record.error or "it produced no validation history"
    if record.timed_out:
        cause = overrun_cause(record, baseline)
        if cause is not None:
            raise NotGradable(f"The run with {label} missed its time budget ({error}), and {cause}.")
        mine = (record.timing or {}).get("submission_seconds")
        if _number(mine):
            error += f" (your functions took {mine:.1f} s of it)"
        error += (
            "; the training itself ran at this machine's usual speed (the control run, none of your code, "
            "finished well within the budget), so your functions took the time: make them faster"
        )
    return CheckOutcome(
        0.0,
        f"The run with {label} could not be scored: {error}\n"
        "0 for this check; the other training runs were made and scored independently.",
        tags=["training:run_failed"],
    )


#: Call outcomes the machine, not the submission, is answerable for (a timeout, a worker that died).
NOT_EVIDENCE = ("timeout", "crashed")


def gated_by_the_code(submission: Submission, record: RunRecord | None, function: str) -> str | None:
    """Why ``record``'s run was not made because ``function`` failed its pre-flight call, asked again now (None:
    the run was made, something else stopped it, or the failure was the machine's: a timeout, a dead worker).
    The checks that hold a function to what it did in training use it: a function that fails the pre-flight
    batch only leaves no training call to hold."""
    from grader.training.engine import preflight

    if record is None or not record.gated or record.component != function:
        return None
    outcome, problem = preflight(submission, function)
    return None if outcome.status in NOT_EVIDENCE else problem
