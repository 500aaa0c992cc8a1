"""The check table's pieces (grader/grading/terminal.py) on hand-made results: each check's status label and its
style, its points, the function it belongs to, its short name at a width, the notes a function's checks share,
the group totals and the table's exact layout. tests/unit/test_report_terminal.py renders the real checks' results;
these pin every rule one by one, fast enough to be the mutation run's killer (tests/README.md, "Mutation score").
"""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from rich.text import Text

from grader.grading.budget import TAG_NOT_RUN, TAG_UNFINISHED
from grader.grading.results import TAG_WITHHELD, TestResult
from grader.grading.terminal import (
    TAG_NOT_IMPLEMENTED,
    FunctionGroup,
    _split_remark,
    brief_name,
    check_table,
    explained_failures,
    first_line,
    function_of,
    group_by_function,
    is_held,
    is_not_run,
    is_summarised,
    not_implemented,
    notes,
    points,
    short_name,
    status,
)

FWD = "kl_penalty_forward"
BWD = "kl_penalty_backward"
RAISED = f"Tested: x\n{FWD} raised NotImplementedError: write me\nIt is not implemented yet: see the handout."


def _test(
    name: str = f"{FWD}: value", score: float = 0.0, most: float = 2.0, output: str = "", **kw
) -> TestResult:
    kw.setdefault("check_id", "kl_forward.value")
    return TestResult(name, score, most, output, **kw)


def _plain(lines: list[Text]) -> list[tuple[str, str]]:
    return [(line.plain, str(line.style)) for line in lines]


# --- one check --------------------------------------------------------------------------------------------------


def test_first_line_skips_blank_lines_and_what_was_tested() -> None:
    assert first_line("\n   \nTested: the value\n  Problem: too big  \nmore") == "Problem: too big"
    assert first_line("") == "" and first_line("Tested: only this\n\n") == ""
    assert first_line("  Tested: indented is not the heading") == "Tested: indented is not the heading"


def test_held_is_a_withheld_check_or_a_closed_gate_on_a_check_without_points() -> None:
    assert is_held(_test(tags=[TAG_WITHHELD], score=0.0))
    assert is_held(_test(output="Withheld: requires x. More.", score=0.0))
    assert not is_held(_test(output="Withheld: requires x.", score=1.0))
    assert not is_held(_test(output="Withheld:requires x.", score=0.0))
    assert not is_held(_test(output="Problem. Withheld: requires x.", score=0.0))
    assert not is_held(_test(output="Withheld: x.", most=0.0, gradable=False, points_not_graded=2.0))


@pytest.mark.parametrize(
    ("output", "tags", "expected"),
    [
        ("", [TAG_NOT_RUN], True),
        ("not run: the grading time budget ran out", [], True),
        ("Tested: x\nNot run because of y", [], True),
        ("The baseline run was not run: nothing to compare", [], True),
        ("the forward run was not run", [], True),
        ("not running well", [], False),
        ("the run: it was not run", [], False),  # a colon before it: not "the ... was not run"
        ("the run. was not run", [], False),
        ("the run\nwas not run", [], False),
        ("it was not run", [], False),
        ("passed", [TAG_UNFINISHED], False),
    ],
)
def test_not_run_is_the_tag_or_what_the_first_line_says(output: str, tags: list[str], expected: bool) -> None:
    assert is_not_run(_test(output=output, tags=tags)) is expected


def test_not_implemented_names_the_function_that_raised() -> None:
    assert not_implemented(_test(output=RAISED)) == FWD
    assert (
        not_implemented(_test(output="Tested: x\nrun: kl_penalty_backward raised NotImplementedError")) == BWD
    )
    assert not_implemented(_test(output="Tested: x\nX raised NotImplementedErrors")) is None
    assert (
        not_implemented(_test(output="first\nkl raised NotImplementedError")) is None
    )  # not on the first line
    assert not_implemented(_test(output="", tags=[TAG_NOT_IMPLEMENTED])) == FWD  # from the check's id
    assert not_implemented(_test(output="")) is None
    assert not_implemented(_test(output=RAISED, score=2.0)) is None  # passed
    assert not_implemented(_test(output=RAISED, most=0.0, gradable=False, points_not_graded=2.0)) is None


