"""The terminal report: a rich table with each check, its points, and the first failure explained."""

from __future__ import annotations

from rich.console import Console, Group
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from grader.grading.feedback import LEVELS, level_line
from grader.grading.results import GradingResults, TestResult

_FIRST_LINE_CHARS = 110


def _mark(test: TestResult) -> Text:
    if not test.gradable:
        # The machine kept it from being judged: no points lost, left out of the maximum.
        return Text("n/a", style="bold cyan")
    if test.internal_error:
        return Text("ERROR", style="bold magenta")
    if test.advisory:
        return Text(
            "advice" if test.advisory_failed else "ok", style="yellow" if test.advisory_failed else "green"
        )
    if test.passed:
        return Text("pass", style="green")
    if test.withheld:
        # It passed on its own; a check it requires failed (the row's text says which): not the student's
        # failure on this check, so not "FAIL".
        return Text("held", style="yellow")
    return Text("partial" if test.score > 0 else "FAIL", style="yellow" if test.score > 0 else "bold red")


def _summary(text: str) -> str:
    line = next((s.strip() for s in text.splitlines() if s.strip() and not s.startswith("Tested:")), "")
    return line if len(line) <= _FIRST_LINE_CHARS else line[: _FIRST_LINE_CHARS - 1] + "…"


def render(results: GradingResults, console: Console | None = None, explain_all: bool = False) -> None:
    """Print the table, the first failure's full explanation (every failure's with ``explain_all``), the score."""
    console = console or Console(highlight=False)
    table = Table(title="Grading report", show_lines=False, expand=False)
    table.add_column("", no_wrap=True)
    table.add_column("check")
    table.add_column("points", justify="right", no_wrap=True)
    table.add_column("what went wrong", overflow="fold")
    for test in results.tests:
        points = (
            "advice"
            if test.advisory
            else f"not gradable ({test.points_not_graded:g})"
            if not test.gradable
            else f"{test.score:g} / {test.max_score:g}"
        )
        table.add_row(
            _mark(test), escape(test.name), points, "" if test.passed else escape(_summary(test.output))
        )
    if results.tests:
        console.print(table)
    failures = [t for t in results.tests if not t.passed and t.gradable]
    for test in results.not_gradable[:1] if not explain_all else results.not_gradable:
        console.print(
            Panel(
                Text(test.output),
                title=escape(f"Not gradable: {test.name}"),
                title_align="left",
                border_style="cyan",
            )
        )
    for test in failures if explain_all else failures[:1]:
        title = (
            f"{'Advice' if test.advisory else 'First failure' if not explain_all else 'Failure'}: {test.name}"
        )
        console.print(Panel(Text(test.output), title=escape(title), title_align="left", border_style="red"))
    if len(failures) > 1 and not explain_all:
        console.print(
            f"{len(failures) - 1} more checks did not pass; results.json has every explanation "
            "(or run with --explain-all)."
        )
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
