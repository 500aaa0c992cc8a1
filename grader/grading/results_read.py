"""Reading a ``results.json`` payload back (ours, or one another grader version wrote): :func:`validate_results`
says whether its score and checks can be read (batch gradebooks, the Gradescope and Classroom reporters use it
alone), and the lenient readers :meth:`GradingResults.from_dict <grader.grading.results.GradingResults.from_dict>`
uses for the per-check extras.

Separate from :mod:`grader.grading.results` because it reads files from anywhere (edited, truncated, written by
an older grader) and must refuse or skip what is malformed, while that module makes and writes results.
"""

from __future__ import annotations

import math
from typing import Any


def validate_results(data: Any) -> tuple[float, list[dict[str, Any]]]:
    """Check a ``results.json`` payload enough to read its score and checks (batch gradebooks, the Gradescope
    and Classroom reporters); return ``(score, tests)`` or raise ``ValueError`` saying what is wrong. The score
    is the file's own ``score`` when it has one, else the sum of its tests'."""
    if not isinstance(data, dict):
        raise ValueError("results.json is not a JSON object")
    score = data.get("score")
    tests = data.get("tests", [])
    if not isinstance(tests, list):
        raise ValueError("results.json: 'tests' is not a list")
    clean = []
    for test in tests:
        if not isinstance(test, dict) or not isinstance(test.get("name"), str):
            raise ValueError("results.json: a test has no name")
        for key in ("score", "max_score"):
            value = test.get(key, 0.0)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"results.json: test {test['name']!r} has an invalid {key}")
        clean.append(test)
    if score is None:
        score = sum(float(t.get("score", 0.0)) for t in clean)
    if isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score):
        raise ValueError("results.json: 'score' is not a finite number")
    return float(score), clean


def _points(value: Any) -> float:
    ok = (
        isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0
    )
    return float(value) if ok else 0.0


def _leaderboard(value: Any) -> list[dict[str, Any]]:
    """Leaderboard entries read back: only well-formed ones (a name, a finite number, asc or desc)."""
    if not isinstance(value, list):
        return []
    return [
        {"name": e["name"], "value": float(e["value"]), "order": e.get("order", "desc")}
        for e in value
        if isinstance(e, dict)
        and isinstance(e.get("name"), str)
        and isinstance(e.get("value"), (int, float))
        and not isinstance(e.get("value"), bool)
        and math.isfinite(e["value"])
        and e.get("order", "desc") in ("asc", "desc")
    ]
