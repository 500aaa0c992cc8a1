"""The grade's time budget on a fake clock (grader/grading/budget.py): the deadline, what is left, when a budget
has expired, a check's cap, the run-queue wait it reads, the training checks' "not gradable" message, and how
:class:`BudgetedSubmission` charges and remembers timeouts. A fake ``time.monotonic`` makes every edge exact (no
timed assertion, no sleep); the watchdog's real thread is tested in tests/integration/test_time_budget.py.

Written for the mutation score (tests/README.md, "Mutation score"): each test pins a rule that a mutant of
budget.py broke without any other test noticing.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from grader.contract import CallOutcome
from grader.grading import budget as budget_module
from grader.grading.budget import BudgetedSubmission, RunQueueWait, TimeBudget


class Clock:
    """``time.monotonic`` for budget.py: moves only when told to."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(budget_module, "time", fake)
    return fake


class Wait:
    """A run-queue wait the test sets; counts how often it was read."""

    def __init__(self, seconds: float = 0.0) -> None:
        self.seconds = seconds
        self.reads = 0

    def __call__(self) -> float:
        self.reads += 1
        return self.seconds


# --- RunQueueWait ---------------------------------------------------------------------------------------------


def test_the_run_queue_wait_is_the_second_field_of_schedstat_in_seconds(tmp_path: Path) -> None:
    stat = tmp_path / "schedstat"
    stat.write_bytes(b"123456789 2500000000 17\n")
    wait = RunQueueWait()
    wait.path = str(stat)
    assert wait() == 2.5


@pytest.mark.parametrize("content", [None, b"", b"12", b"12 many 3"])
def test_a_missing_or_unreadable_schedstat_reads_zero(tmp_path: Path, content: bytes | None) -> None:
    stat = tmp_path / "schedstat"
    if content is not None:
        stat.write_bytes(content)
    wait = RunQueueWait()
    wait.path = str(stat)
    assert wait() == 0.0


def test_the_run_queue_wait_reads_the_calling_thread_unless_told_another() -> None:
    assert RunQueueWait().path == f"/proc/self/task/{threading.get_native_id()}/schedstat"
    assert RunQueueWait(4242).path == "/proc/self/task/4242/schedstat"


def test_a_budget_reads_the_grades_own_thread_by_default() -> None:
    budget = TimeBudget(10.0)
    assert isinstance(budget._waited, RunQueueWait)
    assert budget._waited.path == RunQueueWait().path
    assert isinstance(TimeBudget(10.0, waited=True)._waited, RunQueueWait)
    assert TimeBudget(10.0, waited=False)._waited is None


# --- TimeBudget -----------------------------------------------------------------------------------------------


def test_the_budget_starts_now_unless_told_when(clock: Clock) -> None:
    assert TimeBudget(10.0, waited=False).start == 1000.0
    assert TimeBudget(10.0, start=990.0, waited=False).start == 990.0
    assert TimeBudget(None, waited=False).seconds is None
    assert TimeBudget(1e-9, waited=False).seconds == 1e-9  # any positive budget, however small


def test_what_is_left_and_when_it_has_expired(clock: Clock) -> None:
    budget = TimeBudget(10.0, waited=False)
    assert budget.deadline == 1010.0 and budget.remaining() == 10.0 and not budget.expired
    clock.now = 1009.5
    assert budget.remaining() == 0.5 and not budget.expired
    clock.now = 1010.0  # exactly at the deadline: expired
    assert budget.remaining() == 0.0 and budget.expired
    clock.now = 1012.0
    assert budget.remaining() == -2.0 and budget.expired


def test_no_budget_never_expires(clock: Clock) -> None:
    budget = TimeBudget(None, waited=Wait(5.0))
    clock.now = 1e12
    assert budget.deadline == math.inf and not budget.expired
    assert budget.cap(30.0) == 30.0
    assert budget.forgiven() == 0.0  # nothing to give back to a budget that has no end


