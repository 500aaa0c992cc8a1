"""A generated corpus of short movie reviews for pre-training the tiny offline model.

Why generate text instead of downloading it: the project must build its CPU model with no network, reproducibly,
in a few minutes. A small hand-written grammar gives English that a 1M-parameter model can learn in that time,
and it lets us control the one property the exercise depends on: the *sentiment balance* of what the
pre-trained model writes. Reviews mix positive, negative and neutral sentences in roughly equal parts, so the
untuned model's continuations of the validation prompts sit mid-scale on VADER (about 0.5 on the 0..1 scale)
and reinforcement learning has room to move them up (or down, with ``--negate_reward``).

Every sentence starts with one of the review openings in ``exercise.prompts`` or with one built from the same
parts, and continues the way that opening asks for: an adjective after "was"/"felt"/"as", a verb phrase after a
subject such as "The soundtrack", a verb after "I", a noun phrase after "What stood out to me was". So
prompting the tiny model with any prompt yields a natural continuation.

The positive vocabulary is deliberately rich and VADER-visible ("great", "wonderful", "amazing", "loved" ...),
with some emphatic repetition ("really, really great"): that is the material a reward-hacking run collapses
onto, which is what the exercise wants students to see.
"""

from __future__ import annotations

import random

from exercise.prompts import CORPUS_VALIDATION_PROMPTS, TRAIN_PROMPTS, VALIDATION_PROMPTS

POS, NEG, NEU = "positive", "negative", "neutral"
POLARITIES = (POS, NEG, NEU)

# ---------------------------------------------------------------------------------------------------------------
# Vocabulary. VADER scores were checked word by word: NEU words are absent from its lexicon (score 0).
# ---------------------------------------------------------------------------------------------------------------
# (Kept compact on purpose: one line per word would hide the vocabulary's shape.)
# fmt: off
ADJECTIVES: dict[str, tuple[str, ...]] = {
    POS: (
        "great", "wonderful", "amazing", "brilliant", "excellent", "beautiful", "lovely", "delightful",
        "fantastic", "superb", "perfect", "charming", "fun", "good", "funny", "clever", "powerful",
        "pleasant", "sweet", "gorgeous", "impressive", "entertaining", "enjoyable", "exciting", "awesome",
        "remarkable", "magnificent",
    ),
    NEG: (
        "terrible", "awful", "boring", "dull", "bad", "poor", "horrible", "weak", "messy", "painful",
        "stupid", "lazy", "confusing", "ugly", "disappointing", "annoying", "dreadful", "pathetic", "forced",
    ),
    NEU: (
        "long", "slow", "quiet", "simple", "predictable", "ordinary", "familiar", "typical", "dark", "loud",
        "short", "mediocre", "bland", "uneven", "heavy", "colorful", "plain", "dated", "realistic", "complex",
        "unusual", "quirky", "average", "different", "modest", "old-fashioned",
    ),
}
STRONG_INTENSIFIERS = ("really", "very", "truly", "so", "incredibly", "absolutely", "quite", "pretty", "extremely")
MILD_INTENSIFIERS = ("a bit", "rather", "somewhat", "mostly", "fairly", "a little")
# "not" + a positive word reads negative to VADER and to people; "not bad" reads (mildly) positive.
NEGATED = {POS: ("not bad at all", "not bad"), NEG: ("not very good", "not good at all", "not funny", "not great")}

# (name, is_plural): aspects of a film a review talks about.
ASPECTS: tuple[tuple[str, bool], ...] = (
    ("acting", False), ("plot", False), ("story", False), ("music", False), ("soundtrack", False),
    ("ending", False), ("characters", True), ("dialogue", False), ("script", False), ("cinematography", False),
    ("pacing", False), ("cast", False), ("direction", False), ("special effects", True), ("humor", False),
    ("camera work", False), ("romance", False), ("villain", False), ("lead actor", False), ("final scene", False),
    ("opening scene", False), ("animation", False), ("costumes", True), ("writing", False), ("performances", True),
    ("visual effects", True), ("editing", False), ("score", False),
)

# Predicates after a subject ("The soundtrack ..."), by polarity; "{adj}" is filled with an adjective phrase.
VERB_PHRASES: dict[str, tuple[str, ...]] = {
    POS: (
        "made me smile", "made me laugh", "kept me interested", "won me over", "was a real treat",
        "did a great job", "did a wonderful job", "is the best part of the film", "works really well",
    ),
    NEG: (
        "bored me", "made no sense", "was a waste of time", "did a poor job", "is the worst part of the film",
        "was a mess", "was a big disappointment", "ruined the whole thing", "was just bad",
    ),
    NEU: (
        "changes halfway through", "reminded me of an older film", "is hard to describe", "takes its time",
        "was different from what I expected", "is in black and white", "takes up most of the running time",
        "goes in a direction I did not expect", "runs for about two hours",
    ),
}
COPULAS_SINGULAR = ("was", "felt", "is", "seemed", "looked")
COPULAS_PLURAL = ("were", "felt", "are", "seemed", "looked")

