"""The one door to the answer key (:mod:`grader.checks.key`): present in the instructor's grader, absent in a
student handout (``grader/tools/handout.py`` leaves the package out and verifies that nothing left in computes or
states the penalties' per-token terms).

The public grader asks here for what only the key has: the catalogue's wrong implementations (for the mutant
tests and to confirm a diagnosis) and the hidden checks (graded in the instructor's grader only: batch,
Gradescope, Classroom and CI grading). Without the key both are empty, and the rubric's hidden checks are
reported as "graded when you submit" (:mod:`grader.grading.runner`).
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from functools import cache
from typing import Any

KEY_PACKAGE = "grader.checks.key"


@cache
def available() -> bool:
    """Whether this copy of the grader has the answer key."""
    try:
        return importlib.util.find_spec(KEY_PACKAGE) is not None
    except ImportError:  # grader.checks itself half-present: treat as no key
        return False


def wrong_implementations() -> dict[str, dict[str, tuple[Callable[..., Any], ...]]]:
    """Misconception id -> student function -> wrong implementations; {} without the key."""
    if not available():
        return {}
    return importlib.import_module(f"{KEY_PACKAGE}.wrong").IMPLEMENTATIONS


def hidden_checks() -> dict[str, Any]:
    """The hidden checks by id (:class:`grader.contract.CheckFunction`); {} without the key."""
    if not available():
        return {}
    return importlib.import_module(f"{KEY_PACKAGE}.checks").checks()


def clipping_diagnosis(submission: Any) -> Any:
    """The key's diagnosis of a backward ratio clipped too tightly (a Diagnosis or None); None without the key."""
    if not available():
        return None
    return importlib.import_module(f"{KEY_PACKAGE}.clipping").clipping_diagnosis(submission)