def test_summarised_checks_are_not_explained_one_by_one() -> None:
    plain = _test(output="Problem: wrong")
    held = _test(tags=[TAG_WITHHELD])
    not_run = _test(output="not run: no time")
    unfinished = _test(output="slow", tags=[TAG_UNFINISHED])
    raised = _test(output=RAISED)
    passed = _test(score=2.0)
    machine = _test(most=0.0, gradable=False, points_not_graded=2.0, output="machine")
    assert [is_summarised(t) for t in (plain, held, not_run, unfinished, raised)] == [
        False,
        True,
        True,
        True,
        True,
    ]
    assert explained_failures([passed, plain, held, not_run, unfinished, raised, machine, plain]) == [
        plain,
        plain,
    ]


@pytest.mark.parametrize(
    ("test", "label", "style"),
    [
        (_test(most=0.0, gradable=False, points_not_graded=1.0, internal_error=True), "n/a", "bold cyan"),
        (_test(internal_error=True, tags=[TAG_WITHHELD]), "ERROR", "bold magenta"),
        (_test(tags=[TAG_WITHHELD, TAG_NOT_RUN]), "held", "yellow"),
        (_test(tags=[TAG_NOT_RUN, TAG_UNFINISHED]), "not run", "bold red"),
        (_test(most=0.0, output="not run: x"), "not run", "yellow"),
        (_test(tags=[TAG_UNFINISHED], advisory=True), "timeout", "bold red"),
        (_test(most=0.0, advisory=True, advisory_failed=True), "advice", "yellow"),
        (_test(most=0.0, advisory=True), "ok", "green"),
        (_test(score=2.0), "pass", "green"),
        (_test(score=0.5), "partial", "yellow"),
        (_test(score=0.0), "FAIL", "bold red"),
    ],
)
def test_the_status_label_and_its_style(test: TestResult, label: str, style: str) -> None:
    text = status(test)
    assert (text.plain, text.style) == (label, style)


def test_the_points_column() -> None:
    assert points(_test(most=0.0, advisory=True)) == "-"
    assert points(_test(most=0.0, gradable=False, points_not_graded=2.5)) == "not gradable (2.5)"
    assert points(_test(score=1.5, most=4.0)) == "1.5 / 4"


def test_the_function_of_a_check() -> None:
    assert function_of(_test(check_id="kl_backward.value", name="x")) == BWD
    assert function_of(_test(check_id="training.forward", name=f"{FWD}: x")) == "training"
    assert function_of(_test(check_id="", name="shaped_reward: goal")) == "shaped_reward"
    assert function_of(_test(check_id="", name="two words: goal")) == "checks"
    assert function_of(_test(check_id="", name="no prefix")) == "checks"
    assert function_of(_test(check_id="", name="colon:without space")) == "checks"
    assert function_of(_test(check_id="", name="shaped_reward: goal: part")) == "shaped_reward"  # the first


def test_checks_are_grouped_by_function_in_the_order_they_came() -> None:
    a, b, c = _test(check_id="kl_backward.a"), _test(check_id="kl_forward.b"), _test(check_id="kl_backward.c")
    groups = group_by_function([a, b, c])
    assert [(g.function, g.tests) for g in groups] == [(BWD, [a, c]), (FWD, [b])]


# --- names --------------------------------------------------------------------------------------------------------


def test_a_short_name_drops_its_function_then_its_remark_then_is_cut() -> None:
    test = _test(name=f"{FWD}: value (kl_coef * mean)")
    assert short_name(test, FWD, 100) == "value (kl_coef * mean)"
    assert short_name(test, FWD, 22) == "value (kl_coef * mean)"  # exactly fits
    assert short_name(test, FWD, 21) == "value"
    assert short_name(test, BWD, 200) == test.name  # another function's prefix stays
    hidden = _test(name=f"{FWD}: value on random batches (hidden: new inputs)")
    assert short_name(hidden, FWD, 40) == "value on random batches (hidden)"
    assert short_name(hidden, FWD, 32) == "value on random batches (hidden)"
    assert short_name(hidden, FWD, 31) == "value on random batches (hidde…"
    assert short_name(_test(name=f"{FWD}: a long name without a remark"), FWD, 10) == "a long na…"
    assert short_name(_test(name=f"{FWD}: abc"), FWD, 0) == "…"


