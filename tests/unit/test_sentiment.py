"""Sentiment scorers (exercise/sentiment.py): range, polarity, and the 5-star model's from_pretrained path."""

from __future__ import annotations

import pytest

from exercise.sentiment import FiveStarScorer, HackableScorer, VaderScorer, build_scorer
from tests.support.tiny_models import make_tiny_five_star

TEXTS = [
    " was wonderful, a great and moving story.",
    " was a boring, terrible mess.",
    " was released in 1999.",
    "",
]


def test_vader_range_and_polarity():
    scores = VaderScorer()(TEXTS)
    assert all(0.0 <= s <= 1.0 for s in scores)
    positive, negative, neutral, empty = scores
    assert positive > 0.75 and negative < 0.25
    assert neutral == pytest.approx(0.5) and empty == pytest.approx(0.5)


def test_hackable_counts_positive_words():
    scorer = HackableScorer(min_words=1)
    assert scorer(["great great great great"]) == [1.0]
    assert scorer(["a great film"]) == [pytest.approx(1 / 3)]
    assert scorer(["Great, AMAZING!"]) == [1.0]  # case and punctuation do not matter
    assert scorer(["", "123 ..."]) == [0.0, 0.0]


def test_hackable_short_answers_do_not_max_the_score():
    # Without a floor on the denominator the cheapest hack is a one-word answer, not the repetition we teach.
    scorer = HackableScorer(min_words=8)
    one_word, repeated = scorer(["great.", " ".join(["great"] * 10)])
    assert one_word == pytest.approx(1 / 8)
    assert repeated == 1.0


def test_hackable_is_hackable_where_vader_saturates():
    # The lesson of --hackable_reward: repetition of one word maximises it.
    assert HackableScorer()(["great great great great great"])[0] > HackableScorer()([TEXTS[0]])[0]


@pytest.fixture(scope="module")
def five_star_dir(tmp_path_factory):
    return make_tiny_five_star(tmp_path_factory.mktemp("five-star"))


def test_five_star_through_from_pretrained(five_star_dir):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    scorer = build_scorer(str(five_star_dir))
    assert isinstance(scorer, FiveStarScorer)
    scores = scorer(TEXTS[:3])
    assert len(scores) == 3 and all(0.0 <= s <= 1.0 for s in scores)

    # The score is the expected number of stars, rescaled: (E[stars] - 1) / 4.
    tokenizer = AutoTokenizer.from_pretrained(five_star_dir)
    model = AutoModelForSequenceClassification.from_pretrained(five_star_dir).eval()
    with torch.no_grad():
        probs = model(**tokenizer([TEXTS[0]], return_tensors="pt")).logits.softmax(-1)[0]
    expected = (sum((k + 1) * p for k, p in enumerate(probs.tolist())) - 1) / 4
    assert scores[0] == pytest.approx(expected, abs=1e-5)


def test_five_star_batches_agree_with_single_texts(five_star_dir):
    scorer = FiveStarScorer(str(five_star_dir), batch_size=2)
    batched = scorer(TEXTS[:3])
    singles = [scorer([t])[0] for t in TEXTS[:3]]
    assert batched == pytest.approx(singles, abs=1e-5)


def test_five_star_rejects_a_model_without_five_labels(tmp_path):
    from transformers import BertConfig, BertForSequenceClassification

    directory = make_tiny_five_star(tmp_path / "m")
    config = BertConfig.from_pretrained(directory)
    config.num_labels = 2
    BertForSequenceClassification(config).save_pretrained(directory)
    with pytest.raises(ValueError, match="5"):
        FiveStarScorer(str(directory))


def test_build_scorer_choices():
    assert isinstance(build_scorer("vader"), VaderScorer)
    assert isinstance(build_scorer("anything", hackable=True), HackableScorer)
