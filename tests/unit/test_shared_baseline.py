"""The shared baseline run (grader/training/baseline.py, ``python -m grader --baseline-run FILE``): a file
that does not match the grade (seed, preset, training settings, libraries, pipeline, run settings) or is not an ok
baseline is refused with one line, before anything is graded, and never changes a grade.

The files here are made from a synthetic run record (tests/support/baseline_files.py), so no training run is
needed. The grader refusing such a file from its command line, and a grade handing the file to its training
checks: tests/integration/test_shared_baseline_cli.py; a real baseline made and graded with:
tests/integration/test_batch_ray.py (slow).
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from grader.checks.training import TrainingInternalError, run_set
from grader.contract import TrainingContext
from grader.training import baseline as shared
from grader.training.engine import TrainingEngine, TrainingOptions
from tests.support.baseline_files import baseline_content as _content
from tests.support.baseline_files import baseline_file as _file
from tests.support.baseline_files import baseline_history as _history

REPO = Path(__file__).resolve().parents[2]


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
        (
            lambda: _spoil(pipeline_digest="0" * 64),
            0,
            "tiny",
            "another version of the training pipeline (exercise/ or grader/training/ changed since)",
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
