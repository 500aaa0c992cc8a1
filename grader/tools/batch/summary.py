"""Per-check pass rates (withheld checks counted apart) and misconception counts over a class.

A check that was not gradable in a grade (``extra_data.gradable: false``: the machine, not the submission, kept it
from being judged; see :mod:`grader.grading.results`) has no verdict there: it counts neither as passed nor as
failed, nor in the mean points, and is counted in its own column; the submissions with such checks are listed
for a regrade (``--resume`` grades them again: their grader exited with status 3). The tuning challenge's class
leaderboard comes with the summary (:mod:`grader.tools.batch.leaderboard`).
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from grader.grading.results import TAG_WITHHELD
from grader.tools.batch.config import EPS, Graded
from grader.tools.batch.leaderboard import Leaderboard, build_leaderboard

# ---------------------------------------------------------------------------------------------------------------
# Summarising
# ---------------------------------------------------------------------------------------------------------------


def misconceptions_of(test: dict[str, Any]) -> list[str]:
    """Misconception ids a test names: a ``misconception`` key (string or list; at the top of the test or in its
    ``extra_data``) and/or tags ``misconception:ID``. Anything else there is ignored."""
    found: list[str] = []
    extra = test.get("extra_data")
    for value in (test.get("misconception"), extra.get("misconception") if isinstance(extra, dict) else None):
        if isinstance(value, str) and value.strip():
            found.append(value.strip())
        elif isinstance(value, list):
            found.extend(v.strip() for v in value if isinstance(v, str) and v.strip())
    tags = test.get("tags")
    if isinstance(tags, list):
        for tag in tags:
            if isinstance(tag, str) and tag.startswith("misconception:") and tag.split(":", 1)[1].strip():
                found.append(tag.split(":", 1)[1].strip())
    return list(dict.fromkeys(found))


def not_gradable_points(test: dict[str, Any]) -> float | None:
    """The points a check that was not gradable is worth (left out of its ``max_score``); None when it was
    judged."""
    extra = test.get("extra_data")
    if not isinstance(extra, dict) or extra.get("gradable") is not False:
        return None
    points = extra.get("points_not_graded", 0.0)
    return float(points) if isinstance(points, int | float) and not isinstance(points, bool) else 0.0


def row_points_not_graded(tests: Sequence[dict[str, Any]]) -> float | None:
    """The points of a grade's checks that were not gradable; None when every check was judged."""
    points = [p for p in map(not_gradable_points, tests) if p is not None]
    return math.fsum(points) if points else None


def test_passed(test: dict[str, Any]) -> bool | None:
    """Full points on a check; for a 0-point (advisory) check, its ``status`` if it has one, else unknown; unknown
    for a check that was not gradable."""
    if not_gradable_points(test) is not None:
        return None
    status = test.get("status")
    max_score = float(test.get("max_score", 0.0))
    if max_score > 0:
        return float(test.get("score", 0.0)) >= max_score - EPS
    if status in ("passed", "failed"):
        return status == "passed"
    return None


def check_columns(rows: Sequence[Graded]) -> list[str]:
    """Check names in rubric order: the longest test list first (a complete report), then any others."""
    columns: list[str] = []
    for row in sorted(rows, key=lambda r: -len(r.tests)):
        for test in row.tests:
            if test["name"] not in columns:
                columns.append(test["name"])
    return columns


def expected_max_score(rows: Sequence[Graded]) -> float | None:
    maxima = Counter(row.max_score for row in rows if row.max_score is not None and row.tests)
    return maxima.most_common(1)[0][0] if maxima else None


@dataclass
class CheckStats:
    name: str
    max_score: float
    graded: int  # submissions with a verdict on this check
    passed: int
    mean_points: float
    withheld: int = 0  # passed on its own, points withheld by a gate (counted as not passed)
    not_gradable: int = 0  # grades where the machine kept it from being judged (no verdict: not in `graded`)

    @property
    def pass_rate(self) -> float | None:
        return self.passed / self.graded if self.graded else None


@dataclass
class Summary:
    submissions: int
    graded: int  # graded normally (no error)
    errors: int
    max_score: float | None
    mean_score: float
    median_score: float
    full_marks: int
    checks: list[CheckStats]
    misconceptions: list[tuple[str, int, list[str]]]  # id, submissions, checks where seen
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)  # how the batch ran (executor, shared baseline, resume)
    #: submissions with checks that were not gradable (no points lost: to be graded again, e.g. --resume)
    regrade: list[str] = field(default_factory=list)
    #: the tuning challenge's class leaderboard, per preset (empty when no grade had the challenge)
    leaderboard: Leaderboard = field(default_factory=Leaderboard)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["leaderboard"] = self.leaderboard.to_json()
        data["checks"] = [dict(asdict(c), pass_rate=c.pass_rate) for c in self.checks]
        data["misconceptions"] = [
            {"id": m, "submissions": n, "checks": checks} for m, n, checks in self.misconceptions
        ]
        return data


def summarise(rows: Sequence[Graded], seconds: float = 0.0) -> Summary:
    """Per-check pass rates (over every submission: one that could not be graded fails every check) and
    misconception counts (each submission counted once per misconception)."""
    columns = check_columns(rows)
    max_score = expected_max_score(rows)
    by_name: dict[str, list[dict[str, Any]]] = {name: [] for name in columns}
    maxima: dict[str, float] = {}
    for row in rows:
        for test in row.tests:
            by_name[test["name"]].append(test)
            # a check that was not gradable has max_score 0 there: its worth is in points_not_graded
            worth = max(float(test.get("max_score", 0.0)), not_gradable_points(test) or 0.0)
            maxima[test["name"]] = max(maxima.get(test["name"], 0.0), worth)
    checks = []
    for name in columns:
        verdicts = [test_passed(t) for t in by_name[name]]
        known = [v for v in verdicts if v is not None]
        missing = sum(1 for row in rows if not any(t["name"] == name for t in row.tests))
        if maxima[name] > 0:
            graded = len(known) + missing  # no report on this check: not passed
        else:
            graded = len(known)
        judged = [t for t in by_name[name] if not_gradable_points(t) is None]
        points = [float(t.get("score", 0.0)) for t in judged] + [0.0] * missing
        withheld = sum(1 for t in by_name[name] if TAG_WITHHELD in (t.get("tags") or ()))
        checks.append(
            CheckStats(
                name,
                maxima[name],
                graded,
                sum(known),
                statistics.fmean(points) if points else 0.0,
                withheld,
                len(by_name[name]) - len(judged),
            )
        )
    seen: dict[str, set[str]] = {}
    where: dict[str, list[str]] = {}
    for row in rows:
        for test in row.tests:
            for mid in misconceptions_of(test):
                seen.setdefault(mid, set()).add(row.name)
                where.setdefault(mid, [])
                if test["name"] not in where[mid]:
                    where[mid].append(test["name"])
    misconceptions = sorted(((m, len(s), where[m]) for m, s in seen.items()), key=lambda x: (-x[1], x[0]))
    scores = [row.score for row in rows]
    return Summary(
        submissions=len(rows),
        graded=sum(1 for row in rows if not row.error),
        errors=sum(1 for row in rows if row.error),
        max_score=max_score,
        mean_score=statistics.fmean(scores) if scores else 0.0,
        median_score=statistics.median(scores) if scores else 0.0,
        full_marks=sum(1 for r in rows if max_score and not r.error and r.score >= max_score - EPS),
        checks=checks,
        misconceptions=misconceptions,
        seconds=seconds,
        regrade=[row.name for row in rows if row_points_not_graded(row.tests) is not None],
        leaderboard=build_leaderboard(rows),
    )
