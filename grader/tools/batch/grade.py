"""Grading one submission with its own ``python -m grader`` process, bounded in time; its row of the gradebook.

The pieces are shared by the executors: :func:`run_grader` runs one grader process in a folder (here, or on a
Ray worker), :func:`read_row` turns that folder into the submission's row, and :func:`mark_done` /
:func:`already_done` record and recognise a finished grade for ``--resume``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from grader.cli import EXIT_NOT_GRADABLE, GradeConfig
from grader.grading.results import validate_results
from grader.sandbox.proctree import (
    die_with_parent,
    kill_tree,
)
from grader.tools.batch import reasons
from grader.tools.batch.config import (
    DEFAULT_GRADER,
    FORWARDED,
    LOG_LIMIT,
    MARKER,
    BatchConfig,
    Entry,
    Graded,
)
from grader.tools.batch.interrupt import Stop

#: What a grade leaves in its folder (the executors move exactly these).
RESULT_FILES = ("results.json", "grader.log", "results_training.png")
#: The error of a grade ended because the batch stopped (Ctrl-C): it has no row, and --resume grades it.
INTERRUPTED = "interrupted: the batch was stopped before this grade finished (--resume grades it)"
_GRADER_DEFAULTS = {f.name: f.default for f in dataclasses.fields(GradeConfig)}

# ---------------------------------------------------------------------------------------------------------------
# Grading one submission
# ---------------------------------------------------------------------------------------------------------------


def grader_options(
    config: BatchConfig,
    baseline: str | None = None,
    training_jobs: int | None = None,
    rubric: str | None = None,
) -> list[str]:
    """The grader's options after ``--submission`` and ``--results`` (only those that differ from its defaults,
    so stand-in graders of the tests need to know no more than they use). ``baseline`` and ``rubric``: the
    files as the grader will find them (they travel with a Ray task, so the caller says where they are)."""
    options: list[str] = []
    for name in FORWARDED:  # the course's settings, as the grader declares them (GradeConfig)
        value = getattr(config, name)
        if name != "rubric" and value != _GRADER_DEFAULTS[name]:
            options += [f"--{name.replace('_', '-')}", str(value)]
    if rubric is not None:
        options += ["--rubric", rubric]
    if config.no_training:
        options.append("--no-training")
    if config.seed is not None:
        options += ["--seed", str(config.seed)]
    if config.time_budget is not None:
        options += ["--time-budget", f"{config.time_budget:g}"]
    if config.cpus_per_grade != 1.0:  # the grade's CPU quota agrees with what the batch schedules
        options += ["--cpus", f"{config.cpus_per_grade:g}"]
    if not config.no_training:
        if config.training_preset != "auto":
            options += ["--training-preset", config.training_preset]
        if training_jobs is not None:
            options += ["--training-jobs", str(training_jobs)]
        if baseline is not None:
            options += ["--baseline-run", baseline]
    return options


def run_grader(
    command: Sequence[str],
    folder: Path,
    timeout: float,
    preexec: Callable[[], None] | None = None,
    stop: Stop | None = None,
) -> tuple[int | None, str, float]:
    """Run one grader ``command`` (it writes ``folder/results.json``), its output to ``folder/grader.log``;
    return ``(exit status, error, seconds)``, the error set when it was stopped at ``timeout`` or because the
    batch stopped (``stop``: then the error is :data:`INTERRUPTED`)."""
    log = folder / "grader.log"
    env = dict(os.environ, NO_COLOR="1", COLUMNS="120", PYTHONUNBUFFERED="1")
    env.pop("FORCE_COLOR", None)
    error = ""
    exit_code: int | None = None
    started = time.monotonic()
    # The grader's output goes to a file, not a pipe: nothing to drain, nothing to deadlock on.
    with tempfile.TemporaryDirectory(prefix="batch-grade-") as cwd, log.open("wb") as log_file:
        try:
            proc = subprocess.Popen(
                command,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: a timeout kills the grader and all it started
                preexec_fn=preexec,
            )
        except OSError as exc:
            return None, f"could not start the grader: {exc}", time.monotonic() - started
        if stop is not None:
            stop.track(proc)
        try:
            exit_code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            # Its own subtree only: other graders run beside it, and what it orphaned is swept at the end.
            kill_tree(proc, None, set())
            error = f"grading took longer than {timeout:g} s and was stopped"
        else:
            try:  # whatever the grader left behind in its process group goes too
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        finally:
            if stop is not None:
                stop.untrack(proc)
        if stop is not None and stop.ended(proc):
            error = INTERRUPTED
    if log.stat().st_size > LOG_LIMIT:
        with log.open("r+b") as fh:
            fh.truncate(LOG_LIMIT)
            fh.seek(0, io.SEEK_END)
            fh.write(b"\n[... output truncated by grader.tools.batch ...]\n")
    if error:
        (folder / "results.json").unlink(missing_ok=True)
    if error == INTERRUPTED:
        with log.open("a", encoding="utf-8") as fh:
            fh.write(f"\n[{INTERRUPTED}]\n")
    return exit_code, error, time.monotonic() - started


def file_label(entry: Entry) -> str:
    if entry.file is None:
        return ""
    return entry.file.relative_to(entry.source).as_posix() if entry.source.is_dir() else entry.file.name


def read_row(entry: Entry, folder: Path, exit_code: int | None, error: str, seconds: float) -> Graded:
    """The gradebook row of ``entry`` from the grade in ``folder`` (``results.json``, validated)."""
    label = file_label(entry)
    results = folder / "results.json"

    def failed(error: str, reason: str) -> Graded:
        return Graded(entry.name, 0.0, None, [], error, entry.note, exit_code, seconds, label, reason)

    if error:
        return failed(
            error, reasons.TIMED_OUT if error.startswith("grading took longer") else reasons.INTERNAL
        )
    try:
        score, tests = validate_results(json.loads(results.read_text(encoding="utf-8")))
    except FileNotFoundError:
        killed = exit_code is not None and exit_code < 0 and -exit_code == signal.SIGKILL
        return failed(
            f"the grader exited with status {exit_code} without writing results.json (see grader.log)",
            reasons.KILLED if killed else reasons.INTERNAL,
        )
    except (ValueError, UnicodeDecodeError) as exc:  # json.JSONDecodeError is a ValueError
        error = f"the grader exited with status {exit_code} and wrote an unreadable results.json ({exc})"
        return failed(error, reasons.INTERNAL)
    max_score = sum(float(t.get("max_score", 0.0)) for t in tests) if tests else None
    reason = reasons.of_results(tests)
    if exit_code not in (0, 1, EXIT_NOT_GRADABLE):  # 3: graded, some checks not gradable (no points lost)
        error = f"grader error (exit status {exit_code}): {_first_line(results)}"
        reason = reasons.join(reasons.INTERNAL, reason)
    return Graded(entry.name, score, max_score, tests, error, entry.note, exit_code, seconds, label, reason)


def prepare_folder(entry: Entry, out: Path) -> Path:
    """``out/<name>``, emptied (a regrade leaves nothing of the last one)."""
    folder = out / entry.name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


def not_gradeable(entry: Entry, folder: Path) -> Graded:
    (folder / "grader.log").write_text(f"not graded: {entry.error}\n", encoding="utf-8")
    return Graded(entry.name, 0.0, None, [], error=entry.error, note=entry.note, reason=reasons.NOTHING)


def grade_one(
    entry: Entry,
    out: Path,
    config: BatchConfig,
    grader_cmd: Sequence[str] = DEFAULT_GRADER,
    baseline: Path | None = None,
    stop: Stop | None = None,
) -> Graded | None:
    """Grade ``entry`` with one grader process; write ``out/<name>/results.json`` and ``grader.log``. None when
    the batch stopped (``stop``) before the grade finished: no row, nothing marked done."""
    folder = prepare_folder(entry, out)
    if entry.file is None:
        return not_gradeable(entry, folder)
    rubric = config.rubric_file()
    command = [
        *grader_cmd,
        "--submission",
        str(entry.file.resolve()),
        "--results",
        str((folder / "results.json").resolve()),
        *grader_options(
            config,
            str(baseline.resolve()) if baseline else None,
            rubric=str(rubric.resolve()) if rubric is not None else None,
        ),
    ]
    # A batch killed outright (kill -9, a lost CI job) takes its graders with it (their lanes follow them).
    exit_code, error, seconds = run_grader(
        command, folder, config.timeout, preexec=die_with_parent, stop=stop
    )
    if error == INTERRUPTED:
        return None
    row = read_row(entry, folder, exit_code, error, seconds)
    mark_done(entry, folder, config, row)
    return row


def _first_line(results: Path) -> str:
    try:
        output = json.loads(results.read_text(encoding="utf-8")).get("output", "")
    except (OSError, ValueError, AttributeError):
        return "see grader.log"
    lines = [line.strip() for line in str(output).splitlines() if line.strip()]
    return lines[0][:200] if lines else "see results.json"


# ---------------------------------------------------------------------------------------------------------------
# --resume
# ---------------------------------------------------------------------------------------------------------------


def _digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def mark_done(entry: Entry, folder: Path, config: BatchConfig, row: Graded) -> None:
    """Record what ``folder``'s results are of (the submission's digest, the grade's options, how it ended)."""
    marker: dict[str, Any] = {
        "submission_sha256": _digest(entry.file) if entry.file else None,
        "options": config.grade_options(),
        "exit_code": row.exit_code,
        "seconds": round(row.seconds, 3),
        "error": row.error,
    }
    (folder / MARKER).write_text(json.dumps(marker) + "\n", encoding="utf-8")


def already_done(entry: Entry, out: Path, config: BatchConfig) -> Graded | None:
    """The row of a grade ``out`` already holds for this very file and these options, if the grader finished it
    normally (exit 0 or 1) and its ``results.json`` is valid; None when the submission must be graded."""
    if entry.file is None:
        return None  # nothing to grade: costs nothing to report again
    folder = out / entry.name
    try:
        marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if (
        not isinstance(marker, dict)
        or marker.get("exit_code") not in (0, 1)
        or marker.get("error")
        or marker.get("options") != config.grade_options()
        or marker.get("submission_sha256") != _digest(entry.file)
    ):
        return None
    seconds = marker.get("seconds")
    row = read_row(
        entry, folder, marker["exit_code"], "", float(seconds) if isinstance(seconds, int | float) else 0.0
    )
    return None if row.error else row
