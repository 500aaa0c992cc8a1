"""Property checks of ``shaped_reward`` (Exercise 2).

The shaping itself is the student's design; these checks enforce the contract in docs/design.md, and what defines a
shaping at all (``shaping.goal``, the check the others are gated on in the rubric): it rewards sentiment,
and a degenerate repetition earns less than a fluent completion of the same score. ``return list(scores)`` passes
every contract check, so without that defining check it would earn the whole exercise.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import Any

from grader.checks import goals, misconceptions
from grader.checks import strategies as S
from grader.checks.harness import (
    CallFailed,
    Failure,
    Falsified,
    call,
    call_outcome,
    examples_for,
    failed,
    finite,
    fmt,
    fmt_args,
    passed,
    run_property,
)
from grader.checks.misconceptions import Diagnosis
from grader.contract import SHAPING, CheckContext, CheckFunction, CheckOutcome, Submission

FN = SHAPING
PROMPT = "I watched this movie last night and"


def _batch_text(batch: S.ShapingBatch) -> str:
    return fmt_args(scores=batch.scores, completions=batch.completions, prompts=batch.prompts)


def _require(got: list[float], n: int) -> None:
    if len(got) != n:
        raise Falsified(
            f"returned {len(got)} values for {n} completions; it must return one reward per completion",
            expected=f"{n} values",
            got=got,
        )
    if not finite(got):
        raise Falsified(
            "returned a non-finite reward (nan or inf); every reward must be a finite number",
            got=got,
            misconception="shaping_non_finite",
        )


#: Share of ``context.max_examples`` each property runs.
EXAMPLE_SHARE = {
    "contract": 0.5,
    "deterministic": 0.3,
    "no_mutation": 0.25,
    "prompts_none": 0.25,
    "empty_completions": 0.25,
    "monotone_in_score": 0.5,
    "repetition": 0.5,
}


def _examples(name: str, context: CheckContext) -> int:
    return examples_for(EXAMPLE_SHARE[name], context)


_PROBE_SCORES = [0.1, 0.5, 0.9]
_PROBE_COMPLETIONS = ["A fine film with a good cast.", "great great great", ""]


def _result(
    submission: Submission,
    tested: str,
    failure: Failure[Any] | None,
    describe: Callable[[Any], str],
    classify: Callable[[Submission, CallFailed, Any], str | None] | None = None,
    tags: list[str] | None = None,
) -> CheckOutcome:
    if failure is None:
        return passed(tested, tags or [])
    return failed(
        tested=tested,
        function=FN,
        failure=failure,
        counterexample=describe(failure.case),
        diagnosis=_diagnose(submission, failure, classify),
        tags=tags or [],
    )


def _diagnose(
    submission: Submission,
    failure: Failure[Any],
    classify: Callable[[Submission, CallFailed, Any], str | None] | None,
) -> Diagnosis | None:
    """Non-determinism first (it explains any failure), then what the check recognised."""
    err = failure.error
    if isinstance(err, CallFailed) and err.fatal:
        return None
    if failure.flaky or misconceptions.is_nondeterministic(
        submission, FN, _PROBE_SCORES, _PROBE_COMPLETIONS, ["", "", ""]
    ):
        return Diagnosis(misconceptions.get("nondeterministic"))
    specific = err.misconception if isinstance(err, Falsified) else None
    if specific is None and isinstance(err, CallFailed):
        specific = (classify or _classify_crash)(submission, err, failure.case)
    return Diagnosis(misconceptions.get(specific)) if specific else None


def _works(submission: Submission, *args: Any, **kwargs: Any) -> bool:
    outcome = submission.call(FN, *args, **kwargs)
    return bool(
        outcome.ok
        and outcome.value is not None
        and len(outcome.value) == len(args[0])
        and finite(outcome.value)
    )


def _completions_of(case: Any) -> list[str]:
    if isinstance(case, S.ShapingBatch):
        return case.completions
    if isinstance(case, S.MonotoneCase):
        return [case.completion]
    return []


def _classify_crash(submission: Submission, err: CallFailed, case: Any) -> str | None:
    """An error on an input with a wordless completion, where a wordless completion alone also fails."""
    if any(not c.split() for c in _completions_of(case)) and not _works(submission, [0.5], [""], [""]):
        return "shaping_empty_completion"
    return None


def contract(submission: Submission, context: CheckContext) -> CheckOutcome:
    tested = (
        "shaped_reward(scores, completions, prompts) returns one finite number per completion for scores in "
        "[0, 1] and any text (unicode, empty), and an empty list for an empty batch."
    )

    def prop(sub: Submission, batch: S.ShapingBatch) -> None:
        got = call(sub, FN, batch.scores, batch.completions, batch.prompts)
        _require(got, len(batch.scores))

    examples = [S.ShapingBatch([], [], []), S.ShapingBatch([0.0, 1.0], ["", "A fine film."], ["", ""])]
    failure = run_property(
        context,
        S.shaping_batches(),
        partial(prop, submission),
        max_examples=_examples("contract", context),
        examples=examples,
    )
    return _result(submission, tested, failure, _batch_text, _classify_crash)


def deterministic(submission: Submission, context: CheckContext) -> CheckOutcome:
    tested = "shaped_reward returns exactly the same rewards when called twice with the same inputs."

    def prop(sub: Submission, batch: S.ShapingBatch) -> None:
        first = call(sub, FN, batch.scores, batch.completions, batch.prompts)
        second = call(sub, FN, batch.scores, batch.completions, batch.prompts)
        if len(first) != len(second) or not all(
            a == b or (math.isnan(a) and math.isnan(b)) for a, b in zip(first, second, strict=True)
        ):
            raise Falsified(
                "two calls with identical inputs gave different rewards",
                expected=first,
                got=second,
                misconception="nondeterministic",
            )

    failure = run_property(
        context,
        S.shaping_batches(min_size=1),
        partial(prop, submission),
        max_examples=_examples("deterministic", context),
    )
    return _result(submission, tested, failure, _batch_text)


def no_mutation(submission: Submission, context: CheckContext) -> CheckOutcome:
    tested = "shaped_reward leaves its inputs (scores, completions, prompts) unchanged."
    unchecked: list[bool] = []

    def prop(sub: Submission, batch: S.ShapingBatch) -> None:
        outcome = call_outcome(sub, FN, batch.scores, batch.completions, batch.prompts)
        if outcome.inputs_mutated:
            raise Falsified("shaped_reward changed the lists it was given", misconception="mutates_inputs")
        if outcome.inputs_mutated is None:
            unchecked.append(True)

    failure = run_property(
        context,
        S.shaping_batches(min_size=1),
        partial(prop, submission),
        max_examples=_examples("no_mutation", context),
    )
    return _result(submission, tested, failure, _batch_text, tags=["mutation-unchecked"] if unchecked else [])


def prompts_none(submission: Submission, context: CheckContext) -> CheckOutcome:
    tested = (
        "shaped_reward works without prompts: called as shaped_reward(scores, completions), with "
        "prompts=None, and with a list of prompts, it returns one finite reward per completion each time."
    )

    def prop(sub: Submission, batch: S.ShapingBatch) -> None:
        n = len(batch.scores)
        _require(call(sub, FN, batch.scores, batch.completions), n)
        _require(call(sub, FN, batch.scores, batch.completions, prompts=None), n)
        _require(call(sub, FN, batch.scores, batch.completions, prompts=batch.prompts), n)

    def classify(sub: Submission, err: CallFailed, batch: S.ShapingBatch) -> str | None:
        with_prompts = _works(sub, batch.scores, batch.completions, batch.prompts)
        if with_prompts and not _works(sub, batch.scores, batch.completions, prompts=None):
            return "shaping_requires_prompts"
        return _classify_crash(sub, err, batch)

    failure = run_property(
        context,
        S.shaping_batches(min_size=1, max_size=4),
        partial(prop, submission),
        max_examples=_examples("prompts_none", context),
    )
    return _result(
        submission,
        tested,
        failure,
        lambda b: (
            fmt_args(scores=b.scores, completions=b.completions)
            + "\n  (called with prompts omitted, with prompts=None, and with prompts="
            + fmt(b.prompts)
            + ")"
        ),
        classify,
    )


def empty_completions(submission: Submission, context: CheckContext) -> CheckOutcome:
    tested = (
        "shaped_reward returns a finite reward for empty completions and completions without words "
        '("", whitespace, punctuation only).'
    )

    def prop(sub: Submission, batch: S.ShapingBatch) -> None:
        _require(call(sub, FN, batch.scores, batch.completions, batch.prompts), len(batch.scores))

    examples = [S.ShapingBatch([0.5], [""], [""]), S.ShapingBatch([0.0, 1.0], ["", " "], ["a", "b"])]
    failure = run_property(
        context,
        S.shaping_batches(min_size=1, max_size=4, completion=S.empty_ish_completions()),
        partial(prop, submission),
        examples=examples,
        max_examples=_examples("empty_completions", context),
    )
    return _result(submission, tested, failure, _batch_text, _classify_crash)


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
        "of words and the same ending. Both are generated afresh for each case. One call: [repetition, fluent, "
        "fluent] with scores [s, s, lower]."
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


def checks() -> dict[str, CheckFunction]:
    return {
        "shaping.contract": contract,
        "shaping.deterministic": deterministic,
        "shaping.no_mutation": no_mutation,
        "shaping.prompts_none": prompts_none,
        "shaping.empty_completions": empty_completions,
        "shaping.monotone_in_score": monotone_in_score,
        "shaping.goal": goal,
    }
