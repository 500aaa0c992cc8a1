"""Why a gradebook row is what it is: the ``reason`` column, from what the grader wrote.

A short, fixed vocabulary a spreadsheet can filter on (a row may have several, joined by ``"; "``, some with the
functions concerned after a colon): ``syntax error`` · ``import error`` · ``crashed`` · ``timed out`` ·
``killed for memory`` · ``not implemented`` · ``not gradable`` · ``internal error`` · ``grader killed`` ·
``nothing to grade`` · ``lost on the cluster``. Empty: an ordinary grade, whatever its score (the check columns
say where points were lost).

Read from ``results.json`` as :mod:`grader.grading.results` writes it: the flags in ``extra_data``
(``internal_error``, ``gradable``), the tags the checks set (``not-implemented``, the time budget's
``budget:*``), and, where the grader states the cause only in words, the sentences :mod:`grader.grading.runner`
(an import that failed) and :mod:`grader.checks.harness` / :mod:`grader.sandbox` (a call that timed out, died or
ran out of memory) write; ``tests/integration/test_batch_reasons.py`` grades real submissions to keep these in
step. A grade "did not finish normally" (the progress bar's ``failed``) when it has a reason other than
``not implemented``: code that raises ``NotImplementedError`` ran, and failed, as the stub does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from grader.contract import STUDENT_FUNCTIONS, function_of_check
from grader.grading.budget import TAG_NOT_RUN, TAG_UNFINISHED

SYNTAX = "syntax error"
IMPORT = "import error"
CRASHED = "crashed"
TIMED_OUT = "timed out"
MEMORY = "killed for memory"
NOT_IMPLEMENTED = "not implemented"
NOT_GRADABLE = "not gradable"
INTERNAL = "internal error"
KILLED = "grader killed"  # SIGKILL from outside the grader (the kernel's OOM killer, a person)
NOTHING = "nothing to grade"
LOST = "lost on the cluster"

#: The check tag of a call that raised NotImplementedError (grader.checks.harness.failed).
TAG_NOT_IMPLEMENTED = "not-implemented"
#: grader.grading.runner._import_feedback: every check of a submission that could not be imported says so.
_IMPORT_FAILED = ("could not be imported", "did not finish importing", "crashed while being imported")
_SYNTAX_ERRORS = ("SyntaxError", "IndentationError", "TabError")
#: grader.checks.harness.CallFailed.describe and grader.sandbox.submission: a call's outcome in words.
_TIMEOUT = ("did not finish in time", "did not return within", "did not finish importing")
_MEMORY = ("of memory (the sandbox's limit",)
_DIED = ("process died", "crashed while being imported")


def join(*parts: str) -> str:
    """Reasons as one cell: each once, in the order given, empty ones left out."""
    seen = [p for part in parts for p in part.split("; ") if p]
    return "; ".join(dict.fromkeys(seen))


def abnormal(reason: str) -> bool:
    """Whether a row with this reason is a grade that did not finish normally (see the module docstring)."""
    return any(part and not part.startswith(NOT_IMPLEMENTED) for part in reason.split("; "))


def _extra(test: dict[str, Any]) -> dict[str, Any]:
    extra = test.get("extra_data")
    return extra if isinstance(extra, dict) else {}


def _function(test: dict[str, Any]) -> str:
    check_id = _extra(test).get("check_id")
    if isinstance(check_id, str) and check_id:
        return function_of_check(check_id)
    tags = test.get("tags") if isinstance(test.get("tags"), list) else []
    return next((t for t in tags if t in STUDENT_FUNCTIONS), "")


def _with_functions(label: str, functions: list[str]) -> str:
    """``label: f, g`` for the student functions concerned (and the training runs), as far as known."""
    named = [f for f in STUDENT_FUNCTIONS if f in functions]
    if len(named) == len(STUDENT_FUNCTIONS):
        named = ["every function"]
    named += ["training runs"] if "training" in functions else []
    return f"{label}: {', '.join(named)}" if named else label


def of_results(tests: Sequence[dict[str, Any]]) -> str:
    """The reason of a grade from its ``results.json`` tests (validated), or ""."""
    outputs = [str(t.get("output", "")) for t in tests]
    first = outputs[0] if outputs else ""
    internal = any(_extra(t).get("internal_error") is True for t in tests)
    ungraded = any(_extra(t).get("gradable") is False for t in tests)
    head = join(INTERNAL if internal else "", NOT_GRADABLE if ungraded else "")
    # An import that failed: the runner gives every check the same message, and nothing else ran.
    if any(marker in first for marker in _IMPORT_FAILED) and all(o == first for o in outputs):
        if any(f"{name}:" in first for name in _SYNTAX_ERRORS):
            cause = SYNTAX
        elif any(marker in first for marker in _MEMORY):
            cause = MEMORY
        elif any(marker in first for marker in _TIMEOUT):
            cause = TIMED_OUT
        elif any(marker in first for marker in _DIED):
            cause = CRASHED
        else:
            cause = IMPORT
        return join(head, cause)
    found: dict[str, list[str]] = {TIMED_OUT: [], MEMORY: [], CRASHED: [], NOT_IMPLEMENTED: []}
    for test, output in zip(tests, outputs, strict=True):
        tags = test.get("tags") if isinstance(test.get("tags"), list) else []
        function = _function(test)
        if any(marker in output for marker in _MEMORY):
            found[MEMORY].append(function)
        elif TAG_NOT_RUN in tags or TAG_UNFINISHED in tags or any(m in output for m in _TIMEOUT):
            found[TIMED_OUT].append(function)
        elif any(marker in output for marker in _DIED):
            found[CRASHED].append(function)
        if TAG_NOT_IMPLEMENTED in tags:
            found[NOT_IMPLEMENTED].append(function)
    return join(head, *(_with_functions(label, names) for label, names in found.items() if names))
