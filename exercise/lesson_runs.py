"""Making the lesson's runs: each in a fresh worker process (forked from one that imported the libraries),
reusing finished runs with the same settings, each recorded with the commit it was made at (:func:`git_state`)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

from .lesson_specs import LessonConfig, RunSpec, run_dir_name, train_config

REPO = Path(__file__).resolve().parent.parent


def _train_in_worker(config_fields: dict, output_dir: str) -> dict:
    """Runs in a worker process: one training run, its console output to ``train.log``."""
    import warnings

    from rich.console import Console
    from transformers.utils import logging as hf_logging

    from .config import TrainConfig
    from .train import run

    warnings.filterwarnings("ignore", category=FutureWarning)
    hf_logging.disable_progress_bar()
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    made_at = git_state()  # before the run: the code it runs
    with open(Path(output_dir) / "train.log", "w") as log:
        result = run(TrainConfig(**config_fields), console=Console(file=log, width=120))
    (Path(output_dir) / MADE_AT).write_text(made_at + "\n")
    return {"error": result.error, "wall_s": result.wall_time_s}


MADE_AT = "made_at.txt"  # beside summary.json: the commit (and uncommitted changes) a run was made at


def _finished(summary_path: Path, expected: dict) -> bool:
    """A reusable run: its summary exists, has no error, ran every step and has the settings asked for."""
    try:
        summary = json.loads(summary_path.read_text())
    except (OSError, ValueError):
        return False
    saved = summary.get("config", {})
    final = summary.get("final") or {}
    # Fields left to the preset (None) are resolved in the saved config: compare the ones the lesson sets.
    same = all(saved.get(k) == v for k, v in expected.items() if v is not None and k != "output_dir")
    return same and summary.get("error") is None and final.get("step") == expected["max_steps"]


def _log(line: str) -> None:
    print(line, flush=True)  # progress shows at once also when the output goes to a file


def make_runs(specs: Sequence[RunSpec], config: LessonConfig, log=_log) -> dict[RunSpec, dict]:
    """Make (or reuse) every run; returns each spec's summary (or ``{"error": ...}``)."""
    runs_dir = Path(config.runs_dir)
    by_dir: dict[str, list[RunSpec]] = {}
    for spec in specs:
        by_dir.setdefault(run_dir_name(spec, config), []).append(spec)
    todo, done_dirs = [], {}
    for name, group in by_dir.items():
        out = runs_dir / name
        fields = {**dataclasses.asdict(train_config(group[0], config)), "output_dir": str(out)}
        if config.reuse and _finished(out / "summary.json", fields):
            done_dirs[name] = json.loads((out / "summary.json").read_text())
        else:
            todo.append((group[0], fields, out))
    if config.report_only:
        for _spec, _, out in todo:
            done_dirs[out.name] = {"error": "not run yet (--report_only)"}
        log(f"{len(by_dir)} runs: {len(done_dirs) - len(todo)} finished, {len(todo)} not run yet")
        todo = []
    else:
        log(f"{len(by_dir)} runs: {len(done_dirs)} reused, {len(todo)} to make, {config.workers} at a time")
    started = time.perf_counter()
    # A fresh process per run (max_tasks_per_child=1): no state carries from one run into the next, and a run
    # that crashes its process takes only itself down. Each is forked from a server process that imported the
    # libraries once (exercise/preload.py), instead of importing them again (~6 CPU-s a run, most of a short one).
    context = get_context("forkserver")
    context.set_forkserver_preload(["exercise.preload"])
    with ProcessPoolExecutor(config.workers, mp_context=context, max_tasks_per_child=1) as pool:
        futures = {pool.submit(_train_in_worker, fields, str(out)): (spec, out) for spec, fields, out in todo}
        for done, future in enumerate(as_completed(futures), 1):
            spec, out = futures[future]
            try:
                outcome = future.result()
            except Exception as error:  # a worker that died: the run is reported failed, the others go on
                outcome = {"error": f"worker process failed: {type(error).__name__}: {error}"}
            summary_path = out / "summary.json"
            if outcome.get("error") is None and summary_path.is_file():
                summary = done_dirs[out.name] = json.loads(summary_path.read_text())
                final = summary["final"]
                note = (
                    f"sentiment {final['sentiment_mean']:.3f}, ref. perplexity {final['ref_perplexity']:.1f}"
                )
            else:
                summary = done_dirs[out.name] = {"error": outcome.get("error") or "no summary.json written"}
                note = f"FAILED: {summary['error']} (log: {out / 'train.log'})"
            elapsed = time.perf_counter() - started
            log(f"[{done}/{len(todo)}, {elapsed:.0f} s] {spec.label} seed {spec.seed}: {note}")
    return {spec: done_dirs[name] for name, group in by_dir.items() for spec in group}


def git_state() -> str:
    """The commit, and which files that change a run (exercise/, reference/) differ from it."""

    def git(*args: str) -> str:
        try:
            done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False)
        except OSError:
            return ""
        return done.stdout.rstrip("\n") if done.returncode == 0 else ""  # status lines start with a space

    commit = git("rev-parse", "--short=10", "HEAD").strip() or "unknown (not a git checkout)"
    changed = [
        line[3:]
        for line in git("status", "--porcelain", "--", "exercise", "reference").splitlines()
        # the lesson command's own modules (exercise/lesson*.py) change no run
        if not (line[3:].startswith("exercise/lesson") and line[3:].endswith(".py"))
    ]
    if changed:
        return f"{commit}, with uncommitted changes in {', '.join(sorted(changed))}"
    return commit
