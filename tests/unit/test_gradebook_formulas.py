"""gradebook.csv against CSV injection (OWASP): a submission's name or an error message that starts like a
spreadsheet formula is written as text (a leading single quote), the numbers stay numbers."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from grader.tools.batch import Graded, write_gradebook
from grader.tools.batch.writers import formula_safe

TESTS = [{"name": "shaped_reward: contract", "score": 1.0, "max_score": 2.0}]


@pytest.mark.parametrize(
    "text", ['=HYPERLINK("http://x","y")', "+1+2", "-2+3", "@SUM(A1:A2)", "\tcmd", "\r=1+1"]
)
def test_a_formula_start_gets_a_single_quote(text: str) -> None:
    assert formula_safe(text) == "'" + text


@pytest.mark.parametrize("text", ["alice", "bob_smith", "1+1", "a=b", "", "'quoted", "grader error: -1"])
def test_other_text_is_unchanged(text: str) -> None:
    assert formula_safe(text) == text


def test_the_gradebook_escapes_names_and_errors_but_not_numbers(tmp_path: Path) -> None:
    rows = [
        Graded("=cmd|' /C calc'!A0", 1.0, 2.0, TESTS, error="@SUM(1+1)*cmd"),
        Graded("+alice", 2.0, 2.0, [dict(TESTS[0], score=2.0)], error="-5 points: not graded"),
        Graded("bob", 0.0, 2.0, [dict(TESTS[0], score=0.0)]),
    ]
    path = tmp_path / "gradebook.csv"
    write_gradebook(path, rows)
    with path.open(newline="", encoding="utf-8") as fh:
        book = list(csv.DictReader(fh))
    assert [r["submission"] for r in book] == ["'=cmd|' /C calc'!A0", "'+alice", "bob"]
    assert [r["error"] for r in book] == ["'@SUM(1+1)*cmd", "'-5 points: not graded", ""]
    assert [r["score"] for r in book] == ["1", "2", "0"]
    assert [r["shaped_reward: contract"] for r in book] == ["1", "2", "0"]
    for row in book:  # no cell a spreadsheet would evaluate
        assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row.values())
