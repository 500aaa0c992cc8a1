"""Exercise 2's declared shaping goal in a real grade (grader/checks/goals.py, grader/grading/runner.py): the
runner reads ``SHAPING_GOAL`` from the submission's syntax tree and the shaping checks, run against the sandboxed
submission, judge the shaping by that goal.

Slow: a "shorter" submission's shaped training run judged by its goal's metric (mean words per completion) in a
real grade.

The declaration's parsing and each goal's property, in process: tests/unit/test_goals.py; each goal's training
verdict on synthetic records: tests/unit/test_shaping_goal_training.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest


def test_the_real_grade_reads_the_declaration(tmp_path: Path):
    """Issue 23: the original's own first idea, exp(3 (s - 0.5)), declared as "contrast", earns the shaping points
    (it lost all 16 to the repetition property before goals existed)."""
    from grader.grading.runner import GradeRequest, grade

    reference = (Path(__file__).resolve().parents[2] / "reference" / "rewards.py").read_text()
    path = tmp_path / "rewards.py"
    path.write_text(
        reference.replace('SHAPING_GOAL = "repetition"', 'SHAPING_GOAL = "contrast"')
        + "\n\ndef shaped_reward(scores, completions, prompts=None):\n"
        "    return [math.exp(3.0 * (s - 0.5)) for s in scores]\n"
    )
    results = grade(GradeRequest(path, training=False, only=["shaping.goal", "shaping.contract"]))
    by_id = {t.check_id: t for t in results.tests}
    assert by_id["shaping.goal"].score == by_id["shaping.goal"].max_score
    assert "goal:contrast" in by_id["shaping.goal"].tags


@pytest.mark.slow
def test_a_length_goal_shaping_earns_the_shaped_runs_points_by_its_own_metric(tmp_path: Path):
    """Slow (two real GRPO runs, about 20 CPU seconds each: the forward run and the shaped run; the seed-0
    baseline is not needed by training.shaped): issue 23's training half in a real grade. A correct "shorter"
    shaping (tests/support/goal_shapings.py; a goal whose metric the tiny preset's 40-step runs measure, where
    "longer" is shown only) is judged by mean words per completion against the forward run, not by repetition, and the measurement reaches results.json's extra_data. One grade only: the per-goal verdicts
    themselves are unit-tested on synthetic records (tests/unit/test_shaping_goal_training.py), and the margins
    are measured on several seeds in grader/training/calibration/tiny.md ("Shaping goals")."""
    from grader.grading.runner import GradeRequest, grade
    from tests.support.goal_shapings import submission_file_text

    path = tmp_path / "rewards.py"
    path.write_text(submission_file_text("shorter"))
    results = grade(
        GradeRequest(
            path, only=["shaping.goal", "training.shaped"], seed=0, artifact_stem=tmp_path / "results"
        )
    )
    by_id = {t.check_id: t for t in results.tests}
    shaped = by_id["training.shaped"]
    assert shaped.score == shaped.max_score > 0, shaped.output
    assert "your goal (shorter): mean words per completion" in shaped.output
    measured = results.to_gradescope_dict()["tests"][list(by_id).index("training.shaped")]["extra_data"]
    assert measured["measurements"]["metric"] == "completion_words"
    assert measured["measurements"]["move"] >= measured["measurements"]["least_move"] > 0
