"""The terminal report: the checks, one line each, grouped by function (:mod:`grader.grading.terminal`); below
them the first failure explained in full and one line for each other failure; the summary and the score."""

from __future__ import annotations

from rich.console import Console, Group
from rich.markup import escape
from rich.panel import Panel
from rich.text import Text

from grader.checks.feedback import LEVELS, level_line
from grader.grading.results import GradingResults, TestResult
from grader.grading.terminal import (
    INDENT,
    NOTE_INDENT,
    brief_name,
    check_table,
    explained_failures,
    first_line,
    is_held,
    status,
)


def render(results: GradingResults, console: Console | None = None, explain_all: bool = False) -> None:
    """Print the checks (one line each, grouped by function), then below them the first failure's full
    explanation and one line for each other failure (every failure's full explanation with ``explain_all``),
    the summary and the score."""
    console = console or Console(highlight=False)
    if results.tests:
        console.print(check_table(results.tests, console.width))
    for test in results.not_gradable[:1] if not explain_all else results.not_gradable:
        console.print(
            Panel(
                Text(test.output),
                title=escape(f"Not gradable: {brief_name(test)}"),
                title_align="left",
                border_style="cyan",
            )
        )
    if explain_all:
        # Everything that lost points, the checks a function's note summarises included; not the held checks:
        # they passed, and their note says why their points are withheld.
        failures = [t for t in results.tests if not t.passed and t.gradable and not is_held(t)]
    else:
        failures = explained_failures(results.tests)
    for test in failures if explain_all else failures[:1]:
        kind = "Advice" if test.advisory else "Failure" if explain_all else "First failure"
        title = escape(f"{kind}: {brief_name(test)}")
        console.print(Panel(Text(test.output), title=title, title_align="left", border_style="red"))
    if len(failures) > 1 and not explain_all:
        console.print(f"{len(failures) - 1} more check{'s' if len(failures) > 2 else ''} did not pass:")
        for test in failures[1:]:
            console.print(_failure_line(test, console.width), no_wrap=True, overflow="ellipsis")
        console.print("results.json has every explanation (or run with --explain-all).")
    if results.output:
        console.print(Panel(Text(results.output), title="Summary", title_align="left", border_style="blue"))
    if results.feedback_level in LEVELS:
        console.print(Text(level_line(results.feedback_level), style="dim"))
    style = "bold green" if results.full_marks else "bold red" if results.internal_error else "bold yellow"
    verdict = (
        "full marks"
        if results.full_marks
        else "internal error"
        if results.internal_error
        else f"{results.points_not_graded:g} points not gradable on this machine: regrade"
        if results.not_gradable
        else "points lost"
    )
    console.print(
        Group(
            Text(
                f"Score: {results.score:g} / {results.max_score:g} ({verdict}), "
                f"{results.execution_time:.1f} s",
                style=style,
            )
        )
    )


def _failure_line(test: TestResult, width: int) -> Text:
    """``  FAIL    kl_penalty_backward: value: Problem: row 1 ...``, cut to one line at ``width``."""
    line = Text(" " * INDENT)
    line.append_text(status(test))
    line.append(" " * (NOTE_INDENT - len(line.plain)))
    line.append(f"{brief_name(test)}: ")
    line.append(first_line(test.output), style="dim")
    line.truncate(width, overflow="ellipsis")
    return line
