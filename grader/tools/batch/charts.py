"""The batch's charts: the score histogram and pass rates (``summary.png``), the common misconceptions and the
leaderboard (``leaderboard.png``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from grader.grading.sanitise import clean_text
from grader.tools.batch.config import Graded
from grader.tools.batch.gradebook import number_text
from grader.tools.batch.leaderboard import PERPLEXITY, SENTIMENT, Board, Leaderboard
from grader.tools.batch.summary import (
    Summary,
)


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
