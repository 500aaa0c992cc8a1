"""The hidden ``<kl>.in_training`` checks (grader/checks/key/in_training.py) and what feeds them: the training
lanes keep a few of the submission's calls as training made them (grader/training/lane.py ``_Proxy``), and the
check holds each answer to the contract. A penalty that is right on the grader's batches and wrong on
training's (red team, stop 21: zeros on the tiny preset's batches kept every property point) fails it, and the
rubric gates every point of that function on it. A real grade: tests/quality/test_gates_in_a_real_grade.py."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from exercise.errors import StudentCodeError
from grader.checks.key.in_training import in_training
from grader.checks.key.wrong import RIGHT
from grader.contract import BACKWARD, FORWARD, SHAPING, CallOutcome, TrainingContext
from grader.grading.rubric import load_rubric
from grader.training.engine import RunSet
from grader.training.lane import KEPT_CALLS, _Proxy
from tests.support.run_records import LEARNED

POLICY = [[-0.5, -1.2, -0.05], [-2.0], [-0.3, -0.9]]
REF = [[-0.7, -1.0, -0.06], [-1.5], [-0.35, -0.8]]
#: a backward row with a ratio pi_ref/pi of e^4 (about 55) beside exact tokens
CLIPPED = ([[-5.0, -0.4]], [[-1.0, -0.5]])


def call(function, value, *, status="ok", policy=POLICY, ref=REF, index=0, message=""):
    return {
        "function": function,
        "index": index,
        "args": [policy, ref, 0.3],
        "status": status,
        "value": value,
        "message": message,
    }


def judged(function, *calls):
    run_name = {FORWARD: "forward", BACKWARD: "backward"}[function]
    records = {run_name: replace(LEARNED, run=run_name, calls=list(calls))}

    class Engine:
        def run_set(self, submission, seed, budget_s):
            return RunSet(records, None, seed)

    return in_training(function)(None, TrainingContext(seed=0, training=Engine()))  # type: ignore[arg-type]


def right(function, policy=POLICY, ref=REF):
    return RIGHT[function](policy, ref, 0.3)


def test_the_contracts_penalties_in_training_pass():
    outcome = judged(FORWARD, call(FORWARD, right(FORWARD)), call(FORWARD, right(FORWARD), index=9))
    assert outcome.fraction == 1.0 and "The calls of your kl_penalty_forward recorded" in outcome.feedback
    backward = judged(BACKWARD, call(BACKWARD, right(BACKWARD)))
    assert backward.fraction == 1.0


def test_zeros_in_training_fail_and_say_where():
    outcome = judged(FORWARD, call(FORWARD, right(FORWARD)), call(FORWARD, [0.0, 0.0, 0.0], index=19))
    assert outcome.fraction == 0.0 and outcome.tags == ["training:values_differ"]
    assert "In the forward run's call 19" in outcome.feedback
    assert "completion 0 (3 tokens) got the penalty 0.0" in outcome.feedback
    assert "answered the grader's own batches as the contract says" in outcome.feedback


def test_a_clipped_backward_row_is_held_to_the_clips_bound():
    ok = right(BACKWARD, *CLIPPED)
    clipped = [0.3 * ((1 - 10.0) + (1 - math.exp(-0.1))) / 2]  # the ratio clipped at 10: allowed
    assert judged(BACKWARD, call(BACKWARD, ok, policy=CLIPPED[0], ref=CLIPPED[1])).fraction == 1.0
    assert judged(BACKWARD, call(BACKWARD, clipped, policy=CLIPPED[0], ref=CLIPPED[1])).fraction == 1.0
    flipped = judged(BACKWARD, call(BACKWARD, [0.3 * 50.0], policy=CLIPPED[0], ref=CLIPPED[1]))
    assert flipped.fraction == 0.0 and "beyond what a clip allows" in flipped.feedback


def test_a_call_that_raised_in_training_counts_and_one_the_machine_cut_short_does_not():
    raised = judged(FORWARD, call(FORWARD, None, status="error", message="ValueError: only in training"))
    assert raised.fraction == 0.0 and "ValueError: only in training" in raised.feedback
    for status in ("timeout", "crashed"):
        skipped = judged(FORWARD, call(FORWARD, None, status=status))
        assert (
            skipped.fraction == 1.0 and "no call of your kl_penalty_forward was recorded" in skipped.feedback
        )


def test_the_proxy_keeps_the_first_two_calls_and_others_drawn_unpredictably_as_made():
    answers = iter(range(1000))

    class Sandbox:
        def call(self, name, *args):
            return CallOutcome("ok", value=[float(next(answers))])

    proxy = _Proxy(Sandbox(), FORWARD)
    for _ in range(100):
        proxy([[-0.5]], [[-0.6]], 0.3)
    kept = [c["index"] for c in proxy.calls]
    assert kept[:2] == [0, 1] and len(kept) == KEPT_CALLS and kept == sorted(set(kept))
    first_drawn = kept[2]
    assert proxy.calls[2] == {
        "function": FORWARD,
        "index": first_drawn,
        "args": [[[-0.5]], [[-0.6]], 0.3],
        "status": "ok",
        "value": [float(first_drawn)],
        "message": "",
    }
    # drawn afresh by each proxy: no index is kept by every lane (code cannot aim at the calls nobody keeps)
    draws = set()
    for _ in range(20):
        other = _Proxy(Sandbox(), FORWARD)
        for _ in range(40):
            other([[-0.5]], [[-0.6]], 0.3)
        draws.add(tuple(c["index"] for c in other.calls[2:]))
    assert len(draws) > 10
    proxy.reset()
    assert proxy.calls == [] and proxy.made == 0 and proxy.seconds == 0.0


def test_a_call_that_failed_is_kept_whatever_the_draw():
    """It ends the run, and it is the evidence: a function that raises on training's batches (red team 22, w3)."""
    outcomes = iter([CallOutcome("ok", value=[0.0])] * 7 + [CallOutcome("error", message="RuntimeError: no")])

    class Sandbox:
        def call(self, name, *args):
            return next(outcomes)

    proxy = _Proxy(Sandbox(), SHAPING)
    for _ in range(7):
        proxy([0.5], ["text"], ["prompt"])
    with pytest.raises(StudentCodeError):
        proxy([0.5], ["text"], ["prompt"])
    assert proxy.calls[-1]["index"] == 7 and proxy.calls[-1]["status"] == "error"


