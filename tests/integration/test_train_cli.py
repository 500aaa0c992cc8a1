"""``python -m exercise.train`` as a user runs it (subprocesses, a random stand-in model, two steps)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def train(*args, env=None, timeout=300):
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "exercise.train", *map(str, args)],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.slow  # over 10 s on 2 cores (measured with --durations)
def test_two_steps_write_the_outputs(tiny_gpt2_dir, tmp_path):
    out = tmp_path / "run"
    proc = train(
        "--preset",
        "tiny",
        "--model_name",
        tiny_gpt2_dir,
        "--max_steps",
        2,
        "--eval_every",
        1,
        "--kl_type",
        "forward",
        "--use_solution",
        "--validation_prompts",
        4,
        "--output_dir",
        out,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert [r["step"] for r in summary["history"]] == [0, 1, 2]
    assert summary["config"]["kl_type"] == "forward" and summary["config"]["preset"] == "tiny"
    assert summary["error"] is None and summary["timing"]["steps"] == 2
    assert (out / "curves.png").read_bytes()[:4] == b"\x89PNG"
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert samples and {"step", "prompt", "completion", "sentiment"} <= set(samples[0])
    assert (out / "model.safetensors").exists()
    assert "validation at step 2" in proc.stdout


@pytest.mark.slow  # over 10 s on 2 cores (measured with --durations)
def test_bad_choice_lists_the_choices():
    proc = train("--kl_type", "fwd", timeout=120)
    assert proc.returncode == 2
    assert "invalid choice: 'fwd'" in proc.stderr
    assert "'none', 'forward', 'backward'" in proc.stderr


@pytest.mark.slow  # over 10 s on 2 cores (measured with --durations)
def test_gpt2_offline_without_cache_is_one_clear_line(tmp_path):
    proc = train(
        "--preset",
        "gpt2",
        "--max_steps",
        1,
        "--output_dir",
        tmp_path / "run",
        env={"HF_HOME": str(tmp_path / "empty-hf-home")},
        timeout=120,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stdout + proc.stderr
    error_lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1, proc.stderr
    assert "openai-community/gpt2" in error_lines[0] and "--preset tiny" in error_lines[0]
    assert "HF_HUB_OFFLINE" in error_lines[0]


@pytest.mark.slow  # over 10 s on 2 cores (measured with --durations)
def test_student_stub_gives_the_one_line_not_implemented_message(tiny_gpt2_dir, tmp_path):
    proc = train(
        "--preset",
        "tiny",
        "--model_name",
        tiny_gpt2_dir,
        "--max_steps",
        2,
        "--kl_type",
        "forward",
        "--validation_prompts",
        2,
        "--no_save_model",
        "--output_dir",
        tmp_path / "run",
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: kl_penalty_forward is not implemented yet: that's Exercise 1 in exercise/rewards.py. "
        "Run with --kl_type none, or --use_solution to see the reference."
    )
