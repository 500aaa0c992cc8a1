"""Reading a ``results.json`` back (grader/grading/results_read.py and ``GradingResults.from_dict``): what
``validate_results`` refuses and says, the score it returns, and the lenient reading of each optional key (a file
written by hand, by an older grader, or edited: a missing key gets the grader's default, a malformed one is
skipped, never trusted).

The batch gradebook, the Gradescope and the Classroom reporters call ``validate_results`` alone and catch only
``ValueError`` (the batch prints its message in the gradebook), so the messages and the exception type are
pinned exactly. Added for the mutation score of grader/grading/ (tests/README.md, "Mutation score"): the
round-trip tests write every key, so a wrong default for a missing one went unseen.
"""

from __future__ import annotations

import json
import math

import pytest

from grader.grading.results import GradingResults, TestResult, validate_results

# ----------------------------------------------------------------------------------------------------------------
# validate_results: refused payloads, with the message a gradebook shows


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "results.json is not a JSON object"),
        ("score: 3", "results.json is not a JSON object"),
        ({"tests": {"a": 1}}, "results.json: 'tests' is not a list"),
        ({"tests": None}, "results.json: 'tests' is not a list"),
        ({"tests": [{"score": 1}]}, "results.json: a test has no name"),
        ({"tests": ["a"]}, "results.json: a test has no name"),
        ({"tests": [{"name": "a", "score": "1"}]}, "results.json: test 'a' has an invalid score"),
        ({"tests": [{"name": "a", "score": True}]}, "results.json: test 'a' has an invalid score"),
        ({"tests": [{"name": "a", "score": math.inf}]}, "results.json: test 'a' has an invalid score"),
        ({"tests": [{"name": "a", "max_score": None}]}, "results.json: test 'a' has an invalid max_score"),
        ({"score": "3"}, "results.json: 'score' is not a finite number"),
        ({"score": True}, "results.json: 'score' is not a finite number"),
        ({"score": math.nan}, "results.json: 'score' is not a finite number"),
        ({"score": -math.inf, "tests": []}, "results.json: 'score' is not a finite number"),
    ],
)
def test_a_payload_that_cannot_be_read_is_refused_with_a_value_error_saying_why(data, message: str) -> None:
    # exactly ValueError: the readers catch nothing else (a TypeError would crash the batch)
    with pytest.raises(ValueError) as raised:
        validate_results(data)
    assert type(raised.value) is ValueError
    assert str(raised.value) == message


def test_json_s_own_nan_and_infinity_are_refused_as_scores() -> None:
    # Python's json module reads NaN and Infinity: a results.json written by a non-strict writer
    for text in ('{"score": NaN}', '{"score": Infinity}'):
        with pytest.raises(ValueError, match="'score' is not a finite number"):
            validate_results(json.loads(text))


def test_the_score_is_the_file_s_own_when_it_has_one() -> None:
    # the top-level score wins over the tests' sum (a gate may have withheld points the tests still show)
    tests = [{"name": "a", "score": 1.5, "max_score": 2}, {"name": "b", "score": 2, "max_score": 2}]
    assert validate_results({"score": 7, "tests": tests}) == (7.0, tests)
    assert validate_results({"score": 0, "tests": tests}) == (0.0, tests)
    score, _ = validate_results({"score": 2})
    assert type(score) is float


def test_without_a_score_it_is_the_sum_of_the_tests_scores_a_missing_one_counting_0() -> None:
    tests = [{"name": "a", "score": 1.5}, {"name": "b", "score": 2}, {"name": "c", "max_score": 4}]
    assert validate_results({"tests": tests}) == (3.5, tests)
    assert validate_results({"tests": [{"name": "c", "max_score": 4}]}) == (
        0.0,
        [{"name": "c", "max_score": 4}],
    )


def test_a_file_without_tests_has_none() -> None:
    assert validate_results({"score": 1}) == (1.0, [])
    assert validate_results({}) == (0.0, [])


# ----------------------------------------------------------------------------------------------------------------
# GradingResults.from_dict: the defaults of missing keys and the refusal of malformed ones


def test_a_file_with_only_a_score_reads_back_as_results_with_the_grader_s_defaults() -> None:
    read = GradingResults.from_dict({"score": 0})
    assert read == GradingResults([])
    assert (read.output, read.visibility, read.stdout_visibility) == ("", "visible", "hidden")
    assert (read.internal_error, read.seed, read.feedback_level, read.sandbox) == (False, None, None, None)


def test_a_test_without_a_score_has_scored_nothing() -> None:
    read = GradingResults.from_dict({"tests": [{"name": "a", "max_score": 3, "output": "x"}]})
    assert read.tests == [TestResult("a", 0, 3, "x")]
    assert read.score == 0


