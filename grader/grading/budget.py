"""The grade's time: one global budget (``--time-budget``), and one timeout per function, not per check.

Without these a hostile or broken submission decides how long grading takes: each check waits for its own
call timeouts, so code that loops forever costs a timeout in every check (minutes), and code that sleeps a
few seconds per call runs every check to its own budget (longer than Gradescope waits, which then shows
nothing). Two pieces, used by :func:`grader.grading.runner.grade`:

* :class:`TimeBudget`: a deadline for the whole grade. Checks' own budgets (``budget_s`` in the rubric, the
  training runs' time) are capped by what is left; :meth:`TimeBudget.watchdog` kills the submission's worker
  and any training processes the moment it runs out (a blocked call returns at once), and the runner scores
  every unfinished check 0 with the reason and writes the results as usual.
* fair time: the budget is not spent by someone else's load. A grade's submission runs under its own CPU quota
  (:mod:`grader.sandbox.cgroup`, ``--cpus``), and the budget does not count the time the grade's thread
  spent *waiting for a CPU* while it could run (the kernel's run-queue delay of that thread, from
  ``/proc/self/task/<tid>/schedstat``): a neighbour hogging the machine stretches the wall-clock deadline by
  what it took (given back as each check starts), up to the budget once more (a grade ends by twice its budget
  at the latest). Time the grade
  spends computing, sleeping or waiting for its submission is charged as before, so a slow submission still
  runs out of its own budget; and a submission's own spinning children cannot stretch it, since they run
  under the submission's CPU quota, not on the grader's thread.
* :class:`BudgetedSubmission`: the runner's view of the sandbox. A function whose call ran into the per-call
  timeout fails its later calls at once ("timed out earlier: ..."), so an endless loop costs one timeout per
  function; no call starts once the budget is spent. Slow calls that finish within the per-call timeout are
  left alone: slow-but-correct code gets the time it needs, within the budget.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from grader.contract import CallOutcome, Submission

#: A call counts as having hit the per-call timeout (rather than a check's or the grade's budget) only if at
#: least this much more than the per-call timeout was left when it started.
_MARGIN_S = 0.05

#: Tag of a check that was not started, or was stopped, because the grade's time ran out.
TAG_NOT_RUN = "budget:not_run"
TAG_UNFINISHED = "budget:unfinished"


def _schedstat_path(tid: int) -> str:
    return f"/proc/self/task/{tid}/schedstat"


class RunQueueWait:
    """Seconds one thread (default: the calling one) has spent runnable but waiting for a CPU, since it started.

    Read from ``/proc/self/task/<tid>/schedstat`` (its second field, in ns: the scheduler's run-queue delay).
    Where the file is missing (not Linux, a kernel without schedstats) it reads 0: the budget is plain wall time.
    """

    def __init__(self, tid: int | None = None) -> None:
        self.path = _schedstat_path(threading.get_native_id() if tid is None else tid)

    def __call__(self) -> float:
        try:
            with open(self.path, "rb") as f:
                return int(f.read().split()[1]) / 1e9
        except (OSError, ValueError, IndexError):
            return 0.0


class TimeBudget:
    """A budget for a whole grade, started at ``start`` (``time.monotonic()``); ``seconds=None`` is no limit.

    Wall-clock time, minus what ``waited`` (default: :class:`RunQueueWait` of the thread that creates the budget,
    the grade's own) reports the grade waited for a CPU since the start, at most ``seconds`` (see the module
    docstring, "fair time"). ``waited=False``: plain wall-clock time.
    """

    def __init__(
        self,
        seconds: float | None,
        start: float | None = None,
        waited: Callable[[], float] | bool | None = None,
    ) -> None:
        if seconds is not None and not (seconds > 0 and math.isfinite(seconds)):
            raise ValueError(f"the time budget must be a positive number of seconds, not {seconds!r}")
        self.seconds = seconds
        self.start = time.monotonic() if start is None else start
        self._waited: Callable[[], float] | None = (
            None if waited is False else RunQueueWait() if waited in (None, True) else waited  # type: ignore[assignment]
        )
        self._waited_at_start = self._waited() if self._waited is not None else 0.0
        self._forgiven = 0.0

    def refresh(self) -> None:
        """Give back the CPU wait so far: called when a check starts (:meth:`cap`), never after expiry.

        The deadline moves only at check boundaries: a check whose own budget was capped at the grade's deadline
        then ends exactly when the grade's time runs out, and is reported as cut short by it ("not finished"),
        not as a check that ran out of its own time.
        """
        if self._waited is not None and self.seconds is not None and self.remaining() > 0:
            self._forgiven = min(self.seconds, max(self._forgiven, self._waited() - self._waited_at_start))

    def forgiven(self) -> float:
        """Seconds not charged: the grade's wait for a CPU that someone else held (at most the budget)."""
        return self._forgiven

    @property
    def deadline(self) -> float:
        """The deadline now (``time.monotonic()``), moved later by what :meth:`forgiven` gives back."""
        return math.inf if self.seconds is None else self.start + self.seconds + self.forgiven()

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0

    def cap(self, seconds: float) -> float:
        """``seconds``, or what is left of the budget if that is less (never negative); a check starts."""
        self.refresh()
        return max(0.0, min(seconds, self.remaining()))

    def not_run_message(self) -> str:
        return (
            f"not run: the grading time budget of {self.seconds:g} s ran out before this check started. "
            + self._advice()
        )

    def unfinished_message(self) -> str:
        return (
            f"not finished: the grading time budget of {self.seconds:g} s ran out during this check. "
            + self._advice()
        )

    def machine_message(self, started: bool, call_seconds: float) -> str:
        """Why a training check cut short by the deadline is not graded: the time went into the training runs
        (the grader's work), not into the submission's calls."""
        what = "ran out during this check" if started else "ran out before this check started"
        return (
            f"the grading time budget of {self.seconds:g} s {what}, while the training runs (the grader's work, "
            f"at this machine's speed) were being made; your functions took {call_seconds:.1f} s of it. This "
            "machine was too slow or too busy for the training runs within the budget: grade again with a larger "
            "--time-budget, or at a quieter moment."
        )

    def _advice(self) -> str:
        return (
            "The whole grade must finish within that time. If your functions are slow in every call, make them "
            "faster (time them on a larger batch yourself); if this machine is slow or busy, grade again with "
            "a larger --time-budget."
        )

    @contextmanager
    def watchdog(self, on_expiry: Callable[[], Any]) -> Iterator[None]:
        """Call ``on_expiry`` (from another thread) if the budget runs out before the block ends.

        The runner passes a function that kills every process the grade started (the submission's worker,
        training processes and whatever they spawned): the main thread, blocked in a call or waiting for
        training, then sees them end and moves on at once.
        """
        if math.isinf(self.deadline):
            yield
            return
        done = threading.Event()

        def watch() -> None:
            # the deadline moves (fair time): wait for it, look again, fire once it has really passed
            while not done.wait(max(0.0, self.remaining())):
                if self.remaining() <= 0:
                    on_expiry()
                    return

        timer = threading.Thread(target=watch, name="grade-time-budget", daemon=True)
        timer.start()
        try:
            yield
        finally:
            done.set()


class BudgetedSubmission:
    """Wraps the sandbox (any :class:`~grader.contract.Submission` with ``begin_check``) for the runner.

    ``call_timeout_s`` is the sandbox's per-call timeout: a call that returns ``timeout`` after running that
    long, with more than that left of its check's budget and of the grade's, ran into it, and the function is
    then remembered as one that does not return.
    """

    def __init__(self, inner: Submission, budget: TimeBudget, call_timeout_s: float) -> None:
        self.inner = inner
        self.budget = budget
        self.call_timeout_s = call_timeout_s
        self.timed_out: dict[str, str] = {}  # function -> the message of its first per-call timeout
        #: seconds spent in the submission's calls so far (whose time a run-out budget is, see the runner)
        self.call_seconds = 0.0
        self._check_deadline = math.inf

    def begin_check(self, budget_s: float | None = None) -> None:
        """Start a check: its own budget, but never past the grade's deadline."""
        if budget_s is None:
            budget_s = getattr(getattr(self.inner, "config", None), "check_budget_s", 60.0)
        capped = self.budget.cap(budget_s)
        self._check_deadline = time.monotonic() + capped
        begin = getattr(self.inner, "begin_check", None)
        if begin is not None:
            begin(capped)

    def call(self, function: str, *args: Any, **kwargs: Any) -> CallOutcome:
        first = self.timed_out.get(function)
        if first is not None:
            return CallOutcome(
                "timeout",
                message=f"timed out earlier: {first}; it is not called again, so its other checks fail at "
                "once instead of each waiting for a timeout",
            )
        if self.budget.expired:
            return CallOutcome(
                "timeout",
                message=f"the grading time budget of {self.budget.seconds:g} s ran out before "
                f"{function}() was called",
            )
        began = time.monotonic()
        room = min(self._check_deadline, self.budget.deadline) - began
        try:
            outcome = self.inner.call(function, *args, **kwargs)
        finally:
            self.call_seconds += time.monotonic() - began
        # Only this function's own per-call timeout counts: the call ran the full timeout (the sandbox repeats
        # a failure for the rest of a check at once, for any function) and no budget cut it short.
        if (
            outcome.status == "timeout"
            and room > self.call_timeout_s + _MARGIN_S
            and time.monotonic() - began >= 0.99 * self.call_timeout_s
        ):
            self.timed_out[function] = outcome.message or f"{function}() did not return in time"
        return outcome
