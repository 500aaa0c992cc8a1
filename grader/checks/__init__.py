"""The grader's checks, by id. Each is a :class:`grader.contract.CheckFunction`: ``check(submission, context)``
returns a :class:`grader.contract.CheckOutcome`; the rubric (``grader/grading/rubric.toml``) gives each id its name, points
and visibility."""

from __future__ import annotations

from grader.checks import kl, shaping
from grader.checks.training import checks as training_checks
from grader.contract import CheckFunction

REGISTRY: dict[str, CheckFunction] = {**kl.checks(), **shaping.checks(), **training_checks.checks()}

__all__ = ["REGISTRY"]
