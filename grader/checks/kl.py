"""Property checks of the two KL penalties (``kl_penalty_forward``, ``kl_penalty_backward``).

Every check is built for one function by a factory below and registered as ``<prefix>.<property>`` in
:data:`grader.checks.REGISTRY`. The mathematics is in docs/design.md ("The student contract"): per completion the
penalty is ``kl_coef`` times the mean over its tokens of a per-token term, and what defines the right term is the
policy gradient it induces when subtracted from a reward.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from grader.checks import feedback, misconceptions, recorded
from grader.checks import strategies as S
from grader.checks.harness import (
    CallFailed,
    Failure,
    Falsified,
    call,
    call_outcome,
    close,
    examples_for,
    failed,
    finite,
    fmt,
    fmt_args,
    passed,
    reproduces,
    run_cases,
    run_property,
)
from grader.checks.misconceptions import Diagnosis
from grader.contract import BACKWARD, FORWARD, CheckContext, CheckFunction, CheckOutcome, Submission

PREFIX = {FORWARD: "kl_forward", BACKWARD: "kl_backward"}
KL_NAME = {FORWARD: "KL(pi || pi_ref)", BACKWARD: "KL(pi_ref || pi)"}

#: Misconceptions a check recognises from the failure itself, but which may be a symptom of a deeper mistake that
#: the probe diagnosis names better (exp(+1000) overflows in several wrong formulas too).
_SYMPTOMS = frozenset({"overflow"})


# ---------------------------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------------------------


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


def _examples(name: str, context: CheckContext) -> int:
    return examples_for(EXAMPLE_SHARE[name], context)


def _require_length(got: Sequence[float], rows: Sequence[Sequence[float]]) -> None:
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


def _require_finite(got: Sequence[float]) -> None:
    if not finite(got):
        raise Falsified(
            "returned a non-finite value (nan or inf); every penalty must be a finite number", got=list(got)
        )


def _batch_text(batch: S.LogProbBatch) -> str:
    return fmt_args(log_probs_policy=batch.policy, log_probs_ref=batch.ref, kl_coef=batch.kl_coef)


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
            _batch_text(batch),
        ]
    )


#: How the enumerating checks call the function (see grader.checks.strategies.hidden).
_HIDDEN_NOTE = "The vocabulary's one-token completions are called inside a batch of unrelated completions, at random rows."


def _hidden_penalties(sub: Submission, function: str, hidden: S.HiddenCase) -> list[float]:
    """Call with the whole batch; return the penalties of the case's one-token rows, in vocabulary order."""
    got = call(sub, function, *hidden.batch.args)
    _require_length(got, hidden.batch.policy)
    mine = [got[i] for i in hidden.rows]
    _require_finite(mine)
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


def _expectation_rounding(function: str, case: S.DistributionCase) -> float:
    """The tolerance an exact expectation under pi needs for float32 penalties (see VALUE_RTOL), and for the
    backward penalty a lower clip of the log-ratio."""
    pairs = zip(case.pi, case.log_pi, case.log_ref, strict=True)
    rounding = (
        VALUE_RTOL * case.kl_coef * math.fsum(p * rounding_scale(function, lp, lr) for p, lp, lr in pairs)
    )
    return rounding + (LOWER_CLIP_ALLOWANCE * case.kl_coef if function == BACKWARD else 0.0)


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


class _KLCheck:
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


# ---------------------------------------------------------------------------------------------------------------
# The checks
# ---------------------------------------------------------------------------------------------------------------


