"""``shaping.in_training`` (grader/checks/shaping_in_training.py): the shaping gives training's recorded batches
the rewards it gave them in training, and meets its goal with the goal's cases placed among those batches. Red
team, stop 21: an identity shaping that ran the real one only on batches of three (the goal check's size) kept
every shaping point. A real grade: the slow tier's reference grade passes it (tests/conftest.py)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from grader.checks.shaping_in_training import AmongTrainingBatches, Batch, check
from grader.contract import SHAPING, TrainingContext
from grader.training.engine import RunSet
from tests.support.fake_submission import FakeSubmission, reference_module
from tests.support.run_records import LEARNED

REFERENCE = reference_module().shaped_reward
COMPLETIONS = [
    " was a quiet, moving film with a fine cast.",
    " felt slow in the middle but the ending was great.",
    " great great great great great great",
    " was not my kind of story, though the music was lovely.",
] * 4
SCORES = [0.62, 0.55, 0.97, 0.41] * 4
PROMPTS = ["The movie", "All in all, the film"] * 8


def recorded(shaping, *, tamper: bool = False) -> dict:
    value = shaping(SCORES, COMPLETIONS, PROMPTS)
    if tamper:
        value = [v + 0.5 for v in value]
    return {
        "function": SHAPING,
        "index": 9,
        "args": [SCORES, COMPLETIONS, PROMPTS],
        "status": "ok",
        "value": value,
        "message": "",
    }


def judged(shaping, calls: list[dict], goal: str = "repetition"):
    records = {"shaped": replace(LEARNED, run="shaped", calls=calls)}

    class Engine:
        def run_set(self, submission, seed, budget_s):
            return RunSet(records, None, seed)

    context = TrainingContext(seed=0, training=Engine(), shaping_goal=goal)  # type: ignore[arg-type]
    return check(FakeSubmission({SHAPING: shaping}), context)


def small_batches_only(scores, completions, prompts=None):
    """The red team's h02: the real shaping on batches of at most three, the score itself in training."""
    return REFERENCE(scores, completions, prompts) if len(scores) <= 3 else list(scores)


def test_a_right_shaping_passes():
    outcome = judged(REFERENCE, [recorded(REFERENCE)])
    assert outcome.fraction == 1.0, outcome.feedback
    assert "met its goal with each case placed among one of them" in outcome.feedback


def test_rewards_other_than_trainings_for_the_same_batch_fail():
    outcome = judged(REFERENCE, [recorded(REFERENCE, tamper=True)])
    assert outcome.fraction == 0.0 and outcome.tags == ["training:shaping_differs"]
    assert "did not give the rewards training got" in outcome.feedback


def test_a_shaping_that_meets_its_goal_only_on_small_batches_fails_among_trainings():
    outcome = judged(small_batches_only, [recorded(small_batches_only)])
    assert outcome.fraction == 0.0 and "training:goal_not_in_training" in outcome.tags
    assert "placed among a batch the shaped run gave it (16 completions" in outcome.feedback


def test_nothing_recorded_is_nothing_to_judge():
    outcome = judged(REFERENCE, [])
    assert outcome.fraction == 1.0 and "no call of your shaped_reward was recorded" in outcome.feedback


def test_a_case_goes_among_a_recorded_batch_and_only_its_rows_come_back():
    seen = []

    def spy(scores, completions, prompts=None):
        seen.append((list(scores), list(completions), prompts))
        return [10.0 * s for s in scores]

    among = AmongTrainingBatches(FakeSubmission({SHAPING: spy}), [Batch(SCORES, COMPLETIONS, PROMPTS)])
    case = ([0.9, 0.1], [" case one.", " case two."])
    got = among.call(SHAPING, *case, ["ignored", "ignored"])
    assert got.value == [9.0, 1.0]
    scores, completions, prompts = seen[0]
    assert len(scores) == 16 and prompts == PROMPTS  # training's size and prompts
    assert sorted(c for c in completions if c.startswith(" case")) == [" case one.", " case two."]
    again = among.call(SHAPING, *case, None)
    assert seen[1] == seen[0]  # the same case, the same placement (hypothesis shrinks by re-running cases)
    assert again.value == got.value


