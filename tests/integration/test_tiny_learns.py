"""The tiny offline preset is a working exercise: GRPO on the shipped model raises sentiment, fast."""

from __future__ import annotations

import pytest
from rich.console import Console

from exercise.config import TrainConfig
from exercise.functions import load_reward_functions
from exercise.presets import tiny_model_path
from exercise.train import run


def tiny_run(tmp_path, name, **changes):
    config = TrainConfig(preset="tiny", output_dir=str(tmp_path / name), quiet=True, **changes)
    result = run(config, load_reward_functions(use_solution=True), console=Console(quiet=True))
    assert result.ok, result.error
    return result


def _group_std(result) -> list[float]:
    """The spread of the rewards within each prompt's group, per logging step (what group scaling divides by)."""
    return [entry["reward/group_std"] for entry in result.train_log if "reward/group_std" in entry]


@pytest.mark.slow  # four 60-step runs, about 2 min on 2 cores
def test_sixty_steps_vanilla_hacks_for_the_reason_the_readme_gives_and_kl_keeps_it_close(tmp_path):
    from safetensors.torch import load_file

    vanilla = tiny_run(tmp_path, "vanilla", save_model=True)
    first, last = vanilla.history[0], vanilla.final
    assert 0.3 <= first["sentiment_mean"] <= 0.7  # step 0 sits mid-scale
    assert last["sentiment_mean"] >= first["sentiment_mean"] + 0.15
    # GRPO changed the model: most of its tensors moved.
    before = load_file(tiny_model_path() / "model.safetensors")
    after = load_file(tmp_path / "vanilla" / "model.safetensors")
    changed = [name for name in before if name in after and not before[name].equal(after[name])]
    assert len(changed) >= len(before) // 2
    # Reward hacking: the unregularised policy says the same few things.
    assert last["distinct_2"] < first["distinct_2"] and last["repetition"] > first["repetition"]

    # The mechanism the README gives: once the sentiment saturates, the rewards within a group differ by
    # thousandths (group scaling divides by that spread and blows them up into full advantages) ...
    spread = _group_std(vanilla)
    assert len(spread) >= 3 and spread[-1] < spread[0] / 20, spread
    # ... and without the division (--scale_rewards none) the same reward does not collapse the text in 60 steps.
    unscaled = tiny_run(tmp_path, "unscaled", scale_rewards="none", save_model=False)
    assert unscaled.final["sentiment_mean"] >= first["sentiment_mean"] + 0.15  # it still learns
    assert unscaled.final["distinct_2"] > last["distinct_2"] + 0.2
    assert unscaled.final["repetition"] < last["repetition"] - 0.2

    forward = tiny_run(tmp_path, "forward", kl_type="forward", save_model=False)
    assert forward.final["sentiment_mean"] >= first["sentiment_mean"] + 0.1
    assert forward.final["kl_forward"] < 0.6 * last["kl_forward"]

    hackable = tiny_run(tmp_path, "hackable", hackable_reward=True, save_model=False)
    assert hackable.final["hackable_mean"] > hackable.history[0]["hackable_mean"] + 0.1
