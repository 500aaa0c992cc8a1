"""Training checks: short real GRPO runs with the submission's functions, scored against calibrated thresholds.

Four runs per grade, made once and shared by the four checks (the training engine, :mod:`grader.training`, makes them):

* ``baseline``: sentiment reward, no KL penalty. Uses none of the submission's code: it is the control (it must
  learn, and its drift from the reference is what the KL runs are compared with), worth 0 points;
* ``forward`` / ``backward``: sentiment reward minus the submission's KL penalty at the grading coefficient. The
  run must still learn (a smaller gain) and end much closer to the reference than the baseline, measured by the
  exact KL the penalty is meant to control: KL(pi || pi_ref) for forward, KL(pi_ref || pi) for backward;
* ``shaped``: the submission's ``shaped_reward`` with its ``kl_penalty_forward`` (exercise 2's run), compared with
  the ``forward`` run, which differs from it only in the shaping: it must still learn (a sentiment gain), move
  the training metric of the goal the submission declares (grader.checks.goals: repetition lower, completions
  longer or shorter, sentiment further from neutral, more rhymes) by a calibrated amount against it (returning
  the score unchanged reproduces the forward run exactly and fails every goal), and stay near the reference
  model: text that reads as naturally to it (perplexity under pi_ref at most a calibrated factor above the
  forward run's) and a policy the penalty still holds (KL(pi || pi_ref) at most a calibrated rise above the
  forward run's). A shaping that pays for gibberish fails these.

Before any run starts, each function the run needs is called once on a small batch through the grader's sandbox
(the pipeline's own pre-flight does the same inside the run): a stub or a broken function costs its run, with the
reason, in milliseconds, and when no function of the submission can be trained with, nothing is run at all.
The scoring functions are pure functions of the validation histories, so they are tested on synthetic
histories; they live beside this module, which makes the checks from them (and re-exports their names):

* :mod:`grader.checks.training_kl`: :func:`score_baseline`, :func:`score_kl`;
* :mod:`grader.checks.training_shaped`: :func:`score_shaped`;
* :mod:`grader.checks.training_base`: what they share, :func:`gain`, and when a run that failed is not gradable
  (:func:`overrun_cause`, :data:`SLOW_MACHINE_SHARE`) rather than the submission's 0.

A check whose rubric gate is closed (its function failed a defining check) scores 0 all the same
(:func:`grader.grading.gates.apply_gates`): a wrong penalty on a slow machine is still a wrong penalty.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from grader.checks.evidence import NEAR, UNDECIDED, decide
from grader.checks.goals import GOALS
from grader.checks.misconceptions import diagnose_kl
from grader.checks.training_base import (
    SLOW_MACHINE_SHARE,
    _number,
    _run_failed,
    _usable,
    control_problem,
    gain,
    overrun_cause,
)
from grader.checks.training_kl import KL_METRIC, KL_NAME, score_baseline, score_kl
from grader.checks.training_shaped import score_shaped
from grader.contract import (
    FORWARD,
    KL_KINDS,
    SHAPING,
    CheckContext,
    CheckFunction,
    CheckOutcome,
    NotGradable,
    Submission,
    TrainingContext,
)
from grader.training.engine import RunSet, TrainingInternalError
from grader.training.settings import Thresholds, TrainingSettings

# The scorers and the failure rules are imported from here by the calibration table, the challenge and the tests.
__all__ = [
    "KL_METRIC",
    "KL_NAME",
    "SLOW_MACHINE_SHARE",
    "TrainingInternalError",
    "_finish",
    "_run_failed",
    "check_baseline",
    "check_shaped",
    "checks",
    "control_problem",
    "gain",
    "judging",
    "overrun_cause",
    "run_set",
    "score_baseline",
    "score_kl",
    "score_shaped",
]


# ---------------------------------------------------------------------------------------------------------------
# The checks
# ---------------------------------------------------------------------------------------------------------------


def _settings(runs: RunSet) -> TrainingSettings:
    if runs.settings is None:
        raise TrainingInternalError("no training run reported its preset")
    return runs.settings


def run_set(submission: Submission, context: CheckContext) -> RunSet:
    """The grade's runs of this submission at the context's seed, from the grade's training engine."""
    if not isinstance(context, TrainingContext) or context.training is None:
        raise TrainingInternalError(
            "a training check needs a TrainingContext with the grade's training engine"
        )
    return context.training.run_set(submission, context.seed, context.budget_s)


