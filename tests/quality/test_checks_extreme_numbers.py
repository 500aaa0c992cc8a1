"""Any finite float a submission returns is the submission's failure, never the grader's: 1.7e308, -1.7e308,
-0.0, subnormals, and long lists of them go through every property check (in process) and the whole CLI (through
the sandbox) without an internal error."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from grader.checks import REGISTRY
from grader.contract import CheckContext
from grader.grading.results import GradingResults
from grader.grading.rubric import load_rubric
from grader.grading.runner import run_check
from tests.support.check_ids import RUN_IDS
from tests.support.fake_submission import ROOT, FakeSubmission

CONTEXT = CheckContext(seed=0, max_examples=10)
EXTREMES = (1.7e308, -1.7e308, -0.0, 5e-324, -5e-324, 2.2250738585072014e-308)


def _constant(value: float) -> dict:
    def penalty(log_probs_policy, log_probs_ref, kl_coef=0.1):
        return [value] * len(log_probs_policy)

    def shaping(scores, completions, prompts=None):
        return [value] * len(scores)

    return {"kl_penalty_forward": penalty, "kl_penalty_backward": penalty, "shaped_reward": shaping}


def _alternating(log_probs_policy, log_probs_ref, kl_coef=0.1):
    return [1.7e308 if i % 2 else -1.7e308 for i in range(len(log_probs_policy))]


def _scaled(log_probs_policy, log_probs_ref, kl_coef=0.1):
    """Grows with the input, so the checks' sums and differences of outputs overflow."""
    return [kl_coef * 1e307 * (len(row) + 1) for row in log_probs_policy]


def _flood(log_probs_policy, log_probs_ref, kl_coef=0.1):
    return [1.7e308] * 10_000


SUBMISSIONS = {
    **{f"constant {v!r}": _constant(v) for v in EXTREMES},
    "alternating +-1.7e308": {
        "kl_penalty_forward": _alternating,
        "kl_penalty_backward": _alternating,
        "shaped_reward": lambda scores, completions, prompts=None: [1.7e308 * (2 * s - 1) for s in scores],
    },
    "scaled": {
        "kl_penalty_forward": _scaled,
        "kl_penalty_backward": _scaled,
        "shaped_reward": lambda scores, completions, prompts=None: [1.7e308 * s for s in scores],
    },
    "10000 values": {
        "kl_penalty_forward": _flood,
        "kl_penalty_backward": _flood,
        "shaped_reward": lambda scores, completions, prompts=None: [5e-324] * 10_000,
    },
}
PROPERTY_CHECKS = [cid for cid in REGISTRY if cid not in RUN_IDS]
#: The defining checks: every submission above is wrong, so each of them must fail it.
DEFINING = {c for c in PROPERTY_CHECKS if c.split(".")[1] in ("direction", "value", "value_random", "goal")}


@pytest.mark.slow  # over 10 s on 2 cores (measured with --durations)
@pytest.mark.parametrize("name", SUBMISSIONS)
def test_every_property_check_gives_a_verdict_on_extreme_floats(name):
    rubric = load_rubric()
    for check_id in PROPERTY_CHECKS:
        # run_check turns an exception in the check into an internal error ("not your fault"): none allowed
        result = run_check(rubric[check_id], REGISTRY[check_id], FakeSubmission(SUBMISSIONS[name]), CONTEXT)
        assert not result.internal_error, (check_id, result.output)
        assert result.output.strip(), check_id
        if check_id in DEFINING:
            assert result.score == 0 and not result.passed, (check_id, result.output)


def test_an_overflow_in_a_checks_arithmetic_is_explained():
    """The mean-over-tokens check sums the submission's single-token penalties: 1.7e308 each overflows fsum."""
    outcome = REGISTRY["kl_forward.mean_over_tokens"](FakeSubmission(_constant(1.7e308)), CONTEXT)
    assert outcome.fraction == 0.0
    assert "overflowed" in outcome.feedback and "moderate finite number" in outcome.feedback


@pytest.mark.slow  # over 10 s on 2 cores (measured with --durations)
def test_cli_grades_a_penalty_of_1_7e308_as_points_lost(tmp_path: Path):
    path = tmp_path / "rewards.py"
    path.write_text(
        "def kl_penalty_forward(log_probs_policy, log_probs_ref, kl_coef=0.1):\n"
        "    return [1.7e308] * len(log_probs_policy)\n\n"
        "kl_penalty_backward = kl_penalty_forward\n\n"
        "def shaped_reward(scores, completions, prompts=None):\n"
        "    return [1.7e308 * s for s in scores]\n"
    )
    results = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, "-m", "grader", "--submission", path, "--results", results, "--no-training"]
        + ["--max-examples", "10", "--quiet"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    graded = GradingResults.from_dict(json.loads(results.read_text()))
    assert not graded.internal_error
    assert not any(t.internal_error for t in graded.tests)
    mean = next(t for t in graded.tests if t.check_id == "kl_forward.mean_over_tokens")
    assert mean.score == 0 and "overflowed" in mean.output