def test_the_remark_is_a_bracket_at_the_end_after_a_space() -> None:
    assert brief_name(_test(name="f: value (kl_coef * (a + b))")) == "f: value"
    assert brief_name(_test(name="f: is KL(pi || pi_ref)")) == "f: is KL(pi || pi_ref)"
    assert brief_name(_test(name="(whole remark)")) == "(whole remark)"
    assert brief_name(_test(name="f: unbalanced)")) == "f: unbalanced)"
    assert brief_name(_test(name="f: value   (spaced)")) == "f: value"
    assert brief_name(_test(name="f: no remark")) == "f: no remark"
    assert short_name(_test(name="f: value (kl_coef * (a + b))"), "f", 8) == "value"
    # a remark that starts right after the first character (the bracket's index is 1)
    assert _split_remark(" (x)") == ("", "x") and _split_remark("a(x)") == ("a(x)", None)
    assert _split_remark("v (abc)") == ("v", "abc")
    # a remark of just "hidden" is kept (then the name is cut as it is)
    assert (
        short_name(_test(name=f"{FWD}: value on new inputs (hidden)"), FWD, 27)
        == "value on new inputs (hidde…"
    )


# --- notes ------------------------------------------------------------------------------------------------------


def test_held_checks_are_told_once_per_reason_with_their_points() -> None:
    one = _test(output="Withheld: requires a.b. On its own it earned 2.", tags=[TAG_WITHHELD], most=1.0)
    two = _test(output="Withheld: requires a.b.", tags=[TAG_WITHHELD], most=1.5)
    other = _test(output="Withheld: requires c.d.\nmore", tags=[TAG_WITHHELD], most=2.0)
    bare = _test(tags=[TAG_WITHHELD], most=1.0)
    lines = notes(FunctionGroup(FWD, [one, two, other, bare]), set())
    assert _plain(lines) == [
        ("2 held checks (2.5 points) passed on their own, but each requires a.b.", "yellow"),
        ("1 held check (2 points) passed on its own, but it requires c.d.", "yellow"),
        ("1 held check (1 point) passed on its own, but it requires a check that did not pass.", "yellow"),
    ]


def test_a_not_implemented_function_is_told_in_full_once_then_by_name() -> None:
    first = _test(output=RAISED, check_id="kl_forward.a")
    second = _test(
        output=f"Tested: y\nThe run: {FWD} raised NotImplementedError: write me", check_id="kl_forward.b"
    )
    told: set[str] = set()
    lines = notes(FunctionGroup(FWD, [first, second]), told, {FWD})
    assert _plain(lines) == [
        (f"{FWD} raised NotImplementedError: write me. It is not implemented yet: see the handout.", "red"),
        (f"{FWD} raised NotImplementedError: write me", "red"),
    ]
    assert told == {FWD}
    # a later group: one line naming the functions
    training = [_test(output=RAISED, check_id="training.a"), _test(output=RAISED, check_id="training.b")]
    backward = _test(output=RAISED.replace(FWD, BWD), check_id="training.c")
    told.add(BWD)
    assert _plain(notes(FunctionGroup("training", [*training, backward]), told, {FWD, BWD})) == [
        (f"3 checks failed because {FWD} and {BWD} are not implemented yet.", "red"),
    ]
    assert _plain(notes(FunctionGroup("training", training), told, {FWD})) == [
        (f"2 checks failed because {FWD} is not implemented yet.", "red"),
    ]
    assert _plain(notes(FunctionGroup("training", training[:1]), told, {FWD})) == [
        (f"1 check failed because {FWD} is not implemented yet.", "red"),
    ]
    three = [_test(output=RAISED.replace(FWD, f), check_id="training.x") for f in ("f", "g", "h")]
    assert _plain(notes(FunctionGroup("training", three), {"f", "g", "h"}, set())) == [
        ("3 checks failed because f, g and h are not implemented yet.", "red"),
    ]


def test_a_function_without_its_own_group_is_told_in_full_where_it_first_fails() -> None:
    raised = _test(output=RAISED, check_id="training.a")
    told: set[str] = set()
    lines = notes(FunctionGroup("training", [raised]), told, set())
    assert _plain(lines) == [
        (f"{FWD} raised NotImplementedError: write me. It is not implemented yet: see the handout.", "red")
    ]
    assert told == {FWD}
    # while its own group, told later, gets it in full there
    assert _plain(notes(FunctionGroup("training", [raised]), set(), {FWD})) == [
        (f"1 check failed because {FWD} is not implemented yet.", "red")
    ]


def test_a_tagged_not_implemented_check_is_told_by_its_first_line() -> None:
    tagged = _test(output="Tested: x\nThe function is a stub", tags=[TAG_NOT_IMPLEMENTED])
    assert _plain(notes(FunctionGroup(FWD, [tagged, tagged]), set(), {FWD})) == [
        ("2 checks: The function is a stub", "red")
    ]


