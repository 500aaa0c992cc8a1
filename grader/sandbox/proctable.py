"""Reading the process table: a process's parent, start time and state (``/proc`` on Linux, psutil elsewhere),
the children and descendants of a process, and the orphans re-parented to this one. The part of
:mod:`grader.sandbox.proctree` that finds processes (see its docstring for how a process is attributed to a
sandbox)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from typing import NamedTuple

_HAS_PROC = os.path.isdir("/proc/self")
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class ProcInfo(NamedTuple):
    ppid: int
    start: int  # boot_ticks_now() units
    state: str  # one letter, as in /proc/<pid>/stat: Z and X are dead


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
