"""The defining reward-shaping checks (``shaping.goal``, gated on by the others in the rubric): the shaping rewards
sentiment (monotone in the score) and serves its declared goal, by default that a degenerate repetition earns less
than a fluent completion of the same score (:mod:`grader.checks.goals` catalogues the goals)."""

from __future__ import annotations

from functools import partial
from typing import Any

from grader.checks import goals
from grader.checks import strategies as S
from grader.checks.harness import (
    Falsified,
    call,
    fmt,
    fmt_args,
    run_property,
)
from grader.checks.shaping_base import (
    FN,
    PROMPT,
    _examples,
    _require,
    _result,
)
from grader.contract import CheckContext, CheckOutcome, Submission


def monotone_in_score(submission: Submission, context: CheckContext) -> CheckOutcome:
    tested = (
        "for a fixed completion, shaped_reward never decreases as the score rises from 0 to 1, and is not "
        "constant in the score (one call: the same completion repeated, with a grid of scores)."
    )

    def prop(sub: Submission, case: S.MonotoneCase) -> None:
        n = len(case.scores)
        got = call(sub, FN, list(case.scores), [case.completion] * n, [PROMPT] * n)
        _require(got, n)
        for i in range(1, n):
            if got[i] < got[i - 1] - 1e-12 * max(1.0, abs(got[i - 1])):
                raise Falsified(
                    f"the reward decreases from {fmt(got[i - 1])} to {fmt(got[i])} as the score rises from "
                    f"{fmt(case.scores[i - 1])} to {fmt(case.scores[i])}",
                    got=fmt(got, max_items=30),
                    misconception="shaping_not_monotone",
                )
        if not max(got) - min(got) > 1e-9 * max(1.0, abs(max(got))):
            raise Falsified(
                "the reward is the same for every score from 0 to 1, so it gives no signal to be "
                "positive for this completion",
                got=fmt(got, max_items=30),
                misconception="shaping_ignores_score",
            )

    examples = [S.MonotoneCase(c, list(S.SCORE_GRID)) for c in ("", "great", S.fluent_text(12, 0))]
    failure = run_property(
        context,
        S.monotone_cases(),
        partial(prop, submission),
        examples=examples,
        max_examples=_examples("monotone_in_score", context),
    )
    return _result(
        submission,
        tested,
        failure,
        lambda c: (
            f"  completion = {fmt(c.completion)}\n  scores     = {fmt(c.scores, max_items=30)}\n"
            "  (the same completion for every score, in one call)"
        ),
    )


def repetition(submission: Submission, context: CheckContext) -> CheckOutcome:
    tested = (
        "what a shaping is for: it rewards sentiment (a fluent completion earns more with a higher score) and "
        "does not pay for the repetition hack: a degenerate repetition (one word, a phrase or a cycle of several "
        'words written 3 or more times, with any punctuation, such as "great great great" or "Great film! Great '
        'film! Great film!") earns strictly less than a fluent completion with the same score, the same number '
        "of words and the same ending, by at least what a rise of 0.01 in the score is worth to the reward (or 1% "
        "of the reward). Both are generated afresh for each case. One call: [repetition, fluent, fluent] with "
        "scores [s, s, lower]."
    )

    def prop(sub: Submission, case: S.RepetitionCase) -> None:
        scores = [case.score, case.score, case.lower]
        got = call(sub, FN, scores, [case.degenerate, case.fluent, case.fluent], [PROMPT] * 3)
        _require(got, 3)
        degenerate, fluent, fluent_lower = got
        margin = 1e-9 * max(1.0, abs(fluent))
        if not fluent > fluent_lower + margin:
            raise Falsified(
                f"the fluent completion earns {fmt(fluent)} with the score {fmt(case.score)} and "
                f"{fmt(fluent_lower)} with the lower score {fmt(case.lower)}: a shaped reward must still "
                "reward sentiment",
                expected=f"reward(fluent, {fmt(case.score)}) > reward(fluent, {fmt(case.lower)})",
                got=got,
                misconception="shaping_not_monotone" if fluent < fluent_lower else "shaping_ignores_score",
            )
        if not degenerate < fluent - margin:
            raise Falsified(
                f"the repetition earns {fmt(degenerate)}, "
                + ("more than" if degenerate > fluent else "as much as")
                + f" the fluent completion's {fmt(fluent)} at the same score: a policy trained on this reward "
                "gains nothing by staying fluent, so it can hack it by repeating itself",
                expected=f"reward({fmt(case.degenerate[:24])}...) < reward(fluent)",
                got=got,
                misconception="shaping_rewards_repetition",
            )
        slope = (fluent - fluent_lower) / (case.score - case.lower)
        if not goals.material(fluent - degenerate, slope, fluent, degenerate):
            raise Falsified(
                goals.not_material(
                    fluent - degenerate,
                    slope,
                    f"the repetition earns less than the fluent completion at the same score ({fmt(degenerate, 10)} "
                    f"against {fmt(fluent, 10)})",
                ),
                expected=f"a difference of at least {fmt(goals.MATERIAL * min(slope, max(abs(fluent), abs(degenerate))))}",
                got=got,
            )

    failure = run_property(
        context,
        S.repetition_cases(),
        partial(prop, submission),
        max_examples=_examples("repetition", context),
    )
    return _result(
        submission,
        tested,
        failure,
        lambda c: fmt_args(
            scores=[c.score, c.score, c.lower], completions=[c.degenerate, c.fluent, c.fluent]
        ),
    )


def _case_text(case: Any) -> str:
    """The call a goal's case makes, as the student would write it."""
    if isinstance(case, S.LengthCase):
        return fmt_args(scores=[case.score, case.score], completions=[case.short, case.long])
    if isinstance(case, S.RhymeCase):
        return fmt_args(scores=[case.score, case.score], completions=[case.rhyming, case.plain])
    if isinstance(case, S.ContrastCase):
        return fmt_args(scores=list(case.scores), completions=[case.text] * 3)
    return fmt(case)


def goal(submission: Submission, context: CheckContext) -> CheckOutcome:
    """The defining shaping check: the property of the goal the submission declares (grader.checks.goals)."""
    declared = getattr(context, "shaping_goal", goals.DEFAULT_GOAL)
    note = getattr(context, "shaping_goal_note", "")
    if declared is None:
        return CheckOutcome(
            fraction=0.0, feedback=f"Not graded as any goal: {note}", tags=["goal-undeclared"]
        )
    if declared == "repetition":
        outcome = repetition(submission, context)
    else:
        chosen = goals.GOALS[declared]
        failure = run_property(
            context,
            chosen.cases(),
            partial(chosen.prop, submission),
            max_examples=_examples("repetition", context),
        )
        outcome = _result(
            submission, f"what your declared goal ({declared}) is for: {chosen.tested}", failure, _case_text
        )
    outcome.tags.append(f"goal:{declared}")
    if note:
        outcome.feedback = f"{note}\n{outcome.feedback}"
    return outcome
