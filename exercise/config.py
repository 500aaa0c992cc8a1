"""The one configuration of a training run. The command line of ``python -m exercise.train`` is generated from it.

Every field's ``metadata["help"]`` is its ``--help`` text. ``Literal`` types become ``choices`` (a bad value gets
argparse's "invalid choice ... (choose from ...)"), booleans become ``--flag`` (and ``--no_flag`` when they default
to True). Fields that default to ``None`` are filled in from the preset (``exercise/presets.py``), so a preset is
a set of defaults and any flag given on the command line wins.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

Preset = Literal["auto", "gpt2", "tiny"]
RewardShaping = Literal["linear", "shaped"]
KLType = Literal["none", "forward", "backward"]
ScaleRewards = Literal["group", "batch", "none"]


@dataclass
class TrainConfig:
    # --- what is being learned -------------------------------------------------------------------------------
    preset: Preset = field(
        default="auto",
        metadata={
            "help": "gpt2: GPT-2 + a 5-star sentiment model (the real exercise, for a GPU). tiny: the small offline "
            "model shipped in exercise/assets + VADER (any laptop, about a minute). auto: gpt2 on CUDA, tiny otherwise."
        },
    )
    reward_shaping: RewardShaping = field(
        default="linear",
        metadata={
            "help": "linear: the reward is the sentiment score. shaped: your shaped_reward() (Exercise 2)."
        },
    )
    kl_type: KLType = field(
        default="none",
        metadata={
            "help": "KL penalty subtracted from the reward: none, forward = your kl_penalty_forward() "
            "(KL(pi || pi_ref)), backward = your kl_penalty_backward() (KL(pi_ref || pi)). Exercise 1."
        },
    )
    kl_coef: float = field(default=0.1, metadata={"help": "Coefficient of your KL penalty (--kl_type)."})
    beta: float = field(
        default=0.0,
        metadata={
            "help": "TRL's own KL term inside the GRPO loss (k3 estimator). 0 turns it off (the exercise)."
        },
    )
    hackable_reward: bool = field(
        default=False,
        metadata={
            "help": "Score with the exploitable fraction-of-positive-words reward instead of the sentiment model."
        },
    )
    negate_reward: bool = field(
        default=False,
        metadata={
            "help": "Optimise for negative sentiment (the score is negated before the KL penalty is subtracted)."
        },
    )
    use_solution: bool = field(
        default=False,
        metadata={"help": "Use the reference solution reference/rewards.py instead of exercise/rewards.py."},
    )
    use_peft: bool = field(
        default=False,
        metadata={
            "help": "Train LoRA adapters (peft) instead of all weights; the reference is the base model."
        },
    )
    scale_rewards: ScaleRewards = field(
        default="group",
        metadata={
            "help": "GRPO's advantage = reward - its group's mean, then divided by the std of the rewards of the "
            "group (group), of the whole batch (batch), or not at all (none). Dividing by the group's std makes "
            "tiny reward differences as large as big ones, and with them the KL penalty's scale: 'Group scaling' at the "
            "top of exercise/rewards.py."
        },
    )
    # --- models ----------------------------------------------------------------------------------------------
    model_name: str | None = field(
        default=None,
        metadata={
            "help": "Policy model: a Hugging Face Hub name or a local directory (default: the preset's)."
        },
    )
    sentiment_model: str | None = field(
        default=None,
        metadata={
            "help": "Sentiment scorer: 'vader', or a 5-star sequence classifier (Hub name or local directory). "
            "Default: the preset's."
        },
    )
    # --- GRPO ------------------------------------------------------------------------------------------------
    max_steps: int | None = field(default=None, metadata={"help": "Number of GRPO optimiser steps."})
    num_generations: int | None = field(
        default=None, metadata={"help": "Completions sampled per prompt (the GRPO group size)."}
    )
    prompts_per_step: int | None = field(
        default=None,
        metadata={"help": "Distinct prompts per step (per process); batch = this x num_generations."},
    )
    max_completion_length: int | None = field(
        default=None, metadata={"help": "Tokens sampled per completion."}
    )
    learning_rate: float | None = field(
        default=None,
        metadata={
            "help": "AdamW learning rate (default: the preset's; with --use_peft a 10x larger one for LoRA)."
        },
    )
    temperature: float | None = field(
        default=None,
        metadata={
            "help": "Sampling temperature; log-probs for the KL penalty are computed at the same temperature."
        },
    )
    seed: int = field(default=42, metadata={"help": "Random seed (training and validation sampling)."})
    num_threads: int | None = field(
        default=None,
        metadata={
            "help": "CPU threads for torch when training on CPU (default: the preset's; tiny uses 1 because its "
            "matrices are too small to gain from threads, and spare threads stall when cores are busy)."
        },
    )
    # --- validation and outputs ------------------------------------------------------------------------------
    eval_every: int | None = field(
        default=None,
        metadata={"help": "Validate on the held-out prompts every this many steps (and at step 0)."},
    )
    validation_prompts: int | None = field(
        default=None,
        metadata={
            "help": "Use only the first N of the 64 validation prompts (default: all of them; the grader's runs "
            "use fewer, see grader/training/calibration/thresholds.toml)."
        },
    )
    output_dir: str | None = field(
        default=None,
        metadata={
            "help": "Where summary.json, curves.png, samples.jsonl and the model go (default: outputs/<run>)."
        },
    )
    save_model: bool = field(
        default=True, metadata={"help": "Save the fine-tuned model to output_dir at the end."}
    )
    write_files: bool = field(
        default=True,
        metadata={
            "help": "Write summary.json, samples.jsonl and curves.png to output_dir at the end (the grader's "
            "runs keep their record instead: drawing the curves costs seconds of CPU per run)."
        },
    )
    wandb: bool = field(
        default=False, metadata={"help": "Also log to Weights & Biases (needs `pip install wandb`)."}
    )
    quiet: bool = field(
        default=False, metadata={"help": "Print only the final summary, no per-validation tables."}
    )

    def replace(self, **changes) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    @property
    def run_name(self) -> str:
        """A readable name for the run, used for the default output directory."""
        parts = [self.preset, self.reward_shaping, f"kl-{self.kl_type}"]
        if self.kl_type != "none":
            parts.append(f"coef{self.kl_coef:g}")
        if self.hackable_reward:
            parts.append("hackable")
        if self.negate_reward:
            parts.append("negated")
        if self.use_peft:
            parts.append("lora")
        if self.scale_rewards != "group":
            parts.append(f"scale-{self.scale_rewards}")
        parts.append(f"seed{self.seed}")
        return "_".join(parts)


def build_parser():
    """The command-line parser, generated from :class:`TrainConfig` (transformers' ``HfArgumentParser``)."""
    from transformers import HfArgumentParser

    parser = HfArgumentParser(TrainConfig)
    parser.prog = "python -m exercise.train"
    parser.description = "GRPO fine-tuning toward positive sentiment (the exercise's training run)."
    return parser


def parse_args(argv: Sequence[str] | None = None) -> TrainConfig:
    """Parse command-line flags into a :class:`TrainConfig`; unknown or invalid flags exit with status 2."""
    (config,) = build_parser().parse_args_into_dataclasses(args=None if argv is None else list(argv))
    return config
