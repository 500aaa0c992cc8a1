"""Not gradable is not failed (issue 22): when the machine and not the submission kept a check from being judged,
the check loses no points, is left out of the maximum, says so, and the grade exits with status 3.

Fast tests drive the real training checks, the runner and the CLI with made-up run records in place of the GRPO
runs (``execute`` is replaced where the checks look it up), so what is tested is the decision, in milliseconds:
a control run that did not learn; a budget missed because of load (the control missed it too, or the training
itself took the time) against one missed because the submission's functions were slow; a closed rubric gate
still scoring 0; the report, JUnit, and the batch gradebook and summary. One slow test makes the real runs.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from grader import cli
from grader.checks import training as C
from grader.grading.results import TAG_NOT_GRADABLE, GradingResults, NotGradable, TestResult
from grader.grading.rubric import parse_rubric
from grader.grading.runner import apply_gates
from grader.training import engine as engine_module
from grader.training.runs import RunRecord
from grader.training.settings import Thresholds, load_settings

TRAINING_IDS = ("training.baseline", "training.forward_kl", "training.backward_kl", "training.shaped")
TH = load_settings("tiny").thresholds
#: Penalties and a shaping that pass the checks' one-call gate (one finite value per completion); what the runs
#: "did" comes from the records below, not from these.
SUBMISSION = """
def kl_penalty_forward(log_probs_policy, log_probs_ref, kl_coef=0.1):
    return [0.0 for _ in log_probs_policy]

def kl_penalty_backward(log_probs_policy, log_probs_ref, kl_coef=0.1):
    return [0.0 for _ in log_probs_policy]

def shaped_reward(scores, completions, prompts=None):
    return [float(s) for s in scores]
"""


def history(sentiments, kl, repetition=0.05, perplexity=4.5):
    return [
        {
            "step": 10 * i,
            "sentiment_mean": s,
            "kl_forward": k,
            "kl_backward": k,
            "repetition": repetition if i else 0.05,
            "ref_perplexity": perplexity if i else 4.5,
        }
        for i, (s, k) in enumerate(zip(sentiments, kl, strict=True))
    ]


def run(name, hist=None, **extra) -> RunRecord:
    fields = {"ok": hist is not None, "history": hist or [], "preset": "tiny", "config": {"kl_coef": 0.3}}
    return RunRecord(name, **{**fields, **extra})


LEARNED = run("baseline", history([0.55, 0.8, 0.95], [0.0, 1.0, 5.0]), wall_time_s=12.0)
STALLED = run("baseline", history([0.55, 0.56, 0.57], [0.0, 0.01, 0.02]), wall_time_s=12.0)  # did not learn
GOOD = {  # a KL run that learns and stays close, a shaped run that repeats less than the forward run
    "forward": run("forward", history([0.55, 0.7, 0.8], [0.0, 0.1, 0.2], repetition=0.12), wall_time_s=15.0),
    "backward": run("backward", history([0.55, 0.7, 0.8], [0.0, 0.1, 0.2]), wall_time_s=15.0),
    "shaped": run("shaped", history([0.55, 0.7, 0.8], [0.0, 0.1, 0.2], repetition=0.05), wall_time_s=15.0),
}


def timed_out(name, budget_s=600.0, budget_cost=2.4, **extra) -> RunRecord:
    """A run stopped at its budget (as ``execute`` records a lane killed at ``timeout_s``)."""
    error = f"the training runs did not finish within their time budget ({budget_s:g} s)"
    return run(name, error=error, timed_out=True, budget_s=budget_s, budget_cost=budget_cost, **extra)


@pytest.fixture
def submission(tmp_path: Path) -> Path:
    path = tmp_path / "rewards.py"
    path.write_text(SUBMISSION)
    return path


@pytest.fixture
def fake_runs(monkeypatch):
    """Make the grade's training runs these records (``execute`` as the checks call it)."""
    records: dict[str, RunRecord] = {}

    def fake_execute(jobs, **_kwargs):
        return {job.key: replace(records[job.run], key=job.key) for job in jobs}

    monkeypatch.setattr(engine_module, "execute", fake_execute)
    return records


