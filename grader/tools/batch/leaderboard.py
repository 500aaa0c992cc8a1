"""The class leaderboard of the tuning challenge (``challenge.outcome``), per preset, from the batch's rows.

Each grade's challenge check carries Gradescope leaderboard entries in its ``extra_data.leaderboard`` (read back
with the grader's own reader, :meth:`GradingResults.from_dict`): ``sentiment (tiny)``, ``reference perplexity
(tiny)``, ``distinct-2 (tiny)``. The name's parenthesis is the training preset: a gpt2 run (a GPU) and a tiny run
are not comparable, so each preset gets its own board. A board ranks by the challenge check's share of points (the
grader's verdict on the run: positive and sensible), then by each number in the order the grader
lists them (sentiment first), each its own way (``order``: desc ranks larger first, asc smaller first). A
submission without entries (no challenge check in its grade, or the run failed before it ended) is not ranked: it
is listed under ``no_run`` with the reason, so nobody disappears from the board silently.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from grader.grading.results import GradingResults, TestResult
from grader.tools.batch.config import Graded

#: The rubric's check ids of the challenge start so (the grader makes its run only for such a check).
CHALLENGE_PREFIX = "challenge."
#: The numbers the chart plots (the names the challenge check gives them, before the preset).
SENTIMENT = "sentiment"
PERPLEXITY = "reference perplexity"
_PRESET = re.compile(r"^(?P<metric>.+?) \((?P<preset>[^()]+)\)$")


@dataclass
class Standing:
    """One submission on a preset's board."""

    submission: str
    rank: int
    score: float | None  # the challenge check's points (None: it had none to give)
    max_score: float | None
    share: float | None  # the challenge check's share of its points (None: it had none to give)
    values: dict[str, float]  # metric (without the preset) -> value


@dataclass
class Board:
    preset: str
    metrics: list[tuple[str, str]]  # (metric, order), in the grader's order
    standings: list[Standing] = field(default_factory=list)


@dataclass
class NoRun:
    submission: str
    why: str


@dataclass
class Leaderboard:
    boards: list[Board] = field(default_factory=list)
    no_run: list[NoRun] = field(default_factory=list)

    def __bool__(self) -> bool:
        """Anything to show: a batch without the challenge (``--no-training``, a rubric without it) has none."""
        return bool(self.boards or self.no_run)

    def to_json(self) -> dict[str, Any]:
        return {
            "presets": [
                {
                    "preset": b.preset,
                    "metrics": [{"name": m, "order": o} for m, o in b.metrics],
                    "standings": [asdict(s) for s in b.standings],
                }
                for b in self.boards
            ],
            "no_run": [asdict(n) for n in self.no_run],
        }


def split_name(name: str) -> tuple[str, str]:
    """``(metric, preset)`` of an entry name such as ``sentiment (tiny)``; preset "" where the name has none."""
    match = _PRESET.match(name)
    return (match["metric"], match["preset"]) if match else (name, "")


def _challenge_tests(row: Graded) -> list[TestResult]:
    try:
        tests = GradingResults.from_dict({"tests": row.tests}).tests
    except ValueError:  # a results.json the batch could read but not type: no leaderboard, never a crash
        return []
    return [t for t in tests if t.leaderboard or t.check_id.startswith(CHALLENGE_PREFIX)]


def row_entries(row: Graded) -> dict[str, float]:
    """A row's leaderboard entries, ``{name: value}`` (the gradebook's leaderboard columns)."""
    return {e["name"]: float(e["value"]) for t in _challenge_tests(row) for e in t.leaderboard}


def _why_no_run(row: Graded, challenge: list[TestResult]) -> str:
    if not challenge:
        if row.error or row.reason:
            return f"not graded normally ({row.reason or 'see the gradebook'})"
        return "no challenge check in this grade"
    test = challenge[0]
    if not test.gradable:
        return "not gradable on this machine (grade again, e.g. with --resume)"
    lines = [line.strip() for line in test.output.splitlines() if line.strip()]
    first = lines[0] if lines else "the run did not finish"
    return first if len(first) <= 160 else first[:159] + "\u2026"


def _sort_key(standing: Standing, metrics: Sequence[tuple[str, str]]) -> tuple[float, ...]:
    share = (
        standing.score / standing.max_score
        if standing.score is not None and standing.max_score
        else -math.inf  # no points to compare: after every scored run
    )
    key = [-share]
    for metric, order in metrics:
        value = standing.values.get(metric)
        key.append(math.inf if value is None else (-value if order == "desc" else value))
    return tuple(key)


def build_leaderboard(rows: Sequence[Graded]) -> Leaderboard:
    """The boards (one per preset, first seen first) and the submissions with no run, in the rows' order."""
    boards: dict[str, Board] = {}
    no_run: list[NoRun] = []
    any_challenge = False
    for row in rows:
        challenge = _challenge_tests(row)
        any_challenge = any_challenge or bool(challenge)
        per_preset: dict[str, dict[str, float]] = {}
        test = next((t for t in challenge if t.leaderboard), None)
        for entry in test.leaderboard if test else ():
            metric, preset = split_name(entry["name"])
            board = boards.setdefault(preset, Board(preset, []))
            if metric not in (m for m, _ in board.metrics):
                board.metrics.append((metric, entry["order"]))
            per_preset.setdefault(preset, {})[metric] = float(entry["value"])
        if test is None:
            no_run.append(NoRun(row.name, _why_no_run(row, challenge)))
            continue
        gradable = test.gradable and (test.max_score > 0)
        for preset, values in per_preset.items():
            share = test.score / test.max_score if gradable else None
            boards[preset].standings.append(
                Standing(
                    row.name,
                    0,
                    test.score if gradable else None,
                    test.max_score if gradable else None,
                    share,
                    values,
                )
            )
    for board in boards.values():
        board.standings.sort(key=lambda s, b=board: _sort_key(s, b.metrics))
        previous: tuple[float, ...] | None = None
        for place, standing in enumerate(board.standings, start=1):
            key = _sort_key(standing, board.metrics)
            standing.rank = board.standings[place - 2].rank if key == previous else place  # ties share a rank
            previous = key
    if not any_challenge:
        return Leaderboard()
    return Leaderboard(list(boards.values()), no_run)