def contract(function: str) -> CheckFunction:
    tested = (
        f"{function} returns one finite number per completion for ragged batches (rows of different "
        "lengths), 0.0 for an empty row, an empty list for an empty batch, and leaves its inputs unchanged."
    )

    def check(submission: Submission, context: CheckContext) -> CheckOutcome:
        helper = _KLCheck(function, tested)
        unchecked = []

        def prop(sub: Submission, batch: S.LogProbBatch) -> None:
            outcome = call_outcome(sub, function, *batch.args)
            got = list(outcome.value or [])
            _require_length(got, batch.policy)
            empty = [i for i, row in enumerate(batch.policy) if not row]
            if not all(math.isfinite(got[i]) and abs(got[i]) <= 1e-12 for i in empty):
                raise Falsified(
                    "an empty row (a completion with no tokens) must get the penalty 0.0",
                    expected=[0.0 if not row else "..." for row in batch.policy],
                    got=got,
                    misconception="empty_row",
                )
            _require_finite(got)
            if outcome.inputs_mutated:
                raise Falsified(
                    f"{function} changed the lists it was given (inputs must not be modified)",
                    misconception="mutates_inputs",
                )
            if outcome.inputs_mutated is None:
                unchecked.append(True)

        examples = [
            S.LogProbBatch([], [], 0.1),
            S.LogProbBatch([[], [-1.0, -2.0], []], [[], [-1.5, -0.5], []], 0.1),
        ]
        failure = run_property(
            context,
            S.logprob_batches(),
            partial(prop, submission),
            max_examples=_examples("contract", context),
            examples=examples,
        )
        result = helper.outcome(submission, failure, prop, _batch_text)
        if unchecked and result.fraction == 1.0:
            result.tags.append("mutation-unchecked")
        return result

    return check


def zero_when_identical(function: str) -> CheckFunction:
    tested = f"{function} returns 0 for every completion whose log-probs under pi and pi_ref are identical."

    def check(submission: Submission, context: CheckContext) -> CheckOutcome:
        def prop(sub: Submission, batch: S.LogProbBatch) -> None:
            got = call(sub, function, *batch.args)
            _require_length(got, batch.policy)
            if not all(close(v, 0.0, atol=1e-9) for v in got):
                raise Falsified(
                    "pi == pi_ref token by token, so there is nothing to penalise: every penalty must be 0",
                    expected=[0.0] * len(got),
                    got=got,
                )

        failure = run_property(
            context,
            S.logprob_batches(identical=True, low=-50.0),
            partial(prop, submission),
            max_examples=_examples("zero_when_identical", context),
        )
        return _KLCheck(function, tested).outcome(submission, failure, prop, _batch_text)

    return check


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
            max_examples=_examples("nonnegative_in_expectation", context),
        )
        return _KLCheck(function, tested).outcome(submission, failure, prop, _distribution_text)

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
            max_examples=_examples("direction", context),
            examples=S.DIRECTION_EXAMPLES,
        )
        if failure is not None and not isinstance(failure.error, CallFailed):
            # Show the failure on a case that teaches (four distinct tokens) when the submission fails one too.
            failure = run_cases(S.TEACHING_DIRECTION_CASES, partial(prop, submission)) or failure
        return _KLCheck(function, tested).outcome(submission, failure, prop, _distribution_text)

    return check


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


def value_formula(function: str) -> tuple[str, str]:
    """What the value checks say they test (their ``tested`` text's core) and how they name the fixed value."""
    # Only the "solution" feedback level names the term (grader.checks.feedback): the wording comes from there.
    term = feedback.phrase("value_term", function)
    where = "" if function == FORWARD else ", in every row whose ratios pi_ref/pi are all <= 10"
    return (
        f"each completion's penalty must be kl_coef * the mean over its tokens of {term}{where}",
        f"kl_coef * mean over its tokens of ({term})",
    )


def clip_property(sub: Submission, case: S.ClipCase) -> None:
    """Backward: where pi_ref/pi > 10 the contract lets the ratio be clipped (at any ratio >= 10), never flipped:
    the penalty must not rise as the ratio rises, nor exceed its value at ratio 10."""
    got = call(sub, BACKWARD, *case.batch.args)
    _require_length(got, case.batch.policy)
    mine = [got[i] for i in case.rows]
    _require_finite(mine)
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
            _require_length(got, case.batch.policy)
            for i, (row_pi, row_ref) in enumerate(zip(case.batch.policy, case.batch.ref, strict=True)):
                row_verdict(i, got[i], row_pi, row_ref, case.expected[i], formula, got)

        all_cases: list[Any] = list(cases)
        if function == BACKWARD:
            all_cases += [S.clip_case(-900.0 - 25.0 * k, (0.1, 1.0, 3.0)[k], seed=k) for k in range(3)]
        failure = run_cases(all_cases, partial(prop, submission))
        return _KLCheck(function, tested).outcome(submission, failure, prop, _case_text)

    return check


