"""Log-prob extraction (exercise/logprobs.py) against a naive per-token computation on a random tiny GPT-2."""

from __future__ import annotations

import math

import pytest
import torch

from exercise.logprobs import completion_logprobs, eval_mode, pad_batch, reference_model


@pytest.fixture(scope="module")
def tiny_lm(tiny_gpt2_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    directory = tiny_gpt2_dir
    model = AutoModelForCausalLM.from_pretrained(directory)
    model.train()  # as inside the trainer: dropout is on unless the extraction switches it off
    return model, AutoTokenizer.from_pretrained(directory)


def naive_logprobs(model, prompt, completion, temperature):
    """One forward per token on the unpadded prefix: the definition, with nothing to get wrong."""
    out = []
    with torch.no_grad(), eval_mode(model):
        for t, token in enumerate(completion):
            prefix = torch.tensor([list(prompt) + list(completion[:t])])
            logits = model(input_ids=prefix).logits[0, -1].double() / temperature
            out.append(torch.log_softmax(logits, dim=-1)[token].item())
    return out


def random_batch(generator, vocab, prompt_lengths, completion_lengths):
    prompts = [torch.randint(0, vocab, (n,), generator=generator).tolist() for n in prompt_lengths]
    completions = [torch.randint(0, vocab, (n,), generator=generator).tolist() for n in completion_lengths]
    return prompts, completions


@pytest.mark.parametrize("temperature", [1.0, 0.7, 1.5])
def test_matches_per_token_loop_with_left_and_right_padding(tiny_lm, temperature):
    model, tokenizer = tiny_lm
    generator = torch.Generator().manual_seed(1)
    # Prompts of different lengths (left padding) and completions of different lengths incl. 0 (right padding).
    prompts, completions = random_batch(generator, len(tokenizer), [3, 7, 1, 5], [6, 0, 9, 2])
    fast = completion_logprobs(
        model, prompts, completions, temperature=temperature, pad_token_id=tokenizer.eos_token_id
    )
    assert [len(row) for row in fast] == [6, 0, 9, 2]
    for prompt, completion, row in zip(prompts, completions, fast, strict=True):
        expected = naive_logprobs(model, prompt, completion, temperature)
        assert row == pytest.approx(expected, abs=2e-4)
    assert model.training, "train mode must be restored after scoring"


def test_scores_real_token_ids_including_eos(tiny_lm):
    model, tokenizer = tiny_lm
    prompt = tokenizer("The acting in this movie was")["input_ids"]
    completion = tokenizer(" wasn't good")["input_ids"] + [tokenizer.eos_token_id]
    (row,) = completion_logprobs(model, [prompt], [completion], pad_token_id=tokenizer.eos_token_id)
    assert len(row) == len(completion)
    assert row == pytest.approx(naive_logprobs(model, prompt, completion, 1.0), abs=2e-4)
    assert all(v <= 0 and math.isfinite(v) for v in row)


def test_deterministic_despite_dropout(tiny_lm):
    model, tokenizer = tiny_lm
    prompts, completions = random_batch(torch.Generator().manual_seed(2), len(tokenizer), [4, 4], [8, 8])
    first = completion_logprobs(model, prompts, completions)
    second = completion_logprobs(model, prompts, completions)
    assert first == second


def test_temperature_changes_the_values(tiny_lm):
    model, tokenizer = tiny_lm
    prompts, completions = random_batch(torch.Generator().manual_seed(3), len(tokenizer), [4], [8])
    (at_one,) = completion_logprobs(model, prompts, completions, temperature=1.0)
    (at_two,) = completion_logprobs(model, prompts, completions, temperature=2.0)
    assert at_one != pytest.approx(at_two, abs=1e-3)


def test_all_empty_completions(tiny_lm):
    model, _ = tiny_lm
    assert completion_logprobs(model, [[1, 2], [3]], [[], []]) == [[], []]


def test_no_gradient(tiny_lm):
    model, tokenizer = tiny_lm
    prompts, completions = random_batch(torch.Generator().manual_seed(4), len(tokenizer), [3], [3])
    batch = pad_batch(prompts, completions, pad_token_id=0)
    assert batch.input_ids.shape == (1, 6)
    completion_logprobs(model, prompts, completions)
    assert all(p.grad is None for p in model.parameters())


def test_peft_reference_is_base_model_with_adapters_disabled(tiny_lm):
    from peft import LoraConfig, get_peft_model

    model, tokenizer = tiny_lm
    base_copy = type(model)(model.config)
    base_copy.load_state_dict(model.state_dict())
    peft_model = get_peft_model(
        base_copy, LoraConfig(r=4, target_modules=["c_attn"], init_lora_weights=False)
    )
    prompts, completions = random_batch(torch.Generator().manual_seed(5), len(tokenizer), [3, 5], [4, 6])
    with reference_model(peft_model, None) as ref:
        ref_rows = completion_logprobs(ref, prompts, completions)
    policy_rows = completion_logprobs(peft_model, prompts, completions)
    base_rows = completion_logprobs(model, prompts, completions)
    for ref_row, base_row in zip(ref_rows, base_rows, strict=True):
        assert ref_row == pytest.approx(base_row, abs=1e-5)
    assert policy_rows[1] != pytest.approx(base_rows[1], abs=1e-4), (
        "random LoRA weights must change the policy"
    )
