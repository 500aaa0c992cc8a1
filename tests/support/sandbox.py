"""A small fake rubric and check registry for grading hostile or broken submissions through the real sandbox
quickly (three checks, one per student function, each comparing exact values), and probes of the sandbox in
force here. Shared by the sandbox, isolation, time-budget and torch tests."""

from __future__ import annotations

import math
import os
import signal
import textwrap
import time
import uuid
from pathlib import Path

from grader.contract import CheckContext, CheckOutcome, Submission
from grader.grading.results import GradingResults
from grader.grading.rubric import parse_rubric
from grader.grading.runner import GradeRequest, grade
from grader.sandbox import SandboxConfig, SandboxedSubmission

FAST = SandboxConfig(call_timeout_s=1.0, import_timeout_s=2.0, check_budget_s=4.0, memory_bytes=1 << 30)
RUBRIC = parse_rubric(
    {
        "defaults": {"budget_s": 4},
        "checks": {
            "kl_forward.contract": {"name": "forward", "points": 2},
            "kl_backward.contract": {"name": "backward", "points": 2},
            "shaping.contract": {"name": "shaping", "points": 1},
        },
    }
)
LP, LR = [[-1.0, -2.0], []], [[-1.2, -1.5], []]
EXPECTED = {
    "kl_penalty_forward": [0.1 * ((-1.0 + 1.2) + (-2.0 + 1.5)) / 2, 0.0],
    "kl_penalty_backward": [0.1 * ((1 - math.exp(-0.2)) + (1 - math.exp(0.5))) / 2, 0.0],
}

GOOD = """
import math

def kl_penalty_forward(log_probs_policy, log_probs_ref, kl_coef=0.1):
    out = []
    for p, r in zip(log_probs_policy, log_probs_ref):
        out.append(kl_coef * sum(a - b for a, b in zip(p, r)) / len(p) if p else 0.0)
    return out

def kl_penalty_backward(log_probs_policy, log_probs_ref, kl_coef=0.1):
    out = []
    for p, r in zip(log_probs_policy, log_probs_ref):
        terms = [1.0 - math.exp(min(b - a, math.log(20.0))) for a, b in zip(p, r)]
        out.append(kl_coef * sum(terms) / len(terms) if terms else 0.0)
    return out

def shaped_reward(scores, completions, prompts=None):
    return [float(s) for s in scores]
"""


def _exact_check(function: str):
    """Call the function 20 times (a timeout must not cost 20 timeouts) and compare with the right answer."""

    def check(submission: Submission, context: CheckContext) -> CheckOutcome:
        if function == "shaped_reward":
            outcomes = [submission.call(function, [0.2, 0.9], ["a dull film", "great"]) for _ in range(20)]
            expected = [0.2, 0.9]
        else:
            outcomes = [submission.call(function, LP, LR, kl_coef=0.1) for _ in range(20)]
            expected = EXPECTED[function]
        for out in outcomes:
            if not out.ok:
                return CheckOutcome(0.0, f"{out.status}: {out.message}")
            if len(out.value) != len(expected) or any(
                abs(a - b) > 1e-12 for a, b in zip(out.value, expected, strict=True)
            ):
                return CheckOutcome(0.0, f"wrong value {out.value}")
        return CheckOutcome(1.0, "ok")

    return check


REGISTRY = {
    "kl_forward.contract": _exact_check("kl_penalty_forward"),
    "kl_backward.contract": _exact_check("kl_penalty_backward"),
    "shaping.contract": _exact_check("shaped_reward"),
}


def write_submission(tmp_path: Path, source: str, name: str = "rewards.py") -> Path:
    path = tmp_path / "submission_dir" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(textwrap.dedent(source))
    return path


def grade_source(
    tmp_path: Path, source: str, config: SandboxConfig = FAST, limit_s: float = 15.0
) -> GradingResults:
    started = time.monotonic()
    results = grade(
        GradeRequest(write_submission(tmp_path, source), rubric=RUBRIC, sandbox=config), registry=REGISTRY
    )
    assert time.monotonic() - started < limit_s, "grading was not bounded in time"
    return results


