"""The KL checks of the contract's secondary properties: the output's shape and the inputs left alone
(``contract``), zero when pi == pi_ref, linear in ``kl_coef``, a mean (not a sum) over a completion's tokens,
each completion's penalty independent of the rest of the batch, finite on extreme inputs. The rubric counts
them only when the function's defining checks pass.
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
    close,
    finite,
    fmt,
    run_property,
)
from grader.checks.kl_base import (
    KLCheck,
    batch_text,
    max_examples,
    require_finite,
    require_length,
)
from grader.contract import CheckContext, CheckFunction, CheckOutcome, Submission


def contract(function: str) -> CheckFunction:
    tested = (
        f"{function} returns one finite number per completion for ragged batches (rows of different "
        "lengths), 0.0 for an empty row, an empty list for an empty batch, and leaves its inputs unchanged."
    )

    def check(submission: Submission, context: CheckContext) -> CheckOutcome:
        helper = KLCheck(function, tested)
        unchecked = []

        def prop(sub: Submission, batch: S.LogProbBatch) -> None:
            outcome = call_outcome(sub, function, *batch.args)
            got = list(outcome.value or [])
            require_length(got, batch.policy)
            empty = [i for i, row in enumerate(batch.policy) if not row]
            if not all(math.isfinite(got[i]) and abs(got[i]) <= 1e-12 for i in empty):
                raise Falsified(
                    "an empty row (a completion with no tokens) must get the penalty 0.0",
                    expected=[0.0 if not row else "..." for row in batch.policy],
                    got=got,
                    misconception="empty_row",
                )
            require_finite(got)
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
            max_examples=max_examples("contract", context),
            examples=examples,
        )
        result = helper.outcome(submission, failure, prop, batch_text)
        if unchecked and result.fraction == 1.0:
            result.tags.append("mutation-unchecked")
        return result

    return check


def zero_when_identical(function: str) -> CheckFunction:
    tested = f"{function} returns 0 for every completion whose log-probs under pi and pi_ref are identical."

    def check(submission: Submission, context: CheckContext) -> CheckOutcome:
        def prop(sub: Submission, batch: S.LogProbBatch) -> None:
            got = call(sub, function, *batch.args)
            require_length(got, batch.policy)
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
            max_examples=max_examples("zero_when_identical", context),
        )
        return KLCheck(function, tested).outcome(submission, failure, prop, batch_text)

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
            require_length(at_c, b.policy)
            require_length(at_1, b.policy)
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
                require_length(at_0, b.policy)
                if not all(close(v, 0.0, atol=1e-12) for v in at_0):
                    raise Falsified(
                        "with kl_coef = 0 the penalty must vanish", expected=[0.0] * len(at_0), got=at_0
                    )

        failure = run_property(
            context,
            S.coef_cases(),
            partial(prop, submission),
            max_examples=max_examples("linear_in_coef", context),
        )
        return KLCheck(function, tested).outcome(
            submission,
            failure,
            prop,
            lambda case: (
                batch_text(case.batch)
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
            require_length(got, b.policy)
            require_finite(got)
            flat_pi = [[x] for row in b.policy for x in row]
            flat_ref = [[x] for row in b.ref for x in row]
            single = call(sub, function, flat_pi, flat_ref, b.kl_coef)
            require_length(single, flat_pi)
            require_finite(single)
            atol = 1e-12 + 1e-6 * max((abs(v) for v in single), default=0.0)
            repeated = call(sub, function, _repeat_tokens(b.policy, k), _repeat_tokens(b.ref, k), b.kl_coef)
            require_length(repeated, b.policy)
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
            max_examples=max_examples("mean_over_tokens", context),
        )
        return KLCheck(function, tested).outcome(
            submission,
            failure,
            prop,
            lambda case: (
                batch_text(case.batch) + f"\n  (each token repeated {case.times} times,"
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
            require_length(got, b.policy)
            require_finite(got)
            atol = 1e-12 + 1e-6 * max((abs(v) for v in got), default=0.0)
            for name, idx in (("reordered sub-batch", case.subset), ("batch of one", [case.single])):
                part = call(sub, function, [b.policy[i] for i in idx], [b.ref[i] for i in idx], b.kl_coef)
                require_length(part, [b.policy[i] for i in idx])
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
            max_examples=max_examples("batch_independent", context),
        )
        return KLCheck(function, tested).outcome(
            submission, failure, prop, lambda case: batch_text(case.batch)
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
            require_length(got, batch.policy)
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
            max_examples=max_examples("finite_extreme", context),
        )
        return KLCheck(function, tested).outcome(submission, failure, prop, batch_text, classify)

    return check
