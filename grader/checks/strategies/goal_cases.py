"""Exercise 2's other shaping goals (:mod:`grader.checks.goals`): length, contrast and rhyme cases."""

from __future__ import annotations

import re
from dataclasses import dataclass

from hypothesis import strategies as st

from grader.checks.strategies.fluent_texts import ENDINGS, MAX_TEXT_WORDS, fluent_text, fluent_texts


@dataclass(frozen=True)
class LengthCase:
    """Two fluent completions at the same ``score`` with the same ending, ``long`` at least 4 words longer."""

    short: str
    long: str
    score: float
    lower: float


@st.composite
def length_cases(draw: st.DrawFn) -> LengthCase:
    n = draw(st.integers(3, 20))
    m = draw(st.integers(n + 4, min(MAX_TEXT_WORDS, n + 20)))
    ending = draw(st.sampled_from(ENDINGS))
    capitalised = draw(st.booleans())
    seed = draw(st.integers(0, 2**32 - 1))
    score = draw(st.floats(0.05, 1.0))
    return LengthCase(
        fluent_text(n, seed, capitalised=capitalised, ending=ending),
        fluent_text(m, seed + 1, capitalised=capitalised, ending=ending),
        score,
        draw(st.floats(0.0, score - 0.05)),
    )


@dataclass(frozen=True)
class ContrastCase:
    """One fluent completion at three equally spaced scores at or above neutral (0.5)."""

    text: str
    scores: tuple[float, float, float]


@st.composite
def contrast_cases(draw: st.DrawFn) -> ContrastCase:
    step = draw(st.floats(0.02, 0.25))
    start = draw(st.floats(0.5, 1.0 - 2 * step))
    text = draw(fluent_texts(3, 24))
    return ContrastCase(text, (start, start + step, start + 2 * step))


#: Word pairs that rhyme by their last three letters, and words that rhyme with none of them (their last two
#: letters differ from every rhyming word's).
RHYMES = (
    ("night", "light"),
    ("bright", "delight"),
    ("heart", "start"),
    ("mind", "kind"),
    ("song", "long"),
    ("grace", "place"),
    ("dream", "gleam"),
    ("wonder", "thunder"),
)
NON_RHYMES = ("table", "music", "window", "garden", "pencil", "orbit", "salad", "velvet")


@dataclass(frozen=True)
class RhymeCase:
    """Two sentences ending in ``pair`` (``rhyming``), in ``pair[0]`` and ``other`` (``plain``) or in ``pair[0]``
    twice (``repeated``: repetition, not a rhyme): the same words otherwise, the same word count, at the same
    ``score``."""

    first: str
    second: str
    pair: tuple[str, str]
    other: str
    score: float
    lower: float

    @property
    def rhyming(self) -> str:
        return f"{self.first} {self.pair[0]}. {self.second} {self.pair[1]}."

    @property
    def plain(self) -> str:
        return f"{self.first} {self.pair[0]}. {self.second} {self.other}."

    @property
    def repeated(self) -> str:
        return f"{self.first} {self.pair[0]}. {self.second} {self.pair[0]}."


def _one_sentence(text: str) -> str:
    """``text`` as one sentence: its inner sentence ends become commas (so only the rhyme words end sentences)."""
    words = re.sub(r"[.!?]+(\s)", r",\1", text).split()
    return " ".join([words[0], *(w if w == "I" else w.lower() for w in words[1:])])


@st.composite
def rhyme_cases(draw: st.DrawFn) -> RhymeCase:
    seed = draw(st.integers(0, 2**32 - 1))
    score = draw(st.floats(0.05, 1.0))
    return RhymeCase(
        _one_sentence(fluent_text(draw(st.integers(2, 12)), seed, ending="")),
        _one_sentence(fluent_text(draw(st.integers(2, 12)), seed + 1, ending="")),
        draw(st.sampled_from(RHYMES)),
        draw(st.sampled_from(NON_RHYMES)),
        score,
        draw(st.floats(0.0, score - 0.05)),
    )
