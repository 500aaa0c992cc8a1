"""``python -m grader.tools``: one entry point for every instructor command (subprocess smoke tests)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from grader.tools.__main__ import VERBS
from tests.support.cli import ROOT as REPO_ROOT


def _tools(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "grader.tools", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_without_a_verb_it_lists_every_verb():
    done = _tools()
    assert done.returncode == 0
    for verb in VERBS:
        assert f"\n  {verb} " in done.stdout, done.stdout


@pytest.mark.parametrize("verb", [v for v in VERBS if v != "record"])
def test_each_verb_has_help_under_its_own_name(verb):
    done = _tools(verb, "--help")
    assert done.returncode == 0, done.stderr
    usage = done.stdout.splitlines()[0]
    # grade and classroom keep their own names: students run them (classroom in their repository's workflow,
    # where a handout has no grader/tools)
    expected = {"grade": "python -m grader", "classroom": "python -m grader.classroom"}.get(
        verb, f"python -m grader.tools {verb}"
    )
    assert usage.startswith(f"usage: {expected}"), usage


def test_an_unknown_verb_says_which_verbs_exist():
    done = _tools("grades")
    assert done.returncode == 2
    assert "unknown verb 'grades'" in done.stderr and "batch" in done.stderr
