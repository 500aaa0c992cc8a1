"""Short GRPO runs through the real exercise pipeline with a submission's functions: what the training checks score.

Who runs what:

* the grader process (no torch here) decides which runs a grade needs, starts one or more *lanes* and waits for
  them within a time budget: ``execute(jobs, ...)``;
* a lane is a fresh ``python -m grader.training LANE.json`` process: trusted grader code that imports torch and
  ``exercise.train``, opens its own :class:`~grader.sandbox.SandboxedSubmission` for the submission file and
  runs its share of the jobs, one after the other, through :func:`exercise.train.run`. The submission's three
  functions reach the pipeline as proxies that call the sandboxed worker; a call that fails (raises, times
  out, crashes the worker, returns something unusable) stops that run with the reason, and the lane goes on
  with its next run;
* each finished run is written as a JSON record (validation history, error, timing) that the grader reads back.
  Nothing is unpickled; the records are written by trusted code.

Lanes run in parallel (one torch thread each: on small CPU models that is fastest, and it keeps runs
deterministic); runs that need none of the submission's functions (the baseline) do not depend on it.

The run settings and thresholds per preset live in ``grader/calibration/thresholds.toml``; ``auto`` picks the
preset inside the lanes (``gpt2`` on CUDA when GPT-2 and the sentiment model are available locally, else ``tiny``)
so that the grader process never imports torch.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import math
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

SETTINGS_PATH = Path(__file__).with_name("calibration") / "thresholds.toml"
PRESETS = ("tiny", "gpt2")
PRESET_CHOICES = ("auto", *PRESETS)
#: A lane's own output (transformers' warnings ...), kept for the grader's error messages.
_LOG_TAIL_BYTES = 3000


# ---------------------------------------------------------------------------------------------------------------
# The runs and their settings
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunSpec:
    """One kind of graded run: ``python -m exercise.train --reward_shaping ... --kl_type ...``."""

    name: str
    reward_shaping: str
    kl_type: str
    function: str | None  # the submission's function the run is about (None: the baseline needs none)
    label: str  # for people: legends, feedback
    also_needs: tuple[str, ...] = ()  # further functions of the submission the run trains with

    @property
    def needs(self) -> tuple[str, ...]:
        """Every function of the submission this run calls (the gate tries each before the run starts)."""
        return (self.function, *self.also_needs) if self.function else ()


RUNS: dict[str, RunSpec] = {
    spec.name: spec
    for spec in (
        RunSpec("baseline", "linear", "none", None, "baseline (sentiment reward, no KL penalty)"),
        RunSpec("forward", "linear", "forward", "kl_penalty_forward", "your kl_penalty_forward"),
        RunSpec("backward", "linear", "backward", "kl_penalty_backward", "your kl_penalty_backward"),
        # Exercise 2's run (`--reward_shaping shaped --kl_type forward`): the shaping is judged against the forward
        # run, which differs from it only in the shaping (same penalty, coefficient and seed).
        RunSpec(
            "shaped",
            "shaped",
            "forward",
            "shaped_reward",
            "your shaped_reward with your kl_penalty_forward",
            also_needs=("kl_penalty_forward",),
        ),
    )
}


@dataclass(frozen=True)
class RunSettings:
    max_steps: int
    eval_every: int
    forward_kl_coef: float
    backward_kl_coef: float
    run_budget_s: float

    def kl_coef(self, kl_type: str) -> float:
        """The coefficient of a run with ``--kl_type kl_type`` (the forward and the shaped run share one)."""
        return {"forward": self.forward_kl_coef, "backward": self.backward_kl_coef}.get(kl_type, 0.0)


@dataclass(frozen=True)
class Thresholds:
    baseline_min_gain: float
    kl_min_gain: float
    kl_max_ratio: float
    shaped_min_gain: float
    shaped_min_repetition_drop: float
    shaped_max_perplexity_ratio: float
    shaped_max_kl_ratio: float


@dataclass(frozen=True)
class TrainingSettings:
    preset: str
    calibrated: bool
    note: str
    runs: RunSettings
    thresholds: Thresholds


class SettingsError(ValueError):
    """``thresholds.toml`` is missing, unreadable or invalid (the grader's problem, reported as such)."""


def load_settings(preset: str, path: str | os.PathLike | None = None) -> TrainingSettings:
    """The run settings and thresholds of ``preset`` (``tiny`` or ``gpt2``), validated."""
    path = Path(path) if path is not None else SETTINGS_PATH
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"{path}: cannot read the training settings ({exc})") from exc
    table = data.get(preset)
    if not isinstance(table, dict):
        raise SettingsError(f"{path}: no [{preset}] table (presets there: {', '.join(sorted(data))})")

    def section(name: str, cls: type) -> Any:
        raw = table.get(name)
        wanted = {f for f in cls.__dataclass_fields__}
        if not isinstance(raw, dict) or set(raw) != wanted:
            got = sorted(raw) if isinstance(raw, dict) else raw
            raise SettingsError(f"{path}: [{preset}.{name}] must have exactly {sorted(wanted)}, not {got}")
        for key, value in raw.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise SettingsError(f"{path}: [{preset}.{name}] {key} must be a number, not {value!r}")
        return cls(**raw)

    runs = section("runs", RunSettings)
    if runs.max_steps < 1 or runs.eval_every < 1 or runs.run_budget_s <= 0:
        raise SettingsError(
            f"{path}: [{preset}.runs] max_steps, eval_every and run_budget_s must be positive"
        )
    if min(runs.forward_kl_coef, runs.backward_kl_coef) <= 0:
        raise SettingsError(f"{path}: [{preset}.runs] the KL coefficients must be positive")
    thresholds = section("thresholds", Thresholds)
    if (
        min(thresholds.kl_max_ratio, thresholds.shaped_max_perplexity_ratio, thresholds.shaped_max_kl_ratio)
        <= 0
    ):
        raise SettingsError(
            f"{path}: [{preset}.thresholds] kl_max_ratio, shaped_max_perplexity_ratio and shaped_max_kl_ratio "
            "must be positive"
        )
    return TrainingSettings(
        preset=preset,
        calibrated=bool(table.get("calibrated", False)),
        note=str(table.get("note", "")),
        runs=runs,
        thresholds=thresholds,
    )


