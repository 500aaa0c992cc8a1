"""The training engine's one handle: :class:`TrainingEngine` makes a grade's graded runs of one submission.

The training checks (:mod:`grader.checks.training`) judge runs; they never start a process. They ask the
grade's engine for the :class:`RunSet` of the submission at a seed, and the first check that asks makes it:

1. each student function a run needs is called once on a small batch through the grader's sandbox (the
   pipeline's own pre-flight does the same inside the run): a stub or a broken function costs its run, with the
   reason, in milliseconds, and when no function can be trained with, nothing is run at all;
2. the runs that can be made are made in parallel lanes (:func:`grader.training.runs.execute`), the control
   run (``baseline``: none of the submission's code) among them unless a shared baseline file
   (:mod:`grader.training.baseline`) or the run an earlier grade kept (:mod:`grader.training.cache`) replaces it;
3. the records come back as one :class:`RunSet`, which every later check of the grade shares.

One engine per grade (the runner makes it): nothing a grade made leaks into the next.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from exercise.presets import PRESETS
from grader.contract import SHAPING, CallOutcome, Submission
from grader.sandbox import SandboxConfig
from grader.training import cache as run_cache
from grader.training.baseline import BaselineError, load_baseline
from grader.training.challenge import ChallengeConfig, read_challenge
from grader.training.lane import resolve_preset
from grader.training.plots import ShapingGoal, plot_runs
from grader.training.runs import Job, RunRecord, execute, submission_seconds_of
from grader.training.settings import RUNS, SETTINGS_PATH, TrainingSettings, file_digest, load_settings


class TrainingInternalError(RuntimeError):
    """The grader cannot make or read the training runs at all (settings that disagree, a shared baseline file
    that does not match): raised, the runner reports it as an internal grader error. A run that could not be
    judged because of the machine is :class:`~grader.grading.results.NotGradable` instead."""


@dataclass(frozen=True)
class TrainingOptions:
    """What a grade's options say about its training runs (``python -m grader``'s training options)."""

    #: ``auto``, ``tiny`` or ``gpt2``: the models of the runs (``auto`` resolves inside the lanes)
    preset: str = "auto"
    #: training processes in parallel (None: one per CPU core, at most 4)
    lanes: int | None = None
    #: a shared baseline run file (``--baseline-run``) used instead of making the control run; empty: make it
    baseline_run: str = ""
    #: the runs' policy and sentiment model (absolute local directories or ``vader``); empty: the preset's
    model_name: str = ""
    sentiment_model: str = ""
    #: the directory that keeps the control run across grades (:mod:`grader.training.cache`); empty: none
    run_cache: str = ""


@dataclass
class RunSet:
    """The graded runs of one submission at one seed, by run name (``grader.training.settings.RUNS``)."""

    records: dict[str, RunRecord]
    settings: TrainingSettings | None
    seed: int
    wall_time_s: float = 0.0
    plots: dict[str, str] = field(default_factory=dict)  # artifact stem -> PNG written for it
    baseline_note: str = ""  # where the baseline run came from, when it was not made by this grade alone
    #: the tuning challenge's configuration, when the grade makes its run (records["challenge"])
    challenge: ChallengeConfig | None = None


# What the gate calls each function with (the pipeline's pre-flight uses a batch of the same shape).
_GATE_KL = ([[-2.0, -0.5], [-1.0]], [[-2.5, -0.25], [-1.0]], 0.1)
_GATE_SHAPING = ([0.25, 0.75], [" was fine.", " was a wonderful, moving film."], ["The movie", "Overall, it"])


def untrainable(submission: Submission, function: str) -> str | None:
    """Why ``function`` cannot be trained with (its one call on a small batch fails), or None."""
    return preflight(submission, function)[1]


def preflight(submission: Submission, function: str) -> tuple[CallOutcome, str | None]:
    """The one call that decides whether ``function`` can be trained with, and why not (None: it can)."""
    args = _GATE_SHAPING if function == SHAPING else _GATE_KL
    outcome: CallOutcome = submission.call(function, *args)
    if not outcome.ok or outcome.value is None:
        return outcome, outcome.describe(function)
    if len(outcome.value) != 2:
        return outcome, (
            f"{function} returned {len(outcome.value)} values for 2 completions (one per completion expected)"
        )
    if not all(math.isfinite(v) for v in outcome.value):
        return outcome, f"{function} returned a non-finite value ({outcome.value}) for an ordinary batch"
    return outcome, None


@dataclass
class TrainingEngine:
    """One grade's training runs of the submission at ``submission_path``.

    ``work_dir``: the grade's scratch directory (deleted by the runner afterwards). ``sandbox``: the grade's
    sandbox limits (timeouts, isolation, CPU quota, hidden paths): each lane opens its own sandbox with them, as
    strict as the grader's own.
    """

    submission_path: str
    work_dir: str = ""
    options: TrainingOptions = field(default_factory=TrainingOptions)
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)
    #: called with each started run's (step, steps) by run name while runs are made (the CLI's progress line)
    progress: Callable[[dict[str, tuple[int, int]]], None] | None = None
    #: the runs the grade's checks judge (run names of RUNS, and "challenge" for the tuning challenge's run);
    #: None: the four graded runs
    wanted: frozenset[str] | None = None

    _made: dict[tuple, RunSet] = field(default_factory=dict, compare=False, repr=False)
    _work_dirs: list[Path] = field(default_factory=list, compare=False, repr=False)

    @property
    def submission_name(self) -> str:
        return Path(self.submission_path or "rewards.py").name

    def run_set(
        self, submission: Submission, seed: int, budget_s: float, only: frozenset[str] | None = None
    ) -> RunSet:
        """The graded runs at ``seed`` (those the grade's checks judge, or ``only`` these: a check that wants
        more evidence at another seed asks for its own runs): made on first use within ``budget_s`` seconds,
        then shared."""
        if not self.submission_path:
            raise TrainingInternalError("the training engine needs the submission's path")
        o = self.options
        wanted = self.wanted if only is None else only
        key = (file_digest(self.submission_path), seed, o.preset, file_digest(SETTINGS_PATH), o.model_name,
               o.sentiment_model, wanted)  # fmt: skip
        if key not in self._made:
            self._made[key] = self._make(submission, seed, budget_s, wanted)
        return self._made[key]

    def _make(
        self, submission: Submission, seed: int, budget_s: float, wanted: frozenset[str] | None
    ) -> RunSet:
        started = time.monotonic()
        shared = self._shared_baseline(seed)  # a validated baseline made once for many grades, or None
        records: dict[str, RunRecord] = {}
        jobs = []
        reasons: dict[str, str | None] = {}  # each function is tried once, whichever runs need it
        for name, spec in RUNS.items():
            if spec.function is None or (wanted is not None and name not in wanted):
                continue
            failed = None
            for function in spec.needs:
                if function not in reasons:
                    reasons[function] = untrainable(submission, function)
                if reasons[function] is not None:
                    failed = function
                    break
            if failed is None:
                jobs.append(Job(name, name, self.submission_path, seed))
            else:
                reason = reasons[failed] or ""
                if failed != spec.function:
                    reason = f"this run also trains with your {failed} ({spec.label}), and {reason}"
                records[name] = RunRecord(name, error=reason, component=failed, gated=True)
        with_challenge = wanted is not None and "challenge" in wanted
        challenge = self._challenge(submission, seed, reasons, records) if with_challenge else None
        twin = self._graded_twin(challenge) if challenge is not None else None
        if twin is not None and twin != "baseline" and twin not in {job.run for job in jobs}:
            twin = None  # its run is not part of this grade (--only): make the challenge's own
        if challenge is not None and twin is None:
            jobs.append(Job("challenge", "challenge", self.submission_path, seed, challenge.train_fields()))
        baseline_note = ""
        # a control is only worth its time with a graded run to compare with it (or a check of its own)
        with_baseline = wanted is None or "baseline" in wanted or twin == "baseline"
        if with_baseline and any(job.run != "challenge" for job in jobs):
            o = self.options
            baseline_job = Job("baseline", "baseline", self.submission_path, seed)
            kept = None if shared is not None else self._kept_baseline(seed)
            earlier = shared or kept
            if earlier is None:
                jobs.insert(0, baseline_job)
            work = Path(self.work_dir or ".") / f"training-seed{seed}"
            records.update(self._execute(jobs, work, budget_s))
            if earlier is not None:
                resolved = {r.preset for r in records.values() if r.preset}
                # `auto` may resolve otherwise in this grade's lanes: then the earlier run is not this grade's
                if resolved and earlier.preset not in resolved:
                    records.update(
                        self._execute([baseline_job], work.with_name(work.name + "-baseline"), budget_s)
                    )
                    baseline_note = (
                        f"The {'shared' if shared else 'kept'} baseline run was made with the {earlier.preset} "
                        f"preset, but this grade's runs use {', '.join(sorted(resolved))}: the baseline was made "
                        "again for this grade."
                    )
                elif shared is not None:
                    records["baseline"] = replace(shared, made_earlier=True)
                    baseline_note = (
                        "This baseline run was made once and shared by every grade at this seed and preset "
                        "(--baseline-run); it calls none of your code, so it is the run this grade would have made."
                    )
                else:
                    records["baseline"] = earlier
                    baseline_note = run_cache.describe(o.run_cache, seed, earlier.preset or "")
            if o.run_cache and not (o.model_name or o.sentiment_model) and "baseline" in records:
                run_cache.write(o.run_cache, records["baseline"])  # only a run this grade made, finished
        else:
            records.update(self._execute(jobs, Path(self.work_dir or ".") / f"training-seed{seed}", budget_s))
            records["baseline"] = RunRecord(
                "baseline",
                error="not run: none of your functions could be trained with (see the other training checks), "
                "so there is nothing to compare it with",
                gated=True,
            )
        if challenge is not None and twin is not None:  # the challenge asked for a run the grade makes anyway
            made = records.get(twin)
            if made is not None and not made.gated:
                records["challenge"] = replace(made, run="challenge", key="challenge")
            else:  # ... unless that run was not made (its function failed its gate): make it as the challenge
                job = Job("challenge", "challenge", self.submission_path, seed, challenge.train_fields())
                work = Path(self.work_dir or ".") / f"training-seed{seed}-challenge"
                records.update(self._execute([job], work, budget_s))
        presets = {r.preset for r in records.values() if r.preset}
        if len(presets) > 1:
            raise TrainingInternalError(f"the training processes disagreed on the preset: {sorted(presets)}")
        settings = load_settings(presets.pop()) if presets else None
        return RunSet(
            records,
            settings,
            seed,
            time.monotonic() - started,
            baseline_note=baseline_note,
            challenge=challenge,
        )

    def _preset(self) -> str:
        """The preset the lanes will resolve ``auto`` to (the same function, the same answer)."""
        o = self.options
        return resolve_preset(o.preset, o.model_name, o.sentiment_model)

    def _graded_twin(self, config: ChallengeConfig) -> str | None:
        """The graded run the challenge's configuration is identical to, if any: its run is reused, not made
        twice (the reference's tuned configuration is the graded forward run's)."""
        preset = self._preset()
        if self.options.model_name or self.options.sentiment_model:
            return None  # other models: the preset's defaults say nothing about them
        runs = load_settings(preset).runs
        graded_rate = runs.learning_rate or PRESETS[preset].learning_rate
        if config.learning_rate != graded_rate or config.max_steps != runs.max_steps:
            return None
        for name, spec in RUNS.items():
            same_penalty = spec.kl_type == config.kl_type and (
                spec.kl_type == "none" or runs.kl_coef(spec.kl_type) == config.kl_coef
            )
            if same_penalty and spec.reward_shaping == config.reward_shaping:
                return name
        return None

    def _challenge(
        self, submission: Submission, seed: int, reasons: dict[str, str | None], records: dict[str, RunRecord]
    ) -> ChallengeConfig | None:
        """The challenge's configuration when its run can be made; else None and its record says why."""
        declaration = read_challenge(
            self.submission_path, load_settings(self._preset()).challenge.max_run_steps
        )
        if declaration.config is None:
            records["challenge"] = RunRecord("challenge", error=declaration.problem, gated=True)
            return None
        for function in declaration.config.needs:
            if function not in reasons:
                reasons[function] = untrainable(submission, function)
            if reasons[function] is not None:
                records["challenge"] = RunRecord(
                    "challenge",
                    error=f"your configuration trains with {function}, and {reasons[function]}",
                    component=function,
                    gated=True,
                )
                return None
        return declaration.config

    def submission_seconds(self) -> float:
        """Seconds the submission's calls took inside this grade's training runs so far (each batch of runs: its
        longest lane), also for runs killed at the grade's deadline: whose the time was."""
        return sum(submission_seconds_of(work.glob("lane*")) for work in self._work_dirs)

    def _execute(self, jobs: list[Job], work: Path, budget_s: float) -> dict[str, RunRecord]:
        self._work_dirs.append(work)
        o = self.options
        return execute(
            jobs,
            work_dir=work,
            timeout_s=budget_s,
            preset=o.preset,
            lanes=o.lanes,
            sandbox=self.sandbox,
            model_name=o.model_name,
            sentiment_model=o.sentiment_model,
            on_progress=self.progress,
        )

    def _kept_baseline(self, seed: int) -> RunRecord | None:
        """The control run an earlier grade on this machine kept (:mod:`grader.training.cache`), when it still
        matches; None without a cache, with the grade's own models, or when none matches."""
        o = self.options
        if not o.run_cache or o.model_name or o.sentiment_model:
            return None
        return run_cache.read(o.run_cache, seed, self._preset())

    def _shared_baseline(self, seed: int) -> RunRecord | None:
        """The shared baseline run of ``options.baseline_run``, checked against this grade (seed, preset,
        settings, libraries, run configuration): a file that does not match is the grader's error, never a
        different grade."""
        if not self.options.baseline_run:
            return None
        try:
            return load_baseline(self.options.baseline_run, seed=seed, preset=self.options.preset)
        except BaselineError as exc:
            raise TrainingInternalError(str(exc)) from exc

    def plot(self, runs: RunSet, stem: str, goal: ShapingGoal | None = None) -> list[str]:
        """The curves PNG next to the results (``<stem>_training.png``), drawn once per grade and stem, with the
        declared shaping ``goal``'s metric (every check of a grade passes the same one)."""
        if not stem or not any(r.history for r in runs.records.values()):
            return []
        if stem not in runs.plots:
            path = Path(f"{stem}_training.png")
            preset = runs.settings.preset if runs.settings else "?"
            try:
                plot_runs(
                    {name: runs.records[name] for name in RUNS if name in runs.records},
                    path,
                    title=f"Training checks for {self.submission_name}: preset {preset}, seed {runs.seed}",
                    thresholds=runs.settings.thresholds if runs.settings else None,
                    goal=goal,
                )
                runs.plots[stem] = str(path)
            except Exception:  # noqa: BLE001 - a picture is a convenience: never a reason to fail a check
                runs.plots[stem] = ""
        return [runs.plots[stem]] if runs.plots[stem] else []


def for_lanes(sandbox: SandboxConfig, run_budget_s: float) -> SandboxConfig:
    """The sandbox a lane opens: the grade's limits, with the run's budget as its check budget."""
    return replace(sandbox, check_budget_s=run_budget_s)
