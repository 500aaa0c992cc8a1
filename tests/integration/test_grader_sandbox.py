"""Hostile submissions: whatever a submission does, grading ends in bounded time with an honest report.

Each test writes a small submission into a temporary directory and grades it with a fake check registry (three
checks, one per student function, each comparing exact values) and small time limits, so the suite is fast and
independent of the real checks. A marker string in the command line of every process a hostile submission
starts lets the tests prove that no such process survives grading.
"""

from __future__ import annotations

import math
import os
import signal
import textwrap
import time
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from grader.contract import CheckContext, CheckOutcome, Submission
from grader.grading.rubric import parse_rubric
from grader.grading.runner import GradeRequest, grade
from grader.sandbox import REPO_ROOT, SandboxConfig, SandboxedSubmission
from tests.support.ci import skip_unless_required
from tests.support.sandbox import (
    FAST,
    GOOD,
    REGISTRY,
    RUBRIC,
    grade_source,
    landlock_abi,
    namespaces_work,
    processes_with,
    scores_by_id,
    write_submission,
)

linux_only = pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc (Linux)")


# --- the baseline ------------------------------------------------------------------------------------------------


def test_a_correct_submission_gets_every_point(tmp_path: Path) -> None:
    results = grade_source(tmp_path, GOOD)
    assert results.full_marks, results.to_json()
    assert "Sandbox:" in results.output


# --- hostile at import -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "reason"),
    [
        ("while True:\n    pass\n", "did not finish within 2 s"),
        ("import sys\nsys.exit(3)\n", "sys.exit(3)"),
        ("raise KeyboardInterrupt\n", "KeyboardInterrupt"),
        ("import os, signal\nos.kill(os.getpid(), signal.SIGINT)\n", "KeyboardInterrupt"),
        ("import os\nos._exit(4)\n", "exited with status 4"),
        ("def broken(:\n    pass\n", "SyntaxError"),
        ("x = bytearray(64 * 2**30)\n", "MemoryError"),
        ("import reference.rewards\n", "No module named 'reference"),
        ("from grader import runner\n", "No module named 'grader"),
    ],
    ids=[
        "endless-loop",
        "sys-exit",
        "keyboard-interrupt",
        "sigint",
        "os-exit",
        "syntax-error",
        "memory-hog",
        "import-reference",
        "import-grader",
    ],
)
def test_import_failures_score_zero_with_the_reason(tmp_path: Path, prefix: str, reason: str) -> None:
    results = grade_source(tmp_path, prefix + GOOD)
    assert results.score == 0 and not results.internal_error
    for test in results.tests:
        assert reason in test.output, test.output
        assert (
            "could not be imported" in test.output
            or "did not finish" in test.output
            or "crashed" in test.output
        )
    assert reason in results.output


def test_syntax_error_names_the_line(tmp_path: Path) -> None:
    results = grade_source(tmp_path, "x = 1\ndef broken(:\n    pass\n")
    assert "line 2" in results.tests[0].output


def test_reading_the_reference_by_path_is_denied(tmp_path: Path) -> None:
    if landlock_abi() < 1 and not namespaces_work():
        skip_unless_required(
            "GRADER_REQUIRE_NAMESPACES",
            "neither namespaces nor Landlock: the worker cannot be denied read access to the repository",
        )
    assert REPO_ROOT is not None
    source = f"""
    import os
    namespace = {{}}
    for path in [{str(REPO_ROOT / "reference" / "rewards.py")!r}, f"/proc/{{os.getppid()}}/cwd/reference/rewards.py"]:
        try:
            exec(open(path).read(), namespace)
        except OSError:
            pass
    kl_penalty_forward = namespace["kl_penalty_forward"]
    kl_penalty_backward = namespace["kl_penalty_backward"]
    shaped_reward = namespace["shaped_reward"]
    """
    results = grade_source(tmp_path, source)
    assert results.score == 0
    assert "KeyError: 'kl_penalty_forward'" in results.tests[0].output


