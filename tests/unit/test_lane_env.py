"""A training lane finds the grader it was started by: ``python -m grader.training.lane`` runs in a scratch
folder, so the lane's PYTHONPATH must start with the folder that holds this ``grader`` package, whether or not
the project is installed (a checkout run in place, a Gradescope bundle). Before: it named that folder's parent,
and only the editable install made lanes work."""

from __future__ import annotations

import os
from pathlib import Path

import grader
from grader.training import runs


def test_the_lanes_pythonpath_starts_with_the_folder_holding_this_grader() -> None:
    first = runs._lane_env()["PYTHONPATH"].split(os.pathsep)[0]
    assert Path(first) / "grader" == Path(grader.__file__).resolve().parent


def test_the_lanes_report_the_submissions_seconds_and_the_engine_sums_its_longest_lanes(
    tmp_path: Path,
) -> None:
    """At the grade's deadline the runner asks whose the time was: the lanes write the seconds the submission's
    calls took with every step (so runs killed at the deadline still tell), and the engine counts, per batch of
    runs, the longest lane (lanes run side by side)."""
    import json

    from grader.training import engine as engine_module
    from grader.training.lane import _step_writer

    write = _step_writer(tmp_path / "lane0" / "progress" / "forward.json", lambda: 2.5)
    write(3, 80)
    assert json.loads((tmp_path / "lane0" / "progress" / "forward.json").read_text()) == {
        "step": 3, "total": 80, "submission_seconds": 2.5
    }  # fmt: skip
    (tmp_path / "lane0" / "progress" / "shaped.json").write_text('{"step": 1, "submission_seconds": 1.0}')
    (tmp_path / "lane1" / "progress").mkdir(parents=True)
    (tmp_path / "lane1" / "progress" / "backward.json").write_text('{"step": 1, "submission_seconds": 3.0}')
    (tmp_path / "lane1" / "progress" / "torn.json").write_text('{"step": 1, "submiss')  # being written
    assert runs.submission_seconds_of([tmp_path / "lane0", tmp_path / "lane1"]) == 3.5

    engine = engine_module.TrainingEngine("rewards.py", str(tmp_path))
    assert engine.submission_seconds() == 0.0
    engine._execute([], tmp_path, 10.0)  # no jobs: nothing started, the folder is remembered
    assert engine.submission_seconds() == 3.5
