"""A cgroup per sandbox: the kernel's own limits on memory, tasks and CPU, and a kill nothing escapes.

Why: the resident-memory watch (:class:`grader.sandbox.proctree.MemoryWatch`) adds up what processes map, so
memory that no process maps (a memfd written and not mapped, a detached SysV segment, files on the sandbox's
tmpfs) escapes it; the tree sweep chases fork-hoppers through ``/proc`` and can lose a race on a loaded
machine; nothing bounded a grade's share of the CPUs. A memory cgroup charges every page the sandbox's
processes touch, shared memory and tmpfs included; the pids controller counts tasks (also for root, where
``RLIMIT_NPROC`` does not apply); a CPU quota keeps a submission to its share; and killing by cgroup
(``cgroup.kill`` on v2, freeze-kill-thaw on v1) reaches every process in it, however it forked.

Which hierarchy: cgroup v2 where this process's own cgroup has the memory and pids controllers enabled for
its children (a delegated subtree: a systemd user slice, a container with its own cgroup namespace), else
cgroup v1 where the memory, pids and freezer hierarchies are mounted and this process's groups in them are
writable (root on a v1 or hybrid host). The sandbox's group is created *below* this process's own group in
each hierarchy, so whatever limits the grader itself is under still hold. Where neither works (an ordinary
user without delegation), :func:`cgroup_host` says why and the sandbox keeps its watch and sweep.

A small module of ours over the kernel files rather than a library: the Python cgroup libraries on PyPI
checked (cgroupspy 0.2.3, the most used one) handle v1 hierarchies only, and what is needed here is a dozen
file writes. Linux only; stdlib only.
"""

from __future__ import annotations

import functools
import os
import secrets
import signal
import time
from dataclasses import dataclass
from pathlib import Path

#: v1 hierarchies used: required ones first. cpu (the quota) and cpuacct (CPU time used) are optional.
_V1_REQUIRED = ("memory", "pids", "freezer")
_V1_OPTIONAL = ("cpu", "cpuacct")
_V2_REQUIRED = ("memory", "pids")
#: Prefix of the groups this module creates (stale ones of a dead grader are removed on the next probe).
PREFIX = "grader-sandbox-"
CFS_PERIOD_US = 100_000


@dataclass(frozen=True)
class CgroupLimits:
    memory_bytes: int
    max_tasks: int | None
    cpus: float | None  # CPU quota in CPUs (None: no quota)


@dataclass(frozen=True)
class CgroupHost:
    """Where this process may create sandbox groups: version 1 or 2 and the parent directory of each
    controller (v2: one directory, under the key ``""``)."""

    version: int
    parents: dict[str, str]

    def describe(self) -> str:
        return f"cgroup v{self.version}"


def _mountinfo() -> list[tuple[str, str, set[str]]]:
    """(mount point, fs type, super options) of every cgroup mount of this mount namespace."""
    out = []
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                left, _, right = line.partition(" - ")
                fields, rfields = left.split(), right.split()
                if len(fields) >= 5 and len(rfields) >= 3 and rfields[0] in ("cgroup", "cgroup2"):
                    out.append((fields[4], rfields[0], set(rfields[2].split(","))))
    except OSError:
        pass
    return out


def _own_groups() -> dict[str, str]:
    """controller -> this process's group path (v1); ``""`` -> its v2 path."""
    groups: dict[str, str] = {}
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                _hid, controllers, path = line.rstrip("\n").split(":", 2)
                for c in controllers.split(",") if controllers else [""]:
                    groups[c] = path
    except (OSError, ValueError):
        pass
    return groups


def _words(path: str) -> list[str]:
    try:
        return Path(path).read_text().split()
    except OSError:
        return []


