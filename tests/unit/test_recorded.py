"""The public grader's recorded numbers (grader/checks/recorded.json): up to date with the answer key, tied to the
batches they were recorded for, and enough for the public value check and the probe diagnosis without the key."""

from __future__ import annotations

import json

import pytest

from grader.checks import answer_key, kl, recorded
from grader.checks.key import record
from grader.checks.misconceptions import PROBE_POLICY, diagnose
from grader.contract import BACKWARD, FORWARD, CheckContext
from tests.support.fake_submission import FakeSubmission, reference_module
from tests.support.mutants import mutant


def test_the_recording_is_up_to_date():
    assert recorded.RECORDED_FILE.read_text(encoding="utf-8") == record.render(), (
        "grader/checks/recorded.json is out of date: run `python -m grader.tools record` and commit it"
    )


def test_the_fixed_batches_include_training_shaped_float32_ones():
    for function in (FORWARD, BACKWARD):
        batches = recorded.value_batches(function)
        shaped = [
            b
            for b in batches
            if len(b.policy) >= 8
            and sum(map(len, b.policy)) >= 64
            and all(recorded.S.to_float32(x) == x for row in b.policy + b.ref for x in row)
        ]
        assert len(shaped) >= len(batches) // 4


def test_other_batches_than_recorded_are_not_gradable_not_failed(monkeypatch):
    data = json.loads(recorded.RECORDED_FILE.read_text(encoding="utf-8"))
    data["value"][FORWARD]["fingerprint"] = "0" * 64
    recorded._load.cache_clear()
    monkeypatch.setattr(recorded, "_load", lambda: data)
    with pytest.raises(recorded.RecordingError, match="not your fault"):
        recorded.value_cases(FORWARD)


@pytest.mark.parametrize("function", [FORWARD, BACKWARD])
def test_the_public_value_check_passes_the_reference(function):
    ref = reference_module()
    sub = FakeSubmission({function: getattr(ref, function)})
    outcome = kl.value(function)(sub, CheckContext())
    assert outcome.fraction == 1.0, outcome.feedback


def test_the_probe_diagnosis_works_from_numbers_alone(monkeypatch):
    """Without the key (a handout) a catalogued mistake is still named, from its recorded probe output."""
    sub = mutant("value_estimator_r_log_r", BACKWARD)
    monkeypatch.setattr(answer_key, "wrong_implementations", lambda: {})
    found = diagnose.diagnose_kl(sub, BACKWARD)
    assert found is not None and found.id == "value_estimator_r_log_r"
    assert found.implementation is None
    assert diagnose.match_outputs(BACKWARD, [0.0] * len(PROBE_POLICY)) is None
