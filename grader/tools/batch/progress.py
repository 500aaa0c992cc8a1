"""What the executors report while a batch runs (:class:`BatchEvents`), and the live progress line that shows it.

The line fits the terminal (80 columns included): the counts, the elapsed time and the time left always show;
the bar narrows and the last submission's name is shortened first. The time left is the mean duration of the
grades finished in this run times the grades still to make, over the grades that run at once (minus what the
running ones have done already): it moves smoothly, unlike a rate measured over the last few grades, which jumps
with every slow or quick submission.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

from grader.tools.batch.config import Graded
from grader.tools.batch.reasons import abnormal
from grader.tools.batch.writers import number_text


class BatchEvents:
    """Told what happens, from any thread: a grade started, a row is finished (or kept by ``--resume``), a grade
    was stopped (Ctrl-C), a phase (the shared baseline) began. Keeps the counts; subclasses show them."""

    def __init__(self, on_done: Callable[[Graded], None] | None = None) -> None:
        self.lock = threading.Lock()
        self.total = 0
        self.done = 0
        #: grades that did not finish normally (a reason other than "not implemented": see reasons.abnormal)
        self.failed = 0
        self.kept = 0
        self.running: set[str] = set()
        self.on_done = on_done
        self.parallel = 1  # grades that run at once
        self.started_at: dict[str, float] = {}
        self.durations: list[float] = []  # of the grades finished in this run (not kept)

    def begin(self, total: int) -> None:
        self.total = total

    def slots(self, count: int) -> None:
        """How many grades run at once (the time left divides by it)."""
        with self.lock:
            self.parallel = max(1, count)

    def phase(self, text: str) -> None:
        """A step of the batch that is not one submission's grade."""

    def grading(self) -> None:
        """The grades start now (what ``--resume`` kept is already counted)."""

    def started(self, name: str) -> None:
        with self.lock:
            self.running.add(name)
            self.started_at[name] = time.monotonic()
        self.changed("")

    def stopped(self, name: str) -> None:
        """``name``'s grade was ended because the batch stopped: no row."""
        with self.lock:
            self.running.discard(name)
            self.started_at.pop(name, None)
        self.changed("")

    def finished(self, row: Graded, kept: bool = False) -> None:
        with self.lock:
            self.running.discard(row.name)
            self.started_at.pop(row.name, None)
            if (
                not kept and row.seconds > 0
            ):  # a row with no grader run (nothing to grade) says nothing of time
                self.durations.append(row.seconds)
            self.done += 1
            self.failed += bool(row.error) or abnormal(row.reason)
            self.kept += kept
        if self.on_done is not None:
            self.on_done(row)
        shown = f"{row.name}: {number_text(row.score)}" + (" (problem)" if row.error else "")
        self.changed(shown + (" (kept)" if kept else ""))

    def seconds_left(self, now: float | None = None) -> float | None:
        """The estimated time left (see the module docstring); None before the first grade of this run ends."""
        now = time.monotonic() if now is None else now
        with self.lock:
            if not self.durations:
                return None
            mean = math.fsum(self.durations) / len(self.durations)
            to_make = self.total - self.done  # running or queued
            underway = math.fsum(min(now - t, mean) for t in self.started_at.values())
            return max(0.0, (mean * to_make - underway) / self.parallel)

    def changed(self, last: str) -> None:
        """The counts changed (``last``: the row just finished, if one was)."""


def clock(seconds: float | None) -> str:
    """``1:02:03``, ``2:03``; ``-:--`` when unknown."""
    if seconds is None:
        return "-:--"
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def shorten(text: str, width: int) -> str:
    """``text`` in at most ``width`` characters: the middle of a long name gives way (its start and its score at
    the end stay)."""
    if len(text) <= width:
        return text
    if width <= 1:
        return "\u2026"[:width]
    head = (width - 1) * 2 // 3
    return text[:head] + "\u2026" + text[len(text) - (width - 1 - head) :]


#: The bar's width range (columns).
BAR_MIN, BAR_MAX = 8, 30


def status_line(
    phase: str,
    done: int,
    total: int,
    failed: int,
    running: int,
    elapsed: float,
    left: float | None,
    last: str,
    width: int,
) -> tuple[str, int, str]:
    """The progress line's parts for a terminal ``width`` columns wide: ``(head, bar columns, tail)`` (the bar,
    drawn between them, has 0 columns when there is no room for one). Nothing but ``last`` is ever cut."""
    head = f"{phase} "
    counts = f" {done}/{total} failed {failed} running {running} {clock(elapsed)} ETA {clock(left)}"
    room = width - 1 - len(head) - len(counts)  # one column spare: a full line makes some terminals wrap
    bar = min(BAR_MAX, max(BAR_MIN, room // 3)) if room >= BAR_MIN else 0
    rest = room - bar  # the name's: " " and at least 5 characters, or none
    tail = counts + (f" {shorten(last, rest - 1)}" if last and rest >= 6 else "")
    return head, bar, tail


class _Line:
    """The live renderable: the line for the console's width at each refresh."""

    def __init__(self, owner: ProgressBar) -> None:
        self.owner = owner

    def __rich_console__(self, console: Any, options: Any) -> Any:
        from rich.progress_bar import ProgressBar as Bar
        from rich.table import Table
        from rich.text import Text

        head, bar, tail = self.owner.parts(options.max_width)
        grid = Table.grid()
        cells: list[Any] = [Text(head, style="bold")]
        if bar:
            grid.add_column(width=len(head), no_wrap=True)
            grid.add_column(width=bar, no_wrap=True)
            cells.append(Bar(total=max(self.owner.total, 1), completed=self.owner.done, width=bar))
        else:
            grid.add_column(width=len(head), no_wrap=True)
        grid.add_column(no_wrap=True, overflow="crop")
        cells.append(Text(tail))
        grid.add_row(*cells)
        yield grid


class ProgressBar(BatchEvents):
    """A live progress line: done / failed / running, elapsed and the estimated time left, the last submission
    graded. Quiet when the console is not a terminal (a log file gets the summary only)."""

    def __init__(self, console: Any, quiet: bool, on_done: Callable[[Graded], None] | None = None) -> None:
        super().__init__(on_done)
        from rich.live import Live

        self.console = console
        self.enabled = not quiet and console.is_terminal
        self.phase_text = "grading"
        self.last = ""
        self.since = time.monotonic()
        self.live = Live(_Line(self), console=console, refresh_per_second=4, transient=False)

    def __enter__(self) -> ProgressBar:
        if self.enabled:
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.live.__exit__(*exc)

    def parts(self, width: int) -> tuple[str, int, str]:
        with self.lock:
            counts = (self.done, self.total, self.failed, len(self.running))
            last = self.last
        return status_line(
            self.phase_text, *counts, time.monotonic() - self.since, self.seconds_left(), last, width
        )

    def phase(self, text: str) -> None:
        self.phase_text = text

    def grading(self) -> None:
        self.phase_text = "grading"
        self.since = time.monotonic()  # the time shown is the grades', not the baseline run's

    def changed(self, last: str) -> None:
        if last:
            with self.lock:
                self.last = last
