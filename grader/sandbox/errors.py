"""The sandbox's own errors: it could not be set up (:class:`SandboxError`), or the submission file cannot be
graded at all (:class:`SubmissionFileError`)."""

from __future__ import annotations


class SandboxError(Exception):
    """The sandbox itself could not be set up (not the submission's fault)."""


class SubmissionFileError(SandboxError):
    """The submission file cannot be graded at all (unreadable, too large): the submission's problem."""
