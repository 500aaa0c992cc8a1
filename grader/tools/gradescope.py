"""The Gradescope autograder: build its zip, and the runner inside it.

    python -m grader.tools.gradescope build --out DIR [--seed N] [--no-training]     (instructor, once per term)
    python -m grader.tools.gradescope run                                             (Gradescope, per submission)

``build`` writes ``DIR/gradescope-autograder.zip`` (and the same files unpacked in ``DIR/gradescope-autograder/``
for inspection). Gradescope unpacks the zip into ``/autograder/source``, runs ``setup.sh`` once to build the
image, then ``run_autograder`` for every submission. The zip holds:

* ``setup.sh``: installs Python (3.10+, from apt when the image has none), a virtualenv in
  ``/autograder/venv``, CPU-only torch (Gradescope has no GPU) and this package, then grades the stub as a
  smoke test so a broken image fails at build time, not on students;
* ``run_autograder``: calls ``run`` below, and writes a valid results.json even if Python cannot start;
* ``autograder.json``: the grading seed (``--seed``, or drawn at random at build time; never 0, the default
  students grade with), and whether training checks run;
* the project: ``exercise/``, ``grader/``, ``pyproject.toml``, ``README.md``; not ``reference/`` (grading does
  not need the solution) nor the tests. Its grader is set to ``--feedback-level`` (default ``hint``: students
  read the feedback) and its misconception catalogue is stripped to that level, as in the handout.

``run`` grades the file found in ``$AUTOGRADER_ROOT/submission`` (``rewards.py``, or the only ``.py`` file:
:mod:`grader.grading.locate`) with ``python -m grader --seed SEED`` and makes sure
``$AUTOGRADER_ROOT/results/results.json`` exists and is valid whatever happened. ``AUTOGRADER_ROOT``
defaults to ``/autograder``; ``AUTOGRADER_SOURCE`` (default ``$AUTOGRADER_ROOT/source``) and
``AUTOGRADER_PYTHON`` (default: the venv's python, else ``python3``) can be set too, which is how the tests run
it in a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from grader.dataclass_cli import parse_into
from grader.grading import feedback
from grader.grading.locate import locate_submission
from grader.grading.results import hide_seed, validate_results
from grader.tools.bundle import git_files, walk, write_zip
from grader.tools.handout import REPO_ROOT, feedback_level_problems, is_excluded, set_feedback_level

BUNDLE_NAME = "gradescope-autograder"
CONFIG_NAME = "autograder.json"
#: Project files the bundle carries (folders end with "/"); everything else stays out.
BUNDLE_SOURCES = ("exercise/", "grader/", "pyproject.toml", "README.md")
_SKIP_PARTS = {"__pycache__", ".pytest_cache", ".hypothesis", ".mypy_cache", ".ruff_cache"}
DEFAULT_TIMEOUT = 3000.0  # seconds for one grade; Gradescope's own limit is set in the assignment settings
#: The grader's --time-budget on Gradescope. Gradescope stops an autograder after its timeout (10 minutes
#: unless the assignment sets another) and then shows the student nothing at all, so the grader must stop
#: itself first: 8 minutes leaves 2 for starting Python, killing the submission and writing results.json.
DEFAULT_TIME_BUDGET = 480.0
#: run_autograder stops a grader that overran its own budget by this much (stuck: not the submission's time)
#: while Gradescope still waits, and writes a failure report instead.
BUDGET_GRACE_S = 60.0


@dataclass
class GradescopeConfig:
    out: Path = field(metadata={"help": f"Folder to write {BUNDLE_NAME}.zip (and its unpacked copy) into."})
    seed: int | None = field(
        default=None,
        metadata={
            "help": "Grading seed baked into the bundle (students grade locally with the default seed, 0). "
            "Default: drawn at random now and recorded in the bundle's autograder.json."
        },
    )
    no_training: bool = field(
        default=False, metadata={"help": "Skip the training checks on Gradescope (--no-training)."}
    )
    timeout: float = field(
        default=DEFAULT_TIMEOUT,
        metadata={"help": "Seconds one grade may take before it is stopped and scored 0."},
    )
    time_budget: float = field(
        default=DEFAULT_TIME_BUDGET,
        metadata={
            "help": "The grader's --time-budget on Gradescope: after it, unfinished checks score 0 with the "
            "reason and the results are written. Keep it below the assignment's autograder timeout "
            "(Gradescope's default is 10 minutes) by a minute or two, or students see no results at all."
        },
    )
    feedback_level: Literal["hint", "explain", "solution"] = field(
        default="hint",
        metadata={
            "help": "How much the feedback students see on Gradescope explains: hint (what is wrong and where to "
            "look), explain (adds the derivation), solution (adds the fix). The bundle holds no text above it."
        },
    )
    python_version: str = field(
        default="3.10", metadata={"help": "Minimum Python version setup.sh accepts before installing one."}
    )
    repo: Path = field(default=REPO_ROOT, metadata={"help": "The instructor repository to build from."})


# ---------------------------------------------------------------------------------------------------------------
# The scripts inside the bundle
# ---------------------------------------------------------------------------------------------------------------

SETUP_SH = r"""#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image (Ubuntu). Generated by
# `python -m grader.tools.gradescope build`; see grader/tools/gradescope.py in the course repository.
set -euo pipefail
SOURCE="${AUTOGRADER_SOURCE:-/autograder/source}"
VENV="${AUTOGRADER_VENV:-/autograder/venv}"
MIN_PYTHON="__MIN_PYTHON__"
export DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1

