"""The live line's exact text and styles (grader/grading/live.py): the dim status and the ETA's edges.

What the line shows while a grade runs through a real terminal is in tests/integration/test_live_progress.py;
these pin what the mutation run (tests/README.md, "Mutation score") found unchecked: the count, which parts are
dimmed, and when an ETA can be given.
"""

from __future__ import annotations

import pytest
from rich.text import Text

from grader.grading import live
from grader.grading.live import LiveLine
from grader.grading.results import TestResult


def _shown(line: LiveLine) -> tuple[str, str, list[tuple[int, int, str]]]:
    text = line.__rich__()
    assert isinstance(text, Text)
    return text.plain, str(text.style), [(s.start, s.end, str(s.style)) for s in text.spans]


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """``time.monotonic`` as seen by the live line: the test sets ``clock[0]``."""
    now = [100.0]
    monkeypatch.setattr(live.time, "monotonic", lambda: now[0])
    return now


def test_a_new_line_has_done_nothing_and_knows_no_eta() -> None:
    line = LiveLine()
    assert (line.checks, line.last, line.runs, line.training_started) == (0, "", {}, None)
    assert line.eta_s() is None
    assert _shown(line) == ("grading: 0 checks done", "dim", [])


def test_each_check_done_counts_once_and_the_last_one_is_named_dimmed() -> None:
    line = LiveLine()
    line.check_done(TestResult("a", 1, 1, check_id="kl_forward.value"))
    line.check_done(TestResult("b", 1, 1, check_id="kl_forward.finite"))
    head = "grading: 2 checks done"
    tail = " · kl_forward.finite"
    assert _shown(line) == (head + tail, "dim", [(len(head), len(head + tail), "dim")])


def test_while_training_the_runs_replace_the_last_check_and_the_eta_follows(clock: list[float]) -> None:
    line = LiveLine()
    line.check_done(TestResult("a", 1, 1, check_id="kl_forward.value"))
    line.training({"shaped": (0, 4), "forward": (0, 4)})
    clock[0] = 110.0
    line.training({"shaped": (1, 4), "forward": (1, 4)})  # a quarter done in 10 s: 30 s left
    assert line.eta_s() == pytest.approx(30.0)
    head, training, runs, eta = (
        "grading: 1 checks done",
        " · training ",
        "forward 1/4  shaped 1/4",
        " · about 30 s left",
    )
    a, b, c = len(head), len(head + training), len(head + training + runs)
    assert _shown(line) == (
        head + training + runs + eta,
        "dim",
        [(a, b, "dim"), (c, c + len(eta), "dim")],
    )


@pytest.mark.parametrize(
    ("runs", "eta"),
    [
        ({"forward": (0, 4)}, None),  # no step done: no pace
        ({"forward": (1, 4)}, 30.0),  # one step is a pace
        ({"forward": (1, 1)}, 0.0),  # all done
        ({"forward": (1, 0)}, None),  # a run that reports no total
    ],
)
def test_an_eta_needs_a_step_done_and_a_total(clock: list[float], runs: dict, eta: float | None) -> None:
    line = LiveLine()
    line.training(runs)
    clock[0] = 110.0
    assert line.eta_s() == (None if eta is None else pytest.approx(eta))