def _v2_parent(mount: str | None = None, own: str | None = None) -> tuple[str | None, str]:
    """The directory below which sandbox groups go on cgroup v2, or None and why not.

    Either this process's group already enables memory and pids for its children, or it was delegated to this
    process alone (``systemd-run --user --scope -p Delegate=yes python -m grader ...``: the controllers are
    available but not enabled, and the grader is its only process). In the second case the grader moves itself
    into a leaf group of its own and enables the controllers (cgroup v2 allows no process in a group that
    enables controllers for its children); it never moves another process.
    """
    if own is None:
        own = _own_groups().get("")
    if mount is None:
        mount = next((m for m, fstype, _o in _mountinfo() if fstype == "cgroup2"), None)
    if own is None or mount is None:
        return None, "no cgroup v2 hierarchy"
    directory = os.path.join(mount, own.lstrip("/"))
    if not os.access(directory, os.W_OK):
        return None, f"cgroup v2: {directory} is not writable (no delegation)"
    enabled = _words(f"{directory}/cgroup.subtree_control")
    if all(c in enabled for c in _V2_REQUIRED):
        return directory, ""
    available = _words(f"{directory}/cgroup.controllers")
    missing = [c for c in _V2_REQUIRED if c not in available]
    if missing:
        return None, f"cgroup v2: {', '.join(missing)} not available in {directory} (no delegation)"
    others = [p for p in _words(f"{directory}/cgroup.procs") if p != str(os.getpid())]
    if others:
        return None, (
            f"cgroup v2: {directory} holds other processes too, so its controllers cannot be enabled for "
            "sandboxes (start the grader in a delegated group of its own: systemd-run --user --scope -p "
            "Delegate=yes ...)"
        )
    leaf = os.path.join(directory, f"grader-main-{os.getpid()}")
    try:
        os.makedirs(leaf, exist_ok=True)
        _write(f"{leaf}/cgroup.procs", str(os.getpid()))
        wanted = [c for c in (*_V2_REQUIRED, "cpu") if c in available]
        _write(f"{directory}/cgroup.subtree_control", " ".join(f"+{c}" for c in wanted))
    except OSError as exc:
        return (
            None,
            f"cgroup v2: cannot enable {', '.join(_V2_REQUIRED)} in {directory} ({exc.strerror or exc})",
        )
    return directory, ""


def _v1_parents() -> tuple[dict[str, str] | None, str]:
    own = _own_groups()
    parents: dict[str, str] = {}
    for mount, fstype, options in _mountinfo():
        if fstype != "cgroup":
            continue
        for controller in (*_V1_REQUIRED, *_V1_OPTIONAL):
            if controller in options and controller in own and controller not in parents:
                parents[controller] = os.path.join(mount, own[controller].lstrip("/"))
    missing = [c for c in _V1_REQUIRED if c not in parents]
    if missing:
        return None, f"cgroup v1: no {', '.join(missing)} hierarchy mounted"
    unwritable = [p for c, p in parents.items() if c in _V1_REQUIRED and not os.access(p, os.W_OK)]
    if unwritable:
        return (
            None,
            f"cgroup v1: {', '.join(unwritable)} not writable (run as root, or use cgroup v2 delegation)",
        )
    return {c: p for c, p in parents.items() if os.access(p, os.W_OK)}, ""


def _remove_stale(host: CgroupHost) -> None:
    """Groups left by a grader (or a training lane) that was killed outright, so that it could not close its
    sandbox (its pid is in the name, and gone): whatever still runs in one is killed, then it is removed."""
    stale: set[str] = set()
    for directory in set(host.parents.values()):
        try:
            entries = os.listdir(directory)
        except OSError:
            continue
        for name in entries:
            pid = name[len(PREFIX) :].split("-")[0] if name.startswith(PREFIX) else ""
            if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
                stale.add(name)
    for name in stale:
        dirs = {
            c: os.path.join(p, name) for c, p in host.parents.items() if os.path.isdir(os.path.join(p, name))
        }
        group = Cgroup(host, dirs, CgroupLimits(0, None, None))
        if host.version == 2 or "freezer" in dirs:
            group.kill(timeout_s=2.0)
        group.remove()


