"""The ``results.json`` the grader writes (grader/grading/results.py), compared whole: its top-level keys as
Gradescope reads them, the optional keys present only when they say something, the ``extra_data`` a tool reads
(full marks, grader fault, seed, what was not gradable), the text's layout, and the atomic write (a temporary
file beside the target, renamed over it; nothing partial left on failure).

Added for the mutation score of grader/grading/ (tests/README.md, "Mutation score"): the schema tests checked
that some keys are present (``<=``), so a renamed or always-present key went unseen.
"""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path

import pytest

from grader.grading.results import GradingResults, TestResult


def _plain_test(name: str = "a: passes", score: float = 2, max_score: float = 2) -> dict:
    """A check with nothing optional, as written: its ``extra_data`` is empty (no empty strings or lists)."""
    return {
        "name": name,
        "score": score,
        "max_score": max_score,
        "output": "",
        "visibility": "visible",
        "tags": [],
        "status": "passed" if score >= max_score else "failed",
        "extra_data": {},
    }


def test_a_check_with_nothing_optional_writes_no_extra_data() -> None:
    assert TestResult("a: passes", 2, 2).to_gradescope_dict() == _plain_test()


def test_max_score_below_0_or_not_finite_is_refused_naming_the_check() -> None:
    for bad in (-1, math.nan, math.inf):
        with pytest.raises(ValueError) as raised:
            TestResult("kl: value", 0, bad)
        assert str(raised.value) == f"kl: value: max_score must be a finite number >= 0, not {bad!r}"


def test_results_with_nothing_optional_are_exactly_gradescope_s_keys() -> None:
    results = GradingResults([TestResult("a: passes", 2, 2)], execution_time=1.23456, output="done")
    assert results.to_gradescope_dict() == {
        "score": 2,
        "max_score": 2,
        "execution_time": 1.235,  # to the millisecond
        "output": "done",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": [_plain_test()],
        # no leaderboard, feedback_level or sandbox: they are written only when there is one
        "extra_data": {"full_marks": True, "internal_error": False, "seed": None, "gradable": True},
    }


def test_results_with_every_optional_key_write_each_where_tools_read_it() -> None:
    entry = {"name": "sentiment (tiny)", "value": 0.9, "order": "desc"}
    results = GradingResults(
        [
            TestResult("a: passes", 2, 2, leaderboard=[entry]),
            # not gradable: named by its check id, or by its name when it has none
            TestResult("b: control", 0, 0, check_id="training.forward", gradable=False, points_not_graded=5),
            TestResult("c: other", 0, 0, gradable=False, points_not_graded=2.5),
        ],
        execution_time=0.0004,
        visibility="after_due_date",
        stdout_visibility="visible",
        seed=42,
        feedback_level="explain",
        sandbox={"isolation": "landlock"},
    )
    data = results.to_gradescope_dict()
    assert {k: v for k, v in data.items() if k != "tests"} == {
        "score": 2,
        "max_score": 2,
        "execution_time": 0.0,
        "output": "",
        "visibility": "after_due_date",
        "stdout_visibility": "visible",
        "leaderboard": [entry],
        "feedback_level": "explain",
        "sandbox": {"isolation": "landlock"},
        "extra_data": {
            "full_marks": False,
            "internal_error": False,
            "seed": 42,
            "gradable": False,
            "not_gradable": ["training.forward", "c: other"],
            "points_not_graded": 7.5,
        },
    }
    assert data["tests"][0]["extra_data"] == {"leaderboard": [entry]}
    assert data["tests"][1]["extra_data"] == {
        "check_id": "training.forward",
        "gradable": False,
        "points_not_graded": 5,
    }


def test_results_json_is_indented_by_two_one_key_a_line_and_ends_with_a_newline() -> None:
    # read by people too (a TA opening a student's results.json; diffs between two grades)
    text = GradingResults([TestResult("a: passes", 2, 2)]).to_json()
    lines = text.split("\n")
    assert lines[:3] == ["{", '  "score": 2.0,', '  "max_score": 2.0,']
    assert "    {" in lines and '      "name": "a: passes",' in lines
    assert text.endswith("}\n")
    assert json.loads(text) == GradingResults([TestResult("a: passes", 2, 2)]).to_gradescope_dict()


def _strict(text: str):
    def refuse(constant: str):
        raise AssertionError(f"results.json holds {constant}, which strict JSON readers refuse")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize(
    "results",
    [
        GradingResults([TestResult("a", 1, 1, measurements={"kl_ratio": math.inf})]),
        GradingResults(
            [TestResult("a", 1, 1, leaderboard=[{"name": "s", "value": math.nan, "order": "desc"}])]
        ),
        GradingResults([TestResult("a", 1, 1)], execution_time=math.nan),
    ],
)
def test_a_non_finite_number_never_reaches_results_json(tmp_path: Path, results: GradingResults) -> None:
    """Gradescope and jq read strict JSON: NaN or Infinity in the file would make the whole grade unreadable,
    and refusing to write would lose the grade (a KL ratio over a control at 0 is infinite). It is written as
    null; the rest of the grade is kept."""
    target = tmp_path / "results.json"
    target.write_text('{"old": true}\n')
    results.write_json(target)
    data = _strict(target.read_text())
    assert data["tests"][0]["score"] == 1 and os.listdir(tmp_path) == ["results.json"]
    extra = data["tests"][0].get("extra_data", {})
    assert extra.get("measurements", {"kl_ratio": None})["kl_ratio"] is None
    assert [e["value"] for e in extra.get("leaderboard", [{"value": None}])] == [None]
    assert data["execution_time"] is None or math.isfinite(data["execution_time"])


def test_the_file_is_written_into_folders_that_do_not_exist_yet(tmp_path: Path) -> None:
    target = tmp_path / "out" / "grades" / "results.json"
    GradingResults([TestResult("a", 1, 1)]).write_json(target)
    assert json.loads(target.read_text(encoding="utf-8"))["score"] == 1


def test_the_file_is_readable_by_everyone_and_executable_by_no_one(tmp_path: Path) -> None:
    # mkstemp makes its file 0600: the Gradescope harness and a TA's tools may read as another user
    target = tmp_path / "results.json"
    GradingResults([TestResult("a", 1, 1)]).write_json(target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_the_file_is_first_written_to_a_hidden_temporary_file_beside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Beside it: ``os.replace`` cannot move a file across file systems. Hidden, named after the target and
    ending ``.tmp``: a reader listing the folder (Gradescope, the batch) never takes it for results, and one left
    by a killed grader says what it was."""
    seen: list[tuple[str, str, str]] = []
    real_replace = os.replace

    def replace(src, dst) -> None:
        seen.append((str(src), str(dst), Path(src).read_text(encoding="utf-8")))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    target = tmp_path / "results.json"
    results = GradingResults([TestResult("a", 1, 1, "café ✓")])
    results.write_json(target)
    [(src, dst, text)] = seen
    assert dst == str(target)
    assert Path(src).parent == tmp_path
    name = Path(src).name
    assert (
        name.startswith(".results.json.") and name.endswith(".tmp") and len(name) > len(".results.json..tmp")
    )
    assert text == results.to_json()  # complete before the rename
    assert target.read_bytes() == results.to_json().encode("utf-8")


def test_a_relative_path_is_written_in_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    GradingResults([TestResult("a", 1, 1)]).write_json("results.json")
    assert os.listdir(tmp_path) == ["results.json"]
    assert json.loads((tmp_path / "results.json").read_text())["score"] == 1
