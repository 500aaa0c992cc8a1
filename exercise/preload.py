"""Importing this module imports what every training run imports before its first step: torch, transformers,
datasets, TRL's trainer classes and the pipeline's modules.

Why: those imports cost ~6 CPU-seconds per process (measured 2026-12-05; a 40-step tiny run is ~20 CPU-s in
all). A process that makes several runs, each in a process of its own, imports this once and forks the runs
from it: the lesson's worker pool (``forkserver`` with this module preloaded, exercise/lesson_runs.py) and the
grader's training lanes (grader/training/lane.py). Importing torch does not initialise CUDA, so a process forked
after this can still use the GPU.

A module that fails to import is skipped here: the run that needs it reports the failure itself, with its own
record and log.
"""

from __future__ import annotations

import importlib
import warnings

MODULES = (
    "torch",
    "transformers",
    "datasets",
    "trl",
    "exercise.callbacks",
    "exercise.logprobs",
    "exercise.reward_pipeline",
    "exercise.sentiment",
    "exercise.train",
    "exercise.validation",
)


def preload() -> None:
    """Import :data:`MODULES` and the trainer classes (which trl and transformers import lazily, on first use)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecation notices of the libraries: the runs print their own
        for name in MODULES:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 - see the module's docstring
                pass
        try:
            from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: F401
            from trl import GRPOConfig, GRPOTrainer  # noqa: F401
        except Exception:  # noqa: BLE001 - see the module's docstring
            pass


preload()
