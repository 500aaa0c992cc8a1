"""The student contract, stated once: :class:`StudentFunctions`, the three functions ``exercise/rewards.py`` defines.

Everything else takes their names from here (:data:`FORWARD`, :data:`BACKWARD`, :data:`SHAPING`): the pipeline,
the grader's contract (``grader.contract``), its sandbox, training engine and checks. The pipeline never imports
``exercise.rewards`` itself: it is handed a :class:`RewardFunctions`, so the grader can pass proxies that call a
submission in a separate process, and ``--use_solution`` can pass the reference.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Protocol

from .errors import PipelineError


class StudentFunctions(Protocol):
    """What ``exercise/rewards.py`` defines (module-level functions; any implementation style: plain Python, numpy,
    torch). Inputs are plain lists; each function returns one float per completion (a list, or a 1-D array or
    tensor). The handout's stub carries the full instructions; the grader checks the properties in docs/design.md.
    """

    def kl_penalty_forward(
        self, log_probs_policy: list[list[float]], log_probs_ref: list[list[float]], kl_coef: float = 0.1
    ) -> list[float]:
        """Exercise 1: a penalty per completion that regularises KL(pi || pi_ref), from the per-token log-probs
        of each completion under the policy and the reference, scaled by ``kl_coef``."""
        ...

    def kl_penalty_backward(
        self, log_probs_policy: list[list[float]], log_probs_ref: list[list[float]], kl_coef: float = 0.1
    ) -> list[float]:
        """Exercise 1: a penalty per completion that regularises KL(pi_ref || pi), from the same inputs."""
        ...

    def shaped_reward(
        self, scores: list[float], completions: list[str], prompts: list[str] | None = None
    ) -> list[float]:
        """Exercise 2: rewards from the sentiment scores (in [0, 1]) and the texts, for the goal the student
        declares in ``SHAPING_GOAL``."""
        ...


#: The three names, in the order reports list them.
FORWARD = StudentFunctions.kl_penalty_forward.__name__
BACKWARD = StudentFunctions.kl_penalty_backward.__name__
SHAPING = StudentFunctions.shaped_reward.__name__
NAMES = (FORWARD, BACKWARD, SHAPING)

# Where each function is taught, for the "not implemented yet" message.
EXERCISES = {FORWARD: "Exercise 1", BACKWARD: "Exercise 1", SHAPING: "Exercise 2"}


@dataclass(frozen=True)
class RewardFunctions:
    """``kl_penalty_forward(lp_pi, lp_ref, kl_coef)``, ``kl_penalty_backward(...)``, ``shaped_reward(scores, completions, prompts)``."""

    kl_penalty_forward: Callable
    kl_penalty_backward: Callable
    shaped_reward: Callable
    source: str = "exercise/rewards.py"  # shown in error messages: which file to fix

    @classmethod
    def from_module(cls, module: ModuleType, source: str) -> RewardFunctions:
        missing = [name for name in NAMES if not callable(getattr(module, name, None))]
        if missing:
            raise PipelineError(f"{source} does not define {', '.join(missing)}")
        return cls(*(getattr(module, name) for name in NAMES), source=source)


def repo_root() -> Path:
    """The checkout the ``exercise`` package lives in (``reference/`` sits beside it, never installed)."""
    return Path(__file__).resolve().parent.parent


def load_reward_functions(use_solution: bool = False) -> RewardFunctions:
    """The student's ``exercise/rewards.py``, or with ``use_solution`` the reference ``reference/rewards.py``."""
    if not use_solution:
        return RewardFunctions.from_module(importlib.import_module("exercise.rewards"), "exercise/rewards.py")
    path = repo_root() / "reference" / "rewards.py"
    if not path.is_file():
        raise PipelineError(
            f"--use_solution needs the reference solution at {path}, which is not in this copy of the exercise "
            "(student handouts ship without it). Run without --use_solution to use exercise/rewards.py."
        )
    return RewardFunctions.from_module(
        load_module_from_path(path, "rl_sentiment_reference_rewards"), "reference/rewards.py"
    )


def load_module_from_path(path: Path, module_name: str) -> ModuleType:
    """Import a Python file by path, without putting its directory on ``sys.path``."""
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise PipelineError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
