"""What a batch writes: the gradebook, the Markdown and JSON summaries, the charts, the terminal table."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from grader.grading.sanitise import clean_text, clean_tree
from grader.tools.batch.config import Graded
from grader.tools.batch.leaderboard import PERPLEXITY, SENTIMENT, Board, Leaderboard, row_entries
from grader.tools.batch.summary import (
    Summary,
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


def _label(name: str, limit: int = 60) -> str:
    """A chart label: long check names are cut (the tables have them in full)."""
    return name if len(name) <= limit else name[: limit - 1].rstrip() + "\u2026"


def misconception_title(misconception_id: str) -> str:
    """The catalogue's title of a misconception (its id where the catalogue has none: another grader's)."""
    from grader.checks.feedback import load_catalogue

    try:
        entry = load_catalogue().entries.get(misconception_id)
    except Exception:  # noqa: BLE001 - a chart label is never worth a failed batch
        entry = None
    title = entry.title if entry is not None else ""
    return title or misconception_id


def misconception_chart(summary: Summary) -> Any:
    """The misconceptions recognised, by submissions: each by its catalogue title, counted in whole ticks."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(9, 0.35 * max(len(summary.misconceptions), 3) + 1.2))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.barh(
        [_label(misconception_title(m)) for m, _, _ in summary.misconceptions][::-1],
        [n for _, n, _ in summary.misconceptions][::-1],
    )
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # counts of submissions: no 0.25 of one
    ax.set_xlabel("submissions")
    ax.set_title("Misconceptions recognised")
    ax.tick_params(axis="y", labelsize=8)
    fig.tight_layout()
    return fig


def write_charts(out: Path, summary: Summary, rows: Sequence[Graded]) -> list[Path]:
    """PNG charts (matplotlib's Agg canvas, no pyplot state: safe anywhere, no display needed)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    written = []
    checks = [c for c in summary.checks if c.pass_rate is not None]
    fig = Figure(figsize=(11, 0.32 * max(len(checks), 3) + 1.2))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    names = [_label(c.name) for c in checks][::-1]
    rates = [100 * (c.pass_rate or 0.0) for c in checks][::-1]
    bars = ax.barh(names, rates, color="#4c72b0")
    for bar, rate in zip(bars, rates, strict=True):
        ax.text(
            min(rate + 1, 92), bar.get_y() + bar.get_height() / 2, f"{rate:.0f}%", va="center", fontsize=8
        )
    ax.set_xlim(0, 100)
    ax.set_xlabel("submissions with full points on the check (%)")
    ax.set_title(f"Pass rate per check ({summary.submissions} submissions)")
    ax.tick_params(axis="y", labelsize=8)
    fig.tight_layout()
    path = out / "pass_rates.png"
    fig.savefig(path, dpi=110)
    written.append(path)

    fig = Figure(figsize=(7, 4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    scores = [row.score for row in rows]
    top = summary.max_score if summary.max_score else max(scores + [1.0])
    bins = max(1, min(20, int(math.ceil(top)))) if top >= 1 else 10
    ax.hist(scores, bins=bins, range=(0, top), color="#55a868", edgecolor="white")
    ax.set_xlabel(f"score (of {number_text(summary.max_score) or '?'})")
    ax.set_ylabel("submissions")
    ax.set_title(f"Scores: mean {summary.mean_score:.1f}, median {summary.median_score:.1f}")
    fig.tight_layout()
    path = out / "score_histogram.png"
    fig.savefig(path, dpi=110)
    written.append(path)

    if summary.misconceptions:
        path = out / "misconceptions.png"
        misconception_chart(summary).savefig(path, dpi=110)
        written.append(path)
    chart = leaderboard_chart(summary.leaderboard)
    if chart is not None:
        path = out / LEADERBOARD_CHART
        chart.savefig(path, dpi=110)
        written.append(path)
    return written


#: The leaderboard's chart in the batch's output folder.
LEADERBOARD_CHART = "leaderboard.png"
#: A point's colour by the challenge's share of points (none, some, all; grey: no points to compare).
_MET_COLOURS = ("#c44e52", "#dd8452", "#55a868")


def _plotted(board: Board) -> list[tuple[str, float, float, float | None]]:
    """(submission, perplexity, sentiment, the challenge's share of points) of the standings the chart can place."""
    points = []
    for s in board.standings:
        sentiment, perplexity = s.values.get(SENTIMENT), s.values.get(PERPLEXITY)
        if sentiment is None or perplexity is None or not perplexity > 0:  # a log axis has no place for it
            continue
        points.append((s.submission, perplexity, sentiment, s.share))
    return points


def leaderboard_chart(leaderboard: Leaderboard) -> Any:
    """Sentiment against reference perplexity (log scale), one labelled point per submission, one panel per
    preset; None when no board has both numbers."""
    boards = [(board, _plotted(board)) for board in leaderboard.boards]
    boards = [(board, points) for board, points in boards if points]
    if not boards:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    fig = Figure(figsize=(6.5 * len(boards), 5))
    FigureCanvasAgg(fig)
    for n, (board, points) in enumerate(boards, start=1):
        ax = fig.add_subplot(1, len(boards), n)
        colours = [
            "#8c8c8c" if share is None else _MET_COLOURS[min(2, int(share * 2 + 0.5))]
            for _, _, _, share in points
        ]
        ax.scatter([p for _, p, _, _ in points], [s for _, _, s, _ in points], c=colours, zorder=2)
        for name, perplexity, sentiment, _ in points:
            ax.annotate(
                _label(clean_text(name), 24),
                (perplexity, sentiment),
                xytext=(4, 3),
                textcoords="offset points",
                fontsize=7,
            )
        ax.set_xscale("log")
        low, high = min(p for _, p, _, _ in points), max(p for _, p, _, _ in points)
        ax.set_xlim(
            low / 1.6, high * 1.6
        )  # room for the labels; a decade's ticks even when the runs are close
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("reference perplexity (log; lower reads more like the reference)")
        ax.set_ylabel("validation sentiment (higher is more positive)")
        ax.set_title(
            f"Challenge: {board.preset or 'preset not named'} ({len(points)} run{'' if len(points) == 1 else 's'})"
        )
        ax.grid(True, which="both", alpha=0.3)
    fig.suptitle(
        "Tuning challenge: up and to the left is positive and sensible (red: no target met, green: all)"
    )
    fig.tight_layout()
    return fig


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
