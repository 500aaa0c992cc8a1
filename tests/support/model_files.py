"""Loading a model directory (the shipped tiny model, or one a build wrote) the way the pipeline does."""

from __future__ import annotations

from pathlib import Path


def load_model_dir(path: Path):
    """(model, tokenizer) from ``path`` with ``from_pretrained``."""
    # Imported here, not at the top: transformers' model classes cost seconds to import, and every pytest-xdist
    # worker imports every test module.
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)
