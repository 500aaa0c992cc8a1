"""What the reward-shaping checks share: the function they call, the examples each runs, the output's shape, and
the feedback that names a misconception (non-determinism first, then what the check recognised)."""

from __future__ import annotations

from collections.abc import Callable
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
)
from grader.checks.misconceptions import Diagnosis
from grader.contract import SHAPING, CheckContext, CheckOutcome, Submission

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
