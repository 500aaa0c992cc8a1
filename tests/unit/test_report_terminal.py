"""The student's terminal report at 80 columns: one line per check grouped by function, what several checks
share said once per function (withheld points, a NotImplementedError), the explanations of failures below the
checks, a check that was not run never labelled pass.

The results are real: the real checks run in process (tests/support/fake_submission.py) on the exercise stub and
on a submission whose backward penalty is the forward one and whose shaping ignores its goal, turned into points
and gated by the runner (run_check, apply_gates) with the real rubric.
"""

from __future__ import annotations

import io
import re
from dataclasses import replace

import pytest
from rich.console import Console

from grader.checks import REGISTRY
from grader.checks.goals import read_declaration
from grader.contract import CheckContext, CheckOutcome
from grader.grading.budget import TAG_NOT_RUN, TimeBudget
from grader.grading.report import render
from grader.grading.results import GradingResults, TestResult
from grader.grading.rubric import load_rubric
from grader.grading.runner import apply_gates, run_check
from tests.support.fake_submission import ROOT, FakeSubmission, exercise_module, reference_module

WIDTH = 80
RUBRIC = load_rubric()
ENTRIES = {e.check_id: e for e in RUBRIC.entries}
FUNCTIONS = ("kl_penalty_forward", "kl_penalty_backward", "shaped_reward")
# A check's line: two spaces, the status, the name (cut to fit), the points at the end.
CHECK_LINE = re.compile(r"^  (pass|FAIL|partial|held|not run|timeout|n/a|ERROR|advice|ok) +(.+?) {2,}(\S.*)$")
# The baseline run's record when no function of the submission could be trained (grader/training/engine.py).
BASELINE_NOT_RUN = (
    "not run: none of your functions could be trained with (see the other training checks), so there is nothing "
    "to compare it with"
)


def _grade(functions, source: str) -> list[TestResult]:
    """Every property check of the real rubric on ``functions``, in process, gated as a grade gates them."""
    declaration = read_declaration(ROOT / source)
    context = replace(
        CheckContext(seed=0, max_examples=5),
        shaping_goal=declaration.goal,
        shaping_goal_note=declaration.note,
    )
    submission = FakeSubmission(functions)
    tests = [run_check(e, REGISTRY[e.check_id], submission, context) for e in RUBRIC.selected(False)]
    return tests


def _baseline(record_error: str | None) -> TestResult:
    """training.baseline as the real check scores it: gated (not run), or a control run that learned."""
    from grader.checks.training import score_baseline
    from grader.training.runs import RunRecord
    from grader.training.settings import Thresholds

    thresholds = Thresholds(0.15, 0.085, 0.17, 0.085, 0.015, 2.1, 3.0)
    if record_error is not None:
        record = RunRecord("baseline", error=record_error, gated=True)
    else:
        step = {"sentiment_mean": 0.5, "kl_forward": 0.0, "kl_backward": 0.0}
        record = RunRecord(
            "baseline", ok=True, history=[{"step": 0, **step}, {**step, "step": 8, "sentiment_mean": 0.9}]
        )
    return run_check(
        ENTRIES["training.baseline"], lambda s, c: score_baseline(record, thresholds), None, None
    )


@pytest.fixture(scope="module")
def stub() -> GradingResults:
    """The exercise stub, with the training checks a grade with training gives it: the baseline not run, the
    forward run failed by the function's NotImplementedError."""
    tests = _grade(exercise_module(), "exercise/rewards.py")
    raised = next(t for t in tests if t.check_id == "kl_forward.direction").output.splitlines()[1]
    forward_run = run_check(
        ENTRIES["training.forward_kl"],
        lambda s, c: CheckOutcome(0.0, f"The run with your kl_penalty_forward could not be scored: {raised}"),
        None,
        None,
    )
    return GradingResults(apply_gates(RUBRIC.entries, [*tests, _baseline(BASELINE_NOT_RUN), forward_run]))


@pytest.fixture(scope="module")
def gated() -> GradingResults:
    """kl_penalty_backward is the forward penalty (its defining checks fail, seven secondary ones pass and are
    withheld) and shaped_reward returns the scores (its goal fails, six checks are withheld)."""
    reference = reference_module()

    def plain_scores(scores, completions, prompts=None):
        return list(scores)

    functions = {
        "kl_penalty_forward": reference.kl_penalty_forward,
        "kl_penalty_backward": reference.kl_penalty_forward,
        "shaped_reward": plain_scores,
    }
    return GradingResults(apply_gates(RUBRIC.entries, _grade(functions, "reference/rewards.py")))


def _lines(results: GradingResults, explain_all: bool = False, **console) -> list[str]:
    out = Console(width=WIDTH, record=True, color_system=None, file=io.StringIO(), **console)
    render(results, out, explain_all=explain_all)
    return [line.rstrip() for line in out.export_text().splitlines()]


def _check_lines(lines: list[str]) -> list[tuple[str, str, str]]:
    """(status, name, points) of every check line of the table (it ends where the first panel starts)."""
    table = lines[: next((i for i, line in enumerate(lines) if line.startswith("╭")), len(lines))]
    return [m.groups() for m in map(CHECK_LINE.match, table) if m]


