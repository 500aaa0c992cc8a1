"""Running ``python -m grader`` as CI does, for the tests that grade through the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_grader(
    *args: str | Path, cwd: Path | None = None, timeout: float = 120
) -> tuple[int, dict | None, str]:
    """Run the CLI; return (exit status, parsed results.json or None, combined output)."""
    argv = [str(a) for a in args]
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR",)}
    env.update(NO_COLOR="1", COLUMNS="200")
    proc = subprocess.run(
        [sys.executable, "-m", "grader", *argv],
        cwd=cwd or ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    results_path = Path(argv[argv.index("--results") + 1]) if "--results" in argv else None
    data = None
    if results_path is not None and results_path.exists():
        data = json.loads(results_path.read_text())
    return proc.returncode, data, proc.stdout + proc.stderr
