"""Process trees: find, measure and kill everything a process started.

Used by the sandbox (the worker and whatever it forked), batch grading (a grader killed on its timeout) and the
training lanes. On Linux it reads ``/proc`` directly (fast: the sweep runs in tight loops); elsewhere (macOS) it
asks psutil, so the same sweep and memory watch work there too.

Descendants that double-fork or call ``setsid`` are re-parented to the nearest *subreaper* ancestor instead of
init: :func:`become_subreaper` makes this process that ancestor, so nothing a sandbox starts can leave its tree.
A process is attributed to a sandbox when it is below the sandbox's process, or is one of our own children that
started after it (an orphan re-parented to us). Start times are in :func:`boot_ticks_now` units.

Limitation: that attribution cannot tell apart two sandboxes opened at the same time in one process, so run
one sandbox at a time per process (batch grading: one grader process per submission). Inside a PID namespace
(:mod:`grader.sandbox`'s namespaces mode) none of this is needed for safety: killing the namespace's init kills
every process in it.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import NamedTuple

_HAS_PROC = os.path.isdir("/proc/self")
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class ProcInfo(NamedTuple):
    ppid: int
    start: int  # boot_ticks_now() units
    state: str  # one letter, as in /proc/<pid>/stat: Z and X are dead


# ---------------------------------------------------------------------------------------------------------
# Reading the process table
# ---------------------------------------------------------------------------------------------------------


def _parse_stat(raw: bytes) -> ProcInfo:
    fields = raw[raw.rfind(b")") + 2 :].split()
    return ProcInfo(int(fields[1]), int(fields[19]), fields[0].decode())


def proc_info(pid: int) -> ProcInfo | None:
    """One process's parent, start time and state; None when it is gone (or unknown)."""
    if _HAS_PROC:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                return _parse_stat(f.read())
        except (OSError, ValueError, IndexError):
            return None
    try:
        import psutil

        p = psutil.Process(pid)
        with p.oneshot():
            return ProcInfo(p.ppid(), _psutil_ticks(p.create_time()), _psutil_state(p.status()))
    except Exception:  # noqa: BLE001 - gone, no permission, or no psutil
        return None


def start_ticks(pid: int) -> int | None:
    info = proc_info(pid)
    return None if info is None else info.start


def proc_table() -> dict[int, ProcInfo] | None:
    """pid -> :class:`ProcInfo` for every process, or None when the platform gives no process table."""
    if _HAS_PROC:
        try:
            names = os.listdir("/proc")
        except OSError:
            return None
        table = {}
        for name in names:
            if name.isdigit():
                try:
                    with open(f"/proc/{name}/stat", "rb") as f:
                        table[int(name)] = _parse_stat(f.read())
                except (OSError, ValueError, IndexError):
                    continue  # exited meanwhile
        return table
    try:
        import psutil
    except ImportError:
        return None
    table = {}
    for p in psutil.process_iter(["ppid", "create_time", "status"]):
        info = p.info
        if info["ppid"] is not None and info["create_time"] is not None:
            table[p.pid] = ProcInfo(
                info["ppid"], _psutil_ticks(info["create_time"]), _psutil_state(info["status"] or "")
            )
    return table


def _psutil_ticks(create_time: float) -> int:
    return int(create_time * _TICKS)


def _psutil_state(status: str) -> str:
    return "Z" if status in ("zombie", "dead") else "R"


def boot_ticks_now() -> int:
    """Now, in the units of a process's start time (clock ticks since boot on Linux)."""
    if _HAS_PROC:
        return int(time.clock_gettime(time.CLOCK_BOOTTIME) * _TICKS)
    return _psutil_ticks(time.time())


def _children_map(table: dict[int, ProcInfo]) -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for pid, info in table.items():
        children.setdefault(info.ppid, []).append(pid)
    return children


class Children(set):
    """Our children at one moment, as a set of pids that also remembers each one's start time.

    A fork-hopper burns through pids (32768 of them here: a wrap in seconds), so a pid that was a preexisting
    child, once reaped, can come back as one of the hopper's: matching by pid alone would then spare it. A pid is
    preexisting only while its start time is the one recorded (:func:`preexisting_child`).
    """

    starts: dict[int, int]


def children_of_me() -> Children:
    me = os.getpid()
    table = proc_table() or {}
    kids = Children(pid for pid, info in table.items() if info.ppid == me)
    kids.starts = {pid: table[pid].start for pid in kids}
    return kids


def preexisting_child(pid: int, start: int, preexisting: set[int]) -> bool:
    """Whether ``pid`` (started at ``start``) is one of the ``preexisting`` children, not a newcomer with a
    recycled pid (a plain set: by pid alone)."""
    if pid not in preexisting:
        return False
    starts = getattr(preexisting, "starts", None)
    return starts is None or starts.get(pid) == start


