"""The mutant table: every catalogued wrong implementation (grader/checks/key/wrong.py, the answer key), the checks that
must catch it, and the reference with that one function replaced. Used by the mutant tests and the feedback-level
tests."""

from __future__ import annotations

from grader.checks import misconceptions as M
from grader.contract import BACKWARD, FORWARD, SHAPING
from tests.support.fake_submission import FakeSubmission, reference_module

# (misconception id, function, variant index) -> the checks that must fail and name it
EXPECTED: dict[tuple[str, str, int], tuple[str, ...]] = {
    ("swapped_direction", FORWARD, 0): ("kl_forward.direction", "kl_forward.expected_value"),
    ("swapped_direction", BACKWARD, 0): ("kl_backward.direction",),
    ("sum_not_mean", FORWARD, 0): ("kl_forward.mean_over_tokens",),
    ("sum_not_mean", BACKWARD, 0): ("kl_backward.mean_over_tokens",),
    ("value_estimator_r_log_r", FORWARD, 0): ("kl_forward.direction",),
    ("value_estimator_r_log_r", BACKWARD, 0): ("kl_backward.direction",),
    ("value_estimator_neg_r_log_r", FORWARD, 0): ("kl_forward.direction",),
    ("value_estimator_neg_r_log_r", BACKWARD, 0): ("kl_backward.direction",),
    ("log_ratio_backward", BACKWARD, 0): ("kl_backward.direction",),
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
    ("clip_flips_sign", BACKWARD, 0): ("kl_backward.value", "kl_backward.value_random"),
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
    ("shaping_rewards_repetition", SHAPING, 0): ("shaping.goal",),
}

CASES = [(mid, fn, variant, check) for (mid, fn, variant), checks in EXPECTED.items() for check in checks]


def mutant(misconception_id: str, function: str, variant: int = 0) -> FakeSubmission:
    ref = reference_module()
    functions = {name: getattr(ref, name) for name in (FORWARD, BACKWARD, SHAPING)}
    functions[function] = M.get(misconception_id).implementations[function][variant]
    return FakeSubmission(functions)
