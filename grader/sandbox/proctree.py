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
Finding processes is in :mod:`grader.sandbox.proctable` (re-exported here); this module kills trees and watches
their memory.
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

from grader.sandbox.proctable import (
    _HAS_PROC,
    Children,
    ProcInfo,
    _children_map,
    _direct_children,
    boot_ticks_now,
    children_of_me,
    descendants,
    new_children,
    preexisting_child,
    proc_info,
    proc_table,
    start_ticks,
)

__all__ = [
    "Children",
    "MemoryWatch",
    "ProcInfo",
    "become_subreaper",
    "boot_ticks_now",
    "children_of_me",
    "descendants",
    "die_with_parent",
    "kill_descendants",
    "kill_process_group",
    "kill_tree",
    "new_children",
    "preexisting_child",
    "proc_info",
    "proc_table",
    "start_ticks",
    "tree_memory",
]


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
    """SIGSTOP, then SIGKILL, every live process below our own children that started at or after ``since``.

    A fork-hopper (fork, parent exits, child forks again ...) moves on every few hundred microseconds, each
    generation re-parented to us when its parent exits: killing what one look finds misses the generation born
    meanwhile (measured: a hopper in the sandbox without a cgroup outlived its grade on a busy machine, for
    hours), and a whole-table scan is too slow to see it at all. A stopped process can neither fork nor exit, so
    the walk stops each process it reaches and descends into its children (``/proc/<pid>/task/*/children``, a
    few small reads), again until a walk finds nothing left running: then the tree holds still and is killed at
    once. Killed children are reaped, except ``spare`` (its Popen reaps it).
    """
    me = os.getpid()
    reached: dict[
        int, int
    ] = {}  # pid -> its start tick: a pid that exited and came back as another is spared
    still = 0  # walks in a row that found nothing running: two, as one can cross a generation's re-parenting
    while still < 2 and time.monotonic() < deadline:
        kids = _direct_children(me)
        if kids is None:
            return
        stack = []
        for pid in kids:
            info = proc_info(pid)
            if info is None or info.start < since or preexisting_child(pid, info.start, preexisting):
                continue
            if info.state in "ZX":
                if pid != spare:
                    _reap(pid)
            else:
                stack.append(pid)
        running = False
        while stack:
            pid = stack.pop()
            info = proc_info(pid)
            if info is None or info.state in "ZX":
                continue
            reached[pid] = info.start
            if info.state not in "tT":  # not stopped yet (or a SIGSTOP still on its way): walk again
                running = True
                try:
                    os.kill(pid, signal.SIGSTOP)
                except OSError:
                    pass
            stack.extend(_direct_children(pid) or ())
        still = 0 if running else still + 1
    for pid, start in reached.items():
        info = proc_info(pid)
        if info is not None and info.start == start:
            _kill(pid)  # stopped or not: SIGKILL ends a stopped process too


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
    shared memory is refused. ``oom_killed`` (where there is a cgroup) says whether its memory limit killed a
    process of the tree: the whole tree is then killed too. :attr:`exceeded` is the measurement that triggered
    the kill, or None.
    """

    def __init__(
        self,
        roots: Callable[[], list[int]],
        limit_bytes: int,
        interval_s: float = 0.05,
        oom_killed: Callable[[], bool] | None = None,
    ) -> None:
        self.limit_bytes = limit_bytes
        self.exceeded: int | None = None
        self.peak = 0
        self._roots = roots
        self._oom_killed = oom_killed
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
            # The cgroup's own limit may strike first: the kernel kills the largest process of the group (a
            # forked child, say) and the rest would sit out the call's timeout. Its kill is the limit exceeded.
            oom = self._oom_killed is not None and self._oom_killed()
            if used > self.limit_bytes or oom:
                self.exceeded = max(used, self.limit_bytes + 1) if oom else used
                for pid in pids:
                    _kill(pid)
                return
            self._stop.wait(self._interval)
