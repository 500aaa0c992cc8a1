"""Feedback levels (grader/checks/feedback.py): each level shows what it promises and nothing of the levels above it;
the level comes from the rubric or --feedback-level; a copy stripped to a level cannot show more.

In process: the catalogue's texts, each check at each level, the rubric's level. The level chosen on the command
line, by a custom rubric and capped by a stripped copy in a real grade: tests/integration/test_feedback_levels_cli.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from grader.checks import REGISTRY, feedback
from grader.checks import misconceptions as M
from grader.checks.feedback import LEVELS, CatalogueError
from grader.contract import BACKWARD, FORWARD, SHAPING, CheckContext
from grader.grading.report import render
from grader.grading.results import GradingResults
from grader.grading.rubric import RubricEntry, RubricError, load_rubric, parse_rubric
from grader.grading.runner import run_check
from grader.tools.handout import rubric_with_level
from tests.support.mutants import CASES, mutant
from tests.support.solution_forms import SOLUTION_FORMS
from tests.support.text import flat as _flat

ROOT = Path(__file__).resolve().parents[2]
CONTEXT = CheckContext(seed=0, max_examples=100)


# ---------------------------------------------------------------------------------------------------------------
# The catalogue's text
# ---------------------------------------------------------------------------------------------------------------


def test_every_misconception_has_text_at_every_level_and_the_repository_holds_all_levels() -> None:
    assert M.check_texts() == []
    catalogue = feedback.load_catalogue()
    assert catalogue.level == "solution"
    for mid, m in M.CATALOGUE.items():
        for function in ("", *m.implementations):
            for level in LEVELS:
                assert len(m.text(level, function)) > 30, (mid, function, level)


def test_hint_and_explain_never_state_the_answer() -> None:
    catalogue = feedback.load_catalogue()
    tables = [*catalogue.entries.items(), *catalogue.phrases.items()]
    for name, entry in tables:
        assert not SOLUTION_FORMS.search(entry.title), name
        for function in ("", FORWARD, BACKWARD, SHAPING):
            for level in ("hint", "explain"):
                text = entry.text(level, function)
                assert not SOLUTION_FORMS.search(text), (name, function, level, text)
    # ... and the solutions do state it: the forms above are the ones the catalogue uses.
    assert SOLUTION_FORMS.search(M.get("value_estimator_r_log_r").text("solution", BACKWARD))
    assert SOLUTION_FORMS.search(M.get("swapped_direction").text("solution", FORWARD))


def test_a_catalogue_with_a_gap_or_a_typo_is_refused_with_every_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[misconception.a]\ntitle = "A"\nhint = "h"\nexplain = "e ${nope}"\n'
        '[misconception.b]\ntitle = "B"\nhint = "h"\nexplain = "e"\nsolution = "s"\ncolour = "red"\n'
    )
    with pytest.raises(CatalogueError) as info:
        feedback.load_catalogue(bad)
    message = str(info.value)
    assert "misconception.a.explain (generic): cannot substitute 'nope'" in message
    assert "misconception.b: unknown key 'colour'" in message
    assert "misconception.b: has solution text although the misconceptions stop at 'explain'" in message


def test_stripping_keeps_the_levels_up_to_the_one_asked_for_and_reads_back(tmp_path: Path) -> None:
    for level in LEVELS:
        path = tmp_path / f"{level}.toml"
        path.write_text(feedback.strip_catalogue(feedback.CATALOGUE_PATH, level), encoding="utf-8")
        copy, full = feedback.load_catalogue(path), feedback.load_catalogue()
        assert copy.level == level and set(copy.entries) == set(full.entries)
        assert set(copy.phrases) == set(full.phrases)
        for mid, entry in full.entries.items():
            for function in ("", FORWARD, BACKWARD, SHAPING):
                for lv in LEVELS:
                    kept = feedback.rank(lv) <= feedback.rank(level)
                    assert copy[mid].text(lv, function) == (entry.text(lv, function) if kept else ""), (
                        mid,
                        lv,
                    )
        if level != "solution":
            assert not SOLUTION_FORMS.search(path.read_text()), level
    # A literal "$" survives the round trip ("$$" in the source, "$" in the text).
    source = tmp_path / "dollar.toml"
    source.write_text('[misconception.a]\ntitle = "A"\nhint = "costs $$5"\n')
    (tmp_path / "dollar_hint.toml").write_text(feedback.strip_catalogue(source, "hint"))
    assert feedback.load_catalogue(tmp_path / "dollar_hint.toml")["a"].text("hint") == "costs $5"


# ---------------------------------------------------------------------------------------------------------------
# What each level shows
# ---------------------------------------------------------------------------------------------------------------

LEVEL_CASES = [
    ("sum_not_mean", FORWARD, "kl_forward.mean_over_tokens"),
    ("value_estimator_r_log_r", BACKWARD, "kl_backward.direction"),
    ("overflow", BACKWARD, "kl_backward.finite_extreme"),
    ("shaping_not_monotone", SHAPING, "shaping.monotone_in_score"),
]


@pytest.mark.parametrize(("misconception_id", "function", "check_id"), LEVEL_CASES)
def test_each_level_shows_what_it_promises_and_nothing_above(misconception_id, function, check_id) -> None:
    m = M.get(misconception_id)
    entry = load_rubric()[check_id]
    for level in LEVELS:
        result = run_check(
            entry, REGISTRY[check_id], mutant(misconception_id, function), CONTEXT, feedback_level=level
        )
        out = _flat(result.output)
        assert result.score == 0 and result.misconception == misconception_id, result.output
        # hint: the property, the counterexample, the misconception's title and a nudge
        assert (
            out.startswith("Tested: ")
            and "Problem: " in out
            and ("Smallest failing input found:" in out or "A failing input:" in out)
        )
        assert f"Likely misconception: {m.title} [{misconception_id}]" in out
        assert "Hint: " + m.text("hint", function) in out
        # explain adds the derivation, solution the fix; a level never shows what a higher one adds
        for higher, label in (("explain", "Why: "), ("solution", "Fix: ")):
            shown = feedback.rank(level) >= feedback.rank(higher)
            assert (label + m.text(higher, function) in out) == shown, (level, higher)
            assert (label in out) == shown, (level, higher)
        if level != "solution":
            assert not SOLUTION_FORMS.search(out), (level, out)


def test_the_sum_not_mean_example_from_the_issue() -> None:
    entry = load_rubric()["kl_forward.mean_over_tokens"]
    check = REGISTRY["kl_forward.mean_over_tokens"]
    out = {
        level: _flat(
            run_check(entry, check, mutant("sum_not_mean", FORWARD), CONTEXT, feedback_level=level).output
        )
        for level in LEVELS
    }
    assert "a MEAN over each completion's tokens" in out["hint"]  # the property
    assert "sum over tokens instead of the mean [sum_not_mean]" in out["hint"]  # the title
    assert "Look at how you combine a completion's per-token terms" in out["hint"]  # where to look
    assert "hidden length penalty" not in out["hint"] and "hidden length penalty" in out["explain"]
    assert "len(terms)" not in out["explain"] and "len(terms)" in out["solution"]


def test_without_a_level_set_the_checks_use_the_default_rubrics() -> None:
    outcome = REGISTRY["kl_forward.mean_over_tokens"](mutant("sum_not_mean", FORWARD), CONTEXT)
    assert feedback.default_level() == load_rubric().feedback_level == "explain"
    assert "Why: " in outcome.feedback and "Fix: " not in outcome.feedback
    with feedback.using_level("hint"):
        outcome = REGISTRY["kl_forward.mean_over_tokens"](mutant("sum_not_mean", FORWARD), CONTEXT)
    assert "Hint: " in outcome.feedback and "Why: " not in outcome.feedback


def test_the_value_check_names_the_term_only_at_solution() -> None:
    entry = RubricEntry("kl_backward.value", "kl_penalty_backward: value", 1.0)
    wrong = mutant("value_estimator_r_log_r", BACKWARD)
    for level in LEVELS:
        out = run_check(entry, REGISTRY["kl_backward.value"], wrong, CONTEXT, feedback_level=level).output
        assert ("1 - r, r = pi_ref / pi" in out) == (level == "solution"), level


#: One failing mutant per check (the catalogue's texts are checked for every misconception above; what varies
#: per check is the check's own wording), from the mutant suite's table.
ONE_PER_CHECK = list(
    {check_id: (mid, fn, variant, check_id) for mid, fn, variant, check_id in CASES}.values()
)


@pytest.mark.slow  # about 11 s on 2 cores: a failing mutant through every check (measured with --durations)
def test_a_copy_stripped_to_hint_shows_hint_whatever_is_asked(stripped_to_hint: Path) -> None:
    """A failing mutant of every check, graded with a handout's catalogue and "solution" asked for: hint texts
    only, and no solution form anywhere in the feedback (the checks' own messages included)."""
    rubric = load_rubric()
    assert feedback.effective_level("solution") == "hint"
    assert len(ONE_PER_CHECK) >= 15
    for misconception_id, function, variant, check_id in ONE_PER_CHECK:
        result = run_check(
            rubric[check_id],
            REGISTRY[check_id],
            mutant(misconception_id, function, variant),
            CONTEXT,
            feedback_level="solution",
        )
        out = result.output
        assert f"[{misconception_id}]" in out, (misconception_id, check_id)
        assert "Hint: " in out and "Why: " not in out and "Fix: " not in out, (misconception_id, check_id)
        assert not SOLUTION_FORMS.search(out), (misconception_id, check_id, out)


# ---------------------------------------------------------------------------------------------------------------
# Where the level is set: the rubric, --feedback-level; what results.json and the report say
# ---------------------------------------------------------------------------------------------------------------


def _rubric_data(**feedback_table) -> dict:
    data = {"checks": {"kl_forward.contract": {"name": "contract", "points": 1}}}
    if feedback_table:
        data["feedback"] = feedback_table
    return data


def test_rubric_level_is_validated_and_defaults_to_hint() -> None:
    assert parse_rubric(_rubric_data()).feedback_level == "hint"
    assert parse_rubric(_rubric_data(level="solution")).feedback_level == "solution"
    with pytest.raises(
        RubricError, match=r"\[feedback\] level must be one of hint, explain, solution, not 'all'"
    ):
        parse_rubric(_rubric_data(level="all"))
    with pytest.raises(RubricError, match=r"\[feedback\]: unknown key 'levle'"):
        parse_rubric(_rubric_data(levle="hint"))


def test_rubric_with_level_rewrites_inserts_or_appends() -> None:
    text = (ROOT / "grader" / "grading" / "rubric.toml").read_text()
    changed = rubric_with_level(text, "hint")
    assert changed.count('level = "hint"') == 1 and 'level = "explain"' not in changed
    assert changed.replace('level = "hint"', 'level = "explain"') == text  # comments and layout kept
    assert rubric_with_level("[feedback]\n\n[defaults]\nbudget_s = 5\n", "solution").startswith(
        '[feedback]\nlevel = "solution"\n'
    )
    appended = rubric_with_level('[checks."a.b"]\nname = "x"\npoints = 1\n', "explain")
    assert appended.endswith('[feedback]\nlevel = "explain"\n')
    with pytest.raises(ValueError):
        rubric_with_level(text, "everything")


def test_report_names_the_level() -> None:
    console = Console(record=True, width=200)
    render(GradingResults(tests=[], output="Graded.", feedback_level="hint"), console=console)
    text = console.export_text()
    assert "Feedback level: hint \u2014 your instructor chose how much the grader explains" in text
    console = Console(record=True, width=200)
    render(GradingResults(tests=[], output="Graded."), console=console)
    assert "Feedback level" not in console.export_text()
