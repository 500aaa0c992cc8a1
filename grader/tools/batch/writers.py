"""What a batch writes: the gradebook (:mod:`~grader.tools.batch.gradebook`), the Markdown summary
(:mod:`~grader.tools.batch.summary_md`), the charts (:mod:`~grader.tools.batch.charts`) and the terminal table
(:mod:`~grader.tools.batch.terminal_table`), each in its own module; their public names are re-exported here."""

from __future__ import annotations

from grader.tools.batch.charts import (
    LEADERBOARD_CHART,
    leaderboard_chart,
    misconception_chart,
    misconception_title,
    write_charts,
)
from grader.tools.batch.gradebook import (
    FORMULA_STARTS,
    LEADERBOARD_COLUMN,
    NOT_GRADABLE,
    formula_safe,
    number_text,
    write_gradebook,
)
from grader.tools.batch.summary_md import leaderboard_md, write_summary_md
from grader.tools.batch.terminal_table import TERMINAL_BOARD, print_summary

__all__ = [
    "FORMULA_STARTS",
    "LEADERBOARD_CHART",
    "LEADERBOARD_COLUMN",
    "NOT_GRADABLE",
    "TERMINAL_BOARD",
    "formula_safe",
    "leaderboard_chart",
    "leaderboard_md",
    "misconception_chart",
    "misconception_title",
    "number_text",
    "print_summary",
    "write_charts",
    "write_gradebook",
    "write_summary_md",
]
