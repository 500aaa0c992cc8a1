"""Ctrl-C on a batch: the first SIGINT stops it cleanly, whatever it was doing.

The signal handler only raises a flag (:attr:`Stop.signalled`): it runs in the main thread between two bytecodes,
where taking a lock the interrupted code holds (the progress bar's, a condition's) would deadlock. The executors'
wait loops look at the flag a few times a second and call :meth:`Stop.check`, which does the work there: no more
grades start, the running graders are killed with their whole process trees
(:func:`grader.sandbox.proctree.kill_tree`), and an interrupted grade records no row (``--resume`` grades it).
The only blocking call that cannot poll, the shared baseline run, is made inside :meth:`Stop.interruptible`,
where the first SIGINT raises ``KeyboardInterrupt`` as usual. Later SIGINTs are ignored: the batch is already
writing the gradebook of what finished.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import threading
from collections.abc import Iterator
from types import FrameType

from grader.sandbox.proctree import kill_tree

#: The exit status of a batch stopped by Ctrl-C (128 + SIGINT, as a shell reports it).
EXIT_INTERRUPTED = 130


class Stop:
    """Whether the batch was asked to stop, and the grader processes to end when it is (thread-safe)."""

    def __init__(self) -> None:
        self.signalled = False  # set by the signal handler (a plain store: nothing to deadlock on)
        self.requested = False  # set by check(): no grade starts from then on
        self._lock = threading.Lock()
        self._running: set[subprocess.Popen] = set()
        self._killed: set[int] = set()
        self._raise = False

    # --- the grades' side (worker threads) ---

    def track(self, proc: subprocess.Popen) -> None:
        """A grader started: ended with its tree when the batch stops (at once if it already has)."""
        with self._lock:
            self._running.add(proc)
            stopping = self.requested
        if stopping:
            self._end(proc)

    def untrack(self, proc: subprocess.Popen) -> None:
        with self._lock:
            self._running.discard(proc)

    def ended(self, proc: subprocess.Popen) -> bool:
        """Whether ``proc`` was killed because the batch stopped (its grade did not finish: no row)."""
        with self._lock:
            return proc.pid in self._killed

    # --- the driver's side (main thread) ---

    def check(self) -> bool:
        """Act on a SIGINT (stop everything, once); whether the batch is stopping."""
        if self.signalled and not self.requested:
            self.request()
        return self.requested

    def request(self) -> None:
        """Stop: no grade starts from now on, and the running graders end with their process trees."""
        with self._lock:
            self.requested = True
            running = list(self._running)
        for proc in running:
            self._end(proc)

    def _end(self, proc: subprocess.Popen) -> None:
        with self._lock:
            self._killed.add(proc.pid)
        kill_tree(proc, None, set())  # its own subtree; what it orphaned is swept when the executor closes

    @contextlib.contextmanager
    def interruptible(self) -> Iterator[None]:
        """Inside, the first SIGINT raises ``KeyboardInterrupt`` (for a call that cannot poll :meth:`check`)."""
        self._raise = True
        try:
            if self.signalled:
                raise KeyboardInterrupt
            yield
        finally:
            self._raise = False

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        if self.signalled:
            return  # already stopping: the gradebook of what finished is being written
        self.signalled = True
        if self._raise:
            self._raise = False
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def handling_sigint(self) -> Iterator[None]:
        """SIGINT (Ctrl-C) stops the batch while inside; the previous handler comes back after. Only the main
        thread can take signals: elsewhere this does nothing (the batch then stops only by :meth:`request`)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = signal.signal(signal.SIGINT, self._on_sigint)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)
