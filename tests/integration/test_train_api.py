"""``exercise.train.run``: the programmatic API the grader drives with its own reward functions."""

from __future__ import annotations

import math

import pytest
from rich.console import Console

from exercise.config import TrainConfig
from exercise.functions import RewardFunctions
from exercise.train import RunResult, run

HISTORY_KEYS = {"step", "sentiment_mean", "kl_forward", "kl_backward", "distinct_2", "repetition"}


def k1(lp, lr, kl_coef=0.1):
    return [
        kl_coef * sum(a - b for a, b in zip(p, r, strict=True)) / len(p) if p else 0.0
        for p, r in zip(lp, lr, strict=True)
    ]


def shaping(scores, completions, prompts=None):
    return list(scores)


def config(tiny_gpt2_dir, tmp_path, **changes):
    base = TrainConfig(
        preset="tiny",
        model_name=str(tiny_gpt2_dir),
        max_steps=2,
        eval_every=1,
        validation_prompts=3,
        max_completion_length=8,
        output_dir=str(tmp_path / "run"),
        save_model=False,
        quiet=True,
    )
    return base.replace(**changes)


def quiet_run(cfg, functions=None) -> RunResult:
    return run(cfg, functions, console=Console(quiet=True))


def test_run_with_custom_functions(tiny_gpt2_dir, tmp_path):
    calls = []

    def counting_k1(lp, lr, kl_coef=0.1):
        calls.append([len(row) for row in lp])
        return k1(lp, lr, kl_coef)

    result = quiet_run(
        config(tiny_gpt2_dir, tmp_path, kl_type="forward"), RewardFunctions(counting_k1, k1, shaping)
    )
    assert result.ok, result.error
    assert [r["step"] for r in result.history] == [0, 1, 2]
    assert HISTORY_KEYS <= set(result.final)
    assert all(math.isfinite(result.final[k]) for k in HISTORY_KEYS)
    # preflight + one call per step, each with a whole batch (2 prompts x 8 completions) of ragged rows <= 8 tokens
    assert len(calls) == 3 and all(len(c) == 16 and max(c) <= 8 for c in calls[1:])
    assert result.timing["steps"] == 2 and result.timing["seconds_per_step"] > 0
    assert result.wall_time_s > 0 and (tmp_path / "run" / "summary.json").exists()


def test_nan_penalty_stops_the_run_naming_the_component(tiny_gpt2_dir, tmp_path):
    state = {"calls": 0}

    def nan_after_preflight(lp, lr, kl_coef=0.1):
        state["calls"] += 1
        return k1(lp, lr, kl_coef) if state["calls"] == 1 else [math.nan] * len(lp)

    result = quiet_run(
        config(tiny_gpt2_dir, tmp_path, kl_type="backward"), RewardFunctions(k1, nan_after_preflight, shaping)
    )
    assert not result.ok
    assert result.error == "kl_penalty_backward returned nan for completion 0"
    assert result.error_component == "kl_penalty_backward"
    assert [r["step"] for r in result.history] == [
        0
    ]  # the step-0 validation ran, the first step did not finish


def test_lora_uses_the_base_model_as_reference(tiny_gpt2_dir, tmp_path):
    result = quiet_run(
        config(tiny_gpt2_dir, tmp_path, kl_type="forward", use_peft=True, max_steps=1),
        RewardFunctions(k1, k1, shaping),
    )
    assert result.ok, result.error
    assert result.history[0]["kl_forward"] == pytest.approx(0.0, abs=1e-6)


def test_trl_beta_reference_is_reused(tiny_gpt2_dir, tmp_path):
    result = quiet_run(
        config(tiny_gpt2_dir, tmp_path, beta=0.04, max_steps=1), RewardFunctions(k1, k1, shaping)
    )
    assert result.ok, result.error
    assert any("kl" in entry for entry in result.train_log)


def test_bad_values_are_errors_not_exceptions(tiny_gpt2_dir, tmp_path):
    result = quiet_run(config(tiny_gpt2_dir, tmp_path, num_generations=1), RewardFunctions(k1, k1, shaping))
    assert result.error == "--num_generations must be at least 2 (GRPO compares completions in a group)"
