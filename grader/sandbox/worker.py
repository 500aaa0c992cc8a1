"""The code that runs INSIDE the sandboxed worker process, next to the submission.

Started by :mod:`grader.sandbox.submission` as ``python -s -B grader/sandbox/worker.py CONFIG_JSON`` with a scrubbed environment,
its cwd in a fresh temporary directory and two inherited pipe descriptors. It

1. confines itself before any submission code runs: in the namespaces mode as root, drops to the sandbox uid
   first; then resource limits (address space, CPU time, written file size, tasks, no core dumps),
   ``PR_SET_PDEATHSIG`` (without namespaces), and on Linux a Landlock ruleset (read-only access to the Python
   installation and system directories, read-write to its own directory, nothing else: the repository with
   ``reference/`` and the grader's results are unreadable; no TCP; no signals to processes outside the
   sandbox); without namespaces and without Landlock's signal scoping, a seccomp filter that lets it signal
   only its own process (the grader must not be stopped or killed by a submission running as the same user);
2. blocks ``import reference`` / ``import grader`` and imports the submission from its file path under a module
   name that clashes with nothing;
3. answers requests, one JSON object per line on the request pipe, with one JSON object per line on the reply
   pipe: ``{"id", "function", "args", "kwargs"}`` -> ``{"id", "status", "value" | "message", "mutated"}``
   (``mutated``: whether the call changed its arguments in place, compared with a snapshot taken before it).

It is stdlib-only and imports nothing from the grader package. Everything it sends is untrusted by the grader
(the submission runs in this very process and could write to the reply pipe itself); this file only makes the
honest path robust: return values are converted to plain floats here, without calling any method the
submission could have overridden, and encoded without NaN literals (``"nan"``, ``"inf"``, ``"-inf"``).

Why one file of 700 lines: the namespaces mode copies only this file into the sandbox and runs it with
``PYTHONSAFEPATH`` (no sibling module can be imported), and everything it uses must be bound before the submission
is imported, so the confinement, the value conversion and the request loop cannot be split into modules.
"""

from __future__ import annotations

import ctypes
import errno
import importlib.abc
import importlib.util
import json
import math
import os
import resource
import signal
import sys
import traceback
import types

SUBMISSION_MODULE = "_graded_submission_"
#: Return values longer than this are rejected (the contract returns one number per completion; a reply line
#: must fit the grader's cap, 1 MiB by default, at up to 25 bytes a number).
MAX_VALUES = 20_000
MAX_MESSAGE = 2_000
BLOCKED_PACKAGES = ("reference", "grader")
_FILE_LIMIT = [0]  # RLIMIT_FSIZE as configured, for messages

# Bound before the submission is imported, so that it cannot swap them out from under the protocol.
_dumps = json.dumps
# A decoder of our own: its scanner is built now, so rebinding json's module globals later changes nothing.
_decode = json.JSONDecoder().decode
_utf8 = bytes.decode


def _loads(data):
    return _decode(_utf8(data, "utf-8") if _type(data) is bytes else data)


_write = os.write
_isinstance = isinstance
_type = type
_float_value = float.__float__
_list_len = list.__len__
_list_item = list.__getitem__
_tuple_len = tuple.__len__
_tuple_item = tuple.__getitem__
_type_name_get = type.__dict__["__name__"].__get__


# ---------------------------------------------------------------------------------------------------------
# Confinement
# ---------------------------------------------------------------------------------------------------------


def _apply_limits(limits: dict) -> None:
    def cap(which: int, value: int | None) -> None:
        if value is None:
            return
        _soft, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(which, (value, value if hard == resource.RLIM_INFINITY else hard))

    cap(resource.RLIMIT_CORE, 0)
    cap(resource.RLIMIT_AS, limits.get("address_space_bytes"))
    cap(resource.RLIMIT_CPU, limits.get("cpu_seconds"))
    cap(resource.RLIMIT_FSIZE, limits.get("file_bytes"))
    # A few hundred descriptors, soft and hard (else the submission raises the soft one again): without a memory
    # cgroup, each one could hold a memfd of file_bytes that no process maps.
    files = limits.get("open_files")
    if files is not None:
        _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        files = files if hard == resource.RLIM_INFINITY else min(files, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (files, files))
    _FILE_LIMIT[0] = limits.get("file_bytes") or 0
    if limits.get("max_processes") is not None and os.geteuid() != 0:  # root ignores RLIMIT_NPROC
        cap(resource.RLIMIT_NPROC, limits["max_processes"])


