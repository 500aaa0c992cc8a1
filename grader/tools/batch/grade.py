"""Grading one submission with its own ``python -m grader`` process, bounded in time; its row of the gradebook."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from grader.grading.results import validate_results
from grader.sandbox.proctree import (
    kill_tree,
)
from grader.tools.batch.config import DEFAULT_GRADER, LOG_LIMIT, BatchConfig, Entry, Graded

# ---------------------------------------------------------------------------------------------------------------
# Grading one submission
# ---------------------------------------------------------------------------------------------------------------


def grade_one(
    entry: Entry,
    out: Path,
    config: BatchConfig,
    grader_cmd: Sequence[str] = DEFAULT_GRADER,
) -> Graded:
    """Grade ``entry`` with one grader process; write ``out/<name>/results.json`` and ``grader.log``."""
    folder = out / entry.name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    results = folder / "results.json"
    log = folder / "grader.log"
    started = time.monotonic()

    if entry.file is None:
        log.write_text(f"not graded: {entry.error}\n", encoding="utf-8")
        return Graded(entry.name, 0.0, None, [], error=entry.error, note=entry.note)

    command = [*grader_cmd, "--submission", str(entry.file.resolve()), "--results", str(results.resolve())]
    if config.no_training:
        command.append("--no-training")
    if config.seed is not None:
        command += ["--seed", str(config.seed)]
    env = dict(os.environ, NO_COLOR="1", COLUMNS="120", PYTHONUNBUFFERED="1")
    env.pop("FORCE_COLOR", None)
    error = ""
    exit_code: int | None = None
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
            )
        except OSError as exc:
            return Graded(
                entry.name, 0.0, None, [], error=f"could not start the grader: {exc}", note=entry.note
            )
        try:
            exit_code = proc.wait(timeout=config.timeout)
        except subprocess.TimeoutExpired:
            # Its own subtree only: other graders run beside it, and what it orphaned is swept at the end.
            kill_tree(proc, None, set())
            error = f"grading took longer than {config.timeout:g} s and was stopped"
        else:
            try:  # whatever the grader left behind in its process group goes too
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
    seconds = time.monotonic() - started
    if log.stat().st_size > LOG_LIMIT:
        with log.open("r+b") as fh:
            fh.truncate(LOG_LIMIT)
            fh.seek(0, io.SEEK_END)
            fh.write(b"\n[... output truncated by grader.tools.batch ...]\n")

    file_label = entry.file.relative_to(entry.source).as_posix() if entry.source.is_dir() else entry.file.name
    if error:
        results.unlink(missing_ok=True)
        return Graded(entry.name, 0.0, None, [], error, entry.note, exit_code, seconds, file_label)
    try:
        score, tests = validate_results(json.loads(results.read_text(encoding="utf-8")))
    except FileNotFoundError:
        error = f"the grader exited with status {exit_code} without writing results.json (see grader.log)"
        return Graded(entry.name, 0.0, None, [], error, entry.note, exit_code, seconds, file_label)
    except (ValueError, UnicodeDecodeError) as exc:  # json.JSONDecodeError is a ValueError
        error = f"the grader exited with status {exit_code} and wrote an unreadable results.json ({exc})"
        return Graded(entry.name, 0.0, None, [], error, entry.note, exit_code, seconds, file_label)
    max_score = sum(float(t.get("max_score", 0.0)) for t in tests) if tests else None
    if exit_code not in (0, 1):
        error = f"grader error (exit status {exit_code}): {_first_line(results)}"
    return Graded(entry.name, score, max_score, tests, error, entry.note, exit_code, seconds, file_label)


def _first_line(results: Path) -> str:
    try:
        output = json.loads(results.read_text(encoding="utf-8")).get("output", "")
    except (OSError, ValueError, AttributeError):
        return "see grader.log"
    lines = [line.strip() for line in str(output).splitlines() if line.strip()]
    return lines[0][:200] if lines else "see results.json"