def _direct_children(pid: int) -> list[int] | None:
    """``pid``'s children from ``/proc/<pid>/task/*/children`` (a few small reads, no full scan), or None."""
    if not _HAS_PROC:
        return None
    kids: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                kids.extend(int(k) for k in f.read().split())
    except FileNotFoundError:
        return None if pid == os.getpid() else []  # our own: the kernel lacks the file; another: it exited
    except (OSError, ValueError):
        return None
    return kids


def new_children(since: int, exclude: set[int]) -> list[int]:
    """Our live children that started at or after ``since``, except ``exclude`` (orphans re-parented to us)."""
    kids = _direct_children(os.getpid())
    if kids is None:
        me = os.getpid()
        kids = [pid for pid, info in (proc_table() or {}).items() if info.ppid == me]
    out = []
    for pid in kids:
        if pid not in exclude:
            info = proc_info(pid)
            if info is not None and info.start >= since and info.state not in "ZX":
                out.append(pid)
    return out


def descendants(roots: Iterable[int]) -> list[int]:
    """``roots`` and everything below them that is alive now (a snapshot; used to measure memory)."""
    roots = list(roots)
    fast = _direct_children(os.getpid()) is not None
    table = None if fast else proc_table()
    children = _children_map(table) if table is not None else {}
    seen: set[int] = set()
    stack = list(roots)
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        kids = _direct_children(pid) if fast else children.get(pid, [])
        stack.extend(kids or ())
    return [pid for pid in seen if table is None or pid in table]


# ---------------------------------------------------------------------------------------------------------
# Killing
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


def die_with_parent() -> None:
    """For ``preexec_fn``: the kernel kills this child (SIGKILL) when the thread that started it dies (Linux;
    elsewhere nothing). A grader killed outright (a lost batch worker, ``kill -9``) cannot sweep its tree, so
    what it started must not wait for it."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass


#: Clean sweeps in a row (10 ms apart) before a tree counts as gone. One clean /proc snapshot is not enough on a
#: loaded machine: a fork-hopper's next generation can be born between reading its parent and reading its pid.
_QUIET_SWEEPS = 3


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _chase_children(since: int, preexisting: set[int], spare: int, deadline: float) -> None:
    """SIGKILL our own children that started at or after ``since`` until none is alive.

    A fork-hopper (fork, parent exits, child forks again ...) leaves its next generation re-parented to us
    every few hundred microseconds; a whole-table scan is too slow to catch it, this loop (reading only our
    children lists) is not. Killed children are reaped, except ``spare`` (its Popen reaps it).
    """
    me = os.getpid()
    while time.monotonic() < deadline:
        kids = _direct_children(me)
        if kids is None:
            return
        live = []
        for pid in kids:
            if pid == spare:
                continue
            info = proc_info(pid)
            if info is None or info.start < since or preexisting_child(pid, info.start, preexisting):
                continue
            if info.state in "ZX":
                if pid != spare:
                    _reap(pid)
            else:
                live.append(pid)
        if not live:
            return
        for pid in live:
            _kill(pid)


def _kill_subtrees(
    table: dict[int, ProcInfo], children: dict[int, list[int]], roots: list[int], spare: int = -1
) -> list[int]:
    """SIGKILL every live process in the subtrees of ``roots`` and reap those re-parented to us (all but
    ``spare``). Returns the pids that were still alive (empty: the sweep is done)."""
    me = os.getpid()
    targets, stack = set(), list(roots)
    while stack:
        pid = stack.pop()
        if pid not in targets and pid in table:
            targets.add(pid)
            stack.extend(children.get(pid, ()))
    live = [pid for pid in targets if table[pid].state not in "ZX"]
    for pid in live:
        _kill(pid)
    for pid in targets:
        if pid != spare and table[pid].ppid == me:
            _reap(pid)
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
        os.killpg(proc.pid, signal.SIGKILL)  # its own session: the cheap first sweep
    except OSError:
        pass
    deadline = time.monotonic() + timeout_s
    clean, quiet = False, 0
    while True:
        if started_ticks is not None:
            _chase_children(started_ticks, preexisting, proc.pid, deadline)
        table = proc_table()
        if table is None:
            proc.kill()
            clean = True
            break
        children = _children_map(table)
        # once reaped, proc's pid may belong to someone else: its orphans are found as re-parented children
        roots = [proc.pid] if proc.returncode is None and proc.pid in table else []
        if started_ticks is not None:
            roots += [
                pid
                for pid in children.get(me, ())
                if pid != proc.pid
                and table[pid].start >= started_ticks
                and not preexisting_child(pid, table[pid].start, preexisting)
            ]
        if not _kill_subtrees(table, children, roots, spare=proc.pid):
            quiet += 1
            if quiet >= _QUIET_SWEEPS:
                clean = True
                break
        else:
            quiet = 0
        if time.monotonic() > deadline:
            break
        time.sleep(0.002 if quiet == 0 else 0.01)
    try:
        proc.wait(timeout=max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        clean = False
    return clean


def kill_descendants(since_ticks: int, preexisting: set[int], timeout_s: float = 10.0) -> bool:
    """SIGKILL and reap every descendant of this process whose top ancestor below us started at or after
    ``since_ticks`` and is not in ``preexisting`` (our children from before, never touched).

    For a subreaper that killed processes it started (batch grading on a timeout): whatever they double-forked
    was re-parented to us and is swept here. Returns True when none is left alive.
    """
    me = os.getpid()
    deadline = time.monotonic() + timeout_s
    quiet = 0
    while True:
        _chase_children(since_ticks, preexisting, -1, deadline)
        table = proc_table()
        if table is None:
            return False
        children = _children_map(table)
        roots = [
            pid
            for pid in children.get(me, ())
            if table[pid].start >= since_ticks and not preexisting_child(pid, table[pid].start, preexisting)
        ]
        if not _kill_subtrees(table, children, roots):
            quiet += 1
            if quiet >= _QUIET_SWEEPS:
                return True
        else:
            quiet = 0
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002 if quiet == 0 else 0.01)


def kill_process_group(proc: subprocess.Popen) -> None:
    """SIGKILL ``proc``'s process group (it was started with ``start_new_session``) and ``proc`` itself."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass
    proc.kill()