def grade_cli(submission: Path, tmp_path: Path) -> tuple[int, dict]:
    out = tmp_path / "out" / "results.json"
    argv = ["--submission", str(submission), "--results", str(out), "--only", ",".join(TRAINING_IDS)]
    code = cli.main([*argv, "--junit", str(tmp_path / "out" / "junit.xml"), "--quiet"])
    return code, json.loads(out.read_text())


# --- a control that does not learn --------------------------------------------------------------------------------


def test_a_control_that_did_not_learn_makes_every_training_check_not_gradable_and_costs_no_points(
    submission, tmp_path, fake_runs, capsys
):
    """Before: the baseline check was an internal error (exit 2) and the three checks that compare with the
    control were scored against it all the same (GPU, 2026-12-04: 0/7, 0/7, 0/6)."""
    fake_runs.update(GOOD, baseline=STALLED)
    code, data = grade_cli(submission, tmp_path)
    assert code == cli.EXIT_NOT_GRADABLE == 3
    assert "20 points not gradable on this machine" in capsys.readouterr().out
    tests = {t["extra_data"]["check_id"]: t for t in data["tests"]}
    assert set(tests) == set(TRAINING_IDS)
    for check_id, points in (("training.forward_kl", 7), ("training.backward_kl", 7), ("training.shaped", 6)):
        test = tests[check_id]
        assert test["score"] == 0 and test["max_score"] == 0, test  # no points lost: left out of the maximum
        assert test["extra_data"]["gradable"] is False and test["extra_data"]["points_not_graded"] == points
        assert TAG_NOT_GRADABLE in test["tags"] and test["output"].startswith("NOT GRADABLE")
        assert (
            "did not learn on this machine" in test["output"] and "internal_error" not in test["extra_data"]
        )
    assert tests["training.baseline"]["extra_data"]["gradable"] is False
    # Gradescope's two required numbers stay valid; the top level says what was left out
    assert data["score"] == 0 and sum(t["max_score"] for t in data["tests"]) == 0
    extra = data["extra_data"]
    assert extra["gradable"] is False and extra["points_not_graded"] == 20 and not extra["full_marks"]
    assert set(extra["not_gradable"]) == set(TRAINING_IDS) and not extra["internal_error"]
    assert "Not gradable: 4 checks (20 points)" in data["output"] and "exit status 3" in data["output"]
    junit = (tmp_path / "out" / "junit.xml").read_text()
    assert 'skipped="4"' in junit and 'failures="0"' in junit and 'errors="0"' in junit


def test_a_control_that_learned_grades_as_before(submission, tmp_path, fake_runs):
    fake_runs.update(GOOD, baseline=LEARNED)
    code, data = grade_cli(submission, tmp_path)
    assert code == cli.EXIT_FULL_MARKS, [t["output"] for t in data["tests"]]
    assert data["score"] == 20 and data["extra_data"]["gradable"] is True
    assert "not_gradable" not in data["extra_data"]


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


