"""What every property check shares: calling the submission, running a hypothesis property with a bounded,
deterministic search, and turning the shrunk failure into feedback a student can act on. Comparing and showing
numbers (``finite``, ``close``, ``fmt``, ``fmt_args``) is in :mod:`grader.checks.numbers`, re-exported here."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from hypothesis import HealthCheck, Phase, Verbosity, given, seed, settings
from hypothesis import strategies as st
from hypothesis.errors import Flaky

from grader.checks.misconceptions import Diagnosis, Misconception
from grader.checks.numbers import close, finite, fmt, fmt_args  # noqa: F401 (the checks import them from here)
from grader.contract import (
    BACKWARD,
    FORWARD,
    SHAPING,
    CallOutcome,
    CheckContext,
    CheckOutcome,
    Submission,
)

T = TypeVar("T")

#: After the first failure, at most this many more runs of the property are spent shrinking it (a count, not a
#: time, so that the verdict and the counterexample stay deterministic).
SHRINK_BUDGET = 250

#: Statuses after which calling again is pointless (the sandbox answers the same failure for the rest of a check).
_FATAL = frozenset({"timeout", "crashed", "missing"})


# ---------------------------------------------------------------------------------------------------------------
# Calling the submission
# ---------------------------------------------------------------------------------------------------------------


class CallFailed(Exception):
    """A call of the submission did not return valid output."""

    def __init__(self, function: str, outcome: CallOutcome, submission: Submission | None = None) -> None:
        super().__init__(f"{function}: {outcome.status}: {outcome.message}")
        self.function = function
        self.outcome = outcome
        #: who was called (to tell a failure on this input from a failure on every input); None: unknown
        self.submission = submission

    @property
    def fatal(self) -> bool:
        return self.outcome.status in _FATAL or self.not_implemented

    @property
    def not_implemented(self) -> bool:
        return self.outcome.not_implemented

    def describe(self) -> str:
        return self.outcome.describe(self.function)


def call(submission: Submission, function: str, *args: Any, **kwargs: Any) -> list[float]:
    """Call the submission; return its values or raise :class:`CallFailed`."""
    outcome = submission.call(function, *args, **kwargs)
    if not outcome.ok or outcome.value is None:
        raise CallFailed(function, outcome, submission)
    return list(outcome.value)


#: Ordinary inputs of each student function: nothing empty, extreme or unusual, what any working implementation
#: handles. A function that fails on all of them as it failed on a check's input fails on every input.
_LOGPROB_INPUTS = (
    ([[-1.2, -0.4, -2.0]], [[-0.9, -0.6, -1.7]], 0.1),
    ([[-0.5, -1.5], [-0.8]], [[-0.7, -1.1], [-1.0]], 0.2),
)
ORDINARY_INPUTS: dict[str, tuple[tuple[Any, ...], ...]] = {
    FORWARD: _LOGPROB_INPUTS,
    BACKWARD: _LOGPROB_INPUTS,
    SHAPING: (
        ([0.8], ["The acting was strong and the story kept me interested until the end."], None),
        (
            [0.3, 0.6],
            ["A warm, funny film.", "I liked the music but not the plot."],
            ["Prompt one", "Prompt two"],
        ),
    ),
}


def fails_everywhere(err: CallFailed) -> str | None:
    """If the call behind ``err`` raised (or returned something unusable) and the same function fails the same
    way on every ordinary input too, a sentence saying so: the shrunk input is then not the problem (hypothesis
    shrinks towards empty inputs, which would otherwise be blamed). None otherwise."""
    ordinary = ORDINARY_INPUTS.get(err.function, ())
    if err.submission is None or not ordinary or err.outcome.status not in ("error", "invalid"):
        return None
    outcomes = [err.submission.call(err.function, *args) for args in ordinary]
    if any(o.status != err.outcome.status for o in outcomes):
        return None
    message = (outcomes[0].message or "").strip().splitlines()
    what = message[0] if message else ""
    if err.outcome.status == "error":
        did = f"raised {what} on ordinary inputs too"
    else:
        did = "returned something unusable on ordinary inputs too" + (f" ({what})" if what else "")
    example = f"{err.function}({', '.join(fmt(a) for a in ordinary[0])})"
    return (
        f"Fails on every input: {err.function} {did}, such as {example}; the input above is only the smallest one "
        "the search reached. Fix this first: run the function yourself on a small example."
    )


def call_outcome(submission: Submission, function: str, *args: Any, **kwargs: Any) -> CallOutcome:
    """Like :func:`call` but returns the whole outcome (for ``inputs_mutated``)."""
    outcome = submission.call(function, *args, **kwargs)
    if not outcome.ok or outcome.value is None:
        raise CallFailed(function, outcome, submission)
    return outcome


class LocalSubmission:
    """The grader's own trusted code (the catalogue's wrong implementations) behind the ``Submission`` interface,
    called in-process: used to test whether a catalogued mistake reproduces a failure. Never for student code."""

    def __init__(self, functions: dict[str, Callable[..., Any]]) -> None:
        self.functions = functions

    def call(self, function: str, *args: Any, **kwargs: Any) -> CallOutcome:
        fn = self.functions.get(function)
        if fn is None:
            return CallOutcome("missing", message=function)
        args, kwargs = copy.deepcopy((args, kwargs))
        try:
            return CallOutcome("ok", value=[float(v) for v in fn(*args, **kwargs)], inputs_mutated=False)
        except Exception as exc:  # noqa: BLE001 - a wrong implementation may fail in any way
            return CallOutcome("error", message=f"{type(exc).__name__}: {exc}")


def reproduces(
    function: str,
    implementation: Callable[..., Any] | None,
    prop: Callable[[Submission, Any], None],
    case: Any,
) -> bool:
    """Whether ``implementation`` of ``function`` also fails ``prop`` on ``case``."""
    if implementation is None:
        return False
    try:
        prop(LocalSubmission({function: implementation}), case)
    except (Falsified, CallFailed, OverflowError):
        return True
    return False


class Falsified(Exception):
    """Raised by a property when the submission's output breaks it."""

    def __init__(
        self,
        problem: str,
        *,
        expected: Any = None,
        got: Any = None,
        details: Sequence[str] = (),
        misconception: str | None = None,
    ) -> None:
        super().__init__(problem)
        self.problem = problem
        self.expected = expected
        self.got = got
        self.details = list(details)
        self.misconception = misconception


