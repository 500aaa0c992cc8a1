"""Grader benchmarks (``nox -s bench``): a full grade and a ``--no-training`` grade of the reference, as users
run them (``python -m grader`` in a fresh process, warm environment), one round each.

Goals (2 CPU cores): the training checks together <= 60 s, the whole full grade <= 90 s, ``--no-training``
<= 10 s. The figures are printed and stored in the benchmark's ``extra_info``; nothing asserts a time (shared
machines are noisy: read the printed figures).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "reference" / "rewards.py"

pytestmark = pytest.mark.skipif(not REFERENCE.is_file(), reason="needs reference/ (instructor repository)")


def grade_seconds(tmp_path: Path, *extra: str) -> tuple[float, dict]:
    results = tmp_path / f"results{len(list(tmp_path.iterdir()))}.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    started = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "grader",
            "--submission",
            str(REFERENCE),
            "--results",
            str(results),
            "--quiet",
            *extra,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    seconds = time.perf_counter() - started
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return seconds, json.loads(results.read_text())


@pytest.mark.benchmark(group="grading the reference")
def test_grade_no_training(benchmark, tmp_path):
    seconds, data = benchmark.pedantic(
        grade_seconds, args=(tmp_path, "--no-training"), rounds=1, iterations=1
    )
    benchmark.extra_info["seconds"] = seconds
    print(f"\n--no-training grade of the reference: {seconds:.1f} s (goal <= 10 s)")
    assert data["score"] == data["max_score"]


@pytest.mark.benchmark(group="grading the reference")
def test_grade_full(benchmark, tmp_path):
    seconds, data = benchmark.pedantic(grade_seconds, args=(tmp_path,), rounds=1, iterations=1)
    # The training checks: the first one waits for all the runs, the others reuse them; the time between the
    # last property check's result and the end is what training costs (printed from the runs' own timing too).
    benchmark.extra_info["seconds"] = seconds
    print(f"\nfull grade of the reference: {seconds:.1f} s (goal <= 90 s)")
    assert data["score"] == data["max_score"] == 100


def test_training_checks_alone(tmp_path):
    """Only the training checks (``--only``): their own cost, next to the goal of 60 s."""
    ids = "training.baseline,training.forward_kl,training.backward_kl,training.shaped"
    seconds, data = grade_seconds(tmp_path, "--only", ids)
    print(f"\ntraining checks of the reference: {seconds:.1f} s (goal <= 60 s)")
    assert data["score"] == data["max_score"] == 20
