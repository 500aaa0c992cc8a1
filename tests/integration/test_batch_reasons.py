"""The batch with the real grader and the options a course sets: the gradebook's reason column tells a syntax error
from an untouched stub and from a submission with one function not implemented, and --feedback-level, --rubric and
--hidden-visibility reach every grade's results.json. A five-check rubric keeps each grade to seconds."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from grader.grading.results import GradingResults
from grader.tools.batch import BatchConfig, run_batch
from tests.support.files import write_file
from tests.support.wrong_sources import SUM_NOT_MEAN_FORWARD

REPO = Path(__file__).resolve().parents[2]
REFERENCE = (REPO / "reference" / "rewards.py").read_text(encoding="utf-8")
#: Explain by default: a "hint" in the results can only come from --feedback-level.
RUBRIC = """
[feedback]
level = "explain"

[defaults]
hidden_visibility = "after_due_date"

[checks."kl_forward.zero_when_identical"]
name = "kl_penalty_forward: zero when identical"
points = 2

[checks."kl_forward.mean_over_tokens"]
name = "kl_penalty_forward: a mean over tokens"
points = 2

[checks."kl_forward.value_random"]
name = "kl_penalty_forward: value on random batches (hidden)"
points = 1
hidden = true

[checks."kl_backward.zero_when_identical"]
name = "kl_penalty_backward: zero when identical"
points = 2

[checks."shaping.contract"]
name = "shaped_reward: contract"
points = 2
"""
NOT_IMPLEMENTED_SHAPING = (
    "\n\ndef shaped_reward(scores, completions, prompts=None):\n    raise NotImplementedError('Exercise 2')\n"
)


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("course")
    subs = root / "subs"
    write_file(subs / "syntax.py", "def kl_penalty_forward(:\n")
    write_file(subs / "stub.py", (REPO / "exercise" / "rewards.py").read_text(encoding="utf-8"))
    write_file(subs / "partial.py", REFERENCE + NOT_IMPLEMENTED_SHAPING)
    write_file(subs / "summed.py", REFERENCE + SUM_NOT_MEAN_FORWARD)
    rubric = write_file(root / "course.toml", RUBRIC)
    config = BatchConfig(
        subs,
        root / "out",
        no_training=True,
        jobs=2,
        quiet=True,
        feedback_level="hint",
        rubric=rubric,
        hidden_visibility="hidden",
    )
    rows, _ = run_batch(config)
    assert [r.name for r in rows] == ["partial", "stub", "summed", "syntax"]
    return root / "out"


def _results(out: Path, name: str) -> GradingResults:
    return GradingResults.from_dict(json.loads((out / name / "results.json").read_text(encoding="utf-8")))


def test_the_reason_column_tells_a_syntax_error_from_a_stub_and_a_missing_function(graded: Path) -> None:
    with (graded / "gradebook.csv").open(newline="", encoding="utf-8") as fh:
        book = {row["submission"]: row for row in csv.DictReader(fh)}
    assert book["syntax"]["reason"] == "syntax error"
    assert book["stub"]["reason"] == "not implemented: every function"
    assert book["partial"]["reason"] == "not implemented: shaped_reward"
    assert book["summed"]["reason"] == ""  # a wrong answer, graded normally
    assert all(book[name]["score"] == "0" for name in ("syntax", "stub"))
    assert all(book[name]["error"] == "" for name in book)  # every grade finished normally


def test_the_course_options_reach_every_grade(graded: Path) -> None:
    for name in ("partial", "stub", "summed", "syntax"):
        results = _results(graded, name)
        assert [t.check_id for t in results.tests] == [
            "kl_forward.zero_when_identical",
            "kl_forward.mean_over_tokens",
            "kl_forward.value_random",
            "kl_backward.zero_when_identical",
            "shaping.contract",
        ], name  # --rubric
        hidden = {t.check_id: t.visibility for t in results.tests}["kl_forward.value_random"]
        assert hidden == "hidden", name  # --hidden-visibility
    summed = _results(graded, "summed")
    assert summed.feedback_level == "hint"  # --feedback-level, over the rubric's "explain"
    assert any(t.misconception == "sum_not_mean" for t in summed.tests)