python_ok() {  # $1: an interpreter; true when it exists, is new enough and has venv + pip support
    command -v "$1" >/dev/null 2>&1 &&
        "$1" -c "import sys, venv, ensurepip; sys.exit(sys.version_info < tuple(map(int, '$MIN_PYTHON'.split('.'))))" \
            >/dev/null 2>&1
}

PYTHON=""
for candidate in python3.13 python3.12 python3.11 python3.10 python3; do
    if python_ok "$candidate"; then PYTHON="$candidate"; break; fi
done
if [ -z "$PYTHON" ]; then
    apt-get update -y
    apt-get install -y --no-install-recommends python3 python3-venv python3-pip ca-certificates
    if python_ok python3; then
        PYTHON=python3
    else  # an older image (Ubuntu 20.04 ships 3.8): take 3.11 from the deadsnakes PPA
        apt-get install -y --no-install-recommends software-properties-common gpg-agent
        add-apt-repository -y ppa:deadsnakes/ppa
        apt-get update -y
        apt-get install -y --no-install-recommends python3.11 python3.11-venv
        PYTHON=python3.11
    fi
fi
echo "setup.sh: using $("$PYTHON" --version) at $(command -v "$PYTHON")"

"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --upgrade pip
# Gradescope has no GPU: the CPU build of torch is a fraction of the size and all the grader needs.
"$VENV/bin/python" -m pip install torch --index-url https://download.pytorch.org/whl/cpu
"$VENV/bin/python" -m pip install "$SOURCE"

# Smoke test: grade the stub. It must produce a results.json (its score is 0), or the image is broken.
SMOKE="$(mktemp -d)"
status=0
(cd "$SMOKE" && "$VENV/bin/python" -m grader --submission "$SOURCE/exercise/rewards.py" \
    --results "$SMOKE/results.json" --no-training >"$SMOKE/log.txt" 2>&1) || status=$?
if [ ! -s "$SMOKE/results.json" ] || [ "$status" -ge 2 ]; then
    echo "setup.sh: the grader does not work in this image (exit status $status):" >&2
    cat "$SMOKE/log.txt" >&2
    exit 1
fi
rm -rf "$SMOKE"
echo "setup.sh: done"
"""

RUN_AUTOGRADER = r"""#!/usr/bin/env bash
# Gradescope runs this for every submission. Generated by `python -m grader.tools.gradescope build`.
# The student's files are in $AUTOGRADER_ROOT/submission; the grade goes to $AUTOGRADER_ROOT/results/results.json.
set -u
ROOT="${AUTOGRADER_ROOT:-/autograder}"
SOURCE="${AUTOGRADER_SOURCE:-$ROOT/source}"
PYTHON="${AUTOGRADER_PYTHON:-$ROOT/venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python3
RESULTS="$ROOT/results/results.json"
mkdir -p "$ROOT/results"
cd "$SOURCE" || exit 0
"$PYTHON" -m grader.tools.gradescope run --root "$ROOT" --source "$SOURCE" || true
if [ ! -s "$RESULTS" ]; then  # Python itself could not run: still give Gradescope a valid, honest report
    printf '%s\n' '{"score": 0, "output": "The autograder failed to start (not a problem with your submission). Please tell your instructor.", "tests": []}' >"$RESULTS"
