"""The grader's check ids as docs/design.md and the rubric fix them: one list for every test that needs it."""

from __future__ import annotations

KL_PROPERTIES = (
    "contract",
    "zero_when_identical",
    "nonnegative_in_expectation",
    "direction",
    "value",
    "linear_in_coef",
    "mean_over_tokens",
    "batch_independent",
    "finite_extreme",
)
SHAPING_PROPERTIES = (
    "contract",
    "deterministic",
    "no_mutation",
    "prompts_none",
    "empty_completions",
    "monotone_in_score",
    "goal",
)

PROPERTY_IDS = {
    *(f"{f}.{p}" for f in ("kl_forward", "kl_backward") for p in KL_PROPERTIES),
    "kl_forward.expected_value",
    *(f"shaping.{p}" for p in SHAPING_PROPERTIES),
}
#: The penalties' values on training's own batches (hidden, advisory, graded only where training runs)
IN_TRAINING_IDS = {"kl_forward.in_training", "kl_backward.in_training"}
#: The hidden checks (rubric: hidden = true), in the instructor's grader only: the answer key registers them.
HIDDEN_IDS = {"kl_forward.value_random", "kl_backward.value_random", *IN_TRAINING_IDS}
TRAINING_IDS = {"training.baseline", "training.forward_kl", "training.backward_kl", "training.shaped"}
#: The tuning challenge (a training run with the student's configuration; graded like the training checks, no gate)
CHALLENGE_IDS = {"challenge.outcome"}
#: The shaping's goal among training's own batches (public, advisory, graded only where training runs)
SHAPING_IN_TRAINING = "shaping.in_training"
#: Every check that needs a training run (what --no-training skips)
RUN_IDS = TRAINING_IDS | CHALLENGE_IDS | IN_TRAINING_IDS | {SHAPING_IN_TRAINING}
