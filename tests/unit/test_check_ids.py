"""Check ids are written out where their checks are registered, so that searching the code for an id (one the
rubric, a report or a gradebook shows) finds the check: ``grep -rn '"kl_forward.direction"' grader/checks``."""

from __future__ import annotations

import ast
from pathlib import Path

from grader.checks import REGISTRY
from grader.grading.rubric import load_rubric

CHECKS = Path(__file__).resolve().parents[2] / "grader" / "checks"


def _registered_literally() -> dict[str, list[str]]:
    """Every string written as a key of a dict display in grader/checks/ (a registry: id -> check), and where."""
    found: dict[str, list[str]] = {}
    for path in sorted(CHECKS.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Dict):
                for key in node.keys:
                    if isinstance(key, ast.Constant) and isinstance(key.value, str):
                        found.setdefault(key.value, []).append(str(path.relative_to(CHECKS.parents[1])))
    return found


def test_every_rubric_id_is_registered_under_its_literal_in_the_checks() -> None:
    literal = _registered_literally()
    missing = [e.check_id for e in load_rubric().entries if e.check_id not in literal]
    assert not missing, (
        f"{missing}: no registry in grader/checks/ writes these ids out; register each check as "
        '{"<id>": check} (no f-string), so that searching for the id finds its code'
    )


def test_every_registered_check_is_in_the_rubric_and_written_out() -> None:
    rubric = {e.check_id for e in load_rubric().entries}
    literal = _registered_literally()
    assert set(REGISTRY) - rubric == set(), "registered checks the rubric does not score"
    assert [i for i in REGISTRY if i not in literal] == []
    # the instructor's grader (with the answer key) registers every check the rubric names, hidden ones too
    assert rubric - set(REGISTRY) == set()


def test_each_id_is_registered_once() -> None:
    literal = _registered_literally()
    twice = {i: where for i in REGISTRY if len(where := literal.get(i, [])) > 1}
    assert not twice, f"ids written as registry keys in more than one place: {twice}"
