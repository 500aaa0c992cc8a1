"""Mutants of the reference solution, one per catalogued misconception (the wrong implementations live in
``grader.checks.misconceptions``): each must lose points in the check that should catch it, and that check's feedback
must name the misconception, explain it, and show a counterexample."""

from __future__ import annotations

import pytest

from grader.checks import REGISTRY
from grader.checks import misconceptions as M
from grader.contract import BACKWARD, FORWARD, SHAPING, CheckContext
from tests.support.fake_submission import FakeSubmission, reference_module

CONTEXT = CheckContext(seed=0, max_examples=100)

# (misconception id, function, variant index) -> the checks that must fail and name it
EXPECTED: dict[tuple[str, str, int], tuple[str, ...]] = {
    ("swapped_direction", FORWARD, 0): ("kl_forward.direction", "kl_forward.expected_value"),
    ("swapped_direction", BACKWARD, 0): ("kl_backward.direction",),
    ("sum_not_mean", FORWARD, 0): ("kl_forward.mean_over_tokens",),
    ("sum_not_mean", BACKWARD, 0): ("kl_backward.mean_over_tokens",),
    ("value_estimator_r_log_r", FORWARD, 0): ("kl_forward.direction",),
    ("value_estimator_r_log_r", BACKWARD, 0): ("kl_backward.direction",),
    ("value_estimator_r_log_r_minus_r_plus_1", FORWARD, 0): ("kl_forward.direction",),
    ("value_estimator_r_log_r_minus_r_plus_1", BACKWARD, 0): ("kl_backward.direction",),
    ("value_estimator_k3", FORWARD, 0): ("kl_forward.direction",),
    ("value_estimator_k3", BACKWARD, 0): ("kl_backward.direction",),
    ("inverted_ratio", BACKWARD, 0): ("kl_backward.direction", "kl_backward.nonnegative_in_expectation"),
    ("wrong_sign", FORWARD, 0): ("kl_forward.direction", "kl_forward.nonnegative_in_expectation"),
    ("wrong_sign", BACKWARD, 0): ("kl_backward.direction",),
    ("coef_ignored", FORWARD, 0): ("kl_forward.linear_in_coef",),
    ("coef_ignored", BACKWARD, 0): ("kl_backward.linear_in_coef",),
    ("coef_squared", FORWARD, 0): ("kl_forward.linear_in_coef",),
    ("coef_squared", BACKWARD, 0): ("kl_backward.linear_in_coef",),
    ("biased_k2", FORWARD, 0): ("kl_forward.direction",),
    ("biased_k2", BACKWARD, 0): ("kl_backward.direction",),
    ("biased_abs", FORWARD, 0): ("kl_forward.direction",),
    ("biased_abs", BACKWARD, 0): ("kl_backward.direction",),
    ("probabilities_not_logs", FORWARD, 0): ("kl_forward.direction", "kl_forward.contract"),
    ("probabilities_not_logs", FORWARD, 1): ("kl_forward.direction",),
    ("probabilities_not_logs", BACKWARD, 0): ("kl_backward.direction",),
    ("batch_dependent", FORWARD, 0): ("kl_forward.batch_independent",),
    ("batch_dependent", FORWARD, 1): ("kl_forward.batch_independent",),
    ("batch_dependent", FORWARD, 2): ("kl_forward.batch_independent",),
    ("batch_dependent", BACKWARD, 0): ("kl_backward.batch_independent",),
    ("batch_dependent", BACKWARD, 1): ("kl_backward.batch_independent",),
    ("batch_dependent", BACKWARD, 2): ("kl_backward.batch_independent",),
    ("sequence_ratio", BACKWARD, 0): ("kl_backward.mean_over_tokens",),
    ("clip_too_tight", BACKWARD, 0): ("kl_backward.direction",),
    ("clip_too_tight", BACKWARD, 1): ("kl_backward.direction",),
    ("overflow", BACKWARD, 0): ("kl_backward.finite_extreme",),
    ("empty_row", FORWARD, 0): ("kl_forward.contract",),
    ("empty_row", BACKWARD, 0): ("kl_backward.contract",),
    ("per_token_output", FORWARD, 0): ("kl_forward.contract",),
    ("per_token_output", BACKWARD, 0): ("kl_backward.contract",),
    ("mutates_inputs", FORWARD, 0): ("kl_forward.contract",),
    ("mutates_inputs", BACKWARD, 0): ("kl_backward.contract",),
    ("mutates_inputs", SHAPING, 0): ("shaping.no_mutation",),
    ("nondeterministic", FORWARD, 0): ("kl_forward.direction",),
    ("nondeterministic", SHAPING, 0): ("shaping.deterministic",),
    ("shaping_not_monotone", SHAPING, 0): ("shaping.monotone_in_score",),
    ("shaping_ignores_score", SHAPING, 0): ("shaping.monotone_in_score",),
    ("shaping_requires_prompts", SHAPING, 0): ("shaping.prompts_none",),
    ("shaping_empty_completion", SHAPING, 0): ("shaping.empty_completions", "shaping.contract"),
    ("shaping_non_finite", SHAPING, 0): ("shaping.contract",),
    ("shaping_rewards_repetition", SHAPING, 0): ("shaping.repetition",),
}

CASES = [(mid, fn, variant, check) for (mid, fn, variant), checks in EXPECTED.items() for check in checks]


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


def _mutant(misconception_id: str, function: str, variant: int) -> FakeSubmission:
    ref = reference_module()
    functions = {name: getattr(ref, name) for name in (FORWARD, BACKWARD, SHAPING)}
    functions[function] = M.get(misconception_id).implementations[function][variant]
    return FakeSubmission(functions)


@pytest.mark.parametrize(
    ("misconception_id", "function", "variant", "check_id"),
    CASES,
    ids=[f"{m}-{f.split('_')[-1]}{v}-{c}" for m, f, v, c in CASES],
)
def test_mutant_loses_points_and_is_named(misconception_id, function, variant, check_id):
    outcome = REGISTRY[check_id](_mutant(misconception_id, function, variant), CONTEXT)
    assert outcome.fraction < 1.0
    assert outcome.misconception == misconception_id, outcome.feedback
    misconception = M.get(misconception_id)
    assert f"[{misconception_id}]" in outcome.feedback
    assert misconception.title in outcome.feedback
    # the explanation is there (wrapped: compare without line breaks)
    assert " ".join(misconception.explain(function).split()[:8]) in " ".join(outcome.feedback.split())
    assert outcome.counterexample and outcome.counterexample in outcome.feedback
    assert outcome.feedback.startswith("Tested: ")


def test_direction_feedback_reports_cosine_and_counterexample():
    outcome = REGISTRY["kl_backward.direction"](_mutant("value_estimator_r_log_r", BACKWARD, 0), CONTEXT)
    assert "cosine(g, target) = -" in outcome.feedback
    assert "AWAY from the reference" in outcome.feedback
    for name in ("pi", "pi_ref", "kl_coef", "log_probs_policy", "log_probs_ref"):
        assert f"  {name}" in outcome.counterexample


def test_clipping_range_is_reported():
    outcome = REGISTRY["kl_backward.direction"](_mutant("clip_too_tight", BACKWARD, 1), CONTEXT)
    assert "clipped from below at 0.8 and from above at 1.2" in " ".join(outcome.feedback.split())
