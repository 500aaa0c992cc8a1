"""The KL checks that enumerate a small vocabulary (sequence length 1, a softmax policy), where expectations
under pi and the policy gradient are exact sums: ``direction`` (the defining property: the policy gradient of
E_pi[-penalty] is -kl_coef times the right KL's gradient), ``expected_value`` (forward: E_pi[penalty] is
kl_coef KL(pi || pi_ref)) and ``nonnegative_in_expectation``.

The vocabulary's one-token completions are hidden among unrelated rows of a batch (:func:`S.hidden`), so code
that recognises the enumeration's batch shape cannot pass.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial

from grader.checks import strategies as S
from grader.checks.harness import (
    CallFailed,
    Falsified,
    call,
    close,
    fmt,
    fmt_args,
    run_cases,
    run_property,
)
from grader.checks.kl_base import (
    LOWER_CLIP_ALLOWANCE,
    VALUE_RTOL,
    KLCheck,
    batch_text,
    max_examples,
    require_finite,
    require_length,
    rounding_scale,
)
from grader.contract import BACKWARD, FORWARD, CheckContext, CheckFunction, CheckOutcome, Submission

KL_NAME = {FORWARD: "KL(pi || pi_ref)", BACKWARD: "KL(pi_ref || pi)"}


#: How the enumerating checks call the function (see grader.checks.strategies.hidden).
_HIDDEN_NOTE = "The vocabulary's one-token completions are called inside a batch of unrelated completions, at random rows."


def _distribution_text(hidden: S.HiddenCase) -> str:
    case, batch = hidden.case, hidden.batch
    ratios = [r / p for p, r in zip(case.pi, case.ref, strict=True)]
    if hidden.decoys:
        call_text = (
            f"  called with a batch of {len(batch.policy)} completions: vocabulary entry a is the one-token "
            f"completion in row {list(hidden.rows)}[a]; the {hidden.decoys} other rows are unrelated completions "
            "(their penalties are not used here):"
        )
    else:
        call_text = "  called with one completion of one token per vocabulary entry:"
    return "\n".join(
        [
            fmt_args(pi=case.pi, pi_ref=case.ref, kl_coef=case.kl_coef),
            f"  (ratios pi_ref/pi: {fmt(ratios, 4)})",
            call_text,
            batch_text(batch),
        ]
    )


def _hidden_penalties(sub: Submission, function: str, hidden: S.HiddenCase) -> list[float]:
    """Call with the whole batch; return the penalties of the case's one-token rows, in vocabulary order."""
    got = call(sub, function, *hidden.batch.args)
    require_length(got, hidden.batch.policy)
    mine = [got[i] for i in hidden.rows]
    require_finite(mine)
    return mine


def _norm(v: Sequence[float]) -> float:
    return math.sqrt(math.fsum(x * x for x in v))


def _kl_gradient(function: str, case: S.DistributionCase) -> list[float]:
    """Gradient w.r.t. the softmax logits of the KL the function regularises."""
    pi, ref, log_pi, log_ref = case.pi, case.ref, case.log_pi, case.log_ref
    if function == FORWARD:
        kl = math.fsum(p * (a - b) for p, a, b in zip(pi, log_pi, log_ref, strict=True))
        return [p * (a - b - kl) for p, a, b in zip(pi, log_pi, log_ref, strict=True)]
    return [p - r for p, r in zip(pi, ref, strict=True)]


def _policy_gradient(pi: Sequence[float], penalty: Sequence[float]) -> list[float]:
    """grad_logits E_pi[-penalty] with the penalty held fixed: -sum_a pi_a penalty_a (e_a - pi)."""
    mean = math.fsum(p * x for p, x in zip(pi, penalty, strict=True))
    return [-p * (x - mean) for p, x in zip(pi, penalty, strict=True)]


def _expectation_rounding(function: str, case: S.DistributionCase) -> float:
    """The tolerance an exact expectation under pi needs for float32 penalties (see VALUE_RTOL), and for the
    backward penalty a lower clip of the log-ratio."""
    pairs = zip(case.pi, case.log_pi, case.log_ref, strict=True)
    rounding = (
        VALUE_RTOL * case.kl_coef * math.fsum(p * rounding_scale(function, lp, lr) for p, lp, lr in pairs)
    )
    return rounding + (LOWER_CLIP_ALLOWANCE * case.kl_coef if function == BACKWARD else 0.0)


def _expected_penalty(sub: Submission, function: str, hidden: S.HiddenCase) -> tuple[list[float], float]:
    """Call ``function`` with one single-token completion per vocabulary entry (hidden among unrelated rows);
    return their penalties and the exact expectation under pi, sum_a pi(a) * penalty(a)."""
    got = _hidden_penalties(sub, function, hidden)
    return got, math.fsum(p * x for p, x in zip(hidden.case.pi, got, strict=True))


