"""The runner's pieces in process (grader/grading/runner.py): the summary's notes, the results of a grade that
could not run, and how a check's verdict becomes a result; plus the time budget's advice.

``grade()`` itself needs the sandbox and is tested through real grades (tests/quality, tests/integration); these
pin what its helpers write, which the mutation run (tests/README.md, "Mutation score") found no test reading.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from grader.contract import CheckOutcome, LeaderboardEntry
from grader.grading.budget import TAG_NOT_RUN, TAG_UNFINISHED, TimeBudget
from grader.grading.results import TAG_NOT_GRADABLE, GradingResults, NotGradable, TestResult
from grader.grading.rubric import RubricEntry
from grader.grading.runner import (
    _budget_note,
    _everything_failed,
    _import_feedback,
    _out_of_time,
    _overall_output,
    _result,
    apply_gates,
    hidden_note,
    not_gradable_note,
    run_check,
)

VALUE = RubricEntry("kl_forward.value", "kl_penalty_forward: value", 4.0, tags=("core",))
ADVICE = RubricEntry("shaping.goal", "shaping: goal", 0.0, advisory=True)
RUN = RubricEntry("training.forward", "training: forward", 5.0, requires_training=True, visibility="hidden")

ADVICE_TEXT = (
    "The whole grade must finish within that time. If your functions are slow in every call, make them faster "
    "(time them on a larger batch yourself); if this machine is slow or busy, grade again with a larger "
    "--time-budget."
)


def _machine(name: str, points: float) -> TestResult:
    return TestResult(name, 0, 0, "NOT GRADABLE", gradable=False, points_not_graded=points)


def test_the_not_gradable_note_counts_checks_and_points() -> None:
    tests = [_machine("a", 5), TestResult("b", 1, 1), _machine("c", 2.5)]
    assert not_gradable_note(tests) == (
        "Not gradable: 2 checks (7.5 points) could not be judged because of the machine, not your code (each says "
        "why). No points lost: they are left out of this score's maximum, and the grade is to be made again (exit "
        "status 3) on a machine that can judge them."
    )
    assert not_gradable_note([_machine("a", 5)]).startswith("Not gradable: 1 check (5 points) could not")


def test_the_hidden_note_counts_checks_and_points() -> None:
    assert hidden_note([VALUE, RUN]) == (
        "Hidden checks: 2 more checks, worth 9 points, are graded when you submit (the same properties on inputs "
        "nobody sees in advance); this score does not include them."
    )
    assert hidden_note([VALUE]).startswith("Hidden checks: 1 more check, worth 4 points, are graded")


def test_the_budget_note_counts_what_the_budget_cut() -> None:
    tests = [
        _out_of_time(VALUE, "not run", TAG_NOT_RUN),
        _out_of_time(RUN, "not finished", TAG_UNFINISHED),
        TestResult("passed", 2, 2),
    ]
    assert _budget_note(TimeBudget(30, waited=False), tests) == (
        "The grading time budget of 30 s ran out: 2 checks (9 points) were not finished and score 0: slow "
        "functions, or a slow or busy machine (the checks say more)."
    )


def test_a_check_out_of_time_scores_zero_with_the_reason_and_is_not_an_internal_error() -> None:
    result = _out_of_time(VALUE, "not run: out of time", TAG_NOT_RUN)
    assert result == TestResult(
        "kl_penalty_forward: value",
        0,
        4,
        "not run: out of time",
        tags=["kl_penalty_forward", "core", TAG_NOT_RUN],
        check_id="kl_forward.value",
    )


def test_the_budgets_messages_say_what_ran_out_and_what_to_do() -> None:
    budget = TimeBudget(12.5, waited=False)
    assert budget.not_run_message() == (
        "not run: the grading time budget of 12.5 s ran out before this check started. " + ADVICE_TEXT
    )
    assert budget.unfinished_message() == (
        "not finished: the grading time budget of 12.5 s ran out during this check. " + ADVICE_TEXT
    )


@pytest.mark.parametrize(
    ("status", "head"),
    [
        ("timeout", "Your submission did not finish importing"),
        ("crashed", "Your submission crashed while being imported"),
        ("error", "Your submission could not be imported"),
    ],
)
def test_an_import_failure_says_what_happened_and_how_to_see_it(status: str, head: str) -> None:
    assert _import_feedback("NameError: x", status) == (
        f"{head}, so none of its functions could be graded.\nNameError: x\n"
        "Run `python exercise/rewards.py` to see the error; code at the top level of the file runs on import."
    )


@pytest.mark.parametrize("internal", [True, False])
def test_a_grade_that_could_not_run_fails_every_check_with_the_reason(internal: bool) -> None:
    seen: list[TestResult] = []
    started = time.monotonic()
    results = _everything_failed(
        [VALUE, RUN], "the reason", started, 7, internal=internal, progress=seen.append
    )
    since_started = time.monotonic() - started
    assert seen == results.tests
    assert [(t.check_id, t.score, t.max_score, t.output, t.internal_error) for t in results.tests] == [
        ("kl_forward.value", 0, 4, "the reason", internal),
        ("training.forward", 0, 5, "the reason", internal),
    ]
    assert (results.output, results.internal_error, results.seed) == ("the reason", internal, 7)
    assert 0 <= results.execution_time <= since_started  # measured from the start it was given
    assert _everything_failed([VALUE], "x", 0.0, 7, internal=False).tests[0].check_id == "kl_forward.value"


def test_the_summary_has_the_score_notes_plots_output_and_sandbox() -> None:
    results = GradingResults(
        [
            TestResult("a", 1.5, 2, artifacts=["out_curve.png", "out_table.csv"]),
            TestResult("b", 0, 1, artifacts=["out_curve.png"]),
        ],
        seed=3,
    )
    text = _overall_output(results, Path("/x/rewards.py"), ["a note", "", "another"], "hello\n", "namespaces")
    assert text == (
        "Graded rewards.py: 1.5 / 3 points (seed 3).\na note\nanother\n"
        "Plots written next to the results: out_curve.png, out_table.csv\n"
        "What your code printed while being graded (truncated):\nhello\n\nSandbox: namespaces."
    )
    bare = _overall_output(GradingResults([TestResult("a", 1, 1)], seed=0), Path("r.py"), [], "", "none")
    assert bare == "Graded r.py: 1 / 1 points (seed 0).\nSandbox: none."


# --- a check's verdict into a result ------------------------------------------------------------------------------


def test_a_verdict_becomes_points_tags_and_everything_the_check_reported() -> None:
    outcome = CheckOutcome(
        0.5,
        "Tested: x\nProblem: y",
        misconception="sum_not_mean",
        counterexample="x = [1]",
        tags=["extra", "core"],
        artifacts=[Path("plot.png")],
        leaderboard=[LeaderboardEntry("sentiment", 0.9, "desc")],
        measurements={"rate": 0.25},
    )
    result = run_check(VALUE, lambda submission, context: outcome, object(), object())
    expected = TestResult(
        "kl_penalty_forward: value",
        2.0,
        4.0,
        "Tested: x\nProblem: y\nCounterexample:\nx = [1]",
        tags=["kl_penalty_forward", "core", "extra", "misconception:sum_not_mean"],
        check_id="kl_forward.value",
        misconception="sum_not_mean",
        artifacts=["plot.png"],
        leaderboard=[{"name": "sentiment", "value": 0.9, "order": "desc"}],
        measurements={"rate": 0.25},
    )
    assert result == expected


@pytest.mark.parametrize(
    ("fraction", "feedback", "counterexample", "output"),
    [
        (1.0, "", None, "Passed."),
        (0.99, "  ", None, "Failed."),
        (0.0, "", "x = [1]  \n", "Counterexample:\nx = [1]"),
        (0.0, "Problem: see x = [1] here", "x = [1]", "Problem: see x = [1] here"),
        (1, "  Fine.  ", None, "Fine."),
    ],
)
def test_the_feedback_is_the_checks_with_its_counterexample_once(
    fraction: float, feedback: str, counterexample: str | None, output: str
) -> None:
    outcome = CheckOutcome(fraction, feedback, counterexample=counterexample)
    assert run_check(VALUE, lambda s, c: outcome, object(), object()).output == output


def test_an_advisory_check_is_advice_when_its_property_does_not_hold() -> None:
    failed = run_check(ADVICE, lambda s, c: CheckOutcome(0.5, "no"), object(), object())
    assert (failed.advisory, failed.advisory_failed, failed.tags) == (
        True,
        True,
        ["shaped_reward", "advisory"],
    )
    held = run_check(ADVICE, lambda s, c: CheckOutcome(1.0, "ok"), object(), object())
    assert (held.advisory, held.advisory_failed) == (True, False)


def test_a_check_that_cannot_be_judged_loses_no_points_and_is_left_out_of_the_maximum() -> None:
    def check(submission, context):
        raise NotGradable("the control run did not learn")

    result = run_check(RUN, check, object(), object())
    assert result == TestResult(
        "training: forward",
        0,
        0,
        "NOT GRADABLE (not your code's fault; no points lost, left out of the maximum): the control run did not "
        "learn",
        visibility="hidden",
        tags=["training", TAG_NOT_GRADABLE],
        check_id="training.forward",
        gradable=False,
        points_not_graded=5.0,
    )


def test_a_check_that_raises_is_an_internal_error_that_says_where() -> None:
    def check(submission, context):
        raise KeyError("boom")

    result = run_check(VALUE, check, object(), object())
    assert (result.score, result.max_score, result.internal_error) == (0, 4, True)
    assert result.output.startswith(
        "Internal grader error in this check: KeyError: 'boom' (at test_runner_units.py:"
    )
    assert result.output.endswith("). This is not your fault; please report it.")


@pytest.mark.parametrize(
    "returned", [None, CheckOutcome(True), CheckOutcome(-0.1), CheckOutcome(1.01), CheckOutcome("1")]
)
def test_a_check_that_returns_no_valid_verdict_is_an_internal_error(returned: object) -> None:
    result = run_check(VALUE, lambda s, c: returned, object(), object())
    fraction = getattr(returned, "fraction", "")
    assert (result.score, result.internal_error) == (0, True)
    assert result.output == (
        f"Internal grader error: the check returned {type(returned).__name__} {fraction!r}, not a CheckOutcome "
        "with a fraction in [0, 1]."
    )


@pytest.mark.parametrize("fraction", [0.0, 1.0, 0])
def test_the_ends_of_the_fraction_are_verdicts(fraction: float) -> None:
    result = run_check(VALUE, lambda s, c: CheckOutcome(fraction, "x"), object(), object())
    assert (result.score, result.internal_error) == (4 * fraction, False)


def test_a_missing_check_is_the_graders_error_named_by_its_id() -> None:
    result = run_check(VALUE, None, object(), object())
    assert (result.score, result.max_score, result.internal_error) == (0, 4, True)
    assert result.output == "Internal grader error: no check is registered under the id 'kl_forward.value'."


def test_the_check_starts_its_budget_and_runs_at_the_feedback_level() -> None:
    from grader.checks import feedback

    seen = []

    class Submission:
        def begin_check(self, budget_s: float) -> None:
            seen.append(budget_s)

    def check(submission, context):
        seen.append(feedback.current_level())
        return CheckOutcome(1.0)

    run_check(VALUE, check, Submission(), object(), feedback_level="solution")
    assert seen == [VALUE.budget_s, "solution"]


def test_a_result_dedupes_its_tags_in_order() -> None:
    result = _result(VALUE, 1.0, "ok", extra_tags=["core", "kl_penalty_forward", "new"])
    assert result.tags == ["kl_penalty_forward", "core", "new"]


# --- gates ------------------------------------------------------------------------------------------------------

DIRECTION = RubricEntry("kl_forward.direction", "kl_penalty_forward: direction", 10.0)
GATED = RubricEntry(
    "kl_forward.finite", "kl_penalty_forward: finite", 2.0, requires=(DIRECTION.check_id, VALUE.check_id)
)


def test_every_failed_requirement_is_named_with_its_name() -> None:
    tests = [
        TestResult(DIRECTION.name, 0, 10, "no", check_id=DIRECTION.check_id),
        TestResult(VALUE.name, 0, 4, "no", check_id=VALUE.check_id),
        TestResult(GATED.name, 2, 2, "Passed.", check_id=GATED.check_id),
    ]
    gated = apply_gates([DIRECTION, VALUE, GATED], tests)[2]
    assert gated.output == (
        "Withheld: requires kl_forward.direction and kl_forward.value, which failed. On its own this check earned "
        "2 / 2, but its points count only when the checks it requires pass (kl_forward.direction: "
        "kl_penalty_forward: direction; kl_forward.value: kl_penalty_forward: value).\n\nPassed."
    )


def test_a_closed_gate_on_a_check_not_gradable_makes_it_a_verdict_of_zero() -> None:
    tests = [
        TestResult(DIRECTION.name, 0, 10, "no", check_id=DIRECTION.check_id),
        run_check(GATED, lambda s, c: (_ for _ in ()).throw(NotGradable("busy")), object(), object()),
    ]
    gated = apply_gates([DIRECTION, VALUE, GATED], tests)[1]
    assert (gated.score, gated.max_score, gated.gradable, gated.points_not_graded) == (0, 2, True, 0.0)
    assert TAG_NOT_GRADABLE not in gated.tags


def test_a_result_the_rubric_does_not_know_passes_the_gates_unchanged() -> None:
    stray = TestResult("other", 1, 1, "ok", check_id="other.check")
    assert apply_gates([DIRECTION, GATED], [stray]) == [stray]
