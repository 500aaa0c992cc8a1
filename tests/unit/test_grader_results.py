"""The grader's results model (Gradescope JSON, JUnit XML, atomic writes) and the rubric loader."""

from __future__ import annotations

import json
import math
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from grader.grading.results import GradingResults, TestResult, internal_error_results
from grader.grading.rubric import DEFAULT_RUBRIC, RubricError, load_rubric, parse_rubric
from tests.support.check_ids import CHALLENGE_IDS, HIDDEN_IDS, PROPERTY_IDS, RUN_IDS


def _results() -> GradingResults:
    return GradingResults(
        tests=[
            TestResult(
                "a: passes", 4, 4, "Passed.", tags=["kl_penalty_forward"], check_id="kl_forward.contract"
            ),
            TestResult(
                "b: half",
                1.5,
                3,
                "Problem: <half> & \x00 bad char",
                visibility="after_due_date",
                check_id="kl_forward.direction",
                misconception="k3_as_reward",
            ),
            TestResult(
                "c: grader bug",
                0,
                2,
                "Internal grader error: boom",
                check_id="shaping.contract",
                internal_error=True,
            ),
            TestResult(
                "d: advice",
                0,
                0,
                "repetition out-earns",
                check_id="shaping.goal",
                advisory=True,
                advisory_failed=True,
            ),
        ],
        execution_time=1.23456,
        output="summary",
        seed=7,
    )


def test_gradescope_dict_schema_and_score_is_the_sum() -> None:
    data = _results().to_gradescope_dict()
    assert {"score", "execution_time", "output", "tests"} <= set(data)
    assert data["score"] == 5.5 == sum(t["score"] for t in data["tests"])
    assert data["max_score"] == 9
    for test in data["tests"]:
        assert {"name", "score", "max_score", "output", "visibility", "tags"} <= set(test)
        assert test["visibility"] in ("visible", "hidden", "after_due_date", "after_published")
        assert isinstance(test["tags"], list)
    assert data["tests"][1]["visibility"] == "after_due_date"
    json.loads(json.dumps(data, allow_nan=False))  # strict JSON


def test_full_marks_definition() -> None:
    assert not _results().full_marks
    good = GradingResults(
        [TestResult("x", 2, 2), TestResult("advice", 0, 0, advisory=True, advisory_failed=True)]
    )
    assert good.full_marks  # a failed advisory check costs nothing
    assert not GradingResults([]).full_marks  # nothing graded is not full marks
    assert not GradingResults([TestResult("x", 2, 2)], internal_error=True).full_marks


def test_scores_are_clamped_and_non_finite_scores_are_zero() -> None:
    assert TestResult("x", 5, 2).score == 2
    assert TestResult("x", -1, 2).score == 0
    assert TestResult("x", math.nan, 2).score == 0
    with pytest.raises(ValueError):
        TestResult("x", 0, -1)


def test_junit_xml_parses_with_the_right_counts() -> None:
    root = ET.fromstring(_results().to_junit_xml())
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("4", "2", "1")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["a: passes", "b: half", "c: grader bug", "d: advice"]
    assert cases[0].find("failure") is None and cases[0].find("error") is None
    failure = cases[1].find("failure")
    assert failure is not None and "<half>" in (failure.text or "") and failure.get("type") == "k3_as_reward"
    assert cases[2].find("error") is not None


def test_write_json_is_atomic_and_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "out" / "results.json"
    target.parent.mkdir()
    target.write_text("old")
    _results().write_json(target)
    assert json.loads(target.read_text())["score"] == 5.5
    assert os.listdir(target.parent) == ["results.json"]


def test_write_json_failure_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "results.json"
    target.write_text('{"old": true}')
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        _results().write_json(target)
    assert target.read_text() == '{"old": true}'
    assert os.listdir(tmp_path) == ["results.json"]


def test_internal_error_results() -> None:
    data = internal_error_results("boom").to_gradescope_dict()
    assert data["score"] == 0 and "boom" in data["output"] and data["extra_data"]["internal_error"]


# --- rubric ---------------------------------------------------------------------------------------------------


def test_shipped_rubric_is_valid_and_worth_100_plus_the_challenge() -> None:
    rubric = load_rubric(known_ids=PROPERTY_IDS | HIDDEN_IDS | RUN_IDS)
    assert {e.check_id for e in rubric.entries} == PROPERTY_IDS | HIDDEN_IDS | RUN_IDS
    # 100 for the functions (80 property checks, 20 training) and 10 for the tuning challenge
    assert rubric.total_points == 110
    assert (
        math.fsum(rubric[c].points for c in CHALLENGE_IDS) == 10 and not rubric["challenge.outcome"].requires
    )
    # the hidden checks are marked so, and Gradescope shows their results after the due date by default
    assert {e.check_id for e in rubric.entries if e.hidden} == HIDDEN_IDS
    assert {e.visibility for e in rubric.entries if e.hidden} == {"after_due_date"}
    # the property checks (what --no-training grades) are 80, the training checks 20
    assert math.fsum(e.points for e in rubric.selected(training=False)) == 80
    assert {e.check_id for e in rubric.entries if e.requires_training} == RUN_IDS
    by_id = {e.check_id: e for e in rubric.entries}
    # the shaping's defining check is scored (issue 8): `return list(scores)` must not earn the exercise
    assert not by_id["shaping.goal"].advisory and by_id["shaping.goal"].points > 0
    for fn in ("kl_forward", "kl_backward"):
        group = [e for e in rubric.entries if e.check_id.startswith(fn + ".")]
        assert max(group, key=lambda e: e.points).check_id == f"{fn}.direction"


