"""The diagnosis of a backward penalty whose ratio is clipped too tightly (instructor's grader only: reading a
clip off the sweep needs the right per-token term)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from grader.checks.key import wrong as W
from grader.checks.misconceptions.catalogue import CATALOGUE
from grader.checks.misconceptions.diagnose import Diagnosis
from grader.contract import BACKWARD, Submission

#: Ratio sweep for the backward penalty's clipping (single-token rows, ratios from 0.05 to 9.9).
SWEEP_RATIOS = (0.05, 0.1, 0.2, 0.5, 0.8, 1.0, 1.2, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 9.9)
SWEEP_LOG_PI = -3.0
SWEEP_COEF = 0.5


def sweep_args() -> tuple[list[list[float]], list[list[float]], float]:
    return (
        [[SWEEP_LOG_PI] for _ in SWEEP_RATIOS],
        [[SWEEP_LOG_PI + math.log(r)] for r in SWEEP_RATIOS],
        SWEEP_COEF,
    )


def clipped_backward(low: float, high: float) -> W.KLImpl:
    """The backward penalty with its ratio clipped to [low, high]."""
    return W.per_token(lambda lp, lr: 1.0 - min(max(math.exp(min(lr - lp, 700.0)), low), high))


def match_clipping(sweep_output: Sequence[float]) -> Diagnosis | None:
    """Recognise, from the sweep, the backward penalty with its ratio clipped to a range narrower than [0, 10]."""
    if len(sweep_output) != len(SWEEP_RATIOS) or not all(math.isfinite(v) for v in sweep_output):
        return None
    implied = [
        1.0 - v / SWEEP_COEF for v in sweep_output
    ]  # the ratio the submission used, if its term is the contract's
    lo, hi = min(implied), max(implied)
    if not all(
        abs(got - min(max(r, lo), hi)) <= 1e-4 * max(1.0, r)
        for got, r in zip(implied, SWEEP_RATIOS, strict=True)
    ):
        return None
    clipped_above = hi < SWEEP_RATIOS[-1] * (1 - 1e-3)
    clipped_below = lo > SWEEP_RATIOS[0] * (1 + 1e-3)
    if not (clipped_above or clipped_below):
        return None
    parts = []
    if clipped_below:
        parts.append(f"from below at {lo:.3g}")
    if clipped_above:
        parts.append(f"from above at {hi:.3g}")
    return Diagnosis(
        CATALOGUE["clip_too_tight"], "your ratio is clipped " + " and ".join(parts), clipped_backward(lo, hi)
    )


def clipping_diagnosis(submission: Submission) -> Diagnosis | None:
    """Call the backward penalty on the sweep (one call) and recognise a clip narrower than [0, 10]."""
    sweep = submission.call(BACKWARD, *sweep_args())
    if sweep.ok and sweep.value is not None:
        return match_clipping(sweep.value)
    return None
