"""Inside Gradescope, per submission: find the graded file, grade it with the hidden seed within the time
budget, and always leave a valid ``results.json`` (the seed hidden from students)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from grader.grading import feedback
from grader.grading.locate import locate_submission
from grader.grading.results import hide_seed, validate_results
from grader.tools.gradescope.config import BUDGET_GRACE_S, CONFIG_NAME, DEFAULT_TIMEOUT

# ---------------------------------------------------------------------------------------------------------------
# Running inside Gradescope
# ---------------------------------------------------------------------------------------------------------------


def _write_results(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _failure(message: str, started: float) -> dict[str, Any]:
    return {
        "score": 0.0,
        "execution_time": round(time.monotonic() - started, 3),
        "output": message,
        "tests": [],
    }


def _valid_results(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        validate_results(data)
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return data


def run_autograder(
    root: Path, source: Path, grader_cmd: Sequence[str] | None = None, timeout: float | None = None
) -> dict[str, Any]:
    """Grade ``root/submission`` and write ``root/results/results.json``; return what was written."""
    started = time.monotonic()
    results = root / "results" / "results.json"
    results.parent.mkdir(parents=True, exist_ok=True)
    results.unlink(missing_ok=True)
    try:
        settings = json.loads((source / CONFIG_NAME).read_text(encoding="utf-8"))
        seed = int(settings["seed"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        data = _failure(
            f"The autograder is misconfigured ({CONFIG_NAME}: {exc}). Please tell your instructor.", started
        )
        _write_results(results, data)
        return data
    if timeout is None:
        timeout = float(settings.get("timeout", DEFAULT_TIMEOUT))

    located = locate_submission(root / "submission")
    if located.path is None:
        data = _failure(
            f"Nothing to grade: {located.error}. Upload your rewards.py (the file you edited in exercise/) "
            "and nothing else.",
            started,
        )
        _write_results(results, data)
        return data
    if located.note:
        print(f"run_autograder: {located.note}", flush=True)

    command = list(grader_cmd or (sys.executable, "-m", "grader"))
    command += ["--submission", str(located.path), "--results", str(results), "--seed", str(seed)]
    if settings.get("no_training"):
        command.append("--no-training")
    budget = settings.get("time_budget")
    if isinstance(budget, int | float) and not isinstance(budget, bool) and budget > 0:
        # The grader stops itself after its budget and reports what it finished; a grader still running a
        # minute later is stuck, and is stopped here while Gradescope still waits for a results.json.
        command += ["--time-budget", f"{budget:g}"]
        timeout = min(timeout, float(budget) + BUDGET_GRACE_S)
    print(f"run_autograder: grading {located.path} (seed {seed})", flush=True)
    try:
        proc = subprocess.run(command, cwd=source, timeout=timeout, stdin=subprocess.DEVNULL, check=False)
        status: int | str = proc.returncode
    except subprocess.TimeoutExpired:
        status = "timeout"
    except OSError as exc:
        status = f"could not start ({exc})"
    data = _valid_results(results)
    if data is None:
        reason = f"timed out after {timeout:g} s" if status == "timeout" else f"exit status {status}"
        data = _failure(
            f"The grader could not produce a report ({reason}). Your submission scores 0 for now; please tell "
            "your instructor.",
            started,
        )
    if located.note:
        data["output"] = f"Note: {located.note}.\n\n{data.get('output', '')}".rstrip()
    level = data.get("feedback_level")
    if level in feedback.LEVELS:  # Gradescope shows the top-level output, not the terminal report
        data["output"] = f"{data.get('output', '')}\n{feedback.level_line(level)}".lstrip()
    data = hide_seed(data, seed)
    _write_results(results, data)
    return data
