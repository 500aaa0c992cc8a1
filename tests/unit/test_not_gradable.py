"""Not gradable is not failed (issue 22): when the machine and not the submission kept a check from being judged,
the check loses no points, is left out of the maximum, says so, and the grade exits with status 3.

The decision, in process and in milliseconds, on made-up run records (tests/support/run_records.py): a control
run that did not learn; a run that failed in the grader; a budget missed because of load (the control missed it
too, or the training itself took the time) against one missed because the submission's functions were slow; a
closed rubric gate still scoring 0; the report, and the batch gradebook and summary. The same records through the
real grader (its CLI, exit status 3 and JUnit, and one slow test with real runs) are in
tests/integration/test_not_gradable_grades.py.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from grader import cli
from grader.checks import training as C
from grader.grading.results import TAG_NOT_GRADABLE, GradingResults, NotGradable, TestResult
from grader.grading.rubric import parse_rubric
from grader.grading.runner import apply_gates
from grader.training.settings import Thresholds, load_settings
from tests.support.run_records import GOOD, LEARNED, STALLED, run, timed_out

TH = load_settings("tiny").thresholds


# --- a control that does not learn --------------------------------------------------------------------------------


def test_the_students_own_failure_stays_theirs_when_the_control_did_not_learn():
    nan = run("forward", error="kl_penalty_forward returned nan", component="kl_penalty_forward")
    outcome = C.score_kl("forward", STALLED, nan, TH)
    assert outcome.fraction == 0 and "returned nan" in outcome.feedback
    with pytest.raises(NotGradable, match="did not learn"):
        C.score_kl("forward", STALLED, GOOD["forward"], TH)
    with pytest.raises(NotGradable, match="did not learn"):
        C.score_shaped(GOOD["forward"], GOOD["shaped"], TH, STALLED)
    # a control that failed for another reason (its time) leaves the shaped check, judged against the forward
    # run, gradable
    assert C.score_shaped(GOOD["forward"], GOOD["shaped"], TH, timed_out("baseline")).fraction == 1


def test_a_run_that_failed_in_the_grader_is_not_gradable():
    """A training process that died (out of memory, lost its GPU) or a pipeline error: not the submission's."""
    died = run("backward", error="the training process ended (exit status -9)", internal=True)
    with pytest.raises(
        NotGradable, match="failed in the grader, not in your code: the training process ended"
    ):
        C.score_kl("backward", LEARNED, died, TH)


# --- a budget missed: load or a slow submission --------------------------------------------------------------------


def test_a_budget_missed_under_load_is_not_charged_and_a_slow_submission_still_is():
    # the control (none of the submission's code) missed the budget too: the machine was slow or busy
    with pytest.raises(NotGradable, match="control run, which runs none of your code, did not finish"):
        C.score_kl("forward", timed_out("baseline", budget_cost=1.0), timed_out("forward"), TH)
    # the control finished, but slowly: the work this run's process had to do needed most of the budget
    slow_control = replace(LEARNED, wall_time_s=200.0)  # 200 s x 2.4 cost units = 480 s of a 600 s budget
    with pytest.raises(NotGradable, match="would have taken about 480 s"):
        C.score_kl("forward", slow_control, timed_out("forward"), TH)
    # the run's own record: the training itself took the time, not the submission's calls
    in_lane = timed_out("forward", budget_s=240.0, budget_cost=1.4, timing={"wall_seconds": 241.0})
    in_lane.timing["submission_seconds"] = 9.5
    with pytest.raises(NotGradable, match="your functions took 9.5 s and the training itself 232 s"):
        C.score_kl("forward", LEARNED, in_lane, TH)
    # the control took 12 s: a correct run fits its budget many times over, so the submission took the time
    slow = timed_out("forward", budget_s=240.0, budget_cost=1.4)
    slow.timing = {"wall_seconds": 241.0, "submission_seconds": 230.0}
    outcome = C.score_kl("forward", LEARNED, slow, TH)
    assert outcome.fraction == 0 and "training:run_failed" in outcome.tags
    assert "your functions took 230.0 s of it" in outcome.feedback and "make them faster" in outcome.feedback
    # the shaped check, whose control is the forward run
    with pytest.raises(NotGradable, match="forward run .* missed its time budget"):
        C.score_shaped(timed_out("forward"), GOOD["shaped"], TH, timed_out("baseline", budget_cost=1.0))
    assert C.score_shaped(slow, GOOD["shaped"], TH, LEARNED).fraction == 0


# --- gates, report, thresholds -------------------------------------------------------------------------------------


