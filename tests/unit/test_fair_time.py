"""Fair time (issue 18): a grade's time budget is not spent by someone else's load. The budget does not count the
time the grade's thread waited for a CPU while it could run (the scheduler's run-queue delay), up to the budget
once more; everything else (computing, sleeping, waiting for the submission) is charged as before."""

from __future__ import annotations

import time

from grader.grading.budget import TimeBudget


class FakeWait:
    def __init__(self) -> None:
        self.seconds = 0.0

    def __call__(self) -> float:
        return self.seconds


def test_the_deadline_moves_by_the_wait_up_to_the_budget() -> None:
    waited = FakeWait()
    budget = TimeBudget(10.0, waited=waited)
    assert budget.deadline == budget.start + 10.0
    waited.seconds = 4.0
    assert budget.deadline == budget.start + 10.0  # given back when the next check starts, not during one
    budget.refresh()
    assert budget.forgiven() == 4.0 and budget.deadline == budget.start + 14.0
    waited.seconds = 50.0  # never more than the budget again: a grade ends by twice its budget
    budget.refresh()
    assert budget.deadline == budget.start + 20.0
    assert TimeBudget(10.0, start=100.0, waited=False).deadline == 110.0
    assert TimeBudget(None, waited=waited).deadline == float("inf")


def test_the_watchdog_waits_for_a_deadline_that_moved() -> None:
    waited = FakeWait()
    budget = TimeBudget(0.3, waited=waited)
    fired: list[float] = []
    with budget.watchdog(lambda: fired.append(time.monotonic() - budget.start)):
        time.sleep(0.1)
        waited.seconds = 0.2  # someone else held the CPU for 0.2 s, and a check starts: the deadline is 0.5 s
        assert budget.cap(60.0) < 0.45
        time.sleep(0.9)
    assert len(fired) == 1 and fired[0] >= 0.45, fired


def test_once_expired_the_budget_stays_expired() -> None:
    """A check cut short at the deadline is 'not finished', and every later one 'not run': nothing given back
    after the deadline brings the grade back."""
    waited = FakeWait()
    budget = TimeBudget(0.05, waited=waited)
    time.sleep(0.1)
    waited.seconds = 1.0
    assert budget.cap(10.0) == 0.0 and budget.expired
