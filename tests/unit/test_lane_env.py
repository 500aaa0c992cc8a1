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
