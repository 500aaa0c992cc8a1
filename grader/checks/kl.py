"""Property checks of the two KL penalties (``kl_penalty_forward``, ``kl_penalty_backward``), by id.

Each check is made for one function by a factory and registered in :func:`checks` under its id, written out (the
rubric's, ``grader/grading/rubric.toml``), so that searching for an id finds its code. The factories, by concern:

* :mod:`grader.checks.kl_direction`: the defining property (the policy gradient the penalty induces) and the
  expectations under pi, exact by enumerating a small vocabulary;
* :mod:`grader.checks.kl_value`: the value the contract fixes for each completion, on recorded batches;
* :mod:`grader.checks.kl_properties`: the secondary properties (contract, zero when identical, linear in the
  coefficient, a mean over tokens, batch independence, finite on extreme inputs);
* :mod:`grader.checks.kl_base`: what they share (examples per check, output shape, tolerances, the feedback that
  names a misconception).

The mathematics is in docs/design.md ("The student contract"): per completion the penalty is ``kl_coef`` times the
mean over its tokens of a per-token term, and what defines the right term is the policy gradient it induces when
subtracted from a reward. The hidden checks (``<kl>.value_random``) are the answer key's
(:mod:`grader.checks.key.checks`).
"""

from __future__ import annotations

from grader.checks.kl_direction import direction, expected_value, nonnegative_in_expectation
from grader.checks.kl_properties import (
    batch_independent,
    contract,
    finite_extreme,
    linear_in_coef,
    mean_over_tokens,
    zero_when_identical,
)
from grader.checks.kl_value import value
from grader.contract import BACKWARD, FORWARD, CheckFunction

__all__ = ["checks", "value"]


def checks() -> dict[str, CheckFunction]:
    """The KL checks by id, in report order."""
    return {
        "kl_forward.contract": contract(FORWARD),
        "kl_forward.zero_when_identical": zero_when_identical(FORWARD),
        "kl_forward.nonnegative_in_expectation": nonnegative_in_expectation(FORWARD),
        "kl_forward.direction": direction(FORWARD),
        "kl_forward.expected_value": expected_value(FORWARD),
        "kl_forward.value": value(FORWARD),
        "kl_forward.linear_in_coef": linear_in_coef(FORWARD),
        "kl_forward.mean_over_tokens": mean_over_tokens(FORWARD),
        "kl_forward.batch_independent": batch_independent(FORWARD),
        "kl_forward.finite_extreme": finite_extreme(FORWARD),
        "kl_backward.contract": contract(BACKWARD),
        "kl_backward.zero_when_identical": zero_when_identical(BACKWARD),
        "kl_backward.nonnegative_in_expectation": nonnegative_in_expectation(BACKWARD),
        "kl_backward.direction": direction(BACKWARD),
        "kl_backward.value": value(BACKWARD),
        "kl_backward.linear_in_coef": linear_in_coef(BACKWARD),
        "kl_backward.mean_over_tokens": mean_over_tokens(BACKWARD),
        "kl_backward.batch_independent": batch_independent(BACKWARD),
        "kl_backward.finite_extreme": finite_extreme(BACKWARD),
    }
