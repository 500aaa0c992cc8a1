"""The hidden checks: graded by the instructor's grader only (batch, Gradescope, Classroom and CI grading), absent
from a handout (the rubric marks them ``hidden = true``).

``<kl>.value_random``: the value property of the public ``<kl>.value`` check, on random ragged batches (a
quarter of them training-shaped: 8 to 64 float32-exact rows) that nobody can see in advance, checked against the
contract's terms computed here (:mod:`.terms`). Code that detects the public check's fixed batches, or that looks
them up, passes the public check and fails this one. The backward one also draws random clip cases (ratios above
10 at random log-probs and coefficients).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from hypothesis import strategies as st

from grader.checks import strategies as S
from grader.checks.harness import Falsified, call, examples_for, fmt, run_property
from grader.checks.key.terms import beyond_clip_bound, contract_value
from grader.checks.kl_base import KLCheck, batch_text, require_length
from grader.checks.kl_value import clip_property, row_verdict, value_formula
from grader.contract import BACKWARD, FORWARD, CheckContext, CheckFunction, CheckOutcome, Submission

#: Share of ``context.max_examples`` (each example is a batch of up to 64 rows).
EXAMPLE_SHARE = 0.3


def value_random(function: str) -> CheckFunction:
    def check(submission: Submission, context: CheckContext) -> CheckOutcome:
        rule, formula = value_formula(function)
        tested = (
            f"the value of {function} on random ragged batches like training's (1 to 64 completions of 1 to "
            f"{S.MAX_VALUE_ROW} tokens, log-probs anywhere from 0 down to {S.LOGPROB_MIN:g}, some float32 like "
            f"training's, some with a small-vocabulary case's tokens mixed in): {rule}."
        )
        if function == BACKWARD:
            tested += " Above ratio 10: never rising with the ratio, nor above its value at ratio 10."

        def prop(sub: Submission, case: Any) -> None:
            if isinstance(case, S.ClipCase):
                clip_property(sub, case)
                return
            got = call(sub, function, *case.args)
            require_length(got, case.policy)
            for i, (row_pi, row_ref) in enumerate(zip(case.policy, case.ref, strict=True)):
                fixed = contract_value(function, row_pi, row_ref, case.kl_coef)
                row_verdict(i, got[i], row_pi, row_ref, fixed, formula, got)
                if fixed is None and function == BACKWARD:
                    _within_clip_bound(i, got[i], row_pi, row_ref, case.kl_coef, got)

        bounded = function == BACKWARD
        # as many training-shaped batches (half of them of a preset's exact shape) as ragged ones
        strategy: st.SearchStrategy[Any] = st.one_of(
            S.value_batches(bounded=bounded), S.training_batches(bounded=bounded)
        )
        if function == BACKWARD:
            # bounded batches pin every value; unbounded ones (ratios above 10 inside longer rows, as a drifting
            # policy's batches have) are held to the clip's bound (_within_clip_bound)
            strategy = st.one_of(strategy, strategy, S.clip_cases(), S.value_batches())
        failure = run_property(
            context,
            strategy,
            partial(prop, submission),
            max_examples=examples_for(EXAMPLE_SHARE, context),
            examples=S.VALUE_EXAMPLES,
        )
        return KLCheck(function, tested).outcome(
            submission, failure, prop, lambda case: batch_text(getattr(case, "batch", case))
        )

    return check


def _within_clip_bound(
    i: int, got: float, row_pi: list[float], row_ref: list[float], kl_coef: float, every: list[float]
) -> None:
    """A backward row with a ratio above 10: no fixed value, but a clip never raises a token's term above its
    value at ratio 10 (a sign change, or dropping the row's penalty, does)."""
    broken = beyond_clip_bound(got, row_pi, row_ref, kl_coef)
    if broken is None:
        return
    bound, tol = broken
    raise Falsified(
        f"row {i} ({len(row_pi)} tokens, at least one with pi_ref/pi above 10) got the penalty {fmt(got)}: "
        f"{'more' if kl_coef >= 0 else 'less'} than kl_coef x the mean of its terms with every ratio above 10 "
        f"counted as 10 ({fmt(bound)}). The ratio may be clipped there, which keeps each such term at most "
        "1 - 10; a clip never flips the term's sign or drops the row's penalty",
        expected=f"row {i}: {'at most' if kl_coef >= 0 else 'at least'} {fmt(bound, 8)} (within {fmt(tol, 2)})",
        got=f"row {i}: {fmt(got, 8)}",
        details=[
            f"row {i}: log_probs_policy = {fmt(row_pi)}",
            f"{' ' * len(str(i))}       log_probs_ref    = {fmt(row_ref)}",
            f"every penalty you returned: {fmt(every, max_items=12)}",
        ],
        misconception="clip_flips_sign",
    )


def checks() -> dict[str, CheckFunction]:
    """The hidden checks by id."""
    from grader.checks.key.in_training import RUNS_OF, in_training
    from grader.checks.training import judging

    return {
        "kl_forward.value_random": value_random(FORWARD),
        "kl_backward.value_random": value_random(BACKWARD),
        # the runs each one reads are made for the training checks anyway; alone (--only) it asks for its own
        "kl_forward.in_training": judging(in_training(FORWARD), RUNS_OF[FORWARD][0]),
        "kl_backward.in_training": judging(in_training(BACKWARD), RUNS_OF[BACKWARD][0]),
    }