def train_config(run: str, settings: TrainingSettings, seed: int, output_dir: str) -> dict[str, Any]:
    """The :class:`exercise.config.TrainConfig` fields of one graded run (plain data: it is also recorded)."""
    spec = RUNS[run]
    return {
        "preset": settings.preset,
        "reward_shaping": spec.reward_shaping,
        "kl_type": spec.kl_type,
        "kl_coef": settings.runs.kl_coef(spec.kl_type) if spec.kl_type != "none" else 0.1,
        "max_steps": settings.runs.max_steps,
        "eval_every": settings.runs.eval_every,
        "seed": seed,
        "output_dir": output_dir,
        "save_model": False,
        "quiet": True,
    }


def file_digest(path: str | os.PathLike) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ---------------------------------------------------------------------------------------------------------------
# Orchestration (grader process)
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """One run to make: ``run`` (a key of :data:`RUNS`) with the functions of ``submission``, at ``seed``."""

    key: str
    run: str
    submission: str
    seed: int = 0


#: Relative cost of a run, for spreading jobs over lanes (a KL run also scores policy and reference).
_COST = {"baseline": 1.0, "shaped": 1.4, "forward": 1.4, "backward": 1.4}


def default_lanes() -> int:
    """Parallel training processes: one per available CPU core, at most 4."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


def split_jobs(jobs: Sequence[Job], lanes: int) -> list[list[Job]]:
    """Spread jobs over at most ``lanes`` lanes, longest first onto the least loaded lane; a lane keeps the jobs
    of one submission together (one sandbox per submission and lane)."""
    lanes = max(1, min(lanes, len(jobs)))
    heap = [(0.0, i) for i in range(lanes)]
    assigned: list[list[Job]] = [[] for _ in range(lanes)]
    for job in sorted(jobs, key=lambda j: -_COST.get(j.run, 1.0)):
        load, i = heapq.heappop(heap)
        assigned[i].append(job)
        heapq.heappush(heap, (load + _COST.get(job.run, 1.0), i))
    order = {job.key: n for n, job in enumerate(jobs)}
    return [sorted(lane, key=lambda j: (j.submission, order[j.key])) for lane in assigned if lane]


def _failed_record(job: Job, error: str, *, internal: bool) -> dict[str, Any]:
    return {
        "key": job.key,
        "run": job.run,
        "seed": job.seed,
        "ok": False,
        "error": error,
        "component": None,
        "internal": internal,
        "history": [],
        "wall_time_s": 0.0,
    }


def _lane_env() -> dict[str, str]:
    env = dict(os.environ)
    package_parent = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH", "")) if p)
    env.update(
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        OPENBLAS_NUM_THREADS="1",
        TOKENIZERS_PARALLELISM="false",
        PYTHONHASHSEED="0",
        MPLBACKEND="Agg",
        HF_HUB_OFFLINE="1",  # the graded runs use local models only; never wait on the network
        TRANSFORMERS_NO_ADVISORY_WARNINGS="1",
        PYTHONUNBUFFERED="1",
    )
    return env


def execute(
    jobs: Sequence[Job],
    *,
    work_dir: str | os.PathLike,
    timeout_s: float,
    preset: str = "auto",
    lanes: int | None = None,
    call_timeout_s: float = 10.0,
    hidden_paths: Iterable[str] = (),
    settings_path: str | os.PathLike | None = None,
    isolation: str = "auto",
) -> dict[str, dict[str, Any]]:
    """Make every job's run in parallel lanes; return one record per job key, failed ones with the reason.

    A record: ``key``, ``run``, ``seed``, ``preset``, ``ok``, ``error`` (one line, for the student),
    ``component`` (the function at fault), ``internal`` (True: the grader failed, not the submission),
    ``history`` (``exercise.train.RunResult.history``), ``config``, ``wall_time_s``. Returns when every lane has
    ended; lanes still running at ``timeout_s`` are killed with their process trees.
    """
    from grader.proctree import become_subreaper, children_of_me, kill_tree, start_ticks

    if not jobs:
        return {}
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    become_subreaper()  # orphans of a killed lane (its sandbox worker) come back to us to be killed
    preexisting = children_of_me()
    started = time.monotonic()
    procs: list[tuple[subprocess.Popen, int | None, list[Job], Path]] = []
    for n, lane_jobs in enumerate(split_jobs(jobs, lanes or default_lanes())):
        lane_dir = work / f"lane{n}"
        lane_dir.mkdir(parents=True, exist_ok=True)
        config = {
            "jobs": [asdict(job) for job in lane_jobs],
            "preset": preset,
            "out_dir": str(lane_dir / "records"),
            "runs_dir": str(lane_dir / "runs"),
            "call_timeout_s": call_timeout_s,
            "hidden_paths": [str(p) for p in hidden_paths],
            "isolation": isolation,  # the grade's --isolation: a lane's sandbox is as strict as the grader's
            "settings_path": str(settings_path) if settings_path else None,
        }
        (lane_dir / "lane.json").write_text(json.dumps(config), encoding="utf-8")
        with open(lane_dir / "log.txt", "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "grader.training", str(lane_dir / "lane.json")],
                cwd=lane_dir,
                env=_lane_env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        procs.append((proc, start_ticks(proc.pid), lane_jobs, lane_dir))

    timed_out = False
    while any(proc.poll() is None for proc, *_ in procs):
        if time.monotonic() - started > timeout_s:
            timed_out = True
            break
        time.sleep(0.1)
    # Every lane has ended or is killed now, with whatever it started (a sandbox worker re-parented to us).
    for proc, ticks, _jobs, _dir in procs:
        kill_tree(proc, ticks, preexisting)

    records: dict[str, dict[str, Any]] = {}
    for proc, _ticks, lane_jobs, lane_dir in procs:
        for job in lane_jobs:
            record = _read_record(lane_dir / "records" / f"{_safe(job.key)}.json")
            if record is None:
                if timed_out:
                    record = _failed_record(
                        job,
                        f"the training runs did not finish within their time budget ({timeout_s:g} s)",
                        internal=False,
                    )
                else:
                    record = _failed_record(
                        job,
                        f"the training process ended (exit status {proc.returncode}) before this run was "
                        f"recorded:\n{_tail(lane_dir / 'log.txt')}",
                        internal=True,
                    )
            records[job.key] = record
    return records


def _safe(key: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in key)


def _read_record(path: Path) -> dict[str, Any] | None:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _tail(path: Path, limit: int = _LOG_TAIL_BYTES) -> str:
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    return data[-limit:].decode("utf-8", "replace").strip()


# ---------------------------------------------------------------------------------------------------------------
# The lane (its own process: imports torch and the pipeline)
# ---------------------------------------------------------------------------------------------------------------


def gpt2_models_available() -> bool:
    """GPT-2 and the ``gpt2`` preset's sentiment model are on disk (Hugging Face cache or local directories)."""
    from exercise.presets import GPT2

    def local(name: str) -> bool:
        if Path(name).expanduser().is_dir():
            return True
        try:
            from huggingface_hub import try_to_load_from_cache

            return isinstance(try_to_load_from_cache(name, "config.json"), str)
        except Exception:  # noqa: BLE001 - no cache, no hub library: not available
            return False

    return local(GPT2.model_name) and local(GPT2.sentiment_model)