_PR_SET_PDEATHSIG = 1
_PR_SET_NO_NEW_PRIVS = 38
_SYS_LANDLOCK = {"create_ruleset": 444, "add_rule": 445, "restrict_self": 446}  # same on every architecture


def _libc():
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def _drop_to(uid: int, gid: int) -> None:
    """Root in the namespaces mode: become the sandbox uid (the kernel clears every capability with it)."""
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if os.getresuid() != (uid, uid, uid) or os.getresgid() != (gid, gid, gid):
        raise SystemExit("the worker could not drop to the sandbox uid")
    try:
        with open("/proc/self/status") as f:
            caps = [line.split()[1] for line in f if line.startswith(("CapEff:", "CapPrm:", "CapAmb:"))]
    except OSError:
        caps = []
    if any(int(c, 16) for c in caps):
        raise SystemExit("the worker still holds capabilities after dropping its uid")


def _die_with_parent(libc, parent_pid: int | None) -> None:
    if parent_pid is None or libc is None or not sys.platform.startswith("linux"):
        return
    libc.prctl(_PR_SET_PDEATHSIG, 9, 0, 0, 0)
    if os.getppid() != parent_pid:  # the grader died before prctl took effect
        os._exit(70)


def _landlock(
    libc, read_paths: list[str], write_paths: list[str], scoping: bool = True
) -> tuple[str, int, bool]:
    """Confine this process and its future descendants.

    Returns a description of what was applied, the Landlock ABI in force (0: none) and whether signals are
    scoped (only processes in the same Landlock domain can be signalled).
    """
    if libc is None or not sys.platform.startswith("linux"):
        return "no Landlock (needs Linux)", 0, False
    syscall = libc.syscall
    syscall.restype = ctypes.c_long
    abi = syscall(
        ctypes.c_long(_SYS_LANDLOCK["create_ruleset"]), None, ctypes.c_size_t(0), ctypes.c_uint32(1)
    )
    if abi < 1:
        return f"no Landlock (unavailable: errno {ctypes.get_errno()})", 0, False
    read_rights = (1 << 0) | (1 << 2) | (1 << 3)  # EXECUTE, READ_FILE, READ_DIR
    all_fs = (1 << 13) - 1
    if abi >= 2:
        all_fs |= 1 << 13  # REFER
    if abi >= 3:
        all_fs |= 1 << 14  # TRUNCATE
    if abi >= 5:
        all_fs |= 1 << 15  # IOCTL_DEV
    file_rights = (1 << 0) | (1 << 1) | (1 << 2) | (all_fs & ((1 << 14) | (1 << 15)))
    net = (1 << 0) | (1 << 1) if abi >= 4 else 0  # BIND_TCP, CONNECT_TCP: no network at all
    # abstract unix sockets, signals: only within the sandbox
    scoped = (1 << 0) | (1 << 1) if abi >= 6 and scoping else 0

    class RulesetAttr(ctypes.Structure):
        _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]

    class PathBeneath(ctypes.Structure):
        _pack_ = 1
        _fields_ = [("allowed", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]

    attr = RulesetAttr(all_fs, net, scoped)
    size = 24 if abi >= 6 else 16 if abi >= 4 else 8
    ruleset = syscall(
        ctypes.c_long(_SYS_LANDLOCK["create_ruleset"]),
        ctypes.byref(attr),
        ctypes.c_size_t(size),
        ctypes.c_uint32(0),
    )
    if ruleset < 0:
        return f"no Landlock (landlock_create_ruleset failed: errno {ctypes.get_errno()})", 0, False
    try:
        for rights, paths in ((read_rights, read_paths), (all_fs, write_paths)):
            for path in paths:
                try:
                    fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
                except OSError:
                    continue
                try:
                    allowed = rights if os.path.isdir(path) else rights & file_rights
                    rule = PathBeneath(allowed, fd)
                    syscall(
                        ctypes.c_long(_SYS_LANDLOCK["add_rule"]),
                        ctypes.c_int(ruleset),
                        ctypes.c_int(1),
                        ctypes.byref(rule),
                        ctypes.c_uint32(0),
                    )
                finally:
                    os.close(fd)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            return f"no Landlock (PR_SET_NO_NEW_PRIVS failed: errno {ctypes.get_errno()})", 0, False
        if (
            syscall(ctypes.c_long(_SYS_LANDLOCK["restrict_self"]), ctypes.c_int(ruleset), ctypes.c_uint32(0))
            != 0
        ):
            return f"no Landlock (landlock_restrict_self failed: errno {ctypes.get_errno()})", 0, False
    finally:
        os.close(ruleset)
    what = "files, TCP" if abi >= 4 else "files"
    if scoped:
        what += ", signals, abstract sockets"
    return f"landlock ABI {abi} ({what})", abi, bool(scoped)


# Syscall numbers the signal filter needs, per architecture (seccomp sees the raw numbers).
_SIGNAL_SYSCALLS = {
    "x86_64": {
        "arch": 0xC000003E,  # AUDIT_ARCH_X86_64
        "kill": 62,
        "tgkill": 234,
        "rt_sigqueueinfo": 129,
        "rt_tgsigqueueinfo": 297,
        "denied": (200, 424, 101, 310, 311),  # tkill, pidfd_send_signal, ptrace, process_vm_readv/writev
        "fcntl": 72,
        "ioctl": 16,
        "x32_bit": 0x40000000,  # x32 ABI syscall numbers: refused as a whole (no bypass through them)
    },
    "aarch64": {
        "arch": 0xC00000B7,  # AUDIT_ARCH_AARCH64
        "kill": 129,
        "tgkill": 131,
        "rt_sigqueueinfo": 138,
        "rt_tgsigqueueinfo": 240,
        "denied": (130, 424, 117, 270, 271),
        "fcntl": 25,
        "ioctl": 29,
        "x32_bit": None,
    },
}
_F_SETOWN, _F_SETSIG, _F_SETOWN_EX = 8, 10, 15  # fcntl: route SIGIO (or any signal) to another process
_FIOSETOWN, _SIOCSPGRP = 0x8901, 0x8902  # ioctl: the same


def _signal_filter(libc) -> str | None:
    """Install a seccomp filter: signals only to this process (by pid, or its process group), no ptrace.

    The guard for kernels without Landlock's signal scoping (ABI < 6) when there is no PID namespace either:
    the worker runs as the grader's user, so without it ``os.kill(os.getppid(), SIGSTOP)`` (or ``kill(-1, ...)``)
    would stop or kill the grader. Refused calls fail with EPERM. Children the worker forks inherit the filter
    with the worker's pid in it: they can signal the worker, not themselves by pid. Returns a description, or
    None where it cannot be installed (another architecture).
    """
    numbers = _SIGNAL_SYSCALLS.get(os.uname().machine.replace("arm64", "aarch64"))
    if libc is None or numbers is None:
        return None
    me = os.getpid()
    allow, deny = 0x7FFF0000, 0x00050000 | errno.EPERM  # SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO | EPERM
    ld, jeq, jge, ret = 0x20, 0x15, 0x35, 0x06  # BPF_LD|W|ABS, BPF_JMP|JEQ|K, BPF_JMP|JGE|K, BPF_RET|K
    nr, arch, arg0, arg1 = 0, 4, 16, 24  # offsets in struct seccomp_data (low 32 bits of the arguments)

    # (code, k, jump-if-true label, jump-if-false label); None: the next instruction
    prog: list = [(ld, arch), (jeq, numbers["arch"], None, "deny"), (ld, nr)]
    if numbers["x32_bit"]:
        prog.append((jge, numbers["x32_bit"], "deny", None))
    prog += [(jeq, n, "deny", None) for n in numbers["denied"]]
    prog += [
        (jeq, numbers["kill"], "kill", None),
        (jeq, numbers["tgkill"], "own", None),
        (jeq, numbers["rt_sigqueueinfo"], "own", None),
        (jeq, numbers["rt_tgsigqueueinfo"], "own", None),
        (jeq, numbers["fcntl"], "fcntl", None),
        (jeq, numbers["ioctl"], "ioctl", None),
        (ret, allow),
        "kill",  # kill(pid, sig): this process, its process group (0 or -pid)
        (ld, arg0),
        (jeq, 0, "allow", None),
        (jeq, (-me) & 0xFFFFFFFF, "allow", None),
        "own",  # the target process id is the first argument
        (ld, arg0),
        (jeq, me, "allow", "deny"),
        "fcntl",
        (ld, arg1),
        (jeq, _F_SETOWN, "deny", None),
        (jeq, _F_SETSIG, "deny", None),
        (jeq, _F_SETOWN_EX, "deny", "allow"),
        "ioctl",
        (ld, arg1),
        (jeq, _FIOSETOWN, "deny", None),
        (jeq, _SIOCSPGRP, "deny", "allow"),
        "allow",
        (ret, allow),
        "deny",
        (ret, deny),
    ]
    labels, index = {}, 0
    for item in prog:
        if isinstance(item, str):
            labels[item] = index
        else:
            index += 1
    code, index = [], 0
    for item in prog:
        if isinstance(item, str):
            continue
        op, k, *jumps = item
        offsets = [0 if j is None else labels[j] - index - 1 for j in (jumps or [None, None])]
        code.append((op, offsets[0], offsets[1], k))
        index += 1

    if not _install_filter(libc, code):
        return None
    return "seccomp (signals only to itself, no ptrace)"


#: SysV shared memory calls (shmget, shmat, shmctl) per architecture, as seccomp sees them.
_SHM_SYSCALLS = {"x86_64": (29, 30, 31), "aarch64": (194, 196, 195)}


def _install_filter(libc, prog: list) -> bool:
    """Install a classic BPF seccomp program given as (code, jt, jf, k) tuples; False where it cannot."""

    class SockFilter(ctypes.Structure):
        _fields_ = [
            ("code", ctypes.c_uint16),
            ("jt", ctypes.c_uint8),
            ("jf", ctypes.c_uint8),
            ("k", ctypes.c_uint32),
        ]

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(SockFilter))]

    filters = (SockFilter * len(prog))(*(SockFilter(*c) for c in prog))
    program = SockFprog(len(prog), filters)
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return False
    return libc.prctl(22, 2, ctypes.byref(program), 0, 0) == 0  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER


