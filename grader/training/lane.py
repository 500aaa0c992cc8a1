"""A training lane: its own process (``python -m grader.training.lane LANE.json``, started by
:func:`grader.training.runs.execute`; with several LANE.json, one process that imports the libraries once and
forks a process per lane), trusted grader code that imports torch and the exercise pipeline, opens its own
sandbox for the submission and makes its share of the runs, writing one record per run."""

from __future__ import annotations

import json
import os
import random
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from grader.contract import STUDENT_FUNCTIONS
from grader.training.runs import COST, Job, RunRecord, safe_key, sandbox_from_fields
from grader.training.settings import load_settings, spec_of, train_config

# ---------------------------------------------------------------------------------------------------------------
# The lane (its own process: imports torch and the pipeline)
# ---------------------------------------------------------------------------------------------------------------


def gpt2_models_available(model_name: str = "", sentiment_model: str = "") -> bool:
    """GPT-2 and the ``gpt2`` preset's sentiment model (or the grade's ``--model_name`` / ``--sentiment_model``)
    are on disk (Hugging Face cache or local directories)."""
    from exercise.presets import GPT2, VADER

    def local(name: str) -> bool:
        if Path(name).expanduser().is_dir():
            return True
        try:
            from huggingface_hub import try_to_load_from_cache

            return isinstance(try_to_load_from_cache(name, "config.json"), str)
        except Exception:  # noqa: BLE001 - no cache, no hub library: not available
            return False

    sentiment = sentiment_model or GPT2.sentiment_model
    return local(model_name or GPT2.model_name) and (sentiment == VADER or local(sentiment))


def resolve_preset(requested: str, model_name: str = "", sentiment_model: str = "") -> str:
    """``auto``: ``gpt2`` on CUDA when its models (the preset's or the given ones) are available locally and its
    thresholds are calibrated (``calibrated = true`` in thresholds.toml: placeholders would judge nothing), else
    ``tiny``. ``--training-preset gpt2`` asks for it whatever its calibration."""
    if requested != "auto":
        return requested
    if not gpt2_models_available(model_name, sentiment_model) or not load_settings("gpt2").calibrated:
        return "tiny"  # decided without importing torch (the grader process asks too)
    import torch

    return "gpt2" if torch.cuda.is_available() else "tiny"


#: Calls of a run kept in its record (``RunRecord.calls``): the first two, then about one in ten drawn at random by
#: the lane (a policy that has drifted gives other batches than the first steps'; a drawn index cannot be known
#: in advance, so code that is wrong on most calls is caught whichever it is), at most this many per function.
#: Also kept, whatever the count: a call that did not return numbers (it ends the run).
KEPT_CALLS = 6
KEEP_SHARE = 0.1


class _Proxy:
    """A submission function as the pipeline sees it: calls cross into the sandboxed worker, and a call that
    does not return valid numbers raises :class:`exercise.errors.StudentCodeError` with the reason. Keeps a few
    calls as training made them (arguments and what came back), for the checks to hold against the contract:
    the grader's side of the sandbox records them, so the submission cannot tell a recorded call from another."""

    def __init__(self, sandbox: Any, name: str) -> None:
        self.sandbox = sandbox
        self.name = name
        self.__name__ = name
        self.reset()

    def reset(self) -> None:
        """Per run: the time spent in this function's calls, and the calls kept."""
        self.seconds = 0.0
        self.made = 0
        self.calls: list[dict[str, Any]] = []
        self._draw = random.Random(os.urandom(16))  # the lane's own: the submission cannot predict it

    def __call__(self, *args: Any) -> list[float]:
        from exercise.errors import StudentCodeError

        began = time.perf_counter()
        try:
            outcome = self.sandbox.call(self.name, *args)
        finally:
            self.seconds += time.perf_counter() - began
        index, self.made = self.made, self.made + 1
        call = {
            "function": self.name,
            "index": index,
            "args": list(args),
            "status": outcome.status,
            "value": list(outcome.value) if outcome.ok and outcome.value is not None else None,
            "message": outcome.message,
        }
        drawn = index < 2 or self._draw.random() < KEEP_SHARE
        if (drawn and len(self.calls) < KEPT_CALLS) or not outcome.ok:
            self.calls.append(call)
        if outcome.ok and outcome.value is not None:
            return list(outcome.value)
        raise StudentCodeError(outcome.describe(self.name), component=self.name)


