"""Issue 8's table: the cheapest wrong code (tests/gaming_submissions.py) must earn little, whatever shape of
batch it is graded on. Scored as the grader scores: every check of the shipped rubric run on the submission
(in process), then the rubric's gates. The training checks are assumed to PASS (the worst case for the grader:
a short run that cannot tell the wrong code from the right one), so what keeps their points away is the gates.
"""

from __future__ import annotations

import functools

import pytest

from grader.checks import REGISTRY
from grader.contract import CheckContext
from grader.grading.results import TestResult
from grader.grading.rubric import load_rubric
from grader.grading.runner import apply_gates, run_check
from tests.support.check_ids import CHALLENGE_IDS, TRAINING_IDS
from tests.support.fake_submission import FakeSubmission, reference_module
from tests.support.gaming_submissions import BACKWARD, FORWARD, GAMING, SHAPING

# Fewer examples than a grade (100): every gaming submission here fails its defining checks on the first few.
CONTEXT = CheckContext(seed=0, max_examples=30)
RUBRIC = load_rubric()


@functools.cache
def _property_results(name: str) -> tuple[TestResult, ...]:
    if name == "reference":
        ref = reference_module()
        functions = {n: getattr(ref, n) for n in (FORWARD, BACKWARD, SHAPING)}
    else:
        functions = GAMING[name]
    return tuple(
        run_check(entry, REGISTRY[entry.check_id], FakeSubmission(functions), CONTEXT)
        for entry in RUBRIC.selected(training=False)
    )


def graded(name: str, training: bool) -> dict[str, TestResult]:
    """check id -> gated result; with ``training``, every training check passes before the gates. The tuning
    challenge is left out: it grades where the student's configured run ends, not the functions (whichever it
    trains with), so no gate applies to it (tests/unit/test_challenge.py)."""
    tests = list(_property_results(name))
    if training:
        tests += [
            TestResult(e.name, e.points, e.points, "assumed to pass", check_id=e.check_id)
            for e in RUBRIC.entries
            if e.check_id in TRAINING_IDS
        ]
    entries = [e for e in RUBRIC.selected(training) if e.check_id not in CHALLENGE_IDS]
    return {t.check_id: t for t in apply_gates(entries, tests)}


def _points(results: dict[str, TestResult], prefix: str = "") -> tuple[float, float]:
    chosen = [t for cid, t in results.items() if cid.startswith(prefix)]
    return sum(t.score for t in chosen), sum(t.max_score for t in chosen)


@pytest.mark.parametrize("training", [False, True], ids=["no-training", "training"])
def test_the_reference_keeps_full_marks_through_the_gates(training):
    score, max_score = _points(graded("reference", training))
    assert score == max_score == (100 if training else 80)


@pytest.mark.parametrize("training", [False, True], ids=["no-training", "training"])
def test_zero_penalties_and_identity_shaping_earn_at_most_15_percent(training):
    score, max_score = _points(graded("zero penalties + identity shaping", training))
    assert max_score == (100 if training else 80)
    assert score <= 0.15 * max_score


@pytest.mark.parametrize("training", [False, True], ids=["no-training", "training"])
def test_k1_for_both_directions_keeps_at_most_30_percent_of_the_backward_points(training):
    results = graded("k1 for both directions", training)
    backward = {cid: t for cid, t in results.items() if cid.startswith("kl_backward.")}
    if training:
        backward["training.backward_kl"] = results["training.backward_kl"]
    score, max_score = _points(backward)
    assert score <= 0.3 * max_score
    # the forward function is right and keeps its points
    forward_score, forward_max = _points(results, "kl_forward.")
    assert forward_score == forward_max
    if training:
        assert results["training.forward_kl"].score == results["training.forward_kl"].max_score


@pytest.mark.parametrize("training", [False, True], ids=["no-training", "training"])
def test_a_batch_shape_detector_earns_at_most_half(training):
    """Right only when the batch is N one-token rows whose probabilities sum to 1 (the direction check's old
    batch), zeros otherwise: the checks hide those rows among unrelated ones, and the value checks pin every row."""
    results = graded("shape detector", training)
    score, max_score = _points(results)
    assert score <= 0.5 * max_score
    for cid in ("kl_forward.direction", "kl_backward.direction", "kl_forward.value", "kl_backward.value"):
        assert results[cid].score == 0, cid


def test_truncated_rows_lose_the_value_checks():
    """Right on the first 16 tokens of each row, tokens below -30 dropped: passes every check whose batches are
    short and mild, and nothing that depends on the value."""
    results = graded("first 16 tokens, below -30 dropped", training=False)
    for cid in ("kl_forward.value", "kl_backward.value"):
        assert results[cid].score == 0, cid
        assert "the contract fixes it at kl_coef * mean over its tokens" in results[cid].output
    score, max_score = _points(results, "kl_")
    assert score <= 0.5 * max_score


@pytest.mark.parametrize("training", [False, True], ids=["no-training", "training"])
def test_a_penalty_above_ratio_ten_loses_the_backward_points(training):
    """Exact where every ratio is <= 10, +50 per token above it (a sign change, not a clip): the value checks'
    clip property catches it, and the gate takes every other backward point and the backward training run."""
    results = graded("penalty above ratio 10", training)
    for cid in ("kl_backward.value", "kl_backward.value_random"):
        assert results[cid].score == 0, cid
        assert "[clip_flips_sign]" in results[cid].output, results[cid].output
    backward = {cid: t for cid, t in results.items() if cid.startswith(("kl_backward.", "training.backward"))}
    score, max_score = _points(backward)
    assert score <= 0.35 * max_score
    forward_score, forward_max = _points(results, "kl_forward.")
    assert forward_score == forward_max