@pytest.mark.parametrize(
    "config",
    [
        FAST,  # namespaces where they work (and Landlock's signal scoping where the kernel has it)
        replace(FAST, landlock_scoping=False),  # as on a kernel before Landlock ABI 6
        replace(FAST, isolation="fallback"),
        replace(FAST, isolation="fallback", landlock_scoping=False),  # the seccomp signal guard alone
        replace(FAST, isolation="fallback", landlock=False),
    ],
    ids=["auto", "auto-unscoped", "fallback", "fallback-unscoped", "fallback-no-landlock"],
)
def test_signalling_the_grader_is_denied(tmp_path: Path, config: SandboxConfig) -> None:
    """Denied in every mode, whatever the kernel's Landlock ABI (no skip): a signal that got through would reach
    this process, which records it instead of dying."""
    received: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))
    try:
        results = grade_source(
            tmp_path, "import os, signal\nos.kill(os.getppid(), signal.SIGTERM)\n" + GOOD, config
        )
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert received == []
    assert results.score == 0 and "PermissionError" in results.tests[0].output


# --- hostile in a call -------------------------------------------------------------------------------------------


def _replace_forward(body: str) -> str:
    return (
        GOOD
        + "\n\ndef kl_penalty_forward(log_probs_policy, log_probs_ref, kl_coef=0.1):\n"
        + textwrap.indent(textwrap.dedent(body), "    ")
    )


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("while True:\n    pass\n", "did not return within 1 s"),
        (
            "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(1000)\n",
            "did not return within 1 s",
        ),
        ("import os\nos._exit(7)\n", "exited with status 7"),
        ("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n", "killed by SIGKILL"),
        ("import sys\nsys.exit(0)\n", "SystemExit"),
        ("return list(bytearray(64 * 2**30))\n", "MemoryError"),
        ("while True:\n    print('flood' * 1000)\n", "output limit"),
        ("import os\nwhile True:\n    os.write(2, b'x' * 65536)\n", "output limit"),
        ("open('big.bin', 'wb').write(b'x' * (20 << 20))\n", "output limit"),
    ],
    ids=[
        "endless-loop",
        "ignores-sigterm",
        "os-exit",
        "sigkill-self",
        "sys-exit",
        "memory-hog",
        "print-flood",
        "stderr-flood",
        "disk-flood",
    ],
)
def test_a_hostile_call_loses_only_its_check(tmp_path: Path, body: str, reason: str) -> None:
    started = time.monotonic()
    results = grade_source(tmp_path, _replace_forward(body))
    scores = scores_by_id(results)
    assert scores["kl_forward.contract"][0] == 0 and reason in scores["kl_forward.contract"][1], scores
    # the worker is restarted for the next check: the other functions are graded normally
    assert scores["kl_backward.contract"][0] == 2 and scores["shaping.contract"][0] == 1, scores
    # 20 calls in the check, but a timeout is not repeated: about one call timeout, not twenty
    assert time.monotonic() - started < 8
    assert len(results.output) < 12_000


def test_an_output_flood_is_truncated_in_the_report(tmp_path: Path) -> None:
    results = grade_source(
        tmp_path, "import sys\nfor _ in range(10**6):\n    sys.stderr.write('noise ' * 100)\n" + GOOD
    )
    # the import itself failed once the output limit was reached: honest zero, bounded report
    assert results.score == 0 and "output limit" in results.tests[0].output
    assert "noise" in results.output and "[... truncated]" in results.output and len(results.output) < 12_000


# --- processes that outlive their call ------------------------------------------------------------------------


@linux_only
def test_forked_sleepers_are_all_killed(tmp_path: Path) -> None:
    marker = f"grader-test-sleeper-{uuid.uuid4().hex}"
    source = f"""
    import os
    for _ in range(8):
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                os.execv("/bin/sh", ["/bin/sh", "-c", "sleep 1000", {marker!r}])
            os._exit(0)
    """
    results = grade_source(tmp_path, textwrap.dedent(source) + GOOD)
    assert results.full_marks, (
        results.to_json()
    )  # the functions are right: forking is not punished, only contained
    assert processes_with(marker) == []


