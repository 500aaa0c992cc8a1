"""Running a submission safely: :class:`SandboxedSubmission`, the production :class:`~grader.core.Submission`.

The submission runs in a separate worker interpreter (:mod:`grader.worker`), never in the grader's process:

* fresh interpreter (``-s -B``, ``PYTHONSAFEPATH``, environment built from scratch: no results path, no grader
  secrets, ``PYTHONHASHSEED=0`` and single-threaded BLAS for determinism), cwd and ``HOME``/``TMPDIR`` in a new
  temporary directory, the submission copied there;
* inside the worker, before the submission is imported: memory (``RLIMIT_AS``), CPU-time and written-file-size
  limits, no core dumps, and on Linux a Landlock ruleset (read access to the Python installation and system
  directories only: the repository with ``reference/`` and the results directory are unreadable; writes only in
  its temporary directory; no TCP; no signals to the grader). ``import reference`` is refused in any case;
* stdout and stderr go to files (size-capped by ``RLIMIT_FSIZE``), never into the grader's memory;
* requests and replies cross a dedicated pipe pair as single JSON lines. Replies are untrusted: size-capped,
  parsed as JSON only (nothing is unpickled), and validated here; a malformed or out-of-sequence reply counts as
  a crash of the worker;
* per-call timeouts and a per-check time budget (:meth:`SandboxedSubmission.begin_check`). Once a call has
  timed out or the worker has crashed during a check, later calls in that check fail the same way at once, and
  the worker is restarted (the submission re-imported) for the next check;
* when the worker is done or stuck, its whole process tree is killed: the grader makes itself a child subreaper
  (``PR_SET_CHILD_SUBREAPER``) so that descendants that double-fork or call ``setsid`` are re-parented to it
  instead of init, and kills every descendant it finds in ``/proc`` until none is left, then reaps them.

Limitation: the process-tree sweep attributes to a sandbox every new child re-parented to this process while
the sandbox is open, so run one sandbox at a time per process (batch grading: one grader process per submission).
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import math
import os
import select
import shutil
import signal
import site
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader.core import STUDENT_FUNCTIONS, CallOutcome
from grader.locate import MAX_SUBMISSION_BYTES

WORKER_PATH = Path(__file__).with_name("worker.py")
#: The repository root (hidden from the worker) when the grader runs from a checkout, else None.
_PACKAGE_PARENT = Path(__file__).resolve().parent.parent
REPO_ROOT = (
    _PACKAGE_PARENT
    if (_PACKAGE_PARENT / "reference").is_dir() or (_PACKAGE_PARENT / "pyproject.toml").is_file()
    else None
)
_REPLY_STATUSES = {"ok", "error", "invalid", "missing"}
_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
_SYSTEM_READ_DIRS = (
    "/usr",
    "/lib",
    "/lib64",
    "/lib32",
    "/libx32",
    "/bin",
    "/sbin",
    "/etc",
    "/opt",
    "/sys",
    "/dev",
    "/proc/cpuinfo",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/sys/kernel",
    "/proc/filesystems",
)


@dataclass(frozen=True)
class SandboxConfig:
    """Limits of one sandbox. Production defaults; tests pass small timeouts."""

    call_timeout_s: float = 10.0
    check_budget_s: float = 60.0
    import_timeout_s: float = 20.0
    memory_bytes: int = 2 << 30
    cpu_seconds: int = 900
    file_bytes: int = 8 << 20  # per file written, the captured stdout/stderr included
    max_processes: int | None = (
        256  # more tasks (processes + threads) for this user, via RLIMIT_NPROC; not for root
    )
    max_reply_bytes: int = 16 << 20
    output_excerpt_bytes: int = 4_000  # how much of the captured stdout/stderr the report shows
    landlock: bool = True
    hidden_paths: tuple[str, ...] = ()  # never readable by the worker, besides the repository root


# ---------------------------------------------------------------------------------------------------------
# Process-tree control (Linux /proc; degrades to process groups elsewhere)
# ---------------------------------------------------------------------------------------------------------

_subreaper_state: bool | None = None


def become_subreaper() -> bool:
    """Make this process the child subreaper of its descendants (Linux); idempotent. False if unsupported."""
    global _subreaper_state
    if _subreaper_state is None:
        _subreaper_state = False
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                _subreaper_state = libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
            except (OSError, AttributeError):
                pass
    return _subreaper_state


def _proc_table() -> dict[int, tuple[int, int, str]] | None:
    """pid -> (ppid, start time in clock ticks, state) for every process, or None without /proc."""
    try:
        names = os.listdir("/proc")
    except OSError:
        return None
    table = {}
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue  # exited meanwhile
        fields = stat[stat.rfind(b")") + 2 :].split()
        table[int(name)] = (int(fields[1]), int(fields[19]), fields[0].decode())
    return table


def _start_ticks(pid: int) -> int | None:
    table_entry = None
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        table_entry = int(stat[stat.rfind(b")") + 2 :].split()[19])
    except (OSError, ValueError, IndexError):
        pass
    return table_entry


def _children_table(table: dict[int, tuple[int, int, str]]) -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for pid, (ppid, _start, _state) in table.items():
        children.setdefault(ppid, []).append(pid)
    return children


def _kill_subtrees(
    table: dict[int, tuple[int, int, str]], children: dict[int, list[int]], roots: list[int], spare: int = -1
) -> list[int]:
    """SIGKILL every live process in the subtrees of ``roots`` and reap those re-parented to us (all but
    ``spare``, which its Popen reaps). Returns the pids that were still alive (empty: the sweep is done)."""
    me = os.getpid()
    targets, stack = set(), list(roots)
    while stack:
        pid = stack.pop()
        if pid not in targets:
            targets.add(pid)
            stack.extend(children.get(pid, ()))
    live = [pid for pid in targets if table[pid][2] not in "ZX"]
    for pid in live:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    for pid in targets:
        if pid != spare and table[pid][0] == me:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
    return live


def kill_tree(
    proc: subprocess.Popen, started_ticks: int | None, preexisting: set[int], timeout_s: float = 10.0
) -> bool:
    """SIGKILL ``proc`` and all its descendants, also those re-parented to this (subreaper) process; reap them.

    ``preexisting``: this process's children from before ``proc`` started (never touched). Returns True when
    no live descendant is left.
    """
    me = os.getpid()
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the worker's own session: the cheap first sweep
    except OSError:
        pass
    deadline = time.monotonic() + timeout_s
    clean = False
    while True:
        table = _proc_table()
        if table is None:
            proc.kill()
            clean = True
            break
        children = _children_table(table)
        # once reaped, the worker's pid may belong to someone else: its orphans are found as re-parented children
        roots = [proc.pid] if proc.returncode is None and proc.pid in table else []
        if started_ticks is not None:
            roots += [
                pid
                for pid in children.get(me, ())
                if pid != proc.pid and pid not in preexisting and table[pid][1] >= started_ticks
            ]
        # reap re-parented orphans; the worker itself is reaped through proc.wait
        live = _kill_subtrees(table, children, roots, spare=proc.pid)
        if not live:
            clean = True
            break
        if time.monotonic() > deadline:
            break
        time.sleep(0.002)
    try:
        proc.wait(timeout=max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        clean = False
    return clean


def boot_ticks_now() -> int:
    """Now, in the clock ticks since boot that /proc/<pid>/stat uses for a process's start time."""
    return int(time.clock_gettime(time.CLOCK_BOOTTIME) * os.sysconf("SC_CLK_TCK"))


