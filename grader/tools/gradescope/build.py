"""Building the Gradescope autograder zip: the grader, the exercise, a hidden seed, ``setup.sh`` and
``run_autograder`` (from templates/)."""

from __future__ import annotations

import json
import math
import secrets
import shutil
import time
from pathlib import Path
from typing import Any

from grader.tools.bundle import git_files, walk, write_zip
from grader.tools.gradescope.config import (
    BUNDLE_NAME,
    BUNDLE_SOURCES,
    CONFIG_NAME,
    RUNNER_FILES,
    SKIP_PARTS,
    GradescopeConfig,
)
from grader.tools.handout import feedback_level_problems, is_excluded, set_feedback_level

#: The two scripts of the bundle (``setup.sh`` with ``__MIN_PYTHON__`` filled in), kept as files in templates/.
TEMPLATES = Path(__file__).with_name("templates")
ANSWER_KEY = "grader/checks/key/"
SETUP_SH = (TEMPLATES / "setup.sh").read_text(encoding="utf-8")
RUN_AUTOGRADER = (TEMPLATES / "run_autograder").read_text(encoding="utf-8")


# ---------------------------------------------------------------------------------------------------------------
# Building the bundle
# ---------------------------------------------------------------------------------------------------------------


#: The bundle's README.md: pip needs one (pyproject.toml names it); the instructor's README stays out.
BUNDLE_README = (
    "rl-sentiment: the exercise and its autograder, as built for Gradescope by "
    "`python -m grader.tools gradescope`.\n"
)


def _excluded(rel: str) -> bool:
    """What the bundle leaves out: what a handout leaves out (the instructor's tools, the calibration tables),
    except the answer key (the bundle is the instructor's grader: it grades the hidden checks) and the runner
    that Gradescope calls."""
    return is_excluded(rel) and not rel.startswith(ANSWER_KEY) and rel not in RUNNER_FILES


def _bundle_files(repo: Path) -> list[str]:
    tracked = git_files(repo)
    candidates: set[str] = set()
    if tracked is None:
        for entry in BUNDLE_SOURCES:
            if (repo / entry.rstrip("/")).exists():
                candidates.update(walk(repo, entry.rstrip("/"), _excluded))
    else:
        candidates.update(tracked)
    if (repo / "exercise" / "assets").is_dir():
        candidates.update(walk(repo, "exercise/assets", _excluded))
    files = []
    for rel in candidates:
        parts = rel.split("/")
        allowed = any(rel == s or (s.endswith("/") and rel.startswith(s)) for s in BUNDLE_SOURCES)
        if not allowed or any(p in SKIP_PARTS or p.endswith((".pyc", ".egg-info")) for p in parts):
            continue
        if _excluded(rel):
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
    if not (0 < config.time_budget < math.inf):
        raise ValueError(f"--time-budget must be a positive number of seconds, not {config.time_budget:g}")
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
    (folder / "README.md").write_text(BUNDLE_README, encoding="utf-8")
    files.append("README.md")
    # Students read what this grader writes: its rubric names the level, and its catalogue holds nothing above it.
    set_feedback_level(folder, repo, config.feedback_level, "Gradescope bundle")
    problems = feedback_level_problems(folder, repo, config.feedback_level)
    if problems:
        raise ValueError("the bundle's feedback level is not enforced:\n  - " + "\n  - ".join(problems))
    settings = {
        "seed": config.seed if config.seed is not None else draw_seed(),
        "no_training": config.no_training,
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