@linux_only
@pytest.mark.parametrize("landlock", [True, False], ids=["landlock", "no-landlock"])
def test_a_daemon_cannot_rewrite_results_later(tmp_path: Path, landlock: bool) -> None:
    target = tmp_path / "results.json"
    target.write_text("honest")
    marker = f"grader-test-daemon-{uuid.uuid4().hex}"
    source = f"""
    import os
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            os.execv("/bin/sh", ["/bin/sh", "-c", "sleep 2; echo forged > {target}", {marker!r}])
        os._exit(0)
    """
    source = textwrap.dedent(source) + GOOD
    config = SandboxConfig(
        call_timeout_s=1.0,
        import_timeout_s=3.0,
        memory_bytes=1 << 30,
        landlock=landlock,
        hidden_paths=(str(tmp_path),),
    )
    assert grade_source(tmp_path, source, config).full_marks  # the import ran (and forked)
    assert processes_with(marker) == []  # the double-forked, setsid daemon is dead once grade() returns
    time.sleep(2.5)
    assert target.read_text() == "honest"


@linux_only
def test_a_process_bomb_is_contained(tmp_path: Path) -> None:
    marker = f"grader-test-bomb-{uuid.uuid4().hex}"
    source = f"""
    import os, sys
    def kl_penalty_forward(log_probs_policy, log_probs_ref, kl_coef=0.1):
        for _ in range(6):
            try:
                if os.fork() == 0:
                    os.execv("/bin/sh", ["/bin/sh", "-c", "sleep 1000 & sleep 1000 & wait", {marker!r}])
            except OSError:
                pass
        while True:
            pass
    """
    results = grade_source(tmp_path, GOOD + textwrap.dedent(source))
    assert scores_by_id(results)["kl_forward.contract"][0] == 0
    assert processes_with(marker) == []


# --- forged replies on the grader's channel -------------------------------------------------------------------


STUB = """
def kl_penalty_forward(log_probs_policy, log_probs_ref, kl_coef=0.1):
    raise NotImplementedError

kl_penalty_backward = kl_penalty_forward

def shaped_reward(scores, completions, prompts=None):
    raise NotImplementedError
"""


@pytest.mark.parametrize(
    "payload",
    [
        repr(
            b'{"id": 0, "status": "ready"}\n{"id": 1, "status": "ok", "value": [100.0, 100.0], "mutated": false}\n'
        ),
        repr(b"garbage that is not json\n"),
        repr(b'{"id": 1, "status": "ok", "value": [NaN], "mutated": false}\n'),
        repr(b'{"id": 1, "status": "timeout", "mutated": false}\n'),
        "b'x' * (20 << 20)",
    ],
    ids=["fake-ready-and-reply", "garbage", "nan-literal", "bad-status", "huge-line"],
)
def test_forged_protocol_replies_are_rejected(tmp_path: Path, payload: str) -> None:
    source = f"""
    import os, threading
    def forge():
        for fd in range(3, 64):
            try:
                os.write(fd, {payload})
            except OSError:
                pass
    threading.Thread(target=forge, daemon=True).start()
    """
    results = grade_source(tmp_path, textwrap.dedent(source) + STUB)
    assert results.score == 0 and not results.internal_error
    # Each check saw the stub's error or a rejected forgery. A well-formed forged reply with the right id is
    # indistinguishable from a return value (the submission shares the worker's process), so it is judged as one:
    # it earns only what returning those numbers would earn.
    for test in results.tests:
        assert any(
            s in test.output
            for s in ("NotImplementedError", "malformed", "larger than", "did not complete", "wrong value")
        ), test.output


# --- what a function returns ------------------------------------------------------------------------------------