# ---------------------------------------------------------------------------------------------------------------
# Numbers
# ---------------------------------------------------------------------------------------------------------------


def overflowed(exc: OverflowError) -> Falsified:
    """A property's own arithmetic overflowed on the submission's numbers (any finite float may come back, up to
    1.8e308, and e.g. ``math.fsum`` of two of them raises): the submission's failure, never the grader's."""
    return Falsified(
        "your function returned numbers so large that the check's arithmetic on them overflowed "
        f"({type(exc).__name__}: {exc}); every value must be a moderate finite number, far from the largest "
        "float (about 1.8e308)"
    )


# ---------------------------------------------------------------------------------------------------------------
# Running a property
# ---------------------------------------------------------------------------------------------------------------


class _Stop(BaseException):
    """Ends the hypothesis run at once (BaseException: hypothesis does not treat it as a test failure)."""


@dataclass
class Failure(Generic[T]):
    case: T
    error: Exception  # Falsified or CallFailed
    flaky: bool = False
    explicit_only: bool = False


@dataclass
class _Recorder(Generic[T]):
    failures: list[Failure[T]] = field(default_factory=list)
    runs_since_first_failure: int = 0


def examples_for(share: float, context: CheckContext) -> int:
    """This property's share of ``context.max_examples`` (at least one): cheap checks run fewer examples, so
    the whole grade stays within a few seconds through the sandbox."""
    return max(1, round(share * context.max_examples))


def _guarded(prop: Callable[[T], None], case: T) -> None:
    try:
        prop(case)
    except OverflowError as exc:
        raise overflowed(exc) from None


