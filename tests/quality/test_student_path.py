"""A student's path to full marks: plausible attempts graded in order, as the handout grades them.

Issue 25 tried the exercise as a student would and needed 7 grader runs from the naive submission to full marks,
with detours where the feedback did not say what the next attempt had to fix. Each path below is a sequence of
submissions a student plausibly writes, each one changing only what the previous grade's feedback named. For every
attempt but the last, the test asserts that the feedback of each function the next attempt changes names the
reason (a catalogued misconception's id, or the property in words); the last attempt earns full marks. Every
attempt is graded as the handout grades (feedback level ``hint``, no answer key: the hidden checks and the key's
clipping diagnosis are absent), and no feedback at that level states a penalty's per-token term.

The property grades only (``--no-training``, in process): the training checks' part of the path is a training
run the student makes themselves with the README's exercise 2 command, which is the grader's own run.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

from grader.checks import REGISTRY, answer_key
from grader.grading.results import GradingResults
from grader.grading.rubric import load_rubric
from grader.grading.runner import GradeRequest, grade
from grader.tools.solution_forms import TEXT_FORMS

# --- the code a student writes ----------------------------------------------------------------------------------

FORWARD_MEAN = """
def kl_penalty_forward(log_probs_policy, log_probs_ref, kl_coef=0.1):
    out = []
    for lp, lr in zip(log_probs_policy, log_probs_ref):
        terms = [{term} for a, b in zip(lp, lr)]
        out.append(kl_coef * sum(terms) / len(terms) if terms else 0.0)
    return out
"""
FORWARD_SUM = """
def kl_penalty_forward(log_probs_policy, log_probs_ref, kl_coef=0.1):
    return [kl_coef * sum(a - b for a, b in zip(lp, lr)) for lp, lr in zip(log_probs_policy, log_probs_ref)]
"""
BACKWARD = """
def kl_penalty_backward(log_probs_policy, log_probs_ref, kl_coef=0.1):
    out = []
    for lp, lr in zip(log_probs_policy, log_probs_ref):
        terms = []
        for a, b in zip(lp, lr):
            log_r = {log_r}
            r = math.exp(log_r)
            terms.append({term})
        out.append(kl_coef * sum(terms) / len(terms) if terms else 0.0)
    return out
"""
SHAPING = """
def _distinct_share(text):
    words = text.lower().split()
    return len(set(words)) / len(words){empty}


def shaped_reward(scores, completions, prompts=None):
    return [{reward} for s, c in zip(scores, completions)]
"""
K1 = "a - b"
CLIPPED = "min(b - a, math.log(20))"
EXP = "math.exp(3 * (s - 0.5))"
EMPTY_OK = " if words else 1.0"


def forward(term: str = K1, *, summed: bool = False) -> str:
    return FORWARD_SUM if summed else FORWARD_MEAN.format(term=term)


def backward(term: str, log_r: str = CLIPPED) -> str:
    return BACKWARD.format(term=term, log_r=log_r)


def shaping(reward: str, goal: str | None, empty: str = EMPTY_OK) -> str:
    """``goal`` None: no SHAPING_GOAL line at all (the student deleted it); "": the stub's empty one."""
    declaration = "" if goal is None else f"SHAPING_GOAL = {goal!r}\n"
    return declaration + SHAPING.format(reward=reward, empty=empty)


def submission(*parts: str) -> str:
    return "import math\n" + "\n".join(parts)


@dataclass(frozen=True)
class Attempt:
    source: str
    #: what this attempt's feedback must name, per check: a misconception id, or a phrase of the property
    names: tuple[tuple[str, str], ...] = ()


RIGHT_FORWARD = forward()
RIGHT_BACKWARD = backward("1 - r")
#: Full marks with training too (measured, seed 0: 100 / 100).
RIGHT_SHAPING = shaping("s * _distinct_share(c)", "repetition")
#: Every property point, but the shaped training run fails (measured, seed 0: perplexity 3.41x the plain score's
#: run, KL 4.72x; the feedback says to keep the reward on the scale of the score): issue 25's attempt 6. One more
#: grade with RIGHT_SHAPING after it.
EXP_SHAPING = shaping(f"{EXP} * _distinct_share(c)", "repetition")

