"""The hidden checks ``<kl>.in_training``: the penalties' values on the batches training itself gave them.

Every other KL check calls the submission with batches the grader made, and code can tell such a call from
training's by something the batch shows (its shape, its number format) or the call does not (the process it runs
in): red-team submissions that zeroed the penalty "in training" kept every property point. The training lanes keep
a few of each run's calls as they were made (:class:`grader.training.lane._Proxy`: the first two and others
drawn at random, arguments and answer, recorded on the grader's side of the sandbox), and this check holds each
answer to the contract, row by row, as the value checks do (:mod:`.terms`). A penalty that is wrong on training's own batches
fails it, and the rubric gates every point of that function on it, in the grades that train (with
``--no-training`` it is not graded and closes no gate).

A call that the machine cut short (a timeout, a worker that died) is no evidence and is skipped; a call that
raised or returned no numbers counts: the same function answered the grader's calls.
"""

from __future__ import annotations

import math
from typing import Any

from grader.checks.harness import fmt
from grader.checks.key.terms import beyond_clip_bound, contract_value
from grader.checks.kl_value import value_formula
from grader.checks.training_base import NOT_EVIDENCE, gated_by_the_code
from grader.contract import BACKWARD, FORWARD, CheckContext, CheckFunction, CheckOutcome, Submission

#: The runs whose calls each penalty is held to (the shaped run trains with the forward penalty too).
RUNS_OF = {FORWARD: ("forward", "shaped"), BACKWARD: ("backward",)}


def _problem(function: str, call: dict[str, Any]) -> str | None:
    """What is wrong with one recorded call's answer (None: it is the contract's)."""
    if call.get("status") != "ok":
        return f"it did not return penalties: {call.get('message') or call.get('status')}"
    try:
        policy, ref, kl_coef = call["args"][0], call["args"][1], float(call["args"][2])
        value = [float(v) for v in call["value"]]
    except (KeyError, IndexError, TypeError, ValueError):
        return None  # a record this grader cannot read: no evidence either way
    if len(value) != len(policy):
        return f"it returned {len(value)} penalties for {len(policy)} completions"
    _, formula = value_formula(function)
    for i, (row_pi, row_ref, got) in enumerate(zip(policy, ref, value, strict=True)):
        fixed = contract_value(function, row_pi, row_ref, kl_coef)
        if fixed is not None:
            want, tol = fixed
            if not (math.isfinite(got) and abs(got - want) <= tol):
                return (
                    f"completion {i} ({len(row_pi)} tokens) got the penalty {fmt(got, 8)}, where the contract "
                    f"fixes {formula} = {fmt(want, 8)} (kl_coef {fmt(kl_coef)})"
                )
            continue
        broken = beyond_clip_bound(got, row_pi, row_ref, kl_coef)
        if broken is not None:
            bound, _ = broken
            return (
                f"completion {i} ({len(row_pi)} tokens, a ratio pi_ref/pi above 10) got the penalty {fmt(got, 8)}, "
                f"beyond what a clip allows ({'at most' if kl_coef >= 0 else 'at least'} {fmt(bound, 8)})"
            )
    return None


def in_training(function: str) -> CheckFunction:
    def check(submission: Submission, context: CheckContext) -> CheckOutcome:
        from grader.checks.training import run_set

        runs = run_set(submission, context)
        for name in RUNS_OF[function]:
            problem = gated_by_the_code(submission, runs.records.get(name), function)
            if problem is not None:
                return CheckOutcome(
                    0.0,
                    f"The {name} run was not made: your {function} failed the one call training starts with, "
                    f"on an ordinary batch ({problem}), so nothing it would do in training can be held to the "
                    "contract; every point of this function counts only when it can.",
                    tags=["training:values_differ"],
                    measurements={"run": name},
                )
        calls = [
            (name, call)
            for name in RUNS_OF[function]
            if (record := runs.records.get(name)) is not None
            for call in record.calls or ()
            if call.get("function") == function and call.get("status") not in NOT_EVIDENCE
        ]
        if not calls:
            return CheckOutcome(
                1.0,
                f"Not run: no call of your {function} was recorded in training (its runs were not made, or "
                "stopped before it was called): nothing to hold against the contract here; the training checks "
                "say why.",
                measurements={"calls": 0},
            )
        for name, call in calls:
            problem = _problem(function, call)
            if problem is not None:
                return CheckOutcome(
                    0.0,
                    f"In the {name} run's call {call.get('index', '?')} (a batch training gave your {function}: "
                    f"{len(call['args'][0])} completions), {problem}. Your function answered the grader's own "
                    "batches as the contract says, so it treats training's batches differently (by their shape, "
                    "their number format, or where it runs): every point of this function counts only when it "
                    "computes the same contract on every batch.",
                    tags=["training:values_differ"],
                    measurements={"run": name, "index": call.get("index")},
                )
        return CheckOutcome(
            1.0,
            # no count: which calls are kept is drawn by each lane, and the same grade must read the same
            f"The calls of your {function} recorded in training (runs {', '.join(sorted({n for n, _ in calls}))}) "
            "returned the contract's penalties.",
        )

    check.__name__ = f"check_{function}_in_training"
    return check
