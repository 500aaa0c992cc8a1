"""The terminal report below the check table (grader/grading/report.py) on hand-made results: which explanations
are printed in full and under which title, the one-line list of the other failures, the summary, the feedback
level's line and the score line with its verdict and style. tests/unit/test_report_terminal.py renders the real
checks' results; these pin each rule, fast enough to be the mutation run's killer (tests/README.md, "Mutation
score").
"""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from grader.checks.feedback import level_line
from grader.grading import report
from grader.grading.report import _failure_line, render
from grader.grading.results import TAG_WITHHELD, GradingResults, TestResult

FWD = "kl_penalty_forward"


def _test(short: str, score: float = 0.0, most: float = 2.0, output: str = "", **kw) -> TestResult:
    return TestResult(f"{FWD}: {short} (a remark)", score, most, output, check_id=f"kl_forward.{short}", **kw)


def _machine(short: str, why: str) -> TestResult:
    return _test(short, most=0.0, output=why, gradable=False, points_not_graded=3.0)


class Recorder(Console):
    """A console that keeps what was printed (the objects, for their titles and styles)."""

    def __init__(self, width: int = 100) -> None:
        super().__init__(width=width, record=True, color_system=None, file=io.StringIO())
        self.printed: list[object] = []

    def print(self, *objects, **kwargs) -> None:  # noqa: A003 - the Console's own name
        self.printed.extend(objects)
        super().print(*objects, **kwargs)


def _render(results: GradingResults, explain_all: bool = False, width: int = 100) -> tuple[Recorder, str]:
    console = Recorder(width)
    if explain_all:
        render(results, console, explain_all=True)
    else:
        render(results, console)  # the default: not every explanation
    return console, console.export_text()


def _panels(console: Recorder) -> list[tuple[str, str, str]]:
    """(title, border style, body) of every panel printed (each titled on the left)."""
    panels = [p for p in console.printed if isinstance(p, Panel)]
    assert [p.title_align for p in panels] == ["left"] * len(panels)
    return [(str(p.title), str(p.border_style), p.renderable.plain) for p in panels]


def _score_line(console: Recorder) -> tuple[str, str]:
    line = console.printed[-1].renderables[0]
    return line.plain, str(line.style)


FAILED = [
    _test("one", output="Tested: one\nProblem: first wrong"),
    _test("two", output="Tested: two\nProblem: second wrong"),
    _test("three", score=1.0, output="Problem: third partly wrong"),
]


def test_the_first_failure_in_full_and_one_line_for_each_other() -> None:
    results = GradingResults([_test("ok", score=2.0), *FAILED], execution_time=12.34)
    console, text = _render(results)
    assert _panels(console) == [
        (f"First failure: {FWD}: one", "red", "Tested: one\nProblem: first wrong"),
    ]
    lines = text.splitlines()
    start = lines.index("2 more checks did not pass:")
    assert lines[start : start + 4] == [
        "2 more checks did not pass:",
        f"  FAIL     {FWD}: two: Problem: second wrong",
        f"  partial  {FWD}: three: Problem: third partly wrong",
        "results.json has every explanation (or run with --explain-all).",
    ]
    assert _score_line(console) == ("Score: 3 / 8 (points lost), 12.3 s", "bold yellow")


def test_two_failures_say_one_more_check() -> None:
    console, text = _render(GradingResults(FAILED[:2]))
    assert "1 more check did not pass:" in text.splitlines()
    _, single = _render(GradingResults(FAILED[:1]))
    assert "did not pass" not in single and "results.json has every explanation" not in single


def test_explain_all_prints_every_failure_in_full_but_not_the_held_checks() -> None:
    held = _test("held", output="Withheld: requires x.", tags=[TAG_WITHHELD])
    advice = TestResult("shaped_reward: goal", 0.0, 0.0, "Advice text", advisory=True, advisory_failed=True)
    not_run = _test("late", output="not run: the budget ran out")
    console, text = _render(GradingResults([*FAILED[:2], held, advice, not_run]), explain_all=True)
    assert _panels(console) == [
        (f"Failure: {FWD}: one", "red", "Tested: one\nProblem: first wrong"),
        (f"Failure: {FWD}: two", "red", "Tested: two\nProblem: second wrong"),
        ("Advice: shaped_reward: goal", "red", "Advice text"),
        (f"Failure: {FWD}: late", "red", "not run: the budget ran out"),
    ]
    assert "did not pass:" not in text and "results.json has every explanation" not in text
    # without it: the check not run is told in its function's note, not explained alone
    console, _ = _render(GradingResults([not_run, held]))
    assert _panels(console) == []


