"""The checks' numbers: whether returned values are finite or close to the expected ones, and how inputs and
outputs are shown in feedback (compact, rounded, long repetitions folded)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def finite(values: Sequence[float]) -> bool:
    return all(math.isfinite(v) for v in values)


def close(got: float, want: float, *, rtol: float = 1e-6, atol: float = 1e-9) -> bool:
    """``got`` within tolerance of ``want``; never true for nan or inf (unless both are the same infinity)."""
    if not (math.isfinite(got) and math.isfinite(want)):
        return got == want
    return abs(got - want) <= atol + rtol * abs(want)


def fmt(value: Any, digits: int = 6, max_items: int = 8) -> str:
    """Compact, rounded rendering of inputs and outputs for feedback."""
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(float(f"{value:.{digits}g}"))
    if isinstance(value, int):
        return repr(value)
    if isinstance(value, str):
        text = repr(value)
        return text if len(text) <= 90 else text[:80] + "...' (" + str(len(value)) + " characters)"
    if isinstance(value, (list, tuple)):
        items = list(value)
        for period in (1, 2, 3, 4):
            if (
                len(items) > max_items
                and len(items) % period == 0
                and items == items[:period] * (len(items) // period)
            ):
                return f"{fmt(items[:period], digits)} * {len(items) // period}"
        shown = ", ".join(fmt(v, digits) for v in items[:max_items])
        if len(items) > max_items:
            shown += f", ... ({len(items) - max_items} more)"
        return f"[{shown}]"
    return repr(value)


def fmt_args(**named: Any) -> str:
    width = max(len(k) for k in named)
    return "\n".join(f"  {k.ljust(width)} = {fmt(v)}" for k, v in named.items())
