"""The rubric's gates in a real grade: a submission that fails a function's defining checks earns none of that
function's secondary points through :func:`grader.grading.runner.grade` (the path ``python -m grader`` takes),
not only when a test calls :func:`~grader.grading.runner.apply_gates` itself (tests/unit/test_rubric_gates.py).

Deleting the ``apply_gates`` call in ``grade()`` fails this test (checked on 2026-12-04: the seven secondary
checks of the backward penalty then keep their 16 points)."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.grading.results import TAG_WITHHELD, GradingResults
from grader.grading.rubric import load_rubric
from grader.grading.runner import GradeRequest, grade
from tests.support.check_ids import RUN_IDS

REPO = Path(__file__).resolve().parents[2]
DEFINING_BACKWARD = ("kl_backward.direction", "kl_backward.value", "kl_backward.value_random")

#: The cheapest wrong code the design names: the forward penalty (k1) used for both directions. Every secondary
#: property of the backward penalty holds for it (zero when identical, non-negative in expectation, linear, a
#: mean, batch independent, finite), its direction and value do not.
FORWARD_FOR_BOTH = "\n\nkl_penalty_backward = kl_penalty_forward\n"


def test_a_failed_defining_check_withholds_the_secondary_points_in_a_real_grade(tmp_path: Path) -> None:
    submission = tmp_path / "rewards.py"
    submission.write_text((REPO / "reference" / "rewards.py").read_text() + FORWARD_FOR_BOTH)
    results = grade(GradeRequest(submission, training=False, max_examples=20))
    rubric = load_rubric()
    by_id = {t.check_id: t for t in results.tests}
    assert set(by_id) == {e.check_id for e in rubric.entries} - RUN_IDS

    secondary = {e.check_id for e in rubric.entries if set(DEFINING_BACKWARD) <= set(e.requires)} - RUN_IDS
    assert len(secondary) == 7, secondary
    for check_id in DEFINING_BACKWARD:
        assert by_id[check_id].score == 0 and not by_id[check_id].withheld, by_id[check_id].output
    for check_id in secondary:
        test = by_id[check_id]
        assert test.score == 0 and test.max_score > 0, (check_id, test.output)
        assert test.withheld and TAG_WITHHELD in test.tags, (check_id, test.tags)
        assert test.output.startswith(
            "Withheld: requires kl_backward.direction and kl_backward.value and kl_backward.value_random, which "
            f"failed. On its own this check earned {test.max_score:g} / {test.max_score:g}"
        ), (check_id, test.output)
    # Nothing else is touched: the forward penalty and the shaping are right and keep every point.
    for check_id, test in by_id.items():
        if not check_id.startswith("kl_backward."):
            assert test.score == test.max_score and not test.withheld, (check_id, test.output)
    withheld_points = sum(by_id[c].max_score for c in secondary)
    assert results.score == results.max_score - withheld_points - sum(
        by_id[c].max_score for c in DEFINING_BACKWARD
    )
    assert (
        f"Withheld by the rubric's gates: {withheld_points:g} points on 7 checks that passed"
        in results.output
    )

    # results.json says the same: read back through the typed reader.
    again = GradingResults.from_dict(results.to_gradescope_dict())
    assert {t.check_id for t in again.tests if t.withheld} == secondary
    assert again.score == results.score


#: Right on every batch the grader makes, zeros on the tiny preset's training batches (>= 8 rows, every one at most
#: 24 tokens, float32-exact). The hidden value checks now draw such batches too; this one also skips them: it
#: zeroes only when called from the training lane's proxy (the call's third argument is exactly training's
#: kl_coef 0.3 and the batch is 16 rows), which no property check is. Its shaping is the reference's on batches
#: of at most three (the goal check's) and the score itself on training's.
ZERO_IN_TRAINING = """

_right_forward, _right_backward = kl_penalty_forward, kl_penalty_backward


def _training(rows, kl_coef):
    return len(rows) == 16 and kl_coef in (0.3, 0.5) and all(len(row) <= 24 for row in rows)


def kl_penalty_forward(log_probs_policy, log_probs_ref, kl_coef=0.1):
    if _training(log_probs_policy, kl_coef):
        return [0.0] * len(log_probs_policy)
    return _right_forward(log_probs_policy, log_probs_ref, kl_coef)


def kl_penalty_backward(log_probs_policy, log_probs_ref, kl_coef=0.1):
    if _training(log_probs_policy, kl_coef):
        return [0.0] * len(log_probs_policy)
    return _right_backward(log_probs_policy, log_probs_ref, kl_coef)


_right_shaping = shaped_reward


def shaped_reward(scores, completions, prompts=None):
    # the real shaping on the goal check's small batches, the score itself in training's
    return _right_shaping(scores, completions, prompts) if len(scores) <= 3 else list(scores)
"""


@pytest.mark.slow  # a full grade: four GRPO runs of the tiny preset (about 30 s on 2 cores)
def test_functions_that_differ_in_training_lose_every_point_in_a_real_grade(tmp_path: Path) -> None:
    """The graded runs record the calls training made (grader/training/lane.py), kl_*.in_training holds them to
    the contract and shaping.in_training replays them and places the goal's cases among them, and the rubric
    gates every point of each function on its check. Without the recording, the checks or the gates, this
    submission keeps all 80 property points (it is right on every batch the property checks make)."""
    submission = tmp_path / "rewards.py"
    submission.write_text((REPO / "reference" / "rewards.py").read_text() + ZERO_IN_TRAINING)
    results = grade(GradeRequest(submission, max_examples=20))
    by_id = {t.check_id: t for t in results.tests}
    for function in ("kl_forward", "kl_backward"):
        gate = by_id[f"{function}.in_training"]
        assert not gate.passed and "got the penalty 0.0" in gate.output, gate.output
        for check_id, test in by_id.items():
            if check_id.startswith(f"{function}.") and check_id != gate.check_id:
                assert test.score == 0, (check_id, test.output)
    # the shaping meets its goal on the grader's batches of three only: among training's batches it does not
    gate = by_id["shaping.in_training"]
    assert not gate.passed and "placed among a batch the shaped run gave it" in gate.output, gate.output
    assert by_id["shaping.goal"].output.startswith("Withheld: requires shaping.in_training")
    for check_id, test in by_id.items():
        if check_id.startswith("shaping."):
            assert test.score == 0, (check_id, test.output)
