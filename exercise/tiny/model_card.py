"""The tiny model's ``MODEL_CARD.md``: the card's text, filled from the build log alone (written by
:mod:`exercise.tiny.build`)."""

from __future__ import annotations

from exercise.prompts import VALIDATION_PROMPTS

MODEL_CARD = """\
# tiny-gpt2: the offline model of the `tiny` preset

A GPT-2-architecture causal language model ({n_layer} layers, width {n_embd}, {n_head} heads, context
{block_size}, {parameters:,} parameters, float32) with a byte-level BPE tokenizer of {vocab_size} tokens. It was pre-trained
from scratch by this project on generated English movie-review sentences of mixed sentiment
(`exercise/tiny/corpus.py`), so that the exercise, its tests and the grader run on CPU with no network.
It stands in for GPT-2 and loads the same way:

```python
from transformers import AutoModelForCausalLM, AutoTokenizer
from exercise.tiny import tiny_model_dir

model = AutoModelForCausalLM.from_pretrained(tiny_model_dir())
tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir())
```

It writes short review sentences ("The acting in this movie was ...") and knows nothing else. It is not a
general language model; do not use it for anything but this exercise.

## How it was built

```
{command}
```

- corpus: {num_sentences:,} generated sentences (seed {seed}), documents packed with `<|endoftext|>` between them;
- optimiser: AdamW, lr {lr}, betas 0.9/0.95, weight decay 0.1 on matrices, no dropout;
- schedule: linear warm-up, then cosine decay over the budget ({budget});
- batches of {batch_size} x {block_size} tokens; {steps:,} steps, {tokens:,} tokens, {train_seconds:.0f} s on {machine};
- held-out loss {initial_loss:.2f} -> {final_loss:.2f}.

Training stops at whichever budget comes first, so a rebuild matches these weights only where it runs the same
number of steps. `<|endoftext|>` (id {eos_token_id}) is the bos, eos and pad token. `generation_config.json` samples
at temperature 1 with no top-k/top-p truncation.

## Measured sentiment at step 0

VADER score ((compound + 1) / 2) of sampled continuations (temperature 1, {max_new_tokens} new tokens,
{eval_samples_per_prompt} per prompt) of the {n_val} validation prompts in `exercise/prompts.py`:
mean **{val_sentiment_mean:.3f}**, std {val_sentiment_std:.3f}. Mid-scale on purpose, so RL has room to move it.

Samples:

{samples_md}
"""


def render_model_card(log: dict) -> str:
    """MODEL_CARD.md from a build log alone, so the card always states what the build measured."""
    hp = log["hyperparameters"]
    budget = f"{hp['seconds']:g} s"
    if hp["max_steps"]:
        budget += f" or {hp['max_steps']} steps, whichever came first"
    return MODEL_CARD.format(
        **log,
        **hp,
        budget=budget,
        n_val=len(VALIDATION_PROMPTS),
        samples_md="\n".join(log["samples"]),
    )