def test_zero_penalties_on_the_tiny_presets_batches_lose_the_hidden_value_checks():
    """Zeros on '>= 8 rows, all <= 24 tokens, float32' (the tiny preset's batches): the hidden value checks draw
    batches of each preset's exact shape, so the detector fires there and both functions' points are gated."""
    results = graded("zero penalties on the tiny preset's batches", training=False)
    for cid in ("kl_forward.value_random", "kl_backward.value_random"):
        assert results[cid].score == 0, cid
    score, max_score = _points(results, "kl_")
    assert score <= 0.5 * max_score


def test_a_sign_flip_above_ratio_ten_inside_longer_rows_loses_the_backward_points():
    """Where the clip property's one-token rows never look: the hidden value check holds every backward row
    with a ratio above 10 to the clip's bound (kl_coef x mean of 1 - min(r, 10)), and its gate withholds every
    secondary backward point. The direction and the public value check (bounded batches) are right on all they
    test and keep theirs (13 of 32; the red-team submission kept 30)."""
    results = graded("sign flip above ratio 10 in longer rows", training=False)
    assert results["kl_backward.value_random"].score == 0
    assert "counted as 10" in results["kl_backward.value_random"].output
    backward = {cid: t for cid, t in results.items() if cid.startswith("kl_backward.")}
    kept = {cid for cid, t in backward.items() if t.score > 0}
    assert kept <= {"kl_backward.direction", "kl_backward.value"}, kept
    forward_score, forward_max = _points(results, "kl_forward.")
    assert forward_score == forward_max


@pytest.mark.parametrize("training", [False, True], ids=["no-training", "training"])
def test_zero_penalties_on_training_shaped_batches_earn_at_most_half(training):
    """Right unless the batch looks like training's (>= 8 rows, >= 64 tokens, float32-exact), then zeros: the
    value checks' batches include training-shaped float32 ones, public and hidden."""
    results = graded("zero penalties in training", training)
    for cid in (
        "kl_forward.value",
        "kl_backward.value",
        "kl_forward.value_random",
        "kl_backward.value_random",
    ):
        assert results[cid].score == 0, cid
    score, max_score = _points(results, "kl_")
    assert score <= 0.5 * max_score


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("shaping: full pay when the text ends with a full stop", "shaping_rewards_repetition"),
        ("shaping: full pay for five distinct words", "shaping_rewards_repetition"),
        ("shaping: near-identity repetition penalty", "changes nothing the policy learns"),
    ],
)
@pytest.mark.parametrize("training", [False, True], ids=["no-training", "training"])
def test_a_rule_that_is_no_repetition_penalty_earns_no_shaping_points(name, why, training):
    """Issue 17: rules that separated the old fixed fluent sentences from the old repeated units. The repetition
    check now generates both sides (same word count, same ending; cycles of five and more praise words), so
    neither rule tells them apart; every other shaping point is gated on it, and so is the shaped training run.
    Red team, stop 21: a penalty of a millionth of the score is strictly less, as the goal says, but worth nothing
    GRPO could learn from; the goal asks for a preference worth a score rise of 0.01 (or 1% of the reward). The
    other goals' near-identity versions: tests/unit/test_goals.py."""
    results = graded(name, training)
    assert results["shaping.goal"].score == 0
    assert why in results["shaping.goal"].output
    score, max_score = _points(results, "shaping.")
    assert score == 0 and max_score == 16
    if training:
        assert results["training.shaped"].score == 0
    kl_score, kl_max = _points(results, "kl_")
    assert kl_score == kl_max  # the KL penalties are the reference's


# --- Through the real sandbox (issue 17, item 4) ---------------------------------------------------------------

#: The checks that look for mutated inputs (each fails for code that changes its arguments in place).
MUTATION_CHECKS = ("kl_forward.contract", "kl_backward.contract", "shaping.no_mutation")


@pytest.mark.parametrize("rebinding", [False, True], ids=["mutates", "mutates and rebinds the worker"])
def test_rebinding_the_workers_helpers_does_not_hide_mutated_inputs(tmp_path, rebinding):
    """The worker binds its helpers before the submission is imported: rebinding ``__main__._mutated`` (and
    ``builtins.all``) changes nothing, the mutation checks fail either way (73/80 with --no-training)."""
    from pathlib import Path

    from grader.grading.runner import GradeRequest, grade
    from tests.support.gaming_submissions import MUTATES_AND_REBINDS_THE_WORKER

    source = (Path(__file__).parents[2] / "reference" / "rewards.py").read_text()
    if rebinding:
        source += MUTATES_AND_REBINDS_THE_WORKER
    else:  # the same mutation without the rebinding, as the control
        source += MUTATES_AND_REBINDS_THE_WORKER.split("_worker = ")[0]
    path = tmp_path / "rewards.py"
    path.write_text(source)
    results = grade(GradeRequest(path, training=False, only=MUTATION_CHECKS, max_examples=20))
    scores = {t.check_id: t.score for t in results.tests}
    assert set(scores) == set(MUTATION_CHECKS)
    assert all(score == 0 for score in scores.values()), {t.check_id: t.output for t in results.tests}
