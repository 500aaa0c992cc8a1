"""Property checks of ``shaped_reward`` (Exercise 2).

The shaping itself is the student's design; these checks enforce the contract in docs/design.md, and what defines a
shaping at all (``shaping.goal``, the check the others are gated on in the rubric): it rewards sentiment,
and a degenerate repetition earns less than a fluent completion of the same score. ``return list(scores)`` passes
every contract check, so without that defining check it would earn the whole exercise.

The checks by concern: the contract checks here, the defining ones in :mod:`grader.checks.shaping_goal`, what they
share in :mod:`grader.checks.shaping_base`; :func:`checks` registers them under their ids.
"""

from __future__ import annotations

import math
from functools import partial

from grader.checks import strategies as S
from grader.checks.harness import (
    CallFailed,
    Falsified,
    call,
    call_outcome,
    fmt,
    fmt_args,
    run_property,
)
from grader.checks.shaping_base import (
    FN,
    _batch_text,
    _classify_crash,
    _examples,
    _require,
    _result,
    _works,
)
from grader.checks.shaping_goal import goal, monotone_in_score, repetition  # noqa: F401 (re-exported)
from grader.contract import CheckContext, CheckFunction, CheckOutcome, Submission


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
