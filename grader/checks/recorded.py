"""Numbers in place of formulas: what the public grader knows of the answer key.

A student's copy of the grader has no answer key (:mod:`grader.checks.answer_key`), so it cannot compute the
penalties' right values. It checks them against values the instructor's grader recorded
(``grader/checks/recorded.json``, written by ``python -m grader.tools record``):

* ``value``: for each KL penalty, the right value and tolerance of every row of the fixed batches of
  :func:`grader.checks.strategies.fixed_value_batches` (null where the contract leaves a row's value free);
* ``probes``: each catalogued wrong implementation's output on the diagnosis probe batch
  (:mod:`grader.checks.misconceptions.diagnose`).

The batches themselves are regenerated here from their seed, and the file keeps their fingerprint: should a Python
ever draw different batches, the grade says "not gradable" instead of comparing a student's numbers with the
wrong ones.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from grader.checks import strategies as S
from grader.contract import BACKWARD, FORWARD

RECORDED_FILE = Path(__file__).with_name("recorded.json")


class RecordingError(RuntimeError):
    """The recorded values are missing or do not belong to this grader's batches (the grader's fault)."""


@dataclass(frozen=True)
class ValueCase:
    """A fixed batch and, per row, the value the contract fixes and its tolerance (None: free, finite only)."""

    batch: S.LogProbBatch
    expected: tuple[tuple[float, float] | None, ...]


def value_batches(function: str) -> list[S.LogProbBatch]:
    """The fixed batches of ``function``'s public value check (backward: every ratio <= 10)."""
    return S.fixed_value_batches(function_bounded=function == BACKWARD)


def fingerprint(batches: list[S.LogProbBatch]) -> str:
    """A digest of the batches' exact numbers (bit patterns, not text)."""
    digest = hashlib.sha256()
    for batch in batches:
        digest.update(struct.pack("<d", batch.kl_coef))
        for row_pi, row_ref in zip(batch.policy, batch.ref, strict=True):
            digest.update(struct.pack(f"<I{len(row_pi)}d{len(row_ref)}d", len(row_pi), *row_pi, *row_ref))
    return digest.hexdigest()


@cache
def _load() -> dict[str, Any]:
    try:
        return json.loads(RECORDED_FILE.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RecordingError(
            f"the grader's recorded values ({RECORDED_FILE.name}) cannot be read ({exc}); reinstall the grader, "
            "or ask your instructor"
        ) from exc


def value_cases(function: str) -> list[ValueCase]:
    """``function``'s fixed batches with their recorded values. Raises :class:`RecordingError` when the file is
    missing or was recorded for other batches."""
    batches = value_batches(function)
    recorded = _load().get("value", {}).get(function)
    if not isinstance(recorded, dict) or recorded.get("fingerprint") != fingerprint(batches):
        raise RecordingError(
            f"the recorded values of {function} do not match the batches this Python draws: the value check "
            "cannot be graded here (not your fault; tell your instructor which Python version you use)"
        )
    return [
        ValueCase(batch, tuple(None if row is None else (float(row[0]), float(row[1])) for row in rows))
        for batch, rows in zip(batches, recorded["rows"], strict=True)
    ]


def probe_outputs() -> dict[str, dict[str, list[list[float]]]]:
    """Misconception id -> function -> the recorded probe outputs of its wrong implementations ({} if absent)."""
    try:
        return _load().get("probes", {})
    except RecordingError:
        return {}


FUNCTIONS = (FORWARD, BACKWARD)
