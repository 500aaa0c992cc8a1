"""The Gradescope autograder: build its zip, and the runner inside it.

    python -m grader.tools gradescope build --out DIR [--seed N] [--no-training]     (instructor, once per term)
    python -m grader.tools.gradescope run                                             (Gradescope, per submission)

``build`` writes ``DIR/gradescope-autograder.zip`` (and the same files unpacked in ``DIR/gradescope-autograder/``
for inspection). Gradescope unpacks the zip into ``/autograder/source``, runs ``setup.sh`` once to build the
image, then ``run_autograder`` for every submission. The zip holds:

* ``setup.sh``: installs Python (3.10+, from apt when the image has none), a virtualenv in
  ``/autograder/venv``, CPU-only torch (Gradescope has no GPU) and this package, both with the versions the
  training checks were calibrated with (``grader/constraints.txt``), then grades the stub as a smoke test so a
  broken image fails at build time, not on students;
* ``run_autograder``: calls ``run`` below, and writes a valid results.json even if Python cannot start;
* ``autograder.json``: the grading seed (``--seed``, or drawn at random at build time; never 0, the default
  students grade with), whether training checks run, and the time budget of one grade;
* the project: ``exercise/``, ``grader/``, ``pyproject.toml`` and a short ``README.md``; not ``reference/``
  (grading does not need the solution), the tests, the instructor's README nor the instructor-only parts of
  ``grader/`` that a handout leaves out (:data:`grader.tools.handout.INSTRUCTOR_ONLY`: the builders, batch
  grading, the calibration), except the answer key (``grader/checks/key/``: this grader grades the hidden
  checks) and the runner below. Its grader is set to ``--feedback-level`` (default ``hint``: students read the
  feedback) and its misconception catalogue is stripped to that level, as in the handout.

``run`` grades the file found in ``$AUTOGRADER_ROOT/submission`` (``rewards.py``, or the only ``.py`` file:
:mod:`grader.grading.locate`) with ``python -m grader --seed SEED`` and makes sure
``$AUTOGRADER_ROOT/results/results.json`` exists and is valid whatever happened. What it writes names no path
of the machine (a plot file, the submission's folder): students see it and cannot see the machine. ``AUTOGRADER_ROOT``
defaults to ``/autograder``; ``AUTOGRADER_SOURCE`` (default ``$AUTOGRADER_ROOT/source``) and
``AUTOGRADER_PYTHON`` (default: the venv's python, else ``python3``) can be set too, which is how the tests run
it in a temporary folder.
"""

from typing import Any

from grader.grading.results import hide_seed
from grader.tools.gradescope.cli import main
from grader.tools.gradescope.config import BUNDLE_NAME, CONFIG_NAME, DEFAULT_TIME_BUDGET, GradescopeConfig
from grader.tools.gradescope.run import run_autograder

#: The builder's names, imported on first use: the bundle carries the runner but not the builder (it needs the
#: handout builder, an instructor tool), and Gradescope imports this package to run.
_BUILD_NAMES = ("RUN_AUTOGRADER", "SETUP_SH", "build_bundle", "draw_seed")


def __getattr__(name: str) -> Any:
    if name in _BUILD_NAMES:
        from grader.tools.gradescope import build

        return getattr(build, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BUNDLE_NAME",
    "CONFIG_NAME",
    "DEFAULT_TIME_BUDGET",
    "RUN_AUTOGRADER",
    "SETUP_SH",
    "GradescopeConfig",
    "build_bundle",
    "draw_seed",
    "hide_seed",
    "main",
    "run_autograder",
]