def test_shipped_rubric_matches_the_registry() -> None:
    from grader.checks import REGISTRY

    assert {e.check_id for e in load_rubric().entries} == set(REGISTRY)


def _rubric(**entry: object) -> dict:
    return {"checks": {"kl_forward.contract": {"name": "x", "points": 1, **entry}}}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_rubric(points=-1), "'points' must be a number >= 0"),
        (_rubric(points=True), "'points' must be a number >= 0"),
        (_rubric(points=float("inf")), "'points' must be a number >= 0"),
        (_rubric(name=""), "'name' must be a non-empty string"),
        (_rubric(visibility="public"), "'visibility' must be one of"),
        (_rubric(advisory=True), "advisory check is worth 0 points"),
        (_rubric(budget_s=0), "'budget_s' must be"),
        (_rubric(pointz=3), "unknown key 'pointz'"),
        (_rubric(tags="x"), "'tags' must be a list"),
        (_rubric(requires_training="yes"), "'requires_training' must be true or false"),
        ({"checks": {"Bad Id": {"name": "x", "points": 1}}}, "not a check id"),
        ({"checks": {"kl_forward.directoin": {"name": "x", "points": 1}}}, "unknown check id"),
        ({"checks": {}}, "no checks"),
        ({"checks": {"kl_forward.contract": {"name": "x", "points": 0}}}, "0 points in total"),
        ({**_rubric(), "extra": 1}, "unknown top-level key 'extra'"),
    ],
)
def test_rubric_validation_errors(data: dict, message: str) -> None:
    with pytest.raises(RubricError, match=message.replace("(", r"\(").replace("'", "'")):
        parse_rubric(data, Path("r.toml"), known_ids=PROPERTY_IDS)


def test_rubric_reports_every_problem_at_once(tmp_path: Path) -> None:
    path = tmp_path / "r.toml"
    path.write_text('[checks."kl_forward.contract"]\nname = ""\npoints = -2\n')
    with pytest.raises(RubricError) as info:
        load_rubric(path)
    assert str(path) in str(info.value) and "'name'" in str(info.value) and "'points'" in str(info.value)


def test_rubric_file_errors(tmp_path: Path) -> None:
    with pytest.raises(RubricError, match="cannot read"):
        load_rubric(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[checks\n")
    with pytest.raises(RubricError, match="not valid TOML"):
        load_rubric(bad)


def test_training_ids_require_training_by_default_and_are_skipped_without_it() -> None:
    rubric = parse_rubric(
        {
            "defaults": {"budget_s": 5},
            "checks": {
                "kl_forward.contract": {"name": "a", "points": 1},
                "training.sentiment_rises": {
                    "name": "training: sentiment rises",
                    "points": 5,
                    "budget_s": 900,
                },
            },
        }
    )
    assert [e.check_id for e in rubric.selected(training=False)] == ["kl_forward.contract"]
    assert (
        rubric["training.sentiment_rises"].requires_training
        and rubric["training.sentiment_rises"].budget_s == 900
    )
    assert rubric["kl_forward.contract"].budget_s == 5
    assert DEFAULT_RUBRIC.is_file()


def test_from_dict_reads_back_what_to_gradescope_dict_wrote() -> None:
    original = _results()
    original.seed, original.feedback_level = 7, "hint"
    data = json.loads(original.to_json())
    again = GradingResults.from_dict(data)
    assert again.to_gradescope_dict() == original.to_gradescope_dict()
    assert [t.check_id for t in again.tests] == [t.check_id for t in original.tests]
    with pytest.raises(ValueError, match="a test has no name"):
        GradingResults.from_dict({"tests": [{"score": 1}]})
    with pytest.raises(ValueError, match="invalid max_score"):
        GradingResults.from_dict({"tests": [{"name": "x", "max_score": float("nan")}]})


@pytest.mark.parametrize(("fraction", "status"), [(0.0, "failed"), (1.0, "passed")])
def test_a_check_worth_no_points_is_failed_when_it_did_not_hold(fraction: float, status: str) -> None:
    """training.baseline (the control run, 0 points) of the stub was not run: 0 of 0 is not "passed"
    (before: results.json said passed for a check that never ran)."""
    from grader.contract import CheckContext, CheckOutcome
    from grader.grading.runner import run_check

    entry = load_rubric(DEFAULT_RUBRIC)["training.baseline"]
    assert entry.points == 0 and not entry.advisory
    result = run_check(entry, lambda _s, _c: CheckOutcome(fraction, "not run"), object(), CheckContext())
    assert result.to_gradescope_dict()["status"] == status and result.score == result.max_score == 0
    assert result.advisory_failed is (status == "failed")
