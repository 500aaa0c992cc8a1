"""The tiny offline preset is a working exercise: GRPO on the shipped model raises sentiment, fast."""

from __future__ import annotations

import pytest
from rich.console import Console

from exercise.config import TrainConfig
from exercise.functions import load_reward_functions
from exercise.presets import tiny_model_path
from exercise.train import run

pytestmark = pytest.mark.skipif(
    not (tiny_model_path() / "config.json").exists(),
    reason="tiny model not built (python -m exercise.tiny.build)",
)


def tiny_run(tmp_path, name, **changes):
    config = TrainConfig(preset="tiny", output_dir=str(tmp_path / name), quiet=True, **changes)
    result = run(config, load_reward_functions(use_solution=True), console=Console(quiet=True))
    assert result.ok, result.error
    return result


@pytest.mark.slow  # over 10 s on 2 cores (measured with --durations)
def test_thirty_steps_raise_sentiment_and_change_the_weights(tmp_path):
    from safetensors.torch import load_file

    result = tiny_run(tmp_path, "vanilla", max_steps=30, eval_every=30, save_model=True)
    first, last = result.history[0], result.final
    assert [first["step"], last["step"]] == [0, 30]
    assert last["sentiment_mean"] >= first["sentiment_mean"] + 0.1
    assert last["kl_forward"] > 0.05

    before = load_file(tiny_model_path() / "model.safetensors")
    after = load_file(tmp_path / "vanilla" / "model.safetensors")
    changed = [name for name in before if name in after and not before[name].equal(after[name])]
    assert len(changed) >= len(before) // 2


@pytest.mark.slow
def test_sixty_steps_vanilla_hacks_and_kl_keeps_it_close(tmp_path):
    vanilla = tiny_run(tmp_path, "vanilla", save_model=False)
    first, last = vanilla.history[0], vanilla.final
    assert 0.3 <= first["sentiment_mean"] <= 0.7  # step 0 sits mid-scale
    assert last["sentiment_mean"] >= first["sentiment_mean"] + 0.15
    assert vanilla.wall_time_s <= 60
    # Reward hacking: the unregularised policy says the same few things.
    assert last["distinct_2"] < first["distinct_2"] and last["repetition"] > first["repetition"]

    forward = tiny_run(tmp_path, "forward", kl_type="forward", save_model=False)
    assert forward.final["sentiment_mean"] >= first["sentiment_mean"] + 0.1
    assert forward.final["kl_forward"] < 0.6 * last["kl_forward"]

    hackable = tiny_run(tmp_path, "hackable", hackable_reward=True, save_model=False)
    assert hackable.final["hackable_mean"] > hackable.history[0]["hackable_mean"] + 0.1
