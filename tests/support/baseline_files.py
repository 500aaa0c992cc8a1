"""Shared-baseline files (``python -m grader --baseline-run FILE``) made from a synthetic run record, as
``make_baseline`` writes them, so that no training run is needed to test how they are checked."""

from __future__ import annotations

import json
from pathlib import Path

from grader.training import baseline as shared
from grader.training.settings import load_settings, train_config


def baseline_history() -> list[dict]:
    return [
        {
            "step": step,
            "sentiment_mean": 0.6 + step / 400,
            "kl_forward": step / 100,
            "kl_backward": step / 120,
        }
        for step in (0, 40, 80)
    ]


def baseline_content(seed: int = 0, preset: str = "tiny") -> dict:
    """A baseline file as ``make_baseline`` writes it, for a run that never happened."""
    config = train_config("baseline", load_settings(preset), seed, "/tmp/somewhere")
    record = {
        "run": "baseline",
        "ok": True,
        "error": None,
        "component": None,
        "internal": False,
        "history": baseline_history(),
        "key": "baseline",
        "seed": seed,
        "preset": preset,
        "config": config,
    }
    return {"format": shared.FORMAT, "version": shared.VERSION, "seed": seed, "preset": preset,
            **shared.environment(), "record": record}  # fmt: skip


def baseline_file(tmp_path: Path, content: dict, name: str = "baseline.json") -> Path:
    """``content`` written as ``tmp_path / name``."""
    path = tmp_path / name
    path.write_text(json.dumps(content), encoding="utf-8")
    return path
