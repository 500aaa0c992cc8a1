"""What the executors report while a batch runs (:class:`BatchEvents`), and the live progress bar that shows it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from grader.tools.batch.config import Graded
from grader.tools.batch.writers import number_text


class BatchEvents:
    """Told what happens, from any thread: a grade started, a row is finished (or kept by ``--resume``), a phase
    (the shared baseline) began. Keeps the counts; subclasses show them."""

    def __init__(self, on_done: Callable[[Graded], None] | None = None) -> None:
        self.lock = threading.Lock()
        self.total = 0
        self.done = 0
        self.failed = 0
        self.kept = 0
        self.running: set[str] = set()
        self.on_done = on_done

    def begin(self, total: int) -> None:
        self.total = total

    def phase(self, text: str) -> None:
        """A step of the batch that is not one submission's grade."""

    def grading(self) -> None:
        """The grades start now (what ``--resume`` kept is already counted)."""

    def started(self, name: str) -> None:
        with self.lock:
            self.running.add(name)
        self.changed("")

    def finished(self, row: Graded, kept: bool = False) -> None:
        with self.lock:
            self.running.discard(row.name)
            self.done += 1
            self.failed += bool(row.error)
            self.kept += kept
        if self.on_done is not None:
            self.on_done(row)
        shown = f"{row.name}: {number_text(row.score)}" + (" (problem)" if row.error else "")
        self.changed(shown + (" (kept)" if kept else ""))

    def changed(self, last: str) -> None:
        """The counts changed (``last``: the row just finished, if one was)."""


class ProgressBar(BatchEvents):
    """A live rich progress bar: done / failed / running, elapsed and the estimated time left. Quiet when the
    console is not a terminal (a log file gets the summary only)."""

    def __init__(self, console: Any, quiet: bool, on_done: Callable[[Graded], None] | None = None) -> None:
        super().__init__(on_done)
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("[bold]{task.fields[phase]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("failed {task.fields[failed]} · running {task.fields[running]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("{task.description}", markup=False),
            console=console,
            disable=quiet or not console.is_terminal,
        )
        self.task = self.progress.add_task("", total=None, phase="grading", failed=0, running=0)

    def __enter__(self) -> ProgressBar:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)

    def begin(self, total: int) -> None:
        super().begin(total)
        self.progress.update(self.task, total=total)

    def phase(self, text: str) -> None:
        self.progress.update(self.task, phase=text)

    def grading(self) -> None:
        # The time left is estimated from the grades made from here on, not from rows kept by --resume.
        with self.lock:
            fields = {"failed": self.failed, "running": len(self.running), "phase": "grading"}
            done = self.done
        self.progress.reset(
            self.task, total=self.total, completed=done, **fields
        )  # reset replaces the fields

    def changed(self, last: str) -> None:
        with self.lock:
            fields = {
                "completed": self.done,
                "failed": self.failed,
                "running": len(self.running),
                "phase": "grading",
            }
        if last:
            fields["description"] = last
        self.progress.update(self.task, **fields)