# What the viewer did ("I ..."), by polarity.
VIEWER_VERBS: dict[str, tuple[str, ...]] = {
    POS: ("loved", "enjoyed", "liked", "adored", "really loved", "really enjoyed"),
    NEG: ("hated", "disliked", "did not enjoy", "did not like", "regretted watching"),
}
VIEWER_PHRASES: dict[str, tuple[str, ...]] = {
    POS: ("had a great time", "had a wonderful time", "smiled the whole time", "laughed a lot", "was happy"),
    NEG: ("was bored", "was disappointed", "felt sad and tired", "hated every minute", "was annoyed"),
    NEU: (
        "watched it on a Sunday", "saw it in the theater", "watched it twice", "read the book first",
        "watched it with my brother", "saw it on a long flight", "went in knowing nothing about it",
        "watched the whole thing in one sitting", "noticed the {aspect}",
    ),
}

# Endings of a sentence, by polarity (the empty string is the most common ending).
TAILS: dict[str, tuple[str, ...]] = {
    POS: ("", "", "", " from start to finish", ", and I would watch it again", ", and I loved every minute of it",
          " in every way", ", and the {aspect} was great too"),
    NEG: ("", "", "", " from start to finish", ", and I almost fell asleep", ", which is a shame",
          " most of the time", ", and the {aspect} was bad too"),
    NEU: ("", "", "", " at times", " for most of the film", " in the second half", ", like most films of its kind",
          " for a film like this"),
}
# fmt: on

# Openings built from the same parts as the prompts, so sentences in the middle of a review look like prompts.
# (They are sentiment-free to VADER: "Sadly," or "Thankfully," would give the sentence's polarity away.)
DISCOURSE_MARKERS = (
    "",
    "",
    "",
    "Honestly, ",
    "Overall, ",
    "In the end, ",
    "Still, ",
    "Also, ",
    "Then again, ",
    "All in all, ",
    "Looking back, ",
    "On the whole, ",
)
# The literal prompts of the corpus: the validation prompts added after the shipped model was built are not
# among them (exercise/prompts.py), so the same seed still generates the corpus that model was trained on.
ALL_PROMPTS: tuple[str, ...] = TRAIN_PROMPTS + VALIDATION_PROMPTS[:CORPUS_VALIDATION_PROMPTS]

# Prompts that ask for a noun phrase start like this (and end with "is"/"was").
_NOUN_PHRASE_STARTS = (
    "What ",
    "My favorite ",
    "The thing ",
    "The scene ",
    "The part ",
    "The first thing ",
    "The character I ",
)
_ADJECTIVE_LAST_WORDS = {"was", "were", "is", "are", "felt", "seemed", "looked", "sounded", "as"}
_VIEWER_LAST_WORDS = {"I", "we", "family"}
_PLURAL_NOUNS = {name.split()[-1] for name, plural in ASPECTS if plural}


def opening_kind(opening: str) -> str:
    """What grammatical piece naturally follows ``opening``: "noun", "adjective", "verb" or "predicate".

    The rule reads the opening's first and last words; every prompt in ``exercise.prompts`` is covered by it
    (a test checks), so new prompts should follow the same four shapes.
    """
    words = opening.split()
    last = words[-1] if words else ""
    if opening.startswith(_NOUN_PHRASE_STARTS) and last in {"is", "was"}:
        return "noun"
    if last in _ADJECTIVE_LAST_WORDS:
        return "adjective"
    if last in _VIEWER_LAST_WORDS:
        return "verb"
    return "predicate"


