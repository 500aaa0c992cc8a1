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

from grader.checks import feedback
from grader.grading.locate import locate_submission
from grader.grading.results import hide_seed, validate_results
from grader.tools.gradescope.config import BUDGET_GRACE_S, CONFIG_NAME, DEFAULT_TIME_BUDGET

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


def _without_host_paths(data: dict[str, Any], root: Path, source: Path) -> dict[str, Any]:
    """The report as students may see it: no path of this machine. The plots the grader drew beside the results
    stay on the machine, where no student can open them, so the lines that point at them go (and the files' list,
    ``extra_data.artifacts``); any other mention of Gradescope's folders becomes relative (the submission's
    own file: its name)."""
    tests = data.get("tests") if isinstance(data.get("tests"), list) else []
    artifacts = {
        a
        for t in tests
        if isinstance(t, dict) and isinstance(t.get("extra_data"), dict)
        for a in t["extra_data"].get("artifacts") or ()
        if isinstance(a, str) and a
    }
    folders = {str(f) for p in (root / "submission", source, root) for f in (p, p.absolute(), p.resolve())}
    prefixes = [f"{f}/" for f in sorted(folders, key=len, reverse=True)]  # the submission's folder first

    def clean(text: str) -> str:
        kept = [line for line in text.split("\n") if not any(a in line for a in artifacts)]
        text = "\n".join(kept)
        for prefix in prefixes:
            text = text.replace(prefix, "")
        return text

    def scrub(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: scrub(v) for k, v in value.items() if k != "artifacts"}
        if isinstance(value, list):
            return [scrub(v) for v in value]
        return clean(value) if isinstance(value, str) else value

    return scrub(data)


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
    budget = settings.get("time_budget")
    if not (isinstance(budget, int | float) and not isinstance(budget, bool) and 0 < budget < float("inf")):
        budget = (
            DEFAULT_TIME_BUDGET  # an autograder.json without one (hand-edited): Gradescope's default fits
        )
    if timeout is None:
        # One setting, the budget: the grader stops itself after it and reports what it finished; a grader still
        # running a little later is stuck, and is stopped here while Gradescope still waits for a results.json.
        timeout = float(budget) + BUDGET_GRACE_S

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
    command += ["--time-budget", f"{budget:g}"]
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
    data = hide_seed(_without_host_paths(data, root, source), seed)
    _write_results(results, data)
    return data
