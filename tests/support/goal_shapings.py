"""Correct shapings for each declared goal but "repetition" (the reference's own goal), the two that must fail
every goal (identity, a constant) and one declared for a goal it gets wrong (the rhyme bonus paid for the same
word twice): for the goals' property tests (tests/unit/test_goals.py), the training check's
real-run test and its calibration (grader/training/calibration/tiny.md, "Shaping goals").

Each is written as the reference's shaping is: the score times a positive factor about the text (or, for the
contrast goal, the original exercise's own exponential), so the reward stays on the score's scale and the KL
penalty subtracted from it keeps its weight. :func:`submission_file_text` makes a whole submission of one: the
reference solution (its penalties) with the goal declared and the shaping appended, which replaces the
reference's ``shaped_reward``.
"""

from __future__ import annotations

import inspect
import math
from pathlib import Path

REFERENCE = Path(__file__).resolve().parents[2] / "reference" / "rewards.py"


def contrast_shaping(scores, completions, prompts=None):
    # an exponential rescaled to map [0, 1] onto [0, 1]: convex (each step up is worth more than the one below)
    # and on the score's scale, so the KL penalty keeps its weight
    return [(math.exp(3.0 * s) - 1.0) / (math.exp(3.0) - 1.0) for s in scores]


def exponential_shaping(scores, completions, prompts=None):
    # the original exercise's first idea as it writes it: rewards up to 4.5x the score's scale
    return [math.exp(3.0 * (s - 0.5)) for s in scores]


def longer_shaping(scores, completions, prompts=None):
    return [s * (1.0 + 0.05 * len(c.split())) for s, c in zip(scores, completions, strict=True)]


def shorter_shaping(scores, completions, prompts=None):
    return [s / (1.0 + 0.05 * len(c.split())) for s, c in zip(scores, completions, strict=True)]


def rhyme_shaping(scores, completions, prompts=None):
    # one more share of the score for each pair of consecutive sentences ending in different words that share
    # their last three letters (the same word twice is repetition)
    out = []
    for s, c in zip(scores, completions, strict=True):
        ends = [w.strip(".,!?").lower() for w in (x.split()[-1] for x in c.split(".") if x.split())]
        out.append(s * (1.0 + sum(a != b and a[-3:] == b[-3:] for a, b in zip(ends, ends[1:], strict=False))))
    return out


def rhyme_mild_shaping(scores, completions, prompts=None):
    # rhyme_shaping with a third of its bonus
    out = []
    for s, c in zip(scores, completions, strict=True):
        ends = [w.strip(".,!?").lower() for w in (x.split()[-1] for x in c.split(".") if x.split())]
        pairs = sum(a != b and a[-3:] == b[-3:] for a, b in zip(ends, ends[1:], strict=False))
        out.append(s * (1.0 + 0.3 * pairs))
    return out


def rhyme_repeats_shaping(scores, completions, prompts=None):
    # the rhyme bonus for any two ends that share three letters, the same word twice included: repetition paid
    # as a rhyme (wrong for the rhyme goal: its property check says so)
    out = []
    for s, c in zip(scores, completions, strict=True):
        ends = [w.strip(".,!?").lower()[-3:] for w in (x.split()[-1] for x in c.split(".") if x.split())]
        out.append(s * (1.0 + sum(a == b for a, b in zip(ends, ends[1:], strict=False))))
    return out


def shorter_mild_shaping(scores, completions, prompts=None):
    return [s / (1.0 + 0.02 * len(c.split())) for s, c in zip(scores, completions, strict=True)]


def identity_shaping(scores, completions, prompts=None):
    return list(scores)


def constant_shaping(scores, completions, prompts=None):
    return [1.0 for _ in scores]


#: goal -> a correct shaping for it
CORRECT = {
    "contrast": contrast_shaping,
    "longer": longer_shaping,
    "shorter": shorter_shaping,
    "rhyme": rhyme_shaping,
}
#: further correct shapings, by name: (their goal, the shaping)
ALSO_CORRECT = {
    "exponential": ("contrast", exponential_shaping),
    "rhyme_mild": ("rhyme", rhyme_mild_shaping),
    "shorter_mild": ("shorter", shorter_mild_shaping),
}
#: the shapings that must fail every goal (they reproduce the forward run, or learn nothing)
WRONG = {"identity": identity_shaping, "constant": constant_shaping}
#: shapings declared for a goal whose property check they fail: (their goal, the shaping)
WRONG_FOR_GOAL = {"rhyme_repeats": ("rhyme", rhyme_repeats_shaping)}


def submission_file_text(name: str | None) -> str:
    """A whole submission: the reference solution, with ``name``'s shaping (a key of :data:`CORRECT`,
    :data:`ALSO_CORRECT`, :data:`WRONG_FOR_GOAL` or :data:`WRONG`; None: the reference unchanged) as its
    ``shaped_reward``, declared for its goal (those of :data:`WRONG` keep the reference's declaration: they fail
    every goal)."""
    source = REFERENCE.read_text(encoding="utf-8")
    if name is None:
        return source
    shapings = {**{g: (g, f) for g, f in CORRECT.items()}, **ALSO_CORRECT, **WRONG_FOR_GOAL}
    goal, fn = shapings[name] if name in shapings else (None, WRONG[name])
    if goal is not None:
        source = source.replace('SHAPING_GOAL = "repetition"', f'SHAPING_GOAL = "{goal}"')
        assert f'SHAPING_GOAL = "{goal}"' in source, "the reference's declaration line changed"
    body = inspect.getsource(fn).replace(f"def {fn.__name__}(", "def shaped_reward(", 1)
    return f"{source}\n\n# --- {name} shaping (tests/support/goal_shapings.py)\n{body}"