def resolve_preset(requested: str) -> str:
    """``auto``: ``gpt2`` on CUDA when its models are available locally, else ``tiny``."""
    if requested != "auto":
        return requested
    import torch

    return "gpt2" if torch.cuda.is_available() and gpt2_models_available() else "tiny"


class _Proxy:
    """A submission function as the pipeline sees it: calls cross into the sandboxed worker, and a call that
    does not return valid numbers raises :class:`exercise.errors.StudentCodeError` with the reason."""

    def __init__(self, sandbox: Any, name: str) -> None:
        self.sandbox = sandbox
        self.name = name
        self.__name__ = name

    def __call__(self, *args: Any) -> list[float]:
        from exercise.errors import StudentCodeError
        from grader.checks.harness import CallFailed

        outcome = self.sandbox.call(self.name, *args)
        if outcome.ok and outcome.value is not None:
            return list(outcome.value)
        raise StudentCodeError(CallFailed(self.name, outcome).describe(), component=self.name)


def _lane(config: dict[str, Any]) -> None:
    import warnings

    warnings.filterwarnings("ignore")
    from rich.console import Console
    from transformers.utils import logging as hf_logging

    from exercise.config import TrainConfig
    from exercise.functions import NAMES as FUNCTION_NAMES
    from exercise.functions import RewardFunctions
    from exercise.train import run
    from grader.sandbox import SandboxConfig, SandboxedSubmission

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    out_dir = Path(config["out_dir"])
    out_dir.mkdir(parents=True, exist_ok=True)
    preset = resolve_preset(config["preset"])
    settings = load_settings(preset, config.get("settings_path"))
    sandbox_config = SandboxConfig(
        call_timeout_s=float(config["call_timeout_s"]),
        check_budget_s=settings.runs.run_budget_s,
        hidden_paths=tuple(config["hidden_paths"]),
        isolation=config.get("isolation", "auto"),
    )
    jobs = [Job(**job) for job in config["jobs"]]
    by_submission: dict[str, list[Job]] = {}
    for job in jobs:
        by_submission.setdefault(job.submission, []).append(job)

    def write(record: dict[str, Any]) -> None:
        path = out_dir / f"{_safe(record['key'])}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record), encoding="utf-8")
        os.replace(tmp, path)

    for submission, sub_jobs in by_submission.items():  # one sandbox at a time (see grader.sandbox)
        with SandboxedSubmission(submission, sandbox_config) as sandbox:
            imported = sandbox.start()
            functions = RewardFunctions(
                *(_Proxy(sandbox, name) for name in FUNCTION_NAMES), source=Path(submission).name
            )
            for job in sub_jobs:
                output_dir = str(Path(config["runs_dir"]) / _safe(job.key))
                fields = train_config(job.run, settings, job.seed, output_dir)
                record: dict[str, Any] = {
                    "key": job.key,
                    "run": job.run,
                    "seed": job.seed,
                    "preset": preset,
                    "config": fields,
                    "internal": False,
                    "component": None,
                }
                if not imported.ok and RUNS[job.run].function is not None:
                    record.update(ok=False, error=f"the submission could not be imported: {imported.message}")
                    record.update(history=[], wall_time_s=0.0)
                    write(record)
                    continue
                sandbox.begin_check(settings.runs.run_budget_s)
                began = time.perf_counter()
                try:
                    result = run(TrainConfig(**fields), functions, console=Console(quiet=True))
                except Exception as exc:  # noqa: BLE001 - a pipeline bug: the grader's fault, reported as such
                    detail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)[-3:])
                    record.update(ok=False, error=f"the training pipeline failed: {detail.strip()}")
                    record.update(internal=True, history=[], wall_time_s=time.perf_counter() - began)
                    write(record)
                    continue
                component = result.error_component
                record.update(
                    ok=result.ok,
                    error=result.error,
                    component=component,
                    # an error no submission function caused (a missing model ...) is the grader's
                    internal=bool(result.error) and component not in FUNCTION_NAMES,
                    history=result.history,
                    wall_time_s=result.wall_time_s,
                    timing=result.timing,
                )
                write(record)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) != 1:
        print("usage: python -m grader.training LANE.json  (started by the grader)", file=sys.stderr)
        return 2
    config = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    _lane(config)
    return 0


