"""What every KL check shares: how many examples each runs, the checks on the output's shape, the tolerances
of the value checks, and :class:`KLCheck`, which turns a property's failure into feedback that names the
misconception explaining it (the diagnosis order is in :meth:`KLCheck.diagnose`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from grader.checks import misconceptions
from grader.checks import strategies as S
from grader.checks.harness import (
    CallFailed,
    Failure,
    Falsified,
    examples_for,
    failed,
    finite,
    fmt_args,
    passed,
    reproduces,
)
from grader.checks.misconceptions import Diagnosis
from grader.contract import FORWARD, CheckContext, CheckOutcome, Submission

#: Share of ``context.max_examples`` each property runs (multi-call properties run fewer examples), chosen so that
#: the whole no-training grade stays within a few seconds through the sandbox (~1 ms per call).
EXAMPLE_SHARE = {
    "contract": 0.6,
    "zero_when_identical": 0.3,
    "nonnegative_in_expectation": 0.5,
    "direction": 1.0,
    "value": 0.3,  # each example is up to 8 rows of up to 200 tokens
    "expected_value": 0.5,
    "linear_in_coef": 0.4,
    "mean_over_tokens": 0.4,
    "batch_independent": 0.4,
    "finite_extreme": 0.3,
}


def max_examples(name: str, context: CheckContext) -> int:
    return examples_for(EXAMPLE_SHARE[name], context)


def require_length(got: Sequence[float], rows: Sequence[Sequence[float]]) -> None:
    n, tokens = len(rows), sum(len(r) for r in rows)
    if len(got) != n:
        per_token = tokens != n and len(got) == tokens
        raise Falsified(
            f"returned {len(got)} values for a batch of {n} completions; the output needs exactly one penalty per "
            "completion (row)",
            expected=f"{n} values",
            got=list(got),
            misconception="per_token_output" if per_token else None,
        )


def require_finite(got: Sequence[float]) -> None:
    if not finite(got):
        raise Falsified(
            "returned a non-finite value (nan or inf); every penalty must be a finite number", got=list(got)
        )


def batch_text(batch: S.LogProbBatch) -> str:
    return fmt_args(log_probs_policy=batch.policy, log_probs_ref=batch.ref, kl_coef=batch.kl_coef)


#: Tolerance of the value checks, relative to the size of the row's inputs (not of the result: the log-ratio of two
#: log-probs near -800 is small, but float32 rounds each of them by about 5e-5). float32 arithmetic (torch's and
#: numpy's default) rounds each log-prob by 6e-8 of its size and a pairwise sum of 200 terms adds a few times that,
#: so 1e-5 leaves about 20x to spare; dropping, adding or mis-weighting even one token of a row moves its mean by
#: orders of magnitude more.
VALUE_RTOL = 1e-5


#: The backward penalty may clip the log-ratio log(pi_ref/pi) from below at any value <= -10 (the common
#: ``clip(-10, 10)`` idiom; the contract allows it): that moves a token's value by at most e^-10.
LOWER_CLIP_ALLOWANCE = math.exp(-10.0)


def rounding_scale(function: str, lp: float, lr: float) -> float:
    """How large a per-token value's rounding error can be, in units of the arithmetic's relative precision: the
    log-probs are rounded relative to their own size, and the backward penalty, which works with the ratio
    pi_ref/pi, can amplify an error in its logarithm by the ratio itself."""
    if function == FORWARD:
        return abs(lp) + abs(lr)
    r = math.exp(min(lr - lp, 700.0))
    return r * (abs(lp) + abs(lr) + 2.0) + 1.0


def _rows_of(case: Any) -> list[list[float]]:
    batch = getattr(case, "batch", case)
    return list(getattr(batch, "policy", []))


def _empty_row_broken(submission: Submission, function: str) -> bool:
    outcome = submission.call(function, [[], [-1.0]], [[], [-0.5]], 0.1)
    return not (
        outcome.ok
        and outcome.value is not None
        and len(outcome.value) == 2
        and math.isfinite(outcome.value[0])
        and abs(outcome.value[0]) <= 1e-12
    )


class KLCheck:
    """Shared plumbing: turn a property's failure into feedback, naming the misconception that explains it."""

    def __init__(self, function: str, tested: str) -> None:
        self.function = function
        self.tested = tested

    def outcome(
        self,
        submission: Submission,
        failure: Failure[Any] | None,
        prop: Callable[[Submission, Any], None],
        describe: Callable[[Any], str],
        classify: Callable[[CallFailed, Any], str | None] | None = None,
    ) -> CheckOutcome:
        if failure is None:
            return passed(self.tested)
        return failed(
            tested=self.tested,
            function=self.function,
            failure=failure,
            counterexample=describe(failure.case),
            diagnosis=self.diagnose(submission, failure, prop, classify),
        )

    def diagnose(
        self,
        submission: Submission,
        failure: Failure[Any],
        prop: Callable[[Submission, Any], None],
        classify: Callable[[CallFailed, Any], str | None] | None,
    ) -> Diagnosis | None:
        """In order: non-determinism; a catalogued wrong implementation that matches the submission on the probes
        AND fails this property on the same input (so it explains this failure); what the check itself
        recognised (overflow, empty rows, ...); an empty row that the failing input contains and the submission
        mishandles."""
        err = failure.error
        if isinstance(err, CallFailed) and err.fatal:
            return None
        if failure.flaky:
            return Diagnosis(misconceptions.get("nondeterministic"))
        probe = misconceptions.diagnose_kl(submission, self.function)
        if probe is not None and probe.id == "nondeterministic":
            return probe
        # Without the answer key (a handout) the match on the probes alone names it; with the key, the wrong
        # implementation must also fail this property on the same input (so it explains this failure).
        if probe is not None and (
            probe.implementation is None
            or reproduces(self.function, probe.implementation, prop, failure.case)
        ):
            return probe
        specific = err.misconception if isinstance(err, Falsified) else None
        if specific is None and classify is not None and isinstance(err, CallFailed):
            specific = classify(err, failure.case)
        if specific is not None:
            return Diagnosis(misconceptions.get(specific))
        if any(not row for row in _rows_of(failure.case)) and _empty_row_broken(submission, self.function):
            return Diagnosis(misconceptions.get("empty_row"))
        return None