@functools.lru_cache(maxsize=1)
def cgroup_host() -> CgroupHost | str:
    """The cgroup setup sandboxes get here, or why there is none (cached for the life of the process).

    Probed by creating (and removing) a group with a memory limit, as the sandbox will.
    """
    if not os.path.isdir("/proc/self") or not os.path.exists("/proc/self/cgroup"):
        return "no cgroups (needs Linux)"
    directory, why_v2 = _v2_parent()
    host: CgroupHost | None = None
    if directory is not None:
        host = CgroupHost(2, {"": directory})
    else:
        parents, why_v1 = _v1_parents()
        if parents is None:
            return f"{why_v2}; {why_v1}"
        host = CgroupHost(1, parents)
    _remove_stale(host)
    try:
        probe = Cgroup.create(host, CgroupLimits(64 << 20, 8, 1.0))
    except OSError as exc:
        return f"{host.describe()}: cannot create a group ({exc.strerror or exc}: {exc.filename or ''})"
    probe.remove()
    return host


def _write(path: str, value: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


class Cgroup:
    """One sandbox's group (one directory per hierarchy on v1). Create with :meth:`create`, put the worker in
    with :meth:`enter` (its ``preexec_fn``), :meth:`kill` everything in it, then :meth:`remove` it."""

    def __init__(self, host: CgroupHost, dirs: dict[str, str], limits: CgroupLimits) -> None:
        self.host, self.dirs, self.limits = host, dirs, limits
        # the byte paths preexec_fn writes to (after fork: no allocation-heavy code there)
        self._procs = [os.path.join(d, "cgroup.procs").encode() for d in dict.fromkeys(dirs.values())]

    @classmethod
    def create(cls, host: CgroupHost, limits: CgroupLimits) -> Cgroup:
        name = f"{PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
        dirs = {c: os.path.join(p, name) for c, p in host.parents.items()}
        group = cls(host, dirs, limits)
        try:
            for directory in dict.fromkeys(dirs.values()):
                os.mkdir(directory)
            group._limit()
        except OSError:
            group.remove()
            raise
        return group

    def _limit(self) -> None:
        lim = self.limits
        if self.host.version == 2:
            d = self.dirs[""]
            _write(f"{d}/memory.max", str(lim.memory_bytes))
            if os.path.exists(f"{d}/memory.swap.max"):
                _write(f"{d}/memory.swap.max", "0")
            if lim.max_tasks is not None:
                _write(f"{d}/pids.max", str(lim.max_tasks))
            if lim.cpus is not None and os.path.exists(f"{d}/cpu.max"):
                _write(f"{d}/cpu.max", f"{max(1000, int(lim.cpus * CFS_PERIOD_US))} {CFS_PERIOD_US}")
            return
        mem = self.dirs["memory"]
        _write(f"{mem}/memory.limit_in_bytes", str(lim.memory_bytes))
        if os.path.exists(f"{mem}/memory.memsw.limit_in_bytes"):  # no swapping out of the limit either
            try:
                _write(f"{mem}/memory.memsw.limit_in_bytes", str(lim.memory_bytes))
            except OSError:
                pass
        if lim.max_tasks is not None:
            _write(f"{self.dirs['pids']}/pids.max", str(lim.max_tasks))
        if lim.cpus is not None and "cpu" in self.dirs:
            cpu = self.dirs["cpu"]
            _write(f"{cpu}/cpu.cfs_period_us", str(CFS_PERIOD_US))
            _write(f"{cpu}/cpu.cfs_quota_us", str(max(1000, int(lim.cpus * CFS_PERIOD_US))))

    @property
    def cpu_limited(self) -> bool:
        if self.limits.cpus is None:
            return False
        if self.host.version == 2:
            return os.path.exists(f"{self.dirs['']}/cpu.max")
        return "cpu" in self.dirs

    def enter(self) -> None:
        """Move the calling process into the group: for ``preexec_fn``, so that everything the worker starts is
        born inside it. Raises OSError when it cannot (the child then fails to start: never outside)."""
        pid = str(os.getpid()).encode()
        for path in self._procs:
            fd = os.open(path, os.O_WRONLY)
            try:
                os.write(fd, pid)
            finally:
                os.close(fd)

    def pids(self) -> list[int]:
        """Every process in the group now (v1: the freezer hierarchy's view, which the kill uses)."""
        directory = self.dirs[""] if self.host.version == 2 else self.dirs["freezer"]
        try:
            return [int(x) for x in _read(f"{directory}/cgroup.procs").split()]
        except (OSError, ValueError):
            return []

    def oom_kills(self) -> int:
        """How many processes the kernel's OOM killer has killed in this group (its memory limit reached)."""
        try:
            if self.host.version == 2:
                text = _read(f"{self.dirs['']}/memory.events")
            else:
                text = _read(f"{self.dirs['memory']}/memory.oom_control")
        except OSError:
            return 0
        counts = dict(line.split() for line in text.splitlines() if len(line.split()) == 2)
        try:
            return int(counts.get("oom_kill", "0"))
        except ValueError:
            return 0

    def memory_peak(self) -> int:
        name = "memory.peak" if self.host.version == 2 else "memory.max_usage_in_bytes"
        try:
            return int(_read(f"{self.dirs['' if self.host.version == 2 else 'memory']}/{name}"))
        except (OSError, ValueError):
            return 0

    def cpu_seconds(self) -> float | None:
        """CPU time the group's processes have used (None: not measured here)."""
        try:
            if self.host.version == 2:
                for line in _read(f"{self.dirs['']}/cpu.stat").splitlines():
                    if line.startswith("usage_usec "):
                        return int(line.split()[1]) / 1e6
                return None
            if "cpuacct" in self.dirs:
                return int(_read(f"{self.dirs['cpuacct']}/cpuacct.usage")) / 1e9
        except (OSError, ValueError):
            pass
        return None

    def kill(self, timeout_s: float = 5.0) -> bool:
        """SIGKILL every process in the group, including those born while it runs. True when it is empty (zombies
        not yet reaped by their parent may still be listed by some kernels: reap, then :meth:`wait_empty`)."""
        if self.host.version == 2 and os.path.exists(f"{self.dirs['']}/cgroup.kill"):
            try:
                _write(f"{self.dirs['']}/cgroup.kill", "1")
            except OSError:
                pass
            return self.wait_empty(timeout_s)
        if self.host.version == 2:  # kernels before 5.14: no cgroup.kill, the v2 freezer instead
            state, frozen, thawed = f"{self.dirs['']}/cgroup.freeze", "1", "0"
            done, done_value = f"{self.dirs['']}/cgroup.events", "frozen 1"
        else:
            state, frozen, thawed = f"{self.dirs['freezer']}/freezer.state", "FROZEN", "THAWED"
            done, done_value = state, "FROZEN"
        deadline = time.monotonic() + timeout_s
        while self.pids() and time.monotonic() < deadline:
            # Frozen tasks cannot fork: the list read next is complete. SIGKILL takes effect when thawed.
            try:
                _write(state, frozen)
                settle = time.monotonic() + 1.0
                while time.monotonic() < settle:
                    if done_value in _read(done):
                        break
                    time.sleep(0.005)
            except OSError:
                pass
            for pid in self.pids():
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            try:
                _write(state, thawed)
            except OSError:
                pass
            if self.wait_empty(0.2):
                return True
        return not self.pids()

    def wait_empty(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while self.pids():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def remove(self) -> bool:
        """Remove the group's directories (after :meth:`kill`); True when all are gone."""
        ok = True
        for directory in dict.fromkeys(self.dirs.values()):
            for attempt in range(50):
                try:
                    os.rmdir(directory)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    if attempt == 49:
                        ok = False
                    time.sleep(0.01)
        return ok