def test_a_check_gets_its_own_budget_or_what_is_left(clock: Clock) -> None:
    budget = TimeBudget(10.0, waited=False)
    assert budget.cap(3.0) == 3.0
    assert budget.cap(10.0) == 10.0
    assert budget.cap(25.0) == 10.0
    clock.now = 1007.0
    assert budget.cap(25.0) == 3.0
    clock.now = 1011.0
    assert budget.cap(25.0) == 0.0  # never negative


def test_the_wait_is_counted_from_the_budgets_start_and_given_back_as_a_check_starts(clock: Clock) -> None:
    wait = Wait(7.0)  # the thread had waited 7 s before the grade began: not the grade's
    budget = TimeBudget(10.0, waited=wait)
    assert budget.forgiven() == 0.0
    wait.seconds = 9.0
    assert budget.deadline == 1010.0  # given back only when a check starts
    assert budget.cap(60.0) == 12.0
    assert budget.forgiven() == 2.0 and budget.deadline == 1012.0
    wait.seconds = 8.0  # a wait never shrinks what was given back
    budget.refresh()
    assert budget.forgiven() == 2.0
    wait.seconds = 12.5
    budget.refresh()
    assert budget.forgiven() == 5.5
    wait.seconds = 100.0  # at most the budget once more
    budget.refresh()
    assert budget.forgiven() == 10.0 and budget.deadline == 1020.0


def test_nothing_is_given_back_once_the_budget_ran_out(clock: Clock) -> None:
    wait = Wait(0.0)
    budget = TimeBudget(10.0, waited=wait)
    clock.now = 1010.0
    wait.seconds = 5.0
    assert budget.cap(60.0) == 0.0
    assert budget.forgiven() == 0.0 and budget.expired


def test_a_plain_wall_clock_budget_reads_no_wait(clock: Clock) -> None:
    budget = TimeBudget(10.0, waited=False)
    budget.refresh()
    assert budget.forgiven() == 0.0
    wait = Wait(3.0)
    TimeBudget(None, waited=wait).refresh()
    assert wait.reads == 1  # read once at the start, not again: no budget to move


def test_the_machine_message_says_the_training_runs_took_the_time() -> None:
    budget = TimeBudget(300, waited=False)
    tail = (
        "while the training runs (the grader's work, at this machine's speed) were being made; your functions "
        "took 12.3 s of it. This machine was too slow or too busy for the training runs within the budget: grade "
        "again with a larger --time-budget, or at a quieter moment."
    )
    assert budget.machine_message(True, 12.34) == (
        "the grading time budget of 300 s ran out during this check, " + tail
    )
    assert budget.machine_message(False, 12.34) == (
        "the grading time budget of 300 s ran out before this check started, " + tail
    )


def test_without_a_deadline_the_watchdog_starts_no_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[object] = []
    monkeypatch.setattr(
        budget_module.threading, "Thread", lambda *a, **k: started.append(k) or pytest.fail("a thread")
    )
    with TimeBudget(None, waited=False).watchdog(lambda: None):
        pass
    assert started == []


def test_the_watchdog_thread_is_a_named_daemon() -> None:
    seen: list[threading.Thread] = []
    with TimeBudget(60.0, waited=False).watchdog(lambda: None):
        seen = [t for t in threading.enumerate() if t.name == "grade-time-budget"]
    assert len(seen) == 1 and seen[0].daemon
    seen[0].join(10)
    assert not seen[0].is_alive()  # ended with the block


# --- BudgetedSubmission ---------------------------------------------------------------------------------------


class Inner:
    """A sandbox on the fake clock: each call takes ``took[function]`` seconds and returns ``answers[function]``."""

    def __init__(self, clock: Clock, answers: dict[str, CallOutcome], took: dict[str, float]) -> None:
        self.clock = clock
        self.answers = answers
        self.took = took
        self.calls: list[tuple[str, tuple, dict]] = []
        self.budgets: list[float] = []

    def begin_check(self, budget_s: float) -> None:
        self.budgets.append(budget_s)

    def call(self, function: str, *args: object, **kwargs: object) -> CallOutcome:
        self.calls.append((function, args, kwargs))
        self.clock.now += self.took.get(function, 0.0)
        return self.answers.get(function, CallOutcome("ok", value=[1.0]))