fi
exit 0
"""


# ---------------------------------------------------------------------------------------------------------------
# Building the bundle
# ---------------------------------------------------------------------------------------------------------------


def _bundle_files(repo: Path) -> list[str]:
    tracked = git_files(repo)
    candidates: set[str] = set()
    if tracked is None:
        for entry in BUNDLE_SOURCES:
            if (repo / entry.rstrip("/")).exists():
                candidates.update(walk(repo, entry.rstrip("/"), is_excluded))
    else:
        candidates.update(tracked)
    if (repo / "exercise" / "assets").is_dir():
        candidates.update(walk(repo, "exercise/assets", is_excluded))
    files = []
    for rel in candidates:
        parts = rel.split("/")
        allowed = any(rel == s or (s.endswith("/") and rel.startswith(s)) for s in BUNDLE_SOURCES)
        if not allowed or any(p in _SKIP_PARTS or p.endswith((".pyc", ".egg-info")) for p in parts):
            continue
        path = repo / rel
        if path.is_file() and not path.is_symlink():
            files.append(rel)
    return sorted(files)


def draw_seed() -> int:
    """A grading seed students have not seen: random, never the default 0."""
    return secrets.randbelow(2**31 - 2) + 1


def build_bundle(config: GradescopeConfig) -> tuple[Path, dict[str, Any]]:
    """Write the bundle folder and zip; return the zip's path and the baked settings."""
    if not (0 < config.time_budget < config.timeout):
        raise ValueError(
            f"--time-budget ({config.time_budget:g} s) must be positive and below --timeout ({config.timeout:g} s)"
        )
    repo = config.repo.resolve()
    out = config.out.resolve()
    folder = out / BUNDLE_NAME
    zip_path = out / f"{BUNDLE_NAME}.zip"
    if folder.exists():
        if not (folder / CONFIG_NAME).is_file():
            raise FileExistsError(f"{folder} exists and is not a Gradescope bundle; refusing to replace it")
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    files = _bundle_files(repo)
    for rel in files:
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(repo / rel, folder / rel)
    if "README.md" not in files:  # pyproject.toml names it: pip install fails without one
        (folder / "README.md").write_text(
            "rl-sentiment: the exercise and its autograder (Gradescope bundle).\n"
        )
        files.append("README.md")
    # Students read what this grader writes: its rubric names the level, and its catalogue holds nothing above it.
    set_feedback_level(folder, repo, config.feedback_level, "Gradescope bundle")
    problems = feedback_level_problems(folder, repo, config.feedback_level)
    if problems:
        raise ValueError("the bundle's feedback level is not enforced:\n  - " + "\n  - ".join(problems))
    settings = {
        "seed": config.seed if config.seed is not None else draw_seed(),
        "no_training": config.no_training,
        "timeout": config.timeout,
        "time_budget": config.time_budget,
        "feedback_level": config.feedback_level,
        "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (folder / CONFIG_NAME).write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    setup = SETUP_SH.replace("__MIN_PYTHON__", config.python_version)
    for name, text in (("setup.sh", setup), ("run_autograder", RUN_AUTOGRADER)):
        (folder / name).write_text(text, encoding="utf-8")
        (folder / name).chmod(0o755)
    files += [CONFIG_NAME, "setup.sh", "run_autograder"]
    if (folder / "reference").exists():
        raise RuntimeError("the Gradescope bundle must not contain reference/")

    # Gradescope expects setup.sh and run_autograder at the root of the zip, not inside a folder.
    write_zip(folder, zip_path, sorted(set(files)), prefix="")
    return zip_path, settings


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


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["run"]:
        parser = argparse.ArgumentParser(prog="python -m grader.tools.gradescope run")
        root_default = os.environ.get("AUTOGRADER_ROOT", "/autograder")
        parser.add_argument("--root", type=Path, default=Path(root_default), help="Gradescope's /autograder")
        parser.add_argument(
            "--source",
            type=Path,
            default=Path(os.environ.get("AUTOGRADER_SOURCE", f"{root_default}/source")),
            help="where the bundle was unpacked (default ROOT/source)",
        )
        args = parser.parse_args(argv[1:])
        data = run_autograder(args.root, args.source)
        print(f"run_autograder: score {data.get('score')}", flush=True)
        return 0
    if argv[:1] == ["build"]:
        argv = argv[1:]
    config = parse_into(
        GradescopeConfig,
        argv,
        prog="python -m grader.tools.gradescope [build]",
        description="Build the Gradescope autograder zip (setup.sh, run_autograder, the grader, a hidden seed).",
        epilog="Inside Gradescope, run_autograder calls `python -m grader.tools.gradescope run`.",
    )
    try:
        zip_path, settings = build_bundle(config)
    except ValueError as exc:  # settings that would grade badly: say which, build nothing
        print(f"gradescope: error: {exc}", file=sys.stderr)
        return 2
    print(f"gradescope: wrote {zip_path} ({zip_path.stat().st_size / 1e6:.1f} MB)")
    print(
        f"gradescope: grading seed {settings['seed']} (recorded in {CONFIG_NAME} inside the zip; keep it private)"
    )
    print(
        "gradescope: upload the zip in the assignment's 'Configure Autograder' page (base image: Ubuntu 22.04)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