def _case_text(case: Any) -> str:
    return _batch_text(case.batch)


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
            max_examples=_examples("expected_value", context),
        )
        return _KLCheck(function, tested).outcome(submission, failure, prop, _distribution_text)

    return check


def linear_in_coef(function: str) -> CheckFunction:
    tested = (
        f"{function} is linear in kl_coef: penalty(kl_coef = c) == c * penalty(kl_coef = 1), and 0 for c = 0."
    )

    def check(submission: Submission, context: CheckContext) -> CheckOutcome:
        def prop(sub: Submission, case: S.CoefCase) -> None:
            b = case.batch
            at_c = call(sub, function, b.policy, b.ref, b.kl_coef)
            at_1 = call(sub, function, b.policy, b.ref, 1.0)
            _require_length(at_c, b.policy)
            _require_length(at_1, b.policy)
            want = [b.kl_coef * v for v in at_1]
            if not all(close(g, w, rtol=1e-5, atol=1e-12) for g, w in zip(at_c, want, strict=True)):
                raise Falsified(
                    f"penalty(kl_coef = {fmt(b.kl_coef)}) is not {fmt(b.kl_coef)} * penalty(kl_coef = 1)",
                    expected=want,
                    got=at_c,
                    details=[f"penalty(kl_coef = 1) = {fmt(at_1)}"],
                )
            if case.zero:
                at_0 = call(sub, function, b.policy, b.ref, 0.0)
                _require_length(at_0, b.policy)
                if not all(close(v, 0.0, atol=1e-12) for v in at_0):
                    raise Falsified(
                        "with kl_coef = 0 the penalty must vanish", expected=[0.0] * len(at_0), got=at_0
                    )

        failure = run_property(
            context,
            S.coef_cases(),
            partial(prop, submission),
            max_examples=_examples("linear_in_coef", context),
        )
        return _KLCheck(function, tested).outcome(
            submission,
            failure,
            prop,
            lambda case: (
                _batch_text(case.batch)
                + "\n  (also called with kl_coef = 1"
                + (" and kl_coef = 0)" if case.zero else ")")
            ),
        )

    return check


def _repeat_tokens(rows: list[list[float]], k: int) -> list[list[float]]:
    return [[x for x in row for _ in range(k)] for row in rows]


def mean_over_tokens(function: str) -> CheckFunction:
    tested = (
        f"{function} is kl_coef times a MEAN over each completion's tokens: repeating every token of a row k "
        "times leaves its penalty unchanged, and a row's penalty is the average of its tokens' "
        "single-token penalties."
    )

    def check(submission: Submission, context: CheckContext) -> CheckOutcome:
        def prop(sub: Submission, case: S.RepeatCase) -> None:
            b, k = case.batch, case.times
            got = call(sub, function, *b.args)
            _require_length(got, b.policy)
            _require_finite(got)
            flat_pi = [[x] for row in b.policy for x in row]
            flat_ref = [[x] for row in b.ref for x in row]
            single = call(sub, function, flat_pi, flat_ref, b.kl_coef)
            _require_length(single, flat_pi)
            _require_finite(single)
            atol = 1e-12 + 1e-6 * max((abs(v) for v in single), default=0.0)
            repeated = call(sub, function, _repeat_tokens(b.policy, k), _repeat_tokens(b.ref, k), b.kl_coef)
            _require_length(repeated, b.policy)
            if not all(close(r, g, rtol=1e-6, atol=atol) for r, g in zip(repeated, got, strict=True)):
                ratios = [fmt(r / g, 3) if g != 0 else "-" for r, g in zip(repeated, got, strict=True)]
                raise Falsified(
                    f"repeating every token {k} times changed the penalties (a mean would not change)",
                    expected=got,
                    got=repeated,
                    details=[
                        f"repeated rows: log_probs_policy = {fmt(_repeat_tokens(b.policy, k))}",
                        f"               log_probs_ref    = {fmt(_repeat_tokens(b.ref, k))}",
                        f"got / expected: {', '.join(ratios)}",
                    ],
                )
            means, start = [], 0
            for row in b.policy:
                means.append(math.fsum(single[start : start + len(row)]) / len(row))
                start += len(row)
            if not all(close(g, m, rtol=1e-6, atol=atol) for g, m in zip(got, means, strict=True)):
                raise Falsified(
                    "a row's penalty is not the mean of its tokens' single-token penalties",
                    expected=means,
                    got=got,
                    details=[f"single-token penalties: {fmt(single)}"],
                )

        failure = run_property(
            context,
            S.repeat_cases(),
            partial(prop, submission),
            max_examples=_examples("mean_over_tokens", context),
        )
        return _KLCheck(function, tested).outcome(
            submission,
            failure,
            prop,
            lambda case: (
                _batch_text(case.batch) + f"\n  (each token repeated {case.times} times,"
                " and each token alone as a one-token row)"
            ),
        )

    return check


