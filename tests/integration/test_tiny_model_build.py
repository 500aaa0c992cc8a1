"""The tiny model's build script end to end: ``python -m exercise.tiny.build`` trains a small model in a process of
its own and writes a directory that loads like GPT-2 (the shipped model's own checks are in
``tests/unit/test_tiny_model.py``)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from exercise.tiny.corpus import generate_corpus
from exercise.tiny.vocabulary import corpus_words, load_corpus_words
from tests.support.model_files import load_model_dir as _load


@pytest.mark.slow  # over 10 s on 2 cores (measured with --durations)
def test_build_runs_end_to_end(tmp_path):
    out = tmp_path / "model"
    cmd = [
        sys.executable,
        "-m",
        "exercise.tiny.build",
        "--out",
        str(out),
        "--seconds",
        "30",
        "--max-steps",
        "12",
        "--num-sentences",
        "500",
        "--eval-samples",
        "1",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    log = json.loads((out / "build_log.json").read_text())
    assert log["final_loss"] < log["initial_loss"]
    assert 0.0 <= log["val_sentiment_mean"] <= 1.0
    model, tokenizer = _load(out)
    assert model.config.model_type == "gpt2" and tokenizer.eos_token_id == 0
    assert "python -m exercise.tiny.build" in (out / "MODEL_CARD.md").read_text()
    assert load_corpus_words(out) == frozenset(corpus_words(generate_corpus(500, seed=0)))
