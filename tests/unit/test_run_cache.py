"""The control run kept across grades (grader/training/cache.py): the second grade at a seed and preset reuses
the first grade's control instead of making it, only while everything the run depends on matches, never a run
this grader's settings would not make, and never as evidence of how fast the machine is now.

The runs are made-up records handed to a real engine in place of the GRPO runs (no training process here); a
real grade that keeps its control: tests/integration/test_training_checks_grade.py (slow).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from grader.checks.training import overrun_cause
from grader.contract import CallOutcome
from grader.training import baseline as shared
from grader.training import cache as run_cache
from grader.training import engine as engine_module
from grader.training import runs as training_runs
from grader.training.engine import TrainingEngine, TrainingOptions
from grader.training.runs import RunRecord
from tests.support.baseline_files import baseline_content
from tests.support.run_records import GOOD, timed_out

REFERENCE = Path(__file__).resolve().parents[2] / "reference" / "rewards.py"


def control(seed: int = 0) -> RunRecord:
    """A finished control run as a lane records it: the configuration this grader's settings give it."""
    return RunRecord.from_dict(baseline_content(seed=seed)["record"])


class Answers:
    """Every pre-flight call answers one finite value per completion (the engine's gate), as the reference does."""

    def call(self, function, *args) -> CallOutcome:
        return CallOutcome("ok", value=[0.0] * len(args[0]))


@pytest.fixture
def made(monkeypatch) -> list[list[str]]:
    """The runs each grade asked the lanes for, by run name; the lanes answer with made-up records."""
    asked: list[list[str]] = []

    def fake_execute(jobs, **_kwargs):
        asked.append([job.run for job in jobs])
        answers = {**GOOD, "baseline": control()}
        return {job.key: replace(answers[job.run], key=job.key, seed=job.seed) for job in jobs}

    monkeypatch.setattr(engine_module, "execute", fake_execute)
    return asked


def grade_runs(tmp_path: Path, cache_dir: str):
    engine = TrainingEngine(
        str(REFERENCE),
        str(tmp_path),
        options=TrainingOptions(preset="tiny", run_cache=cache_dir),
        wanted=frozenset({"baseline", "forward", "backward", "shaped"}),
    )
    return engine.run_set(Answers(), seed=0, budget_s=300)


def test_the_second_grade_reuses_the_first_grades_control(tmp_path: Path, made) -> None:
    cache = str(tmp_path / "cache")
    first = grade_runs(tmp_path, cache)
    assert sorted(made[0]) == ["backward", "baseline", "forward", "shaped"]
    assert not first.records["baseline"].made_earlier and "kept" not in first.baseline_note
    second = grade_runs(tmp_path, cache)
    assert sorted(made[1]) == ["backward", "forward", "shaped"]  # three runs, not four
    kept = second.records["baseline"]
    assert kept.made_earlier and kept.history == first.records["baseline"].history
    assert "made by an earlier grade on this machine" in second.baseline_note
    assert "--no-run-cache" in second.baseline_note


def test_without_a_cache_every_grade_makes_its_control(tmp_path: Path, made) -> None:
    grade_runs(tmp_path, "")
    grade_runs(tmp_path, "")
    assert [sorted(runs) for runs in made] == [["backward", "baseline", "forward", "shaped"]] * 2
    assert not list(tmp_path.rglob("baseline-*.json"))


def test_a_kept_control_of_another_grader_is_not_used(tmp_path: Path, made, monkeypatch) -> None:
    """Another pipeline (a pulled grader, an edited exercise/): its control is another run, made again."""
    cache = str(tmp_path / "cache")
    grade_runs(tmp_path, cache)
    monkeypatch.setattr(shared, "pipeline_digest", lambda: "0" * 64)
    grade_runs(tmp_path, cache)
    assert "baseline" in made[1]
    assert len(list(Path(cache).glob("baseline-tiny-seed0-*.json"))) == 2  # each grader its own entry


def test_only_a_finished_control_of_this_graders_settings_is_kept(tmp_path: Path) -> None:
    """A shortened run (a test's own settings, an interrupted run) or a failed one is never kept: a later grade
    would take it for its control."""
    cache = tmp_path / "cache"
    short = control()
    short = replace(short, config={**short.config, "max_steps": 4})
    assert run_cache.write(cache, short) is None
    assert run_cache.write(cache, replace(control(), ok=False, error="stopped")) is None
    assert run_cache.write(cache, replace(control(), made_earlier=True)) is None
    assert run_cache.write(cache, GOOD["forward"]) is None
    assert not cache.exists() or not list(cache.iterdir())
    path = run_cache.write(cache, control())
    assert path is not None and run_cache.read(cache, 0, "tiny").history == control().history


def test_an_unreadable_entry_is_a_miss(tmp_path: Path) -> None:
    entry = run_cache.entry(tmp_path, 0, "tiny")
    entry.write_text("{not json", encoding="utf-8")
    assert run_cache.read(tmp_path, 0, "tiny") is None
    entry.write_text(json.dumps(baseline_content(seed=1)), encoding="utf-8")  # another seed's run
    assert run_cache.read(tmp_path, 0, "tiny") is None


def test_the_cache_is_found_by_environment_variable_else_under_the_users_cache(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(run_cache.ENV, str(tmp_path / "here"))
    assert run_cache.default_dir() == str(tmp_path / "here")
    monkeypatch.setenv(run_cache.ENV, "")
    assert run_cache.default_dir() == ""  # set empty: no cache
    monkeypatch.delenv(run_cache.ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert run_cache.default_dir() == str(tmp_path / "xdg" / "rl-sentiment" / "runs")


def test_a_kept_controls_time_is_no_evidence_of_a_slow_machine() -> None:
    """Made on a quiet machine an hour ago, it says nothing about now; the run's own time still does."""
    slow_control = replace(control(), wall_time_s=900.0)  # would say "the machine is slow"
    missed = timed_out("forward", budget_s=600.0, budget_cost=1.4)
    assert overrun_cause(missed, slow_control) is not None
    assert overrun_cause(missed, replace(slow_control, made_earlier=True)) is None


def test_one_lane_per_run_when_there_is_one_run_more_than_cores(monkeypatch) -> None:
    monkeypatch.setattr(training_runs.os, "sched_getaffinity", lambda _pid: {0, 1})
    assert [training_runs.default_lanes(n) for n in (1, 2, 3, 4, 5)] == [2, 2, 3, 2, 2]