#: Issue 25's table, the detours included: the original course's r log r, its sign flipped (the natural next
#: guess), the exponential shaping with the stub's empty SHAPING_GOAL, then declared for repetition.
ISSUE_TABLE = (
    Attempt(
        submission(RIGHT_FORWARD, backward("r * log_r", log_r="b - a"), shaping(EXP, "")),
        (
            ("kl_backward.direction", "value_estimator_r_log_r"),
            ("kl_backward.finite_extreme", "OverflowError"),
            ("shaping.goal", "SHAPING_GOAL is ''"),
        ),
    ),
    Attempt(
        submission(RIGHT_FORWARD, backward("-r * log_r"), shaping(EXP, "repetition")),
        (
            ("kl_backward.direction", "value_estimator_neg_r_log_r"),
            ("shaping.goal", "shaping_rewards_repetition"),
        ),
    ),
    Attempt(submission(RIGHT_FORWARD, RIGHT_BACKWARD, EXP_SHAPING)),
)

#: The exponential shaping without any declaration is graded for repetition, and says so; declared as what it
#: is (contrast), it passes.
UNDECLARED_GOAL = (
    Attempt(
        submission(RIGHT_FORWARD, RIGHT_BACKWARD, shaping(EXP, None)),
        (("shaping.goal", "No SHAPING_GOAL declared"), ("shaping.goal", "shaping_rewards_repetition")),
    ),
    Attempt(submission(RIGHT_FORWARD, RIGHT_BACKWARD, shaping(EXP, "contrast"))),
)

#: After the first hint on the backward penalty, the ratio confusions: r - 1 (the sign), 1 - 1/r (the ratio
#: upside down); on the forward side a sum over tokens, then k3 (TRL's estimator) as the reward; a shaping that
#: divides by the number of words.
RATIO_CONFUSIONS = (
    Attempt(
        submission(
            forward(summed=True), backward("r - 1"), shaping("s * _distinct_share(c)", "repetition", "")
        ),
        (
            ("kl_forward.value", "sum_not_mean"),
            ("kl_backward.direction", "wrong_sign"),
            ("shaping.empty_completions", "shaping_empty_completion"),
        ),
    ),
    Attempt(
        submission(forward("math.exp(b - a) - 1 - (b - a)"), backward("1 - 1 / r"), RIGHT_SHAPING),
        (("kl_forward.direction", "value_estimator_k3"), ("kl_backward.direction", "inverted_ratio")),
    ),
    Attempt(submission(RIGHT_FORWARD, RIGHT_BACKWARD, RIGHT_SHAPING)),
)

#: The log of the ratio as the backward penalty, and k2 = (log r)^2 / 2 as the forward one.
LOG_RATIO = (
    Attempt(
        submission(forward("(b - a) ** 2 / 2"), backward("log_r"), RIGHT_SHAPING),
        (("kl_forward.direction", "biased_k2"), ("kl_backward.direction", "log_ratio_backward")),
    ),
    Attempt(submission(RIGHT_FORWARD, RIGHT_BACKWARD, RIGHT_SHAPING)),
)

PATHS = {
    "issue_table": ISSUE_TABLE,
    "undeclared_goal": UNDECLARED_GOAL,
    "ratio_confusions": RATIO_CONFUSIONS,
    "log_ratio": LOG_RATIO,
}
#: Grader runs from the naive submission to full marks on the property checks, per path. Issue 25 counted 7,
#: training included; the issue's table now takes these 3, and one more for the training (EXP_SHAPING): 4.
RUNS_TO_FULL_MARKS = {name: len(path) for name, path in PATHS.items()}

# --- grading as the handout does --------------------------------------------------------------------------------

