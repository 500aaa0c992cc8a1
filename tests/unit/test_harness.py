"""The property checks' scoring (grader/checks/harness.py), in process on made-up submissions and properties:
how a call fails and whether it is fatal, the search (seeded, shrunk within its budget, stopped at a fatal
failure, then the hand-picked examples), the fixed cases, and the verdict's feedback (passed: full points;
failed: 0, with what was tested, the problem, the input, expected and got, the diagnosis or "fails everywhere").

Every property check scores through these (kl_*.py and shaping*.py only choose properties and inputs); the real
checks' verdicts are in tests/quality. Written for the mutation score (tests/README.md, "Mutation score").
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, Phase, Verbosity
from hypothesis import strategies as st
from hypothesis.errors import Flaky

from grader.checks import harness, misconceptions
from grader.checks.harness import (
    CallFailed,
    Failure,
    Falsified,
    LocalSubmission,
    call,
    call_outcome,
    examples_for,
    failed,
    fails_everywhere,
    overflowed,
    passed,
    reproduces,
    run_cases,
    run_property,
)
from grader.checks.misconceptions import Diagnosis
from grader.contract import BACKWARD, FORWARD, SHAPING, CallOutcome, CheckContext, CheckOutcome

CONTEXT = CheckContext(seed=3, max_examples=20)


class Scripted:
    """A submission whose every call answers ``outcome`` (or ``by_args[args]``); records the calls."""

    def __init__(self, outcome: CallOutcome, by_args: dict | None = None) -> None:
        self.outcome = outcome
        self.by_args = by_args or {}
        self.calls: list[tuple] = []

    def call(self, function: str, *args, **kwargs) -> CallOutcome:
        self.calls.append((function, args, kwargs))
        return self.by_args.get(repr(args), self.outcome)


# --- calling the submission ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("outcome", "fatal"),
    [
        (CallOutcome("timeout", message="1 s"), True),
        (CallOutcome("crashed", message="killed"), True),
        (CallOutcome("missing", message="f"), True),
        (CallOutcome("error", message="NotImplementedError: write me"), True),
        (CallOutcome("error", message="ValueError: bad"), False),
        (CallOutcome("invalid", message="a string"), False),
        (CallOutcome("ok", value=None), False),
    ],
)
def test_which_failed_calls_stop_the_search(outcome: CallOutcome, fatal: bool) -> None:
    err = CallFailed(FORWARD, outcome)
    assert err.fatal is fatal
    assert err.not_implemented is outcome.message.startswith("NotImplementedError")
    assert str(err) == f"{FORWARD}: {outcome.status}: {outcome.message}"
    assert err.function == FORWARD and err.outcome is outcome and err.submission is None
    assert err.describe() == outcome.describe(FORWARD)


def test_call_returns_the_values_or_raises_with_the_submission() -> None:
    ok = Scripted(CallOutcome("ok", value=(1.0, 2.5)))
    assert call(ok, FORWARD, [[-1.0]], [[-2.0]], kl_coef=0.1) == [1.0, 2.5]
    assert ok.calls == [(FORWARD, ([[-1.0]], [[-2.0]]), {"kl_coef": 0.1})]
    for outcome in (CallOutcome("error", message="ValueError: x"), CallOutcome("ok", value=None)):
        bad = Scripted(outcome)
        with pytest.raises(CallFailed) as raised:
            call(bad, FORWARD, 1, k=2)
        assert raised.value.outcome is outcome and raised.value.submission is bad
        assert raised.value.function == FORWARD and bad.calls == [(FORWARD, (1,), {"k": 2})]
        with pytest.raises(CallFailed) as raised:
            call_outcome(bad, FORWARD, 1)
        assert raised.value.outcome is outcome and raised.value.submission is bad
        assert raised.value.function == FORWARD
    whole = CallOutcome("ok", value=[1.0], inputs_mutated=True)
    sub = Scripted(whole)
    assert call_outcome(sub, FORWARD, 1, k=2) is whole and sub.calls == [(FORWARD, (1,), {"k": 2})]


def test_a_local_submission_calls_the_graders_own_functions_on_copies() -> None:
    def mutating(rows: list, scale: list) -> list:
        rows.append(99)
        scale.append(1)
        return [len(rows), 2]

    def broken(rows: list) -> list:
        raise ZeroDivisionError("no rows")

    local = LocalSubmission({FORWARD: mutating, BACKWARD: broken})
    rows, scale = [1, 2], []
    assert local.call(FORWARD, rows, scale=scale) == CallOutcome("ok", value=[3.0, 2.0], inputs_mutated=False)
    assert rows == [1, 2] and scale == []  # its own copies
    assert isinstance(local.call(FORWARD, rows, scale=scale).value[0], float)
    assert local.call(BACKWARD, rows) == CallOutcome("error", message="ZeroDivisionError: no rows")
    assert local.call(SHAPING) == CallOutcome("missing", message=SHAPING)


def _fails_on_big(sub, case) -> None:
    if call(sub, FORWARD, case)[0] > 1:
        raise Falsified("too big")


def test_reproduces_asks_whether_the_implementation_fails_the_property_too() -> None:
    assert reproduces(FORWARD, lambda x: [x], _fails_on_big, 5)
    assert not reproduces(FORWARD, lambda x: [x], _fails_on_big, 0)
    assert not reproduces(FORWARD, None, _fails_on_big, 5)
    assert reproduces(FORWARD, lambda x: 1 / 0, _fails_on_big, 0)  # a CallFailed is a failure too

    def overflowing(sub, case) -> None:
        raise OverflowError("math range error")

    assert reproduces(FORWARD, lambda x: [x], overflowing, 0)

    def other(sub, case) -> None:
        raise KeyError("the grader's own bug")

    with pytest.raises(KeyError):
        reproduces(FORWARD, lambda x: [x], other, 0)


def test_an_overflow_in_the_checks_arithmetic_is_the_submissions_failure() -> None:
    err = overflowed(OverflowError("math range error"))
    assert err.problem == (
        "your function returned numbers so large that the check's arithmetic on them overflowed (OverflowError: "
        "math range error); every value must be a moderate finite number, far from the largest float (about "
        "1.8e308)"
    )
    assert str(err) == err.problem
    assert (err.expected, err.got, err.details, err.misconception) == (None, None, [], None)


def test_a_falsified_property_keeps_what_it_says() -> None:
    err = Falsified("p", expected=[1.0], got="x", details=("a", "b"), misconception="m")
    assert (str(err), err.problem, err.expected, err.got, err.details, err.misconception) == (
        "p",
        "p",
        [1.0],
        "x",
        ["a", "b"],
        "m",
    )


def test_each_property_gets_its_share_of_the_examples_but_at_least_one() -> None:
    assert examples_for(0.3, CheckContext(max_examples=40)) == 12
    assert examples_for(0.5, CheckContext(max_examples=5)) == 2  # rounded, half to even
    assert examples_for(0.7, CheckContext(max_examples=5)) == 4
    assert examples_for(0.01, CheckContext(max_examples=40)) == 1
    assert examples_for(0.0, CheckContext(max_examples=40)) == 1


# --- running a property ---------------------------------------------------------------------------------------


def test_a_property_that_holds_returns_none_after_its_examples() -> None:
    seen: list[int] = []
    assert run_property(CONTEXT, st.integers(0, 10**6), seen.append, max_examples=7) is None
    assert len(seen) == 7
    seen.clear()
    assert run_property(CheckContext(max_examples=4), st.integers(0, 10**6), seen.append) is None
    assert len(seen) == 4
    seen.clear()
    assert run_property(CONTEXT, st.integers(0, 10**6), seen.append, max_examples=0) is None
    assert len(seen) == 1  # at least one example


def test_the_search_is_seeded() -> None:
    runs = []
    for seed in (5, 5, 6):
        seen: list[int] = []
        run_property(CheckContext(seed=seed, max_examples=10), st.integers(0, 10**9), seen.append)
        runs.append(seen)
    assert runs[0] == runs[1] and runs[0] != runs[2]


def test_a_failure_is_shrunk_to_the_smallest_case() -> None:
    raised: list[Falsified] = []

    def prop(x: int) -> None:
        if x >= 1000:
            raised.append(Falsified("too big"))
            raise raised[-1]

    failure = run_property(CONTEXT, st.integers(0, 10**6), prop, max_examples=200)
    assert failure is not None and failure.case == 1000
    assert failure.error is raised[-1]  # the failure hypothesis ended on (its final replay)
    assert isinstance(failure.error, Falsified) and failure.error.problem == "too big"
    assert not failure.flaky and not failure.explicit_only


def test_a_non_fatal_call_failure_is_shrunk_too() -> None:
    def prop(x: int) -> None:
        if x >= 1000:
            raise CallFailed(FORWARD, CallOutcome("error", message="ValueError: big"))

    failure = run_property(CONTEXT, st.integers(0, 10**6), prop, max_examples=200)
    assert failure is not None and failure.case == 1000 and isinstance(failure.error, CallFailed)


def test_shrinking_stops_after_its_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(harness, "SHRINK_BUDGET", 3)
    seen: list[int] = []

    def prop(x: int) -> None:
        seen.append(x)
        if x >= 1000:
            raise Falsified("too big")

    failure = run_property(CONTEXT, st.integers(0, 10**6), prop, max_examples=200)
    first = next(i for i, x in enumerate(seen) if x >= 1000)
    assert len(seen) == first + 1 + 3  # the first failure, then three more runs
    assert failure is not None and failure.case == [x for x in seen if x >= 1000][-1]


def test_a_fatal_call_failure_stops_the_search_at_once() -> None:
    seen: list[int] = []

    def prop(x: int) -> None:
        seen.append(x)
        if x >= 1000:
            raise CallFailed(FORWARD, CallOutcome("timeout", message="1 s"))

    failure = run_property(CONTEXT, st.integers(0, 10**6), prop, max_examples=200)
    assert failure is not None and failure.case == seen[-1] >= 1000
    assert isinstance(failure.error, CallFailed) and failure.error.outcome.status == "timeout"
    assert [x for x in seen if x >= 1000] == [seen[-1]]  # no shrinking


def test_a_failure_that_does_not_repeat_is_flaky() -> None:
    seen: list[int] = []

    def prop(x: int) -> None:
        seen.append(x)
        if len(seen) == 3:
            raise Falsified("once")

    failure = run_property(CONTEXT, st.integers(0, 10**6), prop, max_examples=50)
    assert failure is not None and failure.flaky and failure.error.problem == "once"
    assert failure.case == seen[2]


def test_a_flaky_error_of_the_grader_itself_is_not_a_verdict() -> None:
    calls = {"n": 0}

    def prop(x: int) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyError("the grader's own bug, once")

    with pytest.raises(Flaky):
        run_property(CONTEXT, st.integers(0, 10**6), prop, max_examples=50)


def test_the_search_is_deterministic_and_leaves_nothing_behind(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    """The settings that make a verdict repeatable: the seed alone picks the examples (no example database, no
    derandomising by the test's name), no per-example deadline (a slow machine must not fail a property), no
    health checks (the strategies are deliberate), only generating and shrinking, quiet."""
    used: list[dict] = []
    real = harness.settings

    def recording(**kwargs):
        used.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(harness, "settings", recording)
    monkeypatch.chdir(tmp_path)
    run_property(CONTEXT, st.integers(0, 10**6), lambda x: None, max_examples=5)
    assert used == [
        {
            "max_examples": 5,
            "database": None,
            "deadline": None,
            "derandomize": False,
            "report_multiple_bugs": False,
            "suppress_health_check": list(HealthCheck),
            "phases": (Phase.generate, Phase.shrink),
            "verbosity": Verbosity.quiet,
            "print_blob": False,
        }
    ]
    assert list(tmp_path.iterdir()) == []


def test_the_hand_picked_examples_run_only_if_the_search_found_nothing() -> None:
    seen: list[int] = []

    def prop(x: int) -> None:
        seen.append(x)
        if x in (-5, -7):
            raise Falsified(f"bad {x}")

    failure = run_property(CONTEXT, st.integers(0, 10), prop, examples=[-1, -5, -7], max_examples=3)
    assert failure is not None and failure.case == -5 and failure.explicit_only and not failure.flaky
    assert seen[-2:] == [-1, -5]

    def call_fails(x: int) -> None:
        if x < 0:
            raise CallFailed(FORWARD, CallOutcome("invalid", message="a string"))

    failure = run_property(CONTEXT, st.integers(0, 10), call_fails, examples=[-1], max_examples=3)
    assert failure is not None and failure.case == -1 and isinstance(failure.error, CallFailed)

    def overflows(x: int) -> None:
        if x < 0:
            raise OverflowError("math range error")

    failure = run_property(CONTEXT, st.integers(0, 10), overflows, examples=[-2], max_examples=3)
    assert failure is not None and failure.case == -2 and "overflowed" in failure.error.problem
    assert run_property(CONTEXT, st.integers(0, 10), overflows, examples=[1, 2], max_examples=3) is None


def test_an_overflow_in_the_search_is_a_falsified_property() -> None:
    def prop(x: int) -> None:
        if x >= 1000:
            raise OverflowError("math range error")

    failure = run_property(CONTEXT, st.integers(0, 10**6), prop, max_examples=200)
    assert failure is not None and failure.case == 1000 and isinstance(failure.error, Falsified)


def test_the_graders_own_errors_are_not_verdicts() -> None:
    def prop(x: int) -> None:
        raise KeyError("bug")

    with pytest.raises(KeyError):
        run_property(CONTEXT, st.integers(0, 10), prop, max_examples=3)


def test_fixed_cases_run_in_order_and_the_first_failure_is_returned() -> None:
    seen: list[int] = []

    def prop(x: int) -> None:
        seen.append(x)
        if x > 1:
            raise Falsified(f"bad {x}")

    failure = run_cases([0, 1, 2, 3], prop)
    assert failure is not None and failure.case == 2 and failure.explicit_only and seen == [0, 1, 2]
    assert failure.error.problem == "bad 2"
    assert run_cases([0, 1], prop) is None
    failure = run_cases([-1], lambda x: (_ for _ in ()).throw(OverflowError("range")))
    assert failure is not None and "overflowed (OverflowError: range)" in failure.error.problem
    failure = run_cases([4], lambda x: (_ for _ in ()).throw(CallFailed(FORWARD, CallOutcome("missing"))))
    assert failure is not None and isinstance(failure.error, CallFailed)


# --- feedback ---------------------------------------------------------------------------------------------------


def test_a_property_that_held_earns_its_points() -> None:
    assert passed("the value", ("a", "b")) == CheckOutcome(1.0, "Passed: the value", tags=["a", "b"])
    assert passed("x") == CheckOutcome(1.0, "Passed: x", tags=[])


def _failed(error: Exception, **kw) -> CheckOutcome:
    failure = Failure(
        "case", error, flaky=kw.pop("flaky", False), explicit_only=kw.pop("explicit_only", False)
    )
    return failed(tested="the value", function=FORWARD, failure=failure, counterexample="  x = 1", **kw)


def test_a_falsified_property_says_the_problem_the_input_and_expected_and_got() -> None:
    err = Falsified("wrong value", expected=[1.0, 2.0], got=[1.5, 2.0], details=["row 1 differs", "by 0.5"])
    outcome = _failed(err, extra=["Extra line."], tags=["core"])
    assert outcome == CheckOutcome(
        0.0,
        "Tested: the value\nProblem: wrong value\nSmallest failing input found:\n  x = 1\n"
        "  expected: [1.0, 2.0]\n  got:      [1.5, 2.0]\n  row 1 differs\n  by 0.5\nExtra line.",
        misconception=None,
        counterexample="  x = 1",
        tags=["core"],
    )
    words = _failed(Falsified("p", expected="3 values", got="2 values"), explicit_only=True)
    assert (
        words.feedback
        == "Tested: the value\nProblem: p\nA failing input:\n  x = 1\n  expected: 3 values\n  got:      2 values"
    )
    assert _failed(Falsified("p", expected=0.0, got=0.0)).feedback.endswith(
        "  expected: 0.0\n  got:      0.0"
    )
    rounded = _failed(Falsified("p", expected=[0.1234567891], got=1.0000001234)).feedback
    assert rounded.endswith("  expected: [0.123457]\n  got:      1.0")


def test_a_flaky_failure_says_the_function_is_not_deterministic() -> None:
    outcome = _failed(Falsified("p"), flaky=True)
    assert outcome.feedback.endswith(
        "\nNote: re-running this input did not reproduce the failure: your function gives different outputs for "
        "the same inputs (it is not deterministic)."
    )


def test_a_diagnosis_names_the_misconception() -> None:
    misconception = misconceptions.get("swapped_direction")  # its text names the function
    diagnosis = Diagnosis(misconception, "detail")
    outcome = _failed(Falsified("p"), diagnosis=diagnosis)
    assert outcome.misconception == "swapped_direction"
    assert outcome.feedback.endswith("\n" + diagnosis.render(FORWARD))
    assert diagnosis.render(FORWARD) != diagnosis.render(None)


def test_a_not_implemented_function_is_told_so_and_nothing_more() -> None:
    outcome = _failed(
        CallFailed(FORWARD, CallOutcome("error", message="NotImplementedError: todo")),
        diagnosis=Diagnosis(misconceptions.get("nondeterministic")),
        tags=["core"],
    )
    assert outcome == CheckOutcome(
        0.0,
        "Tested: the value\n" + CallOutcome("error", message="NotImplementedError: todo").describe(FORWARD),
        tags=["core", "not-implemented"],
    )


@pytest.mark.parametrize(
    ("status", "heading"),
    [
        ("error", "Smallest input found that triggers it:"),
        ("invalid", "Smallest input found that triggers it:"),
        ("timeout", "Input that triggered it:"),
        ("crashed", "Input that triggered it:"),
    ],
)
def test_a_failed_call_says_what_happened_and_on_which_input(status: str, heading: str) -> None:
    outcome = CallOutcome(status, message="ValueError: x")
    result = _failed(CallFailed(FORWARD, outcome), tags=["t"])
    assert result == CheckOutcome(
        0.0,
        f"Tested: the value\n{outcome.describe(FORWARD)}\n{heading}\n  x = 1",
        counterexample="  x = 1",
        tags=["t"],
    )


def test_a_function_that_fails_on_every_input_is_told_so_instead_of_a_misconception() -> None:
    broken = Scripted(CallOutcome("error", message="TypeError: unsupported\nline two"))
    err = CallFailed(FORWARD, CallOutcome("error", message="TypeError: unsupported"), broken)
    outcome = _failed(err, diagnosis=Diagnosis(misconceptions.get("nondeterministic")), tags=["core"])
    sentence = fails_everywhere(err)
    assert sentence == (
        f"Fails on every input: {FORWARD} raised TypeError: unsupported on ordinary inputs too, such as "
        f"{FORWARD}([[-1.2, -0.4, -2.0]], [[-0.9, -0.6, -1.7]], 0.1); the input above is only the smallest one the "
        "search reached. Fix this first: run the function yourself on a small example."
    )
    assert outcome.feedback.endswith("\n" + sentence)
    assert outcome.misconception is None and outcome.tags == ["core", "fails-everywhere"]
    # a flaky or fatal failure is not asked about
    assert "Fails on every input" not in _failed(err, flaky=True).feedback
    assert len(broken.calls) == 2 * len(harness.ORDINARY_INPUTS[FORWARD])
    assert {function for function, _, _ in broken.calls} == {FORWARD}
    # the sentence quotes the first ordinary input's message
    second = repr(harness.ORDINARY_INPUTS[FORWARD][1])
    varied = Scripted(
        CallOutcome("error", message="TypeError: first"), {second: CallOutcome("error", message="E: 2")}
    )
    assert "raised TypeError: first on ordinary inputs" in fails_everywhere(
        CallFailed(FORWARD, err.outcome, varied)
    )


def test_diagnosis_of_a_misconception_or_none() -> None:
    misconception = misconceptions.get("nondeterministic")
    assert harness.diagnosis_of(None, "detail") is None
    assert harness.diagnosis_of(misconception, "detail") == Diagnosis(misconception, "detail")
    assert harness.diagnosis_of(misconception) == Diagnosis(misconception, "")


def test_fails_everywhere_only_when_every_ordinary_input_fails_the_same_way() -> None:
    error = CallOutcome("error", message="ValueError: x")
    invalid = CallOutcome("invalid", message="a string")
    assert fails_everywhere(CallFailed(FORWARD, error)) is None  # who was called is unknown
    assert fails_everywhere(CallFailed("other_function", error, Scripted(error))) is None
    assert (
        fails_everywhere(CallFailed(FORWARD, CallOutcome("timeout"), Scripted(CallOutcome("timeout"))))
        is None
    )
    first = repr(harness.ORDINARY_INPUTS[FORWARD][0])
    mixed = Scripted(error, {first: CallOutcome("ok", value=[1.0])})
    assert fails_everywhere(CallFailed(FORWARD, error, mixed)) is None
    other_way = Scripted(invalid)
    assert fails_everywhere(CallFailed(FORWARD, error, other_way)) is None
    assert fails_everywhere(CallFailed(SHAPING, invalid, Scripted(invalid))) == (
        f"Fails on every input: {SHAPING} returned something unusable on ordinary inputs too (a string), such as "
        f"{SHAPING}([0.8], ['The acting was strong and the story kept me interested until the end.'], None); the "
        "input above is only the smallest one the search reached. Fix this first: run the function yourself on a "
        "small example."
    )
    silent = CallOutcome("invalid", message="  ")
    assert fails_everywhere(CallFailed(BACKWARD, silent, Scripted(silent))).startswith(
        f"Fails on every input: {BACKWARD} returned something unusable on ordinary inputs too, such as "
    )
    quiet = CallOutcome("error", message="")
    assert fails_everywhere(CallFailed(BACKWARD, quiet, Scripted(quiet))).startswith(
        f"Fails on every input: {BACKWARD} raised  on ordinary inputs too"
    )
