"""The forward pass GRPO trains on scores the sampled tokens exactly as they were sampled.

TRL samples with ``generate``, which numbers the positions of a left-padded prompt from its first real token, but
its training and reference forwards pass no position ids, so GPT-2 would number the padding too and train a
position-shifted model. ``exercise.train.build_trainer`` makes the models derive position ids from the attention
mask (``exercise.logprobs.positions_from_attention_mask``); these tests compare TRL's own training-pass log-probs
with the sampling distribution on the shipped tiny model, prompts of different lengths batched together.
"""

from __future__ import annotations

import pytest
import torch

from exercise.config import TrainConfig
from exercise.logprobs import positions_from_attention_mask, positions_from_mask
from exercise.presets import resolve_config
from exercise.prompts import TRAIN_PROMPTS

TEMPERATURE = 0.8  # not 1, so that the check covers the temperature scaling as well


def _zero_reward(prompts, completions, **_):
    return [0.0] * len(completions)


def _build(tmp_path, **overrides):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from exercise.train import build_trainer

    config = resolve_config(
        TrainConfig(preset="tiny", output_dir=str(tmp_path), temperature=TEMPERATURE, **overrides)
    )
    tokenizer = AutoTokenizer.from_pretrained(config.model_name, padding_side="left")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    policy = AutoModelForCausalLM.from_pretrained(config.model_name, dtype=torch.float32)
    return config, tokenizer, build_trainer(config, _zero_reward, tokenizer, policy)


def _sample(model, tokenizer, prompts, max_new_tokens=12, seed=0):
    """Left-padded prompts -> (prompt ids, prompt mask, completion ids, completion mask, sampling log-probs)."""
    batch = tokenizer(list(prompts), return_tensors="pt", padding=True)
    torch.manual_seed(seed)
    with torch.no_grad():
        out = model.generate(
            **batch,
            do_sample=True,
            temperature=TEMPERATURE,
            top_k=0,
            top_p=1.0,
            max_new_tokens=max_new_tokens,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            output_logits=True,
            return_dict_in_generate=True,
        )
    width = batch["input_ids"].shape[1]
    completion = out.sequences[:, width:]
    # Real completion tokens: up to and including the first EOS (as TRL masks them).
    is_eos = completion == tokenizer.eos_token_id
    after_eos = (is_eos.cumsum(dim=1) - is_eos.long()) > 0
    completion_mask = (~after_eos).long()
    logits = (
        torch.stack(out.logits, dim=1).float() / TEMPERATURE
    )  # the distribution each token was drawn from
    sampled = logits.log_softmax(-1).gather(-1, completion.unsqueeze(-1)).squeeze(-1)
    return batch["input_ids"], batch["attention_mask"], completion, completion_mask, sampled


def _training_logps(trainer, model, prompt_ids, prompt_mask, completion, completion_mask):
    """TRL's own training-pass computation (the one its loss differentiates)."""
    with torch.no_grad():
        logps, _, _ = trainer._get_per_token_logps_and_entropies(
            model,
            torch.cat([prompt_ids, completion], dim=1),
            torch.cat([prompt_mask, completion_mask], dim=1),
            completion.shape[1],
        )
    return logps


def _mismatch(a, b, mask):
    diff = (a - b).abs()[mask.bool()]
    return diff.mean().item(), diff.max().item()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return _build(tmp_path_factory.mktemp("positions"))


def test_prompts_really_are_padded_differently(built):
    _, tokenizer, _ = built
    lengths = {len(ids) for ids in tokenizer(list(TRAIN_PROMPTS[:16]))["input_ids"]}
    assert len(lengths) >= 3, "the check needs prompts of several token lengths in one batch"


def test_training_pass_equals_sampling_pass(built):
    _, tokenizer, trainer = built
    prompt_ids, prompt_mask, completion, completion_mask, sampled = _sample(
        trainer.model, tokenizer, TRAIN_PROMPTS[:16]
    )
    trained = _training_logps(trainer, trainer.model, prompt_ids, prompt_mask, completion, completion_mask)
    mean, worst = _mismatch(trained, sampled, completion_mask)
    assert worst < 1e-4, (
        f"training pass differs from sampling by {mean:.2e} nats/token on average, {worst:.2e} max"
    )


