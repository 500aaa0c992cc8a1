"""Grading one submission: rubric -> sandbox -> checks -> :class:`~grader.grading.results.GradingResults`.

>>> from grader.grading.runner import GradeRequest, grade
>>> results = grade(GradeRequest("exercise/rewards.py", seed=0, training=False))    # doctest: +SKIP
>>> results.score, results.full_marks
>>> results.write_json("results.json")

``grade`` never raises for anything the submission does, and turns its own failures into an internal-error
result (every check 0, the error in the output). It returns only after the worker's process tree is dead, so
whoever writes the results (the CLI) writes them last. Same submission and seed: same results, except
``execution_time``. The rendering lives in :mod:`grader.grading.report`, the command line in :mod:`grader.cli`.

A check that raises :class:`~grader.grading.results.NotGradable` (the machine, not the submission, kept it from
being judged: the training control run did not learn ...) is recorded as not gradable: no points lost, left out
of the maximum, the reason in its output and a note in the summary (see :mod:`grader.grading.results`).

With ``time_budget_s`` the whole grade has a deadline (:mod:`grader.grading.budget`): checks still to run when it
passes score 0 with the reason, the check it interrupts too, and the results are returned as usual.

This module holds the request and the order of a grade (:func:`grade`); its parts are beside it, each in its
module, and re-exported here: one check run and its points (:mod:`grader.grading.verdicts`: ``run_check``), the
rubric's gates (:mod:`grader.grading.gates`: ``apply_gates``), the checks the deadline cut short
(:mod:`grader.grading.out_of_time`), and the summary's texts and the results of a grade that failed as a whole
(:mod:`grader.grading.grade_summary`).
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from grader.checks.feedback import effective_level
from grader.checks.goals import read_declaration
from grader.contract import CheckContext, CheckFunction, TrainingContext
from grader.grading.budget import TAG_NOT_RUN, TAG_UNFINISHED, BudgetedSubmission, TimeBudget
from grader.grading.gates import apply_gates
from grader.grading.grade_summary import (
    Progress,
    _everything_failed,
    _import_feedback,
    _level_capped,
    _overall_output,
    hidden_note,
    not_gradable_note,
)
from grader.grading.out_of_time import (
    MACHINE_TIME_SHARE,
    _budget_note,
    _machine_out_of_time,
    _machines_time,
    _out_of_time,
)
from grader.grading.results import TAG_WITHHELD, GradingResults
from grader.grading.rubric import Rubric, RubricEntry, load_rubric
from grader.grading.verdicts import _feedback, _result, run_check
from grader.sandbox import SandboxConfig, SandboxedSubmission, SandboxError, SubmissionFileError
from grader.sandbox.proctree import boot_ticks_now, children_of_me, kill_descendants
from grader.training.engine import TrainingEngine, TrainingOptions

# The grade's parts, each in its module (the module docstring names them), are imported from here by the CLI,
# the tests and the mutation session's killers.
__all__ = [
    "MACHINE_TIME_SHARE",
    "TAG_WITHHELD",
    "GradeRequest",
    "Progress",
    "_budget_note",
    "_everything_failed",
    "_feedback",
    "_import_feedback",
    "_level_capped",
    "_machine_out_of_time",
    "_machines_time",
    "_out_of_time",
    "_overall_output",
    "_result",
    "apply_gates",
    "default_registry",
    "grade",
    "hidden_note",
    "not_gradable_note",
    "run_check",
    "runs_judged",
]


@dataclass(frozen=True)
class GradeRequest:
    """What to grade and how: everything ``python -m grader`` decides before grading (:mod:`grader.cli`)."""

    #: the submission file
    submission: str | Path
    #: selects hypothesis's examples and the training runs' seed; same seed, same results
    seed: int = 0
    #: whether to run the checks that need training runs (``--no-training``: False)
    training: bool = True
    #: the rubric (a loaded one, a path, or None: ``grader/grading/rubric.toml``)
    rubric: Rubric | str | Path | None = None
    #: how much a failed check explains (hint, explain, solution; None: the rubric's level), at most what this
    #: copy's misconception catalogue contains (:mod:`grader.checks.feedback`)
    feedback_level: str | None = None
    #: grade just these check ids (for debugging a check)
    only: Sequence[str] = ()
    #: hypothesis examples per property check (None: the checks' own numbers)
    max_examples: int | None = None
    #: seconds the whole grade may take (None: no limit; see the module docstring)
    time_budget_s: float | None = None
    #: the sandbox's limits; its ``hidden_paths`` are what the worker must never read (the CLI adds the results
    #: and JUnit directories)
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)
    #: the training runs' preset, lanes, shared baseline and models (:class:`grader.training.engine.TrainingOptions`)
    training_options: TrainingOptions = field(default_factory=TrainingOptions)
    #: checks may write files for people next to the results, named ``<artifact_stem>_<what>.<ext>`` (the CLI
    #: passes the results path without its suffix); their paths are listed in the results' ``output``. None: none
    artifact_stem: str | Path | None = None


def runs_judged(
    entries: Sequence[RubricEntry], registry: Mapping[str, CheckFunction]
) -> frozenset[str] | None:
    """The training runs the grade's checks judge (each training check's ``runs_judged``); None (the four graded
    runs) when a check does not say which (an instructor's own)."""
    wanted: set[str] = set()
    for entry in entries:
        if entry.requires_training:
            runs = getattr(registry.get(entry.check_id), "runs_judged", None)
            if runs is None:
                return None
            wanted |= runs
    return frozenset(wanted)


def default_registry() -> Mapping[str, CheckFunction]:
    """The real checks (imported lazily: the CLI starts, and reports a broken check module, without them)."""
    from grader.checks import REGISTRY

    return REGISTRY


def grade(
    request: GradeRequest,
    *,
    registry: Mapping[str, CheckFunction] | None = None,
    progress: Progress | None = None,
    training_progress: Callable[[dict[str, tuple[int, int]]], None] | None = None,
) -> GradingResults:
    """Grade ``request.submission``; see the module docstring and :class:`GradeRequest`.

    ``registry``: check id -> check (default: ``grader.checks.REGISTRY``; tests pass fakes). ``progress`` is
    called with each result as it is made; ``training_progress`` with each training run's (step, steps) while
    the runs are made (:class:`grader.training.engine.TrainingEngine`).
    """
    seed, training, only, feedback_level = (
        request.seed,
        request.training,
        request.only,
        request.feedback_level,
    )
    rubric, max_examples, time_budget_s = request.rubric, request.max_examples, request.time_budget_s
    started = time.monotonic()
    budget = TimeBudget(time_budget_s, start=started)
    path = Path(request.submission)
    try:
        rubric = rubric if isinstance(rubric, Rubric) else load_rubric(rubric)
        registry = default_registry() if registry is None else registry
        # A student handout has no answer key: its hidden checks are not graded here, and the report says so.
        rubric, absent_hidden = rubric.without_absent_hidden(registry)
        entries = rubric.selected(training)
        if only:
            entries = tuple(e for e in entries if e.check_id in set(only))
        level = effective_level(feedback_level or rubric.feedback_level)
    except Exception as exc:  # noqa: BLE001 - a broken rubric or check module is the grader's fault
        return _everything_failed((), f"{type(exc).__name__}: {exc}", started, seed, internal=True)

    config = request.sandbox
    context = (
        CheckContext(seed=seed)
        if max_examples is None
        else CheckContext(seed=seed, max_examples=max_examples)
    )
    # Exercise 2's declared goal, read from the file's syntax tree (grader.checks.goals): the shaping checks use it.
    declaration = read_declaration(path)
    context = replace(context, shaping_goal=declaration.goal, shaping_goal_note=declaration.note)
    notes: list[str] = []
    if level != (feedback_level or rubric.feedback_level):
        notes.append(_level_capped(feedback_level or rubric.feedback_level, level))
    # the hidden checks this grade would have made (those that train are skipped anyway with --no-training)
    absent_hidden = tuple(e for e in absent_hidden if training or not e.requires_training)
    if absent_hidden:
        notes.append(hidden_note(absent_hidden))
    skipped = [e for e in rubric.entries if e.requires_training and not training]
    if skipped:
        points = math.fsum(e.points for e in skipped)
        notes.append(
            f"Training checks skipped (--no-training): {len(skipped)} checks, {points:g} points not graded."
        )
    # Everything this grade starts (the worker, training processes, what they spawn) is a descendant of this
    # process started from now on: when the budget runs out, the watchdog kills exactly those.
    since, preexisting = boot_ticks_now(), children_of_me()
    try:
        with (
            SandboxedSubmission(path, config) as sandbox,
            budget.watchdog(lambda: kill_descendants(since, preexisting, timeout_s=5.0)),
        ):
            imported = sandbox.start()
            if not imported.ok:
                why = (
                    budget.not_run_message()
                    if budget.expired
                    else _import_feedback(imported.message, imported.status)
                )
                results = _everything_failed(
                    entries,
                    why,
                    started,
                    seed,
                    internal=False,
                    progress=progress,
                )
                results.output = _overall_output(
                    results,
                    path,
                    [why, *notes],
                    sandbox.captured_output(),
                    sandbox.isolation,
                )
                results.sandbox = sandbox.sandbox_info
                return results
            tests = []
            # One timeout per function, and no call past the grade's deadline (grader.grading.budget).
            budgeted = BudgetedSubmission(sandbox, budget, config.call_timeout_s)
            scratch = (
                Path(tempfile.mkdtemp(prefix="grader-scratch-"))
                if any(e.requires_training for e in entries)
                else None
            )
            # The training checks' runs, made by the first one that needs them and shared by the others: this
            # grade's own engine, so that nothing a grade made leaks into the next (tests grade many times in one
            # process).
            engine = TrainingEngine(
                str(path.resolve()),
                str(scratch or ""),
                options=request.training_options,
                sandbox=config,
                progress=training_progress,
                # only the runs this grade's checks judge (the tuning challenge's only when the rubric has it)
                wanted=runs_judged(entries, registry),
            )
            artifact_stem = request.artifact_stem
            try:
                for entry in entries:
                    if budget.expired:
                        result = _out_of_time(entry, budget.not_run_message(), TAG_NOT_RUN)
                        if entry.requires_training and _machines_time(budgeted, budget, engine):
                            result = _machine_out_of_time(
                                entry,
                                budget.machine_message(
                                    False, budgeted.call_seconds + engine.submission_seconds()
                                ),
                                TAG_NOT_RUN,
                            )
                        tests.append(result)
                        if progress is not None:
                            progress(result)
                        continue
                    check_context = context
                    if entry.requires_training:
                        failed = {t.check_id for t in tests if t.gradable and not t.passed}
                        check_context = TrainingContext(
                            **vars(context),
                            training=engine,
                            budget_s=budget.cap(entry.budget_s),
                            artifact_stem=str(Path(artifact_stem).absolute()) if artifact_stem else "",
                            withheld_by=tuple(r for r in entry.requires if r in failed),
                        )
                    result = run_check(
                        entry, registry.get(entry.check_id), budgeted, check_context, feedback_level=level
                    )
                    # Still running at the deadline: its calls (or the processes it waited for) were cut short,
                    # so whatever it concluded is not a verdict on the submission.
                    if budget.expired:
                        result = _out_of_time(entry, budget.unfinished_message(), TAG_UNFINISHED)
                        if entry.requires_training and _machines_time(budgeted, budget, engine):
                            result = _machine_out_of_time(
                                entry,
                                budget.machine_message(
                                    True, budgeted.call_seconds + engine.submission_seconds()
                                ),
                                TAG_UNFINISHED,
                            )
                    tests.append(result)
                    if progress is not None:
                        progress(result)
            finally:
                if scratch is not None:
                    shutil.rmtree(scratch, ignore_errors=True)
            captured = sandbox.captured_output()
            isolation, sandbox_info = sandbox.isolation, sandbox.sandbox_info
    except SubmissionFileError as exc:
        return _everything_failed(
            entries,
            f"Your submission could not be graded: {exc}",
            started,
            seed,
            internal=False,
            progress=progress,
        )
    except SandboxError as exc:
        return _everything_failed(
            entries,
            f"The grader could not run your submission: {exc}",
            started,
            seed,
            internal=True,
            progress=progress,
        )
    except Exception as exc:  # noqa: BLE001 - never crash: report the grader's own failure
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        return _everything_failed(
            entries, f"Internal grader error: {detail}", started, seed, internal=True, progress=progress
        )
    # The sandbox is closed here: the worker's process tree is dead before anyone writes the results.
    if budget.expired:
        # The watchdog killed what ran at the deadline; reap those and sweep whatever was left.
        kill_descendants(since, preexisting)
        notes.append(_budget_note(budget, tests))
    tests = apply_gates(entries, tests, notes)
    if any(not t.gradable for t in tests):
        notes.append(not_gradable_note(tests))
    results = GradingResults(tests=tests, execution_time=time.monotonic() - started, seed=seed)
    results.output = _overall_output(results, path, notes, captured, isolation)
    results.feedback_level = level
    results.sandbox = sandbox_info
    return results
