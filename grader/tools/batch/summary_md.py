"""The batch's Markdown summary, ``summary.md``: scores, pass rates per check, common misconceptions, the
leaderboard and the submissions that could not be graded normally."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from grader.grading.sanitise import clean_text
from grader.tools.batch.config import Graded
from grader.tools.batch.gradebook import number_text
from grader.tools.batch.leaderboard import Board, Leaderboard
from grader.tools.batch.summary import (
    Summary,
)


def _percent(rate: float | None) -> str:
    return "n/a" if rate is None else f"{100 * rate:.0f}%"


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell (check names contain "||"; errors may carry anything)."""
    return clean_text(str(text)).replace("|", "\\|").replace("\n", " ")


def write_summary_md(path: Path, summary: Summary, rows: Sequence[Graded]) -> None:
    lines = [
        "# Batch grading summary",
        "",
        f"- submissions: {summary.submissions} (graded normally: {summary.graded}, with problems: {summary.errors})",
        f"- score: mean {summary.mean_score:.2f}, median {summary.median_score:.2f}"
        + (f" of {number_text(summary.max_score)}" if summary.max_score is not None else ""),
        f"- full marks: {summary.full_marks}",
        f"- time: {summary.seconds:.1f} s",
        *(
            [
                f"- not gradable (no points lost, grade again, e.g. with --resume): {len(summary.regrade)} "
                f"({', '.join(_cell(n) for n in summary.regrade)})"
            ]
            if summary.regrade
            else []
        ),
        *(f"- {note}" for note in summary.notes),
        "",
        "## Pass rate per check",
        "",
        "A check whose points the rubric's gates withheld (it passed on its own; a check it requires failed) is "
        "not passed; the withheld column counts those.",
        "",
    ]
    ungraded = any(c.not_gradable for c in summary.checks)
    if ungraded:
        lines[-2] += (
            " A check that was not gradable (the machine, not the submission, kept it from being judged) has no "
            "verdict in that grade: the not gradable column counts those, left out of passed and mean points."
        )
    lines += [
        "| check | points | passed | pass rate | withheld |"
        + (" not gradable |" if ungraded else "")
        + " mean points |",
        "| --- | ---: | ---: | ---: | ---: |" + (" ---: |" if ungraded else "") + " ---: |",
    ]
    for c in summary.checks:
        lines.append(
            f"| {_cell(c.name)} | {number_text(c.max_score)} | {c.passed}/{c.graded} | {_percent(c.pass_rate)} "
            f"| {c.withheld} |" + (f" {c.not_gradable} |" if ungraded else "") + f" {c.mean_points:.2f} |"
        )
    lines += ["", "## Misconceptions recognised", ""]
    if summary.misconceptions:
        lines += ["| misconception | submissions | share | seen in |", "| --- | ---: | ---: | --- |"]
        for mid, count, where in summary.misconceptions:
            share = count / summary.submissions if summary.submissions else 0.0
            lines.append(f"| {_cell(mid)} | {count} | {100 * share:.0f}% | {_cell(', '.join(where))} |")
    else:
        lines.append("None.")
    lines += leaderboard_md(summary.leaderboard)
    problems = [row for row in rows if row.error or row.reason]
    if problems:
        lines += [
            "",
            "## Submissions with problems",
            "",
            "| submission | reason | details |",
            "| --- | --- | --- |",
        ]
        lines += [f"| {_cell(row.name)} | {_cell(row.reason)} | {_cell(row.error)} |" for row in problems]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _value(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def _board_cells(board: Board) -> list[str]:
    return [
        f"{metric} ({'higher' if order == 'desc' else 'lower'} is better)" for metric, order in board.metrics
    ]


def leaderboard_md(leaderboard: Leaderboard) -> list[str]:
    """The tuning challenge's boards, one per preset (ranked), then the submissions with no run."""
    if not leaderboard:
        return []
    lines = [
        "",
        "## Challenge leaderboard",
        "",
        "Ranked by the targets the challenge's run met (its points), then by sentiment, perplexity and distinct-2; "
        "one board per training preset (runs of different presets are not comparable). Chart: leaderboard.png.",
    ]
    for board in leaderboard.boards:
        lines += [
            "",
            f"### {_cell(board.preset or 'preset not named')}",
            "",
            "| rank | submission | challenge | points | "
            + " | ".join(map(_cell, _board_cells(board)))
            + " |",
            "| ---: | --- | ---: | ---: |" + " ---: |" * len(board.metrics),
        ]
        for s in board.standings:
            met = "n/a" if s.share is None else f"{s.share:.0%}"
            points = "n/a" if s.score is None else f"{s.score:.4g}/{number_text(s.max_score)}"
            values = " | ".join(_value(s.values.get(metric)) for metric, _ in board.metrics)
            lines.append(f"| {s.rank} | {_cell(s.submission)} | {met} | {points} | {values} |")
    if leaderboard.no_run:
        lines += [
            "",
            "### No run",
            "",
            "Not ranked: the challenge's run did not end (or the grade had no challenge).",
            "",
            "| submission | why |",
            "| --- | --- |",
        ]
        lines += [f"| {_cell(n.submission)} | no run: {_cell(n.why)} |" for n in leaderboard.no_run]
    return lines