def _sysv_shm_filter(libc) -> str | None:
    """Refuse SysV shared memory (EPERM), for when no memory cgroup would count its segments or no IPC namespace
    would free them: a detached segment belongs to no process, so the resident-memory watch never sees it and it
    outlives the grade. (Python, numpy and torch do not use SysV shared memory.) None where it cannot be
    installed."""
    machine = os.uname().machine.replace("arm64", "aarch64")
    numbers = _SHM_SYSCALLS.get(machine)
    if libc is None or numbers is None:
        return None
    arch = _SIGNAL_SYSCALLS[machine]["arch"]
    x32 = _SIGNAL_SYSCALLS[machine]["x32_bit"]
    allow, deny = 0x7FFF0000, 0x00050000 | errno.EPERM
    ld, jeq, ret = 0x20, 0x15, 0x06
    denied = list(numbers) + ([n | x32 for n in numbers] if x32 else [])
    # [0] load arch, [1] other ABIs (i386 ipc() on x86_64 ...) denied, [2] load nr, one test per number, allow,
    # deny
    prog = [(ld, 0, 0, 4), (jeq, 1, 0, arch), (ret, 0, 0, deny), (ld, 0, 0, 0)]
    for i, n in enumerate(denied):
        prog.append((jeq, len(denied) - i, 0, n))  # jump to the deny at the end
    prog += [(ret, 0, 0, allow), (ret, 0, 0, deny)]
    if not _install_filter(libc, prog):
        return None
    return "no SysV shared memory (seccomp)"


