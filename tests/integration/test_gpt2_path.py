"""The ``gpt2`` preset's code path: a GPT-2 policy, a 5-star BERT classifier scored as expected stars, LoRA with
the base model (adapters disabled) as the reference. Both models load from local directories through
``from_pretrained``, as GPT-2 and ``nlptown/bert-base-multilingual-uncased-sentiment`` do from the Hub cache.

On CPU with small stand-ins of the same architectures (every CI run); with full-size random stand-ins on a GPU
(``-m gpu``, skipped without CUDA).
"""

from __future__ import annotations

import math

import pytest
from rich.console import Console

from exercise.config import TrainConfig
from exercise.functions import RewardFunctions
from exercise.train import run
from tests.support.tiny_models import make_tiny_five_star


def k1(lp, lr, kl_coef=0.1):
    return [
        kl_coef * sum(a - b for a, b in zip(p, r, strict=True)) / len(p) if p else 0.0
        for p, r in zip(lp, lr, strict=True)
    ]


def shaping(scores, completions, prompts=None):
    return list(scores)


FUNCTIONS = RewardFunctions(k1, k1, shaping)


def _run(tmp_path, model_dir, sentiment_dir, **changes):
    config = TrainConfig(
        preset="gpt2",
        model_name=str(model_dir),
        sentiment_model=str(sentiment_dir),
        kl_type="forward",
        use_peft=True,
        max_steps=2,
        eval_every=1,
        prompts_per_step=1,
        num_generations=4,
        max_completion_length=8,
        validation_prompts=4,
        output_dir=str(tmp_path / "run"),
        save_model=False,
        quiet=True,
    ).replace(**changes)
    return run(config, FUNCTIONS, console=Console(quiet=True))


def _check(result):
    assert result.ok, result.error
    assert result.config.preset == "gpt2" and result.config.learning_rate == 1e-4  # LoRA's rate
    assert [record["step"] for record in result.history] == [0, 1, 2]
    first = result.history[0]
    # Step 0: the adapters are zero, so the policy is its own reference.
    assert first["kl_forward"] == pytest.approx(0.0, abs=1e-5)
    for record in result.history:
        assert 0.0 <= record["sentiment_mean"] <= 1.0 and math.isfinite(record["ref_perplexity"])
    assert any("reward/kl_penalty_std" in entry for entry in result.train_log)


@pytest.mark.slow
def test_gpt2_preset_with_small_standins_on_cpu(tmp_path, tiny_gpt2_dir):
    """Slow: two LoRA GRPO steps and three validations through the whole pipeline (about 15 s on 2 cores)."""
    sentiment_dir = make_tiny_five_star(tmp_path / "five-star")
    result = _run(tmp_path, tiny_gpt2_dir, sentiment_dir)
    _check(result)
    # The 5-star scorer (expected stars rescaled to [0, 1]), not VADER: a random classifier scores near the middle.
    assert result.config.sentiment_model == str(sentiment_dir)
    assert 0.2 < result.history[0]["sentiment_mean"] < 0.8


@pytest.mark.gpu
def test_gpt2_preset_with_full_size_standins_on_gpu(tmp_path):
    """GPT-2 small's architecture (124M) and a BERT-base-sized 5-label classifier, random weights, 2 steps."""
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    from transformers import BertConfig, BertForSequenceClassification, GPT2Config, GPT2LMHeadModel

    from tests.support.tiny_models import train_bpe_tokenizer

    tokenizer = train_bpe_tokenizer()
    model_dir, sentiment_dir = tmp_path / "gpt2-small", tmp_path / "bert-base-5"
    GPT2LMHeadModel(
        GPT2Config(
            vocab_size=len(tokenizer),
            bos_token_id=tokenizer.eos_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
    ).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    from transformers import PreTrainedTokenizerFast

    bert_tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer.backend_tokenizer, pad_token="<|endoftext|>", unk_token="<|endoftext|>"
    )
    BertForSequenceClassification(
        BertConfig(
            vocab_size=len(bert_tokenizer),
            num_labels=5,
            pad_token_id=bert_tokenizer.pad_token_id,
            id2label={i: f"{i + 1} stars" for i in range(5)},
            label2id={f"{i + 1} stars": i for i in range(5)},
        )
    ).save_pretrained(sentiment_dir)
    bert_tokenizer.save_pretrained(sentiment_dir)
    result = _run(
        tmp_path, model_dir, sentiment_dir, prompts_per_step=2, num_generations=8, max_completion_length=24
    )
    _check(result)
    assert result.timing["seconds_per_step"] < 60
