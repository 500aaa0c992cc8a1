"""The grade's time (grader/grading/budget.py): one global budget (``--time-budget``) and one timeout per function.

Unit tests of :class:`BudgetedSubmission` and :class:`TimeBudget` with a fake sandbox; then grading real
hostile submissions through the sandbox with fake checks and small limits (fast); then the CLI with the real
checks on a submission that sleeps 3 s in every call and one that loops forever in every function.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import pytest

from grader.contract import CallOutcome, CheckContext, CheckOutcome, Submission, TrainingContext
from grader.grading.budget import TAG_NOT_RUN, TAG_UNFINISHED, BudgetedSubmission, TimeBudget
from grader.grading.rubric import parse_rubric
from grader.grading.runner import GradeRequest, grade
from grader.sandbox import SandboxConfig
from tests.support.fake_grader import COMMAND as FAKE_GRADER
from tests.support.sandbox import processes_with, wait_until

ROOT = Path(__file__).resolve().parents[2]
FAST = SandboxConfig(call_timeout_s=1.0, import_timeout_s=5.0, check_budget_s=30.0, memory_bytes=1 << 30)
FUNCTIONS = ("kl_penalty_forward", "kl_penalty_backward", "shaped_reward")
ARGS = {
    "kl_penalty_forward": ([[-1.0, -2.0]], [[-1.5, -1.5]]),
    "kl_penalty_backward": ([[-1.0, -2.0]], [[-1.5, -1.5]]),
    "shaped_reward": ([0.5], ["fine"]),
}


# --- BudgetedSubmission and TimeBudget, with a fake sandbox ------------------------------------------------


class FakeSandbox:
    """``hang``: the call runs the whole per-call timeout and times out; ``repeat``: an instant timeout (the
    sandbox repeating an earlier failure of the check); anything else: ok."""

    def __init__(self, behaviour: dict[str, str], call_timeout_s: float) -> None:
        self.behaviour = behaviour
        self.call_timeout_s = call_timeout_s
        self.calls: list[str] = []
        self.budgets: list[float] = []
        self._deadline = math.inf

    def begin_check(self, budget_s: float) -> None:
        self.budgets.append(budget_s)
        self._deadline = time.monotonic() + budget_s

    def call(self, function: str, *args: object, **kwargs: object) -> CallOutcome:
        self.calls.append(function)
        kind = self.behaviour.get(function, "ok")
        if kind == "hang":
            time.sleep(max(0.0, min(self.call_timeout_s, self._deadline - time.monotonic())) + 0.001)
            return CallOutcome(
                "timeout", message=f"{function}() did not return within {self.call_timeout_s:g} s"
            )
        if kind == "repeat":
            return CallOutcome("timeout", message="an earlier call of this check timed out")
        return CallOutcome("ok", value=[0.0])


def test_a_function_that_timed_out_fails_its_later_calls_at_once() -> None:
    inner = FakeSandbox({"kl_penalty_forward": "hang"}, call_timeout_s=0.05)
    sub = BudgetedSubmission(inner, TimeBudget(None), call_timeout_s=0.05)
    sub.begin_check(10)
    first = sub.call("kl_penalty_forward")
    assert first.status == "timeout" and inner.calls == ["kl_penalty_forward"]
    for _ in range(3):  # later checks: answered at once, without calling the sandbox (and its timeout) again
        sub.begin_check(10)
        again = sub.call("kl_penalty_forward")
        assert inner.calls == ["kl_penalty_forward"]
        assert again.status == "timeout"
        assert again.message.startswith(
            "timed out earlier: kl_penalty_forward() did not return within 0.05 s"
        )
    assert inner.calls == ["kl_penalty_forward"]
    assert sub.call("shaped_reward").ok and inner.calls[-1] == "shaped_reward"  # other functions still run


def test_only_a_functions_own_per_call_timeout_marks_it() -> None:
    inner = FakeSandbox({"kl_penalty_backward": "repeat", "shaped_reward": "hang"}, call_timeout_s=0.05)
    sub = BudgetedSubmission(inner, TimeBudget(None), call_timeout_s=0.05)
    # an instant repeat of another function's failure in the same check
    sub.begin_check(10)
    assert sub.call("kl_penalty_backward").status == "timeout"
    # a call cut short by its check's budget (less than the per-call timeout was left): slow, not hung
    sub.begin_check(0.02)
    assert sub.call("shaped_reward").status == "timeout"
    assert sub.timed_out == {}
    sub.begin_check(10)
    sub.call("kl_penalty_backward")
    sub.call("shaped_reward")
    assert inner.calls == ["kl_penalty_backward", "shaped_reward", "kl_penalty_backward", "shaped_reward"]
    assert list(sub.timed_out) == ["shaped_reward"]


def test_check_budgets_are_capped_by_the_grade_budget_and_nothing_runs_after_it() -> None:
    inner = FakeSandbox({}, call_timeout_s=1.0)
    budget = TimeBudget(0.3)
    sub = BudgetedSubmission(inner, budget, call_timeout_s=1.0)
    sub.begin_check(60)
    assert 0 < inner.budgets[-1] <= 0.3
    assert sub.call("shaped_reward").ok
    assert wait_until(lambda: budget.expired, 10)
    sub.begin_check(60)
    assert inner.budgets[-1] == 0.0
    late = sub.call("shaped_reward")
    assert late.status == "timeout" and "grading time budget of 0.3 s ran out" in late.message
    assert inner.calls == ["shaped_reward"]


@pytest.mark.parametrize("seconds", [0, -1, math.nan, math.inf])
def test_a_budget_must_be_positive_and_finite(seconds: float) -> None:
    with pytest.raises(ValueError, match="positive number of seconds"):
        TimeBudget(seconds)


def test_the_watchdog_fires_at_the_deadline_and_not_after_the_block() -> None:
    fired = threading.Event()
    budget = TimeBudget(0.2)
    with budget.watchdog(fired.set):
        assert fired.wait(2.0)
    assert budget.expired and budget.cap(10) == 0.0
    quiet = threading.Event()
    with TimeBudget(0.3).watchdog(quiet.set):
        pass
    time.sleep(0.4)
    assert not quiet.is_set()
    with TimeBudget(None).watchdog(quiet.set):  # no budget: no timer at all
        assert TimeBudget(None).remaining() == math.inf


# --- grading real submissions through the sandbox (fake checks, small limits) ------------------------------


def _calls(function: str, times: int):
    """A check that calls ``function`` ``times`` times and passes if every call returns a value."""

    def check(submission: Submission, context: CheckContext) -> CheckOutcome:
        for _ in range(times):
            outcome = submission.call(function, *ARGS[function])
            if not outcome.ok:
                return CheckOutcome(0.0, f"{outcome.status}: {outcome.message}")
        return CheckOutcome(1.0, "ok")

    return check


def _rubric_and_registry(calls_per_check: int, checks_per_function: int = 3, budget_s: float = 30):
    checks, registry = {}, {}
    short = {
        "kl_penalty_forward": "kl_forward",
        "kl_penalty_backward": "kl_backward",
        "shaped_reward": "shaping",
    }
    for function in FUNCTIONS:
        for n in range(checks_per_function):
            check_id = f"{short[function]}.c{n}"
            checks[check_id] = {"name": f"{function} check {n}", "points": 1}
            registry[check_id] = _calls(function, calls_per_check)
    return parse_rubric({"defaults": {"budget_s": budget_s}, "checks": checks}), registry


def _submission(tmp_path: Path, body: str, preamble: str = "") -> Path:
    lines = [textwrap.dedent(preamble)]
    for function in FUNCTIONS:
        lines.append(f"def {function}(*args, **kwargs):\n{textwrap.indent(textwrap.dedent(body), '    ')}\n")
    path = tmp_path / "rewards.py"
    path.write_text("\n".join(lines))
    return path


def test_an_endless_loop_costs_one_timeout_per_function(tmp_path: Path) -> None:
    rubric, registry = _rubric_and_registry(calls_per_check=3)
    started = time.monotonic()
    results = grade(
        GradeRequest(_submission(tmp_path, "while True:\n    pass"), rubric=rubric, sandbox=FAST),
        registry=registry,
    )
    elapsed = time.monotonic() - started
    assert results.score == 0 and not results.internal_error
    by_function = {f: [t.output for t in results.tests if f in t.name] for f in FUNCTIONS}
    for function, outputs in by_function.items():
        first, *later = outputs
        assert f"{function}() did not return within 1 s" in first and "timed out earlier" not in first
        assert all(o.startswith("timeout: timed out earlier: ") for o in later), later
    # three timeouts of 1 s (plus worker restarts); one timeout per check would take at least 9 s
    assert elapsed < 8, elapsed


def test_slow_code_that_finishes_gets_its_points(tmp_path: Path) -> None:
    rubric, registry = _rubric_and_registry(calls_per_check=2, checks_per_function=1)
    slow = SandboxConfig(call_timeout_s=2.0, import_timeout_s=5.0, memory_bytes=1 << 30)
    results = grade(
        GradeRequest(
            _submission(tmp_path, "import time\ntime.sleep(0.6)\nreturn [0.0] * len(args[0])"),
            rubric=rubric,
            sandbox=slow,
            time_budget_s=60,
        ),
        registry=registry,
    )
    assert results.full_marks, results.to_json()
    assert "time budget" not in results.output


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc (Linux)")
def test_the_budget_stops_a_slow_submission_and_reports_what_is_unfinished(tmp_path: Path) -> None:
    marker = f"grader-test-budget-{uuid.uuid4().hex}"
    # every call sleeps 0.5 s (under the 1 s call timeout: slow, not hung); the first call also leaves a
    # sleeping process behind, which must not survive the grade
    preamble = f"""
    import subprocess, time
    _started = []
    def _slow():
        if not _started:
            _started.append(subprocess.Popen(["/bin/sh", "-c", "sleep 1000", {marker!r}]))
        time.sleep(0.5)
    """
    path = _submission(tmp_path, "_slow()\nreturn [0.0] * len(args[0])", preamble)
    rubric, registry = _rubric_and_registry(calls_per_check=20)  # 10 s per check, 90 s in all
    started = time.monotonic()
    results = grade(GradeRequest(path, rubric=rubric, sandbox=FAST, time_budget_s=3), registry=registry)
    elapsed = time.monotonic() - started
    assert 3 <= elapsed < 6, elapsed
    first, *rest = results.tests
    assert first.score == 0 and TAG_UNFINISHED in first.tags and not first.internal_error
    assert first.output.startswith("not finished: the grading time budget of 3 s ran out during this check")
    assert rest and all(TAG_NOT_RUN in t.tags and t.score == 0 for t in rest)
    assert all(t.output.startswith("not run: the grading time budget of 3 s ran out") for t in rest)
    assert "The grading time budget of 3 s ran out: 9 checks (9 points) were not finished" in results.output
    assert not results.internal_error and results.score == 0
    assert processes_with(marker) == []


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc (Linux)")
def test_the_watchdog_kills_training_processes_a_check_waits_for(tmp_path: Path) -> None:
    """A training check waits for processes of its own (the training lanes); at the deadline they are killed,
    the check ends, and, since the submission's own calls took almost none of the time, it and the training check
    after it are not gradable (the machine's time: no points lost, left out of the maximum). Its own budget was
    capped by the grade's."""
    marker = f"grader-test-lane-{uuid.uuid4().hex}"
    seen: list[float] = []

    def training_check(submission: Submission, context: CheckContext) -> CheckOutcome:
        assert isinstance(context, TrainingContext)
        seen.append(context.budget_s)
        lane = subprocess.Popen(["/bin/sh", "-c", "sleep 1000", marker], start_new_session=True)
        lane.wait()  # ignores every budget, as a stuck lane would
        return CheckOutcome(1.0, "the lane ended")

    rubric = parse_rubric(
        {
            "checks": {
                "shaping.contract": {"name": "shaping", "points": 1},
                "training.fake": {"name": "training: fake", "points": 3, "budget_s": 600},
                "training.after": {"name": "training: after", "points": 2},
            }
        }
    )
    registry = {
        "shaping.contract": _calls("shaped_reward", 1),
        "training.fake": training_check,
        "training.after": training_check,
    }
    path = _submission(tmp_path, "return [0.0] * len(args[0])")
    started = time.monotonic()
    results = grade(GradeRequest(path, rubric=rubric, sandbox=FAST, time_budget_s=3), registry=registry)
    assert time.monotonic() - started < 8
    shaping, fake, after = results.tests
    assert shaping.score == 1
    assert fake.score == 0 and TAG_UNFINISHED in fake.tags and after.score == 0 and TAG_NOT_RUN in after.tags
    for check in (fake, after):
        assert not check.gradable and check.max_score == 0 and check.points_not_graded > 0, check.output
        assert check.output.startswith("NOT GRADABLE") and "your functions took" in check.output
    assert len(seen) == 1 and 0 < seen[0] <= 3
    assert processes_with(marker) == []


def test_a_deadline_the_submissions_own_calls_spent_still_costs_the_training_checks(tmp_path: Path) -> None:
    """The other side: when the submission's calls took at least half the budget (here 0.9 s of 1.5 s in the
    property check), the training check the deadline stops scores 0 as before: its slowness is its own."""

    def training_check(submission: Submission, context: CheckContext) -> CheckOutcome:
        time.sleep(3)  # past the deadline, like runs that did not finish
        return CheckOutcome(1.0, "finished late")

    rubric = parse_rubric(
        {
            "checks": {
                "shaping.contract": {"name": "shaping", "points": 1},
                "training.fake": {"name": "training: fake", "points": 3, "budget_s": 600},
            }
        }
    )
    registry = {"shaping.contract": _calls("shaped_reward", 1), "training.fake": training_check}
    path = _submission(tmp_path, "import time\ntime.sleep(0.9)\nreturn [0.0] * len(args[0])")
    results = grade(GradeRequest(path, rubric=rubric, sandbox=FAST, time_budget_s=1.5), registry=registry)
    _shaping, fake = results.tests
    assert fake.gradable and fake.max_score == 3 and fake.score == 0 and TAG_UNFINISHED in fake.tags


# --- the CLI with the real checks ----------------------------------------------------------------------------

SLEEPY = """
import time

def kl_penalty_forward(log_probs_policy, log_probs_ref, kl_coef=0.1):
    time.sleep(3)
    return [kl_coef * sum(a - b for a, b in zip(p, r)) / len(p) if p else 0.0
            for p, r in zip(log_probs_policy, log_probs_ref)]

def kl_penalty_backward(log_probs_policy, log_probs_ref, kl_coef=0.1):
    time.sleep(3)
    return [0.0 for _ in log_probs_policy]

def shaped_reward(scores, completions, prompts=None):
    time.sleep(3)
    return [float(s) for s in scores]
"""

LOOPING = """
def kl_penalty_forward(log_probs_policy, log_probs_ref, kl_coef=0.1):
    while True:
        pass

def kl_penalty_backward(log_probs_policy, log_probs_ref, kl_coef=0.1):
    while True:
        pass

def shaped_reward(scores, completions, prompts=None):
    while True:
        pass
"""


def _cli(tmp_path: Path, source: str, *options: str) -> tuple[int, dict, float]:
    submission = tmp_path / "rewards.py"
    submission.write_text(source)
    results = tmp_path / "results.json"
    env = dict(os.environ, NO_COLOR="1")
    started = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "grader",
            "--submission",
            str(submission),
            "--results",
            str(results),
            *options,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    elapsed = time.monotonic() - started
    assert results.exists(), proc.stdout + proc.stderr
    return proc.returncode, json.loads(results.read_text(encoding="utf-8"), strict=True), elapsed


@pytest.mark.slow  # 20 s by design (the runner-level test above shows the same in 3 s)
def test_cli_a_submission_sleeping_in_every_call_is_answered_within_the_budget(tmp_path: Path) -> None:
    code, data, elapsed = _cli(tmp_path, SLEEPY, "--no-training", "--time-budget", "20")
    assert code == 1 and data["score"] == 0
    assert elapsed < 20 + 10, elapsed  # the budget, plus starting Python and writing the results
    outputs = [t["output"] for t in data["tests"]]
    unfinished = [o for o in outputs if o.startswith("not finished: the grading time budget of 20 s ran out")]
    not_run = [o for o in outputs if o.startswith("not run: the grading time budget of 20 s ran out")]
    assert len(unfinished) == 1 and len(unfinished) + len(not_run) == len(outputs) > 20
    points = sum(t["max_score"] for t in data["tests"])
    assert (
        f"The grading time budget of 20 s ran out: {len(outputs)} checks ({points:g} points)"
        in data["output"]
    )


@pytest.mark.slow  # over 10 s on 2 cores (measured with --durations)
def test_cli_an_endless_loop_costs_one_timeout_per_function(tmp_path: Path) -> None:
    code, data, elapsed = _cli(
        tmp_path, LOOPING, "--no-training", "--time-budget", "40", "--call-timeout", "2"
    )
    assert code == 1 and data["score"] == 0
    assert elapsed < 20, elapsed  # three timeouts of 2 s, plus restarting the worker after each
    for function in FUNCTIONS:
        outputs = [t["output"] for t in data["tests"] if t["name"].startswith(f"{function}")]
        first = [o for o in outputs if "did not return within 2 s" in o and "timed out earlier" not in o]
        assert len(first) == 1, outputs
        assert all("timed out earlier" in o for o in outputs if o not in first)
    assert "time budget" not in data["output"]


# --- the Gradescope bundle stops the grader before Gradescope does --------------------------------------------


def test_the_gradescope_bundle_passes_a_budget_below_its_timeout(tmp_path: Path) -> None:
    import zipfile

    from grader.tools.gradescope import DEFAULT_TIME_BUDGET, GradescopeConfig, build_bundle, run_autograder

    assert DEFAULT_TIME_BUDGET < 600  # Gradescope's default autograder timeout: 10 minutes
    zip_path, settings = build_bundle(
        GradescopeConfig(out=tmp_path / "out", no_training=True, time_budget=123)
    )
    assert settings["time_budget"] == 123
    root = tmp_path / "autograder"
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(root / "source")
    (root / "submission").mkdir()
    (root / "submission" / "rewards.py").write_text("# fake: pass=forward.zero\n")
    data = run_autograder(root, root / "source", grader_cmd=FAKE_GRADER)
    argv = data["argv"]
    assert argv[argv.index("--time-budget") + 1] == "123"
    with pytest.raises(ValueError, match="--time-budget must be a positive"):  # the bundle's one time setting
        build_bundle(GradescopeConfig(out=tmp_path / "bad", time_budget=0))
