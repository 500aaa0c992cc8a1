"""Every element, attribute and text of the JUnit XML and of an internal-error result, compared whole.

The files that CI systems and the gradebook read: a count, a type or a property that changes is a changed report.
Added for the mutation score of grader/grading/ (tests/README.md, "Mutation score"): the tests that only read a
few fields let a wrong element name or a dropped property through.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from grader.grading.results import GradingResults, TestResult, hide_seed, internal_error_results

LONG = "x" * 400


def _results() -> GradingResults:
    return GradingResults(
        tests=[
            TestResult("a: passes", 4, 4, "Passed.", check_id="kl_forward.contract"),
            TestResult(
                "b: half",
                1.5,
                3,
                "Problem: <half>\nmore",
                check_id="kl_forward.direction",
                misconception="k3_as_reward",
            ),
            # no check id: the suite's name is its class; no misconception: a plain failed check
            TestResult("c: plain", 0, 2, "\n  Failed.\nsecond line"),
            TestResult("d: bug", 0, 2, f"{LONG}\ntrace", check_id="shaping.contract", internal_error=True),
            TestResult(
                "e: machine",
                0,
                0,
                "NOT GRADABLE: the control run\nwhy",
                check_id="training.forward",
                gradable=False,
                points_not_graded=5,
            ),
            TestResult(
                "f: advice", 0, 0, "repetition", check_id="shaping.goal", advisory=True, advisory_failed=True
            ),
        ],
        execution_time=1.23456,
        output="summary\nline two",
    )


def _tree(element: ET.Element) -> tuple:
    """(tag, attributes, text of a leaf, children): the indentation between elements left out."""
    children = [_tree(child) for child in element]
    return (element.tag, dict(element.attrib), None if children else element.text, children)


def _props(check_id: str, score: str, max_score: str, misconception: str = "") -> tuple:
    pairs = [
        ("check_id", check_id),
        ("score", score),
        ("max_score", max_score),
        ("misconception", misconception),
    ]
    return (
        "properties",
        {},
        None,
        [("property", {"name": k, "value": v}, None, []) for k, v in pairs if v],
    )


def test_the_junit_xml_is_exactly_the_results() -> None:
    text = _results().to_junit_xml("course")
    assert text.startswith('<?xml version="1.0" encoding="utf-8"?>\n<testsuites ')
    assert text.endswith("</testsuites>\n")
    case = "testcase"
    expected = (
        "testsuites",
        {"name": "course", "tests": "6", "failures": "3", "errors": "1"},
        None,
        [
            (
                "testsuite",
                {
                    "name": "course",
                    "tests": "6",
                    "failures": "3",
                    "errors": "1",
                    "skipped": "1",
                    "time": "1.235",
                },
                None,
                [
                    (
                        case,
                        {"classname": "kl_forward", "name": "a: passes", "time": "0"},
                        None,
                        [_props("kl_forward.contract", "4", "4")],
                    ),
                    (
                        case,
                        {"classname": "kl_forward", "name": "b: half", "time": "0"},
                        None,
                        [
                            _props("kl_forward.direction", "1.5", "3", "k3_as_reward"),
                            (
                                "failure",
                                {"message": "Problem: <half>", "type": "k3_as_reward"},
                                "Problem: <half>\nmore",
                                [],
                            ),
                        ],
                    ),
                    (
                        case,
                        {"classname": "course", "name": "c: plain", "time": "0"},
                        None,
                        [
                            _props("", "0", "2"),
                            (
                                "failure",
                                {"message": "Failed.", "type": "check_failed"},
                                "\n  Failed.\nsecond line",
                                [],
                            ),
                        ],
                    ),
                    (
                        case,
                        {"classname": "shaping", "name": "d: bug", "time": "0"},
                        None,
                        [
                            _props("shaping.contract", "0", "2"),
                            ("error", {"message": "x" * 300, "type": "internal_error"}, f"{LONG}\ntrace", []),
                        ],
                    ),
                    (
                        case,
                        {"classname": "training", "name": "e: machine", "time": "0"},
                        None,
                        [
                            _props("training.forward", "0", "0"),
                            (
                                "skipped",
                                {"message": "NOT GRADABLE: the control run"},
                                "NOT GRADABLE: the control run\nwhy",
                                [],
                            ),
                        ],
                    ),
                    (
                        case,
                        {"classname": "shaping", "name": "f: advice", "time": "0"},
                        None,
                        [
                            _props("shaping.goal", "0", "0"),
                            ("failure", {"message": "repetition", "type": "check_failed"}, "repetition", []),
                        ],
                    ),
                    ("system-out", {}, "summary\nline two", []),
                ],
            )
        ],
    )
    assert _tree(ET.fromstring(text)) == expected


def test_the_junit_suite_is_named_grader_by_default_and_has_no_output_without_one() -> None:
    root = ET.fromstring(
        GradingResults([TestResult("a: passes", 1, 1, "ok", check_id="kl_forward.value")]).to_junit_xml()
    )
    suite = root.find("testsuite")
    assert root.get("name") == suite.get("name") == "grader"
    assert [child.tag for child in suite] == ["testcase"]


@pytest.mark.parametrize("output", ["", "  \n "])
def test_a_failure_without_text_has_an_empty_message(output: str) -> None:
    root = ET.fromstring(
        GradingResults([TestResult("a: x", 0, 1, output, check_id="kl_forward.value")]).to_junit_xml()
    )
    failure = root.find("testsuite/testcase/failure")
    assert failure.get("message") == ""


def test_an_internal_error_result_is_exactly_the_reason_and_nothing_graded() -> None:
    results = internal_error_results("the rubric is broken", execution_time=2.5, seed=11)
    assert results.tests == []
    assert results.output == "Internal grader error: the rubric is broken"
    assert (results.execution_time, results.seed, results.internal_error) == (2.5, 11, True)
    assert (results.score, results.max_score, results.full_marks) == (0, 0, False)
    defaults = internal_error_results("x")
    assert (defaults.execution_time, defaults.seed) == (0.0, None)


def test_a_hidden_seed_is_replaced_everywhere_it_could_be_read() -> None:
    data = {
        "output": "seed: 123456; run 123456 done; 1234567 is another number",
        "seed": 123456,
        "tests": [{"output": "Seed=123456"}, "123456", 7],
    }
    assert hide_seed(data, 123456) == {
        "output": "seed: <hidden>; run <hidden> done; 1234567 is another number",
        "tests": [{"output": "Seed=<hidden>"}, "<hidden>", 7],
    }
    # five digits: only where it is labelled a seed (a bare 12345 may be any number)
    assert hide_seed(["seed 12345", "12345 steps"], 12345) == ["seed <hidden>", "12345 steps"]


def test_results_read_back_take_unknown_visibilities_as_visible() -> None:
    data = GradingResults([TestResult("a: x", 1, 1, "ok", visibility="hidden")]).to_gradescope_dict()
    data["tests"][0]["visibility"] = "everyone"
    data["tests"].append({**data["tests"][0], "visibility": "after_published"})
    assert [t.visibility for t in GradingResults.from_dict(data).tests] == ["visible", "after_published"]
    assert GradingResults.from_dict(data).tests[0].to_gradescope_dict()["visibility"] == "visible"


def test_results_read_back_from_their_json_are_the_same_results(tmp_path) -> None:
    results = _results()  # with a check that was not gradable (read back, it is not failed advice)
    assert any(not t.gradable for t in results.tests)
    results.tests[0].artifacts = ["curve.png"]
    results.tests[0].measurements = {"rate": 0.5}
    results.tests[0].leaderboard = [{"name": "sentiment", "value": 0.9, "order": "asc"}]
    results.seed, results.feedback_level = 5, "explain"
    results.sandbox = {"isolation": "namespaces", "layers": ["bwrap"]}
    results.execution_time = 1.5
    path = tmp_path / "results.json"
    results.write_json(path)
    assert GradingResults.from_dict(json.loads(path.read_text())) == results


def test_a_test_read_back_without_its_optional_keys_gets_their_defaults() -> None:
    read = GradingResults.from_dict(
        {"tests": [{"name": "a", "status": "failed", "extra_data": {"misconception": 5}}]}
    )
    assert read.tests == [TestResult("a", 0, 0, "", advisory_failed=True)]
    assert read.execution_time == 0.0


def test_the_junit_file_is_the_junit_xml(tmp_path) -> None:
    path = tmp_path / "out" / "junit.xml"
    _results().write_junit(path)
    assert path.read_text(encoding="utf-8") == _results().to_junit_xml()
