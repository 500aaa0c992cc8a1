"""The KL value check: each completion's penalty is the value the contract fixes (kl_coef times the mean of
the per-token term), on the fixed batches whose values the instructor's grader recorded
(:mod:`grader.checks.recorded`); for the backward penalty also the allowed clip above ratio 10. The same
property on random batches is a hidden check of the answer key (:mod:`grader.checks.key.checks`), which reuses
:func:`row_verdict` and :func:`clip_property`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial
from typing import Any

from grader.checks import feedback, recorded
from grader.checks import strategies as S
from grader.checks.harness import (
    Falsified,
    call,
    fmt,
    run_cases,
)
from grader.checks.kl_base import (
    LOWER_CLIP_ALLOWANCE,
    KLCheck,
    batch_text,
    require_finite,
    require_length,
)
from grader.contract import BACKWARD, FORWARD, CheckContext, CheckFunction, CheckOutcome, Submission


def value_formula(function: str) -> tuple[str, str]:
    """What the value checks say they test (their ``tested`` text's core) and how they name the fixed value."""
    # Only the "solution" feedback level names the term (grader.checks.feedback): the wording comes from there.
    term = feedback.phrase("value_term", function)
    where = "" if function == FORWARD else ", in every row whose ratios pi_ref/pi are all <= 10"
    return (
        f"each completion's penalty must be kl_coef * the mean over its tokens of {term}{where}",
        f"kl_coef * mean over its tokens of ({term})",
    )


def row_verdict(
    i: int,
    got: float,
    row_pi: Sequence[float],
    row_ref: Sequence[float],
    fixed: tuple[float, float] | None,
    formula: str,
    every: Sequence[float],
) -> None:
    """Raise :class:`Falsified` unless row ``i``'s penalty ``got`` is finite and, where the contract fixes the row's
    value (``fixed`` = (value, tolerance); None: free), within the tolerance of it."""
    if fixed is None:
        if not math.isfinite(got):
            raise Falsified(f"row {i}: the penalty is not finite", got=list(every))
        return
    want, tol = fixed
    if math.isfinite(got) and abs(got - want) <= tol:
        return
    raise Falsified(
        f"row {i} ({len(row_pi)} token{'s' if len(row_pi) > 1 else ''}) got the penalty "
        f"{fmt(got)}; the contract fixes it at {formula} = {fmt(want)}",
        expected=f"row {i}: {fmt(want, 8)} (within {fmt(tol, 2)})",
        got=f"row {i}: {fmt(got, 8)}",
        details=[
            f"row {i}: log_probs_policy = {fmt(row_pi)}",
            f"{' ' * len(str(i))}       log_probs_ref    = {fmt(row_ref)}",
            f"every penalty you returned: {fmt(list(every), max_items=12)}",
        ],
    )


def clip_property(sub: Submission, case: S.ClipCase) -> None:
    """Backward: where pi_ref/pi > 10 the contract lets the ratio be clipped (at any ratio >= 10), never flipped:
    the penalty must not rise as the ratio rises, nor exceed its value at ratio 10."""
    got = call(sub, BACKWARD, *case.batch.args)
    require_length(got, case.batch.policy)
    mine = [got[i] for i in case.rows]
    require_finite(mine)
    at_ten = mine[0]
    slack = 1e-9 + 1e-6 * abs(at_ten) + LOWER_CLIP_ALLOWANCE * case.batch.kl_coef
    for k in range(1, len(mine)):
        previous = mine[k - 1]
        if mine[k] > at_ten + slack or mine[k] > previous + slack:
            ratio, before = case.log_ratios[k], case.log_ratios[k - 1]
            raise Falsified(
                f"at log(pi_ref/pi) = {fmt(ratio, 4)} the penalty is {fmt(mine[k])}, higher than "
                f"{fmt(previous)} at log(pi_ref/pi) = {fmt(before, 4)}"
                + ("" if k == 1 else f" (and {fmt(at_ten)} at ratio 10)")
                + ": above ratio 10 you may clip the ratio, but a larger ratio must never cost more (the KL's "
                "gradient asks for the opposite)",
                expected=f"penalties non-increasing in the ratio, each <= {fmt(at_ten)}",
                got=f"penalties at log-ratios {fmt(list(case.log_ratios), 4)}: {fmt(mine)}",
                misconception="clip_flips_sign",
            )


def value(function: str) -> CheckFunction:
    """The public value check: the fixed batches of :func:`grader.checks.strategies.fixed_value_batches` (a third
    training-shaped, float32-exact), compared with the values the instructor's grader recorded
    (:mod:`grader.checks.recorded`); for the backward penalty also the clip above ratio 10. The same property on
    random batches is a hidden check (:mod:`grader.checks.key.checks`)."""

    def check(submission: Submission, context: CheckContext) -> CheckOutcome:
        rule, formula = value_formula(function)
        tested = (
            f"the value of {function} on {len(recorded.value_batches(function))} fixed batches like training's "
            f"(1 to 64 completions of 1 to {S.MAX_VALUE_ROW} tokens, log-probs anywhere from 0 down to "
            f"{S.LOGPROB_MIN:g}, some float32 like training's, some with a small-vocabulary case's tokens mixed "
            f"in): {rule}."
        )
        if function == BACKWARD:
            tested += (
                " Above ratio 10 the ratio may be clipped: the penalty never rises with the ratio, nor above its "
                "value at ratio 10."
            )
        # A RecordingError is raised through: the runner reports it as the grader's fault, worth nothing either way.
        cases = recorded.value_cases(function)

        def prop(sub: Submission, case: recorded.ValueCase | S.ClipCase) -> None:
            if isinstance(case, S.ClipCase):
                clip_property(sub, case)
                return
            got = call(sub, function, *case.batch.args)
            require_length(got, case.batch.policy)
            for i, (row_pi, row_ref) in enumerate(zip(case.batch.policy, case.batch.ref, strict=True)):
                row_verdict(i, got[i], row_pi, row_ref, case.expected[i], formula, got)

        all_cases: list[Any] = list(cases)
        if function == BACKWARD:
            all_cases += [S.clip_case(-900.0 - 25.0 * k, (0.1, 1.0, 3.0)[k], seed=k) for k in range(3)]
        failure = run_cases(all_cases, partial(prop, submission))
        return KLCheck(function, tested).outcome(submission, failure, prop, _case_text)

    return check


def _case_text(case: Any) -> str:
    return batch_text(case.batch)
