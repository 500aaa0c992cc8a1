"""The batch's gradebook, ``gradebook.csv``: one row per submission, one column per check, its numbers written
exactly and every text cell safe from being read as a spreadsheet formula."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from grader.grading.sanitise import clean_text, clean_tree
from grader.tools.batch.config import Graded
from grader.tools.batch.leaderboard import row_entries
from grader.tools.batch.summary import (
    check_columns,
    expected_max_score,
    not_gradable_points,
    row_points_not_graded,
)

#: How a gradebook column of a leaderboard number starts (then the number's name, e.g. "sentiment (tiny)").
LEADERBOARD_COLUMN = "leaderboard: "
#: A gradebook cell of a check that was not gradable (no points lost; its points are not in max_score).
NOT_GRADABLE = "not gradable"


def number_text(value: float | None) -> str:
    if value is None:
        return ""
    value = float(value)
    return str(int(value)) if value.is_integer() else repr(value)


#: What makes a spreadsheet read a cell as a formula (OWASP, CSV injection): a submission's name or an error
#: message that starts with one of these would run as a formula when the gradebook is opened.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def formula_safe(text: str) -> str:
    """``text`` that a spreadsheet shows as text: a leading single quote where it would start a formula."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def write_gradebook(path: Path, rows: Sequence[Graded]) -> list[str]:
    """``gradebook.csv``; returns its header. The ``reason`` column says why a row is what it is when it is no
    ordinary grade (syntax error, not implemented, timed out ...: :mod:`grader.tools.batch.reasons`), the
    ``error`` column the details of a grade that could not be made normally. Text cells (names, reasons,
    errors) are :func:`formula_safe`; the numbers are written as numbers. A check that was not gradable in a grade reads ``not gradable`` in its cell (not 0:
    no points were lost), and when any grade had one, a ``not_gradable`` column before ``error`` holds the points
    left out of that row's ``max_score`` (empty: every check was judged); those rows are to be graded again.
    When any grade has tuning-challenge leaderboard numbers, one ``leaderboard: NAME`` column per number (its
    name carries the preset, so a gpt2 run never shares a column with a tiny one) follows the checks; empty where
    the submission has no run."""
    columns = check_columns(rows)
    fallback_max = expected_max_score(rows)
    left_out = [row_points_not_graded(row.tests) for row in rows]
    extra = ["not_gradable"] if any(p is not None for p in left_out) else []
    entries = [row_entries(row) for row in rows]
    board = list(dict.fromkeys(name for found in entries for name in found))  # first seen first
    header = [
        "submission",
        "score",
        "max_score",
        *columns,
        *(f"{LEADERBOARD_COLUMN}{name}" for name in board),
        *extra,
        "reason",
        "error",
    ]
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow([formula_safe(h) for h in clean_tree(header)])  # check names come from results.json
        for row, cut, found in zip(rows, left_out, entries, strict=True):
            points = {
                t["name"]: NOT_GRADABLE
                if not_gradable_points(t) is not None
                else number_text(float(t.get("score", 0.0)))
                for t in row.tests
            }
            max_score = row.max_score if row.max_score is not None else fallback_max
            label, reason, error = (
                formula_safe(clean_text(text)) for text in (row.name, row.reason, row.error)
            )
            writer.writerow(
                [label, number_text(row.score), number_text(max_score)]
                + [points.get(name, "0") for name in columns]
                + [number_text(found.get(name)) for name in board]  # empty: no run
                + ([number_text(cut)] if extra else [])
                + [reason, error]
            )
    return header
