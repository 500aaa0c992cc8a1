"""Not gradable is not failed (issue 22), through the real grader: ``python -m grader``'s entry point grades a
submission whose training runs are made-up records (``execute`` is replaced where the engine looks it up), so the
sandbox, the runner, results.json, JUnit and the exit status are real and the runs take no time: a control that
did not learn makes every training check not gradable (exit 3, no points lost), one that learned grades as
before; a budget missed under load is exit 3, by a slow submission exit 1. One slow test makes the real runs.

The decision itself, on the same records in process, is in tests/unit/test_not_gradable.py.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from grader import cli
from grader.grading.results import TAG_NOT_GRADABLE
from grader.training import engine as engine_module
from grader.training.runs import RunRecord
from tests.support.check_ids import TRAINING_IDS
from tests.support.run_records import GOOD, LEARNED, STALLED, timed_out

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
    # the runs here are faked or shortened: the session's kept control run (tests/conftest.py) is not theirs
    argv = ["--submission", str(submission), "--results", str(out), "--only", ",".join(TRAINING_IDS)]
    argv.append("--no-run-cache")
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


# --- a budget missed: load or a slow submission --------------------------------------------------------------------


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
    for key in ("kl_max_ratio", "shaped_max_perplexity_ratio", "shaped_max_kl_rise"):
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