def _timeout(message: str | None = "f() did not return within 1 s") -> CallOutcome:
    return CallOutcome("timeout", message=message)


def test_a_check_without_its_own_budget_gets_the_sandboxs_or_60_s(clock: Clock) -> None:
    inner = Inner(clock, {}, {})
    inner.config = SimpleNamespace(check_budget_s=42.0)
    sub = BudgetedSubmission(inner, TimeBudget(None, waited=False), call_timeout_s=1.0)
    sub.begin_check()
    sub.begin_check(7.0)
    assert inner.budgets == [42.0, 7.0]
    plain = Inner(clock, {}, {})
    BudgetedSubmission(plain, TimeBudget(None, waited=False), call_timeout_s=1.0).begin_check()
    assert plain.budgets == [60.0]


def test_a_sandbox_without_begin_check_is_still_capped(clock: Clock) -> None:
    class Bare:
        def call(self, function: str, *args: object, **kwargs: object) -> CallOutcome:
            return _timeout()

    sub = BudgetedSubmission(Bare(), TimeBudget(None, waited=False), call_timeout_s=1.0)
    sub.begin_check(0.5)  # the check's budget is below the per-call timeout: not the function's fault
    assert sub.call("f").status == "timeout" and sub.timed_out == {}


def test_the_calls_pass_their_arguments_and_their_time_is_summed(clock: Clock) -> None:
    inner = Inner(clock, {}, {"f": 1.5, "g": 0.25})
    sub = BudgetedSubmission(inner, TimeBudget(None, waited=False), call_timeout_s=5.0)
    sub.begin_check(60)
    assert sub.call("f", [1.0], scale=2).value == [1.0]
    sub.call("g")
    assert inner.calls == [("f", ([1.0],), {"scale": 2}), ("g", (), {})]
    assert sub.call_seconds == 1.75


def test_a_call_that_raises_is_still_charged(clock: Clock) -> None:
    class Raising(Inner):
        def call(self, function: str, *args: object, **kwargs: object) -> CallOutcome:
            self.clock.now += 2.0
            raise RuntimeError("the channel broke")

    sub = BudgetedSubmission(Raising(clock, {}, {}), TimeBudget(None, waited=False), call_timeout_s=5.0)
    sub.begin_check(60)
    with pytest.raises(RuntimeError):
        sub.call("f")
    assert sub.call_seconds == 2.0


def test_no_call_starts_once_the_grades_time_ran_out(clock: Clock) -> None:
    inner = Inner(clock, {}, {})
    sub = BudgetedSubmission(inner, TimeBudget(2.5, waited=False), call_timeout_s=1.0)
    clock.now = 1002.5
    late = sub.call("kl_penalty_forward")
    assert late == CallOutcome(
        "timeout", message="the grading time budget of 2.5 s ran out before kl_penalty_forward() was called"
    )
    assert inner.calls == [] and sub.call_seconds == 0.0


def test_a_function_that_ran_into_its_per_call_timeout_is_not_called_again(clock: Clock) -> None:
    inner = Inner(clock, {"f": _timeout("f() did not return within 1 s")}, {"f": 1.0})
    sub = BudgetedSubmission(inner, TimeBudget(None, waited=False), call_timeout_s=1.0)
    sub.begin_check(60)
    assert sub.call("f").message == "f() did not return within 1 s"
    assert sub.timed_out == {"f": "f() did not return within 1 s"}
    again = sub.call("f")
    assert again == CallOutcome(
        "timeout",
        message="timed out earlier: f() did not return within 1 s; it is not called again, so its other checks "
        "fail at once instead of each waiting for a timeout",
    )
    assert len(inner.calls) == 1
    assert sub.call("g").ok and len(inner.calls) == 2  # other functions still run