def kill_descendants(since_ticks: int, preexisting: set[int], timeout_s: float = 10.0) -> bool:
    """SIGKILL and reap every descendant of this process whose top ancestor below us started at or after
    ``since_ticks`` and is not in ``preexisting`` (our children from before, never touched).

    For a subreaper that killed processes it started (batch grading on a timeout): whatever they double-forked
    was re-parented to us and is swept here. Returns True when none is left alive.
    """
    me = os.getpid()
    deadline = time.monotonic() + timeout_s
    while True:
        table = _proc_table()
        if table is None:
            return False
        children = _children_table(table)
        roots = [
            pid for pid in children.get(me, ()) if pid not in preexisting and table[pid][1] >= since_ticks
        ]
        if not _kill_subtrees(table, children, roots):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)


def _nproc_limit(extra: int | None) -> int | None:
    """RLIMIT_NPROC counts every task of the user, system-wide: allow ``extra`` more than there are now."""
    if extra is None or os.geteuid() == 0:
        return None
    uid, tasks = str(os.geteuid()), 0
    for pid in _proc_table() or {}:
        try:
            with open(f"/proc/{pid}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
            if fields.get("Uid", "").split()[:1] == [uid]:
                tasks += int(fields.get("Threads", "1"))
        except (OSError, ValueError):
            continue
    return tasks + extra


def _enlarge_pipe(fd: int, size: int = 1 << 20) -> None:
    """Fewer round trips for large arguments (a context switch per 64 KiB is slow on a busy machine)."""
    if hasattr(fcntl, "F_SETPIPE_SZ"):
        try:
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, size)
        except OSError:
            pass


