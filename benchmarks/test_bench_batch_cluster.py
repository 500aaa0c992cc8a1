"""Batch grading with training (``nox -s bench``): the local pool against Ray (an embedded head on this
machine), each with and without the shared baseline run, reported as ratios to the local pool without it.

A full grade with training is four GRPO runs (about 40-60 s of both cores on a 2-core machine), so a batch of
``BENCH_BATCH_COUNT`` submissions (default 24, the issue's class) takes about 15 minutes per configuration on 2
cores: on a small machine run it with a smaller count, e.g. ``BENCH_BATCH_COUNT=4 nox -s bench -- -k cluster``.
The shared baseline saves one run of four per grade and costs one run per batch (on one core, before any grade
starts): the saving grows with the count towards the baseline's share of a grade's training.
``BENCH_BATCH_TRAINING=0`` grades without training (seconds per grade): then only the executors are compared.
"""

from __future__ import annotations

import os
import resource
import shutil
from pathlib import Path

import pytest

from grader.tools.batch import BatchConfig, run_batch

REPO = Path(__file__).resolve().parents[1]
COUNT = int(os.environ.get("BENCH_BATCH_COUNT", "24"))
TRAINING = os.environ.get("BENCH_BATCH_TRAINING", "1") != "0"
#: wall seconds and child CPU seconds (the local pool's graders; Ray's run in Ray's workers) per configuration
MEASURED: dict[str, tuple[float, float]] = {}
CONFIGS = {
    "local, own baseline": ("local", False),
    "local, shared baseline": ("local", True),
    "ray, own baseline": ("ray", False),
    "ray, shared baseline": ("ray", True),
}


@pytest.fixture(scope="module")
def submissions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    subs = tmp_path_factory.mktemp("class")
    for i in range(COUNT):
        (subs / f"student{i:02d}").mkdir()
        shutil.copy(REPO / "reference" / "rewards.py", subs / f"student{i:02d}" / "rewards.py")
    return subs


@pytest.fixture(scope="module", autouse=True)
def report(request: pytest.FixtureRequest):
    yield
    if not MEASURED:
        return
    base = MEASURED.get("local, own baseline")
    what = "full grades (training on)" if TRAINING else "grades without training"
    lines = [f"batch of {COUNT} {what}, ratios to the local pool with each grade's own baseline:"]
    for name, (wall, cpu) in MEASURED.items():
        ratio = f"{wall / base[0]:.2f}x" if base else "n/a"
        cpu_text = f", child CPU {cpu:.0f} s" if cpu > 0 else ""
        lines.append(f"  {name:24s} {wall:7.1f} s wall ({ratio}){cpu_text}")
    # A module fixture's output is captured like a test's: shown past the capture, on the terminal.
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    with capture.global_and_fixture_disabled():
        for line in lines:
            (reporter.write_line if reporter else print)(line)


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@pytest.mark.parametrize("name", list(CONFIGS))
def test_batch_of_submissions(benchmark, name: str, submissions: Path, tmp_path: Path) -> None:
    executor, shared = CONFIGS[name]
    if shared and not TRAINING:
        pytest.skip("without training there is no baseline run to share")
    if executor == "ray":
        pytest.importorskip("ray", reason="pip install .[cluster]")
    config = BatchConfig(
        submissions, tmp_path / "out", executor=executor, shared_baseline=shared, jobs=os.cpu_count() or 1,
        cpus_per_grade=1.0, no_training=not TRAINING, quiet=True,
    )  # fmt: skip
    cpu = _child_cpu()
    rows, summary = benchmark.pedantic(run_batch, args=(config,), rounds=1, iterations=1)
    MEASURED[name] = (benchmark.stats.stats.mean, _child_cpu() - cpu if executor == "local" else 0.0)
    benchmark.extra_info.update(count=COUNT, executor=executor, shared_baseline=shared)
    assert summary.errors == 0 and summary.full_marks == COUNT, [r.error for r in rows if r.error]
    assert all(r.max_score == (100 if TRAINING else 80) for r in rows)
