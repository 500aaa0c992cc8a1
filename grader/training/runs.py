"""Short GRPO runs through the real exercise pipeline with a submission's functions: what the training checks score.

Who runs what:

* the grader process (no torch here) decides which runs a grade needs, starts one or more *lanes* and waits for
  them within a time budget: ``execute(jobs, ...)``;
* a lane is a fresh ``python -m grader.training.lane LANE.json`` process: trusted grader code that imports torch and
  ``exercise.train``, opens its own :class:`~grader.sandbox.SandboxedSubmission` for the submission file and
  runs its share of the jobs, one after the other, through :func:`exercise.train.run`. The submission's three
  functions reach the pipeline as proxies that call the sandboxed worker; a call that fails (raises, times
  out, crashes the worker, returns something unusable) stops that run with the reason, and the lane goes on
  with its next run;
* each finished run is written as a JSON record (validation history, error, timing) that the grader reads back.
  Nothing is unpickled; the records are written by trusted code.

Lanes run in parallel (one torch thread each: on small CPU models that is fastest, and it keeps runs
deterministic); runs that need none of the submission's functions (the baseline) do not depend on it.

The run settings and thresholds per preset live in ``grader/training/calibration/thresholds.toml`` (:mod:`.settings`); ``auto`` picks the
preset inside the lanes (``gpt2`` on CUDA when GPT-2 and the sentiment model are available locally, else ``tiny``)
so that the grader process never imports torch.
"""

from __future__ import annotations

import heapq
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from grader.sandbox.policy import SandboxConfig

#: A lane's own output (transformers' warnings ...), kept for the grader's error messages.
_LOG_TAIL_BYTES = 3000

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
    #: TrainConfig fields that replace the run's own (the tuning challenge's run: the student's choices)
    overrides: dict[str, Any] = field(default_factory=dict, hash=False)


#: Relative cost of a run, for spreading jobs over lanes (a KL run also scores policy and reference), and for
#: judging from the control run's time whether a run that missed its budget would have made it on this machine
#: (:func:`grader.checks.training.overrun_cause`).
COST = {"baseline": 1.0, "shaped": 1.4, "forward": 1.4, "backward": 1.4, "challenge": 1.4}
_COST = COST


