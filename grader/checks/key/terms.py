"""The contract's per-token terms, and the value the contract fixes for each completion (with its tolerance).

forward (KL(pi || pi_ref)): log pi - log pi_ref (k1). backward (KL(pi_ref || pi)): 1 - r with r = pi_ref / pi,
free above r = MAX_EXACT_RATIO (a clip at or above 10 is allowed) and allowed to clip the log-ratio from below at
or below -10 (which moves the term by at most e^-10). docs/design.md derives both.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from grader.checks.kl_base import LOWER_CLIP_ALLOWANCE, VALUE_RTOL, rounding_scale
from grader.checks.strategies import MAX_EXACT_RATIO
from grader.contract import FORWARD


def forward_term(lp: float, lr: float) -> float:
    return lp - lr


def backward_term(lp: float, lr: float) -> float:
    return 1.0 - math.exp(lr - lp)


def contract_value(
    function: str, row_pi: Sequence[float], row_ref: Sequence[float], kl_coef: float
) -> tuple[float, float] | None:
    """The penalty the contract fixes for one row, and the tolerance it is compared with; None where the contract
    leaves it free (backward, a ratio pi_ref/pi above MAX_EXACT_RATIO in the row: the ratio may be clipped)."""
    n = len(row_pi)
    if n == 0:
        return 0.0, 1e-12
    pairs = list(zip(row_pi, row_ref, strict=True))
    if function == FORWARD:
        terms = [forward_term(lp, lr) for lp, lr in pairs]
        allowance = 0.0
    elif any(lr - lp > math.log(MAX_EXACT_RATIO) for lp, lr in pairs):
        return None
    else:
        terms = [backward_term(lp, lr) for lp, lr in pairs]
        allowance = LOWER_CLIP_ALLOWANCE * abs(kl_coef)
    want = kl_coef * math.fsum(terms) / n
    scale = math.fsum(rounding_scale(function, lp, lr) for lp, lr in pairs) / n
    return want, 1e-12 + VALUE_RTOL * abs(kl_coef) * scale + allowance


def clipped_row_bound(
    row_pi: Sequence[float], row_ref: Sequence[float], kl_coef: float
) -> tuple[float, float]:
    """Backward, a row with a ratio above MAX_EXACT_RATIO (where :func:`contract_value` fixes no value): the
    contract still bounds it. Every token at or below the ratio is exact, and above it a clip keeps the term at
    most 1 - MAX_EXACT_RATIO, so the row's penalty is at most ``kl_coef`` x the mean of the terms with every ratio
    counted at min(r, MAX_EXACT_RATIO) (at least, for a negative ``kl_coef``); with its tolerance."""
    cap = math.log(MAX_EXACT_RATIO)
    pairs = list(zip(row_pi, row_ref, strict=True))
    terms = [backward_term(lp, min(lr, lp + cap)) for lp, lr in pairs]
    scale = math.fsum(rounding_scale("backward", lp, min(lr, lp + cap)) for lp, lr in pairs) / len(pairs)
    tolerance = 1e-12 + VALUE_RTOL * abs(kl_coef) * scale + LOWER_CLIP_ALLOWANCE * abs(kl_coef)
    return kl_coef * math.fsum(terms) / len(pairs), tolerance


def beyond_clip_bound(
    got: float, row_pi: Sequence[float], row_ref: Sequence[float], kl_coef: float
) -> tuple[float, float] | None:
    """(bound, tolerance) when ``got`` breaks :func:`clipped_row_bound` (or is not finite), else None."""
    bound, tol = clipped_row_bound(row_pi, row_ref, kl_coef)
    if math.isfinite(got) and (got <= bound + tol if kl_coef >= 0 else got >= bound - tol):
        return None
    return bound, tol
