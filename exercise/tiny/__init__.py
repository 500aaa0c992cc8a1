"""The ``tiny`` offline preset: a small GPT-2-architecture model that this project pre-trains itself.

The exercise normally fine-tunes GPT-2 on a GPU. So that the exercise, its tests and the grader also run on a
laptop or in CI with no network, the package ships ``exercise/assets/tiny-gpt2``: a 4-layer GPT-2 with a
1024-token byte-level BPE vocabulary, pre-trained on the generated review corpus in ``exercise.tiny.corpus`` by
``python -m exercise.tiny.build``. It is loaded exactly like real GPT-2, with ``from_pretrained`` on a directory.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["tiny_model_dir"]


def tiny_model_dir() -> Path:
    """The directory of the shipped tiny model (pass it to ``AutoModelForCausalLM.from_pretrained``)."""
    return Path(__file__).resolve().parent.parent / "assets" / "tiny-gpt2"
