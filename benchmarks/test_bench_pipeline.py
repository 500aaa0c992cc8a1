"""Pipeline benchmarks (``nox -s bench``, i.e. ``pytest benchmarks --benchmark-enable``).

* log-prob extraction: one batched forward + gather vs. a per-token loop (one forward per prefix), batch 16 x 64
  completion tokens. Goal: >= 20x.
* a GRPO step of the tiny preset with ``--kl_type forward`` vs ``none``: the KL penalty's two extra forwards
  (policy and reference) should cost little next to sampling and the update. Goal: <= 1.3x.

The ``test_*_ratio`` tests time both sides in one run (best of a few repeats) and print the ratio next to its
goal; they assert only that the work was done, never a time (machines here are noisy: read the printed figures).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
from rich.console import Console

from exercise.config import TrainConfig
from exercise.functions import load_reward_functions
from exercise.logprobs import completion_logprobs, eval_mode
from exercise.presets import tiny_model_path
from exercise.train import run
from tests.support.tiny_models import make_tiny_gpt2

BATCH, PROMPT_TOKENS, COMPLETION_TOKENS = 16, 8, 64


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # Timings on a shared 2-core machine are only comparable with one intra-op thread (see the tiny preset).
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """The shipped tiny model when it has been built, else a random model of the same shape."""
    shipped = tiny_model_path()
    if (shipped / "config.json").exists():
        return shipped
    return make_tiny_gpt2(tmp_path_factory.mktemp("bench-model"), n_layer=4, n_embd=128, dropout=0.0)


@pytest.fixture(scope="module")
def batch(model_dir):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    generator = torch.Generator().manual_seed(0)
    vocab = model.config.vocab_size
    prompts = [
        torch.randint(0, vocab, (PROMPT_TOKENS - i % 3,), generator=generator).tolist() for i in range(BATCH)
    ]
    completions = [
        torch.randint(0, vocab, (COMPLETION_TOKENS - i % 5,), generator=generator).tolist()
        for i in range(BATCH)
    ]
    return model, prompts, completions


def per_token_loop(model, prompts, completions, temperature=1.0):
    """The naive way: for every completion token, a forward pass over its whole prefix."""
    rows = []
    with torch.no_grad(), eval_mode(model):
        for prompt, completion in zip(prompts, completions, strict=True):
            row = []
            for t, token in enumerate(completion):
                logits = model(input_ids=torch.tensor([prompt + completion[:t]])).logits[0, -1].float()
                row.append(torch.log_softmax(logits / temperature, -1)[token].item())
            rows.append(row)
    return rows


def best_of(fn, repeats):
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


@pytest.mark.benchmark(group="logprobs 16x64")
def test_logprobs_vectorised(benchmark, batch):
    model, prompts, completions = batch
    rows = benchmark(completion_logprobs, model, prompts, completions)
    assert [len(r) for r in rows] == [len(c) for c in completions]


@pytest.mark.benchmark(group="logprobs 16x64")
def test_logprobs_per_token_loop(benchmark, batch):
    model, prompts, completions = batch
    rows = benchmark.pedantic(per_token_loop, args=(model, prompts, completions), rounds=1, iterations=1)
    assert [len(r) for r in rows] == [len(c) for c in completions]


def test_logprobs_speedup_ratio(batch):
    model, prompts, completions = batch
    fast = best_of(lambda: completion_logprobs(model, prompts, completions), 5)
    slow = best_of(lambda: per_token_loop(model, prompts, completions), 1)
    ratio = slow / fast
    print(
        f"\nlog-prob extraction 16x64: vectorised {fast * 1e3:.1f} ms, per-token loop {slow * 1e3:.0f} ms,"
        f" {ratio:.0f}x (goal >= 20x)"
    )


def grpo_seconds_per_step(model_dir, tmp_path, kl_type, steps=20):
    config = TrainConfig(
        preset="tiny",
        model_name=str(model_dir),
        kl_type=kl_type,
        max_steps=steps,
        eval_every=10_000,
        validation_prompts=1,
        output_dir=str(tmp_path / kl_type),
        save_model=False,
        quiet=True,
    )
    result = run(config, load_reward_functions(use_solution=True), console=Console(quiet=True))
    assert result.ok, result.error
    return result.timing["seconds_per_step"]


@pytest.mark.parametrize("kl_type", ["none", "forward"])
@pytest.mark.benchmark(group="GRPO step (tiny preset)")
def test_grpo_step(benchmark, model_dir, tmp_path, kl_type):
    seconds = benchmark.pedantic(
        grpo_seconds_per_step, args=(model_dir, tmp_path, kl_type), rounds=1, iterations=1
    )
    benchmark.extra_info["seconds_per_step"] = seconds


def test_grpo_kl_overhead_ratio(model_dir, tmp_path):
    # Interleaved repeats, best of each: the machine's background load hits both sides alike.
    none, forward = [], []
    for _ in range(2):
        none.append(grpo_seconds_per_step(model_dir, tmp_path, "none"))
        forward.append(grpo_seconds_per_step(model_dir, tmp_path, "forward"))
    ratio = min(forward) / min(none)
    print(
        f"\nGRPO step: kl none {min(none):.3f} s, kl forward {min(forward):.3f} s, ratio {ratio:.2f} (goal <= 1.3)"
    )
