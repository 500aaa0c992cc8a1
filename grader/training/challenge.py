"""The tuning challenge's configuration: the one run a student designs (``TRAINING_CHALLENGE`` in rewards.py).

The original exercise asks students to "tune the reward, the regularization, and the training configuration to
achieve both positive sentiment and sensible responses". The student declares that configuration beside the
functions, as a dict of plain values::

    TRAINING_CHALLENGE = {"kl_type": "forward", "kl_coef": 0.3, "reward_shaping": "linear",
                          "learning_rate": 6e-4, "max_steps": 40}

It is read from the file's syntax tree, never by running the submission (as ``SHAPING_GOAL`` is: see
:mod:`grader.checks.goals`), and bounded so that the run fits a grade's time budget. The engine makes the run
with the student's functions where the configuration uses them; :mod:`grader.checks.challenge` scores where it
ends against the preset's targets (``[PRESET.challenge]`` in ``calibration/thresholds.toml``).
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from grader.contract import BACKWARD, FORWARD, SHAPING, top_level_assignments

NAME = "TRAINING_CHALLENGE"


@dataclass(frozen=True)
class ChallengeConfig:
    """One training run's choices; the rest (model, prompts, batch, seed) are the graded runs' own."""

    #: the KL penalty: "none", "forward" (your kl_penalty_forward) or "backward" (your kl_penalty_backward)
    kl_type: str = "none"
    #: the penalty's coefficient, 0 to 2
    kl_coef: float = 0.1
    #: the reward: "linear" (the sentiment score itself) or "shaped" (your shaped_reward)
    reward_shaping: str = "linear"
    #: the optimiser's learning rate, 1e-5 to 1e-3
    learning_rate: float = 1e-3
    #: GRPO steps, 20 to the preset's limit (the tiny preset: 120)
    max_steps: int = 40

    @property
    def needs(self) -> tuple[str, ...]:
        """The student functions this run trains with."""
        penalty = {"forward": (FORWARD,), "backward": (BACKWARD,)}.get(self.kl_type, ())
        return ((SHAPING,) if self.reward_shaping == "shaped" else ()) + penalty

    def train_fields(self) -> dict[str, Any]:
        """What the run's ``exercise.config.TrainConfig`` takes from this configuration."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def command(self, preset: str, seed: int) -> str:
        """The student's own run of it: same settings as the grader's (the graded runs' validation prompts)."""
        return (
            f"nox -s train -- --preset {preset} --seed {seed} --kl_type {self.kl_type} --kl_coef {self.kl_coef:g} "
            f"--reward_shaping {self.reward_shaping} --learning_rate {self.learning_rate:g} "
            f"--max_steps {self.max_steps} --validation_prompts 24"
        )


_CHOICES = {"kl_type": ("none", "forward", "backward"), "reward_shaping": ("linear", "shaped")}
_RANGES = {"kl_coef": (0.0, 2.0), "learning_rate": (1e-5, 1e-3)}
MIN_STEPS = 20


@dataclass(frozen=True)
class Declaration:
    """What the file declares: a usable configuration, or None and why (``problem``, for the student)."""

    config: ChallengeConfig | None
    problem: str = ""


def read_challenge(path: str | Path, max_steps: int) -> Declaration:
    """The ``TRAINING_CHALLENGE`` of the file at ``path``, validated (``max_steps``: the preset's limit)."""
    try:
        tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError) as exc:
        return Declaration(None, f"the file could not be read ({type(exc).__name__})")
    # the last assignment is what the module ends up with (a bare annotation assigns nothing)
    values = [v for v in top_level_assignments(tree, NAME) if v is not None]
    value = values[-1] if values else None
    if value is None:
        return Declaration(None, f"no {NAME} = {{...}} at the top level of your rewards.py")
    try:
        data = ast.literal_eval(value)
    except (ValueError, TypeError, SyntaxError):
        return Declaration(None, f"{NAME} must be a dict of plain values (strings and numbers), written out")
    if not isinstance(data, dict):
        return Declaration(None, f"{NAME} must be a dict, not {type(data).__name__}")
    return validate(data, max_steps)


def validate(data: dict[Any, Any], max_steps: int) -> Declaration:
    known = {f.name for f in fields(ChallengeConfig)}
    unknown = sorted(str(k) for k in data if k not in known)
    if unknown:
        return Declaration(None, f"{NAME} has unknown keys {unknown}; the keys are {sorted(known)}")
    missing = sorted(known - set(data))
    if missing:
        return Declaration(None, f"{NAME} misses {missing}; give every key: {sorted(known)}")
    for key, choices in _CHOICES.items():
        if data[key] not in choices:
            return Declaration(None, f"{NAME}[{key!r}] must be one of {list(choices)}, not {data[key]!r}")
    for key, (low, high) in _RANGES.items():
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return Declaration(None, f"{NAME}[{key!r}] must be a number, not {value!r}")
        if not low <= value <= high:
            return Declaration(None, f"{NAME}[{key!r}] must be between {low:g} and {high:g}, not {value:g}")
    steps = data["max_steps"]
    if isinstance(steps, bool) or not isinstance(steps, int) or not MIN_STEPS <= steps <= max_steps:
        return Declaration(
            None,
            f"{NAME}['max_steps'] must be a whole number from {MIN_STEPS} to {max_steps} (what a grade's time "
            f"budget holds), not {steps!r}",
        )
    return Declaration(
        ChallengeConfig(
            kl_type=data["kl_type"],
            kl_coef=float(data["kl_coef"]),
            reward_shaping=data["reward_shaping"],
            learning_rate=float(data["learning_rate"]),
            max_steps=steps,
        )
    )