def _declared_goal(context: CheckContext) -> str:
    """The goal the shaped check judges and the curves show: the declared one; "repetition" when the declaration
    is unusable (the shaping checks' feedback says so)."""
    return getattr(context, "shaping_goal", None) or "repetition"


def _finish(outcome: CheckOutcome, runs: RunSet, context: CheckContext) -> CheckOutcome:
    notes = []
    if runs.settings is not None and not runs.settings.calibrated:
        notes.append(f"Note: the {runs.settings.preset} thresholds are {runs.settings.note}.")
    engine = getattr(context, "training", None)
    stem = getattr(context, "artifact_stem", "")
    outcome.artifacts = engine.plot(runs, stem, GOALS.get(_declared_goal(context))) if engine else []
    if outcome.artifacts:
        notes.append(f"Curves of all training runs: {outcome.artifacts[0]}")
    if notes:
        outcome.feedback = "\n".join([outcome.feedback, *notes])
    return outcome


def check_baseline(submission: Submission, context: CheckContext) -> CheckOutcome:
    runs = run_set(submission, context)
    baseline = runs.records["baseline"]
    if baseline.gated:
        return _finish(score_baseline(baseline, Thresholds(0, 0, 0, 0, 0, 0, 0)), runs, context)
    if not baseline.usable:  # whether or not any run reported its preset
        raise NotGradable(f"{control_problem(baseline, Thresholds(0, 0, 0, 0, 0, 0, 0))}.")
    outcome = score_baseline(baseline, _settings(runs).thresholds)
    if runs.baseline_note:
        outcome.feedback += "\n" + runs.baseline_note
    return _finish(outcome, runs, context)


def _more_evidence(
    submission: Submission,
    context: CheckContext,
    judged: tuple[str, ...],
    first: RunSet,
    score: Callable[[RunSet], CheckOutcome],
) -> Callable[[int], CheckOutcome | None]:
    """For :func:`grader.checks.evidence.decide`: the check's verdict on its runs (``judged``) made at another
    seed, or None when the check's time left is not enough for them (judged by what the grade's own runs took)
    or a run did not finish there: the machine's doing, never evidence against the submission."""
    started = time.monotonic()

    def judge_at(seed: int) -> CheckOutcome | None:
        assert isinstance(context, TrainingContext) and context.training is not None  # run_set checked it
        left = context.budget_s - (time.monotonic() - started)
        if left < 1.5 * max(first.wall_time_s, 1.0):
            return None
        runs = context.training.run_set(submission, seed, left, only=frozenset(judged))
        if not all(_usable(runs.records.get(name)) for name in judged) or runs.settings is None:
            return None
        try:
            return score(runs)
        except NotGradable:
            return None

    return judge_at


def _decide(
    first: CheckOutcome,
    context: CheckContext,
    judge_at: Callable[[int], CheckOutcome | None],
    machine_cause: Callable[[], str | None] | None = None,
) -> CheckOutcome:
    """:func:`grader.checks.evidence.decide`, except for a check whose points a failed gate withholds anyway:
    more seeds could not change its score, so the grade's own seed's verdict stands and no runs are spent."""
    withheld_by = getattr(context, "withheld_by", ())
    if withheld_by and (first.measurements.get(NEAR) or first.measurements.get(UNDECIDED)):
        return replace(
            first,
            feedback=f"{first.feedback}\nA result this close to a threshold, or a run identical to its control, is "
            "normally judged at further seeds; not here: this check's points are withheld anyway (it requires "
            f"{', '.join(withheld_by)}, which failed), so more runs could not change your score.",
        )
    return decide(first, context.seed, judge_at, machine_cause)