# ---------------------------------------------------------------------------------------------------------------
# The curves (grader process; matplotlib only)
# ---------------------------------------------------------------------------------------------------------------

_STYLE = {
    "baseline": dict(color="0.45", linestyle="--"),
    "forward": dict(color="tab:blue"),
    "backward": dict(color="tab:orange"),
    "shaped": dict(color="tab:green"),
}


def plot_runs(
    records: dict[str, dict[str, Any]],
    path: str | os.PathLike,
    *,
    title: str = "",
    thresholds: Thresholds | None = None,
    labels: Callable[[str], str] | None = None,
) -> Path:
    """Sentiment, KL(pi || pi_ref), KL(pi_ref || pi), repetition and reference perplexity against the step, one
    line per run (``records`` by run name). The KL limits of the forward and backward checks, and the shaped
    check's limits relative to the forward run, are drawn where ``thresholds`` are given."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    fig, grid = plt.subplots(2, 3, figsize=(15, 8), constrained_layout=True)
    axes = list(grid.flat)
    panels = (
        ("sentiment_mean", "validation sentiment (mean)"),
        ("kl_forward", "KL(pi || pi_ref) per token"),
        ("kl_backward", "KL(pi_ref || pi) per token"),
        ("repetition", "repetition (share of words already used)"),
        ("ref_perplexity", "perplexity under the reference model"),
    )
    baseline = records.get("baseline", {}).get("history") or []
    control = records.get("forward", {}).get("history") or []  # what the shaped run is compared with
    for ax, (metric, ylabel) in zip(axes, panels, strict=False):
        for name, record in records.items():
            history = record.get("history") or []
            points = [(h["step"], h.get(metric)) for h in history if _number(h.get(metric))]
            if not points:
                continue
            label = (labels or (lambda n: RUNS[n].label if n in RUNS else n))(name)
            if not record.get("ok"):
                label += " (stopped)"
            ax.plot(*zip(*points, strict=True), marker="o", markersize=3, label=label, **_STYLE.get(name, {}))
        if metric == "kl_forward" and thresholds is not None and control and _number(control[-1].get(metric)):
            limit = thresholds.shaped_max_kl_ratio * control[-1][metric]
            ax.axhline(limit, color=_STYLE["shaped"]["color"], linewidth=0.8, linestyle=":")
            ax.annotate(
                f"pass limit of the shaped run: {thresholds.shaped_max_kl_ratio:g} x forward's",
                (0.02, limit),
                xycoords=("axes fraction", "data"),
                fontsize=7,
                va="top",
            )
        if metric.startswith("kl_"):
            ax.set_yscale("symlog", linthresh=0.1)
            run = "forward" if metric == "kl_forward" else "backward"
            if thresholds is not None and baseline and _number(baseline[-1].get(metric)):
                limit = thresholds.kl_max_ratio * baseline[-1][metric]
                ax.axhline(limit, color=_STYLE[run]["color"], linewidth=0.8, linestyle=":")
                ax.annotate(
                    f"pass limit of the {run} run: {thresholds.kl_max_ratio:g} x baseline",
                    (0.02, limit),
                    xycoords=("axes fraction", "data"),
                    fontsize=7,
                    va="bottom",
                )
        if metric == "ref_perplexity":
            plotted = [y for line in ax.get_lines() for y in line.get_ydata() if y > 0]
            if plotted and max(plotted) > 20 * min(plotted):  # gibberish: perplexity in the thousands
                ax.set_yscale("log")
        if thresholds is not None and control and _number(control[-1].get(metric)):
            limit = None
            if metric == "repetition":
                limit = control[-1][metric] - thresholds.shaped_min_repetition_drop
                text = (
                    f"pass limit of the shaped run: {thresholds.shaped_min_repetition_drop:g} below forward's"
                )
            elif metric == "ref_perplexity":
                limit = thresholds.shaped_max_perplexity_ratio * control[-1][metric]
                text = f"pass limit of the shaped run: {thresholds.shaped_max_perplexity_ratio:g} x forward's"
            if limit is not None:
                ax.axhline(limit, color=_STYLE["shaped"]["color"], linewidth=0.8, linestyle=":")
                ax.annotate(text, (0.02, limit), xycoords=("axes fraction", "data"), fontsize=7, va="bottom")
        ax.set_xlabel("GRPO step")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    handles, names = axes[0].get_legend_handles_labels()
    axes[-1].axis("off")
    if handles:
        axes[-1].legend(handles, names, fontsize=9, loc="center")
    if title:
        fig.suptitle(title, fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)
    return path


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


if __name__ == "__main__":
    sys.exit(main())
