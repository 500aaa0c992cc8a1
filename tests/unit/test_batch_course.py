"""The batch's course-facing pieces, in process: the reason column read from results.json, the options a course
sets reaching each grade's command line, the batch's rubric copy, the 80-column progress line and its time left,
and the misconception chart's labels and ticks. Real grades of real submissions are in
tests/integration/test_batch_reasons.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.grading.results import GradingResults, TestResult
from grader.grading.rubric import DEFAULT_RUBRIC, load_rubric
from grader.tools.batch import BatchConfig, BatchEvents, Graded, reasons, summarise
from grader.tools.batch.grade import grader_options
from grader.tools.batch.progress import status_line
from grader.tools.batch.rubric import with_default, write_rubric_copy
from grader.tools.batch.writers import misconception_chart


def _tests(*results: TestResult) -> list[dict]:
    """``results.json``'s tests, exactly as the grader writes them."""
    return GradingResults(tests=list(results)).to_gradescope_dict()["tests"]


def _check(check_id: str, output: str = "failed", tags: tuple[str, ...] = (), **kw) -> TestResult:
    return TestResult(check_id, 0.0, 2.0, output, tags=list(tags), check_id=check_id, **kw)


# ---------------------------------------------------------------------------------------------------------------
# The reason column
# ---------------------------------------------------------------------------------------------------------------


def test_an_ordinary_grade_has_no_reason() -> None:
    assert reasons.of_results(_tests(_check("kl_forward.direction"), _check("shaping.contract"))) == ""


def test_reasons_name_the_functions_concerned() -> None:
    tests = _tests(
        _check("kl_forward.direction", "kl_penalty_forward did not finish in time and was stopped (...)"),
        _check("kl_backward.direction", "The submission's process died while running kl_penalty_backward"),
        _check("shaping.contract", "raised NotImplementedError", ("not-implemented",)),
        _check("shaping.goal", "raised NotImplementedError", ("not-implemented",)),
    )
    assert reasons.of_results(tests) == (
        "timed out: kl_penalty_forward; crashed: kl_penalty_backward; not implemented: shaped_reward"
    )
    memory = (
        "kl_penalty_forward failed: it used more than 2 GiB of memory (the sandbox's limit, which counts ...)"
    )
    assert (
        reasons.of_results(_tests(_check("kl_forward.value", memory)))
        == "killed for memory: kl_penalty_forward"
    )


def test_flags_and_budget_tags_give_reasons() -> None:
    assert reasons.of_results(_tests(_check("training.baseline", gradable=False))) == "not gradable"
    assert reasons.of_results(_tests(_check("kl_forward.zero", internal_error=True))) == "internal error"
    cut = _check("training.kl_forward", "The grading time budget ran out", ("budget:not_run",))
    assert reasons.of_results(_tests(cut)) == "timed out: training runs"


def test_a_failed_import_is_one_reason() -> None:
    def imported(detail: str) -> list[dict]:
        message = (
            f"Your submission could not be imported, so none of its functions could be graded.\n{detail}"
        )
        return _tests(_check("kl_forward.direction", message), _check("shaping.contract", message))

    assert (
        reasons.of_results(imported("importing a.py failed: SyntaxError: invalid syntax")) == "syntax error"
    )
    assert (
        reasons.of_results(imported("importing a.py failed: IndentationError: unexpected")) == "syntax error"
    )
    assert (
        reasons.of_results(imported("importing a.py failed: ModuleNotFoundError: No module"))
        == "import error"
    )


def test_failed_counts_grades_that_did_not_finish_normally() -> None:
    events = BatchEvents()
    events.finished(Graded("stub", 0.0, 10.0, [], reason="not implemented: every function"))
    events.finished(Graded("ok", 5.0, 10.0, []))
    assert events.failed == 0  # code that raises NotImplementedError ran, as the stub does
    events.finished(Graded("syntax", 0.0, 10.0, [], reason="syntax error"))
    events.finished(Graded("slow", 0.0, 10.0, [], reason="not implemented: shaped_reward; timed out"))
    events.finished(Graded("lost", 0.0, None, [], error="grader error", reason="internal error"))
    assert events.failed == 3