class ReviewGrammar:
    """Samples review sentences from the grammar above with its own seeded ``random.Random``."""

    def __init__(self, seed: int = 0, prompt_fraction: float = 0.6) -> None:
        self.rng = random.Random(seed)
        self.prompt_fraction = prompt_fraction  # share of sentences that start with a literal prompt

    # -- small pieces ----------------------------------------------------------------------------------------
    def _aspect(self) -> tuple[str, bool]:
        return self.rng.choice(ASPECTS)

    def _fill(self, text: str) -> str:
        """Replaces "{aspect}" with a random aspect, keeping "was"/"were" in agreement with it."""
        if "{aspect}" not in text:
            return text
        name, plural = self._aspect()
        if plural:
            text = text.replace("{aspect} was", "{aspect} were")
        return text.replace("{aspect}", name)

    def adjective_phrase(self, polarity: str) -> str:
        """An adjective phrase: "really great", "boring and messy", "a bit slow", "not very good" ..."""
        rng = self.rng
        roll = rng.random()
        if polarity != NEU and roll < 0.12:
            return rng.choice(NEGATED[polarity])
        if roll < 0.30:
            first, second = rng.sample(ADJECTIVES[polarity], 2)
            return f"{first} and {second}"
        word = rng.choice(ADJECTIVES[polarity])
        if polarity == NEU:
            return f"{rng.choice(MILD_INTENSIFIERS)} {word}" if roll < 0.55 else word
        if roll < 0.36:  # emphatic repetition, the seed of "great great great"
            intensifier = rng.choice(("really", "very", "so"))
            return f"{intensifier}, {intensifier} {word}"
        return f"{rng.choice(STRONG_INTENSIFIERS)} {word}" if roll < 0.75 else word

    def predicate(self, polarity: str, plural: bool = False) -> str:
        """What follows a subject: "was really great", "bored me", "takes its time"."""
        if self.rng.random() < 0.6:
            copula = self.rng.choice(COPULAS_PLURAL if plural else COPULAS_SINGULAR)
            return f"{copula} {self.adjective_phrase(polarity)}"
        phrase = self.rng.choice(VERB_PHRASES[polarity])
        if plural:  # keep simple subject-verb agreement for "The special effects ..."
            phrase = phrase.replace("was ", "were ").replace("is ", "are ").replace("works ", "work ")
            phrase = phrase.replace("takes ", "take ").replace("runs ", "run ").replace("changes ", "change ")
            phrase = phrase.replace("goes ", "go ")
        return phrase

    def viewer_action(self, polarity: str) -> str:
        """What follows "I": "really loved the music", "was bored", "watched it twice"."""
        rng = self.rng
        if polarity != NEU and rng.random() < 0.55:
            return f"{rng.choice(VIEWER_VERBS[polarity])} the {self._aspect()[0]}"
        return self._fill(rng.choice(VIEWER_PHRASES[polarity]))

    def noun_phrase(self, polarity: str) -> str:
        """What follows "What stood out to me was": "the music, which was lovely"."""
        name, plural = self._aspect()
        if self.rng.random() < 0.5:
            return f"the {name}, which {'were' if plural else 'was'} {self.adjective_phrase(polarity)}"
        return f"how {self.adjective_phrase(polarity)} the {name} {'were' if plural else 'was'}"

    def tail(self, polarity: str, kind: str) -> str:
        """An optional ending. Neutral endings ("at times") only read well after an adjective."""
        if polarity == NEU and kind != "adjective":
            return ""
        return self._fill(self.rng.choice(TAILS[polarity]))

    # -- sentences -------------------------------------------------------------------------------------------
    def opening(self) -> str:
        """A sentence opening: a literal prompt, or one built from the grammar's parts."""
        rng = self.rng
        if rng.random() < self.prompt_fraction:
            return rng.choice(ALL_PROMPTS)
        name, plural = self._aspect()
        marker = rng.choice(DISCOURSE_MARKERS)
        subject = f"the {name}" if marker else f"The {name}"
        shape = rng.random()
        if shape < 0.4:
            return f"{marker}{subject} {rng.choice(COPULAS_PLURAL if plural else COPULAS_SINGULAR)}"
        if shape < 0.7:
            return f"{marker}{subject}"
        if shape < 0.9:
            return f"{marker}I" if marker else "I"
        return f"{marker}{'the' if marker else 'The'} movie was"

    def body(self, opening: str, polarity: str) -> str:
        """The grammatical piece that completes ``opening`` (no tail), carrying ``polarity``."""
        kind = opening_kind(opening)
        if kind == "noun":
            return self.noun_phrase(polarity)
        if kind == "adjective":
            return self.adjective_phrase(polarity)
        if kind == "verb":
            action = self.viewer_action(polarity)
            plural_subject = opening.endswith(" we") or " and I" in opening
            return "were" + action[3:] if plural_subject and action.startswith("was ") else action
        return self.predicate(polarity, plural=opening.split()[-1] in _PLURAL_NOUNS)

    def mixed_clause(self, polarity: str) -> str:
        """A contrasting clause, ", but the ending was boring". VADER weighs the clause after "but" more."""
        name, plural = self._aspect()
        return f", but the {name} {'were' if plural else 'was'} {self.adjective_phrase(polarity)}"

    def sentence(self, polarity: str) -> str:
        """One sentence of the given overall polarity (sometimes a two-clause "X, but Y" sentence)."""
        opening = self.opening()
        if polarity != NEU and self.rng.random() < 0.15:
            # first clause of the opposite polarity, the "but" clause carries the sentence's polarity
            other = NEG if polarity == POS else POS
            return f"{opening} {self.body(opening, other)}{self.mixed_clause(polarity)}."
        return f"{opening} {self.body(opening, polarity)}{self.tail(polarity, opening_kind(opening))}."

    def review(self, num_sentences: int) -> str:
        """A review of 1-3 sentences. Reviews have a mood, but a third of their sentences disagree with it."""
        mood = self.rng.choice(POLARITIES)
        parts = []
        for _ in range(num_sentences):
            polarity = mood if self.rng.random() < 0.67 else self.rng.choice(POLARITIES)
            parts.append(self.sentence(polarity))
        return " ".join(parts)


def generate_corpus(num_sentences: int = 60_000, seed: int = 0) -> list[str]:
    """Reviews (documents) holding ``num_sentences`` sentences in total; the same seed gives the same list."""
    grammar = ReviewGrammar(seed)
    reviews: list[str] = []
    remaining = num_sentences
    while remaining > 0:
        n = min(remaining, grammar.rng.choice((1, 1, 2, 2, 3)))
        reviews.append(grammar.review(n))
        remaining -= n
    return reviews
