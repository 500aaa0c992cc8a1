"""Exercise 2's declared shaping goal in a real grade (grader/checks/goals.py, grader/grading/runner.py): the
runner reads ``SHAPING_GOAL`` from the submission's syntax tree and the shaping checks, run against the sandboxed
submission, judge the shaping by that goal.

The declaration's parsing and each goal's property, in process: tests/unit/test_goals.py.
"""

from __future__ import annotations

from pathlib import Path


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