def scores_by_id(results: GradingResults) -> dict[str, tuple[float, str]]:
    return {t.check_id: (t.score, t.output) for t in results.tests}


def processes_with(marker: str, sweeps: int = 5) -> list[int]:
    """The processes with ``marker`` in their command line, over ``sweeps`` looks at ``/proc``. One look is not
    enough for a fork-hopper: a process in the middle of exiting has an empty command line, and the chain's next
    generation can be born behind the look's position in the listing; a look that missed it would call a live
    hopper gone (and its cleanup would then leave it running, as one was for hours on this machine)."""
    found: set[int] = set()
    for _ in range(sweeps):
        for name in os.listdir("/proc"):
            if name.isdigit() and int(name) not in found:
                try:
                    with open(f"/proc/{name}/cmdline", "rb") as f:
                        if marker.encode() in f.read():
                            found.add(int(name))
                except OSError:
                    pass
    return sorted(found)


def wait_until(condition, timeout_s: float) -> bool:
    """Poll ``condition`` every 50 ms until it holds or ``timeout_s`` passes; return its last value."""
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    return bool(condition())


def kill_and_expect_gone(parent, marker: str) -> None:
    """Kill ``parent`` (a Popen) outright and assert that every process with ``marker`` in its command line
    goes with it within 10 s; whatever is left is trapped and killed afterwards, so a failing test leaves nothing
    running."""
    try:
        parent.kill()
        parent.wait(timeout=10)
        assert wait_until(lambda: not processes_with(marker), 10), processes_with(marker)
    finally:
        trap_and_kill(marker)


def _trap_group() -> str | None:
    """A fresh pids cgroup with ``pids.max`` 1 (nothing moved into it can fork), or None where none can be made."""
    from grader.sandbox.cgroup import cgroup_host

    host = cgroup_host()
    if isinstance(host, str):
        return None
    parent = host.parents.get("pids") or host.parents.get("")
    path = os.path.join(parent, f"grader-test-trap-{uuid.uuid4().hex[:8]}")
    try:
        os.mkdir(path)
        with open(os.path.join(path, "pids.max"), "w") as f:
            f.write("1")
    except OSError:
        return None
    return path


def trap_and_kill(marker: str, timeout_s: float = 10.0) -> list[int]:
    """Kill every process with ``marker`` in its command line, fork-hoppers included: each one found is first
    moved into a trap (a pids cgroup that allows no fork; migration is not refused by pids.max), then SIGKILLed,
    until none is left. Where no cgroup can be made, SIGSTOP then SIGKILL. Returns the pids that were found (a
    test that expects none asserts on that)."""
    found: list[int] = []
    trap = _trap_group() if processes_with(marker) else None
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            pids = processes_with(marker)
            if not pids:
                break
            found += [p for p in pids if p not in found]
            for pid in pids:
                try:
                    if trap is not None:
                        with open(os.path.join(trap, "cgroup.procs"), "w") as f:
                            f.write(str(pid))
                    else:
                        os.kill(pid, signal.SIGSTOP)
                except OSError:
                    pass
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.01)
    finally:
        if trap is not None:
            wait_until(lambda: _empty(trap), 5)
            try:
                os.rmdir(trap)
            except OSError:
                pass
    return found


def _empty(group: str) -> bool:
    try:
        with open(os.path.join(group, "cgroup.procs")) as f:
            return not f.read().split()
    except OSError:
        return True


def sandbox_info() -> dict:
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"probe-{uuid.uuid4().hex}.py"
    path.write_text(GOOD)
    try:
        with SandboxedSubmission(path, FAST) as sub:
            sub.start()
            return sub.sandbox_info
    finally:
        path.unlink()


def landlock_abi() -> int:
    return sandbox_info()["landlock_abi"]


def namespaces_work() -> bool:
    return sandbox_info()["isolation"] == "namespaces"
