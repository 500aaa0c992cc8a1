"""Feedback levels through the real grader: the level ``python -m grader`` uses is the rubric's unless
--feedback-level overrides it, a custom rubric's level is taken, and a copy whose catalogue is stripped to a
level (as a handout ships it) caps what is asked for and says so. Each grades one check of a sum-not-mean
submission in the sandbox, without training.

What each level shows, check by check, in process: tests/unit/test_feedback_levels.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grader.tools.handout import rubric_with_level
from tests.support.cli import run_grader
from tests.support.text import flat as _flat
from tests.support.wrong_sources import SUM_NOT_MEAN_FORWARD

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sum_not_mean_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("submission") / "rewards.py"
    path.write_text((ROOT / "reference" / "rewards.py").read_text() + SUM_NOT_MEAN_FORWARD)
    return path


@pytest.mark.parametrize(
    ("option", "level"),
    [((), "explain"), (("--feedback-level", "hint"), "hint"), (("--feedback-level", "solution"), "solution")],
)
def test_cli_uses_the_rubric_level_unless_overridden(
    sum_not_mean_file: Path, tmp_path: Path, option, level
) -> None:
    results = tmp_path / "results.json"
    code, data, out = run_grader(
        "--submission", sum_not_mean_file, "--results", results, "--no-training",
        "--only", "kl_forward.mean_over_tokens", *option,
    )  # fmt: skip
    assert code == 1 and data is not None, out
    assert data["feedback_level"] == level
    feedback_text = data["tests"][0]["output"]
    assert "[sum_not_mean]" in feedback_text and "Hint: " in feedback_text
    assert ("Why: " in feedback_text) == (level != "hint")
    assert ("Fix: " in feedback_text) == (level == "solution")
    assert f"Feedback level: {level} \u2014 your instructor chose how much the grader explains" in _flat(out)


def test_cli_takes_the_level_from_a_custom_rubric(sum_not_mean_file: Path, tmp_path: Path) -> None:
    rubric = tmp_path / "rubric.toml"
    rubric.write_text(
        rubric_with_level((ROOT / "grader" / "grading" / "rubric.toml").read_text(), "solution")
    )
    results = tmp_path / "results.json"
    code, data, out = run_grader(
        "--submission", sum_not_mean_file, "--results", results, "--no-training",
        "--only", "kl_forward.mean_over_tokens", "--rubric", rubric,
    )  # fmt: skip
    assert code == 1 and data is not None and data["feedback_level"] == "solution", out
    assert "Fix: " in data["tests"][0]["output"]


def test_asking_a_stripped_copy_for_more_is_capped_and_said(
    stripped_to_hint: Path, sum_not_mean_file: Path
) -> None:
    from grader.grading.runner import GradeRequest, grade

    results = grade(
        GradeRequest(
            sum_not_mean_file, training=False, only=["kl_forward.mean_over_tokens"], feedback_level="solution"
        )
    )
    assert results.feedback_level == "hint"
    assert (
        "Feedback level 'solution' was asked for, but this copy of the grader only contains the 'hint'"
        in (_flat(results.output))
    )
    assert "Why: " not in results.tests[0].output
    assert json.loads(results.to_json())["feedback_level"] == "hint"