def run_property(
    context: CheckContext,
    strategy: st.SearchStrategy[T],
    prop: Callable[[T], None],
    *,
    examples: Sequence[T] = (),
    max_examples: int | None = None,
) -> Failure[T] | None:
    """Run ``prop`` on hypothesis-generated cases (seeded by ``context.seed``) and, if none fails, on the
    hand-picked ``examples``; return the smallest failure found, or None if the property held.

    ``prop`` raises :class:`Falsified` (or :class:`CallFailed`, via :func:`call`) to report a failure. A call
    that timed out or crashed, a missing function or a NotImplementedError stops the search at once (there is
    nothing to shrink); other failures are shrunk, for at most ``SHRINK_BUDGET`` further runs.
    """
    rec: _Recorder[T] = _Recorder()

    def wrapped(case: T) -> None:
        if rec.failures:
            rec.runs_since_first_failure += 1
            if rec.runs_since_first_failure > SHRINK_BUDGET:
                raise _Stop
        try:
            _guarded(prop, case)
        except CallFailed as exc:
            rec.failures.append(Failure(case, exc))
            if exc.fatal:
                raise _Stop from None
            raise
        except Falsified as exc:
            rec.failures.append(Failure(case, exc))
            raise

    n = max(1, max_examples if max_examples is not None else context.max_examples)
    test = given(strategy)(wrapped)
    test = settings(
        max_examples=n,
        database=None,
        deadline=None,
        derandomize=False,
        report_multiple_bugs=False,
        suppress_health_check=list(HealthCheck),
        phases=(Phase.generate, Phase.shrink),
        verbosity=Verbosity.quiet,
        print_blob=False,
    )(test)
    test = seed(context.seed)(test)
    try:
        test()
    except _Stop:
        return rec.failures[-1]
    except Flaky:
        last = rec.failures[-1] if rec.failures else None
        if last is None:
            raise
        return Failure(last.case, last.error, flaky=True)
    except (Falsified, CallFailed) as exc:
        for failure in reversed(rec.failures):
            if failure.error is exc:
                return failure
        return Failure(rec.failures[-1].case, exc) if rec.failures else None
    for case in examples:  # hand-picked cases, tried only if the search found nothing (they cannot be shrunk)
        try:
            _guarded(prop, case)
        except (Falsified, CallFailed) as exc:
            return Failure(case, exc, explicit_only=True)
    return None


def run_cases(cases: Sequence[T], prop: Callable[[T], None]) -> Failure[T] | None:
    """Run ``prop`` on each of the fixed ``cases`` in order; the first failure, or None if the property held."""
    for case in cases:
        try:
            _guarded(prop, case)
        except (Falsified, CallFailed) as exc:
            return Failure(case, exc, explicit_only=True)
    return None


# ---------------------------------------------------------------------------------------------------------------
# Feedback
# ---------------------------------------------------------------------------------------------------------------


def passed(tested: str, tags: Sequence[str] = ()) -> CheckOutcome:
    return CheckOutcome(fraction=1.0, feedback=f"Passed: {tested}", tags=list(tags))


def failed(
    *,
    tested: str,
    function: str,
    failure: Failure[Any],
    counterexample: str,
    diagnosis: Diagnosis | None = None,
    extra: Sequence[str] = (),
    tags: Sequence[str] = (),
) -> CheckOutcome:
    """Feedback for a failed property: what was tested, the problem, the smallest input, expected vs got, and the
    likely misconception, explained as far as the feedback level in force allows (:mod:`grader.checks.feedback`: hint,
    explain or solution; the runner sets it around each check). Everything before the misconception is the same
    at every level, so ``problem``, ``details`` and ``extra`` must not state the solution."""
    err = failure.error
    lines = [f"Tested: {tested}"]  # one line per paragraph: terminals and Gradescope wrap it themselves
    everywhere = None
    if isinstance(err, CallFailed):
        lines.append(err.describe())
        if err.not_implemented:
            return CheckOutcome(fraction=0.0, feedback="\n".join(lines), tags=[*tags, "not-implemented"])
        if not failure.flaky and not err.fatal:
            everywhere = fails_everywhere(err)
        lines.append(
            "Smallest input found that triggers it:"
            if err.outcome.status in ("error", "invalid")
            else "Input that triggered it:"
        )
        lines.append(counterexample)
    else:
        assert isinstance(err, Falsified)
        lines.append(f"Problem: {err.problem}")
        # A fixed case (a hand-picked or teaching example) was not shrunk: do not call it the smallest.
        lines.append("A failing input:" if failure.explicit_only else "Smallest failing input found:")
        lines.append(counterexample)
        if err.expected is not None:
            lines.append(
                f"  expected: {err.expected if isinstance(err.expected, str) else fmt(err.expected)}"
            )
        if err.got is not None:
            lines.append(f"  got:      {err.got if isinstance(err.got, str) else fmt(err.got)}")
        lines.extend(f"  {d}" for d in err.details)
    if failure.flaky:
        lines.append(
            "Note: re-running this input did not reproduce the failure: your function gives "
            "different outputs for the same inputs (it is not deterministic)."
        )
    lines.extend(extra)
    misconception_id = None
    if everywhere is not None:  # its own diagnosis: no misconception explains a function that never works
        lines.append(everywhere)
        tags = [*tags, "fails-everywhere"]
    elif diagnosis is not None:
        misconception_id = diagnosis.id
        lines.append(diagnosis.render(function))
    return CheckOutcome(
        fraction=0.0,
        feedback="\n".join(lines),
        misconception=misconception_id,
        counterexample=counterexample,
        tags=list(tags),
    )


def diagnosis_of(misconception: Misconception | None, detail: str = "") -> Diagnosis | None:
    return Diagnosis(misconception, detail) if misconception is not None else None