def test_every_point_of_a_penalty_is_gated_on_its_values_in_training():
    rubric = load_rubric()
    for function in ("kl_forward", "kl_backward"):
        gate = f"{function}.in_training"
        entry = (
            rubric.entry(gate)
            if hasattr(rubric, "entry")
            else next(e for e in rubric.entries if e.check_id == gate)
        )
        assert entry.points == 0 and entry.advisory and entry.hidden and entry.requires_training
        gated = {e.check_id for e in rubric.entries if gate in e.requires}
        mine = {e.check_id for e in rubric.entries if e.check_id.startswith(f"{function}.")} - {gate}
        assert mine <= gated, mine - gated
        assert f"training.{function.split('_')[1]}_kl" in gated


def _gated(function, reason="it raised"):
    run_name = {FORWARD: "forward", BACKWARD: "backward"}[function]
    records = {run_name: replace(LEARNED, run=run_name, ok=False, history=[], gated=True, component=function)}

    class Engine:
        def run_set(self, submission, seed, budget_s):
            return RunSet(records, None, seed)

    return TrainingContext(seed=0, training=Engine())  # type: ignore[arg-type]


def test_a_penalty_that_fails_only_trainings_first_call_fails_and_the_machines_timeout_does_not():
    """A run not made because the function failed its pre-flight call left nothing to hold: asked again, a
    function that still fails it (a detector of that batch, a stub) fails this check, which gates every point;
    one the machine cut short, or that answers now, is not judged ("Not run")."""
    from tests.support.fake_submission import FakeSubmission

    def nan_on_preflight(log_probs_policy, log_probs_ref, kl_coef=0.1):
        if log_probs_policy == [[-2.0, -0.5], [-1.0]]:
            return [float("nan")] * len(log_probs_policy)
        return RIGHT[FORWARD](log_probs_policy, log_probs_ref, kl_coef)

    check = in_training(FORWARD)
    caught = check(FakeSubmission({FORWARD: nan_on_preflight}), _gated(FORWARD))
    assert caught.fraction == 0.0 and "failed the one call training starts with" in caught.feedback
    answers_now = check(FakeSubmission({FORWARD: RIGHT[FORWARD]}), _gated(FORWARD))
    assert answers_now.fraction == 1.0 and answers_now.feedback.startswith("Not run:")

    class TimesOut:
        def call(self, function, *args, **kwargs):
            return CallOutcome("timeout", message="ran past the per-call time limit")

    assert check(TimesOut(), _gated(FORWARD)).feedback.startswith("Not run:")
