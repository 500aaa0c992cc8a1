"""Starting the worker: its configuration and scrubbed environment, the namespaces command line or the plain one,
what it does between fork and exec (enter the cgroup, a new IPC namespace), the handshake (confined, imported),
and which processes the memory watch measures. A part of :class:`~grader.sandbox.submission.SandboxedSubmission`.
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from grader.contract import STUDENT_FUNCTIONS, CallOutcome
from grader.sandbox.errors import SandboxError
from grader.sandbox.policy import NS_DIR, REPO_ROOT, enlarge_pipe, namespace_argv, nproc_limit
from grader.sandbox.proctree import MemoryWatch, children_of_me, new_children, start_ticks

WORKER_PATH = Path(__file__).with_name("worker.py")
_CLONE_NEWIPC = 0x08000000


def _ipc_namespace() -> str | None:
    try:
        return os.readlink("/proc/self/ns/ipc")
    except OSError:
        return None


class WorkerLaunch:
    """The worker's start, a part of :class:`~grader.sandbox.submission.SandboxedSubmission` (a mixin: it works on
    that class's state and calls its ``_stop``, ``_read_line``, ``_log_tail`` and ``_describe_isolation``)."""

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
        cgroup = self._cgroup
        oom_killed = (lambda: cgroup.oom_kills() > self._oom_base) if cgroup is not None else None
        self._watch = MemoryWatch(
            self._tree_roots(self._proc, namespaces), cfg.memory_bytes, oom_killed=oom_killed
        ).start()
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