def children_of_me() -> set[int]:
    table = _proc_table() or {}
    me = os.getpid()
    return {pid for pid, (ppid, _s, _st) in table.items() if ppid == me}


# ---------------------------------------------------------------------------------------------------------
# What the worker may read
# ---------------------------------------------------------------------------------------------------------


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def readable_paths(hidden: list[str]) -> list[str]:
    """The Python installation and system directories, minus anything that would expose a hidden path.

    A candidate that is an ancestor of a hidden path is replaced by its other children (recursively); one equal
    to a hidden path is dropped. Installation directories *inside* a hidden one (a nox virtualenv in the
    repository) are kept: they are subtrees that do not contain the hidden files.
    """
    hidden = [os.path.realpath(h) for h in hidden]
    install = {
        sys.prefix,
        sys.base_prefix,
        sys.exec_prefix,
        sys.base_exec_prefix,
        os.path.dirname(sys.executable),
        os.path.dirname(os.path.realpath(sys.executable)),
        *sysconfig.get_paths().values(),
        *site.getsitepackages(),
    }
    out: list[str] = []

    def add(path: str, depth: int = 0) -> None:
        path = os.path.realpath(path)
        if not os.path.exists(path) or any(path == h for h in hidden):
            return
        if any(_within(h, path) for h in hidden):  # an ancestor of something hidden: grant its other children
            if depth < 8 and os.path.isdir(path):
                try:
                    entries = sorted(os.scandir(path), key=lambda e: e.name)
                except OSError:
                    return
                for entry in entries:
                    add(entry.path, depth + 1)
            return
        if path not in out:
            out.append(path)

    for path in sorted(install) + list(_SYSTEM_READ_DIRS):
        add(path)
    return out


# ---------------------------------------------------------------------------------------------------------
# The sandbox
# ---------------------------------------------------------------------------------------------------------


class SandboxError(Exception):
    """The sandbox itself could not be set up (not the submission's fault)."""


class SubmissionFileError(SandboxError):
    """The submission file cannot be graded at all (unreadable, too large): the submission's problem."""


def _describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "it stopped answering"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        hint = {
            "SIGXCPU": " (CPU time limit exceeded)",
            "SIGKILL": " (killed: memory or another limit?)",
            "SIGSEGV": " (segmentation fault)",
        }.get(name, "")
        return f"it was killed by {name}{hint}"
    return f"it exited with status {returncode} (os._exit, or an exit from a thread or native code)"


