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

from grader.checks.feedback import effective_level, using_level
from grader.checks.goals import read_declaration
from grader.contract import CheckContext, CheckFunction, CheckOutcome, Submission, TrainingContext
from grader.grading.budget import TAG_NOT_RUN, TAG_UNFINISHED, BudgetedSubmission, TimeBudget
from grader.grading.results import (
    TAG_NOT_GRADABLE,
    TAG_WITHHELD,
    GradingResults,
    NotGradable,
    TestResult,
)
from grader.grading.rubric import Rubric, RubricEntry, load_rubric
from grader.sandbox import SandboxConfig, SandboxedSubmission, SandboxError, SubmissionFileError
from grader.sandbox.proctree import boot_ticks_now, children_of_me, kill_descendants
from grader.training.engine import TrainingEngine, TrainingOptions

Progress = Callable[[TestResult], None]


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
                        check_context = TrainingContext(
                            **vars(context),
                            training=engine,
                            budget_s=budget.cap(entry.budget_s),
                            artifact_stem=str(Path(artifact_stem).absolute()) if artifact_stem else "",
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


# ---------------------------------------------------------------------------------------------------------------
# Gates (the rubric's ``requires``): a check's points count only when the checks it requires passed
# ---------------------------------------------------------------------------------------------------------------


def apply_gates(
    entries: Sequence[RubricEntry], tests: Sequence[TestResult], notes: list[str] | None = None
) -> list[TestResult]:
    """``tests`` with the points of every check whose gate is closed withheld: score 0, the reason first in its
    output, tag ``withheld``. A gate is closed when a check it requires was graded and did not pass on its own
    (its verdict before gates: chains are the rubric's to spell out). A required check that was not graded
    (--no-training, --only) does not close it. A note for the overall output is appended to ``notes``."""
    by_id = {e.check_id: e for e in entries}
    # A check that could not be judged has no verdict: like one not graded, it closes no gate.
    verdicts = {t.check_id: t.passed for t in tests if t.gradable}
    internal = {t.check_id for t in tests if t.internal_error}
    gated, withheld = [], 0.0
    for test in tests:
        entry = by_id.get(test.check_id)
        failed = [r for r in (entry.requires if entry else ()) if verdicts.get(r) is False]
        if not failed:
            gated.append(test)
            continue
        broken = [r for r in failed if r in internal]
        reasons = "requires " + ", and ".join(
            f"{' and '.join(ids)}, which {verdict}"
            for ids, verdict in (
                ([r for r in failed if r not in internal], "failed"),
                (broken, "could not be graded (internal error)"),
            )
            if ids
        )
        names = "; ".join(f"{r}: {by_id[r].name}" for r in failed if r in by_id)
        if not test.gradable:
            # Its points are withheld whatever its run would have shown: a verdict after all, 0 of its points.
            output = (
                f"Withheld: {reasons}. This check's points count only when the checks it requires pass "
                f"({names}), so it scores 0 whatever it would have found; it also could not be judged on this "
                f"machine:\n\n{test.output}"
            )
            tags = [t for t in test.tags if t != TAG_NOT_GRADABLE]
            test = replace(
                test,
                score=0.0,
                max_score=test.points_not_graded,
                output=output,
                tags=tags,
                gradable=True,
                points_not_graded=0.0,
            )
        elif test.score > 0:
            withheld += test.score
            output = (
                f"Withheld: {reasons}. On its own this check earned {test.score:g} / {test.max_score:g}, but its "
                f"points count only when the checks it requires pass ({names}).\n\n{test.output}"
            )
            test = replace(test, score=0.0, output=output, tags=[*test.tags, TAG_WITHHELD])
        else:
            test = replace(test, output=f"{test.output}\n(Gate: this check {reasons}.)")
        gated.append(test)
    if withheld and notes is not None:
        count = sum(TAG_WITHHELD in t.tags for t in gated)
        notes.append(
            f"Withheld by the rubric's gates: {withheld:g} points on {count} checks that passed, because a "
            "check they require failed (each says which). Fix the defining checks first."
        )
    return gated


def not_gradable_note(tests: Sequence[TestResult]) -> str:
    """What the summary says of the checks that could not be judged on this machine."""
    cut = [t for t in tests if not t.gradable]
    points = math.fsum(t.points_not_graded for t in cut)
    return (
        f"Not gradable: {len(cut)} check{'s' if len(cut) != 1 else ''} ({points:g} points) could not be judged "
        "because of the machine, not your code (each says why). No points lost: they are left out of this "
        "score's maximum, and the grade is to be made again (exit status 3) on a machine that can judge them."
    )


def hidden_note(absent: Sequence[RubricEntry]) -> str:
    """What the report says of the hidden checks a student's copy of the grader does not have."""
    points = math.fsum(e.points for e in absent)
    return (
        f"Hidden checks: {len(absent)} more check{'s' if len(absent) != 1 else ''}, worth {points:g} points, "
        "are graded when you submit (the same properties on inputs nobody sees in advance); this score does not "
        "include them."
    )


def run_check(
    entry: RubricEntry,
    check: CheckFunction | None,
    submission: Submission,
    context: CheckContext,
    *,
    feedback_level: str | None = None,
) -> TestResult:
    """Run one check within its budget and turn its verdict into points; a failing check is the grader's error.
    Misconceptions are explained at ``feedback_level`` (None: the level in force, see :mod:`grader.checks.feedback`)."""
    if check is None:
        return _result(
            entry,
            0.0,
            f"Internal grader error: no check is registered under the id {entry.check_id!r}.",
            internal_error=True,
        )
    begin = getattr(submission, "begin_check", None)
    if begin is not None:
        begin(entry.budget_s)
    try:
        with using_level(feedback_level):
            outcome = check(submission, context)
    except NotGradable as exc:
        return _result(
            entry,
            0.0,
            f"NOT GRADABLE (not your code's fault; no points lost, left out of the maximum): {exc}",
            gradable=False,
        )
    except Exception as exc:  # noqa: BLE001
        frames = traceback.extract_tb(exc.__traceback__)
        where = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
        return _result(
            entry,
            0.0,
            f"Internal grader error in this check: {type(exc).__name__}: {exc}{where}. "
            "This is not your fault; please report it.",
            internal_error=True,
        )
    if (
        not isinstance(outcome, CheckOutcome)
        or isinstance(outcome.fraction, bool)
        or not isinstance(outcome.fraction, (int, float))
        or not 0.0 <= outcome.fraction <= 1.0
    ):
        return _result(
            entry,
            0.0,
            f"Internal grader error: the check returned {type(outcome).__name__} "
            f"{getattr(outcome, 'fraction', '')!r}, not a CheckOutcome with a fraction in [0, 1].",
            internal_error=True,
        )
    return _result(
        entry,
        float(outcome.fraction),
        _feedback(outcome),
        misconception=outcome.misconception,
        extra_tags=outcome.tags,
        artifacts=[str(a) for a in getattr(outcome, "artifacts", None) or ()],
        leaderboard=[e.to_dict() for e in outcome.leaderboard],
        measurements=dict(getattr(outcome, "measurements", None) or {}),
    )


def _feedback(outcome: CheckOutcome) -> str:
    """The check's feedback, plus its counterexample when the check did not include it. The misconception is
    the check's to explain (:meth:`grader.checks.misconceptions.Diagnosis.render`, at the level in force): the
    runner only adds points to the verdict."""
    parts = [outcome.feedback.strip()] if outcome.feedback.strip() else []
    if outcome.counterexample and outcome.counterexample not in outcome.feedback:
        parts.append("Counterexample:\n" + outcome.counterexample.rstrip())
    if not parts:
        parts.append("Passed." if outcome.fraction >= 1 else "Failed.")
    return "\n".join(parts)


def _level_capped(requested: str, shown: str) -> str:
    """The note when a copy of the grader holds less text than the level asked for (a handout's copy holds only
    the level it was built for)."""
    return (
        f"Feedback level {requested!r} was asked for, but this copy of the grader only contains the {shown!r} "
        f"texts: showing {shown!r}."
    )


def _result(
    entry: RubricEntry,
    fraction: float,
    output: str,
    *,
    internal_error: bool = False,
    misconception: str | None = None,
    extra_tags: Sequence[str] = (),
    artifacts: Sequence[str] = (),
    gradable: bool = True,
    leaderboard: Sequence[dict] = (),
    measurements: dict | None = None,
) -> TestResult:
    tags = [entry.function_tag, *entry.tags, *extra_tags]
    if not gradable:
        tags.append(TAG_NOT_GRADABLE)
    if misconception:
        tags.append(f"misconception:{misconception}")
    if entry.advisory:
        tags.append("advisory")
    return TestResult(
        name=entry.name,
        score=fraction * entry.points if gradable else 0.0,
        max_score=entry.points if gradable else 0.0,
        output=output,
        visibility=entry.visibility,
        tags=list(dict.fromkeys(tags)),
        check_id=entry.check_id,
        advisory=entry.advisory,
        misconception=misconception,
        internal_error=internal_error,
        # a check worth no points (advisory, or the training checks' control) that did not hold, or was not run,
        # is not "passed": its points hide nothing, its status must not either
        advisory_failed=(entry.advisory or entry.points == 0)
        and fraction < 1
        and not internal_error
        and gradable,
        artifacts=list(artifacts),
        leaderboard=list(leaderboard),
        measurements=dict(measurements or {}),
        gradable=gradable,
        points_not_graded=0.0 if gradable else entry.points,
    )


#: A training check cut short by the grade's deadline is the machine's when the submission's own calls took less
#: than this share of the budget, counting its calls inside the training runs (the lanes report them with each
#: step): the rest went into the training runs, which are the grader's work.
MACHINE_TIME_SHARE = 0.5


def _machines_time(budgeted: BudgetedSubmission, budget: TimeBudget, engine: TrainingEngine) -> bool:
    """The submission's calls (the grade's own, and inside the training runs: their longest lane) took less than
    :data:`MACHINE_TIME_SHARE` of the budget."""
    return budgeted.call_seconds + engine.submission_seconds() < MACHINE_TIME_SHARE * budget.seconds


def _machine_out_of_time(entry: RubricEntry, message: str, tag: str) -> TestResult:
    """Not gradable: the deadline cut a training check short while the machine, not the submission, took the
    time (no points lost, left out of the maximum, flagged for a regrade)."""
    return _result(
        entry,
        0.0,
        f"NOT GRADABLE (not your code's fault; no points lost, left out of the maximum): {message}",
        extra_tags=[tag],
        gradable=False,
    )


def _out_of_time(entry: RubricEntry, message: str, tag: str) -> TestResult:
    """0 points because the grade's time budget ran out (not an internal error: the submission's time)."""
    return _result(entry, 0.0, message, extra_tags=[tag])


def _budget_note(budget: TimeBudget, tests: Sequence[TestResult]) -> str:
    cut = [t for t in tests if TAG_NOT_RUN in t.tags or TAG_UNFINISHED in t.tags]
    points = math.fsum(t.max_score for t in cut)
    return (
        f"The grading time budget of {budget.seconds:g} s ran out: {len(cut)} checks ({points:g} points) were "
        "not finished and score 0: slow functions, or a slow or busy machine (the checks say more)."
    )


def _import_feedback(message: str, status: str) -> str:
    lead = {
        "timeout": "Your submission did not finish importing",
        "crashed": "Your submission crashed while being imported",
    }
    head = lead.get(status, "Your submission could not be imported")
    return (
        f"{head}, so none of its functions could be graded.\n{message}\n"
        "Run `python exercise/rewards.py` to see the error; code at the top level of the file runs on import."
    )


def _everything_failed(
    entries: Sequence[RubricEntry],
    message: str,
    started: float,
    seed: int,
    *,
    internal: bool,
    progress: Progress | None = None,
) -> GradingResults:
    tests = [_result(e, 0.0, message, internal_error=internal) for e in entries]
    for test in tests:
        if progress is not None:
            progress(test)
    return GradingResults(
        tests=tests,
        execution_time=time.monotonic() - started,
        output=message,
        internal_error=internal,
        seed=seed,
    )


def _overall_output(
    results: GradingResults, path: Path, notes: list[str], captured: str, isolation: str
) -> str:
    """The grade's summary: the score, then ``notes`` (why the whole submission failed, skipped or withheld
    points, an exhausted budget), the files written, what the submission printed, and the sandbox used."""
    lines = [f"Graded {path.name}: {results.score:g} / {results.max_score:g} points (seed {results.seed})."]
    lines.extend(note for note in notes if note)
    files = list(dict.fromkeys(a for t in results.tests for a in t.artifacts))
    if files:
        lines.append("Plots written next to the results: " + ", ".join(files))
    if captured:
        lines.append("What your code printed while being graded (truncated):\n" + captured)
    lines.append(f"Sandbox: {isolation}.")
    return "\n".join(lines)
