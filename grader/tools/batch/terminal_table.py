"""The batch's summary on the terminal: pass rates per check, the top of each leaderboard, the score line."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from grader.grading.sanitise import clean_text
from grader.tools.batch.config import Graded
from grader.tools.batch.gradebook import number_text
from grader.tools.batch.summary import (
    Summary,
)
from grader.tools.batch.summary_md import _percent, _value

#: The terminal shows the top of each board (summary.md has all of it).
TERMINAL_BOARD = 10


def print_summary(summary: Summary, rows: Sequence[Graded], console: Any) -> None:
    from rich.markup import escape
    from rich.table import Table

    def text(value: str) -> str:  # shown as it is: no escape sequences, no rich markup
        return escape(clean_text(str(value)))

    table = Table(title="Pass rate per check", title_justify="left")
    ungraded = any(c.not_gradable for c in summary.checks)
    columns = (
        ("check", "left"),
        ("points", "right"),
        ("passed", "right"),
        ("rate", "right"),
        ("held", "right"),
        *((("not gradable", "right"),) if ungraded else ()),
    )
    for title, justify in columns:
        table.add_column(title, justify=justify)
    for c in summary.checks:
        table.add_row(
            text(c.name),
            number_text(c.max_score),
            f"{c.passed}/{c.graded}",
            _percent(c.pass_rate),
            str(c.withheld),
            *((str(c.not_gradable),) if ungraded else ()),
        )
    console.print(table)
    if summary.misconceptions:
        table = Table(title="Misconceptions recognised", title_justify="left")
        table.add_column("misconception")
        table.add_column("submissions", justify="right")
        table.add_column("seen in")
        for mid, count, where in summary.misconceptions:
            table.add_row(text(mid), str(count), text(", ".join(where)))
        console.print(table)
    for board in summary.leaderboard.boards:
        table = Table(
            title=f"Challenge leaderboard ({text(board.preset or 'preset not named')})", title_justify="left"
        )
        for title in ("rank", "submission", "challenge", *(metric for metric, _ in board.metrics)):
            table.add_column(text(title), justify="left" if title == "submission" else "right")
        for s in board.standings[:TERMINAL_BOARD]:
            met = "n/a" if s.share is None else f"{s.share:.0%}"
            table.add_row(
                str(s.rank), text(s.submission), met, *(_value(s.values.get(m)) for m, _ in board.metrics)
            )
        console.print(table)
        if len(board.standings) > TERMINAL_BOARD:
            console.print(f"... {len(board.standings) - TERMINAL_BOARD} more in summary.md")
    if summary.leaderboard.no_run:
        console.print(
            text(
                f"Challenge, no run: {', '.join(n.submission for n in summary.leaderboard.no_run)} (summary.md says why)"
            )
        )
    problems = [row for row in rows if row.error or row.reason]
    if problems:
        table = Table(title="Submissions with problems (scored 0 unless the grader reported otherwise)")
        table.add_column("submission")
        table.add_column("reason")
        table.add_column("details")
        for row in problems:
            table.add_row(text(row.name), text(row.reason), text(row.error))
        console.print(table)
    if summary.regrade:
        console.print(
            text(
                f"Not gradable on this machine (no points lost; grade again, e.g. with --resume): "
                f"{', '.join(summary.regrade)}"
            )
        )
    for note in summary.notes:
        console.print(text(note))
    total = f" of {number_text(summary.max_score)}" if summary.max_score is not None else ""
    console.print(
        f"{summary.submissions} submissions in {summary.seconds:.1f} s: mean {summary.mean_score:.2f}{total}, "
        f"full marks {summary.full_marks}, problems {summary.errors}"
    )
