"""An in-process stand-in for the sandboxed submission, for fast tests of the checks.

It calls plain Python functions directly, but treats their inputs and outputs the way the worker does: arguments
arrive as fresh copies of JSON data, outputs (list, numpy array, torch tensor) are converted to a list of floats
or rejected as invalid, exceptions become ``error`` outcomes, and in-place changes to the arguments are reported
in ``inputs_mutated``.
"""

from __future__ import annotations

import importlib.util
import json
import math
import numbers
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from grader.contract import CallOutcome

ROOT = Path(__file__).resolve().parents[2]


def load_module(path: Path | str, name: str | None = None) -> ModuleType:
    """Import a submission file by path (``reference/`` is not an installed package)."""
    path = Path(path)
    spec = importlib.util.spec_from_file_location(name or f"submission_{path.stem}_{abs(hash(path))}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def reference_module() -> ModuleType:
    return load_module(ROOT / "reference" / "rewards.py", "reference_rewards_for_tests")


def exercise_module() -> ModuleType:
    return load_module(ROOT / "exercise" / "rewards.py", "exercise_rewards_for_tests")


def _to_floats(value: Any) -> list[float] | str:
    """The worker's conversion: a 1-D sequence of real numbers -> list[float]; otherwise why not."""
    if hasattr(value, "detach"):  # torch tensor
        value = value.detach().cpu()
    if hasattr(value, "tolist") and not isinstance(value, (list, tuple)):
        if getattr(value, "ndim", 1) != 1:
            return f"an array of shape {tuple(getattr(value, 'shape', ()))}"
        value = value.tolist()
    if not isinstance(value, (list, tuple)):
        return f"a {type(value).__name__}"
    out = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, numbers.Real):
            return f"a sequence containing a {type(item).__name__}"
        out.append(float(item))
    return out


class FakeSubmission:
    """``Submission`` over a module or a mapping of function name -> callable."""

    def __init__(self, functions: ModuleType | Mapping[str, Callable[..., Any]]) -> None:
        if isinstance(functions, ModuleType):
            functions = {
                name: getattr(functions, name) for name in dir(functions) if not name.startswith("_")
            }
        self.functions = dict(functions)
        self.calls = 0

    def call(self, function: str, *args: Any, **kwargs: Any) -> CallOutcome:
        self.calls += 1
        fn = self.functions.get(function)
        if not callable(fn):
            return CallOutcome("missing", message=f"no function named {function!r}")
        wire = json.dumps([args, kwargs])  # what crosses the pipe
        call_args, call_kwargs = json.loads(wire)
        try:
            result = fn(*call_args, **call_kwargs)
        except Exception as exc:  # noqa: BLE001 - a submission may raise anything
            return CallOutcome("error", message=f"{type(exc).__name__}: {exc}"[:500])
        try:
            mutated = json.dumps([call_args, call_kwargs]) != wire
        except (TypeError, ValueError):
            mutated = True
        converted = _to_floats(result)
        if isinstance(converted, str):
            return CallOutcome("invalid", message=converted, inputs_mutated=mutated)
        return CallOutcome("ok", value=converted, inputs_mutated=mutated)


def is_finite_list(values: list[float]) -> bool:
    return all(math.isfinite(v) for v in values)