class SandboxedSubmission:
    """A submission file run in a confined worker process; use as a context manager.

    >>> with SandboxedSubmission("rewards.py") as sub:          # doctest: +SKIP
    ...     imported = sub.start()                                # CallOutcome: ok, error, timeout, crashed
    ...     sub.begin_check(60)
    ...     sub.call("kl_penalty_forward", [[-1.0]], [[-1.2]], kl_coef=0.1)
    """

    def __init__(self, path: str | os.PathLike, config: SandboxConfig | None = None) -> None:
        self.path = Path(path)
        self.config = config or SandboxConfig()
        self.display_name = self.path.name
        self.isolation = "not started"
        self.import_outcome: CallOutcome | None = None
        self._tmp: Path | None = None
        self._proc: subprocess.Popen | None = None
        self._started_ticks: int | None = None
        self._preexisting: set[int] = set()
        self._request_fd = self._reply_fd = -1
        self._buffer = b""
        self._next_id = 1
        self._deadline = math.inf
        self._budget = math.inf
        self._sticky: CallOutcome | None = None
        self._read_paths: list[str] = []
        self.calls = 0

    # -- lifecycle ------------------------------------------------------------------------------------------

    def __enter__(self) -> SandboxedSubmission:
        try:  # read the file once, bounded (no reading a huge or special file whole)
            with open(self.path, "rb") as f:
                source = f.read(MAX_SUBMISSION_BYTES + 1)
        except OSError as exc:
            raise SubmissionFileError(
                f"cannot read the submission {self.path.name}: {exc.strerror or exc}"
            ) from exc
        if len(source) > MAX_SUBMISSION_BYTES:
            raise SubmissionFileError(f"the submission is larger than {MAX_SUBMISSION_BYTES} bytes")
        self._tmp = Path(tempfile.mkdtemp(prefix="grader-sandbox-"))
        for sub in ("sub", "work", "work/tmp", "logs"):
            (self._tmp / sub).mkdir(exist_ok=True)
        (self._tmp / "sub" / "submission.py").write_bytes(source)
        self._read_paths = readable_paths(self._hidden()) + [str(self._tmp / "sub")]
        become_subreaper()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Kill the worker's whole process tree and delete the temporary directory."""
        self._stop()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def start(self) -> CallOutcome:
        """Start the worker and import the submission. ``ok``, or why not (``error``, ``timeout``, ``crashed``)."""
        self.import_outcome = self._spawn()
        return self.import_outcome

    def begin_check(self, budget_s: float | None = None) -> None:
        """Start a check's time budget; forget the previous check's timeout or crash (the worker restarts lazily)."""
        self._budget = self.config.check_budget_s if budget_s is None else budget_s
        self._deadline = time.monotonic() + self._budget
        self._sticky = None

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # -- calls ----------------------------------------------------------------------------------------------

    def call(self, function: str, *args: Any, **kwargs: Any) -> CallOutcome:
        if self._sticky is not None:
            return self._sticky
        if function not in STUDENT_FUNCTIONS:
            raise ValueError(f"not a function of the student contract: {function!r}")
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            return self._fail(
                "timeout",
                f"the check's time budget ({self._budget:g} s) ran out before {function}() was called",
            )
        if not self.alive:
            outcome = self._spawn()
            if not outcome.ok:
                return self._fail(
                    "crashed", f"the submission could not be restarted for this check: {outcome.message}"
                )
        self.calls += 1
        rid = self._next_id
        self._next_id += 1
        try:
            request = (
                json.dumps({"id": rid, "function": function, "args": list(args), "kwargs": kwargs}) + "\n"
            )
        except (TypeError, ValueError) as exc:
            raise ValueError(f"arguments must be plain JSON data: {exc}") from exc
        timeout = min(self.config.call_timeout_s, remaining)
        budget_bound = timeout < self.config.call_timeout_s
        deadline = time.monotonic() + timeout
        line = self._exchange(request.encode(), deadline)
        if isinstance(line, CallOutcome):
            if line.status == "timeout":
                if budget_bound:
                    return self._fail(
                        "timeout", f"the check's time budget ({self._budget:g} s) ran out during {function}()"
                    )
                return self._fail(
                    "timeout", f"{function}() did not return within {self.config.call_timeout_s:g} s"
                )
            return self._fail(
                line.status, f"the submission's process died during {function}(): {line.message}"
            )
        return self._parse_reply(line, rid, function)

    def _fail(self, status: str, message: str) -> CallOutcome:
        """A failure that ends the worker and repeats for the rest of the check."""
        self._stop()
        self._sticky = CallOutcome(status, None, message)  # type: ignore[arg-type]
        return self._sticky

    def _parse_reply(self, line: bytes, rid: int, function: str) -> CallOutcome:
        def reject(constant: str) -> None:
            raise ValueError(constant)

        violation = (
            "crashed",
            f"the worker's reply to {function}() was malformed (did the submission write to the grader's channel?)",
        )
        try:
            reply = json.loads(line, parse_constant=reject)
        except (ValueError, RecursionError):
            return self._fail(*violation)
        if (
            not isinstance(reply, dict)
            or reply.get("id") != rid
            or reply.get("status") not in _REPLY_STATUSES
        ):
            return self._fail(*violation)
        status = reply["status"]
        mutated = reply.get("mutated")
        if not isinstance(mutated, bool):
            return self._fail(*violation)
        if status == "ok":
            raw = reply.get("value")
            if not isinstance(raw, list):
                return self._fail(*violation)
            value = []
            for item in raw:
                if type(item) is float:
                    value.append(item)
                elif type(item) is int:
                    try:
                        value.append(float(item))
                    except OverflowError:
                        return self._fail(*violation)
                elif type(item) is str and item in _NONFINITE:
                    value.append(_NONFINITE[item])
                else:
                    return self._fail(*violation)
            return CallOutcome("ok", value, "", inputs_mutated=mutated)
        message = reply.get("message", "")
        if not isinstance(message, str):
            return self._fail(*violation)
        return CallOutcome(status, None, message[:4000], inputs_mutated=mutated)

    # -- worker process -------------------------------------------------------------------------------------

    def _hidden(self) -> list[str]:
        hidden = [str(REPO_ROOT)] if REPO_ROOT else []
        return hidden + [str(Path(p).resolve()) for p in self.config.hidden_paths]

    def _spawn(self) -> CallOutcome:
        if self._tmp is None:
            raise SandboxError("use SandboxedSubmission as a context manager")
        self._stop()
        cfg = self.config
        request_r, request_w = os.pipe()
        reply_r, reply_w = os.pipe()
        for fd in (request_w, reply_w):
            _enlarge_pipe(fd)
        work = self._tmp / "work"
        worker_config = {
            "request_fd": request_r,
            "reply_fd": reply_w,
            "parent_pid": os.getpid(),
            "submission": str(self._tmp / "sub" / "submission.py"),
            "display_name": self.display_name,
            "functions": list(STUDENT_FUNCTIONS),
            "landlock": cfg.landlock,
            "read_paths": self._read_paths,
            "write_paths": [str(work)],
            "limits": {
                "memory_bytes": cfg.memory_bytes,
                "cpu_seconds": cfg.cpu_seconds,
                "file_bytes": cfg.file_bytes,
                "max_processes": _nproc_limit(cfg.max_processes),
            },
        }
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(work),
            "TMPDIR": str(work / "tmp"),
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "PYTHONHASHSEED": "0",
            "PYTHONSAFEPATH": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONNOUSERSITE": "1",
            "PYTHONUNBUFFERED": "1",
            "PYTHONIOENCODING": "utf-8",
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "MPLBACKEND": "Agg",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
        }
        logs = self._tmp / "logs"
        self._preexisting = children_of_me()
        try:
            with open(logs / "stdout.txt", "ab") as out, open(logs / "stderr.txt", "ab") as err:
                self._proc = subprocess.Popen(
                    [sys.executable, "-s", "-B", str(WORKER_PATH), json.dumps(worker_config)],
                    cwd=work,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    pass_fds=(request_r, reply_w),
                    close_fds=True,
                    start_new_session=True,
                )
        finally:
            os.close(request_r)
            os.close(reply_w)
        self._started_ticks = _start_ticks(self._proc.pid)
        self._request_fd, self._reply_fd = request_w, reply_r
        os.set_blocking(request_w, False)
        os.set_blocking(reply_r, False)
        self._buffer = b""
        self._next_id = 1
        deadline = time.monotonic() + cfg.import_timeout_s
        for expected in ("confined", "imported"):
            line = self._read_line(deadline)
            if isinstance(line, CallOutcome):
                self._stop()
                if line.status == "timeout":
                    return CallOutcome(
                        "timeout",
                        None,
                        f"importing {self.display_name} did not finish within {cfg.import_timeout_s:g} s (an endless loop or slow work at import time?)",
                    )
                return CallOutcome(
                    "crashed",
                    None,
                    f"the submission's process died while importing {self.display_name}: {line.message}",
                )
            try:
                reply = json.loads(line, parse_constant=lambda c: None)
                ok = isinstance(reply, dict) and reply.get("id") == 0
            except (ValueError, RecursionError):
                ok = False
            if expected == "confined":
                if not ok or reply.get("status") != "confined" or not isinstance(reply.get("isolation"), str):
                    self._stop()
                    raise SandboxError(
                        f"the worker did not start properly:\n{self._log_tail('stderr.txt', 2000)}"
                    )
                self.isolation = reply["isolation"][:200]
                continue
            if ok and reply.get("status") == "ready":
                return CallOutcome("ok")
            self._stop()
            message = reply.get("message") if ok and reply.get("status") == "import_error" else None
            if not isinstance(message, str):
                message = (
                    "the import did not complete properly (did the submission write to the grader's channel?)"
                )
            return CallOutcome("error", None, f"importing {self.display_name} failed: {message[:4000]}")
        raise AssertionError("unreachable")

    def _stop(self) -> None:
        for fd in (self._request_fd, self._reply_fd):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._request_fd = self._reply_fd = -1
        if self._proc is not None:
            kill_tree(self._proc, self._started_ticks, self._preexisting)
            self._proc = None

    def _exchange(self, request: bytes, deadline: float) -> bytes | CallOutcome:
        view = memoryview(request)
        while view:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return CallOutcome("timeout")
            _r, writable, _x = select.select([], [self._request_fd], [], remaining)
            if writable:
                try:
                    view = view[os.write(self._request_fd, view) :]
                except BlockingIOError:
                    continue
                except OSError:
                    return self._dead()
        return self._read_line(deadline)

    def _read_line(self, deadline: float) -> bytes | CallOutcome:
        while b"\n" not in self._buffer:
            if len(self._buffer) > self.config.max_reply_bytes:
                return CallOutcome(
                    "crashed", None, f"it sent a reply larger than {self.config.max_reply_bytes} bytes"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return CallOutcome("timeout")
            readable, _w, _x = select.select([self._reply_fd], [], [], remaining)
            if not readable:
                continue
            try:
                chunk = os.read(self._reply_fd, 1 << 16)
            except BlockingIOError:
                continue
            if not chunk:
                return self._dead()
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line

    def _dead(self) -> CallOutcome:
        """The channel closed: describe how the worker ended (it normally exits right after)."""
        returncode = None
        if self._proc is not None:
            try:
                returncode = self._proc.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                returncode = None
        how = _describe_exit(returncode) if returncode is not None else "it closed the grader's channel"
        return CallOutcome("crashed", None, how)

    # -- captured output ------------------------------------------------------------------------------------

    def _log_tail(self, name: str, limit: int) -> str:
        if self._tmp is None:
            return ""
        try:
            with open(self._tmp / "logs" / name, "rb") as f:
                data = f.read(limit + 1)
        except OSError:
            return ""
        text = data[:limit].decode("utf-8", "replace")
        return text + ("\n[... truncated]" if len(data) > limit else "")

    def captured_output(self) -> str:
        """The beginning of what the submission printed (stdout, then stderr), truncated."""
        limit = self.config.output_excerpt_bytes
        parts = []
        for name in ("stdout.txt", "stderr.txt"):
            text = self._log_tail(name, limit)
            if text.strip():
                parts.append(f"[{name.split('.')[0]}]\n{text.rstrip()}")
        return "\n".join(parts)