def default_lanes(jobs: int = 0) -> int:
    """Parallel training processes: one per available CPU core, at most 4; one per job when there is a single
    job more than cores (3 equal runs on 2 cores: two lanes would make one of them wait for a whole run, three
    share the cores and end together, for one more process start, about 6 CPU seconds)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    if jobs == cores + 1:
        return max(1, min(4, jobs))
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


@dataclass
class RunRecord:
    """What became of one graded run: written by a lane (or by the grader, for a run it did not start) as JSON
    (:meth:`to_dict`), read back into this class (:meth:`from_dict`) by the grader, the checks and the calibration.

    ``ok``: the run finished; ``error``: why not, one line for the student; ``component``: the student function
    at fault; ``internal``: the grader failed, not the submission; ``history``: the validations
    (``exercise.train.RunResult.history``); ``gated``: not started, because a function it needs failed its
    pre-flight call (or, for the baseline, nothing else could run). ``timed_out``: it missed its time budget
    (``budget_s`` seconds; ``budget_cost``: the work, in :data:`COST` units, its training process had to do within
    that budget: this run and those before it in the same process); whether that is the submission's fault or the
    machine's is the checks' to decide; ``made_earlier``: a control run made before this grade and reused. The
    rest says what was run and how long it took: ``key``, ``seed``,
    ``preset``, ``config`` (the ``TrainConfig`` fields), ``wall_time_s``, ``timing`` (``submission_seconds``: the
    time spent in the submission's calls); ``calls``: a few of the submission's calls as training made them
    (``function``, ``index``, ``args``, ``status``, ``value``, ``message``: :class:`grader.training.lane._Proxy`).
    """

    run: str
    ok: bool = False
    error: str | None = None
    component: str | None = None
    internal: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)
    gated: bool = False
    key: str | None = None
    seed: int | None = None
    preset: str | None = None
    config: dict[str, Any] | None = None
    wall_time_s: float | None = None
    timing: dict[str, Any] | None = None
    timed_out: bool = False
    budget_s: float | None = None
    budget_cost: float | None = None
    #: made before this grade and reused (a shared baseline file, the run cache): its time says nothing about
    #: how fast this machine is now
    made_earlier: bool = False
    calls: list[dict[str, Any]] | None = None

    #: Always written, even when empty; the others only when set.
    _ALWAYS = ("run", "ok", "error", "component", "internal", "history")

    def to_dict(self) -> dict[str, Any]:
        data = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in self._ALWAYS or (value is not None and value is not False):
                data[f.name] = value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        """The record a lane wrote (unknown keys ignored, so records of older graders still read); raises
        ValueError when ``data`` is not a record."""
        if not isinstance(data, dict) or not isinstance(data.get("run"), str):
            raise ValueError(f"not a run record: {str(data)[:80]}")
        known = {f.name for f in fields(cls)}
        record = cls(**{k: v for k, v in data.items() if k in known})
        if not isinstance(record.history, list) or not all(isinstance(h, dict) for h in record.history):
            raise ValueError(f"run record {record.run!r}: its history is not a list of validations")
        return record

    @property
    def usable(self) -> bool:
        """Finished, with at least two validations (step 0 and a later one) to compare."""
        return self.ok and len(self.history) >= 2

    @property
    def final(self) -> dict[str, Any]:
        """The last validation (empty when there is none)."""
        return self.history[-1] if self.history else {}


def _failed_record(job: Job, error: str, *, internal: bool) -> RunRecord:
    return RunRecord(job.run, error=error, internal=internal, key=job.key, seed=job.seed, wall_time_s=0.0)


def _lane_env() -> dict[str, str]:
    env = dict(os.environ)
    package_parent = str(Path(__file__).resolve().parents[2])  # the folder holding grader/
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
    sandbox: SandboxConfig | None = None,
    settings_path: str | os.PathLike | None = None,
    model_name: str = "",
    sentiment_model: str = "",
    on_progress: Callable[[dict[str, tuple[int, int]]], None] | None = None,
) -> dict[str, RunRecord]:
    """Make every job's run in parallel lanes; return one :class:`RunRecord` per job key, failed ones with the
    reason. Returns when every lane has ended; lanes still running at ``timeout_s`` are killed with their
    process trees. ``sandbox``: the grade's sandbox limits (timeouts, isolation, CPU quota, hidden paths), which
    each lane's own sandbox takes with the run's budget as its check budget (None: the defaults).
    ``model_name`` / ``sentiment_model``: every run's models instead of the preset's (absolute directories: the
    lanes run elsewhere; empty: the preset's). ``on_progress``: called about twice a second with each started
    run's (step, steps) by job key, from the files the lanes write (:func:`progress_of`).
    """
    from grader.sandbox.proctree import (
        become_subreaper,
        children_of_me,
        die_with_parent,
        kill_tree,
        start_ticks,
    )

    if not jobs:
        return {}
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    become_subreaper()  # orphans of a killed lane (its sandbox worker) come back to us to be killed
    preexisting = children_of_me()
    started = time.monotonic()
    planned: list[tuple[list[Job], Path]] = []
    for n, lane_jobs in enumerate(split_jobs(jobs, lanes or default_lanes(len(jobs)))):
        lane_dir = work / f"lane{n}"
        lane_dir.mkdir(parents=True, exist_ok=True)
        config = {
            "jobs": [asdict(job) for job in lane_jobs],
            "preset": preset,
            "out_dir": str(lane_dir / "records"),
            "runs_dir": str(lane_dir / "runs"),
            # the grade's sandbox (--isolation, --cpus, --call-timeout ...): a lane's is as strict as the grader's
            "sandbox": sandbox_fields(sandbox or SandboxConfig()),
            "settings_path": str(settings_path) if settings_path else None,
            # --model_name / --sentiment_model of the grade (empty: the preset's models)
            "model_name": model_name,
            "sentiment_model": sentiment_model,
        }
        (lane_dir / "lane.json").write_text(json.dumps(config), encoding="utf-8")
        planned.append((lane_jobs, lane_dir))
    # On a CPU (the tiny preset) one process for all the lanes: it imports torch, transformers and TRL once and
    # forks a process per lane (grader.training.lane._fork_lanes), instead of each lane paying ~6 CPU-s of
    # imports (a third of a 40-step run). Each lane keeps its own folder, log and records; they share the
    # process's session, so killing it kills them all. Other presets may use CUDA, which a forked process cannot
    # inherit safely: a process per lane, as before.
    groups = [planned] if preset == "tiny" else [[lane] for lane in planned]
    procs: list[tuple[subprocess.Popen, int | None, list[Job], Path]] = []
    for group in groups:
        first_dir = group[0][1]
        with open(first_dir / "log.txt", "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "grader.training.lane", *(str(d / "lane.json") for _, d in group)],
                cwd=first_dir,
                env=_lane_env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,  # a grader killed outright takes its lanes with it
            )
        ticks = start_ticks(proc.pid)
        procs += [(proc, ticks, lane_jobs, lane_dir) for lane_jobs, lane_dir in group]

    timed_out = False
    reported = 0.0
    while any(proc.poll() is None for proc, *_ in procs):
        if time.monotonic() - started > timeout_s:
            timed_out = True
            break
        if on_progress is not None and time.monotonic() - reported >= 0.5:
            reported = time.monotonic()
            on_progress(progress_of(lane_dir for *_, lane_dir in procs))
        time.sleep(0.1)
    # Every lane has ended or is killed now, with whatever it started (a sandbox worker re-parented to us).
    # (once per process: one started for several lanes is listed once per lane, and once reaped its pid may be
    # someone else's)
    for proc, ticks in {id(proc): (proc, ticks) for proc, ticks, *_ in procs}.values():
        kill_tree(proc, ticks, preexisting)

    records: dict[str, RunRecord] = {}
    for proc, _ticks, lane_jobs, lane_dir in procs:
        cost = 0.0  # the work this lane had to do, up to and including each job, within the budget
        for job in lane_jobs:
            cost += COST.get(job.run, 1.0)
            record = _read_record(lane_dir / "records" / f"{safe_key(job.key)}.json")
            if record is None:
                if timed_out:
                    record = _failed_record(
                        job,
                        f"the training runs did not finish within their time budget ({timeout_s:g} s)",
                        internal=False,
                    )
                    record.timed_out, record.budget_s, record.budget_cost = True, timeout_s, cost
                else:
                    record = _failed_record(
                        job,
                        f"the training process ended (exit status {proc.returncode}) before this run was "
                        f"recorded:\n{_tail(lane_dir / 'log.txt')}",
                        internal=True,
                    )
            records[job.key] = record
    return records


def progress_of(lane_dirs: Iterable[Path]) -> dict[str, tuple[int, int]]:
    """(step, steps) of every run the lanes have started, by job key (file name), from their progress files."""
    found: dict[str, tuple[int, int]] = {}
    for lane_dir in lane_dirs:
        for path in sorted((lane_dir / "progress").glob("*.json")):
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                found[path.stem] = (int(data["step"]), int(data["total"]))
            except (OSError, ValueError, KeyError, TypeError):
                continue  # a lane writing it right now: the next poll reads it
    return found


def submission_seconds_of(lane_dirs: Iterable[Path]) -> float:
    """The most seconds any one lane spent in the submission's calls, by its runs' progress files (lanes run in
    parallel, so the longest lane is how much of the grade's time the submission took there)."""
    longest = 0.0
    for lane_dir in lane_dirs:
        spent = 0.0
        for path in (lane_dir / "progress").glob("*.json"):
            try:
                spent += float(json.loads(path.read_text(encoding="utf-8")).get("submission_seconds", 0.0))
            except (OSError, ValueError, TypeError, AttributeError):
                continue
        longest = max(longest, spent)
    return longest


def sandbox_fields(config: SandboxConfig) -> dict[str, Any]:
    """``config`` as the JSON a lane reads back with :func:`sandbox_from_fields`."""
    return {**asdict(config), "hidden_paths": [str(p) for p in config.hidden_paths]}


def sandbox_from_fields(data: dict[str, Any], check_budget_s: float) -> SandboxConfig:
    names = {f.name for f in fields(SandboxConfig)}
    known = {k: v for k, v in data.items() if k in names}
    known["hidden_paths"] = tuple(known.get("hidden_paths", ()))
    return SandboxConfig(**{**known, "check_budget_s": check_budget_s})


def safe_key(key: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in key)


def _read_record(path: Path) -> RunRecord | None:
    try:
        return RunRecord.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None


def _tail(path: Path, limit: int = _LOG_TAIL_BYTES) -> str:
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    return data[-limit:].decode("utf-8", "replace").strip()
