"""The shared baseline run (grader/training/baseline.py, ``python -m grader --baseline-run FILE``): a file
that does not match the grade (seed, preset, training settings, libraries, run settings) or is not an ok
baseline is refused with one line, before anything is graded, and never changes a grade.

The files here are made from a synthetic run record, so no training run is needed; the one test that makes a
real baseline and grades with it is in tests/integration/test_batch_ray.py (slow).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from grader import cli
from grader.checks.training import TrainingInternalError, run_set
from grader.contract import TrainingContext
from grader.training import baseline as shared
from grader.training.engine import TrainingEngine, TrainingOptions
from grader.training.settings import load_settings, train_config

REPO = Path(__file__).resolve().parents[2]


def _history() -> list[dict]:
    return [
        {
            "step": step,
            "sentiment_mean": 0.6 + step / 400,
            "kl_forward": step / 100,
            "kl_backward": step / 120,
        }
        for step in (0, 40, 80)
    ]


def _content(seed: int = 0, preset: str = "tiny") -> dict:
    """A baseline file as ``make_baseline`` writes it, for a run that never happened."""
    config = train_config("baseline", load_settings(preset), seed, "/tmp/somewhere")
    record = {
        "run": "baseline",
        "ok": True,
        "error": None,
        "component": None,
        "internal": False,
        "history": _history(),
        "key": "baseline",
        "seed": seed,
        "preset": preset,
        "config": config,
    }
    return {"format": shared.FORMAT, "version": shared.VERSION, "seed": seed, "preset": preset,
            **shared.environment(), "record": record}  # fmt: skip


def _file(tmp_path: Path, content: dict, name: str = "baseline.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(content), encoding="utf-8")
    return path


def test_a_matching_file_gives_its_record(tmp_path: Path) -> None:
    record = shared.load_baseline(_file(tmp_path, _content(seed=3)), seed=3, preset="tiny")
    assert record.run == "baseline" and record.usable and record.seed == 3 and record.history == _history()
    # --training-preset auto accepts the preset the baseline was made with (the lanes compare it later).
    assert shared.load_baseline(_file(tmp_path, _content(seed=3)), seed=3, preset="auto").preset == "tiny"


def _spoil(**changes) -> dict:
    content = copy.deepcopy(_content())
    for key, value in changes.items():
        target = content
        *path, last = key.split("__")
        for part in path:
            target = target[part]
        target[last] = value
    return content


@pytest.mark.parametrize(
    ("make", "seed", "preset", "says"),
    [
        (lambda: _spoil(seed=1), 0, "tiny", "was made for seed 1, this grade uses seed 0"),
        (lambda: _content(), 0, "gpt2", "was made with the tiny preset, this grade uses gpt2"),
        (
            lambda: _spoil(settings_digest="0" * 64),
            0,
            "tiny",
            "other training settings (thresholds.toml changed since)",
        ),
        (
            lambda: _spoil(versions={"torch": "1.0", "transformers": "4.0", "trl": "0.1"}),
            0,
            "tiny",
            "torch 1.0",
        ),
        (lambda: _spoil(record__config__max_steps=5), 0, "tiny", "other run settings than this grader's"),
        (
            lambda: _spoil(record__ok=False, record__error="it timed out"),
            0,
            "tiny",
            "a failed run (it timed out)",
        ),
        (lambda: _spoil(record__internal=True), 0, "tiny", "a failed run"),
        (lambda: _spoil(record__history=_history()[:1]), 0, "tiny", "no usable validation history"),
        (
            lambda: _spoil(record__history=[{"step": 0}, {"step": 80}]),
            0,
            "tiny",
            "no usable validation history",
        ),
        (lambda: _spoil(record__run="forward"), 0, "tiny", "holds no baseline run record"),
        (lambda: _spoil(record__seed=1), 0, "tiny", "another seed or preset than the file says"),
        (lambda: _spoil(format="something else"), 0, "tiny", "is not a baseline-run file"),
        (lambda: _spoil(version=99), 0, "tiny", "format version 99"),
    ],
)
def test_a_file_that_does_not_match_is_refused(
    tmp_path: Path, make, seed: int, preset: str, says: str
) -> None:
    with pytest.raises(shared.BaselineError) as exc:
        shared.load_baseline(_file(tmp_path, make()), seed=seed, preset=preset)
    assert says in str(exc.value) and "\n" not in str(exc.value)


@pytest.mark.parametrize("text", [None, "{not json", "[1, 2]"])
def test_an_unreadable_file_is_refused(tmp_path: Path, text: str | None) -> None:
    path = tmp_path / "baseline.json"
    if text is not None:
        path.write_text(text, encoding="utf-8")
    with pytest.raises(shared.BaselineError) as exc:
        shared.load_baseline(path, seed=0, preset="auto")
    assert str(path) in str(exc.value) and "\n" not in str(exc.value)


def test_the_grader_refuses_a_mismatched_baseline_before_grading(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "results.json"
    path = _file(tmp_path, _content(seed=1))
    argv = ["--submission", str(REPO / "exercise" / "rewards.py"), "--results", str(results), "--quiet"]
    assert cli.main([*argv, "--baseline-run", str(path)]) == cli.EXIT_ERROR  # graded at seed 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"python -m grader: error: --baseline-run: the shared baseline {path} was made for seed 1, "
                   "this grade uses seed 0"]  # fmt: skip
    data = json.loads(results.read_text())
    assert data["score"] == 0 and "was made for seed 1" in data["output"]
    # With --no-training the baseline is not used, so it is not checked either.
    assert cli.main([*argv, "--baseline-run", str(path), "--no-training"]) == cli.EXIT_POINTS_LOST


def test_run_set_refuses_a_mismatched_baseline_without_running_anything(tmp_path: Path) -> None:
    """The training checks check the file again (a TrainingContext can come from elsewhere than the CLI)."""

    class NoCalls:
        def call(self, *args, **kwargs):
            raise AssertionError("nothing may run with a baseline that does not match")

    engine = TrainingEngine(
        str(REPO / "exercise" / "rewards.py"),
        str(tmp_path),
        options=TrainingOptions(preset="tiny", baseline_run=str(_file(tmp_path, _content(preset="gpt2")))),
    )
    context = TrainingContext(seed=0, training=engine)
    with pytest.raises(TrainingInternalError, match="made with the gpt2 preset, this grade uses tiny"):
        run_set(NoCalls(), context)


def test_the_grade_hands_the_file_to_training_contexts_only(tmp_path) -> None:
    """GradeRequest(training_options=TrainingOptions(baseline_run=...)) -> the grade's one training engine, which
    every training check's TrainingContext carries; the property checks' contexts do not."""
    from grader.contract import CheckOutcome
    from grader.grading.runner import GradeRequest, grade

    seen = []

    def check(submission, context):
        seen.append(context)
        return CheckOutcome(1.0)

    submission = tmp_path / "rewards.py"
    submission.write_text("")
    ids = ["kl_forward.value", "training.forward_kl", "training.backward_kl"]
    shared = str((tmp_path / "baseline.json").absolute())
    request = GradeRequest(submission, only=ids, training_options=TrainingOptions(baseline_run=shared))
    grade(request, registry=dict.fromkeys(ids, check))
    plain, *training = seen
    assert not isinstance(plain, TrainingContext)
    assert [c.training.options.baseline_run for c in training] == [shared] * 2
    assert training[0].training is training[1].training  # the grade's training checks share one engine
