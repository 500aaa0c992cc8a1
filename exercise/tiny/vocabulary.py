"""What "out of vocabulary" means for the tiny model, in one place.

The tiny model was pre-trained on a generated corpus (:mod:`exercise.tiny.corpus`) whose grammar uses a few
hundred English words (331 for the shipped model). Its byte-level BPE tokenizer can still spell anything, so a
policy pushed far from the reference glues sub-word pieces into strings that are no word at all ("greatad",
"andad", "wefter"). Those are what this measures: a word of a completion is *out of vocabulary* when it never
occurs in the corpus the model was pre-trained on. Words are :func:`exercise.sentiment.words` (lower-cased runs
of letters and apostrophes, the same split as distinct-n and repetition), and the share is pooled over a batch
of completions: out-of-vocabulary words / all words.

The corpus's words ship with the model, one per line in ``corpus_words.txt`` in its directory (written by
``python -m exercise.tiny.build``; a test checks it against the regenerated corpus). A model without that file,
GPT-2 for one, has an open-ended vocabulary and gets no such measure.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from exercise.sentiment import words

#: The file in a model directory that lists the words of its pre-training corpus.
CORPUS_WORDS_FILE = "corpus_words.txt"


def corpus_words(texts: Iterable[str]) -> list[str]:
    """The distinct words of ``texts``, sorted (what ``corpus_words.txt`` holds)."""
    found: set[str] = set()
    for text in texts:
        found.update(words(text))
    return sorted(found)


def write_corpus_words(model_dir: str | Path, texts: Iterable[str]) -> Path:
    """Write ``corpus_words.txt`` for a model pre-trained on ``texts``; returns its path."""
    path = Path(model_dir) / CORPUS_WORDS_FILE
    path.write_text("".join(f"{word}\n" for word in corpus_words(texts)), encoding="utf-8")
    return path


def load_corpus_words(model_dir: str | Path) -> frozenset[str] | None:
    """The pre-training corpus's words of the model in ``model_dir``, or None when it ships no such list (a
    Hub name, GPT-2's directory ...)."""
    path = Path(model_dir).expanduser() / CORPUS_WORDS_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    return frozenset(line.strip() for line in text.splitlines() if line.strip())


def oov_share(texts: Sequence[str], vocabulary: frozenset[str] | set[str]) -> float:
    """Out-of-vocabulary words / all words, pooled over ``texts`` (0 when they hold no words)."""
    all_words = [word for text in texts for word in words(text)]
    if not all_words:
        return 0.0
    return sum(word not in vocabulary for word in all_words) / len(all_words)