def test_checks_not_run_or_unfinished_share_one_line_per_reason() -> None:
    not_run = _test(output="not run: the budget ran out")
    unfinished = _test(output="Tested: x\nnot finished: the budget ran out", tags=[TAG_UNFINISHED])
    free = _test(output="not run: the budget ran out", most=0.0)
    lines = notes(FunctionGroup(FWD, [not_run, unfinished, not_run, free]), set())
    assert _plain(lines) == [
        ("3 checks: not run: the budget ran out", "red"),
        ("not finished: the budget ran out", "red"),
    ]
    assert _plain(notes(FunctionGroup(FWD, [free]), set())) == [("not run: the budget ran out", "yellow")]
    assert notes(FunctionGroup(FWD, [_test(output="Problem: wrong"), _test(score=2.0)]), set()) == []


# --- the table --------------------------------------------------------------------------------------------------


def _table(tests: list[TestResult], width: int) -> list[str]:
    """The table made for ``width`` columns, printed on a wider console (so that nothing wraps)."""
    console = Console(width=200, record=True, color_system=None, file=io.StringIO())
    console.print(check_table(tests, width))
    return console.export_text().splitlines()


TABLE = [
    _test(name=f"{FWD}: direction", score=2.0, check_id="kl_forward.direction"),
    _test(name=f"{FWD}: value (mean over tokens)", score=0.5, most=4.0, check_id="kl_forward.value"),
    _test(name="shaped_reward: goal", most=0.0, advisory=True, check_id="shaping.goal"),
    _test(name="training: run", most=0.0, gradable=False, points_not_graded=3.0, check_id="training.run"),
]


def test_the_table_lines_up_names_and_points_under_group_totals() -> None:
    assert _table(TABLE, 60) == [
        "Grading report",
        "kl_penalty_forward                            2.5 / 6",
        "  pass     direction                            2 / 2",
        "  partial  value (mean over tokens)           0.5 / 4",
        "shaped_reward                                        ",
        "  ok       goal                                     -",
        "training                                             ",
        "  n/a      run                       not gradable (3)",
    ]


def test_names_are_shortened_to_the_width_but_not_below_twelve_columns() -> None:
    assert _table(TABLE, 50)[1:4] == [
        "kl_penalty_forward                         2.5 / 6",
        "  pass     direction                         2 / 2",
        "  partial  value                           0.5 / 4",
    ]
    long = _test(
        name="a_very_long_function_name_here: a very long check name", score=1.0, most=1.0, check_id=""
    )
    assert _table([long], 10) == [
        "Grading report",
        "a_very_long_function_n…  1 / 1",
        "  pass     a very long…  1 / 1",
    ]


def test_the_notes_are_indented_under_the_names() -> None:
    held = _test(
        name=f"{FWD}: value", output="Withheld: requires x.", tags=[TAG_WITHHELD], check_id="kl_forward.v"
    )
    lines = _table([held], 60)
    assert lines == [
        "Grading report",
        "kl_penalty_forward       0 / 2",
        "  held     value         0 / 2",
        "           1 held check (2 points) passed on its own, but it requires x.",
    ]


def test_the_title_and_the_group_headers_are_bold() -> None:
    table = check_table(TABLE, 60).renderables
    assert (table[0].plain, str(table[0].style)) == ("Grading report", "bold")
    assert str(table[1].style) == "bold" and table[1].plain.startswith(FWD)


def test_a_function_is_told_in_full_in_its_own_group_even_when_another_group_comes_first() -> None:
    run = _test(name="training: forward run", output=RAISED, check_id="training.forward")
    prop = _test(name=f"{FWD}: direction", output=RAISED, check_id="kl_forward.direction")
    text = [line.rstrip() for line in _table([run, prop], 60)]
    assert text == [
        "Grading report",
        "training                 0 / 2",
        "  FAIL     forward run   0 / 2",
        f"           1 check failed because {FWD} is not implemented yet.",
        f"{FWD}       0 / 2",
        "  FAIL     direction     0 / 2",
        f"           {FWD} raised NotImplementedError: write me. It is not implemented yet: see the handout.",
    ]


def test_a_groups_total_counts_its_gradable_scored_checks() -> None:
    tests = [
        _test(score=0.1, most=0.1, check_id="kl_forward.a"),
        _test(score=0.2, most=0.2, check_id="kl_forward.b"),
        _test(score=0.0, most=0.0, advisory=True, check_id="kl_forward.c"),
        _test(score=0.0, most=0.0, gradable=False, points_not_graded=5.0, check_id="kl_forward.d"),
    ]
    assert _table(tests, 60)[1].split()[-3:] == ["0.3", "/", "0.3"]
