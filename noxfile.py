"""Every job in this repository is a nox session: `nox -l` lists them, `nox -s NAME -- ARGS` runs one.

Arguments after `--` are forwarded to the underlying command (posargs). Each session gets its own reused
virtualenv under .nox/, so the second run of a session starts in seconds.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import nox

nox.options.reuse_venv = "yes"

# A student handout has no reference/ (nor tests/): the instructor sessions are then not defined, and plain
# `nox` grades the student's work.
INSTRUCTOR = Path(__file__).with_name("reference").is_dir()
nox.options.sessions = ["lint", "tests"] if INSTRUCTOR else ["grade"]

STUDENT_SUBMISSION = "exercise/rewards.py"
REFERENCE_SUBMISSION = "reference/rewards.py"


#: The library versions the training checks were calibrated with (the grader warns when others are installed).
CONSTRAINTS = "grader/constraints.txt"


def install(session: nox.Session, extras: str = "dev") -> None:
    """Install this project (editable) with the given extras, at the calibrated versions, into the session's
    virtualenv; skipped when the reused virtualenv already has this very install (pip re-checking it costs
    seconds on every `nox -s grade`). The code itself is installed editable: editing it needs no reinstall."""
    inputs = [Path("pyproject.toml"), Path(CONSTRAINTS)]
    if os.environ.get("PIP_CONSTRAINT"):
        inputs += [Path(p) for p in os.environ["PIP_CONSTRAINT"].split()]
    digest = hashlib.sha256(extras.encode())
    for path in inputs:
        digest.update(path.read_bytes() if path.is_file() else str(path).encode())
    location = getattr(session.virtualenv, "location", None)
    stamp = Path(location) / ".rl-sentiment-install" if location else None
    if stamp is not None and stamp.is_file() and stamp.read_text() == digest.hexdigest():
        session.log(f"{extras} install up to date (pyproject.toml and {CONSTRAINTS} unchanged): skipped")
        return
    session.install("-c", CONSTRAINTS, "-e", f".[{extras}]")
    if stamp is not None:
        stamp.write_text(digest.hexdigest())


def grader_args(posargs: list[str], submission: str) -> list[str]:
    """Default `--submission` and `--results` unless the user passed their own."""
    args = list(posargs)
    if "--submission" not in args:
        args += ["--submission", submission]
    if "--results" not in args:
        args += ["--results", "results.json"]
    return args


@nox.session
def lint(session: nox.Session) -> None:
    """Check style and common bugs with ruff."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".", *session.posargs)
    session.run("ruff", "format", "--check", ".")


@nox.session
def train(session: nox.Session) -> None:
    """Fine-tune with GRPO: GPT-2 on a GPU, the tiny offline model on a CPU (`-- --kl_type forward`)."""
    install(session)
    session.run("python", "-m", "exercise.train", *session.posargs)


@nox.session
def grade(session: nox.Session) -> None:
    """Grade your exercise/rewards.py: a score and feedback per check (`-- --no-training` for a quick look)."""
    install(session)
    # Exit code 1 means "points lost": that is a grade, not a broken session.
    session.run(
        "python", "-m", "grader", *grader_args(session.posargs, STUDENT_SUBMISSION), success_codes=[0, 1]
    )