# ---------------------------------------------------------------------------------------------------------------
# Options a course sets, and the batch's rubric
# ---------------------------------------------------------------------------------------------------------------


def test_course_options_reach_each_grade(tmp_path: Path) -> None:
    config = BatchConfig(tmp_path, tmp_path / "out", feedback_level="hint", isolation="strict")
    assert grader_options(config, rubric="/r.toml") == [
        "--feedback-level",
        "hint",
        "--isolation",
        "strict",
        "--rubric",
        "/r.toml",
    ]
    assert grader_options(BatchConfig(tmp_path, tmp_path / "out")) == []  # the grader's defaults: nothing
    # Another level, isolation or rubric is another grade for --resume.
    options = {BatchConfig(tmp_path, tmp_path / "o", **kw).grade_options()["feedback_level"] for kw in
               ({}, {"feedback_level": "hint"})}  # fmt: skip
    assert options == {None, "hint"}


def test_the_hidden_visibility_goes_into_the_batchs_rubric_copy(tmp_path: Path) -> None:
    config = BatchConfig(tmp_path, tmp_path / "out", hidden_visibility="hidden")
    write_rubric_copy(config)
    copy = config.rubric_file()
    assert copy is not None and copy.parent == tmp_path / "out" / "_shared"
    original, changed = load_rubric(DEFAULT_RUBRIC), load_rubric(copy)
    assert any(e.hidden for e in original.entries)
    for before, after in zip(original.entries, changed.entries, strict=True):
        assert after.visibility == ("hidden" if before.hidden else before.visibility), before.check_id
        assert (after.points, after.requires) == (before.points, before.requires)
    assert (
        config.grade_options()["rubric_sha256"]
        != BatchConfig(tmp_path, tmp_path / "o").grade_options()["rubric_sha256"]
    )
    assert with_default('[checks."a.b"]\nname = "x"\n', "k", "v").endswith('[defaults]\nk = "v"\n')


# ---------------------------------------------------------------------------------------------------------------
# The progress line
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("width", [60, 80, 120])
def test_the_progress_line_fits_and_keeps_counts_and_time_left(width: int) -> None:
    name = "a_student_with_a_very_long_folder_name_from_the_lms_export: 57.5"
    head, bar, tail = status_line("grading", 23, 120, 1, 2, 252.0, 630.0, name, width)
    assert len(head) + bar + len(tail) < width
    for part in ("23/120", "failed 1", "running 2", "4:12", "ETA 10:30"):
        assert part in tail, (part, tail)
    assert bar >= 8 or width < 70
    if width == 80:
        assert "\u2026" in tail and tail.endswith(": 57.5")  # the name gave way, its score stayed


def test_the_time_left_follows_the_mean_duration_not_the_last_grade() -> None:
    events = BatchEvents()
    events.begin(10)
    events.slots(2)
    for seconds in (60.0, 60.0, 5.0):  # the last grade was quick
        events.finished(Graded("s", 1.0, 1.0, [], seconds=seconds))
    # 7 grades left at a mean of 41.7 s, 2 at a time: about 146 s (a rate from the last grade alone says 17 s)
    assert events.seconds_left(now=0.0) == pytest.approx(7 * (125 / 3) / 2)
    assert BatchEvents().seconds_left() is None  # nothing finished yet: unknown


# ---------------------------------------------------------------------------------------------------------------
# The misconception chart
# ---------------------------------------------------------------------------------------------------------------


def test_the_misconception_chart_has_titles_and_whole_ticks() -> None:
    def test(misconception: str) -> dict:
        return {"name": "c", "score": 0.0, "max_score": 1.0, "extra_data": {"misconception": misconception}}

    rows = [Graded("a", 0.0, 1.0, [test("coef_ignored")]), Graded("b", 0.0, 1.0, [test("swapped_direction")])]
    fig = misconception_chart(summarise(rows))
    fig.canvas.draw()
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert "kl_coef ignored" in labels and "coef_ignored" not in labels
    assert all(float(t).is_integer() for t in ax.get_xticks())