class _Blocker(importlib.abc.MetaPathFinder):
    """Refuses the reference solution and the grader, whatever sys.path or installed finders would find."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname.partition(".")[0] in BLOCKED_PACKAGES:
            raise ModuleNotFoundError(
                f"No module named {fullname!r} (not available to graded code)", name=fullname
            )
        return None


# ---------------------------------------------------------------------------------------------------------
# Converting and encoding what the submission returns
# ---------------------------------------------------------------------------------------------------------


class Invalid(Exception):
    """The return value is not a 1-D sequence of real numbers."""


def _type_name(obj) -> str:
    try:
        name = _type_name_get(_type(obj))
        return name if _isinstance(name, str) and len(name) < 80 else "object"
    except BaseException:  # noqa: BLE001 - a metaclass can do anything
        return "object"


def _number(x, where: str) -> float:
    """A Python float from a number whose exact type we trust; never calls an overridable method."""
    t = _type(x)
    if t is float:
        return x
    if t is int:
        try:
            return float(x)
        except OverflowError:
            raise Invalid(f"{where} is an integer too large for a float") from None
    if t is bool:
        raise Invalid(f"{where} is a bool, not a number")
    if _isinstance(x, float):  # a float subclass (numpy.float64 is one): read the stored value
        return _float_value(x)
    if _isinstance(x, int) and not _isinstance(x, bool):
        try:
            return float(int.__index__(x))
        except OverflowError:
            raise Invalid(f"{where} is an integer too large for a float") from None
    np = sys.modules.get("numpy")
    if np is not None and _isinstance(x, np.generic) and t.__module__ == "numpy":
        if _isinstance(x, np.bool_) or not _isinstance(x, (np.floating, np.integer)):
            raise Invalid(f"{where} is a numpy {_type_name(x)}, not a real number")
        return float(np.float64(x))
    torch = sys.modules.get("torch")
    if torch is not None and t is torch.Tensor:
        return _tensor_values(torch, x, where, scalar=True)[0]
    raise Invalid(f"{where} is a {_type_name(x)}, not a number")


def _tensor_values(torch, x, where: str, scalar: bool = False) -> list[float]:
    dims = x.dim()
    if dims != (0 if scalar else 1):
        if scalar:
            raise Invalid(f"{where} is a {dims}-D tensor, not a number")
        raise Invalid(f"the result is a {dims}-D tensor; return a 1-D one (one number per completion)")
    if x.dtype == torch.bool or x.dtype.is_complex:
        raise Invalid(f"{where} has dtype {x.dtype}, not a real number type")
    if x.numel() > MAX_VALUES:
        raise Invalid(f"the result has {x.numel()} elements (at most {MAX_VALUES})")
    return [float(v) for v in x.detach().to(device="cpu", dtype=torch.float64).reshape(-1).tolist()]


def to_floats(result) -> list[float]:
    """The submission's return value as a list of Python floats, or :class:`Invalid` saying why not."""
    t = _type(result)
    if _isinstance(result, list):
        n = _list_len(result)
        get = _list_item
    elif _isinstance(result, tuple):
        n = _tuple_len(result)
        get = _tuple_item
    else:
        np = sys.modules.get("numpy")
        if np is not None and _isinstance(result, np.ndarray):
            arr = np.ndarray.view(result, np.ndarray)
            if arr.ndim != 1:
                raise Invalid(
                    f"the result is a {arr.ndim}-D numpy array; return a 1-D one (one number per completion)"
                )
            if arr.dtype.kind not in "fiu":
                raise Invalid(f"the result is a numpy array of dtype {arr.dtype}, not of real numbers")
            if arr.size > MAX_VALUES:
                raise Invalid(f"the result has {arr.size} elements (at most {MAX_VALUES})")
            return [float(v) for v in np.ndarray.tolist(np.ndarray.astype(arr, np.float64))]
        torch = sys.modules.get("torch")
        if torch is not None and t in (torch.Tensor, getattr(torch.nn, "Parameter", torch.Tensor)):
            return _tensor_values(torch, result, "the result")
        if t in (str, bytes, bytearray):
            raise Invalid(f"the result is a {t.__name__}, not a list of numbers")
        if _type_name(result) == "generator":
            raise Invalid("the result is a generator; return a list (e.g. wrap it in list(...))")
        raise Invalid(
            f"the result is a {_type_name(result)}; return a list of numbers (or a 1-D numpy array/tensor)"
        )
    if n > MAX_VALUES:
        raise Invalid(f"the result has {n} elements (at most {MAX_VALUES})")
    return [_number(get(result, i), f"element {i}") for i in range(n)]


