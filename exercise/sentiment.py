"""Sentiment scorers: one interface, ``scorer(texts) -> list of scores in [0, 1]`` (1 = most positive).

* :class:`FiveStarScorer` - a 1-to-5-star review classifier (the original exercise used
  ``nlptown/bert-base-multilingual-uncased-sentiment``). Score = (expected stars - 1) / 4.
* :class:`VaderScorer` - VADER, a lexicon-and-rules sentiment model that needs no download. Score = (compound + 1) / 2.
* :class:`HackableScorer` - the fraction of words that are on a list of positive words. Deliberately easy to
  exploit ("great great great" scores 1.0): ``--hackable_reward`` uses it to show reward hacking quickly.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

_WORD = re.compile(r"[a-z']+")


def words(text: str) -> list[str]:
    """Lower-cased words of ``text`` (letters and apostrophes); shared by the hackable scorer and the metrics."""
    return _WORD.findall(text.lower())


class SentimentScorer(Protocol):
    name: str

    def __call__(self, texts: Sequence[str]) -> list[float]: ...


class VaderScorer:
    """VADER's compound score in [-1, 1], mapped to [0, 1]."""

    name = "vader"

    def __init__(self) -> None:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self._analyzer = SentimentIntensityAnalyzer()

    def __call__(self, texts: Sequence[str]) -> list[float]:
        return [(self._analyzer.polarity_scores(text)["compound"] + 1.0) / 2.0 for text in texts]


POSITIVE_WORDS = frozenset(
    """
    amazing awesome beautiful best brilliant charming delightful enjoy enjoyable enjoyed excellent exceptional
    fantastic fun funny good gorgeous great happy incredible love loved lovely magnificent masterpiece nice
    outstanding perfect perfectly pleasant powerful remarkable spectacular stunning superb terrific touching
    wonderful wow
    """.split()
)


class HackableScorer:
    """Fraction of the words that are in :data:`POSITIVE_WORDS`, counted over at least ``min_words`` words.

    A word-counting reward with an obvious exploit: repeating "great" scores 1.0. The floor on the denominator
    stops the other exploit (a one-word answer "great." would otherwise score 1.0 too), so the hack the policy
    finds is the classic degenerate repetition the exercise is about.
    """

    name = "hackable"

    def __init__(self, positive_words: frozenset[str] = POSITIVE_WORDS, min_words: int = 8) -> None:
        self.positive_words = positive_words
        self.min_words = min_words

    def __call__(self, texts: Sequence[str]) -> list[float]:
        scores = []
        for text in texts:
            tokens = words(text)
            positive = sum(t in self.positive_words for t in tokens)
            scores.append(positive / max(len(tokens), self.min_words))
        return scores


class FiveStarScorer:
    """A sequence classifier with 5 labels (1 to 5 stars), loaded with ``from_pretrained`` (Hub name or directory).

    The score is the expected number of stars under the classifier, rescaled: (E[stars] - 1) / 4. The expectation
    (rather than the most likely label) keeps the reward smooth, so small improvements in a completion show up.
    """

    name = "five-star"

    def __init__(self, model_name_or_path: str, *, device=None, batch_size: int = 64, max_length: int = 256):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(model_name_or_path)
        self.model = AutoModelForSequenceClassification.from_pretrained(model_name_or_path)
        if self.model.config.num_labels != 5:
            raise ValueError(
                f"{model_name_or_path!r} has {self.model.config.num_labels} labels; a 5-star classifier has 5"
            )
        self.model.eval().requires_grad_(False)
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.model.to(self.device)
        self.batch_size = batch_size
        self.max_length = max_length
        self.name = f"five-star:{model_name_or_path}"

    def to(self, device) -> FiveStarScorer:
        import torch

        self.device = torch.device(device)
        self.model.to(self.device)
        return self

    def __call__(self, texts: Sequence[str]) -> list[float]:
        import torch

        stars = torch.arange(1, 6, dtype=torch.float32, device=self.device)
        scores: list[float] = []
        for start in range(0, len(texts), self.batch_size):
            batch = self.tokenizer(
                list(texts[start : start + self.batch_size]),
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            ).to(self.device)
            with torch.no_grad():
                probs = self.model(**batch).logits.float().softmax(dim=-1)
            scores.extend((((probs @ stars) - 1.0) / 4.0).tolist())
        return scores


def build_scorer(sentiment_model: str, *, hackable: bool = False, device=None) -> SentimentScorer:
    """The scorer a run uses: the hackable one if asked, VADER for ``"vader"``, else a 5-star classifier."""
    if hackable:
        return HackableScorer()
    if sentiment_model.lower() == "vader":
        return VaderScorer()
    return FiveStarScorer(sentiment_model, device=device)