@pytest.mark.parametrize(
    ("written", "visibility", "stdout_visibility"),
    [
        ({"visibility": "hidden", "stdout_visibility": "visible"}, "hidden", "visible"),
        (
            {"visibility": "after_published", "stdout_visibility": "after_due_date"},
            "after_published",
            "after_due_date",
        ),
        ({}, "visible", "hidden"),
        ({"visibility": "public", "stdout_visibility": "everyone"}, "visible", "hidden"),
        ({"visibility": None, "stdout_visibility": 3}, "visible", "hidden"),
    ],
)
def test_the_top_level_visibilities_are_read_back_and_unknown_ones_get_the_defaults(
    written: dict, visibility: str, stdout_visibility: str
) -> None:
    read = GradingResults.from_dict({"tests": [], **written})
    assert (read.visibility, read.stdout_visibility) == (visibility, stdout_visibility)
    data = read.to_gradescope_dict()
    assert (data["visibility"], data["stdout_visibility"]) == (visibility, stdout_visibility)


@pytest.mark.parametrize(
    ("extra", "internal_error"),
    [
        ({"internal_error": True}, True),
        ({"internal_error": False}, False),
        ({}, False),
        ({"internal_error": 1}, True),
    ],
)
def test_a_grader_fault_is_read_back_from_extra_data(extra: dict, internal_error: bool) -> None:
    read = GradingResults.from_dict(
        {"tests": [{"name": "a", "score": 1, "max_score": 1}], "extra_data": extra}
    )
    assert read.internal_error is internal_error
    assert read.full_marks is not internal_error  # a grader fault is never full marks


def test_a_grader_fault_survives_a_write_and_a_read() -> None:
    results = GradingResults(
        [TestResult("a", 1, 1)], output="Internal grader error: boom", internal_error=True
    )
    assert GradingResults.from_dict(json.loads(results.to_json())) == results


@pytest.mark.parametrize(
    ("seed", "read"), [(12, 12), (0, 0), ("12", None), (True, None), (1.5, None), (None, None)]
)
def test_only_an_integer_seed_is_read_back(seed, read) -> None:
    assert GradingResults.from_dict({"extra_data": {"seed": seed}}).seed == read


@pytest.mark.parametrize(("level", "read"), [("hint", "hint"), (3, None), (["hint"], None), (None, None)])
def test_only_a_text_feedback_level_is_read_back(level, read) -> None:
    assert GradingResults.from_dict({"feedback_level": level}).feedback_level == read


@pytest.mark.parametrize(
    ("sandbox", "read"),
    [({"isolation": "landlock"}, {"isolation": "landlock"}), ("namespaces", None), (["none"], None)],
)
def test_only_a_sandbox_object_is_read_back(sandbox, read) -> None:
    assert GradingResults.from_dict({"sandbox": sandbox}).sandbox == read


# ----------------------------------------------------------------------------------------------------------------
# the per-check extras: points not graded and leaderboard entries


@pytest.mark.parametrize(
    ("points", "read"), [(5, 5.0), (0.5, 0.5), (0, 0.0), (-1, 0.0), (math.inf, 0.0), (True, 0.0), ("5", 0.0)]
)
def test_the_points_of_a_check_not_graded_are_read_back_when_they_are_a_number_at_least_0(
    points, read
) -> None:
    test = {"name": "a", "score": 0, "max_score": 0, "status": "failed"}
    test["extra_data"] = {"gradable": False, "points_not_graded": points}
    results = GradingResults.from_dict({"tests": [test]})
    assert results.tests[0].points_not_graded == read
    assert results.points_not_graded == read
    assert not results.tests[0].gradable and not results.tests[0].advisory_failed


def _leaderboard_read(entries) -> list:
    test = {"name": "a", "score": 1, "max_score": 1, "extra_data": {"leaderboard": entries}}
    return GradingResults.from_dict({"tests": [test]}).leaderboard


def test_a_leaderboard_entry_without_an_order_ranks_high_first() -> None:
    # Gradescope's default order is "desc"; the entry is written back with it
    assert _leaderboard_read([{"name": "sentiment", "value": 0.5}]) == [
        {"name": "sentiment", "value": 0.5, "order": "desc"}
    ]


def test_well_formed_leaderboard_entries_are_read_back_with_float_values() -> None:
    entries = [{"name": "ppl", "value": 12, "order": "asc"}, {"name": "s", "value": 0.25, "order": "desc"}]
    read = _leaderboard_read(entries)
    assert read == [
        {"name": "ppl", "value": 12.0, "order": "asc"},
        {"name": "s", "value": 0.25, "order": "desc"},
    ]
    assert type(read[0]["value"]) is float


@pytest.mark.parametrize(
    "entry",
    [
        {"name": "s", "value": 1, "order": "sideways"},
        {"name": "s", "value": 1, "order": None},
        {"name": "s", "value": math.nan},
        {"name": "s", "value": math.inf, "order": "asc"},
        {"name": "s", "value": True},
        {"name": "s", "value": "3"},
        {"name": 3, "value": 1},
        {"value": 1},
        {"name": "s"},
        ["s", 1],
        "s",
    ],
)
def test_a_malformed_leaderboard_entry_is_skipped_and_the_others_kept(entry) -> None:
    good = {"name": "ok", "value": 2.0, "order": "asc"}
    assert _leaderboard_read([entry, good]) == [good]
    assert _leaderboard_read([good, entry]) == [good]


@pytest.mark.parametrize("value", [None, {"name": "s", "value": 1}, "s"])
def test_a_leaderboard_that_is_not_a_list_reads_as_none(value) -> None:
    assert _leaderboard_read(value) == []