def test_a_timeout_without_a_message_is_remembered_with_one(clock: Clock) -> None:
    inner = Inner(clock, {"f": _timeout(None)}, {"f": 1.0})
    sub = BudgetedSubmission(inner, TimeBudget(None, waited=False), call_timeout_s=1.0)
    sub.begin_check(60)
    sub.call("f")
    assert sub.timed_out == {"f": "f() did not return in time"}


@pytest.mark.parametrize(
    ("took", "marked"),
    [
        (1.0, True),  # the whole per-call timeout
        (0.99, True),  # the sandbox's timer fires a hair early
        (0.98, False),  # shorter: the sandbox repeated an earlier failure, or something else cut it
        (0.0, False),
    ],
)
def test_only_a_call_that_ran_the_whole_timeout_marks_the_function(
    clock: Clock, took: float, marked: bool
) -> None:
    inner = Inner(clock, {"f": _timeout()}, {"f": took * 100.0})
    sub = BudgetedSubmission(inner, TimeBudget(None, waited=False), call_timeout_s=100.0)
    sub.begin_check(1000)
    sub.call("f")
    assert ("f" in sub.timed_out) is marked


@pytest.mark.parametrize(
    ("check_s", "marked"),
    [
        (1.06, True),  # more than the timeout and its margin was left: the function's own timeout
        (1.05, False),  # exactly the margin: the check's budget may have cut it
        (1.0, False),
    ],
)
def test_only_a_call_with_room_for_its_whole_timeout_marks_the_function(
    clock: Clock, check_s: float, marked: bool
) -> None:
    inner = Inner(clock, {"f": _timeout()}, {"f": 1.0})
    sub = BudgetedSubmission(inner, TimeBudget(None, waited=False), call_timeout_s=1.0)
    clock.now = 0.0  # exact binary fractions from here: room is check_s itself
    sub.begin_check(check_s)
    sub.call("f")
    assert ("f" in sub.timed_out) is marked


@pytest.mark.parametrize(("grade_s", "marked"), [(1.06, True), (1.05, False)])
def test_the_grades_deadline_limits_the_room_too(clock: Clock, grade_s: float, marked: bool) -> None:
    clock.now = 0.0
    inner = Inner(clock, {"f": _timeout()}, {"f": 1.0})
    sub = BudgetedSubmission(inner, TimeBudget(grade_s, waited=False), call_timeout_s=1.0)
    sub._check_deadline = 1000.0  # the check's own budget is ample: only the grade's deadline is near
    sub.call("f")
    assert ("f" in sub.timed_out) is marked


def test_an_instant_timeout_or_another_failure_marks_nothing(clock: Clock) -> None:
    inner = Inner(clock, {"f": _timeout(), "g": CallOutcome("crashed", message="killed")}, {"g": 5.0})
    sub = BudgetedSubmission(inner, TimeBudget(None, waited=False), call_timeout_s=1.0)
    sub.begin_check(60)
    sub.call("f")
    sub.call("g")
    assert sub.timed_out == {}


def test_a_call_before_any_check_began_has_only_the_grades_deadline(clock: Clock) -> None:
    inner = Inner(clock, {"f": _timeout()}, {"f": 1.0})
    sub = BudgetedSubmission(inner, TimeBudget(None, waited=False), call_timeout_s=1.0)
    sub.call("f")
    assert list(sub.timed_out) == ["f"]


def test_the_room_is_what_is_left_after_the_call_began(clock: Clock) -> None:
    inner = Inner(clock, {"f": _timeout()}, {"f": 1.0})
    sub = BudgetedSubmission(inner, TimeBudget(None, waited=False), call_timeout_s=1.0)
    sub.begin_check(1.0)  # at 1000 s on the clock: 1 s of room, the per-call timeout is no more
    sub.call("f")
    assert sub.timed_out == {}