def batch_independent(function: str) -> CheckFunction:
    tested = (
        f"{function} gives each completion a penalty that depends only on its own tokens: reordering the "
        "batch, or passing a sub-batch (down to a single completion), leaves each completion's penalty "
        "unchanged."
    )

    def check(submission: Submission, context: CheckContext) -> CheckOutcome:
        def prop(sub: Submission, case: S.SubsetCase) -> None:
            b = case.batch
            got = call(sub, function, *b.args)
            _require_length(got, b.policy)
            _require_finite(got)
            atol = 1e-12 + 1e-6 * max((abs(v) for v in got), default=0.0)
            for name, idx in (("reordered sub-batch", case.subset), ("batch of one", [case.single])):
                part = call(sub, function, [b.policy[i] for i in idx], [b.ref[i] for i in idx], b.kl_coef)
                _require_length(part, [b.policy[i] for i in idx])
                want = [got[i] for i in idx]
                if not all(close(s, w, rtol=1e-6, atol=atol) for s, w in zip(part, want, strict=True)):
                    raise Falsified(
                        f"the same completions got different penalties in a {name} (rows {idx} of the batch "
                        "above)",
                        expected=want,
                        got=part,
                        details=[
                            f"{name}: log_probs_policy = {fmt([b.policy[i] for i in idx])}",
                            f"{' ' * len(name)}  log_probs_ref    = {fmt([b.ref[i] for i in idx])}",
                        ],
                    )

        failure = run_property(
            context,
            S.batch_subsets(),
            partial(prop, submission),
            max_examples=_examples("batch_independent", context),
        )
        return _KLCheck(function, tested).outcome(
            submission, failure, prop, lambda case: _batch_text(case.batch)
        )

    return check


def finite_extreme(function: str) -> CheckFunction:
    tested = (
        f"{function} returns finite penalties on extreme inputs: log-probs down to -1000, 0 and -1000 "
        "mixed in both orders, and rows thousands of tokens long."
    )

    def check(submission: Submission, context: CheckContext) -> CheckOutcome:
        def prop(sub: Submission, batch: S.LogProbBatch) -> None:
            got = call(sub, function, *batch.args)
            _require_length(got, batch.policy)
            if not finite(got):
                raise Falsified(
                    "returned a non-finite value (nan or inf) on extreme log-probs",
                    got=got,
                    misconception="overflow",
                )

        def classify(err: CallFailed, batch: S.LogProbBatch) -> str | None:
            message = err.outcome.message
            if "Overflow" in message or "range error" in message or "inf" in message.lower():
                return "overflow"
            return None

        failure = run_property(
            context,
            S.extreme_logprob_batches(),
            partial(prop, submission),
            examples=S.EXTREME_EXAMPLES,
            max_examples=_examples("finite_extreme", context),
        )
        return _KLCheck(function, tested).outcome(submission, failure, prop, _batch_text, classify)

    return check


PROPERTIES: dict[str, Callable[[str], CheckFunction]] = {
    "contract": contract,
    "zero_when_identical": zero_when_identical,
    "nonnegative_in_expectation": nonnegative_in_expectation,
    "direction": direction,
    "value": value,
    "linear_in_coef": linear_in_coef,
    "mean_over_tokens": mean_over_tokens,
    "batch_independent": batch_independent,
    "finite_extreme": finite_extreme,
}


def checks() -> dict[str, CheckFunction]:
    """The KL checks by id, in report order."""
    out: dict[str, CheckFunction] = {}
    for function in (FORWARD, BACKWARD):
        for name, factory in PROPERTIES.items():
            out[f"{PREFIX[function]}.{name}"] = factory(function)
            if function == FORWARD and name == "direction":
                out["kl_forward.expected_value"] = expected_value(FORWARD)
    return out
