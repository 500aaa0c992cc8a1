"""``python -m grader``: grade one submission, write ``results.json`` (and JUnit XML), print a report.

Exit status: 0 full marks; 1 points lost; 2 usage error or internal error; 3 not gradable: some checks could
not be judged because of the machine, not the submission (the training control run did not learn, a run ran out
of memory or time while the machine was as slow without the submission's code): no points lost, they are left
out of results.json's maximum, and the grade is to be made again; 130 interrupted (Ctrl-C): results.json keeps
the checks graded before it, marked as an internal error (a grade cut short is no verdict). A results file is
written in every case where a results path could be read from the command line, before the report is printed:

* a missing or unlocatable submission (``--submission`` names no file, or a folder without ``rewards.py``):
  every check scores 0 with the reason, exit status 2 (the command was given something it cannot grade);
* the grader's own failure (broken rubric, a check that crashes, a sandbox that cannot start): score 0 with the
  error, exit status 2;
* bad arguments: argparse's message and exit status 2; if ``--results PATH`` was given, an internal-error result
  is written there too.

The options are generated from :class:`GradeConfig` (one place to add one), declared in
:mod:`grader.cli.options` and re-exported here.
"""

from __future__ import annotations

import atexit
import math
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from grader.cli.options import DEFAULT_TIME_BUDGET_S, GradeConfig
from grader.dataclass_cli import parse_into
from grader.grading.results import GradingResults, TestResult, internal_error_results

__all__ = [
    "DEFAULT_TIME_BUDGET_S",
    "EXIT_ERROR",
    "EXIT_FULL_MARKS",
    "EXIT_INTERRUPTED",
    "EXIT_NOT_GRADABLE",
    "EXIT_POINTS_LOST",
    "GradeConfig",
    "hypothesis_storage",
    "main",
]

EXIT_FULL_MARKS, EXIT_POINTS_LOST, EXIT_ERROR = 0, 1, 2
#: Not 2: an internal error needs a person (a bug, a broken setup), a grade that was not gradable needs only to be
#: made again (another machine, a quieter moment): CI may retry on 3, never on 2. An internal error wins over it.
EXIT_NOT_GRADABLE = 3
#: Ctrl-C: the shell's convention (128 + SIGINT); results.json keeps the checks graded before it
EXIT_INTERRUPTED = 130


def _write(results: GradingResults, config_results: Path, junit: Path | None) -> None:
    results.write_json(config_results)
    if junit is not None:
        results.write_junit(junit)


def _exit_code(results: GradingResults) -> int:
    if results.internal_error or any(t.internal_error for t in results.tests):
        return EXIT_ERROR
    if results.not_gradable:
        return EXIT_NOT_GRADABLE
    return EXIT_FULL_MARKS if results.full_marks else EXIT_POINTS_LOST


def _results_path_from(argv: Sequence[str]) -> Path | None:
    for i, arg in enumerate(argv):
        if arg == "--results" and i + 1 < len(argv):
            return Path(argv[i + 1])
        if arg.startswith("--results="):
            return Path(arg.split("=", 1)[1])
    return None


def _invalid_option(config: GradeConfig) -> str:
    """What is wrong with option values argparse accepted, or ""."""
    if not (0 < config.time_budget < math.inf):
        return f"--time-budget must be a positive number of seconds, not {config.time_budget:g}"
    if not (0.01 <= config.cpus < math.inf):
        return f"--cpus must be a number of CPUs of at least 0.01 (e.g. 1 or 0.5), not {config.cpus:g}"
    for option, value in (("--model_name", config.model_name), ("--sentiment_model", config.sentiment_model)):
        if value is not None and not config.no_training:
            if config.baseline_run is not None:  # before loading the model: this needs no seconds to say
                return (
                    f"{option} and --baseline-run: a shared baseline is made with the preset's models, so it is "
                    f"no control for runs with other ones; drop --baseline-run (this grade then makes its own)"
                )
            from grader.training.settings import model_option_problem

            problem = model_option_problem(option, value)
            if problem:
                return problem
    if config.baseline_run is not None and not config.no_training:
        # Checked before grading: a baseline from another seed, preset or grader would change the grade.
        from grader.training.baseline import BaselineError, load_baseline

        try:
            load_baseline(config.baseline_run, seed=config.seed, preset=config.training_preset)
        except BaselineError as exc:
            return f"--baseline-run: {exc}"
    return ""