def test_a_shaping_that_raises_on_trainings_batches_fails_instead_of_escaping():
    """Red team 22 (w3): raising on batches of 12 or more stopped the shaped run at its first call, so no call
    returned rewards and nothing was left to replay; the raise itself is the evidence."""
    raised = {
        "function": SHAPING,
        "index": 0,
        "args": [SCORES, COMPLETIONS, PROMPTS],
        "status": "error",
        "value": None,
        "message": "RuntimeError: not in training",
    }
    outcome = judged(REFERENCE, [raised])
    assert outcome.fraction == 0.0 and outcome.tags == ["training:shaping_differs"]
    assert "RuntimeError: not in training" in outcome.feedback
    cut_short = judged(REFERENCE, [{**raised, "status": "timeout", "message": "took too long"}])
    assert cut_short.fraction == 1.0  # the machine's doing: no evidence


def test_a_shaping_that_fails_only_trainings_first_call_fails_and_a_replay_the_machine_cut_short_is_skipped():
    from grader.contract import CallOutcome

    def judged_gated(shaping):
        records = {
            "shaped": replace(LEARNED, run="shaped", ok=False, history=[], gated=True, component=SHAPING)
        }

        class Engine:
            def run_set(self, submission, seed, budget_s):
                return RunSet(records, None, seed)

        context = TrainingContext(seed=0, training=Engine(), shaping_goal="repetition")  # type: ignore[arg-type]
        return check(FakeSubmission({SHAPING: shaping}), context)

    def nan_on_preflight(scores, completions, prompts=None):
        if completions == [" was fine.", " was a wonderful, moving film."]:
            return [float("nan"), float("nan")]
        return REFERENCE(scores, completions, prompts)

    caught = judged_gated(nan_on_preflight)
    assert caught.fraction == 0.0 and "failed the one call training starts with" in caught.feedback
    assert judged_gated(REFERENCE).feedback.startswith("Not run:")

    class SlowReplay(FakeSubmission):
        def call(self, function, *args, **kwargs):
            if list(args[1]) == COMPLETIONS:  # the replay of the recorded batch, unchanged
                return CallOutcome("timeout", message="ran past the per-call time limit")
            return super().call(function, *args, **kwargs)

    records = {"shaped": replace(LEARNED, run="shaped", calls=[recorded(REFERENCE)])}

    class Engine:
        def run_set(self, submission, seed, budget_s):
            return RunSet(records, None, seed)

    context = TrainingContext(seed=0, training=Engine(), shaping_goal="repetition")  # type: ignore[arg-type]
    assert check(SlowReplay({SHAPING: REFERENCE}), context).fraction == 1.0


@pytest.mark.xfail(
    strict=True,
    reason="known gap (stop 21, red team 22's w1): the grader's rows carry made-up scores, training's carry the "
    "scorer's, and VADER is importable in the sandbox; closing it needs goal cases scored by the scorer itself",
)
def test_a_shaping_that_checks_its_scores_against_the_scorer_is_caught():
    """The identity wherever a row's score is VADER's score of its text (every training row on the tiny preset),
    the real shaping on the rows the grader places. Strict: when a fix catches it, this test says so."""
    from exercise.sentiment import VaderScorer

    vader = VaderScorer()

    def scorer_checked(scores, completions, prompts=None):
        real = REFERENCE(scores, completions, prompts)
        truth = vader(completions)
        return [s if abs(s - t) < 1e-12 else r for s, t, r in zip(scores, truth, real, strict=True)]

    scores = vader(COMPLETIONS)
    call = {
        "function": SHAPING,
        "index": 0,
        "args": [scores, COMPLETIONS, PROMPTS],
        "status": "ok",
        "value": scorer_checked(scores, COMPLETIONS, PROMPTS),
        "message": "",
    }
    assert call["value"] == scores  # in training it is the identity
    assert judged(scorer_checked, [call]).fraction == 0.0