def nonnegative_in_expectation(function: str) -> CheckFunction:
    tested = (
        f"the expected penalty of {function} under pi, computed exactly by enumerating a small vocabulary "
        "(2 to 8 tokens, sequence length 1), is >= 0 for any pair of distributions pi, pi_ref. "
        f"{_HIDDEN_NOTE}"
    )

    def check(submission: Submission, context: CheckContext) -> CheckOutcome:
        def prop(sub: Submission, hidden: S.HiddenCase) -> None:
            got, expectation = _expected_penalty(sub, function, hidden)
            tol = (
                1e-9
                + 1e-6 * math.fsum(p * abs(x) for p, x in zip(hidden.case.pi, got, strict=True))
                + _expectation_rounding(function, hidden.case)
            )
            if not expectation >= -tol:
                raise Falsified(
                    "E_pi[penalty] = sum_a pi(a) * penalty(a) is negative, but a KL is never negative: a "
                    "penalty that regularises a KL cannot be a bonus on average (usually a sign or the direction "
                    "of the ratio is wrong)",
                    expected=">= 0",
                    got=fmt(expectation),
                    details=[f"penalties: {fmt(got)}"],
                )

        failure = run_property(
            context,
            S.hidden(S.distributions(max_ratio=None)),
            partial(prop, submission),
            max_examples=max_examples("nonnegative_in_expectation", context),
        )
        return KLCheck(function, tested).outcome(submission, failure, prop, _distribution_text)

    return check


def direction(function: str) -> CheckFunction:
    kl = KL_NAME[function]
    tested = (
        f"the penalty's policy gradient. For a softmax policy pi over a small vocabulary (3 to 8 tokens, "
        f"sequence length 1, every ratio pi_ref/pi <= 10), the exact policy gradient of E_pi[-penalty] "
        f"(the penalty held fixed, as a reward is), g = -sum_a pi(a) penalty(a) (e_a - pi), must equal "
        f"-kl_coef * grad {kl} with respect to the logits. {_HIDDEN_NOTE}"
    )

    def check(submission: Submission, context: CheckContext) -> CheckOutcome:
        def prop(sub: Submission, hidden: S.HiddenCase) -> None:
            case = hidden.case
            got = _hidden_penalties(sub, function, hidden)
            g = _policy_gradient(case.pi, got)
            target = [-case.kl_coef * x for x in _kl_gradient(function, case)]
            err = _norm([a - b for a, b in zip(g, target, strict=True)])
            scale = _norm(target)
            if err <= 1e-12 + 1e-6 * case.kl_coef + 1e-3 * scale:
                return
            ng = _norm(g)
            cosine = (
                math.fsum(a * b for a, b in zip(g, target, strict=True)) / (ng * scale)
                if ng > 0 and scale > 0
                else 0.0
            )
            details = [
                f"penalties per token: {fmt(got)}",
                f"cosine(g, target) = {cosine:.3f}, relative error |g - target| / |target| = "
                f"{err / scale if scale > 0 else math.inf:.3g}",
            ]
            size = ng / scale if scale > 0 else math.inf
            if ng == 0:
                details.append("your penalty gives no gradient at all: it does not regularise")
            elif cosine < -0.5:
                details.append("your penalty pushes the policy AWAY from the reference: it anti-regularises")
            elif cosine < 0.5:
                details.append("your penalty's gradient is nearly unrelated to the KL's gradient")
            elif cosine > 0.999:
                details.append(
                    f"the direction is right but the size is {size:.3g} times the target's: look at the scale "
                    "(the coefficient, a mean or a sum, a constant factor)"
                )
            else:
                details.append(
                    f"the gradient leans the right way (cosine {cosine:.3f}) but its shape differs: the "
                    "per-token term weighs the tokens differently from the KL's gradient, which no scale or "
                    "offset fixes"
                )
            raise Falsified(
                f"the policy gradient g of E_pi[-penalty] is not -kl_coef * grad {kl}",
                expected=f"target = {fmt(target)}",
                got=f"g      = {fmt(g)}",
                details=details,
            )

        failure = run_property(
            context,
            # At least 3 tokens: with 2 every gradient has a single free direction, so a cosine of +-1 would say
            # nothing about the shape and a counterexample could not show it.
            S.hidden(S.distributions(min_vocab=3)),
            partial(prop, submission),
            max_examples=max_examples("direction", context),
            examples=S.DIRECTION_EXAMPLES,
        )
        if failure is not None and not isinstance(failure.error, CallFailed):
            # Show the failure on a case that teaches (four distinct tokens) when the submission fails one too.
            failure = run_cases(S.TEACHING_DIRECTION_CASES, partial(prop, submission)) or failure
        return KLCheck(function, tested).outcome(submission, failure, prop, _distribution_text)

    return check


def expected_value(function: str) -> CheckFunction:
    tested = (
        f"E_pi[penalty] of {function}, computed exactly by enumerating a small vocabulary (sequence length "
        f"1, ratios <= 10), equals kl_coef * KL(pi || pi_ref). {_HIDDEN_NOTE}"
    )

    def check(submission: Submission, context: CheckContext) -> CheckOutcome:
        def prop(sub: Submission, hidden: S.HiddenCase) -> None:
            case = hidden.case
            got, expectation = _expected_penalty(sub, function, hidden)
            kl = math.fsum(p * (a - b) for p, a, b in zip(case.pi, case.log_pi, case.log_ref, strict=True))
            want = case.kl_coef * kl
            atol = 1e-6 * case.kl_coef + _expectation_rounding(function, case)
            if not close(expectation, want, rtol=1e-4, atol=atol):
                raise Falsified(
                    "E_pi[penalty] = sum_a pi(a) * penalty(a) is not kl_coef * KL(pi || pi_ref)",
                    expected=fmt(want),
                    got=fmt(expectation),
                    details=[f"penalties: {fmt(got)}"],
                )

        failure = run_property(
            context,
            S.hidden(S.distributions()),
            partial(prop, submission),
            max_examples=max_examples("expected_value", context),
        )
        return KLCheck(function, tested).outcome(submission, failure, prop, _distribution_text)

    return check
