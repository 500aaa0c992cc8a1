"""The student contract is stated once (``exercise.functions.StudentFunctions``) and everything follows it."""

from __future__ import annotations

import ast
import dataclasses
import inspect
from pathlib import Path

import pytest

from exercise.functions import NAMES, RewardFunctions, StudentFunctions, load_module_from_path

ROOT = Path(__file__).resolve().parents[2]


def _protocol_signature(name: str) -> inspect.Signature:
    signature = inspect.signature(getattr(StudentFunctions, name))
    return signature.replace(parameters=list(signature.parameters.values())[1:])  # without self


@pytest.mark.parametrize("path", ["exercise/rewards.py", "reference/rewards.py"])
def test_the_stub_and_the_reference_have_the_protocols_signatures(path):
    if not (ROOT / path).is_file():
        pytest.skip(f"{path} is not in this copy (a handout has no reference/)")
    module = load_module_from_path(ROOT / path, f"contract_probe_{Path(path).parent.name}")
    for name in NAMES:
        got = inspect.signature(getattr(module, name))
        expected = _protocol_signature(name)
        assert [(p.name, p.default) for p in got.parameters.values()] == [
            (p.name, p.default) for p in expected.parameters.values()
        ], name


def test_the_names_come_from_the_protocol_in_its_order():
    declared = [
        n for n, v in vars(StudentFunctions).items() if inspect.isfunction(v) and not n.startswith("_")
    ]
    assert list(NAMES) == declared
    assert [f.name for f in dataclasses.fields(RewardFunctions)][: len(NAMES)] == list(NAMES)


def test_no_production_module_spells_a_name_as_a_string():
    """Other code takes the names from exercise.functions (FORWARD, BACKWARD, SHAPING), so renaming a function
    is one edit; prose mentioning a name inside a longer message is fine."""
    spelled = []
    for root in ("exercise", "grader"):
        for path in sorted((ROOT / root).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Constant) and node.value in NAMES:
                    spelled.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value!r}")
    assert not spelled, "\n".join(spelled)
