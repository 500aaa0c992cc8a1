"""Mutants of the reference solution, one per catalogued misconception (the wrong implementations live in
``grader.checks.misconceptions``): each must lose points in the check that should catch it, and that check's feedback
must name the misconception, explain it, and show a counterexample."""

from __future__ import annotations

import pytest

from grader.checks import REGISTRY
from grader.checks import misconceptions as M
from grader.contract import BACKWARD, CheckContext
from tests.support.mutants import CASES, EXPECTED, mutant

CONTEXT = CheckContext(seed=0)  # the shipped number of examples


def _variants() -> set[tuple[str, str, int]]:
    return {
        (m.id, fn, i)
        for m in M.CATALOGUE.values()
        for fn, impls in m.implementations.items()
        for i in range(len(impls))
    }


def test_every_catalogued_wrong_implementation_is_in_the_table():
    assert set(EXPECTED) == _variants()
    assert len({mid for mid, _, _ in EXPECTED}) >= 15


@pytest.mark.parametrize(
    ("misconception_id", "function", "variant", "check_id"),
    CASES,
    ids=[f"{m}-{f.split('_')[-1]}{v}-{c}" for m, f, v, c in CASES],
)
def test_mutant_loses_points_and_is_named(misconception_id, function, variant, check_id):
    outcome = REGISTRY[check_id](mutant(misconception_id, function, variant), CONTEXT)
    assert outcome.fraction < 1.0
    assert outcome.misconception == misconception_id, outcome.feedback
    misconception = M.get(misconception_id)
    assert f"[{misconception_id}]" in outcome.feedback
    assert misconception.title in outcome.feedback
    # the explanation is there (wrapped: compare without line breaks)
    assert " ".join(misconception.explain(function).split()[:8]) in " ".join(outcome.feedback.split())
    assert outcome.counterexample and outcome.counterexample in outcome.feedback
    assert outcome.feedback.startswith("Tested: ")


@pytest.mark.parametrize("seed", [1, 2])
def test_every_mutant_is_caught_and_named_on_other_seeds_too(seed):
    """The shipped number of examples is small (CheckContext.max_examples): a mutant caught on seed 0 by luck
    would slip through on the seeds a course grades with (the Gradescope build hides its own)."""
    context = CheckContext(seed=seed)
    missed = [
        (misconception_id, function, variant, check_id)
        for misconception_id, function, variant, check_id in CASES
        if REGISTRY[check_id](mutant(misconception_id, function, variant), context).misconception
        != misconception_id
    ]
    assert not missed


def test_direction_feedback_reports_cosine_and_counterexample():
    outcome = REGISTRY["kl_backward.direction"](mutant("value_estimator_r_log_r", BACKWARD, 0), CONTEXT)
    assert "cosine(g, target) = -" in outcome.feedback
    assert "AWAY from the reference" in outcome.feedback
    for name in ("pi", "pi_ref", "kl_coef", "log_probs_policy", "log_probs_ref"):
        assert f"  {name}" in outcome.counterexample


def test_clipping_range_is_reported():
    outcome = REGISTRY["kl_backward.direction"](mutant("clip_too_tight", BACKWARD, 1), CONTEXT)
    assert "clipped from below at 0.8 and from above at 1.2" in " ".join(outcome.feedback.split())