def _status_of(lines: list[str], name_start: str) -> list[str]:
    return [status for status, name, _ in _check_lines(lines) if name.startswith(name_start)]


def test_no_line_is_longer_than_80_columns(stub, gated):
    for results in (stub, gated):
        for explain_all in (False, True):
            assert max(map(len, _lines(results, explain_all))) <= WIDTH
        # The checks fit by themselves: a console that never wraps (as a terminal soft-wraps) keeps them in 80.
        table = _lines(results, soft_wrap=True)
        table = table[: next(i for i, line in enumerate(table) if line.startswith("╭"))]
        assert max(map(len, table)) <= WIDTH, max(table, key=len)


def test_one_line_per_check_with_its_status_short_name_and_points(gated):
    rows = _check_lines(_lines(gated))
    assert len(rows) == len(gated.tests)
    for (_, name, points), test in zip(rows, gated.tests, strict=True):
        short = name.removesuffix("…")
        assert test.name.removeprefix(test.name.split(": ")[0] + ": ").startswith(
            short.removesuffix(" (hidden)")
        )
        assert points == f"{test.score:g} / {test.max_score:g}"
    statuses = {name: status for status, name, _ in rows}
    # shortened to fit: the bracketed remark goes, "(hidden)" stays
    assert (
        statuses["direction"] == "FAIL"
        and statuses["value on random batches like training's (hidden)"] == "FAIL"
    )
    assert [status for status, _, _ in rows].count("held") == 13
    # grouped by function, each group's total on its header
    assert [line for line in _lines(gated) if line.startswith(FUNCTIONS)] == [
        f"{'kl_penalty_forward':<{WIDTH - 7}}{'32 / 32':>7}",
        f"{'kl_penalty_backward':<{WIDTH - 7}}{'0 / 32':>7}",
        f"{'shaped_reward':<{WIDTH - 7}}{'0 / 16':>7}",
    ]


def test_withheld_checks_are_summarised_once_per_function(gated):
    text = " ".join(" ".join(_lines(gated)).split())  # the notes wrap: one line of words
    notes = re.findall(
        r"(\d+) held checks \((\d+) points\) passed on their own, but each requires ([^,]+)", text
    )
    assert notes == [
        ("7", "16", "kl_backward.direction and kl_backward.value and kl_backward.value_random"),
        ("6", "12", "shaping.goal"),
    ]
    # not once per check
    assert "On its own this check earned" not in text and "Withheld: requires" not in text


def test_not_implemented_is_said_once_per_function(stub):
    lines = _lines(stub)
    text = "\n".join(lines)
    for function in FUNCTIONS:
        assert text.count(f"{function} raised NotImplementedError") == 1, function
    assert text.count("NotImplementedError") == len(FUNCTIONS)
    # every check of the stub still has its line, and the training check it failed points to the function
    assert len(_check_lines(lines)) == len(stub.tests)
    assert "1 check failed because kl_penalty_forward is not implemented yet." in text
    # --explain-all still shows every failure's own explanation
    assert (
        "\n".join(_lines(stub, explain_all=True)).count("kl_penalty_forward raised NotImplementedError") >= 11
    )


def test_failures_are_explained_below_the_table_and_only_failures(gated):
    lines = _lines(gated)
    # the table's last line is the last check's (shaped_reward's monotone_in_score, held)
    last_check = next(i for i, line in enumerate(lines) if line.startswith("  held     never decreases"))
    panel = next(i for i, line in enumerate(lines) if line.startswith("╭─ First failure"))
    assert panel > last_check
    assert "kl_penalty_backward: direction" in lines[panel]
    explanation = lines[panel:]
    assert any("Problem: the policy gradient" in line for line in explanation)
    assert not any("Problem:" in line or "Tested:" in line for line in lines[:last_check])
    # the other failures: one line each below, the explanation of a check that passed nowhere
    others = [line for line in explanation if line.startswith("  FAIL")]
    assert [line.split(":")[1].strip() for line in others] == [
        "value",
        "value on random batches like training's",
        "rewards sentiment and meets its declared goal",
    ]
    assert "Passed:" not in "\n".join(lines)


def test_a_check_that_was_not_run_is_not_labelled_pass(stub):
    lines = _lines(stub)
    baseline = ENTRIES["training.baseline"].name.removeprefix("training: ")
    assert _status_of(lines, baseline[:20]) == ["not run"]
    assert "The baseline run was not run: none of your functions" in "\n".join(lines)
    # the same check when its run was made: pass (the label comes from what happened, not the 0 / 0)
    ran = GradingResults([_baseline(None)])
    assert ran.tests[0].passed and _status_of(_lines(ran), baseline[:20]) == ["pass"]
    # a check the time budget left unrun
    cut = replace(
        stub.tests[0],
        score=0.0,
        output=TimeBudget(60.0).not_run_message(),
        tags=["kl_penalty_forward", TAG_NOT_RUN],
    )
    assert _status_of(_lines(GradingResults([cut])), "direction") == ["not run"]
