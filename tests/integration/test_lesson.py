"""``python -m exercise.lesson``: the mechanism that makes the lesson's tables (not their numbers)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

CONFIGURATIONS = ["plain", "forward", "backward", "none", "shaped", "none, high lr"]


def lesson(*args, timeout=1500):
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "exercise.lesson", *map(str, args)],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def tables(markdown: str) -> list[list[list[str]]]:
    """Every Markdown table of ``markdown``: its rows (header first, separator dropped) as lists of cells."""
    found, current = [], []
    for line in markdown.splitlines() + [""]:
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
            if not all(set(c) <= {"-", " "} for c in cells):
                current.append(cells)
        elif current:
            found.append(current)
            current = []
    return found


MEAN_SD = re.compile(r"^-?\d+(\.\d+)? ± \d+(\.\d+)?$")


# 12 one-step training runs, two at a time, each in a fresh process: about 1.5 min on 2 idle cores, many more on
# busy ones (its own timeout, above the suite's 600 s).
@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_two_seeds_write_every_configuration_and_the_sweep(tmp_path):
    args = [
        "--seeds", 0, 1, "--sweep_seeds", 0, "--sweep_coefs", 0.1, "--max_steps", 1, "--eval_every", 1,
        "--validation_prompts", 4, "--runs_dir", tmp_path / "runs", "--docs_dir", tmp_path / "docs",
    ]  # fmt: skip
    proc = lesson(*args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # The sweep's runs (forward and backward at 0.1, seed 0) are the configurations' own: made once.
    assert "12 runs: 0 reused, 12 to make" in proc.stdout
    document = (tmp_path / "docs" / "lesson-runs.md").read_text()
    for figure in ("lesson-curves.png", "lesson-sweep.png"):
        assert (tmp_path / "docs" / "figures" / figure).read_bytes()[:4] == b"\x89PNG"
        assert f"(figures/{figure})" in document
    assert "- command: `python -m exercise.lesson --seeds 0 1" in document
    assert re.search(r"- commit: [0-9a-f]{10}", document)

    summary, *rest = tables(document)
    assert [row[0] for row in summary[1:]] == CONFIGURATIONS
    metrics = ["sentiment", "ref. perplexity", "KL(pi‖ref)", "KL(ref‖pi)", "distinct-2", "repetition"]
    columns = [summary[0].index(name) for name in metrics]
    for row in summary[1:]:
        assert all(MEAN_SD.match(row[c]) for c in columns), row
        assert re.fullmatch(r"\d / \d of 2", row[-1])
    claims = rest[0]
    assert claims[0] == ["claim", "measured"] and len(claims) > 5
    per_seed = [t for t in rest if t[0][1:] == ["seed 0", "seed 1"]]
    assert len(per_seed) == 6  # five metrics and the late spreads
    for table in per_seed[:5]:
        assert [row[0] for row in table[1:]] == CONFIGURATIONS
        assert all(re.fullmatch(r"-?\d+\.\d+", cell) for row in table[1:] for cell in row[1:])
    sweep = next(t for t in rest if t[0][:2] == ["penalty", "kl_coef"])
    assert {(row[0], row[1]) for row in sweep[1:]} == {("forward", "0.1"), ("backward", "0.1")}
    assert all(row[2] == "1" for row in sweep[1:])

    # Notes written by hand survive a rerun, and a rerun with the same settings reuses every run.
    path = tmp_path / "docs" / "lesson-runs.md"
    path.write_text(document.replace("<!-- end of notes -->", "A note.\n<!-- end of notes -->"))
    again = lesson(*args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "12 runs: 12 reused, 0 to make" in again.stdout
    assert "A note." in path.read_text()


def test_bad_settings_say_what_to_do(tmp_path):
    proc = lesson("--seeds", 1, 1, "--runs_dir", tmp_path, "--docs_dir", tmp_path, timeout=120)
    assert proc.returncode == 2
    assert "must not repeat a seed" in proc.stderr
    assert not (tmp_path / "lesson-runs.md").exists()


def test_every_flag_has_help():
    import dataclasses

    from exercise.lesson import LessonConfig

    assert all(f.metadata.get("help") for f in dataclasses.fields(LessonConfig))
