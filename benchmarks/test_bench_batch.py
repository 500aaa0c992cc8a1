"""Batch grading throughput (``nox -s bench``): 24 submissions without training, the issue's goal <= 120 s on
2 cores. Half are the reference (full grades), half the stub (fast failures), as in a real class mid-deadline."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from grader.tools.batch import BatchConfig, run_batch

REPO = Path(__file__).resolve().parents[1]


def test_batch_24_submissions_no_training(benchmark, tmp_path: Path) -> None:
    subs = tmp_path / "subs"
    sources = [REPO / "reference" / "rewards.py", REPO / "exercise" / "rewards.py"]
    for i in range(24):
        (subs / f"student{i:02d}").mkdir(parents=True)
        shutil.copy(sources[i % 2], subs / f"student{i:02d}" / "rewards.py")
    config = BatchConfig(subs, tmp_path / "out", no_training=True, jobs=os.cpu_count() or 1, quiet=True)
    rows, summary = benchmark.pedantic(run_batch, args=(config,), rounds=1, iterations=1)
    print(f"\n24 submissions graded with {config.jobs} jobs (goal <= 120 s): see the benchmark table")
    assert summary.errors == 0
    assert summary.full_marks == 12
