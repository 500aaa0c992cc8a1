"""The line a student watches while a grade runs: checks done, then each training run's step and an ETA.

Shown only on a terminal (stderr), never with ``--quiet`` or in CI (``CI`` set), and gone when the report
prints (rich's transient ``Live``): the report is the record, this line only says the grade is moving.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.live import Live
from rich.text import Text

from grader.grading.results import TestResult


class LiveLine:
    """The state behind the line; its methods are the grade's progress hooks."""

    def __init__(self) -> None:
        self.checks = 0
        self.last = ""
        self.runs: dict[str, tuple[int, int]] = {}
        self.training_started: float | None = None

    def check_done(self, result: TestResult) -> None:
        self.checks += 1
        self.last = result.check_id

    def training(self, runs: dict[str, tuple[int, int]]) -> None:
        if self.training_started is None:
            self.training_started = time.monotonic()
        self.runs = dict(runs)

    def eta_s(self) -> float | None:
        """Seconds left for the started runs, from their pace so far (runs in parallel lanes share it)."""
        done = sum(step for step, _ in self.runs.values())
        total = sum(steps for _, steps in self.runs.values())
        if self.training_started is None or done <= 0 or total <= 0:
            return None
        elapsed = time.monotonic() - self.training_started
        return elapsed * (total - done) / done

    def __rich__(self) -> Text:
        line = Text(f"grading: {self.checks} checks done", style="dim")
        if self.last and not self.runs:
            line.append(f" · {self.last}", style="dim")
        if self.runs:
            line.append(" · training ", style="dim")
            line.append(
                "  ".join(f"{name} {step}/{steps}" for name, (step, steps) in sorted(self.runs.items()))
            )
            eta = self.eta_s()
            if eta is not None:
                line.append(f" · about {eta:.0f} s left", style="dim")
        return line


def wanted(quiet: bool, stream=None) -> bool:
    stream = stream or sys.stderr
    return not quiet and not os.environ.get("CI") and hasattr(stream, "isatty") and stream.isatty()


@contextmanager
def live_line(enabled: bool, console: Console | None = None) -> Iterator[LiveLine | None]:
    """A :class:`LiveLine` shown on ``console`` (default: stderr) while the block runs; None when not enabled."""
    if not enabled:
        yield None
        return
    line = LiveLine()
    with Live(line, console=console or Console(stderr=True), transient=True, refresh_per_second=4):
        yield line
