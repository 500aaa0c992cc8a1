"""Presets: the defaults that make a run the real GPU exercise (``gpt2``) or the offline CPU one (``tiny``).

A preset only fills in the :class:`~exercise.config.TrainConfig` fields left at ``None``; flags given on the command
line always win. All GRPO hyper-parameters of both presets live here, nowhere else.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .config import TrainConfig
from .errors import ModelUnavailableError, PipelineError

VADER = "vader"


@dataclass(frozen=True)
class PresetDefaults:
    model_name: str
    sentiment_model: str
    max_steps: int
    num_generations: int
    prompts_per_step: int
    max_completion_length: int
    learning_rate: float
    temperature: float
    eval_every: int
    # With --use_peft: LoRA adapters start at zero and move only a low-rank slice of each weight, so they need a
    # learning rate about 10x the full fine-tuning one to move the policy as far in the same number of steps.
    lora_learning_rate: float
    num_threads: int | None = None  # None: torch's default


# The original exercise's GPU setup: GPT-2 small and the 5-star review classifier it used, 8 completions per
# prompt. The remaining values are conventional for full fine-tuning GPT-2 small with GRPO (small learning rate,
# completions long enough for a sentence or two).
GPT2 = PresetDefaults(
    model_name="openai-community/gpt2",
    sentiment_model="nlptown/bert-base-multilingual-uncased-sentiment",
    max_steps=200,
    num_generations=8,
    prompts_per_step=8,
    max_completion_length=48,
    learning_rate=1e-5,
    temperature=1.0,
    eval_every=20,
    lora_learning_rate=1e-4,
)

# The offline setup: the small GPT-2-architecture model shipped in exercise/assets (see exercise/tiny) scored by
# VADER. Sized so that 60 steps take about a minute on two CPU cores and visibly raise validation sentiment.
TINY = PresetDefaults(
    model_name="",  # resolved at run time to the shipped directory, see tiny_model_path()
    sentiment_model=VADER,
    max_steps=60,
    num_generations=8,
    prompts_per_step=2,
    max_completion_length=24,
    learning_rate=3e-4,
    temperature=1.0,
    eval_every=10,
    lora_learning_rate=3e-3,
    num_threads=1,
)

PRESETS = {"gpt2": GPT2, "tiny": TINY}


def tiny_model_path() -> Path:
    """Directory of the shipped tiny model (built by ``python -m exercise.tiny.build``)."""
    try:
        from .tiny import tiny_model_dir  # the tiny-model package owns where its weights live
    except ImportError:
        return Path(__file__).resolve().parent / "assets" / "tiny-gpt2"
    return Path(tiny_model_dir())


def pick_preset(preset: str) -> str:
    """``auto`` means the real exercise where there is a GPU to run it, the offline one otherwise."""
    if preset != "auto":
        return preset
    import torch

    return "gpt2" if torch.cuda.is_available() else "tiny"


def resolve_config(config: TrainConfig) -> TrainConfig:
    """Return a copy of ``config`` with a concrete preset and every ``None`` field set to the preset's value."""
    name = pick_preset(config.preset)
    defaults = PRESETS[name]
    changes: dict = {"preset": name}
    for field_name in (
        "model_name",
        "sentiment_model",
        "max_steps",
        "num_generations",
        "prompts_per_step",
        "max_completion_length",
        "learning_rate",
        "temperature",
        "eval_every",
        "num_threads",
    ):
        if getattr(config, field_name) is None:
            changes[field_name] = getattr(defaults, field_name)
    if config.use_peft and config.learning_rate is None:
        changes["learning_rate"] = defaults.lora_learning_rate
    if name == "tiny" and not changes.get("model_name", config.model_name):
        changes["model_name"] = str(tiny_model_path())
    resolved = config.replace(**changes)
    if resolved.output_dir is None:
        resolved = resolved.replace(output_dir=str(Path("outputs") / resolved.run_name))
    _check_values(resolved)
    return resolved


def _check_values(config: TrainConfig) -> None:
    checks = [
        (config.max_steps >= 1, "--max_steps must be at least 1"),
        (
            config.num_generations >= 2,
            "--num_generations must be at least 2 (GRPO compares completions in a group)",
        ),
        (config.prompts_per_step >= 1, "--prompts_per_step must be at least 1"),
        (config.max_completion_length >= 1, "--max_completion_length must be at least 1"),
        (config.temperature > 0, "--temperature must be positive"),
        (config.eval_every >= 1, "--eval_every must be at least 1"),
        (config.num_threads is None or config.num_threads >= 1, "--num_threads must be at least 1"),
        (config.kl_coef >= 0, "--kl_coef must be non-negative"),
        (config.beta >= 0, "--beta must be non-negative"),
    ]
    for ok, message in checks:
        if not ok:
            raise PipelineError(message)


def model_unavailable(name: str, role: str, preset: str, cause: BaseException) -> ModelUnavailableError:
    """The one message for a model that can't be loaded: why, and what to run instead."""
    path = Path(name).expanduser()
    if path.exists() or name.startswith((".", "/", "~")):
        if path.exists():
            hint = f"{role} {name!r} could not be loaded from disk ({type(cause).__name__}: {_first_line(cause)})."
        else:
            hint = f"{role} directory {name!r} does not exist."
        if path.resolve() == tiny_model_path().resolve():
            hint += " Rebuild the tiny model with `python -m exercise.tiny.build`."
        return ModelUnavailableError(hint)
    offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() not in ("0", "", "false", "no")
    if offline:
        why = "offline mode (HF_HUB_OFFLINE) is set and it is not in the local cache"
    else:
        why = "it could not be downloaded from the Hugging Face Hub (no network, or a wrong name) and is not cached"
    return ModelUnavailableError(
        f"{role} {name!r} is not available: {why}. "
        f"Run offline with `--preset tiny`, or download it once with network access."
    )


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else ""