if INSTRUCTOR:

    @nox.session
    def tests(session: nox.Session) -> None:
        """Run the project's test suite (fast tests; add `-- -m slow` for the long training ones)."""
        install(session, "dev,cluster")  # Ray: the batch's Ray executor is tested on a real local cluster
        # The fast tier in parallel, one pytest-xdist worker per CPU, a test module per worker (its fixtures are
        # made once). The slow tier one test at a time: its training runs already keep every core busy, and its
        # time-budget tests measure wall time. `-- -n 0` runs anything serially.
        parallel = [] if "slow" in session.posargs else ["-n", "logical", "--dist", "loadfile"]
        # The tests start hundreds of Python processes (graders, sandbox workers, CLIs) importing the same modules:
        # let them cache bytecode even where the environment turns that off (PYTHONDONTWRITEBYTECODE=1, as on
        # this project's CI machines), or each one compiles them again (about 7% of the fast tier's CPU time).
        session.run("pytest", *parallel, *session.posargs, env={"PYTHONDONTWRITEBYTECODE": None})

    @nox.session
    def lesson(session: nox.Session) -> None:
        """Make the lesson's runs over seeds and write docs/lesson-runs.md (slow: about 50 tiny runs)."""
        install(session)
        session.run("python", "-m", "exercise.lesson", *session.posargs)

    @nox.session
    def reference(session: nox.Session) -> None:
        """Grade the reference solution; fails unless it earns full marks (for instructors)."""
        install(session)
        session.run("python", "-m", "grader", *grader_args(session.posargs, REFERENCE_SUBMISSION))

    @nox.session
    def bench(session: nox.Session) -> None:
        """Run the performance benchmarks (pytest-benchmark) and print their table."""
        install(session, "dev,cluster")  # the batch benchmark compares the local and Ray executors
        session.run(
            "pytest", "benchmarks", "--benchmark-enable", "-m", "", "-p", "no:cacheprovider", *session.posargs
        )

    @nox.session
    def handout(session: nox.Session) -> None:
        """Build the student handout, a folder and a zip without the solution (`-- --out DIR [--classroom]`)."""
        install(session)
        session.run("python", "-m", "grader.tools", "handout", *session.posargs)

    @nox.session
    def batch(session: nox.Session) -> None:
        """Grade a folder of submissions into a gradebook with charts (`-- SUBMISSIONS_DIR --out OUT
        [--executor ray]`)."""
        # Ray only when asked for: the local executor needs nothing more.
        args = session.posargs
        ray = "--executor=ray" in args or any(
            a == "--executor" and b == "ray" for a, b in zip(args, args[1:], strict=False)
        )
        install(session, "dev,cluster" if ray else "dev")
        # Exit 1: some submissions could not be graded normally (their rows say why); the batch still finished.
        session.run("python", "-m", "grader.tools", "batch", *session.posargs, success_codes=[0, 1])

    @nox.session
    def gradescope(session: nox.Session) -> None:
        """Build the Gradescope autograder zip with a hidden grading seed (`-- --out DIR [--seed N]`)."""
        install(session)
        session.run("python", "-m", "grader.tools", "gradescope", "build", *session.posargs)

    @nox.session
    def mutation(session: nox.Session) -> None:
        """Mutation-test grader/grading/ and the property checks' scoring (grader/checks/harness.py) with mutmut,
        their unit tests as the killer (slow, manual: not in CI)."""
        import json
        import shutil

        install(session)
        session.install("mutmut>=3.8,<4")
        # mutmut reads its settings from pyproject.toml and writes its mutated copy to mutants/ beside them: both
        # live in a scratch copy under build/ (ignored), so the repository carries no mutmut section and lint
        # never sees mutated code. mutants/ is kept between runs: mutmut retests only the functions that changed.
        work = Path("build/mutation")
        work.mkdir(parents=True, exist_ok=True)
        for folder in ("grader", "tests", "reference", "exercise"):
            shutil.rmtree(work / folder, ignore_errors=True)
            shutil.copytree(folder, work / folder, ignore=shutil.ignore_patterns("__pycache__"))
        if (work / "mutants" / "grader").is_dir():  # mutmut copies the package's data files only once
            shutil.copytree(
                "grader",
                work / "mutants" / "grader",
                ignore=shutil.ignore_patterns("__pycache__", "*.py"),
                dirs_exist_ok=True,
            )
        # The killer: the in-process tests of grader/grading/ (no grade, no sandbox, no training). A mutant reruns
        # only those of them that reached the function it changes.
        killers = [
            "tests/unit/test_grader_results.py",
            "tests/unit/test_rubric_gates.py",
            "tests/unit/test_not_gradable.py",
            "tests/unit/test_sanitise.py",
            "tests/unit/test_report_terminal.py",
            "tests/unit/test_feedback_levels.py",
            "tests/unit/test_fair_time.py",
            "tests/unit/test_batch_leaderboard.py",
            "tests/unit/test_check_ids.py",
            # written for this score: each kills mutants the tests above let through
            "tests/unit/test_results_exact.py",
            "tests/unit/test_locate.py",
            "tests/unit/test_runner_units.py",
            "tests/unit/test_rubric_messages.py",
            "tests/unit/test_live_line.py",
            "tests/unit/test_budget_clock.py",
            "tests/unit/test_terminal_table.py",
            "tests/unit/test_report_render.py",
            "tests/unit/test_harness.py",
            "tests/unit/test_results_readback.py",
            "tests/unit/test_results_write.py",
            "tests/unit/test_challenge.py::test_the_runner_asks_for_the_runs_of_its_checks",
            # the in-process tests of integration/ modules whose other tests grade for real
            "tests/integration/test_batch.py::test_locate_rules",
            "tests/integration/test_batch.py::test_locate_refuses_links_to_other_files",
            "tests/integration/test_live_progress.py::test_the_line_counts_checks_then_shows_each_runs_steps_and_an_eta",
            "tests/integration/test_live_progress.py::test_only_on_a_terminal_and_never_quiet_or_in_ci",
            "tests/integration/test_gradescope.py::test_hide_seed",
            "tests/integration/test_time_budget.py::test_a_function_that_timed_out_fails_its_later_calls_at_once",
            "tests/integration/test_time_budget.py::test_only_a_functions_own_per_call_timeout_marks_it",
            "tests/integration/test_time_budget.py::test_check_budgets_are_capped_by_the_grade_budget_and_nothing_runs_after_it",
            "tests/integration/test_time_budget.py::test_a_budget_must_be_positive_and_finite",
            "tests/integration/test_time_budget.py::test_the_watchdog_fires_at_the_deadline_and_not_after_the_block",
        ]
        settings = {
            "source_paths": ["grader"],
            "only_mutate": ["grader/grading/*", "grader/checks/harness.py"],
            "also_copy": ["reference", "exercise"],
            "pytest_add_cli_args_test_selection": killers,
            # the chart test plots with matplotlib (7 s) and reads no grading code the others do not
            "pytest_add_cli_args": [
                "-p",
                "no:cacheprovider",
                "-p",
                "no:xdist",
                "--deselect",
                "tests/unit/test_batch_leaderboard.py::test_the_chart_plots_sentiment_against_log_perplexity_per_preset",
            ],
        }
        table = "".join(f"{key} = {json.dumps(value)}\n" for key, value in settings.items())
        (work / "pyproject.toml").write_text(Path("pyproject.toml").read_text() + "\n[tool.mutmut]\n" + table)
        # `-- results` lists the survivors, `-- show NAME` shows one, `-- run NAME...` retests some.
        with session.chdir(work):
            session.run("nice", "-n", "15", "mutmut", *(session.posargs or ["run"]), external=True)
