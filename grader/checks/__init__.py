"""The grader's checks, by id. Each is a :class:`grader.contract.CheckFunction`: ``check(submission, context)``
returns a :class:`grader.contract.CheckOutcome`; the rubric (``grader/grading/rubric.toml``) gives each id its name, points
and visibility.

The hidden checks (the rubric's ``hidden = true``) come from the answer key (:mod:`grader.checks.answer_key`):
registered in the instructor's grader, absent from a student handout."""

from __future__ import annotations

from grader.checks import answer_key, challenge, kl, shaping, shaping_in_training
from grader.checks import training as training_checks
from grader.contract import CheckFunction

REGISTRY: dict[str, CheckFunction] = {
    **kl.checks(),
    **answer_key.hidden_checks(),
    **shaping.checks(),
    **training_checks.checks(),
    **challenge.checks(),
    **shaping_in_training.checks(),
}

__all__ = ["REGISTRY"]