def test_without_the_fix_the_passes_disagree(built):
    """The control: the same model without derived positions (what TRL does by default) is measurably off."""
    from transformers import AutoModelForCausalLM

    config, tokenizer, trainer = built
    prompt_ids, prompt_mask, completion, completion_mask, sampled = _sample(
        trainer.model, tokenizer, TRAIN_PROMPTS[:16]
    )
    plain = AutoModelForCausalLM.from_pretrained(config.model_name, dtype=torch.float32).eval()
    ids = torch.cat([prompt_ids, completion], dim=1)
    mask = torch.cat([prompt_mask, completion_mask], dim=1)
    with torch.no_grad():
        logits = plain(input_ids=ids, attention_mask=mask).logits[:, -completion.shape[1] - 1 : -1]
    shifted = (logits.float() / TEMPERATURE).log_softmax(-1).gather(-1, completion.unsqueeze(-1)).squeeze(-1)
    mean, _ = _mismatch(shifted, sampled, completion_mask)
    assert mean > 1e-2


def test_trl_reference_and_lora_base_are_fixed_too(tmp_path):
    _, _, with_beta = _build(tmp_path / "beta", beta=0.05)
    assert with_beta.ref_model is not None and with_beta.ref_model._positions_from_attention_mask
    _, _, with_lora = _build(tmp_path / "lora", use_peft=True)
    assert with_lora.model.get_base_model()._positions_from_attention_mask


def test_lora_training_pass_equals_sampling_pass(tmp_path):
    _, tokenizer, trainer = _build(tmp_path, use_peft=True)
    prompt_ids, prompt_mask, completion, completion_mask, sampled = _sample(
        trainer.model, tokenizer, TRAIN_PROMPTS[:8], seed=1
    )
    trained = _training_logps(trainer, trainer.model, prompt_ids, prompt_mask, completion, completion_mask)
    assert _mismatch(trained, sampled, completion_mask)[1] < 1e-4


def test_positions_from_mask_counts_real_tokens_and_follows_a_cache():
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    assert positions_from_mask(mask, 5).tolist() == [[0, 0, 0, 1, 2], [0, 1, 2, 3, 4]]
    # With a KV cache only the newest column is fed; its position is still counted over the whole mask.
    assert positions_from_mask(mask, 1).tolist() == [[2], [4]]


def test_explicit_position_ids_are_kept_and_patching_is_idempotent():
    from transformers import GPT2Config, GPT2LMHeadModel

    model = GPT2LMHeadModel(GPT2Config(vocab_size=32, n_positions=16, n_embd=8, n_layer=1, n_head=2)).eval()
    seen = []
    model.transformer.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append(kwargs.get("position_ids")), with_kwargs=True
    )
    positions_from_attention_mask(model)
    inner = model.forward
    assert positions_from_attention_mask(model).forward is inner
    ids, mask = torch.tensor([[5, 6, 7]]), torch.tensor([[0, 1, 1]])
    model(input_ids=ids, attention_mask=mask)
    assert seen[-1].tolist() == [[0, 0, 1]]
    model(input_ids=ids, attention_mask=mask, position_ids=torch.tensor([[3, 4, 5]]))
    assert seen[-1].tolist() == [[3, 4, 5]]


def test_lora_on_gpt2_says_its_conv1d_weights_are_transposed(tmp_path):
    """Issue 25: every --use_peft run printed peft's "fan_in_fan_out is set to False but the target module is
    `Conv1D`" warning (GPT-2's attention projections store their weights transposed); the LoRA config says so."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, _, trainer = _build(tmp_path, use_peft=True)
    assert not [w for w in caught if "fan_in_fan_out" in str(w.message)]
    assert trainer.model.peft_config["default"].fan_in_fan_out
