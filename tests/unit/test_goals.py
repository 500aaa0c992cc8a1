"""Exercise 2's declared shaping goals (grader/checks/goals.py): the declaration is read without running the file,
each goal's property passes correct shapings of that goal and fails identity, constants and the gaming rules.
A real grade reading the declaration: tests/integration/test_goals_grade.py."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from grader.checks import goals, shaping
from grader.contract import SHAPING, CheckContext
from tests.support.fake_submission import FakeSubmission
from tests.support.goal_shapings import rhyme_repeats_shaping
from tests.support.goal_shapings import rhyme_shaping as rhyme

CONTEXT = CheckContext(seed=0, max_examples=60)


def _words(text: str) -> list[str]:
    return text.lower().split()


def exponential(scores, completions, prompts=None):
    return [math.exp(3.0 * (s - 0.5)) for s in scores]


def longer(scores, completions, prompts=None):
    return [s * (1.0 + 0.05 * len(_words(c))) for s, c in zip(scores, completions, strict=True)]


def shorter(scores, completions, prompts=None):
    return [s / (1.0 + 0.05 * len(_words(c))) for s, c in zip(scores, completions, strict=True)]


def identity(scores, completions, prompts=None):
    return list(scores)


def constant(scores, completions, prompts=None):
    return [1.0 for _ in scores]


def full_stop(scores, completions, prompts=None):
    return [s * (1.0 if c.rstrip().endswith(".") else 0.5) for s, c in zip(scores, completions, strict=True)]


CORRECT = {"contrast": exponential, "longer": longer, "shorter": shorter, "rhyme": rhyme}


def _grade(goal: str, fn) -> float:
    context = CheckContext(seed=0, max_examples=60, shaping_goal=goal)
    return shaping.goal(FakeSubmission({SHAPING: fn}), context).fraction


@pytest.mark.parametrize("goal", sorted(CORRECT))
def test_a_correct_shaping_for_its_goal_passes(goal):
    assert _grade(goal, CORRECT[goal]) == 1.0


@pytest.mark.parametrize("goal", sorted(goals.GOALS))
@pytest.mark.parametrize("wrong", [identity, constant, full_stop], ids=["identity", "constant", "full-stop"])
def test_identity_constants_and_gaming_fail_every_goal(goal, wrong):
    assert _grade(goal, wrong) == 0.0


def test_the_same_word_twice_is_no_rhyme():
    """A rhyme bonus for any two sentence ends sharing three letters pays "... in every way. ... in every way."
    (the policy's first rhyme on the tiny preset, far from the reference): the rhyme goal's property fails it,
    saying why (the metric the training check reads does not count it either: test_shaping_goal_training)."""
    outcome = shaping.goal(
        FakeSubmission({SHAPING: rhyme_repeats_shaping}),
        CheckContext(seed=0, max_examples=60, shaping_goal="rhyme"),
    )
    assert outcome.fraction == 0.0
    assert "the same word twice is repetition, not a rhyme" in outcome.feedback
    assert "Count a pair only when the two words differ" in outcome.feedback


def test_a_shaping_for_one_goal_does_not_pass_another():
    assert _grade("shorter", longer) == 0.0 and _grade("longer", shorter) == 0.0
    assert _grade("rhyme", exponential) == 0.0


def _declared(tmp_path: Path, line: str) -> goals.Declaration:
    path = tmp_path / "rewards.py"
    path.write_text(
        f"import os\n{line}\n\ndef shaped_reward(scores, completions, prompts=None):\n    return scores\n"
    )
    return goals.read_declaration(path)


def test_the_declaration_is_read_from_the_syntax_tree(tmp_path: Path):
    assert _declared(tmp_path, 'SHAPING_GOAL = "contrast"') == goals.Declaration("contrast")
    assert _declared(tmp_path, 'SHAPING_GOAL: str = " Rhyme "') == goals.Declaration("rhyme")
    missing = _declared(tmp_path, "")
    assert missing.goal == "repetition" and "No SHAPING_GOAL declared" in missing.note
    unknown = _declared(tmp_path, 'SHAPING_GOAL = "happiness"')
    assert unknown.goal is None and "'happiness'" in unknown.note and '"rhyme"' in unknown.note
    computed = _declared(tmp_path, 'SHAPING_GOAL = os.environ["GOAL"]')  # never run: not a plain string
    assert computed.goal is None and "not a plain string" in computed.note


def test_an_unusable_declaration_fails_the_goal_check_with_its_message():
    context = CheckContext(
        shaping_goal=None, shaping_goal_note="SHAPING_GOAL is 'happiness': declare one ..."
    )
    outcome = shaping.goal(FakeSubmission({SHAPING: exponential}), context)
    assert outcome.fraction == 0.0 and "SHAPING_GOAL is 'happiness'" in outcome.feedback


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(
    ("name", "fn", "passes"),
    [
        ("exponential", exponential, True),
        ("square", lambda scores, completions, prompts=None: [s * s for s in scores], True),
        ("power 1.5", lambda scores, completions, prompts=None: [s**1.5 for s in scores], True),
        (
            "near-identity bend",
            lambda scores, completions, prompts=None: [s + 1e-4 * s * s for s in scores],
            False,
        ),
    ],
)
def test_contrast_asks_for_an_amplification_not_a_rounding_error(seed, name, fn, passes):
    """The contrast goal's training metric is shown only on the tiny preset, so its property decides: a bend of
    1e-4 is strictly convex but amplifies nothing; an exponential or a power does (each step >= 1 + h/4 times)."""
    outcome = shaping.goal(FakeSubmission({SHAPING: fn}), CheckContext(seed=seed, shaping_goal="contrast"))
    assert (outcome.fraction == 1.0) is passes, (name, outcome.feedback)


def _per_word(bonus: float, sign: int = 1):
    """score + bonus x words (sign -1: minus, for the shorter goal)."""
    return lambda scores, completions, prompts=None: [
        s + sign * bonus * len(_words(c)) for s, c in zip(scores, completions, strict=True)
    ]


def _rhyme_bonus(share: float):
    """The rhyme shaping of tests/support/goal_shapings.py with its bonus scaled to ``share`` of the score."""
    return lambda scores, completions, prompts=None: [
        s + share * (r - s) for s, r in zip(scores, rhyme(scores, completions, prompts), strict=True)
    ]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(
    ("goal", "name", "fn", "passes"),
    [
        ("longer", "+1e-7 per word", _per_word(1e-7), False),
        ("longer", "+0.003 per word", _per_word(0.003), True),
        ("longer", "x (1 + 0.003 per word)", lambda sc, co, pr=None: [s * (1 + 0.003 * len(_words(c))) for s, c in zip(sc, co, strict=True)], True),
        ("shorter", "-1e-7 per word", _per_word(1e-7, -1), False),
        ("shorter", "-0.003 per word", _per_word(0.003, -1), True),
        ("rhyme", "a millionth of the bonus", _rhyme_bonus(1e-6), False),
        ("rhyme", "a tenth of the bonus", _rhyme_bonus(0.1), True),
    ],
)  # fmt: skip
def test_every_goal_asks_for_a_preference_worth_training_with(seed, goal, name, fn, passes):
    """Red team, stop 21: 'score + 1e-7 x words' passed the longer goal (and such rounding errors every goal but
    contrast). A goal's preference must now be worth a score rise of 0.01 or 1% of the reward: a per-word bonus
    of 0.003 (0.012 over the cases' 4+ words) or a multiplicative one of 0.3% per word clears it at any score."""
    outcome = shaping.goal(FakeSubmission({SHAPING: fn}), CheckContext(seed=seed, shaping_goal=goal))
    assert (outcome.fraction == 1.0) is passes, (name, outcome.feedback)
    if not passes:
        assert "changes nothing the policy learns" in outcome.feedback, outcome.feedback
