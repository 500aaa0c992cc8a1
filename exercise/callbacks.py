"""What the Trainer calls back into during a run: the validation every ``eval_every`` steps, and one compact
console line per logging step instead of the Trainer's raw dicts.

Kept out of :mod:`exercise.validation` and :mod:`exercise.report` because they subclass transformers'
``TrainerCallback``, whose import costs seconds (it pulls in the Trainer): the metrics, the figures and
``python -m exercise.compare`` need none of that.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from rich.console import Console
from transformers import TrainerCallback

if TYPE_CHECKING:
    import torch

    from .validation import Validator


class ValidationCallback(TrainerCallback):
    """Runs the :class:`Validator` at step 0, every ``eval_every`` steps and after the last step (main process only)."""

    def __init__(
        self,
        validator: Validator,
        get_models: Callable[[], tuple[torch.nn.Module, torch.nn.Module | None]],
        eval_every: int,
        *,
        on_result: Callable[[dict], None],
        enabled: bool = True,
    ):
        self.validator = validator
        self.get_models = get_models
        self.eval_every = eval_every
        self.on_result = on_result
        self.enabled = enabled
        self.last_step: int | None = None
        self.seconds = 0.0

    def _run(self, step: int) -> None:
        if not self.enabled or step == self.last_step:
            return
        policy, frozen_reference = self.get_models()
        record = self.validator.evaluate(policy, frozen_reference, step)
        self.seconds += record["seconds"]
        self.last_step = step
        self.on_result(record)

    def on_train_begin(self, args, state, control, **kwargs):
        self._run(state.global_step)

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step % self.eval_every == 0 or state.global_step >= state.max_steps:
            self._run(state.global_step)


class LogLineCallback(TrainerCallback):
    """Prints one compact line per logging step (instead of the Trainer's raw dicts)."""

    KEYS = [
        ("reward", "reward"),
        ("sentiment/raw_mean", "score"),
        ("reward/kl_penalty_mean", "penalty"),
        ("reward/kl_penalty_std", "penalty-sd"),
        ("reward/group_std", "group-sd"),
        ("kl", "trl-kl"),
        ("entropy", "entropy"),
        ("completions/mean_length", "length"),
    ]

    def __init__(self, console: Console, max_steps: int, *, quiet: bool):
        self.console, self.max_steps, self.quiet = console, max_steps, quiet

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.quiet or not logs or "reward" not in logs:
            return
        parts = [f"{label} {logs[key]:.3f}" for key, label in self.KEYS if isinstance(logs.get(key), float)]
        self.console.print(f"[dim]step {state.global_step:>4}/{self.max_steps}[/]  " + "  ".join(parts))


class StepCallback(TrainerCallback):
    """Calls ``on_step(step, max_steps)`` after every optimisation step: how the grader shows a run's progress."""

    def __init__(self, on_step: Callable[[int, int], None]):
        self.on_step = on_step

    def on_step_end(self, args, state, control, **kwargs):
        self.on_step(state.global_step, state.max_steps)