def _lane(config: dict[str, Any]) -> None:
    import warnings

    warnings.filterwarnings("ignore")
    from rich.console import Console
    from transformers.utils import logging as hf_logging

    from exercise.config import TrainConfig
    from exercise.functions import RewardFunctions
    from exercise.train import run
    from grader.sandbox import SandboxedSubmission

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    out_dir = Path(config["out_dir"])
    out_dir.mkdir(parents=True, exist_ok=True)
    models = {
        "model_name": config.get("model_name") or "",
        "sentiment_model": config.get("sentiment_model") or "",
    }
    preset = resolve_preset(config["preset"], **models)
    settings = load_settings(preset, config.get("settings_path"))
    sandbox_config = sandbox_from_fields(config.get("sandbox", {}), settings.runs.run_budget_s)
    jobs = [Job(**job) for job in config["jobs"]]
    by_submission: dict[str, list[Job]] = {}
    for job in jobs:
        by_submission.setdefault(job.submission, []).append(job)

    def write(record: RunRecord) -> None:
        path = out_dir / f"{safe_key(record.key or record.run)}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record.to_dict()), encoding="utf-8")
        os.replace(tmp, path)

    for submission, sub_jobs in by_submission.items():  # one sandbox at a time (see grader.sandbox)
        with SandboxedSubmission(submission, sandbox_config) as sandbox:
            imported = sandbox.start()
            proxies = [_Proxy(sandbox, name) for name in STUDENT_FUNCTIONS]
            functions = RewardFunctions(*proxies, source=Path(submission).name)
            for job in sub_jobs:
                output_dir = str(Path(config["runs_dir"]) / safe_key(job.key))
                fields = {**train_config(job.run, settings, job.seed, output_dir, **models), **job.overrides}
                record = RunRecord(job.run, key=job.key, seed=job.seed, preset=preset, config=fields)
                if not imported.ok and (spec_of(job.run).function is not None or job.overrides):
                    record.error = f"the submission could not be imported: {imported.message}"
                    record.wall_time_s = 0.0
                    write(record)
                    continue
                sandbox.begin_check(settings.runs.run_budget_s)
                for proxy in proxies:
                    proxy.reset()
                began = time.perf_counter()
                try:
                    result = run(
                        TrainConfig(**fields),
                        functions,
                        console=Console(quiet=True),
                        on_step=_step_writer(
                            Path(config["out_dir"]).parent / "progress" / f"{safe_key(job.key)}.json",
                            lambda proxies=proxies: sum(p.seconds for p in proxies),
                        ),
                    )
                except Exception as exc:  # noqa: BLE001 - a pipeline bug: the grader's fault, reported as such
                    detail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)[-3:])
                    record.error = f"the training pipeline failed: {detail.strip()}"
                    record.internal, record.wall_time_s = True, time.perf_counter() - began
                    write(record)
                    continue
                component = result.error_component
                record.ok, record.error, record.component = result.ok, result.error, component
                # an error no submission function caused (a missing model ...) is the grader's
                record.internal = bool(result.error) and component not in STUDENT_FUNCTIONS
                record.history, record.wall_time_s, record.timing = (
                    result.history,
                    result.wall_time_s,
                    {**(result.timing or {}), "submission_seconds": sum(p.seconds for p in proxies)},
                )
                record.calls = [call for proxy in proxies for call in proxy.calls] or None
                # A call refused or cut short by the run's budget (the sandbox's check budget): the run missed
                # its budget; the checks decide whether the submission or the machine took the time.
                if not result.ok and component in STUDENT_FUNCTIONS:
                    if time.perf_counter() - began >= settings.runs.run_budget_s:
                        record.timed_out, record.budget_s = True, settings.runs.run_budget_s
                        record.budget_cost = COST.get(job.run, 1.0)
                write(record)


def _step_writer(path: Path, submission_seconds: Callable[[], float] = lambda: 0.0):
    """``on_step`` for a run: its step and step count, and the seconds its submission calls took so far, written
    where the grader polls for its progress line and, at a deadline, for whose time it was (replaced
    atomically: the grader never reads half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(step: int, total: int) -> None:
        tmp = path.with_suffix(".tmp")
        done = {"step": step, "total": total, "submission_seconds": submission_seconds()}
        tmp.write_text(json.dumps(done), encoding="utf-8")
        os.replace(tmp, path)

    return write


# ---------------------------------------------------------------------------------------------------------------
# Several lanes from one process: the libraries imported once, then one forked process per lane
# ---------------------------------------------------------------------------------------------------------------


def _preload() -> None:
    """What every run imports before its first step (exercise/preload.py: ~6 CPU-s per process), imported once
    here and shared by the lanes forked from this process; and the sandbox's side of the grader."""
    import warnings

    warnings.filterwarnings("ignore")  # in the lanes too: their logs keep the grader's own messages readable
    import exercise.preload  # noqa: F401 - importing it is the preload

    try:
        import grader.sandbox  # noqa: F401
    except Exception:  # noqa: BLE001 - a lane reports its own import failure, with its run's record
        pass


def _fork_lanes(paths: Sequence[str]) -> int:
    """Run one lane per LANE.json in ``paths``, each in a process forked from this one after :func:`_preload`,
    with the lane's folder as its working directory and its ``log.txt`` as its output (as a lane started on its
    own; the grader starts this process in the first lane's folder, writing to that lane's log). Returns 0 when every lane ended normally, else the first failing lane's status. The lanes share this
    process's session: the grader kills them all with it; and each dies with this process (a lane never
    outlives the process that waits for it). Nothing of CUDA is touched before the fork (a forked CUDA context is
    unusable): importing torch does not initialise it."""
    from grader.sandbox.proctree import die_with_parent

    _preload()
    sys.stdout.flush()
    sys.stderr.flush()
    pids = []
    for path in paths:
        pid = os.fork()
        if pid == 0:  # the lane
            code = 1
            try:
                die_with_parent()
                lane_dir = Path(path).resolve().parent
                if lane_dir != Path.cwd().resolve():  # the first lane's log is this process's own output
                    log = os.open(lane_dir / "log.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                    os.dup2(log, 1)
                    os.dup2(log, 2)
                    os.close(log)
                    os.chdir(lane_dir)
                _lane(json.loads(Path(path).read_text(encoding="utf-8")))
                code = 0
            except BaseException:  # noqa: BLE001 - the lane's end: its log says why, its status says that it failed
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        pids.append(pid)
    status = 0
    for pid in pids:
        _, wait_status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(wait_status)
        if code and not status:
            status = code if code > 0 else 128 - code  # killed by a signal: 128 + its number, as a shell says
    return status


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        print(
            "usage: python -m grader.training.lane LANE.json [LANE.json ...]  (started by the grader)",
            file=sys.stderr,
        )
        return 2
    if len(argv) > 1:
        return _fork_lanes(argv)
    config = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    _lane(config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