def encode_float(x: float):
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


# ---------------------------------------------------------------------------------------------------------
# Detecting in-place modification of the arguments
# ---------------------------------------------------------------------------------------------------------


_PLAIN = frozenset({float, int, str, bool, type(None)})


def _unchanged(now, pristine) -> bool:
    """Whether ``now`` still equals ``pristine`` (JSON data decoded twice from the same request).

    Only exact built-in types are compared with ``==``, so an object the call planted cannot lie through ``__eq__``.
    """
    t = _type(pristine)
    if t is list:
        if _type(now) is not list or _list_len(now) != len(pristine):
            return False
        if all(_type(x) in _PLAIN for x in pristine):  # a row of numbers: C-speed checks
            return all(_type(x) in _PLAIN for x in now) and now == pristine
        return all(_unchanged(_list_item(now, i), p) for i, p in enumerate(pristine))
    if t is dict:
        if _type(now) is not dict or dict.keys(now) != pristine.keys():
            return False
        return all(_unchanged(dict.__getitem__(now, k), v) for k, v in pristine.items())
    return _type(now) is t and now == pristine


def _mutated(args: list, kwargs: dict, line: bytes) -> bool:
    try:
        pristine = _loads(line)
        return not (_unchanged(args, pristine["args"]) and _unchanged(kwargs, pristine.get("kwargs", {})))
    except BaseException:  # noqa: BLE001 - recursion through a cycle the call made, anything odd: it changed
        return True