BOOBY_TRAPS = """
import math
import numpy as np

class Evil:
    def __float__(self):
        raise RuntimeError("boom")
    def __repr__(self):
        raise RuntimeError("repr")
    def __eq__(self, other):
        raise RuntimeError("eq")
    __hash__ = None

class Huge:
    def __float__(self):
        return Huge()

class LyingList(list):
    def __len__(self):
        return 10**9
    def __iter__(self):
        raise RuntimeError("iter")
    def __getitem__(self, i):
        raise RuntimeError("getitem")

class SneakyFloat(float):
    def __float__(self):
        raise RuntimeError("float")
    def __repr__(self):
        raise RuntimeError("repr")

class BadMessage(Exception):
    def __str__(self):
        raise RuntimeError("str")

def kl_penalty_forward(log_probs_policy, log_probs_ref, kl_coef=0.1):
    case = int(kl_coef)
    if case == 1: return Evil()
    if case == 2: return [0.5, Huge()]
    if case == 3: return LyingList([0.25, 0.5])
    if case == 4: return (x for x in [0.1])
    if case == 5: return "0.1"
    if case == 6: return {"a": 1.0}
    if case == 7: return [True, False]
    if case == 8: return [0.0] * 200_000
    if case == 9: return np.zeros((2, 2))
    if case == 10: return np.array([0.5, 0.25], dtype=np.float32)
    if case == 11: return [SneakyFloat(0.75)]
    if case == 12: return [Evil()]
    if case == 13: raise BadMessage()
    if case == 14: return [10**400]
    if case == 15: return [math.nan, math.inf, -math.inf]
    if case == 16:
        log_probs_policy[0].append(1.0)
        return [0.0]
    if case == 17: return None
    if case == 18: return np.array([True])
    if case == 19: return [np.float32(0.5), np.int64(2)]
    if case == 20: return (0.125, 2)
    if case == 21: return np.array([1 + 2j])
    return []

kl_penalty_backward = shaped_reward = kl_penalty_forward
"""