def test_through_the_grader_load_is_exit_3_and_a_slow_submission_exit_1(submission, tmp_path, fake_runs):
    budget = {"budget_s": 240.0, "budget_cost": 1.4}
    fake_runs.update(GOOD, baseline=timed_out("baseline", budget_cost=1.0))
    fake_runs["backward"] = timed_out("backward")
    code, data = grade_cli(submission, tmp_path / "load")
    tests = {t["extra_data"]["check_id"]: t for t in data["tests"]}
    assert code == cli.EXIT_NOT_GRADABLE
    assert tests["training.backward_kl"]["extra_data"]["gradable"] is False
    assert "did not finish within its time budget either" in tests["training.backward_kl"]["output"]

    slow = timed_out("backward", **budget, timing={"wall_seconds": 241.0, "submission_seconds": 220.0})
    fake_runs.update(GOOD, baseline=LEARNED, backward=slow)
    code, data = grade_cli(submission, tmp_path / "slow")
    tests = {t["extra_data"]["check_id"]: t for t in data["tests"]}
    assert code == cli.EXIT_POINTS_LOST and data["extra_data"]["gradable"] is True
    assert tests["training.backward_kl"]["score"] == 0 and tests["training.backward_kl"]["max_score"] == 7


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
        "error",
    ]
    assert book[0]["training: run"] == "not gradable" and book[0]["not_gradable"] == "7"
    assert book[1]["training: run"] == "7" and book[1]["not_gradable"] == ""
    summary = summarise(rows)
    stats = {c.name: c for c in summary.checks}["training: run"]
    assert (stats.max_score, stats.passed, stats.graded, stats.not_gradable) == (7.0, 1, 1, 1)
    assert stats.mean_points == 7.0 and summary.regrade == ["ann"]
    write_summary_md(tmp_path / "summary.md", summary, rows)
    md = (tmp_path / "summary.md").read_text()
    assert "not gradable (no points lost, grade again, e.g. with --resume): 1 (ann)" in md
    assert "| withheld | not gradable | mean points |" in md


# --- the real runs (slow) ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_real_runs_with_a_control_below_its_threshold_are_not_gradable(submission, tmp_path, monkeypatch):
    """Slow: four real GRPO runs of the tiny preset, cut to 4 steps (a settings file of its own), through the
    real lanes (about 30 s on two cores). The grade's thresholds ask the control for a sentiment gain no run can
    make (+1.01), as on a machine where the control does not learn; everything else is permissive, so before
    this feature the KL and shaped checks passed against that control and the baseline check was an internal
    error (exit 2). Also checks what the lanes now record: the seconds spent in the submission's calls."""
    from grader.training import settings as S
    from grader.training.runs import execute

    text = S.SETTINGS_PATH.read_text()
    start = text.index("[tiny.runs]")
    tiny = text[start : text.index("[gpt2]")]
    for key, value in (
        ("max_steps", 4),
        ("eval_every", 2),
        ("validation_prompts", 4),
        ("baseline_min_gain", 1.01),
    ):
        tiny = __import__("re").sub(rf"(?m)^{key} = .*$", f"{key} = {value}", tiny)
    for key in ("kl_min_gain", "shaped_min_gain", "shaped_min_repetition_drop"):
        tiny = __import__("re").sub(rf"(?m)^{key} = .*$", f"{key} = -1.0", tiny)
    for key in ("kl_max_ratio", "shaped_max_perplexity_ratio", "shaped_max_kl_ratio"):
        tiny = __import__("re").sub(rf"(?m)^{key} = .*$", f"{key} = 1e9", tiny)
    path = tmp_path / "thresholds.toml"
    path.write_text(text[:start] + tiny + text[text.index("[gpt2]") :])
    seen = {}

    def small_runs(jobs, **kwargs):
        seen.update(execute(jobs, **kwargs, settings_path=path))
        return seen

    monkeypatch.setattr(engine_module, "execute", small_runs)
    monkeypatch.setattr(engine_module, "load_settings", lambda preset: S.load_settings(preset, path))
    code, data = grade_cli(submission, tmp_path)
    outputs = [t["output"] for t in data["tests"]]
    assert code == cli.EXIT_NOT_GRADABLE, outputs
    assert all(t["extra_data"]["gradable"] is False for t in data["tests"]), outputs
    assert data["extra_data"]["points_not_graded"] == 20 and data["score"] == 0
    assert all("needs at least +1.01" in output for output in outputs), outputs
    assert {r.run for r in seen.values() if r.usable} == {"baseline", "forward", "backward", "shaped"}
    assert seen["forward"].timing["submission_seconds"] > 0 and not seen["forward"].timed_out