def _not_gradeable(reason: str, config: GradeConfig, started: float) -> GradingResults:
    """Every rubric check at 0 with the reason (or no checks, if even the rubric cannot be read)."""
    from grader.grading.results import TestResult
    from grader.grading.rubric import load_rubric

    try:
        entries = load_rubric(config.rubric).selected(not config.no_training)
    except Exception:  # noqa: BLE001
        entries = ()
    tests = [
        TestResult(
            e.name, 0.0, e.points, reason, e.visibility, [e.function_tag, *e.tags], e.check_id, e.advisory
        )
        for e in entries
    ]
    return GradingResults(
        tests=tests,
        execution_time=time.monotonic() - started,
        output=reason,
        internal_error=True,
        seed=config.seed,
    )


def hypothesis_storage() -> Path:
    """Where hypothesis keeps its caches: a per-user cache folder (``$XDG_CACHE_HOME/rl-sentiment/hypothesis``,
    else ``~/.cache/rl-sentiment/hypothesis``), so that the next grade reuses them (they take seconds to
    rebuild; the examples themselves come from the grading seed, not from a database); a temporary folder,
    removed at exit, when that one cannot be written. Never the working folder: students grade from their
    checkout."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    try:
        # The XDG spec ignores a relative XDG_CACHE_HOME.
        root = Path(base) if os.path.isabs(base) else Path.home() / ".cache"
        path = root / "rl-sentiment" / "hypothesis"
        path.mkdir(parents=True, exist_ok=True)
        if os.access(path, os.W_OK | os.X_OK):
            return path
    except (OSError, RuntimeError):  # RuntimeError: Path.home() without a HOME or a passwd entry
        pass
    storage = tempfile.mkdtemp(prefix="grader-hypothesis-")
    atexit.register(shutil.rmtree, storage, ignore_errors=True)
    return Path(storage)


def main(argv: Sequence[str] | None = None) -> int:
    started = time.monotonic()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        config = parse_into(
            GradeConfig,
            argv,
            prog="python -m grader",
            description="Grade a rewards.py submission (KL penalties and reward shaping).",
            epilog=__doc__.split("\n\n", 1)[1].split("\n\nThe options")[0],
        )
    except SystemExit as exc:
        path = _results_path_from(argv)
        if path is not None and exc.code not in (0, None):
            try:
                internal_error_results("invalid command-line arguments (see the grader's stderr)").write_json(
                    path
                )
            except OSError:
                pass
        return EXIT_ERROR if exc.code not in (0, None) else 0
    problem = _invalid_option(config)
    if problem:
        print(f"python -m grader: error: {problem}", file=sys.stderr)
        try:
            internal_error_results(f"invalid command-line arguments: {problem}").write_json(config.results)
        except OSError:
            pass
        return EXIT_ERROR
    if not config.no_training and (not config.only or "training" in config.only):
        # The training thresholds hold for the library versions they were calibrated with: say which differ.
        from grader.versions import warn_if_uncalibrated

        warn_if_uncalibrated()

    # Hypothesis keeps caches in ./.hypothesis unless told otherwise: leave the student's folder as it was.
    if "HYPOTHESIS_STORAGE_DIRECTORY" not in os.environ:
        os.environ["HYPOTHESIS_STORAGE_DIRECTORY"] = str(hypothesis_storage())
    finished: list[TestResult] = []  # what was graded so far: kept when the grade is interrupted
    interrupted = False
    try:
        results = _grade(config, started, finished.append)
    except KeyboardInterrupt:
        interrupted = True
        results = GradingResults(
            tests=finished,
            execution_time=time.monotonic() - started,
            seed=config.seed,
            internal_error=True,  # not a verdict: the score of a grade cut short means nothing
            output=f"Interrupted (Ctrl-C) after {len(finished)} checks: their results are kept here, the other "
            "checks were not graded. Run the grader again for a grade.",
        )
    except BaseException as exc:  # noqa: BLE001 - the results file is still written
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        results = internal_error_results(
            detail or type(exc).__name__, time.monotonic() - started, config.seed
        )
    try:
        _write(results, config.results, config.junit)
    except OSError as exc:
        print(f"grader: cannot write the results: {exc}", file=sys.stderr)
        return EXIT_ERROR
    try:
        if config.quiet:
            cut = results.points_not_graded
            print(
                f"Score: {results.score:g} / {results.max_score:g}"
                + (f" ({cut:g} points not gradable on this machine: regrade)" if results.not_gradable else "")
            )
        else:
            from grader.grading.report import render

            render(results, explain_all=config.explain_all)
    except Exception as exc:  # noqa: BLE001 - the results are written; a broken terminal must not change that
        print(f"grader: could not print the report ({exc})", file=sys.stderr)
    return EXIT_INTERRUPTED if interrupted else _exit_code(results)


def _grade(
    config: GradeConfig, started: float, on_result: Callable[[TestResult], None] | None = None
) -> GradingResults:
    from grader.grading.live import live_line, wanted
    from grader.grading.locate import locate_submission
    from grader.grading.runner import GradeRequest, grade
    from grader.sandbox import SandboxConfig
    from grader.training import cache as run_cache
    from grader.training.engine import TrainingOptions

    located = locate_submission(config.submission)
    if located.path is None:
        return _not_gradeable(f"Nothing to grade: {located.error}", config, started)
    hidden = [config.results.absolute().parent] + ([config.junit.absolute().parent] if config.junit else [])
    kept_runs = "" if config.no_run_cache or config.no_training else run_cache.default_dir()
    if kept_runs:
        hidden.append(Path(kept_runs).absolute())  # a forged control run would move every comparison
    from grader.training.settings import model_option_value

    def model(
        option: str | None,
    ) -> str:  # a local directory reaches the training processes as an absolute path
        return model_option_value(option) if option and not config.no_training else ""

    request = GradeRequest(
        located.path,
        seed=config.seed,
        training=not config.no_training,
        rubric=config.rubric,
        feedback_level=config.feedback_level,
        only=[s.strip() for s in config.only.split(",")] if config.only else (),
        max_examples=config.max_examples,
        time_budget_s=config.time_budget,
        sandbox=SandboxConfig(
            call_timeout_s=config.call_timeout,
            isolation=config.isolation,
            cpus=config.cpus,
            hidden_paths=tuple(str(p) for p in hidden),
        ),
        training_options=TrainingOptions(
            preset=config.training_preset,
            lanes=config.training_jobs,
            # a shared baseline is checked again by the training checks before use
            baseline_run=str(config.baseline_run.absolute())
            if config.baseline_run and not config.no_training
            else "",
            model_name=model(config.model_name),
            sentiment_model=model(config.sentiment_model),
            run_cache=str(Path(kept_runs).absolute()) if kept_runs else "",
        ),
        # results.json -> results_training.png beside it
        artifact_stem=config.results.absolute().with_suffix(""),
    )
    # On a terminal, one line says the grade is moving (checks done, training steps, ETA); gone before the report.
    with live_line(wanted(config.quiet)) as line:

        def progress(result: TestResult) -> None:
            if on_result is not None:
                on_result(result)
            if line is not None:
                line.check_done(result)

        results = grade(request, progress=progress, training_progress=line.training if line else None)
    if located.note:
        results.output = f"{located.note}\n{results.output}"
    return results