# ---------------------------------------------------------------------------------------------------------
# Serving
# ---------------------------------------------------------------------------------------------------------


def _message(exc: BaseException, submission_file: str, display_name: str) -> str:
    """``Type: text`` plus the submission's own frames of the traceback (line numbers help students)."""
    try:
        text = str(exc)
    except BaseException:  # noqa: BLE001 - a booby-trapped __str__
        text = "<exception message unavailable>"
    if not _isinstance(text, str):
        text = "<exception message unavailable>"
    head = f"{_type_name(exc)}: {text[:MAX_MESSAGE]}" if text else _type_name(exc)
    if _isinstance(exc, OSError) and exc.errno == errno.EFBIG:
        head += f" (output limit: at most {_FILE_LIMIT[0]} bytes may be printed or written to one file)"
    lines = []
    try:
        for frame in traceback.extract_tb(exc.__traceback__):
            if frame.filename == submission_file:
                lines.append(
                    f"  {display_name}, line {frame.lineno}, in {frame.name}: {(frame.line or '').strip()[:200]}"
                )
    except BaseException:  # noqa: BLE001
        pass
    return "\n".join([head, *lines[-5:]])[: 2 * MAX_MESSAGE]


def main() -> None:
    config = json.loads(sys.argv[1])
    request_fd, reply_fd = config["request_fd"], config["reply_fd"]
    # A grader started in the background (nohup, `cmd &` in a script) hands its children SIGINT ignored, and Python
    # then installs no KeyboardInterrupt handler: give the submission the interpreter's usual signal dispositions,
    # so it behaves the same however the grader was started.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if p and os.path.abspath(p) != here]
    sys.meta_path.insert(0, _Blocker())
    if config.get("drop_to"):
        _drop_to(*config["drop_to"])
    libc = _libc()
    _die_with_parent(libc, config.get("parent_pid"))
    _apply_limits(config.get("limits", {}))
    layers, abi, scoped = [], 0, False
    if config.get("landlock", True):
        description, abi, scoped = _landlock(
            libc,
            config.get("read_paths", []),
            config.get("write_paths", []),
            config.get("landlock_scoping", True),
        )
        layers.append(description)
    else:
        layers.append("no Landlock (turned off)")
    if config.get("signal_filter") and not scoped:
        layers.append(_signal_filter(libc) or "no signal filter (seccomp unavailable here)")
    try:
        ipc_namespace = os.readlink("/proc/self/ns/ipc")
    except OSError:
        ipc_namespace = None
    own_ipc = ipc_namespace is not None and ipc_namespace != config.get("host_ipc_ns")
    if not (config.get("sysv_shm_counted") and own_ipc):
        layers.append(_sysv_shm_filter(libc) or "SysV shared memory not refused (seccomp unavailable here)")
    max_reply = config.get("max_reply_bytes") or (1 << 20)

    def send(obj: dict) -> None:
        data = (_dumps(obj, allow_nan=False) + "\n").encode()
        if len(data) > max_reply:  # the grader would reject it unread: say why instead
            data = (
                _dumps(
                    {
                        "id": obj.get("id"),
                        "status": "invalid",
                        "mutated": obj.get("mutated", False),
                        "message": f"the result is too large to send ({len(data)} bytes encoded, at most {max_reply})",
                    }
                )
                + "\n"
            ).encode()
        view = memoryview(data)
        while view:
            view = view[_write(reply_fd, view) :]

    send({"id": 0, "status": "confined", "layers": layers, "landlock_abi": abi})
    path, display = config["submission"], config.get("display_name", "rewards.py")
    try:
        spec = importlib.util.spec_from_file_location(SUBMISSION_MODULE, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[SUBMISSION_MODULE] = module
        spec.loader.exec_module(module)
    except BaseException as exc:  # noqa: BLE001 - SyntaxError, SystemExit, KeyboardInterrupt ... all reported
        if _isinstance(exc, SyntaxError) and exc.filename == path:
            msg = f"SyntaxError: {exc.msg} ({display}, line {exc.lineno})"
        elif _isinstance(exc, SystemExit):
            code = exc.code if _type(exc.code) in (int, str, type(None)) else _type_name(exc.code)
            msg = f"SystemExit: the submission called sys.exit({code!r:.100}) while being imported"
        else:
            msg = _message(exc, path, display)
        send({"id": 0, "status": "import_error", "message": msg})
        return
    send({"id": 0, "status": "ready"})

    pending = b""
    while True:
        chunks = [pending]
        while b"\n" not in chunks[-1]:
            chunk = os.read(request_fd, 1 << 20)
            if not chunk:
                return
            chunks.append(chunk)
        line, pending = b"".join(chunks).split(b"\n", 1)
        request = _loads(line)
        rid = request["id"]
        args, kwargs = request.get("args", []), request.get("kwargs", {})
        try:
            name = request["function"]
            function = getattr(module, name, None) if name in config["functions"] else None
            missing = function is None or not callable(function)
        except BaseException:  # noqa: BLE001 - a module __getattr__ that raises
            missing = True
        if missing:
            send(
                {
                    "id": rid,
                    "status": "missing",
                    "mutated": False,
                    "message": f"{display} does not define {request['function']}()",
                }
            )
            continue
        try:
            result = function(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001
            send(
                {
                    "id": rid,
                    "status": "error",
                    "message": _message(exc, path, display),
                    "mutated": _mutated(args, kwargs, line),
                }
            )
            continue
        try:
            value = [encode_float(v) for v in to_floats(result)]
            reply = {"id": rid, "status": "ok", "value": value}
        except Invalid as exc:
            reply = {"id": rid, "status": "invalid", "message": str(exc)}
        except BaseException as exc:  # noqa: BLE001 - e.g. a tensor subclass that raises
            reply = {
                "id": rid,
                "status": "invalid",
                "message": f"the result could not be read as numbers ({_type_name(exc)})",
            }
        result = None
        reply["mutated"] = _mutated(args, kwargs, line)
        send(reply)


def _private_namespace() -> dict:
    """A copy of this module's namespace (and of the builtins) whose functions look their globals up in the copy.

    Taken before the submission is imported and used for everything the worker does afterwards: the submission
    shares this interpreter, and could otherwise rebind ``sys.modules["__main__"]._mutated`` (or ``json.loads``,
    ``builtins.all`` ...) to hide that it changes its arguments, or to forge what is sent. What it would change
    now is the module it can reach, not the copy the protocol runs on. (In-process, nothing stops code that walks
    the interpreter's frames or pokes memory through ctypes; the grader treats every reply as untrusted data.)
    """
    import builtins

    namespace = dict(globals())
    namespace["__builtins__"] = dict(vars(builtins))
    for name, obj in list(namespace.items()):
        if _type(obj) is types.FunctionType and obj.__module__ == __name__:
            clone = types.FunctionType(
                obj.__code__, namespace, obj.__name__, obj.__defaults__, obj.__closure__
            )
            clone.__kwdefaults__ = obj.__kwdefaults__
            namespace[name] = clone
    return namespace


if __name__ == "__main__":
    _private_namespace()["main"]()