def test_the_not_gradable_checks_are_explained_first_one_unless_all() -> None:
    machine = [_machine("a", "no GPU here"), _machine("b", "too slow here")]
    console, _ = _render(GradingResults([*machine, FAILED[0]]))
    assert _panels(console) == [
        (f"Not gradable: {FWD}: a", "cyan", "no GPU here"),
        (f"First failure: {FWD}: one", "red", "Tested: one\nProblem: first wrong"),
    ]
    console, _ = _render(GradingResults(machine), explain_all=True)
    assert [title for title, _, _ in _panels(console)] == [
        f"Not gradable: {FWD}: a",
        f"Not gradable: {FWD}: b",
    ]
    assert _score_line(console) == (
        "Score: 0 / 0 (6 points not gradable on this machine: regrade), 0.0 s",
        "bold yellow",
    )


def test_titles_are_not_read_as_markup() -> None:
    test = TestResult("f: [bold]x[/bold]", 0.0, 1.0, "wrong", check_id="kl_forward.x")
    console, text = _render(GradingResults([test]))
    assert "First failure: f: [bold]x[/bold]" in text


def test_the_summary_and_the_feedback_level() -> None:
    results = GradingResults([_test("ok", score=2.0)], output="Graded in 3 s.", feedback_level="explain")
    console, text = _render(results)
    assert _panels(console) == [("Summary", "blue", "Graded in 3 s.")]
    levels = [p for p in console.printed if isinstance(p, Text) and p.plain == level_line("explain")]
    assert len(levels) == 1 and str(levels[0].style) == "dim"
    assert _score_line(console) == ("Score: 2 / 2 (full marks), 0.0 s", "bold green")
    console, text = _render(GradingResults([_test("ok", score=2.0)], feedback_level="custom"))
    assert "Feedback level" not in text and _panels(console) == []


def test_an_internal_error_is_said_in_the_score_line() -> None:
    results = GradingResults([_test("x", internal_error=True, output="grader bug")], internal_error=True)
    console, _ = _render(results)
    assert _score_line(console) == ("Score: 0 / 2 (internal error), 0.0 s", "bold red")


def test_the_check_table_comes_first() -> None:
    console, text = _render(GradingResults([_test("ok", score=2.0)]))
    assert text.splitlines()[:3] == [
        "Grading report",
        "kl_penalty_forward        2 / 2",
        "  pass     ok (a remark)  2 / 2",
    ]


def test_without_a_console_it_prints_to_a_new_one_that_highlights_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[dict] = []

    class Made(Recorder):
        def __init__(self, **kwargs) -> None:
            made.append(kwargs)
            super().__init__()

    monkeypatch.setattr(report, "Console", Made)
    render(GradingResults([_test("ok", score=2.0)]))
    assert made == [{"highlight": False}]


def test_no_checks_no_table() -> None:
    console, text = _render(GradingResults([], output="Your submission could not be imported."))
    assert "Grading report" not in text
    assert _score_line(console) == ("Score: 0 / 0 (points lost), 0.0 s", "bold yellow")


@pytest.mark.parametrize("width", [40, 60])
def test_a_failure_line_is_cut_to_the_width_with_an_ellipsis(width: int) -> None:
    test = _test("long", output="Tested: x\n" + "word " * 40)
    line = _failure_line(test, width)
    expected = f"  FAIL     {FWD}: long: " + "word " * 40
    assert line.plain == expected[: width - 1] + "…"
    assert [(span.start, span.end, str(span.style)) for span in line.spans][-1] == (
        len(f"  FAIL     {FWD}: long: "),
        width,
        "dim",
    )
