"""The rubric loader's exact answers (grader/grading/rubric.py): each problem's message as an instructor reads it,
the defaults it fills in, and the hidden checks a student's copy leaves out.

Added for the mutation score of grader/grading/ (tests/README.md, "Mutation score"): the older tests match a word
of each message, which lets a message lose what it says (the allowed keys, the value found) unnoticed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.grading.rubric import Rubric, RubricEntry, RubricError, load_rubric, parse_rubric

OK = {"name": "kl_penalty_forward: value", "points": 1}
WHERE = "checks.'kl_forward.value'"


def _problems(data: dict, known_ids: set[str] | None = None) -> list[str]:
    with pytest.raises(RubricError) as caught:
        parse_rubric(data, Path("r.toml"), known_ids)
    head, *lines = str(caught.value).split("\n")
    assert head == "r.toml: invalid rubric:"
    assert all(line.startswith("  - ") for line in lines)
    return [line.removeprefix("  - ") for line in lines]


def _entry(**fields) -> dict:
    return {"checks": {"kl_forward.value": {**OK, **fields}}}


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (
            {**_entry(), "extra": 1},
            "unknown top-level key 'extra' (expected [feedback], [defaults] and [checks.\"<id>\"] tables)",
        ),
        ({**_entry(), "defaults": 5}, "[defaults] must be a table"),
        (
            {**_entry(), "defaults": {"points": 1}},
            "[defaults]: unknown key 'points' (allowed: budget_s, hidden_visibility, visibility)",
        ),
        ({}, 'no checks: add [checks."<id>"] tables'),
        ({"checks": {}}, 'no checks: add [checks."<id>"] tables'),
        (
            {"checks": {"Value": OK}},
            "checks.'Value': not a check id (lowercase words separated by dots, e.g. 'kl_forward.direction')",
        ),
        ({"checks": {"kl_forward.value": 5}}, f"{WHERE}: must be a table"),
        (
            _entry(pts=1),
            f"{WHERE}: unknown key 'pts' (allowed: advisory, budget_s, hidden, name, points, requires, "
            "requires_training, tags, visibility)",
        ),
        (_entry(name=" "), f"{WHERE}: 'name' must be a non-empty string of at most 200 characters"),
        (_entry(name="x" * 201), f"{WHERE}: 'name' must be a non-empty string of at most 200 characters"),
        (_entry(points=-1), f"{WHERE}: 'points' must be a number >= 0, not -1"),
        (_entry(points=True), f"{WHERE}: 'points' must be a number >= 0, not True"),
        (_entry(points=float("inf")), f"{WHERE}: 'points' must be a number >= 0, not inf"),
        (_entry(points="3"), f"{WHERE}: 'points' must be a number >= 0, not '3'"),
        (_entry(hidden="yes"), f"{WHERE}: 'hidden' must be true or false, not 'yes'"),
        (
            _entry(visibility="public"),
            f"{WHERE}: 'visibility' must be one of visible, hidden, after_due_date, after_published, not 'public'",
        ),
        (_entry(advisory="no"), f"{WHERE}: 'advisory' must be true or false, not 'no'"),
        (_entry(requires_training=1), f"{WHERE}: 'requires_training' must be true or false, not 1"),
        (_entry(advisory=True, points=2), f"{WHERE}: an advisory check is worth 0 points (points = 2)"),
        (_entry(budget_s=0), f"{WHERE}: 'budget_s' must be a number of seconds in (0, 3600], not 0"),
        (
            _entry(budget_s=3600.5),
            f"{WHERE}: 'budget_s' must be a number of seconds in (0, 3600], not 3600.5",
        ),
        (_entry(budget_s=True), f"{WHERE}: 'budget_s' must be a number of seconds in (0, 3600], not True"),
        (_entry(budget_s="9"), f"{WHERE}: 'budget_s' must be a number of seconds in (0, 3600], not '9'"),
        (_entry(tags=["a", ""]), f"{WHERE}: 'tags' must be a list of non-empty strings"),
        (_entry(tags="a"), f"{WHERE}: 'tags' must be a list of non-empty strings"),
        (
            _entry(requires=["kl_forward.value", "kl_forward.value"]),
            f"{WHERE}: 'requires' must be a list of distinct check ids",
        ),
        (_entry(requires="kl_forward.value"), f"{WHERE}: 'requires' must be a list of distinct check ids"),
        (_entry(requires=[""]), f"{WHERE}: 'requires' must be a list of distinct check ids"),
        (_entry(points=0), "the checks are worth 0 points in total"),
        (_entry(requires=["kl_forward.value"]), f"{WHERE}: 'requires' names the check itself"),
        (
            _entry(requires=["kl_forward.finite"]),
            f"{WHERE}: requires 'kl_forward.finite', which is not a check of this rubric (gates can only name checks "
            "listed here)",
        ),
        ({**_entry(), "feedback": 5}, "[feedback] must be a table"),
        (
            {**_entry(), "feedback": {"level": "hint", "depth": 1}},
            "[feedback]: unknown key 'depth' (allowed: level)",
        ),
    ],
)
def test_each_problem_is_said_exactly(data: dict, problem: str) -> None:
    assert _problems(data) == [problem]


def test_every_problem_is_reported_at_once_in_order() -> None:
    data = {
        "checks": {
            "kl_forward.value": {**OK, "points": -1},
            "kl_forward.finite": {"name": "finite", "points": 1, "hidden": 2},
        },
        "defaults": {"colour": "red"},
    }
    assert _problems(data) == [
        "[defaults]: unknown key 'colour' (allowed: budget_s, hidden_visibility, visibility)",
        f"{WHERE}: 'points' must be a number >= 0, not -1",
        "checks.'kl_forward.finite': 'hidden' must be true or false, not 2",
    ]


def test_a_gate_on_a_check_worth_nothing_or_in_a_cycle_is_refused() -> None:
    free = {
        "checks": {"a.b": {"name": "b", "points": 1, "requires": ["a.c"]}, "a.c": {"name": "c", "points": 0}}
    }
    assert _problems(free) == [
        "checks.'a.b': requires 'a.c', which is worth 0 points and not advisory, so its result cannot tell a pass "
        "from a failure; give it points or make it advisory"
    ]
    cycle = {
        "checks": {
            "a.a": {"name": "a", "points": 1},
            "a.b": {"name": "b", "points": 1, "requires": ["a.c"]},
            "a.c": {"name": "c", "points": 1, "requires": ["a.d"]},
            "a.d": {"name": "d", "points": 1, "requires": ["a.b"]},
        }
    }
    assert _problems(cycle) == [
        "the gates form a cycle (no check on it could ever score): a.b -> a.c -> a.d -> a.b"
    ]
    # a gate on a check worth nothing is fine when that check is advice: its verdict is its own
    advice = {
        "checks": {
            "a.b": {"name": "b", "points": 1, "requires": ["a.c"]},
            "a.c": {"name": "c", "points": 0, "advisory": True},
        }
    }
    assert parse_rubric(advice)["a.b"].requires == ("a.c",)


def test_an_unknown_id_names_up_to_six_known_ones_like_it() -> None:
    known = {f"kl_forward.p{i}" for i in range(8)} | {"shaping.value", "training.run"}
    listed = ", ".join(sorted(known)[:6])
    assert _problems({"checks": {"kl_forward.typo": OK}}, known) == [
        f"checks.'kl_forward.typo': unknown check id: no check is registered under it (known ids include: {listed})"
    ]
    assert _problems({"checks": {"other.value": OK}}, known) == [
        "checks.'other.value': unknown check id: no check is registered under it (known ids include: shaping.value)"
    ]
    assert _problems({"checks": {"other.thing": OK}}, known) == [
        "checks.'other.thing': unknown check id: no check is registered under it"
    ]


def test_defaults_and_the_entries_they_make() -> None:
    data = {
        "defaults": {"visibility": "after_published", "budget_s": 30, "hidden_visibility": "hidden"},
        "feedback": {"level": "explain"},
        "checks": {
            "kl_forward.value": {"name": "  value  ", "points": 2, "tags": ["core"], "requires": []},
            "kl_forward.secret": {"name": "secret", "points": 1, "hidden": True},
            "training.forward": {"name": "run", "points": 3, "visibility": "visible", "budget_s": 120},
            "shaping.goal": {"name": "goal", "points": 0, "advisory": True},
        },
    }
    rubric = parse_rubric(data, Path("r.toml"))
    assert rubric == Rubric(
        (
            RubricEntry("kl_forward.value", "value", 2.0, "after_published", False, False, 30.0, ("core",)),
            RubricEntry("kl_forward.secret", "secret", 1.0, "hidden", budget_s=30.0, hidden=True),
            RubricEntry("training.forward", "run", 3.0, "visible", False, True, 120.0),
            RubricEntry("shaping.goal", "goal", 0.0, "after_published", True, False, 30.0),
        ),
        Path("r.toml"),
        "explain",
    )
    assert rubric.selected(training=False) == (rubric.entries[0], rubric.entries[1], rubric.entries[3])
    assert (
        parse_rubric({"checks": {"kl_forward.secret": {"name": "s", "points": 1, "hidden": True}}})[
            "kl_forward.secret"
        ].visibility
        == "after_due_date"
    )
    assert parse_rubric(_entry())["kl_forward.value"] == RubricEntry("kl_forward.value", OK["name"], 1.0)
    with pytest.raises(KeyError, match="kl_forward.other"):
        rubric["kl_forward.other"]


def test_a_students_copy_leaves_out_the_hidden_checks_it_does_not_have() -> None:
    data = {
        "feedback": {"level": "solution"},
        "checks": {
            "kl_forward.value": OK,
            "kl_forward.secret": {"name": "secret", "points": 1, "hidden": True},
            "kl_forward.known": {"name": "known", "points": 1, "hidden": True},
        },
    }
    rubric = parse_rubric(data, Path("r.toml"))
    kept, absent = rubric.without_absent_hidden({"kl_forward.value", "kl_forward.known"})
    assert absent == (rubric["kl_forward.secret"],)
    assert kept == Rubric(
        (rubric["kl_forward.value"], rubric["kl_forward.known"]), Path("r.toml"), "solution"
    )
    assert rubric.without_absent_hidden({"kl_forward.secret", "kl_forward.known"}) == (rubric, ())


def test_load_rubric_reads_utf8_checks_known_ids_and_says_what_it_cannot_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "rubric.toml"
    path.write_text('[checks."kl_forward.value"]\nname = "valeur – é"\npoints = 1\n', encoding="utf-8")
    monkeypatch.setattr("locale.getpreferredencoding", lambda do_setlocale=True: "ascii")
    assert load_rubric(path)["kl_forward.value"].name == "valeur – é"
    with pytest.raises(RubricError, match="unknown check id"):
        load_rubric(path, known_ids={"shaping.goal"})
    missing = tmp_path / "missing.toml"
    with pytest.raises(RubricError) as caught:
        load_rubric(missing)
    assert str(caught.value) == f"{missing}: cannot read the rubric (No such file or directory)"


def test_the_edges_of_what_an_entry_accepts() -> None:
    rubric = parse_rubric(
        {
            "checks": {
                "kl_forward.value": {**OK, "name": "x" * 200, "budget_s": 3600},
                "kl_forward.finite": {**OK, "budget_s": 0.5},
            }
        }
    )
    assert (rubric["kl_forward.value"].budget_s, rubric["kl_forward.finite"].budget_s) == (3600.0, 0.5)


def test_a_bad_value_is_reported_once_and_the_checks_after_it_are_still_read() -> None:
    data = {"checks": {"kl_forward.value": 5, "kl_forward.finite": {**OK, "points": -2}}}
    assert _problems(data) == [
        f"{WHERE}: must be a table",
        "checks.'kl_forward.finite': 'points' must be a number >= 0, not -2",
    ]
    # bad points on advice are not also "worth more than 0"; a bad 'hidden' is not taken as hidden
    assert _problems(_entry(advisory=True, points=-1)) == [f"{WHERE}: 'points' must be a number >= 0, not -1"]
    assert _problems({**_entry(hidden="yes"), "defaults": {"hidden_visibility": "nobody"}}) == [
        f"{WHERE}: 'hidden' must be true or false, not 'yes'"
    ]


def test_ids_of_more_than_two_parts_are_matched_by_their_last_part() -> None:
    assert _problems({"checks": {"other.value": OK}}, {"shaping.deep.value"}) == [
        "checks.'other.value': unknown check id: no check is registered under it (known ids include: "
        "shaping.deep.value)"
    ]
    assert _problems({"checks": {"other.deep.value": OK}}, {"shaping.value"}) == [
        "checks.'other.deep.value': unknown check id: no check is registered under it (known ids include: "
        "shaping.value)"
    ]