def test_a_closed_gate_scores_a_check_that_was_not_gradable_zero_all_the_same():
    """A wrong penalty on a slow machine is still a wrong penalty: the gate decides without the run."""
    rubric = parse_rubric(
        {
            "checks": {
                "kl_forward.direction": {"name": "direction", "points": 5},
                "training.forward_kl": {"name": "run", "points": 7, "requires": ["kl_forward.direction"]},
                "training.backward_kl": {"name": "other run", "points": 7},
            }
        }
    )
    failed = TestResult("direction", 0.0, 5.0, "wrong direction", check_id="kl_forward.direction")
    cut = TestResult(
        "run", 0.0, 0.0, "NOT GRADABLE: ...", tags=[TAG_NOT_GRADABLE], check_id="training.forward_kl"
    )
    cut.gradable, cut.points_not_graded = False, 7.0
    other = replace(cut, name="other run", check_id="training.backward_kl")
    gated = {t.check_id: t for t in apply_gates(rubric.entries, [failed, cut, other])}
    run_test = gated["training.forward_kl"]
    assert run_test.gradable and (run_test.score, run_test.max_score) == (0.0, 7.0)
    assert run_test.output.startswith("Withheld: requires kl_forward.direction, which failed")
    assert TAG_NOT_GRADABLE not in run_test.tags
    assert not gated["training.backward_kl"].gradable  # no gate: still not gradable


def test_the_report_marks_checks_that_were_not_gradable():
    from rich.console import Console

    from grader.grading.report import render

    cut = TestResult("training: run", 0.0, 0.0, "NOT GRADABLE (...): the control did not learn", check_id="t")
    cut.gradable, cut.points_not_graded = False, 7.0
    results = GradingResults([TestResult("property", 3.0, 3.0, "ok"), cut], output="summary")
    console = Console(record=True, width=150)
    render(results, console)
    text = console.export_text()
    assert "n/a" in text and "not gradable (7)" in text and "Not gradable: training: run" in text
    assert "Score: 3 / 3 (7 points not gradable on this machine: regrade)" in text
    assert "First failure" not in text
    back = GradingResults.from_dict(results.to_gradescope_dict())  # results.json reads back the same
    assert [(t.gradable, t.points_not_graded) for t in back.tests] == [(True, 0.0), (False, 7.0)]


def test_thresholds_are_printed_as_they_are():
    th = Thresholds(0.15, 0.085, 0.17, 0.085, 0.015, 2.1, 3.0)
    kl = C.score_kl("forward", LEARNED, GOOD["forward"], th)
    assert "must rise at least +0.085" in kl.feedback and "+0.09" not in kl.feedback
    shaped = C.score_shaped(GOOD["forward"], GOOD["shaped"], th, LEARNED)
    assert "+0.085" in shaped.feedback and "at least 0.015 lower" in shaped.feedback
    assert "needs at least +0.15" in C.score_baseline(LEARNED, th).feedback


# --- the batch gradebook -------------------------------------------------------------------------------------------


def test_the_gradebook_shows_checks_that_were_not_gradable(tmp_path):
    import csv

    from grader.tools.batch import Graded, summarise, write_gradebook, write_summary_md
    from grader.tools.batch.config import Entry
    from grader.tools.batch.grade import read_row

    judged = TestResult("training: run", 7.0, 7.0, "ok", check_id="training.forward_kl")
    cut = replace(judged, score=0.0, max_score=0.0, output="NOT GRADABLE", tags=[TAG_NOT_GRADABLE])
    cut.gradable, cut.points_not_graded = False, 7.0
    prop = TestResult("property", 3.0, 3.0, "ok", check_id="kl_forward.direction")
    folder = tmp_path / "ann"
    folder.mkdir()
    GradingResults([prop, cut]).write_json(folder / "results.json")
    entry = Entry("ann", tmp_path / "ann.py", tmp_path / "ann.py")
    row = read_row(entry, folder, cli.EXIT_NOT_GRADABLE, "", 1.0)
    assert row.error == "" and (row.score, row.max_score) == (3.0, 3.0)  # a grade, not a grader error
    bob = GradingResults([prop, judged]).to_gradescope_dict()
    rows = [row, Graded("bob", 10.0, 10.0, bob["tests"], exit_code=0)]
    write_gradebook(tmp_path / "gradebook.csv", rows)
    with (tmp_path / "gradebook.csv").open() as fh:
        book = list(csv.DictReader(fh))
    assert list(book[0]) == [
        "submission",
        "score",
        "max_score",
        "property",
        "training: run",
        "not_gradable",
        "reason",
        "error",
    ]
    assert book[0]["training: run"] == "not gradable" and book[0]["not_gradable"] == "7"
    assert book[0]["reason"] == "not gradable" and book[1]["reason"] == ""
    assert book[1]["training: run"] == "7" and book[1]["not_gradable"] == ""
    summary = summarise(rows)
    stats = {c.name: c for c in summary.checks}["training: run"]
    assert (stats.max_score, stats.passed, stats.graded, stats.not_gradable) == (7.0, 1, 1, 1)
    assert stats.mean_points == 7.0 and summary.regrade == ["ann"]
    write_summary_md(tmp_path / "summary.md", summary, rows)
    md = (tmp_path / "summary.md").read_text()
    assert "not gradable (no points lost, grade again, e.g. with --resume): 1 (ann)" in md
    assert "| withheld | not gradable | mean points |" in md
