"""The rubric's gates (``requires``): validated on load, written for every secondary and training check in the
shipped rubric, and applied by :func:`grader.grading.runner.apply_gates` (points withheld, the reason reported, the
results still a valid Gradescope file)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from grader.grading.budget import TAG_NOT_RUN, TAG_UNFINISHED
from grader.grading.results import GradingResults, TestResult
from grader.grading.rubric import RubricError, load_rubric, parse_rubric
from grader.grading.runner import TAG_WITHHELD, apply_gates
from tests.support.check_ids import (
    HIDDEN_IDS,
    KL_PROPERTIES,
    PROPERTY_IDS,
    RUN_IDS,
    SHAPING_PROPERTIES,
    TRAINING_IDS,
)

DEFINING = {
    "kl_forward": ("kl_forward.direction", "kl_forward.value", "kl_forward.value_random"),
    "kl_backward": ("kl_backward.direction", "kl_backward.value", "kl_backward.value_random"),
    "shaping": ("shaping.goal",),
}
#: Where training runs, every check of a penalty (its defining ones too) also requires its values on training's
#: own batches (hidden, advisory: tests/unit/test_in_training.py).
IN_TRAINING = {
    "kl_forward": ("kl_forward.in_training",),
    "kl_backward": ("kl_backward.in_training",),
    "shaping": ("shaping.in_training",),
}


# --- the shipped rubric ------------------------------------------------------------------------------------------


def test_every_secondary_check_requires_its_functions_defining_checks():
    rubric = load_rubric(known_ids=PROPERTY_IDS | HIDDEN_IDS | RUN_IDS)
    by_id = {e.check_id: e for e in rubric.entries}
    for group, properties in (
        ("kl_forward", (*KL_PROPERTIES, "expected_value")),
        ("kl_backward", KL_PROPERTIES),
        ("shaping", SHAPING_PROPERTIES),
    ):
        for prop in (*properties, *(["value_random"] if group.startswith("kl_") else [])):
            entry = by_id[f"{group}.{prop}"]
            if entry.check_id in DEFINING[group]:
                assert entry.requires == IN_TRAINING[group], entry.check_id
            else:
                assert set(entry.requires) == {*DEFINING[group], *IN_TRAINING[group]}, entry.check_id
    for group in ("kl_forward", "kl_backward"):
        training = f"training.{group.split('_')[1]}_kl"
        assert set(by_id[training].requires) == {*DEFINING[group], *IN_TRAINING[group]}
        assert by_id[IN_TRAINING[group][0]].requires == ()
    assert set(by_id["training.shaped"].requires) == {*DEFINING["shaping"], *IN_TRAINING["shaping"]}
    assert by_id["training.baseline"].requires == ()


def test_the_defining_checks_are_scored():
    rubric = load_rubric()
    for ids in DEFINING.values():
        for check_id in ids:
            assert rubric[check_id].points > 0 and not rubric[check_id].advisory, check_id


# --- validation ----------------------------------------------------------------------------------------------


def _rubric(**checks: dict) -> dict:
    return {"checks": {cid: {"name": cid, "points": 1, **entry} for cid, entry in checks.items()}}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            _rubric(**{"kl_forward.contract": {"requires": ["kl_forward.directoin"]}}),
            "requires 'kl_forward.directoin', which is not a check of this rubric",
        ),
        (_rubric(**{"kl_forward.contract": {"requires": ["kl_forward.contract"]}}), "names the check itself"),
        (
            _rubric(**{"kl_forward.contract": {"requires": "kl_forward.direction"}}),
            "'requires' must be a list",
        ),
        (
            _rubric(
                **{
                    "kl_forward.contract": {"requires": ["kl_forward.direction", "kl_forward.direction"]},
                    "kl_forward.direction": {},
                }
            ),
            "'requires' must be a list of distinct check ids",
        ),
        (
            _rubric(
                **{
                    "kl_forward.contract": {"requires": ["kl_forward.direction"]},
                    "kl_forward.direction": {"requires": ["kl_forward.value"]},
                    "kl_forward.value": {"requires": ["kl_forward.contract"]},
                }
            ),
            "the gates form a cycle (no check on it could ever score): kl_forward.contract -> "
            "kl_forward.direction -> kl_forward.value -> kl_forward.contract",
        ),
        (
            _rubric(
                **{
                    "training.forward_kl": {"requires": ["training.baseline"]},
                    "training.baseline": {"points": 0},
                }
            ),
            "worth 0 points and not advisory",
        ),
    ],
)
def test_gate_validation_errors(data, message):
    with pytest.raises(RubricError) as info:
        parse_rubric(data, Path("r.toml"), known_ids=PROPERTY_IDS | TRAINING_IDS)
    assert message in str(info.value)


def test_a_gate_may_require_an_advisory_check_or_a_training_check():
    rubric = parse_rubric(
        _rubric(
            **{
                "shaping.contract": {"requires": ["shaping.goal", "training.shaped"]},
                "shaping.goal": {"points": 0, "advisory": True},
                "training.shaped": {},
            }
        ),
        known_ids=PROPERTY_IDS | TRAINING_IDS,
    )
    assert rubric["shaping.contract"].requires == ("shaping.goal", "training.shaped")


# --- applying the gates --------------------------------------------------------------------------------------

GATED_RUBRIC = parse_rubric(
    _rubric(
        **{
            "kl_forward.direction": {"points": 9},
            "kl_forward.value": {"points": 6},
            "kl_forward.contract": {"points": 3, "requires": ["kl_forward.direction", "kl_forward.value"]},
            "kl_forward.linear_in_coef": {"points": 3, "requires": ["kl_forward.direction"]},
            "shaping.goal": {"points": 0, "advisory": True},
            "shaping.contract": {"points": 2, "requires": ["shaping.goal"]},
            "training.forward_kl": {"points": 7, "requires": ["kl_forward.value"]},
        }
    )
)


def _results(failing=(), internal=(), only=None) -> list[TestResult]:
    """One result per rubric entry: full points, except ``failing`` (0) and ``internal`` (internal errors)."""
    tests = []
    for e in GATED_RUBRIC.entries:
        if only is not None and e.check_id not in only:
            continue
        ok = e.check_id not in failing and e.check_id not in internal
        tests.append(
            TestResult(
                e.name,
                e.points if ok else 0.0,
                e.points,
                f"own output of {e.check_id}",
                tags=[e.function_tag],
                check_id=e.check_id,
                advisory=e.advisory,
                internal_error=e.check_id in internal,
                advisory_failed=e.advisory and not ok,
            )
        )
    return tests


def _by_id(tests):
    return {t.check_id: t for t in tests}


@pytest.mark.parametrize("tag", [TAG_NOT_RUN, TAG_UNFINISHED])
def test_a_required_check_the_time_budget_never_reached_closes_no_gate(tag):
    """An advisory gate (the in-training checks) comes last: a grade whose budget ran out before it, or during
    it, judged nothing there, and must not withhold the points of every check that requires it."""
    tests = [
        replace(t, tags=[*t.tags, tag], output="not run: the grading time budget ran out")
        if t.check_id == "shaping.goal"
        else t
        for t in _results(failing={"shaping.goal"})
    ]
    gated = _by_id(apply_gates(GATED_RUBRIC.entries, tests))
    assert gated["shaping.contract"].score == 2 and TAG_WITHHELD not in gated["shaping.contract"].tags
    # judged and failed, it still closes the gate
    judged = _by_id(apply_gates(GATED_RUBRIC.entries, _results(failing={"shaping.goal"})))
    assert judged["shaping.contract"].score == 0


def test_all_gates_open_nothing_changes():
    tests = _results()
    notes: list[str] = []
    assert apply_gates(GATED_RUBRIC.entries, tests, notes) == tests
    assert notes == []


def test_a_failed_defining_check_withholds_the_points_and_says_why():
    notes: list[str] = []
    gated = _by_id(apply_gates(GATED_RUBRIC.entries, _results(failing={"kl_forward.direction"}), notes))
    contract = gated["kl_forward.contract"]
    assert contract.score == 0 and contract.max_score == 3
    assert TAG_WITHHELD in contract.tags and not contract.passed
    assert contract.output.startswith(
        "Withheld: requires kl_forward.direction, which failed. On its own this check earned 3 / 3, but its "
        "points count only when the checks it requires pass (kl_forward.direction: kl_forward.direction)."
    )
    assert contract.output.endswith("own output of kl_forward.contract")  # its own verdict is still reported
    assert gated["kl_forward.linear_in_coef"].score == 0
    # checks that do not require the failed one keep their points
    assert gated["kl_forward.value"].score == 6 and gated["training.forward_kl"].score == 7
    assert gated["shaping.contract"].score == 2
    assert notes == [
        "Withheld by the rubric's gates: 6 points on 2 checks that passed, because a check they require failed "
        "(each says which). Fix the defining checks first."
    ]


def test_the_terminal_report_marks_a_withheld_check_held_not_fail():
    import io

    from rich.console import Console

    from grader.grading.report import render

    gated = apply_gates(GATED_RUBRIC.entries, _results(failing={"kl_forward.direction", "kl_forward.value"}))
    stream = io.StringIO()
    render(GradingResults(gated), Console(file=stream, width=200, color_system=None))
    # a check's line: "  <status>  <name>  <score> / <max>"
    rows = {parts[1]: parts[0] for parts in map(str.split, stream.getvalue().splitlines()) if len(parts) == 5}
    assert rows["kl_forward.contract"] == "held" and rows["kl_forward.direction"] == "FAIL"
    assert rows["shaping.contract"] == "pass"


def test_every_failed_requirement_is_named():
    gated = _by_id(
        apply_gates(GATED_RUBRIC.entries, _results(failing={"kl_forward.direction", "kl_forward.value"}))
    )
    output = gated["kl_forward.contract"].output
    assert output.startswith("Withheld: requires kl_forward.direction and kl_forward.value, which failed.")


def test_failed_and_broken_requirements_are_told_apart():
    tests = _results(failing={"kl_forward.direction"}, internal={"kl_forward.value"})
    output = _by_id(apply_gates(GATED_RUBRIC.entries, tests))["kl_forward.contract"].output
    assert output.startswith(
        "Withheld: requires kl_forward.direction, which failed, and kl_forward.value, which could not be "
        "graded (internal error)."
    )


def test_an_advisory_requirement_gates_by_its_verdict():
    gated = _by_id(apply_gates(GATED_RUBRIC.entries, _results(failing={"shaping.goal"})))
    assert gated["shaping.contract"].score == 0 and TAG_WITHHELD in gated["shaping.contract"].tags


def test_a_requirement_with_an_internal_error_closes_the_gate_and_says_so():
    gated = _by_id(apply_gates(GATED_RUBRIC.entries, _results(internal={"kl_forward.value"})))
    assert gated["training.forward_kl"].score == 0
    assert "which could not be graded (internal error)" in gated["training.forward_kl"].output


def test_a_failed_gated_check_keeps_its_own_verdict_and_mentions_the_gate():
    tests = _results(failing={"kl_forward.direction", "kl_forward.contract"})
    gated = _by_id(apply_gates(GATED_RUBRIC.entries, tests))
    contract = gated["kl_forward.contract"]
    assert contract.score == 0 and TAG_WITHHELD not in contract.tags
    assert contract.output.startswith("own output of kl_forward.contract")
    assert contract.output.endswith("(Gate: this check requires kl_forward.direction, which failed.)")


def test_an_ungraded_requirement_does_not_close_the_gate():
    """--no-training or --only: a required check that was not graded is not a failure."""
    only = {"kl_forward.contract", "kl_forward.linear_in_coef", "shaping.contract"}
    tests = _results(only=only)
    assert apply_gates(GATED_RUBRIC.entries, tests) == tests


def test_gates_use_each_checks_own_verdict_not_its_gated_score():
    rubric = parse_rubric(
        _rubric(
            **{
                "kl_forward.direction": {},
                "kl_forward.value": {"requires": ["kl_forward.direction"]},
                "kl_forward.contract": {"requires": ["kl_forward.value"]},
            }
        )
    )
    tests = [
        TestResult(e.check_id, 0.0 if e.check_id == "kl_forward.direction" else 1.0, 1.0, check_id=e.check_id)
        for e in rubric.entries
    ]
    gated = _by_id(apply_gates(rubric.entries, tests))
    assert gated["kl_forward.value"].score == 0  # its own requirement failed
    assert gated["kl_forward.contract"].score == 1  # kl_forward.value itself passed: chains are spelled out


def test_withheld_results_are_a_valid_gradescope_file():
    gated = apply_gates(GATED_RUBRIC.entries, _results(failing={"kl_forward.direction"}))
    data = GradingResults(tests=gated).to_gradescope_dict()
    for test in data["tests"]:
        assert {"name", "score", "max_score", "output", "visibility", "tags"} <= set(test)
    # the file carries the gated scores, and reads back as the same results
    assert [t["score"] for t in data["tests"]] == [t.score for t in gated]
    assert {t["extra_data"]["check_id"] for t in data["tests"] if TAG_WITHHELD in t["tags"]} == {
        "kl_forward.contract",
        "kl_forward.linear_in_coef",
    }
    assert GradingResults.from_dict(data).tests == gated
    contract = next(t for t in data["tests"] if t["extra_data"]["check_id"] == "kl_forward.contract")
    assert contract["score"] == 0 and contract["max_score"] == 3 and TAG_WITHHELD in contract["tags"]
    assert contract["status"] == "failed"
    assert data["score"] == sum(t["score"] for t in data["tests"])


# --- one test per gate of the shipped rubric ---------------------------------------------------------------------

SHIPPED = load_rubric()
GATES = [(e.check_id, required) for e in SHIPPED.entries for required in e.requires]


@pytest.mark.parametrize(("check_id", "required"), GATES, ids=[f"{c}<-{r}" for c, r in GATES])
def test_each_shipped_gate_withholds_exactly_the_checks_that_require_it(check_id, required):
    tests = [
        TestResult(
            e.name,
            0.0 if e.check_id == required else e.points,
            e.points,
            "passed" if e.check_id != required else "failed",
            check_id=e.check_id,
            # a check worth nothing fails by saying so (as grader.grading.verdicts marks it)
            advisory_failed=e.check_id == required and (e.advisory or e.points == 0),
        )
        for e in SHIPPED.entries
    ]
    gated = _by_id(apply_gates(SHIPPED.entries, tests))
    assert gated[check_id].score == 0 and TAG_WITHHELD in gated[check_id].tags
    assert gated[check_id].output.startswith(f"Withheld: requires {required}, which failed.")
    assert f"{required}: {SHIPPED[required].name}" in gated[check_id].output
    for e in SHIPPED.entries:
        if required not in e.requires and e.check_id != required:
            assert gated[e.check_id].score == e.points, e.check_id
