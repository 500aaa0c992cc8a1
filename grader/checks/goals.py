"""Exercise 2's shaping goals: the student declares what ``shaped_reward`` is for, and the grader checks that.

The original exercise leaves the shaping open (amplify differences, a length penalty, a repetition penalty,
rhyme ...). So ``exercise/rewards.py`` declares its goal beside the function::

    SHAPING_GOAL = "repetition"   # or "longer", "shorter", "contrast", "rhyme"

and the defining shaping check (``shaping.goal``) checks that goal's property over generated inputs. Every goal
also requires that the shaping rewards sentiment (a fluent completion earns more with a higher score), so
identity, constants and the gaming shapings fail every goal. The declaration is read from the file's syntax tree
(never by running it): a top-level ``SHAPING_GOAL = "<goal>"``. A file without one is graded for "repetition",
the goal this grader checked before goals existed, and the report says so.

Each goal also names its training metric (:class:`TrainingMetric`): in the shaped training run
(``training.shaped``) that metric of the final validation must move the goal's way against the forward run (the same
run with the plain score) by a calibrated amount: repetition falls, mean words per completion rise or fall, the
sentiment scores' distance from neutral widens, the share of rhyming completions rises.

To add a goal: a :class:`Goal` in :data:`GOALS` with its property (it raises :class:`Falsified` when a case breaks
it), its case strategy in :mod:`grader.checks.strategies` and its training metric: a metric of the validation
history (:mod:`exercise.validation`) and a threshold key in ``[<preset>.thresholds]`` of
``grader/training/calibration/thresholds.toml`` (a field of :class:`grader.training.settings.Thresholds`),
calibrated as ``grader/training/calibration/tiny.md`` describes.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from grader.checks import strategies as S
from grader.checks.harness import Falsified, call, fmt
from grader.contract import SHAPING, Submission, top_level_assignments

DECLARATION = "SHAPING_GOAL"
DEFAULT_GOAL = "repetition"
PROMPT = "I watched this movie last night and"


@dataclass(frozen=True)
class Declaration:
    """The goal a submission declares (``goal``: a :data:`GOALS` id, or None when unusable) and what the report
    says about it (``note``: empty when the declaration is a known goal)."""

    goal: str | None
    note: str = ""


def read_declaration(path: str | Path) -> Declaration:
    """The ``SHAPING_GOAL`` of the submission file, read from its syntax tree (the file is not run)."""
    choices = ", ".join(f'"{g}"' for g in GOALS)
    try:
        tree = ast.parse(Path(path).read_bytes())
    except (OSError, SyntaxError, ValueError):
        return Declaration(DEFAULT_GOAL)  # the import fails anyway, with its own message
    values = top_level_assignments(tree, DECLARATION)
    if not values:
        return Declaration(
            DEFAULT_GOAL,
            f'No {DECLARATION} declared in your file: your shaping is graded for the "{DEFAULT_GOAL}" goal. '
            f'Declare yours beside shaped_reward, e.g. {DECLARATION} = "{DEFAULT_GOAL}" (goals: {choices}).',
        )
    last = values[-1]  # what the module ends up with
    value: Any = last.value if isinstance(last, ast.Constant) else ...
    if isinstance(value, str) and value.strip().lower() in GOALS:
        return Declaration(value.strip().lower())
    shown = "not a plain string" if value is ... else repr(value)[:60]
    return Declaration(
        None,
        f"{DECLARATION} is {shown}: declare one of the goals {choices} as a plain string, e.g. "
        f'{DECLARATION} = "{DEFAULT_GOAL}".',
    )


# ---------------------------------------------------------------------------------------------------------------
# The goals' properties
# ---------------------------------------------------------------------------------------------------------------


def _three(sub: Submission, scores: list[float], texts: list[str]) -> list[float]:
    got = call(sub, SHAPING, scores, texts, [PROMPT] * len(texts))
    if len(got) != len(texts):
        raise Falsified(f"returned {len(got)} rewards for {len(texts)} completions", got=list(got))
    return list(got)


def _margin(x: float) -> float:
    return 1e-9 * max(1.0, abs(x))


#: How much a goal's preference must be worth: at least what a rise of this much in the score is worth to the
#: same reward (the slope measured on the case's text), or this share of the reward itself (a multiplicative
#: bonus, which shrinks with the score). GRPO compares completions within a group whose scores differ by 0.05 to
#: 0.3; a preference worth a millionth of that changes nothing it learns, and "score + 1e-7 x words" passed every
#: goal but contrast (red team, stop 21). A bonus of 0.0025 per word over the cases' 4+ words, or a quarter
#: percent of the reward per word, clears it.
MATERIAL = 0.01


def material(gap: float, slope: float, *rewards: float) -> bool:
    """``gap`` (a goal's preference, in reward) is worth at least a rise of :data:`MATERIAL` in the score at the
    reward's ``slope`` per unit of score, or :data:`MATERIAL` of the larger of ``rewards``."""
    return gap >= MATERIAL * slope or gap >= MATERIAL * max(abs(r) for r in rewards)


def not_material(gap: float, slope: float, what: str) -> str:
    """The sentence that explains a preference too small to train with."""
    worth = gap / slope if slope > 0 else float("inf")
    return (
        f"{what}, but only by {fmt(gap)}: to your reward that is worth a rise of {fmt(worth)} in the score (and "
        f"under {MATERIAL:.0%} of the reward). GRPO compares completions within a group whose scores differ by "
        "0.05 to 0.3, so a preference this small changes nothing the policy learns: make it worth at least a "
        f"score rise of {MATERIAL:g} (or {MATERIAL:.0%} of the reward)"
    )


def rewards_sentiment(sub: Submission, text: str, score: float, lower: float) -> float:
    """Every goal: a fluent completion earns more with a higher score. Returns the reward's slope per unit of
    score on that text (what :func:`material` weighs a goal's preference against)."""
    high, low = _three(sub, [score, lower], [text, text])
    if not high > low + _margin(high):
        raise Falsified(
            f"the same fluent completion earns {fmt(high)} with the score {fmt(score)} and {fmt(low)} with the "
            f"lower score {fmt(lower)}: whatever its goal, a shaped reward must still reward sentiment",
            expected=f"reward(text, {fmt(score)}) > reward(text, {fmt(lower)})",
            got=[high, low],
            misconception="shaping_not_monotone" if high < low else "shaping_ignores_score",
        )
    return (high - low) / (score - lower)


def _length(sub: Submission, case: S.LengthCase, longer: bool) -> None:
    slope = rewards_sentiment(sub, case.short, case.score, case.lower)
    short, long = _three(sub, [case.score, case.score], [case.short, case.long])
    n_short, n_long = len(case.short.split()), len(case.long.split())
    wanted, other = (long, short) if longer else (short, long)
    if wanted > other + _margin(wanted) and not material(wanted - other, slope, wanted, other):
        raise Falsified(
            not_material(
                wanted - other,
                slope,
                f"at the same score the {n_long if longer else n_short}-word completion earns more than the "
                f"{n_short if longer else n_long}-word one ({fmt(wanted, 10)} against {fmt(other, 10)})",
            ),
            expected=f"a difference of at least {fmt(MATERIAL * min(slope, max(abs(wanted), abs(other))))}",
            got=[short, long],
        )
    if not wanted > other + _margin(wanted):
        raise Falsified(
            f"at the same score the {n_long}-word completion earns {fmt(long)} and the {n_short}-word one "
            f"{fmt(short)}: a shaping for {'longer' if longer else 'shorter'} text must pay the "
            f"{'longer' if longer else 'shorter'} one strictly more",
            expected=f"reward({n_long if longer else n_short} words) > reward({n_short if longer else n_long} words)",
            got=[short, long],
        )


def _contrast(sub: Submission, case: S.ContrastCase) -> None:
    rewards_sentiment(sub, case.text, case.scores[1], case.scores[0])
    got = _three(sub, list(case.scores), [case.text] * 3)
    first, second = got[1] - got[0], got[2] - got[1]
    # "more" by a share that grows with the step h (1 + h/4: e^{3s}, s^2, s^1.5 clear it by far), not by a
    # rounding error: a near-identity bend (score + 1e-4 * score**2) amplifies nothing GRPO could learn from
    bend = 1 + (case.scores[1] - case.scores[0]) / 4
    if not (first > _margin(got[1]) and second > first * bend + _margin(got[2])):
        raise Falsified(
            f"for one completion, the scores {fmt(list(case.scores))} (equally spaced, at or above neutral 0.5) "
            f"earn {fmt(got)}: steps of {fmt(first)} then {fmt(second)}. A contrast shaping (e.g. exponential) "
            "keeps the order and amplifies differences among positive scores: each step up must be worth "
            f"noticeably more than the one below it (at least {fmt(bend)} times, 1 + step / 4)",
            expected=f"0 < step 1, step 2 > {fmt(bend)} x step 1",
            got=got,
        )


def _rhyme(sub: Submission, case: S.RhymeCase) -> None:
    slope = rewards_sentiment(sub, case.rhyming, case.score, case.lower)
    rhyming, plain, repeated = _three(sub, [case.score] * 3, [case.rhyming, case.plain, case.repeated])
    if not rhyming > plain + _margin(rhyming):
        raise Falsified(
            f"at the same score the completion whose sentences end in rhyming words ({case.pair[0]!r}, "
            f"{case.pair[1]!r}) earns {fmt(rhyming)} and the same words ending in {case.pair[0]!r}, "
            f"{case.other!r} earn {fmt(plain)}: a rhyme shaping must pay the rhyme strictly more",
            expected="reward(rhyming) > reward(not rhyming)",
            got=[rhyming, plain],
        )
    if not material(rhyming - plain, slope, rhyming, plain):
        raise Falsified(
            not_material(
                rhyming - plain,
                slope,
                f"at the same score the completion whose sentences end in rhyming words ({case.pair[0]!r}, "
                f"{case.pair[1]!r}) earns more than the same words ending in {case.pair[0]!r}, {case.other!r} "
                f"({fmt(rhyming, 10)} against {fmt(plain, 10)})",
            ),
            expected=f"a difference of at least {fmt(MATERIAL * min(slope, max(abs(rhyming), abs(plain))))}",
            got=[rhyming, plain],
        )
    # The same word at both ends shares its last letters with itself, but it is repetition: paid as a rhyme, it
    # is the rhyme a policy finds first (measured on the tiny preset: "... in every way. ... in every way." on
    # half the seeds, far from the reference), so the goal counts different words only.
    if repeated > plain + _margin(plain):
        raise Falsified(
            f"at the same score the completion whose sentences both end in {case.pair[0]!r} earns "
            f"{fmt(repeated)}, more than the same words ending in {case.pair[0]!r}, {case.other!r} "
            f"({fmt(plain)}): the same word twice is repetition, not a rhyme, and a policy finds it first "
            '("... in every way. ... in every way."). Count a pair only when the two words differ',
            expected="reward(same word twice) <= reward(not rhyming)",
            got=[repeated, plain],
        )


@dataclass(frozen=True)
class TrainingMetric:
    """What the goal's training check (``training.shaped``, :func:`grader.checks.training.score_shaped`) requires
    of the shaped run: the final validation's ``key`` (a metric of :mod:`exercise.validation`) moved in
    ``direction`` (+1 up, -1 down) by at least the threshold ``threshold`` (a field of
    :class:`grader.training.settings.Thresholds`) against the forward run, the same run with the plain score."""

    key: str
    #: what the metric is, for people
    name: str
    direction: int
    threshold: str
    #: what a shaping that moved it did to the text ("makes it less repetitive")
    done: str
    #: what to do when it did not move
    hint: str
    #: why the shaped run drifted from the reference (its perplexity ratio or KL rise failed) and what to do, where the
    #: goal has a reason of its own: it replaces the shaped check's general one
    drift: str = ""

    @property
    def way(self) -> str:
        return "higher" if self.direction > 0 else "lower"


@dataclass(frozen=True)
class Goal:
    id: str
    #: what the shaping is for, as the report says it
    aim: str
    #: the defining property, as the check's "Tested:" says it
    tested: str
    cases: Callable[[], st.SearchStrategy[Any]]
    prop: Callable[[Submission, Any], None]
    metric: TrainingMetric


def _repetition_prop(sub: Submission, case: Any) -> None:  # the shaping module's own check handles this goal
    raise NotImplementedError


GOALS: dict[str, Goal] = {
    "repetition": Goal(
        "repetition",
        "text that does not repeat itself",
        "",  # grader.checks.shaping.goal
        S.repetition_cases,
        _repetition_prop,
        TrainingMetric(
            "repetition",
            "repetition (share of a completion's words it already used)",
            -1,
            "shaped_min_repetition_drop",
            "makes it less repetitive",
            "The text is not less repetitive than with the plain score, which is the reward hack a shaping is "
            "for: repeating the words and phrases that score well. Make repeating yourself cost reward.",
        ),
    ),
    "longer": Goal(
        "longer",
        "longer completions",
        "a shaping for longer text: at the same score a fluent completion with more words earns strictly more "
        "than a shorter fluent one, by at least what a rise of 0.01 in the score is worth (or 1% of the reward), "
        "and a higher score earns more for the same text.",
        S.length_cases,
        lambda sub, case: _length(sub, case, longer=True),
        TrainingMetric(
            "completion_words",
            "mean words per completion",
            +1,
            "shaped_min_words_rise",
            "makes it longer",
            "Your completions are not longer than with the plain score. GRPO only compares completions within a "
            "group: each extra word must change which of them your reward prefers, at scores that differ as "
            "much as theirs do (the policy lengthens its text by delaying the end-of-text token).",
        ),
    ),
    "shorter": Goal(
        "shorter",
        "shorter completions",
        "a shaping for shorter text: at the same score a fluent completion with fewer words earns strictly more "
        "than a longer fluent one, by at least what a rise of 0.01 in the score is worth (or 1% of the reward), "
        "and a higher score earns more for the same text.",
        S.length_cases,
        lambda sub, case: _length(sub, case, longer=False),
        TrainingMetric(
            "completion_words",
            "mean words per completion",
            -1,
            "shaped_min_words_drop",
            "makes it shorter",
            "Your completions are not shorter than with the plain score. GRPO only compares completions within "
            "a group: each word fewer must change which of them your reward prefers, at scores that differ as "
            "much as theirs do (the policy shortens its text by ending it earlier).",
        ),
    ),
    "contrast": Goal(
        "contrast",
        "amplified differences among positive completions (e.g. exponential)",
        "a contrast shaping: for a fixed completion the reward rises with the score, and among positive scores "
        "(at or above 0.5) each equal step up in score is worth noticeably more than the one below it (at least "
        "1 + step/4 times: an exponential or a power does, a nearly linear bend does not).",
        S.contrast_cases,
        _contrast,
        TrainingMetric(
            "sentiment_contrast",
            "mean distance of the sentiment scores from neutral 0.5",
            +1,
            "shaped_min_contrast_rise",
            "moves it further from neutral",
            "Your completions are no further from neutral than with the plain score. GRPO only compares "
            "completions within a group, so a contrast shaping works through how much more it pays a very "
            "positive completion than a mildly positive one: a transformation that is nearly linear over the "
            "scores the policy writes (an exponential with a small factor, a small power) changes almost nothing.",
            # GRPO's reward is the shaped score minus the penalty (exercise/reward_pipeline.py), normalised per
            # group: scaling the first by k weighs the same as dividing kl_coef by k.
            "an amplifying shaping whose values go beyond the score's 0 to 1 multiplies the reward's scale "
            "(exp(3 * (score - 0.5)), for one, runs from 0.22 to 4.5), and your KL penalty is subtracted from that "
            "reward at the same kl_coef. Beside rewards several times larger the penalty weighs several times "
            "less, as if the coefficient were that much smaller, so the policy drifts from the reference. Rescale "
            "the shaping to keep it within [0, 1], e.g. divide it by its largest value "
            "(exp(3 * (score - 0.5)) / exp(1.5)): the order and the amplified differences stay, and the penalty "
            "keeps the weight it was set for.",
        ),
    ),
    "rhyme": Goal(
        "rhyme",
        "completions that rhyme",
        "a rhyme shaping: at the same score, a completion whose sentences end in rhyming words (different words "
        "with the same last three letters) earns strictly more than the same text ending in words that do not "
        "rhyme, by at least what a rise of 0.01 in the score is worth (or 1% of the reward), and the same word "
        "twice (repetition) earns no more than that (and a higher score earns more for the same text).",
        S.rhyme_cases,
        _rhyme,
        TrainingMetric(
            "rhyme_rate",
            "share of completions in which two consecutive sentences end in rhyming words (different words with "
            "the same last three letters)",
            +1,
            "shaped_min_rhyme_rise",
            "makes it rhyme more often",
            "Your completions do not rhyme more often than with the plain score. The bonus must be large enough "
            "against the score's differences within a group to change which completion GRPO prefers, and it "
            "must pay what the policy can write: sentence ends (. ! ?) whose last words share their ending.",
            # measured (tiny.md, "Shaping goals"): counting different words only, a whole score's bonus per pair
            # stayed near the reference on 10/10 seeds; counting the same word twice too, it drifted on half of them
            # (KL 5-11x the plain run's) by ending every sentence with the same phrase. A bonus that still drifts
            # pays rhymes the reference would not write:
            "a rhyme bonus as large as the score itself, or larger, pays more for a rhyme than for anything the "
            "penalty guards, so the policy bends its text towards whatever rhymes it can find, away from what the "
            "reference model writes. Keep the bonus a fraction of the score (e.g. score * (1 + 0.3 * "
            "rhyming pairs)), or raise kl_coef, so that a rhyme wins only among completions that read naturally.",
        ),
    ),
}
