"""Fluent movie reviews composed from sentence patterns (no word pair twice), the reward-shaping checks' good
completions and the vocabulary a hacked policy repeats."""

from __future__ import annotations

import random
import re

from hypothesis import strategies as st

#: Adjectives the fluent texts praise with, and the words a hacked policy repeats: a shaping cannot tell fluent text
#: from a repetition by its vocabulary, since both draw from the same words.
PRAISE_WORDS = (
    "great",
    "amazing",
    "wonderful",
    "brilliant",
    "excellent",
    "perfect",
    "superb",
    "lovely",
    "fantastic",
    "stunning",
    "beautiful",
    "charming",
    "delightful",
    "gripping",
    "moving",
    "clever",
    "funny",
    "warm",
    "memorable",
    "touching",
    "thoughtful",
    "vivid",
    "tender",
    "bold",
    "sharp",
    "honest",
    "gentle",
    "haunting",
    "fresh",
    "rich",
)
FILM_NOUNS = (
    "acting",
    "story",
    "script",
    "music",
    "score",
    "cast",
    "ending",
    "photography",
    "dialogue",
    "soundtrack",
    "direction",
    "pacing",
    "plot",
    "villain",
    "hero",
    "humour",
    "editing",
    "casting",
    "scenery",
    "finale",
    "heroine",
    "performance",
    "premise",
    "setting",
    "twist",
    "opening",
    "romance",
    "lead",
)
_STATES = ("interested", "hooked", "curious", "smiling", "guessing", "engaged", "moved", "happy")
_PAST_VERBS = ("loved", "enjoyed", "admired", "adored", "liked", "appreciated", "relished", "cherished")
_VERBS = ("love", "enjoy", "remember", "treasure", "savour", "admire")

#: Sentence patterns of the fluent texts: {A} an adjective, {N} a noun, {S} a state, {V} a past and {P} a present
#: verb. A text uses each pattern at most once and each drawn word at most once.
_SENTENCES = (
    "the {N} was {A} and the {N} felt {A}.",
    "I {V} the {N}, but the {A} {N} stayed with me.",
    "it is a film with {A} {N}.",
    "what {A} {N}!",
    "{A} {N}, {A} {N} and {A} {N}.",
    "the {N} kept me {S} until the very end.",
    "you will {P} every minute of it.",
    "there is {A} {N} in the middle, and it works.",
    "even the {N} is {A}.",
    "my friends {V} it as much as I did.",
    "that {A} {N} alone is worth the ticket.",
    "this is the most {A} {N} I have seen in years.",
    "{A}, {A} and {A}: this {N} has it all.",
    "nothing about its {N} feels forced.",
    "clearly the director {V} this {N}.",
    "so {A}!",
    "we laughed at the {N} and {V} the {N}.",
    "her {N} is {A}, his {N} even more {A}.",
)

_SLOTS = {"A": PRAISE_WORDS, "N": FILM_NOUNS, "S": _STATES, "V": _PAST_VERBS, "P": _VERBS}
_SLOT = re.compile(r"\{([ANSVP])\}")
_TEXT_WORD = re.compile(r"[a-z']+")

#: Word counts of the repetition cases (degenerate and fluent alike): GPT-2 completions of 24-64 tokens.
MIN_REPEATS = 3
MAX_TEXT_WORDS = 40

#: Endings of a completion's last word: generation stops anywhere, so a completion may end in any of these.
ENDINGS = ("", ".", "!", ",", "...", "?")


def text_words(text: str) -> list[str]:
    """The lowercase words of ``text`` (what the fluent texts keep free of repeated word pairs)."""
    return _TEXT_WORD.findall(text.lower())


def _with_case(text: str, capitalised: bool) -> str:
    return (text[:1].upper() if capitalised else text[:1].lower()) + text[1:]


def _with_ending(text: str, ending: str) -> str:
    return text.rstrip(".,!?;:") + ending


def _sentence(pattern: str, rng: random.Random, pools: dict[str, list[str]]) -> str | None:
    words: list[str] = []
    for key in _SLOT.findall(pattern):
        if not pools[key]:
            return None
        words.append(pools[key].pop(rng.randrange(len(pools[key]))))
    it = iter(words)
    return _with_case(_SLOT.sub(lambda _: next(it), pattern), True)


def _fluent_attempt(words: int, rng: random.Random) -> str | None:
    """Whole sentences that add up to ``words`` exactly, or (half the time, and where they cannot) sentences cut
    after ``words`` words: generation stops mid-sentence as often as not."""
    pools = {key: list(values) for key, values in _SLOTS.items()}
    patterns = list(_SENTENCES)
    rng.shuffle(patterns)
    whole = rng.random() >= 0.5
    tokens: list[str] = []
    for pattern in patterns:
        if len(tokens) >= words:
            break
        sentence = _sentence(pattern, rng, pools)
        if sentence is None or (whole and len(tokens) + len(sentence.split()) > words):
            continue
        tokens += sentence.split()
    if len(tokens) < words:
        return None
    text = " ".join(tokens[:words])
    lowered = text_words(text)
    pairs = list(zip(lowered, lowered[1:], strict=False))
    if len(set(pairs)) < len(pairs) or len(set(lowered)) < 0.6 * len(lowered):
        return None
    return text


def fluent_text(words: int, seed: int, *, capitalised: bool = True, ending: str = ".") -> str:
    """A fluent review of exactly ``words`` whitespace-separated words (at least 1, at most MAX_TEXT_WORDS),
    composed from ``_SENTENCES`` by ``seed``: no word pair occurs twice in it (so no reasonable repetition
    penalty can punish it), at least 60% of its words are distinct, and its last word ends with ``ending``."""
    if not 1 <= words <= MAX_TEXT_WORDS:
        raise ValueError(f"a fluent text has 1 to {MAX_TEXT_WORDS} words, not {words}")
    rng = random.Random(seed)
    for _ in range(10_000):
        text = _fluent_attempt(words, rng)
        if text is not None:
            return _with_ending(_with_case(text, capitalised), ending)
    raise AssertionError(f"no fluent text of {words} words for seed {seed}")  # pragma: no cover


@st.composite
def fluent_texts(draw: st.DrawFn, min_words: int = 1, max_words: int = 24) -> str:
    return fluent_text(
        draw(st.integers(min_words, max_words)),
        draw(st.integers(0, 2**32 - 1)),
        capitalised=draw(st.booleans()),
        ending=draw(st.sampled_from(ENDINGS)),
    )
