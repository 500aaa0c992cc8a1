"""The `tiny` offline preset: the shipped model, its corpus and the prompt sets.

The shipped model stands in for GPT-2 wherever there is no GPU or no Hub, so these tests hold it to GPT-2's
contract: it loads with ``from_pretrained`` from a directory, is a GPT-2 architecture, and writes words. The
build script's end-to-end run (it trains a model in a process of its own) is in
``tests/integration/test_tiny_model_build.py``.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
import torch
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

import exercise
from exercise.prompts import CORPUS_VALIDATION_PROMPTS, TRAIN_PROMPTS, VALIDATION_PROMPTS
from exercise.tiny import tiny_model_dir
from exercise.tiny.corpus import NEG, NEU, POS, ReviewGrammar, generate_corpus, opening_kind
from exercise.tiny.vocabulary import corpus_words, load_corpus_words, oov_share
from tests.support.model_files import load_model_dir as _load

MAX_BYTES = 10 * 1024 * 1024
#: The generated corpus of the shipped model's build (build_log.json: 60,000 sentences, seed 0).
SHIPPED_CORPUS_SHA256 = "1f10501f6ea5313fe9d5a667e45e63eafe547adb16520ab1d2c710675e9eccfd"


@pytest.fixture(scope="module")
def tiny():
    model, tokenizer = _load(tiny_model_dir())
    return model.eval(), tokenizer


def _mostly_words(text: str, threshold: float = 0.8) -> bool:
    """Most whitespace-separated pieces are English-looking words (letters, maybe with punctuation)."""
    pieces = text.split()
    wordlike = [p for p in pieces if re.fullmatch(r"[A-Za-z][A-Za-z'-]*[.,!?]?", p)]
    return bool(pieces) and len(wordlike) / len(pieces) >= threshold


# -- prompts ---------------------------------------------------------------------------------------------------
def test_prompt_sets_are_disjoint_and_sized():
    assert len(set(TRAIN_PROMPTS)) == len(TRAIN_PROMPTS) >= 48
    assert len(set(VALIDATION_PROMPTS)) == len(VALIDATION_PROMPTS) >= 16
    assert not set(TRAIN_PROMPTS) & set(VALIDATION_PROMPTS)
    for prompt in TRAIN_PROMPTS + VALIDATION_PROMPTS:
        assert prompt == prompt.strip() and prompt[0].isupper(), prompt  # no trailing space: BPE boundary


def test_every_prompt_has_a_grammar_shape_and_a_continuation():
    grammar = ReviewGrammar(seed=0)
    kinds = {opening_kind(p) for p in VALIDATION_PROMPTS}
    assert kinds == {"noun", "adjective", "verb", "predicate"}  # validation covers every shape
    for prompt in TRAIN_PROMPTS + VALIDATION_PROMPTS:
        assert grammar.body(prompt, POS).strip(), prompt


# -- corpus ----------------------------------------------------------------------------------------------------
def test_corpus_is_deterministic_for_a_seed():
    assert generate_corpus(300, seed=7) == generate_corpus(300, seed=7)
    assert generate_corpus(300, seed=7) != generate_corpus(300, seed=8)


def test_corpus_is_the_one_the_shipped_model_was_built_from():
    # Validation prompts added after the build must not change it: the corpus quotes only the first
    # CORPUS_VALIDATION_PROMPTS of them (a grammar change that fails this needs a rebuilt model).
    log = json.loads((tiny_model_dir() / "build_log.json").read_text())
    corpus = "\n".join(generate_corpus(log["num_sentences"], seed=log["seed"]))
    assert hashlib.sha256(corpus.encode()).hexdigest() == SHIPPED_CORPUS_SHA256
    # ... and the words it ships with, which define "out of vocabulary" for it, are that corpus's
    assert load_corpus_words(tiny_model_dir()) == frozenset(corpus_words([corpus]))
    assert len(VALIDATION_PROMPTS) == 64 and CORPUS_VALIDATION_PROMPTS == 24
    # Most of the others are openings the grammar builds itself, so they start sentences there all the same.
    built = [
        p
        for p in VALIDATION_PROMPTS[CORPUS_VALIDATION_PROMPTS:]
        if re.search(rf"(^|\. ){re.escape(p)} ", corpus, re.MULTILINE)
    ]
    assert len(built) >= 30, built


def test_corpus_counts_sentences_and_starts_with_openings():
    reviews = generate_corpus(500, seed=0)
    assert sum(r.count(". ") + 1 for r in reviews) == 500  # every sentence ends in ". " or at the end
    assert any(r.startswith(p) for r in reviews for p in VALIDATION_PROMPTS)


def test_corpus_mixes_sentiments_by_vader():
    analyzer = SentimentIntensityAnalyzer()
    grammar = ReviewGrammar(seed=3)
    compound = {
        pol: [analyzer.polarity_scores(grammar.sentence(pol))["compound"] for _ in range(60)]
        for pol in (POS, NEG, NEU)
    }
    mean = {pol: sum(v) / len(v) for pol, v in compound.items()}
    assert mean[POS] > 0.3 and mean[NEG] < -0.3 and abs(mean[NEU]) < 0.15, mean
    scores = [analyzer.polarity_scores(r)["compound"] for r in generate_corpus(400, seed=0)]
    assert sum(s > 0.3 for s in scores) > 0.2 * len(scores)
    assert sum(s < -0.3 for s in scores) > 0.2 * len(scores)


# -- the shipped model -----------------------------------------------------------------------------------------
def test_shipped_model_is_inside_the_package_and_small():
    directory = tiny_model_dir()
    assert directory.is_relative_to(Path(exercise.__file__).resolve().parent)
    for name in (
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "generation_config.json",
        "MODEL_CARD.md",
    ):
        assert (directory / name).is_file(), name
    assert sum(f.stat().st_size for f in directory.iterdir()) <= MAX_BYTES


def test_shipped_model_is_gpt2_and_loads_like_gpt2(tiny):
    model, tokenizer = tiny
    assert model.config.model_type == "gpt2" and type(model).__name__ == "GPT2LMHeadModel"
    assert next(model.parameters()).dtype == torch.float32
    assert model.config.n_positions >= 64  # a prompt plus 32 new tokens fits
    assert tokenizer.eos_token == "<|endoftext|>"
    assert tokenizer.eos_token_id == tokenizer.pad_token_id == model.config.eos_token_id
    assert model.generation_config.pad_token_id == tokenizer.pad_token_id
    assert model.generation_config.do_sample
    assert len(tokenizer) == model.config.vocab_size
    # dropout off, so log-probabilities are the same in train and eval mode
    assert model.config.resid_pdrop == model.config.attn_pdrop == model.config.embd_pdrop == 0.0


def test_shipped_model_writes_words(tiny):
    model, tokenizer = tiny
    prompt = VALIDATION_PROMPTS[0]
    inputs = tokenizer([prompt] * 4, return_tensors="pt")
    torch.manual_seed(0)
    with torch.no_grad():
        greedy = model.generate(**inputs, do_sample=False, max_new_tokens=16)
        sampled = model.generate(**inputs, do_sample=True, max_new_tokens=24)
    n = inputs["input_ids"].shape[1]
    texts = tokenizer.batch_decode(greedy[:1, n:], skip_special_tokens=True)
    texts += tokenizer.batch_decode(sampled[:, n:], skip_special_tokens=True)
    for text in texts:
        assert _mostly_words(text), text
    # before any RL it writes the words of its corpus: out-of-vocabulary words are a sign of drift, not its baseline
    assert oov_share(texts, load_corpus_words(tiny_model_dir())) < 0.05
    # the tokenizer round-trips plain text, like GPT-2's byte-level BPE
    assert tokenizer.decode(tokenizer(prompt)["input_ids"]) == prompt


def test_shipped_model_starts_mid_scale_on_vader(tiny):
    """Step 0 must leave RL room in both directions (and the model card must say what was measured)."""
    model, tokenizer = tiny
    analyzer = SentimentIntensityAnalyzer()
    torch.manual_seed(0)
    # Four samples of each prompt the build log measured on, in one left-padded batch (the attention mask gives
    # generate() the right positions): one call instead of one per prompt.
    prompts = [prompt for prompt in VALIDATION_PROMPTS[:CORPUS_VALIDATION_PROMPTS] for _ in range(4)]
    inputs = tokenizer(prompts, return_tensors="pt", padding=True, padding_side="left")
    with torch.no_grad():
        out = model.generate(**inputs, do_sample=True, top_k=0, max_new_tokens=24)
    texts = tokenizer.batch_decode(out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    scores = [(analyzer.polarity_scores(text)["compound"] + 1) / 2 for text in texts]
    assert len(scores) == len(prompts)
    assert 0.3 <= sum(scores) / len(scores) <= 0.7
    log = json.loads((tiny_model_dir() / "build_log.json").read_text())
    assert 0.3 <= log["val_sentiment_mean"] <= 0.7
    assert f"{log['val_sentiment_mean']:.3f}" in (tiny_model_dir() / "MODEL_CARD.md").read_text()
