"""The grade's live line: what the lanes report while they train, and what the student's terminal shows."""

from __future__ import annotations

import io
import itertools
import json
import re
from pathlib import Path

import pytest
from rich.console import Console

from grader.grading.live import LiveLine, live_line, wanted
from grader.grading.results import TestResult
from grader.training.runs import progress_of


def test_the_line_counts_checks_then_shows_each_runs_steps_and_an_eta(monkeypatch):
    line = LiveLine()
    line.check_done(TestResult(check_id="kl_forward.value", name="value", score=3, max_score=3))
    assert "1 checks done" in Text(line) and "kl_forward.value" in Text(line)
    clock = itertools.chain([100.0], itertools.repeat(110.0))
    monkeypatch.setattr("grader.grading.live.time.monotonic", lambda: next(clock))
    line.training({"forward": (0, 80), "baseline": (0, 80)})  # started at t=100
    assert line.eta_s() is None  # no pace yet
    line.runs = {"forward": (20, 80), "baseline": (20, 80)}  # at t=110: a quarter done in 10 s
    assert line.eta_s() == pytest.approx(30.0)
    assert "baseline 20/80  forward 20/80" in Text(line)


def Text(line: LiveLine) -> str:  # noqa: N802 - reads as what the terminal shows
    console = Console(file=io.StringIO(), width=200)
    console.print(line)
    return console.file.getvalue()


def test_only_on_a_terminal_and_never_quiet_or_in_ci(monkeypatch):
    class Tty(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.delenv("CI", raising=False)
    assert wanted(False, Tty()) and not wanted(True, Tty()) and not wanted(False, io.StringIO())
    monkeypatch.setenv("CI", "true")
    assert not wanted(False, Tty())
    with live_line(False) as line:
        assert line is None


def test_progress_files_are_read_by_run_and_a_half_written_one_is_skipped(tmp_path: Path):
    lane = tmp_path / "lane0" / "progress"
    lane.mkdir(parents=True)
    (lane / "forward.json").write_text(json.dumps({"step": 3, "total": 80}))
    (lane / "shaped.json").write_text('{"step": 1')  # being replaced right now
    assert progress_of([tmp_path / "lane0", tmp_path / "lane1"]) == {"forward": (3, 80)}


@pytest.mark.slow
def test_a_real_lane_reports_every_step_of_its_run(tmp_path: Path):
    """Slow: one real GRPO run of the tiny preset cut to 4 steps in a real lane (about 20 s on two cores): the
    lane's step reports reach the grader's poll, ending at 4/4."""
    from grader.training import settings as S
    from grader.training.runs import Job, execute

    text = S.SETTINGS_PATH.read_text()
    start, end = text.index("[tiny.runs]"), text.index("[gpt2]")
    tiny = text[start:end]
    for key, value in (("max_steps", 4), ("eval_every", 2), ("validation_prompts", 4)):
        tiny = re.sub(rf"(?m)^{key} = .*$", f"{key} = {value}", tiny)
    settings = tmp_path / "thresholds.toml"
    settings.write_text(text[:start] + tiny + text[end:])
    submission = tmp_path / "none.py"
    submission.write_text("# the baseline run calls no submission code\n")
    seen: list[dict[str, tuple[int, int]]] = []
    records = execute(
        [Job("baseline", "baseline", str(submission))],
        work_dir=tmp_path / "work",
        timeout_s=300,
        preset="tiny",
        lanes=1,
        settings_path=settings,
        on_progress=seen.append,
    )
    assert records["baseline"].usable, records["baseline"].error
    steps = [s["baseline"] for s in seen if "baseline" in s]
    assert steps and all(total == 4 for _, total in steps)
    assert [step for step, _ in steps] == sorted(step for step, _ in steps)  # never backwards
    final = progress_of([tmp_path / "work" / "lane0"])
    assert final == {"baseline": (4, 4)}


def test_ctrl_c_keeps_the_checks_already_graded(tmp_path: Path, monkeypatch):
    """Ctrl-C in the middle of a grade (the third check is interrupted): exit 130, results.json holds the two
    finished checks, marked as no verdict, and no traceback."""
    from grader import cli
    from grader.contract import CheckOutcome
    from grader.grading import runner
    from tests.support.cli import ROOT

    ids = ["kl_forward.value", "kl_forward.direction", "kl_backward.value"]

    def interrupted(submission, context):
        raise KeyboardInterrupt

    registry = {ids[0]: lambda s, c: CheckOutcome(1.0), ids[1]: lambda s, c: CheckOutcome(0.0, "wrong"),
                ids[2]: interrupted}  # fmt: skip
    monkeypatch.setattr(runner, "default_registry", lambda: registry)
    results = tmp_path / "results.json"
    code = cli.main(
        ["--submission", str(ROOT / "reference" / "rewards.py"), "--results", str(results), "--no-training",
         "--quiet", "--only", ",".join(ids)]
    )  # fmt: skip
    assert code == cli.EXIT_INTERRUPTED == 130
    data = json.loads(results.read_text())
    assert sorted(t["extra_data"]["check_id"] for t in data["tests"]) == sorted(ids[:2])  # rubric order
    assert data["extra_data"]["internal_error"] is True
    assert "Interrupted (Ctrl-C) after 2 checks" in data["output"]
