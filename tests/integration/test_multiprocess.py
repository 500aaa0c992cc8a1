"""Scale-out: two DDP processes on CPU (gloo), launched the way the README documents."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.parametrize(
    "launcher",
    [
        # `accelerate launch --cpu` starts ONE process unless given an MPI hostfile; `--multi_gpu` goes through
        # torchrun and, on a machine without CUDA, runs multi-process DDP on CPU.
        [
            sys.executable,
            "-m",
            "accelerate.commands.launch",
            "--multi_gpu",
            "--num_processes",
            "2",
            "--num_machines",
            "1",
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
            "-m",
            "exercise.train",
        ],
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "exercise.train"],
    ],
    ids=["accelerate", "torchrun"],
)
def test_two_processes(launcher, tmp_path, tiny_gpt2_dir):
    model_dir = tiny_gpt2_dir
    out = tmp_path / "run"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(
        [
            *launcher,
            "--preset",
            "tiny",
            "--model_name",
            str(model_dir),
            "--max_steps",
            "2",
            "--eval_every",
            "1",
            "--kl_type",
            "forward",
            "--use_solution",
            "--validation_prompts",
            "4",
            "--output_dir",
            str(out),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["timing"]["num_processes"] == 2
    assert [r["step"] for r in summary["history"]] == [0, 1, 2]
    # Only the main process prints and validates.
    assert proc.stdout.count("validation at step 0") == 1
    assert (out / "model.safetensors").exists()
