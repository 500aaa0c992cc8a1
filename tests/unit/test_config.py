"""TrainConfig, its generated command line, and the presets that fill it in."""

from __future__ import annotations

import dataclasses
import re

import pytest

from exercise.config import TrainConfig, parse_args
from exercise.errors import PipelineError
from exercise.presets import GPT2, TINY, resolve_config, tiny_model_path


def test_every_field_has_help():
    for field in dataclasses.fields(TrainConfig):
        assert field.metadata.get("help"), field.name


def test_seed_flags_and_defaults():
    config = parse_args([])
    assert (config.preset, config.reward_shaping, config.kl_type) == ("auto", "linear", "none")
    assert (config.kl_coef, config.beta) == (0.1, 0.0)
    assert not (config.hackable_reward or config.negate_reward or config.use_solution or config.use_peft)
    assert not config.wandb and config.save_model


def test_flags_parse():
    config = parse_args(
        [
            "--kl_type",
            "backward",
            "--kl_coef",
            "0.3",
            "--negate_reward",
            "--no_save_model",
            "--max_steps",
            "5",
        ]
    )
    assert (config.kl_type, config.kl_coef, config.negate_reward, config.save_model, config.max_steps) == (
        "backward",
        0.3,
        True,
        False,
        5,
    )


@pytest.mark.parametrize("flag", ["--preset", "--kl_type", "--reward_shaping", "--scale_rewards"])
def test_bad_choice_exits_2_with_choices(flag, capsys):
    with pytest.raises(SystemExit) as info:
        parse_args([flag, "nonsense"])
    assert info.value.code == 2
    assert "invalid choice: 'nonsense' (choose from" in capsys.readouterr().err


def test_tiny_preset_fills_only_what_is_unset():
    config = resolve_config(TrainConfig(preset="tiny", max_steps=7))
    assert config.max_steps == 7
    assert config.num_generations == TINY.num_generations and config.learning_rate == TINY.learning_rate
    assert config.sentiment_model == "vader" and config.model_name == str(tiny_model_path())
    assert config.output_dir == "outputs/tiny_linear_kl-none_seed42"


def test_scale_rewards_defaults_to_trl_group_and_names_the_run_otherwise():
    assert parse_args([]).scale_rewards == "group"
    config = resolve_config(TrainConfig(preset="tiny", scale_rewards="none"))
    assert config.output_dir == "outputs/tiny_linear_kl-none_scale-none_seed42"


@pytest.mark.parametrize("preset", [GPT2, TINY])
def test_lora_gets_its_own_learning_rate_unless_one_is_given(preset):
    name = "gpt2" if preset is GPT2 else "tiny"
    assert resolve_config(TrainConfig(preset=name, use_peft=True)).learning_rate == preset.lora_learning_rate
    assert preset.lora_learning_rate >= 5 * preset.learning_rate
    assert resolve_config(TrainConfig(preset=name)).learning_rate == preset.learning_rate
    assert resolve_config(TrainConfig(preset=name, use_peft=True, learning_rate=2e-5)).learning_rate == 2e-5


def test_gpt2_preset_is_the_seed_setup():
    config = resolve_config(TrainConfig(preset="gpt2", kl_type="forward"))
    assert config.model_name == GPT2.model_name and "nlptown" in config.sentiment_model
    assert config.output_dir == "outputs/gpt2_linear_kl-forward_coef0.1_seed42"


@pytest.mark.parametrize(("cuda", "expected"), [(True, "gpt2"), (False, "tiny")])
def test_auto_picks_by_cuda(monkeypatch, cuda, expected):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert resolve_config(TrainConfig()).preset == expected


def test_bad_values_are_pipeline_errors():
    with pytest.raises(PipelineError, match="--temperature must be positive"):
        resolve_config(TrainConfig(preset="tiny", temperature=0.0))


def test_graded_runs_validate_on_the_fixed_subset_their_thresholds_were_calibrated_on():
    from exercise.prompts import VALIDATION_PROMPTS
    from grader.training.settings import RUNS, load_settings, train_config

    settings = load_settings("tiny")
    assert settings.runs.validation_prompts == 24 < len(VALIDATION_PROMPTS)
    for run in RUNS:
        config = resolve_config(TrainConfig(**train_config(run, settings, 0, "out")))
        assert config.validation_prompts == 24, run
    assert parse_args([]).validation_prompts is None  # the exercise's own runs: all of them


def test_graded_runs_take_the_grades_models_and_record_them_only_when_given():
    from grader.training.settings import load_settings, train_config

    settings = load_settings("gpt2")
    plain = train_config("forward", settings, 0, "out")
    assert (
        "model_name" not in plain and "sentiment_model" not in plain
    )  # the preset's, as a shared baseline's
    given = train_config("forward", settings, 0, "out", model_name="/models/gpt2", sentiment_model="vader")
    assert given == {**plain, "model_name": "/models/gpt2", "sentiment_model": "vader"}
    config = resolve_config(TrainConfig(**given))
    assert (config.preset, config.model_name, config.sentiment_model) == ("gpt2", "/models/gpt2", "vader")


@pytest.mark.parametrize(("calibrated", "chosen"), [(False, "tiny"), (True, "gpt2")])
def test_auto_chooses_gpt2_on_a_gpu_only_once_its_thresholds_are_calibrated(monkeypatch, calibrated, chosen):
    """Before: a GPU machine with GPT-2 cached graded with the gpt2 placeholders, silently."""
    import torch

    from grader.training import lane
    from grader.training.settings import load_settings

    gpt2 = load_settings("gpt2")
    monkeypatch.setattr(lane, "gpt2_models_available", lambda *_a: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(
        lane, "load_settings", lambda preset, *_a: dataclasses.replace(gpt2, calibrated=calibrated)
    )
    assert lane.resolve_preset("auto") == chosen
    assert lane.resolve_preset("gpt2") == "gpt2"  # asked for by name: whatever its calibration


def test_the_graded_runs_may_name_their_own_learning_rate(tmp_path):
    """[<preset>.runs] learning_rate (optional): the graded runs' rate instead of the preset's, recorded in each
    run's configuration; a file without it keeps the preset's, a bad one is refused with the key's name."""
    from grader.training.settings import SETTINGS_PATH, SettingsError, load_settings, train_config

    # the shipped file names one (the 40-step runs); without it the preset's rate
    text = re.sub(r"(?m)^learning_rate = .*\n", "", SETTINGS_PATH.read_text(encoding="utf-8"))
    without = tmp_path / "without.toml"
    without.write_text(text, encoding="utf-8")
    assert "learning_rate" not in train_config("forward", load_settings("tiny", without), 0, "")
    faster = tmp_path / "thresholds.toml"
    faster.write_text(
        text.replace("[tiny.runs]\n", "[tiny.runs]\nlearning_rate = 6e-4\n", 1), encoding="utf-8"
    )
    assert train_config("forward", load_settings("tiny", faster), 0, "")["learning_rate"] == 6e-4
    faster.write_text(text.replace("[tiny.runs]\n", "[tiny.runs]\nlearning_rate = -1\n", 1), encoding="utf-8")
    with pytest.raises(SettingsError, match="learning_rate must be positive"):
        load_settings("tiny", faster)
    faster.write_text(
        text.replace("[tiny.runs]\n", "[tiny.runs]\nlearning_rat = 1e-3\n", 1), encoding="utf-8"
    )
    with pytest.raises(SettingsError, match=r"may have \['learning_rate'\]"):
        load_settings("tiny", faster)
