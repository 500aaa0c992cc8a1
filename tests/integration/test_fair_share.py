"""A neighbour never costs a student points (issue 18): in a batch, a submission that forks 32 spinning children
runs under its own CPU quota (its cgroup), and the grade beside it is not charged for the CPU someone else took
(grader.grading.budget, fair time). Before: the reference scored 18/80 here (62 points "not finished")."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from grader.sandbox.cgroup import cgroup_host
from grader.tools.batch import BatchConfig, run_batch
from tests.support.sandbox import trap_and_kill

REPO = Path(__file__).resolve().parents[2]
HOG = """

import os as _os
import sys as _sys

for _ in range(32):  # spinning children, started at import (named in their command line, for the cleanup)
    if _os.fork() == 0:
        _os.execv(_sys.executable, [_sys.executable, "-c", "while True: pass", "fairhog"])
"""


@pytest.mark.slow  # two full --no-training grades side by side under a 10 s budget: about 20 s on 2 cores
def test_the_reference_keeps_full_marks_beside_a_cpu_hog(tmp_path: Path) -> None:
    found = cgroup_host()
    if isinstance(found, str):
        if os.environ.get("GRADER_REQUIRE_CGROUPS") == "1":
            pytest.fail(f"GRADER_REQUIRE_CGROUPS=1 but {found}")
        pytest.skip(found)
    subs = tmp_path / "subs"
    (subs / "ref").mkdir(parents=True)
    (subs / "hog").mkdir()
    shutil.copy(REPO / "reference" / "rewards.py", subs / "ref" / "rewards.py")
    (subs / "hog" / "rewards.py").write_text((REPO / "reference" / "rewards.py").read_text() + HOG)
    out = tmp_path / "out"
    try:
        rows, _summary = run_batch(
            BatchConfig(
                subs, out, no_training=True, jobs=2, time_budget=10.0, quiet=True, shared_baseline=False
            )
        )
    finally:
        assert trap_and_kill("fairhog") == [], "spinners outlived the batch (now killed)"
    by_name = {r.name: r for r in rows}
    ref = json.loads((out / "ref" / "results.json").read_text())
    assert by_name["ref"].score == by_name["ref"].max_score == 80, ref["output"]
    assert ref["sandbox"]["limits_in_force"]["cpu"] == "1 CPU (cgroup quota)"
