"""A function that fails on every input is told so (issue 17), with its exception: hypothesis shrinks such a
failure to the smallest input it can reach, often an empty one, which used to be blamed ("empty completion not
handled"). A function that fails only on empty input still gets that diagnosis."""

from __future__ import annotations

import pytest

from grader.checks import REGISTRY
from grader.contract import BACKWARD, FORWARD, SHAPING, CheckContext
from tests.support.check_ids import RUN_IDS
from tests.support.fake_submission import FakeSubmission, reference_module

CONTEXT = CheckContext(seed=0, max_examples=20)
SHAPING_IDS = sorted(
    cid for cid in REGISTRY if cid.startswith("shaping.") and cid not in RUN_IDS
)  # no runs here


def _raises(*args, **kwargs):
    raise ValueError("boom")


def _returns_none(*args, **kwargs):
    return None


def _submission(function: str, impl) -> FakeSubmission:
    ref = reference_module()
    return FakeSubmission({**{n: getattr(ref, n) for n in (FORWARD, BACKWARD, SHAPING)}, function: impl})


@pytest.mark.parametrize("check_id", SHAPING_IDS)
def test_a_shaping_that_raises_on_every_input_is_told_so_with_its_exception(check_id):
    outcome = REGISTRY[check_id](_submission(SHAPING, _raises), CONTEXT)
    assert outcome.fraction == 0.0
    assert (
        "Fails on every input: shaped_reward raised ValueError: boom on ordinary inputs too"
        in outcome.feedback
    )
    assert "fails-everywhere" in outcome.tags
    assert outcome.misconception is None
    assert "empty completion not handled" not in outcome.feedback


@pytest.mark.parametrize("check_id", ["kl_forward.contract", "kl_backward.contract", "kl_forward.direction"])
def test_a_kl_penalty_that_raises_on_every_input_is_told_so(check_id):
    function = FORWARD if check_id.startswith("kl_forward") else BACKWARD
    outcome = REGISTRY[check_id](_submission(function, _raises), CONTEXT)
    assert outcome.fraction == 0.0
    assert f"Fails on every input: {function} raised ValueError: boom" in outcome.feedback
    assert outcome.misconception is None and "empty_row" not in outcome.feedback


def test_returning_nothing_on_every_input_is_told_so_too():
    outcome = REGISTRY["shaping.contract"](_submission(SHAPING, _returns_none), CONTEXT)
    assert "Fails on every input: shaped_reward returned" in outcome.feedback


def _fails_on_wordless_text(scores, completions, prompts=None):
    return [s * len(set(c.split())) / len(c.split()) for s, c in zip(scores, completions, strict=True)]


def test_failing_only_on_empty_completions_keeps_its_own_diagnosis():
    outcome = REGISTRY["shaping.empty_completions"](_submission(SHAPING, _fails_on_wordless_text), CONTEXT)
    assert outcome.fraction == 0.0
    assert outcome.misconception == "shaping_empty_completion"
    assert "Fails on every input" not in outcome.feedback