# ---------------------------------------------------------------------------------------------------------
# Memory
# ---------------------------------------------------------------------------------------------------------


def _memory_of(pid: int) -> tuple[int, int]:
    """(private bytes: anonymous + shared memory, file-backed bytes) resident for one process."""
    if _HAS_PROC:
        fields = {}
        try:
            with open(f"/proc/{pid}/status", "rb") as f:
                for line in f:
                    if line.startswith(b"Rss"):
                        key, _, value = line.partition(b":")
                        fields[key] = int(value.split()[0]) * 1024
        except (OSError, ValueError, IndexError):
            return 0, 0
        return fields.get(b"RssAnon", 0) + fields.get(b"RssShmem", 0), fields.get(b"RssFile", 0)
    try:
        import psutil

        return psutil.Process(pid).memory_info().rss, 0
    except Exception:  # noqa: BLE001 - gone, or no psutil
        return 0, 0


def tree_memory(pids: Iterable[int]) -> int:
    """Resident memory of a group of processes, in bytes.

    Private pages (anonymous and shared memory) are summed; file-backed pages (the mapped shared libraries:
    about 220 MB for the CUDA build of torch) count once, for the process that maps the most, since the
    processes of one sandbox share them. Pages a fork shares copy-on-write count for each process: a worker
    that forks is measured conservatively.
    """
    private, file_max = 0, 0
    for pid in pids:
        anon, file_backed = _memory_of(pid)
        private += anon
        file_max = max(file_max, file_backed)
    return private + file_max


class MemoryWatch:
    """Polls the resident memory of a process tree; SIGKILLs the whole tree when it exceeds ``limit_bytes``.

    The alternative to an address-space limit (``RLIMIT_AS``) that does not reject code which maps much more
    than it uses (the CUDA build of torch maps about 3 GB at import and uses about 500 MB). ``roots`` returns
    the processes to measure, with their descendants (it is called on every poll: orphans re-parented to us
    are found that way). Memory held outside any mapping (a memfd written but not mapped, a tmpfs file, a
    detached SysV segment) is not seen: the sandbox's cgroup counts that where there is one
    (:mod:`grader.sandbox.cgroup`); without one, the file-size, open-file and tmpfs limits bound it and SysV
    shared memory is refused. :attr:`exceeded` is the measurement that triggered the kill, or None.
    """

    def __init__(self, roots: Callable[[], list[int]], limit_bytes: int, interval_s: float = 0.05) -> None:
        self.limit_bytes = limit_bytes
        self.exceeded: int | None = None
        self.peak = 0
        self._roots = roots
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sandbox-memory-watch", daemon=True)

    def start(self) -> MemoryWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                pids = descendants(self._roots())
                used = tree_memory(pids)
            except Exception:  # noqa: BLE001 - a process table read racing with exits: try again
                used, pids = 0, []
            self.peak = max(self.peak, used)
            if used > self.limit_bytes:
                self.exceeded = used
                for pid in pids:
                    _kill(pid)
                return
            self._stop.wait(self._interval)
