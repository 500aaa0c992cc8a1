"""The diagnosis: which catalogued misconception a submission's KL function reproduces (fixed probes, a ratio
sweep for clipping), and whether a function is deterministic."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from grader.checks import answer_key, recorded
from grader.checks.misconceptions.catalogue import CATALOGUE, Misconception
from grader.contract import BACKWARD, Submission

# ---------------------------------------------------------------------------------------------------------------
# Diagnosis
# ---------------------------------------------------------------------------------------------------------------

#: Probe batch for the KL penalties: ragged rows, every log-prob strictly negative (some wrong implementations
#: divide by them), every ratio pi_ref/pi within [0.1, 5] (so any legitimate clipping at >= 10 is inactive),
#: one token with pi == pi_ref, and a coefficient far from 1 (so a missing or doubled coefficient shows).
PROBE_POLICY = [[-0.5], [-2.0, -0.3], [-1.2, -4.0, -0.7], [-2.5, -1.0]]
PROBE_REF = [[-1.5], [-0.4, -2.6], [-1.2, -3.1, -0.9], [-1.0, -2.9]]
PROBE_COEF = 0.3


@dataclass(frozen=True)
class Diagnosis:
    misconception: Misconception
    detail: str = ""
    #: the wrong implementation that reproduced the submission's probe output (None for recognised symptoms)
    implementation: Callable[..., Any] | None = None

    @property
    def id(self) -> str:
        return self.misconception.id

    def render(self, function: str | None = None) -> str:
        return self.misconception.render(function, self.detail)


def all_close(got: Sequence[float], want: Sequence[float], rtol: float = 1e-3, atol: float = 1e-6) -> bool:
    return len(got) == len(want) and all(
        math.isfinite(g) and math.isfinite(w) and abs(g - w) <= atol + rtol * abs(w)
        for g, w in zip(got, want, strict=True)
    )


def _expected(impl: Callable[..., Any], *args: Any) -> list[float] | None:
    try:
        return [float(v) for v in impl(*args)]
    except Exception:
        return None


def match_outputs(function: str, probe_output: Sequence[float]) -> Diagnosis | None:
    """The first catalogued misconception whose wrong implementation reproduces ``probe_output`` (the output of
    ``function`` on the probe batch), compared with its recorded output (:mod:`grader.checks.recorded`). The
    implementation comes along where this grader has the answer key (None in a handout)."""
    outputs = recorded.probe_outputs()
    for m in CATALOGUE.values():
        if not m.detected_by_probes:
            continue
        impls = m.implementations.get(function, ())
        for i, want in enumerate(outputs.get(m.id, {}).get(function, ())):
            if all_close(probe_output, want):
                return Diagnosis(m, implementation=impls[i] if i < len(impls) else None)
    return None


def diagnose_kl(submission: Submission, function: str) -> Diagnosis | None:
    """Run ``function`` of the submission on fixed probes and name what it does wrong, if it is catalogued:
    non-determinism (the same probe twice gives different outputs), a wrong implementation reproduced exactly,
    or (backward, instructor's grader only) a ratio clipped too tightly. Costs two to three calls; a failed call means no diagnosis."""
    first = submission.call(function, PROBE_POLICY, PROBE_REF, PROBE_COEF)
    if not first.ok or first.value is None:
        return None
    second = submission.call(function, PROBE_POLICY, PROBE_REF, PROBE_COEF)
    if second.ok and second.value is not None and not _same(first.value, second.value):
        return Diagnosis(CATALOGUE["nondeterministic"], "the same probe batch gave different penalties twice")
    found = match_outputs(function, first.value)
    if found is not None:
        return found
    tokens = sum(len(row) for row in PROBE_POLICY)
    if len(first.value) == tokens:
        per_token = CATALOGUE["per_token_output"]
        return Diagnosis(per_token, implementation=per_token.implementations[function][0])
    if function == BACKWARD and answer_key.available():
        return answer_key.clipping_diagnosis(submission)
    return None


def _same(a: Sequence[float], b: Sequence[float]) -> bool:
    return len(a) == len(b) and all(
        x == y or (math.isnan(x) and math.isnan(y)) for x, y in zip(a, b, strict=True)
    )


def is_nondeterministic(submission: Submission, function: str, *args: Any) -> bool:
    """Whether two identical calls give different outputs."""
    first = submission.call(function, *args)
    second = submission.call(function, *args)
    return bool(
        first.ok
        and second.ok
        and first.value is not None
        and second.value is not None
        and not _same(first.value, second.value)
    )
