"""Several training lanes from one process (grader/training/lane.py ``_fork_lanes``, started by
grader/training/runs.py ``execute``): the libraries are imported once, then each lane runs in its own forked
process, in its own folder, writing its own log; the exit status says whether every lane ended normally.

The lanes' real work (GRPO runs) is replaced by a stand-in that records where and in which process it ran, so
these tests take a second; the real runs through this path are the slow tier's (every graded run uses it) and
``tests/integration/test_live_progress.py``'s real lane.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import ROOT

#: runs the lane module's main with ``_preload`` and ``_lane`` replaced by stand-ins that record their process
DRIVER = """
import json, os, sys
from pathlib import Path
import grader.training.lane as lane

def preload():
    lane.PRELOADED_IN = os.getpid()

def fake_lane(config):
    if config.get("fail"):
        raise RuntimeError("this lane failed: " + config["name"])
    print("lane", config["name"], "says hello")
    Path(config["out"]).write_text(json.dumps({
        "pid": os.getpid(), "parent": os.getppid(), "cwd": os.getcwd(),
        "preloaded_in": getattr(lane, "PRELOADED_IN", None),
    }))

lane._preload, lane._lane = preload, fake_lane
sys.exit(lane.main(sys.argv[1:]))
"""


def _lanes(tmp_path: Path, n: int, failing: int | None = None) -> list[Path]:
    paths = []
    for i in range(n):
        lane_dir = tmp_path / f"lane{i}"
        lane_dir.mkdir()
        config = {"name": f"lane{i}", "out": str(lane_dir / "ran.json"), "fail": i == failing}
        (lane_dir / "lane.json").write_text(json.dumps(config), encoding="utf-8")
        paths.append(lane_dir / "lane.json")
    return paths


def _run(tmp_path: Path, paths: list[Path]) -> subprocess.CompletedProcess:
    with open(paths[0].parent / "log.txt", "wb") as log:  # as execute() starts it: in the first lane's folder
        return subprocess.run(
            [sys.executable, "-c", DRIVER, *map(str, paths)],
            cwd=paths[0].parent,
            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=120,
            check=False,
        )


def test_each_lane_runs_in_its_own_forked_process_in_its_own_folder_after_one_preload(tmp_path: Path):
    paths = _lanes(tmp_path, 3)
    done = _run(tmp_path, paths)
    assert done.returncode == 0, (paths[0].parent / "log.txt").read_text()
    ran = [json.loads((p.parent / "ran.json").read_text()) for p in paths]
    parents = {r["parent"] for r in ran}
    assert len({r["pid"] for r in ran}) == 3 and len(parents) == 1  # three processes, one parent
    assert {r["preloaded_in"] for r in ran} == parents  # imported once, in the parent, before the forks
    assert [Path(r["cwd"]) for r in ran] == [p.parent for p in paths]
    for i, p in enumerate(paths):  # each lane's output in its own log
        assert (p.parent / "log.txt").read_text().count("says hello") == 1
        assert f"lane lane{i} says hello" in (p.parent / "log.txt").read_text()


def test_a_failing_lane_fails_the_process_and_leaves_its_reason_in_its_own_log(tmp_path: Path):
    paths = _lanes(tmp_path, 3, failing=1)
    done = _run(tmp_path, paths)
    assert done.returncode == 1
    assert "this lane failed: lane1" in (paths[1].parent / "log.txt").read_text()
    assert (paths[0].parent / "ran.json").is_file() and (
        paths[2].parent / "ran.json"
    ).is_file()  # the rest ran


def test_one_lane_runs_in_the_process_itself_without_a_fork(tmp_path: Path):
    paths = _lanes(tmp_path, 1)
    assert _run(tmp_path, paths).returncode == 0
    ran = json.loads((paths[0].parent / "ran.json").read_text())
    assert ran["preloaded_in"] is None  # no preload, no fork: the lane imports what it needs itself


@pytest.mark.parametrize(("preset", "processes"), [("tiny", 1), ("gpt2", 3), ("auto", 3)])
def test_the_engine_starts_one_process_for_all_its_lanes_on_a_cpu(
    tmp_path: Path, monkeypatch, preset, processes
):
    """execute() hands every lane of the tiny preset to one process (the preload is paid once), and reads each
    lane's records; a preset that may use CUDA keeps a process per lane (a forked CUDA context is unusable)."""
    from grader.training import runs

    started: list[list[str]] = []
    real_popen = subprocess.Popen

    def popen(args, **kwargs):
        started.append(list(args))
        # stand in for the lanes: write each lane's record where the engine reads it, then end
        script = (
            "import json, sys\nfrom pathlib import Path\n"
            "from grader.training.runs import RunRecord, safe_key\n"
            "for p in sys.argv[1:]:\n"
            "    c = json.loads(Path(p).read_text())\n"
            "    out = Path(c['out_dir']); out.mkdir(parents=True, exist_ok=True)\n"
            "    for j in c['jobs']:\n"
            "        record = RunRecord(j['run'], ok=True, key=j['key'], history=[{'step': 0}])\n"
            "        (out / (safe_key(j['key']) + '.json')).write_text(json.dumps(record.to_dict()))\n"
        )
        return real_popen([sys.executable, "-c", script, *args[3:]], **kwargs)

    monkeypatch.setattr(runs.subprocess, "Popen", popen)
    jobs = [runs.Job(f"k/{run}", run, "sub.py", 0) for run in ("baseline", "forward", "backward")]
    records = runs.execute(jobs, work_dir=tmp_path / "work", timeout_s=60, preset=preset, lanes=3)
    assert len(started) == processes and all(args[1:3] == ["-m", "grader.training.lane"] for args in started)
    lanes = [a for args in started for a in args[3:]]
    assert len(lanes) == len(set(lanes)) == 3 and all(a.endswith("lane.json") for a in lanes)
    assert sorted(records) == ["k/backward", "k/baseline", "k/forward"]
    assert all(r.ok for r in records.values()), records