def _machine_cause(first: RunSet, judged: tuple[str, ...]) -> Callable[[], str | None]:
    """For :func:`grader.checks.evidence.decide`: why the grade's time ran out for more seeds by the machine's
    doing, or None when the submission's functions took a large share of the judged runs' time (then running
    out the time is not a way to escape a verdict). Read from the runs' own timing (``submission_seconds``: the
    time inside the submission's calls)."""

    def cause() -> str | None:
        wall = mine = 0.0
        for name in judged:
            record = first.records.get(name)
            timing = (record.timing if record is not None else None) or {}
            w, m = timing.get("wall_seconds"), timing.get("submission_seconds")
            if not (_number(w) and _number(m)):
                return None  # no timing to tell: the verdict stands
            wall, mine = wall + float(w), mine + float(m)
        if wall <= 0 or mine > (1 - SLOW_MACHINE_SHARE) * wall:
            return None
        return (
            f"your functions took {mine:.1f} s of the {wall:.0f} s its runs took here, the training itself the "
            "rest: the machine was too slow or too busy for more runs in the grade's time"
        )

    return cause


def _check_kl(kind: str):
    def check(submission: Submission, context: CheckContext) -> CheckOutcome:
        runs = run_set(submission, context)
        student = runs.records[kind]
        if student.gated or not student.usable:  # judged without the settings: no run may have reported them
            outcome = _run_failed(student, f"your {KL_KINDS[kind]}", runs.records.get("baseline"))
            return _finish(outcome, runs, context)

        def score(made: RunSet) -> CheckOutcome:
            settings = _settings(made)
            return score_kl(
                kind, made.records.get("baseline"), made.records[kind], settings.thresholds,
                settings.runs.kl_coef(kind),
            )  # fmt: skip

        outcome = _decide(
            score(runs), context, _more_evidence(submission, context, ("baseline", kind), runs, score)
        )
        if outcome.fraction < 1 and student.usable:
            diagnosis = diagnose_kl(submission, KL_KINDS[kind])
            if diagnosis is not None:
                outcome.misconception = diagnosis.id
                outcome.feedback += "\n" + diagnosis.render(KL_KINDS[kind])
        return _finish(outcome, runs, context)

    check.__name__ = f"check_{kind}_kl"
    return check


def check_shaped(submission: Submission, context: CheckContext) -> CheckOutcome:
    runs = run_set(submission, context)
    shaped = runs.records["shaped"]
    if shaped.gated or not shaped.usable:
        label = f"your {SHAPING} and your {FORWARD}" if shaped.component == FORWARD else f"your {SHAPING}"
        outcome = _run_failed(shaped, label, runs.records.get("baseline"))
        return _finish(outcome, runs, context)

    def score(made: RunSet) -> CheckOutcome:
        return score_shaped(
            made.records.get("forward"),
            made.records["shaped"],
            _settings(made).thresholds,
            made.records.get("baseline"),
            goal=_declared_goal(context),
        )

    judged = ("forward", "shaped")
    outcome = _decide(
        score(runs),
        context,
        _more_evidence(submission, context, judged, runs, score),
        _machine_cause(runs, judged),
    )
    return _finish(outcome, runs, context)


def judging(check: CheckFunction, *runs: str) -> CheckFunction:
    """Mark ``check`` with the training runs it judges (``runs_judged``): a grade's engine makes only the runs of
    its checks (``--only training.shaped`` makes two runs, not four)."""
    check.runs_judged = frozenset(runs)  # type: ignore[attr-defined]
    return check


def checks() -> dict[str, CheckFunction]:
    return {
        "training.baseline": judging(check_baseline, "baseline"),
        "training.forward_kl": judging(_check_kl("forward"), "baseline", "forward"),
        "training.backward_kl": judging(_check_kl("backward"), "baseline", "backward"),
        "training.shaped": judging(check_shaped, "forward", "shaped"),
    }
