"""The tuning challenge: the declaration, its bounds, the scoring of the run, the reuse of a graded run, and the
leaderboard it feeds (in process: the engine's jobs are captured, nothing trains)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from grader.checks.challenge import score_challenge
from grader.contract import CallOutcome
from grader.grading.results import GradingResults, TestResult
from grader.training import engine as engine_module
from grader.training.challenge import MIN_STEPS, ChallengeConfig, read_challenge
from grader.training.engine import TrainingEngine
from grader.training.runs import RunRecord
from grader.training.settings import ChallengeTargets, load_settings

TARGETS = ChallengeTargets(min_sentiment=0.8, max_ref_perplexity=20.0, min_distinct_2=0.5, max_run_steps=120)
ALL_RUNS = frozenset({"baseline", "forward", "backward", "shaped", "challenge"})
TUNED = {
    "kl_type": "forward",
    "kl_coef": 0.3,
    "reward_shaping": "linear",
    "learning_rate": 6e-4,
    "max_steps": 40,
}


def _declare(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rewards.py"
    path.write_text(textwrap.dedent(text))
    return path


def test_a_declaration_is_read_without_running_the_file(tmp_path):
    path = _declare(tmp_path, f"raise SystemExit('never run')\nTRAINING_CHALLENGE = {TUNED!r}\n")
    assert read_challenge(path, 120).config == ChallengeConfig(**TUNED)


@pytest.mark.parametrize(
    "value, says",
    [
        ("None", "must be a dict"),
        ("dict(kl_type='none')", "plain values"),
        ({**TUNED, "beta": 1}, "unknown keys ['beta']"),
        ({k: v for k, v in TUNED.items() if k != "max_steps"}, "misses ['max_steps']"),
        ({**TUNED, "kl_type": "both"}, "must be one of ['none', 'forward', 'backward']"),
        ({**TUNED, "kl_coef": -0.1}, "between 0 and 2"),
        ({**TUNED, "learning_rate": 0.1}, "between 1e-05 and 0.001"),
        ({**TUNED, "learning_rate": True}, "must be a number"),
        ({**TUNED, "max_steps": 1000}, f"from {MIN_STEPS} to 120"),
        ({**TUNED, "max_steps": 80.0}, "whole number"),
    ],
)
def test_bad_declarations_say_what_to_change(tmp_path, value, says):
    text = value if isinstance(value, str) else repr(value)
    declaration = read_challenge(_declare(tmp_path, f"TRAINING_CHALLENGE = {text}\n"), 120)
    assert declaration.config is None and says in declaration.problem


def test_no_declaration_and_an_unreadable_file_are_problems_not_crashes(tmp_path):
    assert "no TRAINING_CHALLENGE" in read_challenge(_declare(tmp_path, "x = 1\n"), 120).problem
    assert "could not be read" in read_challenge(_declare(tmp_path, "def (:\n"), 120).problem


def _record(sentiment: float, perplexity: float, distinct: float, start: float = 0.6) -> RunRecord:
    final = {"step": 80, "sentiment_mean": sentiment, "ref_perplexity": perplexity, "distinct_2": distinct,
             "samples": [{"prompt": "The film was", "completion": " lovely and warm.", "sentiment": 0.9}]}  # fmt: skip
    return RunRecord("challenge", ok=True, history=[{"step": 0, "sentiment_mean": start}, final])


@pytest.mark.parametrize(
    "numbers, fraction, missed",
    [
        ((0.9, 12.0, 0.6), 1.0, []),  # positive and sensible
        ((0.7, 12.0, 0.6), 0.5, ["sentiment"]),  # sensible, half the way from 0.6 to 0.8
        ((0.55, 12.0, 0.6), 0.0, ["sentiment"]),  # sensible, lost sentiment
        (
            (0.999, 9000.0, 0.1),
            0.0,
            ["perplexity", "distinct-2"],
        ),  # the collapse: positive salad earns nothing
        ((0.999, 9000.0, 0.7), 0.0, ["perplexity"]),  # a varied salad is still not what the reference writes
        ((0.999, 12.0, 0.05), 0.0, ["distinct-2"]),  # one phrase repeated
    ],
)
def test_nothing_without_sensible_text_then_the_share_of_the_way_to_the_sentiment_target(
    numbers, fraction, missed
):
    outcome = score_challenge(_record(*numbers), TARGETS, "tiny", "nox -s train -- ...")
    assert outcome.fraction == pytest.approx(fraction)
    lines = outcome.feedback.splitlines()
    for name in ("sentiment", "perplexity", "distinct-2"):
        line = next(x for x in lines if x.strip().startswith(("sentiment", "reference perplexity", "distinct-2"))
                    and name in x)  # fmt: skip
        assert line.endswith("MISSED") == (name in missed), line
    assert "lovely and warm" in outcome.feedback and "nox -s train" in outcome.feedback


def test_the_leaderboard_names_the_preset_and_ranks_perplexity_low_first():
    entries = score_challenge(_record(0.9, 12.0, 0.6), TARGETS, "gpt2").leaderboard
    assert [(e.name, e.value, e.order) for e in entries] == [
        ("sentiment (gpt2)", 0.9, "desc"),
        ("reference perplexity (gpt2)", 12.0, "asc"),
        ("distinct-2 (gpt2)", 0.6, "desc"),
    ]


def test_the_leaderboard_reaches_results_json_and_reads_back():
    entries = [{"name": "sentiment (tiny)", "value": 0.9, "order": "desc"}]
    results = GradingResults(
        tests=[TestResult("challenge", 10, 10, check_id="challenge.outcome", leaderboard=entries)]
    )
    data = json.loads(results.to_json())
    assert data["leaderboard"] == entries and data["tests"][0]["extra_data"]["leaderboard"] == entries
    assert GradingResults.from_dict(data).leaderboard == entries
    assert "leaderboard" not in json.loads(GradingResults(tests=[TestResult("x", 1, 1)]).to_json())


class _Ok:
    def call(self, function, *args):
        return CallOutcome("ok", [0.1, 0.2])


def _jobs_made(tmp_path, monkeypatch, declaration: dict) -> list:
    made = []

    def fake_execute(jobs, **kwargs):
        made.extend(jobs)
        return {
            job.key: RunRecord(
                job.run, key=job.key, ok=True, preset="tiny", history=[{"step": 0}, {"step": 80}]
            )
            for job in jobs
        }

    monkeypatch.setattr(engine_module, "execute", fake_execute)
    path = _declare(tmp_path, f"TRAINING_CHALLENGE = {declaration!r}\n")
    runs = TrainingEngine(str(path), str(tmp_path), wanted=ALL_RUNS).run_set(_Ok(), 0, 60)
    assert runs.records["challenge"].run == "challenge" and runs.records["challenge"].usable
    return made


def test_a_configuration_identical_to_a_graded_run_reuses_it(tmp_path, monkeypatch):
    settings = load_settings("tiny")
    assert TUNED["kl_coef"] == settings.runs.forward_kl_coef and TUNED["max_steps"] == settings.runs.max_steps
    made = _jobs_made(tmp_path, monkeypatch, TUNED)
    assert sorted(j.run for j in made) == ["backward", "baseline", "forward", "shaped"]  # no fifth run


def test_any_other_configuration_is_a_run_of_its_own_with_the_students_settings(tmp_path, monkeypatch):
    made = _jobs_made(tmp_path, monkeypatch, {**TUNED, "learning_rate": 1e-4})
    (challenge,) = [j for j in made if j.run == "challenge"]
    assert challenge.overrides == {**TUNED, "learning_rate": 1e-4}


def test_only_the_runs_the_grades_checks_judge_are_made(tmp_path, monkeypatch):
    """--only challenge.outcome makes the challenge's run alone, even when a graded run is its twin."""
    made = []

    def fake_execute(jobs, **kwargs):
        made.extend(jobs)
        history = [{"step": 0}, {"step": 80}]
        return {
            job.key: RunRecord(job.run, key=job.key, ok=True, preset="tiny", history=history) for job in jobs
        }

    monkeypatch.setattr(engine_module, "execute", fake_execute)
    path = _declare(tmp_path, f"TRAINING_CHALLENGE = {TUNED!r}\n")
    engine = TrainingEngine(str(path), str(tmp_path), wanted=frozenset({"challenge"}))
    runs = engine.run_set(_Ok(), 0, 60)
    assert [j.run for j in made] == ["challenge"] and runs.records["challenge"].usable
    made.clear()
    shaped_only = TrainingEngine(str(path), str(tmp_path), wanted=frozenset({"forward", "shaped"}))
    shaped_only.run_set(_Ok(), 0, 60)
    assert sorted(j.run for j in made) == ["forward", "shaped"]  # no control, no KL run it does not judge


def test_the_runner_asks_for_the_runs_of_its_checks():
    from grader.checks import REGISTRY
    from grader.grading.rubric import load_rubric
    from grader.grading.runner import runs_judged

    rubric = load_rubric()
    assert runs_judged(rubric.entries, REGISTRY) == ALL_RUNS
    assert runs_judged([rubric["training.shaped"]], REGISTRY) == {"forward", "shaped"}
    assert runs_judged([rubric["kl_forward.value"]], REGISTRY) == frozenset()
    unknown = {**REGISTRY, "training.shaped": lambda submission, context: None}  # an instructor's own check
    assert runs_judged([rubric["training.shaped"]], unknown) is None
