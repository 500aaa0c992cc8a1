"""Errors that stop a training run with one readable line instead of a traceback.

``python -m exercise.train`` prints ``str(error)`` of a :class:`PipelineError` and exits with status 1;
``exercise.train.run`` returns it in ``RunResult.error``. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class PipelineError(RuntimeError):
    """A run cannot continue, for a reason the user can act on (the message says how)."""


class ModelUnavailableError(PipelineError):
    """A model is neither reachable on the Hugging Face Hub nor in the local cache or on disk."""


class StudentCodeError(PipelineError):
    """A reward function (the student's or a grader's proxy) raised or returned something unusable."""

    def __init__(self, message: str, *, component: str):
        super().__init__(message)
        self.component = component


class NotImplementedYet(StudentCodeError):
    """A student function still raises ``NotImplementedError``."""
