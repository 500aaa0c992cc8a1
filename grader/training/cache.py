"""The control run kept across grades: a student who grades again does not wait for it a second time.

The baseline run (GRPO on the plain sentiment reward, no penalty) calls none of the submission's code, so every
grade at one seed and preset on one machine makes the same run (one torch thread per run: the same numbers, the
property ``tests/integration/test_training_checks_grade.py`` checks). The first grade that makes it writes it
here; a later grade at the same seed and preset reads it back instead of making it, but only when everything the
run depends on still matches (:func:`grader.training.baseline.check_baseline`: training settings, library
versions, the pipeline's code and model files, the run's configuration). Anything else is a miss: the grade makes
the run and replaces the entry. Only the control is kept: a submission's own runs depend on its code.

Where: ``$GRADER_RUN_CACHE`` when set (empty: no cache), else ``$XDG_CACHE_HOME/rl-sentiment/runs``, else
``~/.cache/rl-sentiment/runs``. ``python -m grader --no-run-cache`` makes every run. The grader hides the
directory from the submission's sandbox (a forged control would move every comparison with it).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import replace
from pathlib import Path

from grader.training.baseline import (
    BaselineError,
    baseline_content,
    check_baseline,
    environment,
    load_baseline,
    write_baseline,
)
from grader.training.runs import RunRecord

#: The environment variable that moves the cache (tests give each session its own) or, set empty, turns it off.
ENV = "GRADER_RUN_CACHE"


def default_dir() -> str:
    """The cache directory of this user ("" when ``$GRADER_RUN_CACHE`` is set empty: no cache)."""
    if ENV in os.environ:
        return os.environ[ENV]
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return str(Path(base) / "rl-sentiment" / "runs")


def entry(directory: str | os.PathLike, seed: int, preset: str) -> Path:
    """The file of the control run at ``seed`` and ``preset`` (a concrete preset, never ``auto``) with this
    grader's settings, libraries and pipeline: another grader (a checkout at another commit, a test's own
    settings) has its own file and leaves this one alone."""
    here = json.dumps(environment(), sort_keys=True).encode()
    return Path(directory) / f"baseline-{preset}-seed{seed}-{hashlib.sha256(here).hexdigest()[:12]}.json"


def read(directory: str | os.PathLike, seed: int, preset: str) -> RunRecord | None:
    """The kept control run, marked ``made_earlier``; None when there is none or it no longer matches this
    grader (then the grade makes the run and :func:`write` replaces the entry)."""
    path = entry(directory, seed, preset)
    if not path.is_file():
        return None
    try:
        record = load_baseline(path, seed=seed, preset=preset)
    except BaselineError:
        return None
    return replace(record, made_earlier=True)


def write(directory: str | os.PathLike, record: RunRecord) -> Path | None:
    """Keep ``record``, a control run this grade made, when it finished with a history; the path, or None
    when it is not worth keeping or cannot be written (the cache is a convenience: never a grade's failure)."""
    if record.run != "baseline" or not record.usable or record.internal or record.preset is None:
        return None
    if record.seed is None or record.made_earlier:
        return None
    content = baseline_content(record)
    try:
        # only a run this grader's settings would make (a test that shortens its runs keeps nothing)
        check_baseline(content, seed=record.seed, preset=record.preset)
        Path(directory).mkdir(parents=True, exist_ok=True, mode=0o700)
        return write_baseline(entry(directory, record.seed, record.preset), content)
    except (BaselineError, OSError, TypeError, ValueError):
        return None


def describe(directory: str | os.PathLike, seed: int, preset: str) -> str:
    """One line for the baseline check's feedback: where the control came from and how to make it again."""
    return (
        f"This control run was made by an earlier grade on this machine and kept ({entry(directory, seed, preset)}): "
        "it calls none of your code, and its seed, preset, settings, libraries and pipeline match this grade, so "
        "it is the run this grade would have made. --no-run-cache makes it again."
    )
