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
from grader.checks.harness import call, examples_for, run_property
from grader.checks.key.terms import contract_value
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

        strategy: st.SearchStrategy[Any] = S.value_batches(bounded=function == BACKWARD)
        if function == BACKWARD:
            strategy = st.one_of(strategy, strategy, S.clip_cases())
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


def checks() -> dict[str, CheckFunction]:
    """The hidden checks by id."""
    return {
        "kl_forward.value_random": value_random(FORWARD),
        "kl_backward.value_random": value_random(BACKWARD),
    }
