"""Reward shaping's inputs: batches of (score, completion, prompt), monotonicity cases and repetition cases (a
degenerate completion beside a fluent one of the same length and score)."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st

from grader.checks.strategies.fluent_texts import (
    ENDINGS,
    FILM_NOUNS,
    MAX_TEXT_WORDS,
    MIN_REPEATS,
    PRAISE_WORDS,
    _with_case,
    _with_ending,
    fluent_text,
    fluent_texts,
)

_REVIEW_WORDS = (
    "the",
    "film",
    "was",
    "great",
    "boring",
    "plot",
    "acting",
    "not",
    "a",
    "movie",
    "loved",
    "it",
    "and",
    "!",
    "...",
    "terrible",
    "fine",
)

completions = st.one_of(
    st.text(max_size=40),
    fluent_texts(),
    st.lists(st.sampled_from(_REVIEW_WORDS), max_size=12).map(" ".join),
)

scores = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@dataclass(frozen=True)
class ShapingBatch:
    scores: list[float]
    completions: list[str]
    prompts: list[str]


@st.composite
def shaping_batches(
    draw: st.DrawFn, *, min_size: int = 0, max_size: int = 8, completion: st.SearchStrategy[str] | None = None
) -> ShapingBatch:
    items = draw(
        st.lists(
            st.tuples(scores, completion if completion is not None else completions, st.text(max_size=20)),
            min_size=min_size,
            max_size=max_size,
        )
    )
    return ShapingBatch([s for s, _, _ in items], [c for _, c, _ in items], [p for _, _, p in items])


def empty_ish_completions() -> st.SearchStrategy[str]:
    """Completions with no words at all."""
    return st.sampled_from(("", " ", "\n", "\t \n", "...", "!", "\u200b"))


@dataclass(frozen=True)
class MonotoneCase:
    completion: str
    scores: list[float]  # ascending, always including 0 and 1


#: The score grid every monotonicity case contains (hypothesis adds a few scores of its own).
SCORE_GRID = tuple(i / 20 for i in range(21))


@st.composite
def monotone_cases(draw: st.DrawFn) -> MonotoneCase:
    extra = draw(st.lists(scores, max_size=5))
    return MonotoneCase(draw(completions), sorted(set(SCORE_GRID) | set(extra)))


#: What a hacked policy repeats, by the number of distinct words in the repeated unit: one word; a short phrase;
#: a cycle of 5-8 different words (a list of praise that a "enough distinct words" rule would pay in full); a whole
#: sentence (the loop of a degenerate language model).
UNIT_KINDS = ("word", "phrase", "cycle", "sentence")
#: Between copies of the unit: what a model emits while it loops.
SEPARATORS = (" ", ", ", ". ", "! ", "... ")


@dataclass(frozen=True)
class RepetitionCase:
    """A degenerate completion (``unit`` written ``times`` >= MIN_REPEATS times, the copies joined by
    ``separator``, every copy written the same way, so that splitting on spaces finds the repetition; only the
    last word's ``ending`` may differ) and a fluent one with the same number of words, the same capitalisation and
    the same ending, at the same ``score``; the fluent one again at a ``lower`` score."""

    unit: str
    times: int
    separator: str
    capitalised: bool
    ending: str
    fluent: str
    score: float
    lower: float

    @property
    def degenerate(self) -> str:
        unit = _with_case(self.unit, self.capitalised)
        return _with_ending(" ".join([unit + self.separator.rstrip()] * self.times), self.ending)


#: Single words a hacked policy repeats besides the fluent texts' own adjectives and nouns.
_FILLER_WORDS = ("the", "movie", "film", "love", "best", "so", "and", "very")


@st.composite
def repeated_units(draw: st.DrawFn) -> str:
    """One unit a hacked policy repeats, from the fluent texts' own vocabulary or a slice of a fluent text."""
    kind = draw(st.sampled_from(UNIT_KINDS))
    vocabulary = PRAISE_WORDS + FILM_NOUNS + _FILLER_WORDS
    if kind == "word":
        return draw(st.sampled_from(vocabulary))
    if kind == "cycle":  # 5-8 different words, praise alone or mixed with nouns
        pool = draw(st.sampled_from((PRAISE_WORDS, PRAISE_WORDS + FILM_NOUNS)))
        words = draw(st.lists(st.sampled_from(pool), min_size=5, max_size=8, unique=True))
        return draw(st.sampled_from((" ", ", "))).join(words)
    length = draw(st.integers(2, 4) if kind == "phrase" else st.integers(5, 12))
    if kind == "phrase" and draw(st.booleans()):
        return " ".join(
            draw(st.lists(st.sampled_from(vocabulary), min_size=length, max_size=length, unique=True))
        )
    source = fluent_text(MAX_TEXT_WORDS, draw(st.integers(0, 2**32 - 1)), capitalised=False, ending="")
    words = source.split()
    start = draw(st.integers(0, len(words) - length))
    return " ".join(words[start : start + length]).strip(".,!?;:")


@st.composite
def repetition_cases(draw: st.DrawFn) -> RepetitionCase:
    unit = draw(repeated_units())
    times = draw(st.integers(MIN_REPEATS, max(MIN_REPEATS, MAX_TEXT_WORDS // len(unit.split()))))
    separator = draw(st.sampled_from(SEPARATORS))
    capitalised = draw(st.booleans())
    ending = draw(st.sampled_from(ENDINGS))
    case = RepetitionCase(unit, times, separator, capitalised, ending, "", 0.0, 0.0)
    words = len(case.degenerate.split())
    fluent = fluent_text(words, draw(st.integers(0, 2**32 - 1)), capitalised=capitalised, ending=ending)
    # Scores of a hacked policy: high, but below 1 (where a shaping such as log(score) * factor is 0 for any text).
    score = draw(st.floats(0.5, 0.95))
    return RepetitionCase(
        unit, times, separator, capitalised, ending, fluent, score, score * draw(st.floats(0.1, 0.8))
    )