#: Few examples per property: every wrong attempt here fails on the first cases, and the path costs one grade each.
EXAMPLES = 8


@pytest.fixture
def handout_grader(monkeypatch):
    """Grade as a student's handout does: hint feedback, no answer key (no hidden checks, no key diagnosis)."""
    monkeypatch.setattr(answer_key, "available", lambda: False)
    rubric = load_rubric()
    registry = {check_id: check for check_id, check in REGISTRY.items() if not rubric[check_id].hidden}

    def run(path: Path) -> GradingResults:
        request = GradeRequest(path, training=False, feedback_level="hint", max_examples=EXAMPLES)
        return GradingResults.from_dict(grade(request, registry=registry).to_gradescope_dict())

    return run


def functions_of(source: str) -> dict[str, str]:
    """Top-level function and SHAPING_GOAL sources by name (what an attempt changed)."""
    found = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef):
            found[node.name] = ast.unparse(node)
        elif isinstance(node, ast.Assign):
            found["shaped_reward:goal"] = ast.unparse(node)
    return found


CHANGED_CHECK_PREFIX = {
    "kl_penalty_forward": "kl_forward.",
    "kl_penalty_backward": "kl_backward.",
    "shaped_reward": "shaping.",
    "_distinct_share": "shaping.",
    "shaped_reward:goal": "shaping.",
}


def changed_groups(before: str, after: str) -> set[str]:
    old, new = functions_of(before), functions_of(after)
    return {CHANGED_CHECK_PREFIX[name] for name in old.keys() | new.keys() if old.get(name) != new.get(name)}


def named(results: GradingResults, check_id: str, what: str) -> bool:
    """Whether ``check_id`` failed and its feedback names ``what`` (a misconception id, or a phrase)."""
    (test,) = [t for t in results.tests if t.check_id == check_id]
    return test.score < test.max_score and (test.misconception == what or what in test.output)


@pytest.mark.parametrize("name", list(PATHS))
def test_each_attempts_feedback_names_what_the_next_attempt_fixes(name, handout_grader, tmp_path):
    path = PATHS[name]
    for k, attempt in enumerate(path):
        file = tmp_path / f"attempt{k + 1}" / "rewards.py"
        file.parent.mkdir()
        file.write_text(attempt.source)
        results = handout_grader(file)
        label = f"{name}, attempt {k + 1} of {len(path)}"
        for test in results.tests:
            form = TEXT_FORMS.search(test.output)
            assert form is None, f"{label}: {test.check_id}'s hint states a per-token term: {form.group(0)!r}"
        if k == len(path) - 1:
            assert results.score == results.max_score, f"{label}: not full marks\n{results.output}"
            break
        assert results.score < results.max_score, label
        for check_id, what in attempt.names:
            output = next(t.output for t in results.tests if t.check_id == check_id)
            assert named(results, check_id, what), f"{label}: {check_id} does not name {what!r}:\n{output}"
        # Nothing the next attempt changes went unexplained: each changed function's feedback named a reason.
        explained = {check_id.split(".")[0] + "." for check_id, _ in attempt.names}
        changed = changed_groups(attempt.source, path[k + 1].source)
        assert changed <= explained, f"{label}: the next attempt changes {changed - explained} unprompted"
    assert len(path) == RUNS_TO_FULL_MARKS[name]


def test_the_last_attempts_earn_full_marks_from_the_instructors_grader_too(tmp_path):
    """The handout's full marks are the official ones: the hidden checks and the key's diagnosis agree."""
    finals = {path[-1].source for path in PATHS.values()}
    for i, source in enumerate(sorted(finals)):
        file = tmp_path / f"final{i}.py"
        file.write_text(source)
        results = grade(GradeRequest(file, training=False, feedback_level="hint", max_examples=EXAMPLES))
        assert results.score == results.max_score, results.output
        assert any(t.check_id.endswith("value_random") for t in results.tests)