@pytest.fixture(scope="module")
def trapped(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("booby") / "rewards.py"
    path.write_text(BOOBY_TRAPS)
    with SandboxedSubmission(path, FAST) as sub:
        assert sub.start().ok
        yield sub


@pytest.mark.parametrize(
    ("case", "status", "expected"),
    [
        (1, "invalid", "Evil"),
        (2, "invalid", "element 1 is a Huge"),
        (3, "ok", [0.25, 0.5]),  # the list's real contents, read without its overridden methods
        (4, "invalid", "generator"),
        (5, "invalid", "str"),
        (6, "invalid", "dict"),
        (7, "invalid", "bool"),
        (8, "invalid", "at most 20000"),
        (9, "invalid", "2-D numpy array"),
        (10, "ok", [0.5, 0.25]),
        (11, "ok", [0.75]),  # the stored value, not what the overridden __float__ says
        (12, "invalid", "element 0 is a Evil"),
        (13, "error", "BadMessage: <exception message unavailable>"),
        (14, "invalid", "too large"),
        (15, "ok", "nan-inf"),
        (17, "invalid", "NoneType"),
        (18, "invalid", "dtype bool"),
        (19, "ok", [0.5, 2.0]),
        (20, "ok", [0.125, 2.0]),
        (21, "invalid", "complex"),
    ],
)
def test_returned_values_are_validated(
    trapped: SandboxedSubmission, case: int, status: str, expected: object
) -> None:
    trapped.begin_check(10)
    out = trapped.call("kl_penalty_forward", [[-1.0]], [[-1.0]], kl_coef=case)
    assert out.status == status, out
    if expected == "nan-inf":
        assert out.value is not None and math.isnan(out.value[0]) and out.value[1:] == [math.inf, -math.inf]
    elif isinstance(expected, list):
        assert out.value == expected and all(type(v) is float for v in out.value)
    else:
        assert isinstance(expected, str) and expected in out.message, out.message


def test_in_place_modification_is_reported(trapped: SandboxedSubmission) -> None:
    trapped.begin_check(10)
    assert trapped.call("kl_penalty_forward", [[-1.0]], [[-1.0]], kl_coef=16).inputs_mutated is True
    assert trapped.call("kl_penalty_forward", [[-1.0]], [[-1.0]], kl_coef=20).inputs_mutated is False


def test_only_contract_functions_can_be_called(trapped: SandboxedSubmission) -> None:
    with pytest.raises(ValueError):
        trapped.call("__import__", "os")


def test_missing_functions_are_reported(tmp_path: Path) -> None:
    path = write_submission(
        tmp_path, "def kl_penalty_forward(a, b, kl_coef=0.1):\n    return [0.0]\nshaped_reward = 3\n"
    )
    with SandboxedSubmission(path, FAST) as sub:
        assert sub.start().ok
        sub.begin_check(5)
        assert sub.call("kl_penalty_backward", [], []).status == "missing"
        assert sub.call("shaped_reward", [], []).status == "missing"


def test_check_budget_stops_a_check_and_the_next_one_starts_fresh(tmp_path: Path) -> None:
    path = write_submission(tmp_path, "import time\n" + _replace_forward("time.sleep(0.3)\nreturn [0.0]\n"))
    with SandboxedSubmission(path, SandboxConfig(call_timeout_s=5.0)) as sub:
        assert sub.start().ok
        sub.begin_check(1.0)
        started = time.monotonic()
        outcomes = [sub.call("kl_penalty_forward", [[-1.0]], [[-1.0]]) for _ in range(10)]
        assert time.monotonic() - started < 2.0
        assert outcomes[0].ok and outcomes[-1].status == "timeout" and "budget (1 s)" in outcomes[-1].message
        sub.begin_check(5.0)
        assert sub.call("kl_penalty_backward", [[-1.0]], [[-1.0]]).ok


def test_numpy_results_are_accepted_inside_the_sandbox(tmp_path: Path) -> None:
    source = (
        GOOD
        + """
import numpy as np
_fw = kl_penalty_forward
def kl_penalty_forward(log_probs_policy, log_probs_ref, kl_coef=0.1):
    return np.asarray(_fw(log_probs_policy, log_probs_ref, kl_coef))
"""
    )
    assert grade_source(tmp_path, source).full_marks


@pytest.mark.slow
def test_torch_results_are_accepted_inside_the_sandbox(tmp_path: Path) -> None:
    source = (
        GOOD
        + """
import torch
_bw = kl_penalty_backward
def kl_penalty_backward(log_probs_policy, log_probs_ref, kl_coef=0.1):
    return torch.tensor(_bw(log_probs_policy, log_probs_ref, kl_coef), dtype=torch.float64, requires_grad=True)
"""
    )
    results = grade_source(
        tmp_path, source, SandboxConfig(call_timeout_s=10, import_timeout_s=30), limit_s=60
    )
    assert results.full_marks, results.to_json()


def test_the_environment_is_scrubbed_and_the_cwd_is_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRADER_SECRET_TOKEN", "s3cret")
    source = (
        GOOD
        + """
import os, sys
_leaks = [k for k in os.environ if "SECRET" in k or "RESULTS" in k]
_cwd_ok = os.getcwd().startswith(os.environ["TMPDIR"].rsplit("/", 1)[0]) and not os.listdir(".") == None
def shaped_reward(scores, completions, prompts=None):
    if _leaks or "" in sys.path:
        raise RuntimeError(f"leaked {_leaks} {sys.path}")
    return [float(s) for s in scores]
"""
    )
    results = grade_source(tmp_path, source)
    assert results.full_marks, results.to_json()


def test_same_submission_graded_twice_gives_identical_results(tmp_path: Path) -> None:
    source = _replace_forward("import os\nos._exit(3)\n")
    first, second = (
        grade_source(tmp_path, source).to_gradescope_dict(),
        grade_source(tmp_path, source).to_gradescope_dict(),
    )
    first.pop("execution_time")
    second.pop("execution_time")
    assert first == second


def test_unregistered_checks_and_crashing_checks_are_internal_errors(tmp_path: Path) -> None:
    def crashing(submission: Submission, context: CheckContext) -> CheckOutcome:
        raise ZeroDivisionError("bug in a check")

    registry = {"kl_forward.contract": crashing, "shaping.contract": REGISTRY["shaping.contract"]}
    results = grade(
        GradeRequest(write_submission(tmp_path, GOOD), rubric=RUBRIC, sandbox=FAST), registry=registry
    )
    scores = {t.check_id: t for t in results.tests}
    assert (
        scores["kl_forward.contract"].internal_error
        and "ZeroDivisionError" in scores["kl_forward.contract"].output
    )
    assert (
        scores["kl_backward.contract"].internal_error
        and "no check is registered" in scores["kl_backward.contract"].output
    )
    assert scores["shaping.contract"].score == 1 and not results.full_marks


def test_training_checks_get_a_training_context_and_are_skipped_without_training(tmp_path: Path) -> None:
    from grader.contract import TrainingContext

    seen: list[CheckContext] = []

    def training_check(submission: Submission, context: CheckContext) -> CheckOutcome:
        seen.append(context)
        return CheckOutcome(1.0 if submission.call("shaped_reward", [0.5], ["x"]).ok else 0.0)

    rubric = parse_rubric(
        {
            "checks": {
                "shaping.contract": {"name": "shaping", "points": 1},
                "training.fake": {"name": "training: fake", "points": 3, "budget_s": 7},
            }
        }
    )
    registry = {"shaping.contract": REGISTRY["shaping.contract"], "training.fake": training_check}
    path = write_submission(tmp_path, GOOD)
    without = grade(GradeRequest(path, rubric=rubric, sandbox=FAST, training=False), registry=registry)
    assert [t.check_id for t in without.tests] == ["shaping.contract"] and without.full_marks
    assert "Training checks skipped (--no-training): 1 checks, 3 points" in without.output and not seen
    with_training = grade(
        GradeRequest(path, rubric=rubric, sandbox=FAST, training=True, seed=5), registry=registry
    )
    assert with_training.full_marks and with_training.max_score == 4
    (context,) = seen
    assert isinstance(context, TrainingContext) and context.seed == 5 and context.budget_s == 7
    assert Path(context.training.submission_path) == path.resolve() and context.training.work_dir


def test_a_training_check_learns_which_of_its_gates_already_failed(tmp_path: Path) -> None:
    """The runner tells a training check whose gate closed before it ran (withheld_by), so it spends no runs on
    further seeds that could not change its score (grader.checks.training._decide)."""
    seen: list[CheckContext] = []

    def training_check(submission: Submission, context: CheckContext) -> CheckOutcome:
        seen.append(context)
        return CheckOutcome(1.0)

    rubric = parse_rubric(
        {
            "checks": {
                "shaping.contract": {"name": "shaping", "points": 1},
                "shaping.goal": {"name": "goal", "points": 1},
                "training.fake": {
                    "name": "training: fake",
                    "points": 3,
                    "requires": ["shaping.contract", "shaping.goal"],
                },
            }
        }
    )
    registry = {
        "shaping.contract": lambda s, c: CheckOutcome(0.0, "wrong"),
        "shaping.goal": lambda s, c: CheckOutcome(1.0),
        "training.fake": training_check,
    }
    results = grade(
        GradeRequest(write_submission(tmp_path, GOOD), rubric=rubric, sandbox=FAST), registry=registry
    )
    (context,) = seen
    assert context.withheld_by == ("shaping.contract",)
    assert "Withheld: requires shaping.contract" in results.tests[-1].output


def test_an_oversized_submission_scores_zero_without_running(tmp_path: Path) -> None:
    results = grade_source(tmp_path, GOOD + "#" * 3_000_000)
    assert results.score == 0 and not results.internal_error
    assert "larger than" in results.tests[0].output
