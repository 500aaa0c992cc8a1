"""Validation metrics (exercise/validation.py) on a random tiny GPT-2."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from exercise.sentiment import VaderScorer
from exercise.validation import Validator, distinct_n, repetition_rate

PROMPTS = ["The acting in this movie was", "Overall, the movie was", "Honestly, I"]


def test_distinct_n():
    assert distinct_n(["a b c", "a b d"], 1) == pytest.approx(4 / 6)
    assert distinct_n(["a b c", "a b d"], 2) == pytest.approx(3 / 4)
    assert distinct_n(["", "x"], 2) == 0.0


def test_repetition_rate():
    assert repetition_rate(["great great great great"]) == pytest.approx(0.75)
    assert repetition_rate(["a fine film", ""]) == 0.0  # empty completions are not counted
    assert repetition_rate(["a a", "b c"]) == pytest.approx(0.25)


@pytest.fixture(scope="module")
def models(tiny_gpt2_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    directory = tiny_gpt2_dir
    reference = AutoModelForCausalLM.from_pretrained(directory).eval()
    policy = AutoModelForCausalLM.from_pretrained(directory)
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(0.05 * torch.randn_like(p, generator=None))
    tokenizer = AutoTokenizer.from_pretrained(directory, padding_side="left")
    return policy, reference, tokenizer


def make_validator(tokenizer, temperature=1.0, seed=0):
    return Validator(
        tokenizer, VaderScorer(), PROMPTS, max_new_tokens=12, temperature=temperature, seed=seed, batch_size=2
    )


def test_identical_policy_has_zero_kl(models):
    _, reference, tokenizer = models
    record = make_validator(tokenizer).evaluate(reference, reference, step=0)
    assert record["kl_forward"] == pytest.approx(0.0, abs=1e-6)
    assert record["kl_backward"] == pytest.approx(0.0, abs=1e-6)
    for key in (
        "sentiment_mean",
        "sentiment_std",
        "positive_ratio",
        "distinct_1",
        "distinct_2",
        "repetition",
        "ref_perplexity",
        "completion_length",
    ):
        assert math.isfinite(record[key]), key
    assert 0 < record["completion_length"] <= 12
    assert len(record["samples"]) == 3 and set(record["samples"][0]) == {"prompt", "completion", "sentiment"}


def test_exact_kl_matches_a_direct_computation(models):
    policy, reference, tokenizer = models
    temperature = 1.3
    validator = make_validator(tokenizer, temperature=temperature)
    prompt_ids, completion_ids = validator.sample(policy)
    got = validator.divergences(policy, reference, prompt_ids, completion_ids)

    fwd, bwd, nll, count = 0.0, 0.0, 0.0, 0
    with torch.no_grad():
        for prompt, completion in zip(prompt_ids, completion_ids, strict=True):
            ids = torch.tensor([prompt + completion])
            lp = policy.eval()(ids).logits[0].double()
            lr = reference(ids).logits[0].double()
            for t in range(len(completion)):
                pos = len(prompt) - 1 + t
                log_p = torch.log_softmax(lp[pos] / temperature, -1)
                log_q = torch.log_softmax(lr[pos] / temperature, -1)
                fwd += (log_p.exp() * (log_p - log_q)).sum().item()
                bwd += (log_q.exp() * (log_q - log_p)).sum().item()
                nll -= torch.log_softmax(lr[pos], -1)[completion[t]].item()
                count += 1
    assert got["kl_forward"] == pytest.approx(fwd / count, rel=1e-3)
    assert got["kl_backward"] == pytest.approx(bwd / count, rel=1e-3)
    assert got["ref_perplexity"] == pytest.approx(math.exp(nll / count), rel=1e-3)
    assert got["kl_forward"] > 0 and got["kl_forward"] != pytest.approx(got["kl_backward"], rel=1e-3)


def test_deterministic_for_a_seed_and_leaves_global_rng_alone(models):
    policy, reference, tokenizer = models
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    first = make_validator(tokenizer, seed=7).evaluate(policy, reference, step=0)
    after = torch.rand(1)
    assert after == before, "validation sampling must not consume the training RNG"
    second = make_validator(tokenizer, seed=7).evaluate(policy, reference, step=0)
    other_seed = make_validator(tokenizer, seed=8).evaluate(policy, reference, step=0)
    drop = lambda r: {k: v for k, v in r.items() if k != "seconds"}  # noqa: E731
    assert drop(first) == drop(second)
    assert first["samples"] != other_seed["samples"]


def test_callback_runs_at_start_every_n_steps_and_at_the_end():
    from exercise.callbacks import ValidationCallback  # imports the Trainer: seconds

    steps = []

    class FakeValidator:
        def evaluate(self, policy, reference, step):
            return {"step": step, "seconds": 0.0}

    callback = ValidationCallback(
        FakeValidator(), lambda: (None, None), 3, on_result=lambda r: steps.append(r["step"])
    )
    state = SimpleNamespace(global_step=0, max_steps=7)
    callback.on_train_begin(None, state, None)
    for step in range(1, 8):
        state.global_step = step
        callback.on_step_end(None, state, None)
    assert steps == [0, 3, 6, 7]


def test_callback_disabled_off_the_main_process():
    from exercise.callbacks import ValidationCallback

    calls = []
    callback = ValidationCallback(None, lambda: (None, None), 1, on_result=calls.append, enabled=False)
    callback.on_train_begin(None, SimpleNamespace(global_step=0, max_steps=2), None)
    assert calls == []


def test_oov_share_counts_words_the_corpus_never_had():
    from exercise.tiny.vocabulary import oov_share

    vocabulary = frozenset({"the", "film", "was", "great"})
    assert oov_share(["The film was great.", "great great"], vocabulary) == 0.0
    # "greatad" and "andad" are sub-word soup: 2 of the 6 words, pooled over the completions
    assert oov_share(["the film was greatad", "andad great"], vocabulary) == pytest.approx(2 / 6)
    assert oov_share(["", "..."], vocabulary) == 0.0  # no words at all


def test_validation_measures_oov_only_with_a_vocabulary(models):
    policy, reference, tokenizer = models
    assert "oov_share" not in make_validator(tokenizer).evaluate(policy, reference, step=0)
    validator = Validator(
        tokenizer,
        VaderScorer(),
        PROMPTS,
        max_new_tokens=12,
        temperature=1.0,
        seed=0,
        vocabulary=frozenset({"the"}),
    )
    record = validator.evaluate(policy, reference, step=0)
    texts = [sample["completion"] for sample in record["samples"]]
    from exercise.tiny.vocabulary import oov_share

    assert record["oov_share"] == pytest.approx(oov_share(texts, frozenset({"the"})))


def test_mean_group_std_is_the_spread_group_scaling_divides_by():
    # (the training-side spread, logged next to the validation metrics as reward/group_std)
    from exercise.reward_pipeline import mean_group_std

    prompts = ["a", "b", "a", "b", "c"]  # groups by prompt, in any order; "c" has one completion: no spread
    rewards = [1.0, 0.5, 3.0, 0.5, 9.0]
    assert mean_group_std(prompts, rewards) == pytest.approx((2**0.5 + 0.0) / 2)  # Bessel-corrected, like TRL
    assert mean_group_std(["a", "b"], [1.0, 2.0]) is None
