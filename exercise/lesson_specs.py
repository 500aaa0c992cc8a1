"""The lesson's runs, declared: its settings (:class:`LessonConfig`, the command's flags), its configurations and
sweep as :class:`RunSpec` s (one per run and seed), and each run's training config and directory name."""

from __future__ import annotations

from dataclasses import dataclass, field

from .presets import TINY


@dataclass
class LessonConfig:
    seeds: list[int] = field(
        default_factory=lambda: [42, 7, 0, 1, 2],
        metadata={"help": "Seeds for every configuration of the lesson (at least 2 for a spread)."},
    )
    sweep_seeds: list[int] = field(
        default_factory=lambda: [42, 7, 0],
        metadata={"help": "Seeds for the kl_coef sweep (runs shared with the configurations are made once)."},
    )
    sweep_coefs: list[float] = field(
        default_factory=lambda: [0.03, 0.1, 0.3, 1.0],
        metadata={"help": "kl_coef values of the sweep, for both penalties."},
    )
    sweep: bool = field(
        default=True, metadata={"help": "Make the kl_coef sweep (--no_sweep: the configurations only)."}
    )
    max_steps: int = field(
        default=TINY.max_steps, metadata={"help": "GRPO steps per run (the tiny preset's)."}
    )
    validation_prompts: int = field(
        default=24,
        metadata={
            "help": "Validation prompts per evaluation (the first N of 64; fewer is cheaper, noisier)."
        },
    )
    eval_every: int = field(default=TINY.eval_every, metadata={"help": "Validate every this many steps."})
    learning_rate: float = field(
        default=TINY.learning_rate, metadata={"help": "Learning rate of every run but the high-rate control."}
    )
    high_learning_rate: float = field(
        default=1e-3,
        metadata={"help": "The learning rate of the `--scale_rewards none` control run (0 leaves it out)."},
    )
    workers: int = field(
        default=2, metadata={"help": "Runs at a time, each in its own process with one torch thread."}
    )
    runs_dir: str = field(
        default="outputs/lesson", metadata={"help": "Where each run's summary.json and log go."}
    )
    docs_dir: str = field(
        default="docs", metadata={"help": "Where lesson-runs.md and the figures (figures/) are written."}
    )
    reuse: bool = field(
        default=True,
        metadata={
            "help": "Reuse finished runs with the same settings from --runs_dir (--no_reuse: make all again)."
        },
    )
    report_only: bool = field(
        default=False,
        metadata={
            "help": "Make no runs: write the document and figures from the runs finished so far in --runs_dir "
            "(the others are listed as not run), e.g. while a long lesson is still running."
        },
    )


@dataclass(frozen=True)
class RunSpec:
    """One training run: a configuration of the lesson (or a sweep point) at one seed."""

    label: str  # the configuration's name in the tables
    seed: int
    flags: tuple[tuple[str, object], ...]  # TrainConfig fields beyond the common ones, in a fixed order

    @property
    def cli_flags(self) -> str:
        parts = []
        for name, value in self.flags:
            if value is True:
                parts.append(f"--{name}")
            else:
                parts.append(f"--{name} {value:g}" if isinstance(value, float) else f"--{name} {value}")
        return " ".join(parts)


# The lesson's configurations: the label, the flags, and what each stands for in the README.
SOLUTION = (("use_solution", True),)  # the reference penalties and shaping (the stubs are not implemented)
CONFIGURATIONS: list[tuple[str, tuple[tuple[str, object], ...], str]] = [
    ("plain", (), "no penalty, group scaling (TRL's default): the run that hacks the reward"),
    ("forward", (("kl_type", "forward"), ("kl_coef", 0.1), *SOLUTION), "the KL(pi‖ref) penalty"),
    ("backward", (("kl_type", "backward"), ("kl_coef", 0.1), *SOLUTION), "the KL(ref‖pi) penalty"),
    ("none", (("scale_rewards", "none"),), "no penalty, advantages not divided by the group's spread"),
    (
        "shaped",
        (("reward_shaping", "shaped"), ("kl_type", "forward"), ("kl_coef", 0.1), *SOLUTION),
        "reference shaping + forward",
    ),
]
HIGH_LR_LABEL = "none, high lr"


def lesson_specs(config: LessonConfig) -> list[RunSpec]:
    """Every run the lesson needs, configurations first (their table is the lesson's). Specs with the same
    settings (the sweep's forward at 0.1 and the forward configuration) share one run: see :func:`make_runs`."""
    specs: list[RunSpec] = []
    lr = ("learning_rate", config.learning_rate)
    for seed in config.seeds:
        for label, flags, _ in CONFIGURATIONS:
            specs.append(RunSpec(label, seed, (*flags, lr)))
        if config.high_learning_rate > 0:
            high = ("learning_rate", config.high_learning_rate)
            specs.append(RunSpec(HIGH_LR_LABEL, seed, (("scale_rewards", "none"), high)))
    for seed in config.sweep_seeds if config.sweep else []:
        for kl_type in ("forward", "backward"):
            for coef in config.sweep_coefs:
                flags = (("kl_type", kl_type), ("kl_coef", float(coef)), *SOLUTION, lr)
                specs.append(RunSpec(f"sweep {kl_type} {coef:g}", seed, flags))
    return specs


def train_config(spec: RunSpec, config: LessonConfig):
    """The :class:`~exercise.config.TrainConfig` of one run."""
    from .config import TrainConfig

    return TrainConfig(
        preset="tiny",
        seed=spec.seed,
        max_steps=config.max_steps,
        eval_every=config.eval_every,
        validation_prompts=config.validation_prompts,
        save_model=False,
        quiet=True,
        **dict(spec.flags),
    )


def run_dir_name(spec: RunSpec, config: LessonConfig) -> str:
    """A directory per distinct run: the same settings give the same name, so a sweep point equal to a
    configuration (forward at 0.1) is made once."""
    train = train_config(spec, config)
    return (
        f"{train.run_name}_lr{train.learning_rate:g}_steps{config.max_steps}_val{config.validation_prompts}"
    )
