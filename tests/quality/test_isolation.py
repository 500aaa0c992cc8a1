"""The sandbox's isolation, tried as a hostile student would (issue 9's list), in both modes.

* ``namespaces``: the worker under bubblewrap (new PID, network, IPC, UTS, mount namespaces; read-only minimal
  root; tmpfs /tmp with a size cap) with Landlock and limits as a second layer. On Linux CI this mode must be
  available: with ``GRADER_REQUIRE_NAMESPACES=1`` (set by ``.ci/run``) its tests fail instead of skipping.
* ``fallback``: Landlock, limits, the subreaper tree sweep and the seccomp signal guard, as where bubblewrap
  cannot run. Properties that only namespaces give (no network at all, a private /dev, disk and task quotas
  for root) are tested in the namespaces mode only; the rest in both.
* a **cgroup** per sandbox (issue 18) in either mode, where one can be made (root on cgroup v1, a delegated v2
  subtree): memory that counts shared memory, tasks, a CPU quota, a kill by cgroup. With
  ``GRADER_REQUIRE_CGROUPS=1`` (set by ``.ci/run``) its tests fail instead of skipping; the modes without one
  are tested by turning it off.

Most probes run code in the worker and send what they observed back as the message of an exception (the one
channel a submission legitimately has), parsed from the call's outcome.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from grader.grading.runner import GradeRequest, grade
from grader.sandbox import REPO_ROOT, SandboxConfig, SandboxedSubmission, namespace_launcher
from grader.sandbox import submission as sandbox_module
from grader.sandbox.cgroup import cgroup_host
from tests.support.ci import skip_unless_required
from tests.support.sandbox import (
    GOOD,
    REGISTRY,
    RUBRIC,
    kill_and_expect_gone,
    landlock_abi,
    processes_with,
    trap_and_kill,
    wait_until,
)
from tests.support.sandbox import write_submission as _submission

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the sandbox's isolation is Linux's"
)

NS = SandboxConfig(call_timeout_s=5.0, import_timeout_s=10.0, check_budget_s=20.0, isolation="strict")
FALLBACK = SandboxConfig(call_timeout_s=5.0, import_timeout_s=10.0, check_budget_s=20.0, isolation="fallback")
MODES = [pytest.param(NS, id="namespaces"), pytest.param(FALLBACK, id="fallback")]


def _require_namespaces() -> None:
    found = namespace_launcher()
    if isinstance(found, str):
        if os.environ.get("GRADER_REQUIRE_NAMESPACES") == "1":
            pytest.fail(f"GRADER_REQUIRE_NAMESPACES=1 but {found}")
        pytest.skip(found)


def _require_cgroups() -> None:
    found = cgroup_host()
    if isinstance(found, str):
        if os.environ.get("GRADER_REQUIRE_CGROUPS") == "1":
            pytest.fail(f"GRADER_REQUIRE_CGROUPS=1 but {found}")
        pytest.skip(found)


def _without_cgroups(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox_module, "cgroup_host", lambda: "cgroups turned off by the test")


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> SandboxConfig:
    if request.param.isolation == "strict":
        _require_namespaces()
    return request.param


@pytest.fixture(params=MODES)
def cgroup_mode(request: pytest.FixtureRequest) -> SandboxConfig:
    """Each mode with its cgroup (required)."""
    if request.param.isolation == "strict":
        _require_namespaces()
    _require_cgroups()
    return request.param


#: Every isolation mode: namespaces or not, times a cgroup or not (strict needs the cgroup: "auto" there).
EVERY_MODE = [
    pytest.param(("namespaces", True), id="namespaces+cgroup"),
    pytest.param(("namespaces", False), id="namespaces"),
    pytest.param(("fallback", True), id="fallback+cgroup"),
    pytest.param(("fallback", False), id="fallback"),
]


@pytest.fixture(params=EVERY_MODE)
def every_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> SandboxConfig:
    isolation, cgroups = request.param
    if isolation == "namespaces":
        _require_namespaces()
    if cgroups:
        _require_cgroups()
    else:
        _without_cgroups(monkeypatch)
    if isolation == "fallback":
        return FALLBACK
    return replace(NS, isolation="strict" if cgroups else "auto")


@pytest.fixture
def ns() -> SandboxConfig:
    """The namespaces alone (Landlock off): each layer must hold on its own."""
    _require_namespaces()
    return replace(NS, landlock=False)


def _probe(tmp_path: Path, body: str, config: SandboxConfig) -> dict:
    """Run ``body`` (which fills the dict ``seen``) inside the worker, in a call; return ``seen``."""
    source = (
        "import json, os, socket, errno, ctypes\n"
        + "\ndef shaped_reward(scores, completions, prompts=None):\n    seen = {}\n"
        + textwrap.indent(textwrap.dedent(body), "    ")
        + "\n    raise RuntimeError('PROBE' + json.dumps(seen))\n"
        + "kl_penalty_forward = kl_penalty_backward = shaped_reward\n"
    )
    with SandboxedSubmission(_submission(tmp_path, source), config) as sub:
        imported = sub.start()
        assert imported.ok, imported.message
        sub.begin_check(config.check_budget_s)
        out = sub.call("shaped_reward", [0.5], ["x"])
    assert out.status == "error" and "PROBE" in out.message, out
    return json.loads(out.message.split("PROBE", 1)[1].splitlines()[0])


def _outcome(expression: str) -> str:
    """Python source: evaluate ``expression`` and describe the result as 'ok' or the error's errno name."""
    return textwrap.dedent(
        f"""
        try:
            ({expression})
            result = "ok"
        except OSError as exc:
            result = errno.errorcode.get(exc.errno, str(exc.errno))
        """
    )


# --- processes ----------------------------------------------------------------------------------------------

FORK_HOPPER = """
import os, time
if os.fork() == 0:
    os.setsid()
    last = 0.0
    while True:
        try:
            pid = os.fork()
        except OSError:
            continue
        if pid:
            os._exit(0)
        os.setsid()
        if time.monotonic() - last > 0.05:
            os.write(2, b"beat\\n")
            last = time.monotonic()
"""


@pytest.mark.parametrize("attempt", range(3))
def test_a_fork_hopper_leaves_nothing_alive(tmp_path: Path, every_mode: SandboxConfig, attempt: int) -> None:
    """Its heartbeat (a line on its inherited stderr, which we keep open) stops once the sandbox is closed. In
    every isolation mode, three times each (CI runs this beside the rest of the suite: it must hold under load).
    Whatever is left is trapped and killed, so a red run leaves no hopper behind."""
    marker = f"hopper{uuid.uuid4().hex}"
    path = _submission(tmp_path, FORK_HOPPER + GOOD, name=f"{marker}.py")  # the name is in its command line
    log = -1
    try:
        with SandboxedSubmission(path, every_mode) as sub:
            assert sub.start().ok
            log = os.open(sub._tmp / "logs" / "stderr.txt", os.O_RDONLY)
            deadline = time.monotonic() + 10
            while os.fstat(log).st_size < 20 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert os.fstat(log).st_size >= 20, "the hopper never ran"
            closing = time.monotonic()
        assert time.monotonic() - closing < 10
        time.sleep(0.3)
        size = os.fstat(log).st_size
        time.sleep(1.0)
        assert os.fstat(log).st_size == size, "a hop is still alive and beating"
        assert processes_with(marker) == []
    finally:
        if log >= 0:
            os.close(log)
        assert trap_and_kill(marker) == [], "hops were left alive (now killed)"


@pytest.mark.parametrize("attempt", range(5))
def test_the_tree_kill_stops_a_fork_hopper_before_it_kills(attempt: int) -> None:
    """The last line behind every mode (the fallback's only one): kill_tree on a fork-hopper started as our child,
    each generation re-parented to us (the subreaper) as its parent exits, and nothing else between them. Five
    times: the kill must leave nothing every time. Killing what one look at our children found missed the
    generation born meanwhile on a busy machine (the hopper test above passed while a hop lived on, for hours,
    with most of the CPU); stopping each process before descending into its children holds the tree still."""
    from grader.sandbox.proctable import children_of_me, start_ticks
    from grader.sandbox.proctree import become_subreaper, kill_tree

    assert become_subreaper()
    marker = f"hopper{uuid.uuid4().hex}"
    preexisting = children_of_me()
    hopper = subprocess.Popen(  # FORK_HOPPER without the sandbox; its heartbeat goes nowhere
        [sys.executable, "-c", FORK_HOPPER, marker], start_new_session=True, stderr=subprocess.DEVNULL
    )
    try:
        started = start_ticks(hopper.pid)
        assert wait_until(lambda: hopper.poll() is not None, 10)  # the first generation has moved on
        assert kill_tree(hopper, started, preexisting)
        assert processes_with(marker, sweeps=20) == []
    finally:
        assert trap_and_kill(marker) == [], "hops were left alive (now killed)"


def test_the_worker_cannot_stop_the_grader(tmp_path: Path) -> None:
    """Fallback mode with Landlock's signal scoping forced off (a kernel before ABI 6): SIGSTOP to the grader
    is refused by the seccomp guard, and the grader (a separate process here) writes its results."""
    source = """
    import os, signal
    try:
        os.kill(os.getppid(), signal.SIGSTOP)
        _stop = "sent"
    except OSError as exc:
        _stop = type(exc).__name__
    try:
        os.kill(-1, 0)  # every process of the user: only probed (signal 0 does nothing), never sent
        _all = "sent"
    except OSError as exc:
        _all = type(exc).__name__
    if (_stop, _all) != ("PermissionError", "PermissionError"):
        raise RuntimeError(f"signals got through: {_stop}, {_all}")
    """
    path = _submission(tmp_path, textwrap.dedent(source) + GOOD)
    results = tmp_path / "results.json"
    script = f"""
from grader.grading.runner import GradeRequest, grade
from grader.sandbox import SandboxConfig
from tests.support.sandbox import REGISTRY, RUBRIC
config = SandboxConfig(call_timeout_s=5, import_timeout_s=10, isolation="fallback", landlock_scoping=False)
results = grade(GradeRequest({str(path)!r}, rubric=RUBRIC, sandbox=config), registry=REGISTRY)
results.write_json({str(results)!r})
"""
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=REPO_ROOT or Path.cwd())
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGCONT)
        proc.kill()
        proc.wait()
        pytest.fail("the grader was stopped (or hung): no results within 60 s")
    data = json.loads(results.read_text())
    assert data["score"] == data["max_score"] == 5, data["output"]
    assert "seccomp" in data["output"] and "no namespaces" not in data["output"]  # turned off, not missing


def test_in_the_pid_namespace_the_grader_is_out_of_reach(tmp_path: Path, ns: SandboxConfig) -> None:
    body = "\n".join(
        [
            "seen['pid'], seen['ppid'] = os.getpid(), os.getppid()",
            _outcome(f"os.kill({os.getpid()}, 0)"),  # our pid: another process, or none, in there
            "seen['kill_grader'] = result",
            _outcome("os.kill(os.getppid(), 19)"),  # SIGSTOP to the namespace's init
            "seen['stop_init'] = result",
        ]
    )
    seen = _probe(tmp_path, body, ns)
    assert seen["ppid"] == 1 and seen["pid"] <= 3, seen  # the namespace's init is the parent, not the grader
    assert seen["kill_grader"] in ("ESRCH", "EPERM"), seen  # (EPERM: Landlock's scoping answers first)


def test_threads_are_capped_in_the_namespace(tmp_path: Path, ns: SandboxConfig) -> None:
    seen = _probe(
        tmp_path,
        """
        import threading, time
        started = 0
        try:
            for _ in range(2000):
                threading.Thread(target=time.sleep, args=(2,), daemon=True).start()
                started += 1
        except RuntimeError:
            pass
        seen["started"] = started
        """,
        ns,
    )
    assert 10 < seen["started"] < ns.max_processes, seen  # the cap is the sandbox's own, root included


# --- network ------------------------------------------------------------------------------------------------


def test_no_socket_family_reaches_anything(tmp_path: Path, ns: SandboxConfig) -> None:
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(1)
    tcp.settimeout(0.5)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.settimeout(0.5)
    unix_path = tmp_path / "listen.sock"
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    unix.bind(str(unix_path))
    unix.listen(1)
    abstract_name = f"grader-test-{uuid.uuid4().hex}"
    abstract = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    abstract.bind("\0" + abstract_name)
    abstract.listen(1)
    tcp_port, udp_port = tcp.getsockname()[1], udp.getsockname()[1]
    body = "\n".join(
        [
            _outcome(f"socket.create_connection(('127.0.0.1', {tcp_port}), timeout=2)"),
            'seen["tcp"] = result',
            _outcome(
                f"[socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('127.0.0.1', {udp_port})) "
                "for _ in range(5)]"
            ),
            'seen["udp_send"] = result',
            _outcome(f"socket.socket(socket.AF_UNIX).connect({str(unix_path)!r})"),
            'seen["unix"] = result',
            _outcome(f"socket.socket(socket.AF_UNIX).connect('\\0{abstract_name}')"),
            'seen["abstract"] = result',
            _outcome("socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)"),
            'seen["raw_icmp"] = result',
            _outcome("socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))"),
            'seen["packet"] = result',
            _outcome("socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)"),
            'seen["ping"] = result',
            "seen['interfaces'] = [name for _i, name in socket.if_nameindex()]",
            _outcome("socket.create_connection(('1.1.1.1', 53), timeout=2)"),
            'seen["internet"] = result',
        ]
    )
    try:
        seen = _probe(tmp_path, body, ns)
        with pytest.raises(TimeoutError):
            tcp.accept()
        with pytest.raises(TimeoutError):
            udp.recvfrom(16)
        for listener in (unix, abstract):
            listener.settimeout(0.2)
            with pytest.raises(TimeoutError):
                listener.accept()
    finally:
        for s in (tcp, udp, unix, abstract):
            s.close()
    # nothing listens in the namespace's own loopback; the host's sockets are not there at all
    assert seen["tcp"] != "ok" and seen["unix"] != "ok" and seen["abstract"] != "ok", seen
    assert seen["raw_icmp"] != "ok" and seen["packet"] != "ok" and seen["ping"] != "ok", seen
    # netlink (if_nameindex asks the kernel through it) sees one device: the namespace's loopback
    assert seen["interfaces"] == ["lo"], seen
    assert seen["internet"] in ("ENETUNREACH", "EACCES", "EPERM"), seen


# --- files --------------------------------------------------------------------------------------------------


def test_dev_holds_only_harmless_devices(tmp_path: Path, ns: SandboxConfig) -> None:
    seen = _probe(
        tmp_path,
        "\n".join(
            [
                "seen['dev'] = sorted(os.listdir('/dev'))",
                _outcome("open('/dev/new-file', 'w')"),
                "seen['create'] = result",
                _outcome("os.mknod('/dev/loop9', 0o600 | 0o60000, os.makedev(7, 9))"),
                "seen['mknod'] = result",
                _outcome("open('/dev/null', 'w').write('x')"),
                "seen['null'] = result",
            ]
        ),
        ns,
    )
    devices = {d for d in seen["dev"] if d not in ("fd", "stdin", "stdout", "stderr")}
    assert devices == {"null", "zero", "urandom"}, seen
    assert seen["create"] != "ok" and seen["mknod"] != "ok" and seen["null"] == "ok", seen


def test_host_devices_are_out_of_reach_without_namespaces(tmp_path: Path) -> None:
    if landlock_abi() < 1:
        skip_unless_required(
            "GRADER_REQUIRE_LANDLOCK", "without namespaces, only Landlock keeps the host's /dev out of reach"
        )
    # /dev/tty exists on any Linux (containers too): never an empty list, never a vacuous all()
    devices = ("/dev/tty", "/dev/kmsg", "/dev/loop0", "/dev/console", "/dev/tty1")
    candidates = [d for d in devices if os.path.exists(d)]
    assert "/dev/tty" in candidates, candidates
    body = "\n".join(
        [
            f"{_outcome(f'open({d!r}, {m!r})')}\nseen[{d + m!r}] = result"
            for d in candidates
            for m in ("rb", "wb")
        ]
        + [_outcome("open('/dev/null', 'w').write('x')"), "seen['null'] = result"]
    )
    seen = _probe(tmp_path, body, FALLBACK)
    assert seen.pop("null") == "ok"
    assert all(result != "ok" for result in seen.values()), seen


def test_etc_shadow_and_the_repository_are_unreadable(tmp_path: Path, mode: SandboxConfig) -> None:
    if mode.isolation == "fallback" and landlock_abi() < 1:
        skip_unless_required(
            "GRADER_REQUIRE_LANDLOCK", "without namespaces, only Landlock keeps /etc/shadow out of reach"
        )
    secret = tmp_path / "hidden" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("s3cret")
    config = replace(mode, hidden_paths=(str(secret.parent),))
    targets = ["/etc/shadow", str(secret)] + (
        [str(REPO_ROOT / "reference" / "rewards.py")] if REPO_ROOT else []
    )
    body = "\n".join(f"{_outcome(f'open({t!r}).read()')}\nseen[{t!r}] = result" for t in targets)
    seen = _probe(tmp_path, body, config)
    assert all(result != "ok" for result in seen.values()), seen


@pytest.mark.skipif(REPO_ROOT is None, reason="no checkout: no exercise package beside the grader")
def test_graded_code_imports_the_exercise_package_and_nothing_else_of_the_checkout(
    tmp_path: Path, mode: SandboxConfig
) -> None:
    """The handout's package is importable (a shaping may use exercise.sentiment.words or exercise.validation's
    rhyme rule, as it can when the pipeline trains with it; before, the import failed and cost the whole file),
    while the rest of the repository stays out of reach (reference, grader, the project file)."""
    if mode.isolation == "fallback" and landlock_abi() < 1:
        skip_unless_required(
            "GRADER_REQUIRE_LANDLOCK", "without namespaces, only Landlock hides the repository"
        )
    hidden = {"reference": REPO_ROOT / "reference" / "rewards.py", "pyproject": REPO_ROOT / "pyproject.toml"}
    body = "\n".join(
        [
            "from exercise.sentiment import words",
            "seen['words'] = words('A fine, moving film.')",
            "try:\n    import grader\n    seen['grader'] = 'ok'\nexcept ImportError:\n    seen['grader'] = 'hidden'",
        ]
        + [
            f"{_outcome(f'open({str(path)!r}).read()')}\nseen[{name!r}] = result"
            for name, path in hidden.items()
        ]
    )
    seen = _probe(tmp_path, body, mode)
    assert seen.pop("words") == ["a", "fine", "moving", "film"], seen
    assert all(result != "ok" for result in seen.values()), seen


def test_the_exercise_package_stays_hidden_when_the_grade_hides_a_path_inside_it() -> None:
    from grader.sandbox.policy import shared_exercise

    if REPO_ROOT is None:
        pytest.skip("no checkout")
    exercise = str((REPO_ROOT / "exercise").resolve())
    assert shared_exercise([str(REPO_ROOT)]) == [exercise]
    assert shared_exercise([str(REPO_ROOT), exercise + "/rewards.py"]) == []
    assert shared_exercise([exercise]) == []


def test_disk_use_is_capped_by_the_tmpfs(tmp_path: Path, ns: SandboxConfig) -> None:
    seen = _probe(
        tmp_path,
        """
        written = 0
        try:
            for i in range(64):  # 4 MiB files (below the per-file limit) until /tmp is full
                with open(f"/tmp/fill{i}", "wb") as f:
                    f.write(b"x" * (4 << 20))
                written += 4 << 20
        except OSError as exc:
            seen["error"] = errno.errorcode.get(exc.errno)
        seen["written"] = written
        try:
            os.mkdir("/escape")
            seen["root_writable"] = True
        except OSError:
            seen["root_writable"] = False
        """,
        ns,
    )
    assert seen["error"] == "ENOSPC" and seen["written"] <= ns.tmpfs_bytes, seen
    assert not seen["root_writable"]


def test_new_user_namespaces_and_chroot_give_nothing(tmp_path: Path, ns: SandboxConfig) -> None:
    """As a user, the sandbox cannot create user namespaces at all (bwrap --disable-userns). As root, the worker
    runs as an unused uid that may create one (where the kernel allows unprivileged user namespaces): it then has
    capabilities over namespaces it creates only. Everything it inherited stays locked and read-only, and the
    host's files are not mounted: chroot, new mount namespaces and remounts reach nothing new."""
    reference = str(REPO_ROOT / "reference" / "rewards.py") if REPO_ROOT else "/nonexistent"
    escape = """
    libc = ctypes.CDLL(None, use_errno=True)
    CLONE_NEWUSER, CLONE_NEWNS, MS_REMOUNT, MS_BIND = 0x10000000, 0x20000, 32, 4096
    seen["userns"] = libc.unshare(CLONE_NEWUSER) == 0
    if seen["userns"]:
        seen["mountns"] = libc.unshare(CLONE_NEWNS) == 0
        seen["remount_rw"] = libc.mount(None, b"/", None, MS_REMOUNT | MS_BIND, None) == 0
        seen["remount_usr_rw"] = libc.mount(None, b"/usr", None, MS_REMOUNT | MS_BIND, None) == 0
        seen["umount_usr"] = libc.umount2(b"/usr", 2) == 0  # MNT_DETACH: would reveal what is below
    """
    chroot_escape = """
    try:  # the classic way out of a chroot: chroot deeper, climb with a cwd outside it, chroot there
        os.makedirs("/tmp/jail", exist_ok=True)
        os.chroot("/tmp/jail")
        for _ in range(20):
            os.chdir("..")
        os.chroot(".")
        seen["chroot"] = "ok"
    except OSError as exc:
        seen["chroot"] = errno.errorcode.get(exc.errno)
    """
    body = "\n".join(
        [
            textwrap.dedent(escape),
            _outcome("open('/usr/grader-escape', 'w')"),
            "seen['write_usr'] = result",
            textwrap.dedent(chroot_escape),  # then, from wherever that leads:
            _outcome(f"open({reference!r}).read()"),
            "seen['reference'] = result",
            _outcome("open('/etc/shadow').read()"),
            "seen['shadow'] = result",
            "seen['root'] = sorted(os.listdir('/'))",
        ]
    )
    seen = _probe(tmp_path, body, ns)
    if namespace_launcher().drop_uid is False:
        assert seen["userns"] is False, seen
    assert not seen.get("remount_rw") and not seen.get("remount_usr_rw") and not seen.get("umount_usr"), seen
    assert seen["write_usr"] in ("EROFS", "EACCES", "EPERM"), seen
    assert seen["reference"] != "ok" and seen["shadow"] != "ok", seen
    # wherever the chroot escape led, it is the sandbox's own root (the host has no /sandbox, and /home ...)
    assert "sandbox" in seen["root"] and "home" not in seen["root"], seen


# --- the mode in force --------------------------------------------------------------------------------------


def test_the_report_and_results_name_the_isolation(tmp_path: Path, every_mode: SandboxConfig) -> None:
    """The Sandbox line and results.json say which limits hold: the cgroup's, or what is left without one."""
    results = grade(
        GradeRequest(_submission(tmp_path, GOOD), rubric=RUBRIC, sandbox=every_mode), registry=REGISTRY
    )
    info = results.to_gradescope_dict()["sandbox"]
    line = [x for x in results.output.splitlines() if x.startswith("Sandbox:")][0]
    held = info["limits_in_force"]
    if every_mode.isolation != "fallback":
        assert info["isolation"] == "namespaces" and line.startswith("Sandbox: namespaces (")
    else:
        assert info["isolation"] in ("landlock", "none") and "isolation=fallback" in line
        assert info["fallback_reason"]
    if info["cgroup"] is not None:
        assert info["cgroup"]["memory_bytes"] == every_mode.memory_bytes and "cgroup v" in line
        assert "every page counted" in held["memory"] and held["kill"].startswith("by cgroup")
        assert held["cpu"] == "1 CPU (cgroup quota)" or "cpu" not in cgroup_host().parents
        assert "process-tree sweep" not in info["layers"]
    else:
        assert "no cgroup: cgroups turned off by the test" in line and info["cgroup_reason"]
        assert "mapped pages only" in held["memory"] and held["cpu"] == "no CPU quota"
        assert held["kill"] == (
            "process-tree sweep" if every_mode.isolation == "fallback" else "with the PID namespace"
        )
        assert ("process-tree sweep" in info["layers"]) == (every_mode.isolation == "fallback")


def test_without_namespaces_auto_falls_back_and_strict_refuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        sandbox_module, "namespace_launcher", lambda: "bwrap: setting up uid map: Permission denied"
    )
    path = _submission(tmp_path, GOOD)
    auto = grade(
        GradeRequest(path, rubric=RUBRIC, sandbox=SandboxConfig(call_timeout_s=5.0)), registry=REGISTRY
    )
    assert auto.full_marks
    assert "no namespaces: bwrap: setting up uid map: Permission denied" in auto.output
    assert auto.to_gradescope_dict()["sandbox"]["isolation"] in ("landlock", "none")

    strict = grade(
        GradeRequest(path, rubric=RUBRIC, sandbox=SandboxConfig(isolation="strict")), registry=REGISTRY
    )
    assert strict.internal_error and strict.score == 0
    assert "isolation 'strict'" in strict.output and "Permission denied" in strict.output


def test_strict_refuses_without_a_cgroup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Strict grading needs the kernel's limits (shared memory counted, a kill nothing escapes), not only the
    namespaces: without a cgroup it refuses with the reason and what to do; auto grades, and says so."""
    _require_namespaces()
    monkeypatch.setattr(
        sandbox_module, "cgroup_host", lambda: "cgroup v1: /sys/fs/cgroup/memory not writable"
    )
    path = _submission(tmp_path, GOOD)
    strict = grade(GradeRequest(path, rubric=RUBRIC, sandbox=NS), registry=REGISTRY)
    assert strict.internal_error and strict.score == 0
    assert "isolation 'strict' needs a cgroup" in strict.output and "not writable" in strict.output
    assert "--isolation auto" in strict.output
    auto = grade(GradeRequest(path, rubric=RUBRIC, sandbox=replace(NS, isolation="auto")), registry=REGISTRY)
    assert auto.full_marks and "no cgroup: cgroup v1: /sys/fs/cgroup/memory not writable" in auto.output


def test_the_cli_refuses_in_strict_mode_and_still_writes_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from grader.cli import main

    monkeypatch.setattr(sandbox_module, "namespace_launcher", lambda: "no bubblewrap here")
    results = tmp_path / "out" / "results.json"
    args = ["--submission", str(_submission(tmp_path, GOOD)), "--results", str(results), "--no-training"]
    assert main([*args, "--isolation", "strict", "--quiet"]) == 2
    data = json.loads(results.read_text())
    assert (
        data["score"] == 0
        and "isolation 'strict'" in data["output"]
        and "no bubblewrap here" in data["output"]
    )


# --- the reply channel -------------------------------------------------------------------------------------


def test_an_oversized_reply_is_the_submissions_failure(tmp_path: Path, mode: SandboxConfig) -> None:
    forged = """
    import json, os, sys
    REPLY_FD = json.loads(sys.argv[1])["reply_fd"]  # the worker's own configuration names the channel
    def kl_penalty_forward(log_probs_policy, log_probs_ref, kl_coef=0.1):
        os.write(REPLY_FD, b"[" + b"1.0, " * 400_000)  # 2 MB without a newline, straight into the reply pipe
        return [0.0]
    def kl_penalty_backward(log_probs_policy, log_probs_ref, kl_coef=0.1):
        return [1e-300] * 50_000  # honest, but too many numbers for one reply
    def shaped_reward(scores, completions, prompts=None):
        return [float(s) for s in scores]
    """
    with SandboxedSubmission(_submission(tmp_path, forged), mode) as sub:
        assert sub.start().ok
        sub.begin_check(20)
        out = sub.call("kl_penalty_forward", [[-1.0]], [[-1.0]])
        assert out.status == "invalid" and "larger than 1 MiB" in out.message, out
        sub.begin_check(20)
        out = sub.call("kl_penalty_backward", [[-1.0]], [[-1.0]])
        assert out.status == "invalid" and "at most 20000" in out.message, out
        sub.begin_check(20)
        assert sub.call("shaped_reward", [0.25], ["x"]).value == [0.25]  # the worker was restarted


def test_memory_watch_kills_a_tree_that_forks_its_memory(tmp_path: Path, mode: SandboxConfig) -> None:
    """Four children of 200 MB each: no single process is above the limit, the tree is."""
    config = replace(mode, memory_bytes=512 << 20, call_timeout_s=20.0)
    source = """
    import os, time
    def shaped_reward(scores, completions, prompts=None):
        for _ in range(4):
            if os.fork() == 0:
                block = bytearray(200 << 20)
                block[:: 4096] = b"x" * len(block[:: 4096])  # touch every page
                time.sleep(60)
                os._exit(0)
        time.sleep(60)
    kl_penalty_forward = kl_penalty_backward = shaped_reward
    """
    with SandboxedSubmission(_submission(tmp_path, source), config) as sub:
        assert sub.start().ok
        # with a cgroup its limit may kill a child before the watch's next poll: the watch hears of that too
        assert (sub._cgroup is None) == (sub._watch._oom_killed is None)
        sub.begin_check(30)
        started = time.monotonic()
        out = sub.call("shaped_reward", [0.5], ["x"])
    assert out.status == "crashed" and "used more than 512 MiB of memory" in out.message, out
    assert time.monotonic() - started < 20


# --- the cgroup: memory no process maps, tasks, CPU --------------------------------------------------------

MEMFD_HOG = """
import os
def shaped_reward(scores, completions, prompts=None):
    held = []
    for _ in range(320):  # 2.5 GiB in memfds of 8 MiB (each under the per-file limit), none of them mapped
        fd = os.memfd_create("hog")
        os.write(fd, b"x" * (8 << 20))
        held.append(fd)
    return [float(s) for s in scores]
"""
SYSV_HOG = """
import ctypes
def shaped_reward(scores, completions, prompts=None):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.shmat.restype = ctypes.c_void_p
    for _ in range(320):  # 2.5 GiB in SysV segments of 8 MiB, each written and detached: no process maps them
        sid = libc.shmget(0, 8 << 20, 0o1600)  # IPC_PRIVATE, IPC_CREAT | 0600
        if sid < 0:
            raise OSError(ctypes.get_errno(), "shmget")
        address = libc.shmat(sid, None, 0)
        ctypes.memset(address, 1, 8 << 20)
        libc.shmdt(ctypes.c_void_p(address))
    return [float(s) for s in scores]
"""


def _host_shmem() -> int:
    with open("/proc/meminfo") as f:
        return next(int(line.split()[1]) << 10 for line in f if line.startswith("Shmem:"))


@pytest.mark.parametrize("hog", [MEMFD_HOG, SYSV_HOG], ids=["memfd", "sysv"])
def test_memory_no_process_maps_is_counted_and_freed(
    tmp_path: Path, cgroup_mode: SandboxConfig, hog: str
) -> None:
    """2.5 GiB held in memfds or detached SysV segments (no process maps them, the resident watch sees nothing):
    the cgroup counts them, the worker is stopped with the memory message, the group is removed, and the host's
    shared memory is back to its level once the grade is over (a SysV segment dies with the IPC namespace)."""
    config = replace(cgroup_mode, memory_bytes=512 << 20, call_timeout_s=20.0)
    before = _host_shmem()
    with SandboxedSubmission(_submission(tmp_path, GOOD + textwrap.dedent(hog)), config) as sub:
        assert sub.start().ok
        group = sub._cgroup
        assert group is not None and sub.sandbox_info["cgroup"]["memory_bytes"] == 512 << 20
        sub.begin_check(30)
        out = sub.call("shaped_reward", [0.5], ["x"])
        assert out.status == "crashed" and "used more than 512 MiB of memory" in out.message, out
        assert "shared memory" in out.message
        sub.begin_check(30)  # the next check gets a fresh worker, in the same group
        assert sub.call("kl_penalty_forward", [[-1.0]], [[-1.0]]).ok
    assert not any(os.path.exists(d) for d in group.dirs.values()), "the cgroup outlived the grade"
    # (the kernel frees a dead IPC namespace's segments from a work queue: a moment later)
    assert wait_until(lambda: _host_shmem() < before + (64 << 20), 15), (before, _host_shmem())


def test_the_sandbox_tmp_counts_in_the_memory_limit(tmp_path: Path, ns: SandboxConfig) -> None:
    """60 MiB in /tmp (under its 64 MiB cap) plus 110 MiB resident: the resident watch alone (160 MiB) would let
    it through, the cgroup counts the tmpfs pages too."""
    _require_cgroups()
    config = replace(ns, memory_bytes=160 << 20, call_timeout_s=20.0)
    source = """
    def shaped_reward(scores, completions, prompts=None):
        for i in range(15):
            with open(f"/tmp/fill{i}", "wb") as f:
                f.write(b"x" * (4 << 20))
        block = bytearray(110 << 20)
        block[::4096] = b"x" * len(block[::4096])
        return [float(s) for s in scores]
    """
    with SandboxedSubmission(_submission(tmp_path, GOOD + textwrap.dedent(source)), config) as sub:
        assert sub.start().ok
        sub.begin_check(30)
        out = sub.call("shaped_reward", [0.5], ["x"])
    assert out.status == "crashed" and "used more than 160 MiB of memory" in out.message, out


def test_a_group_left_by_a_killed_grader_is_killed_and_removed() -> None:
    """A grader (or training lane) killed outright cannot close its sandbox: the next probe kills what still runs
    in a group whose grader is gone, and removes it."""
    from grader.sandbox import cgroup as cgroup_module

    _require_cgroups()
    host = cgroup_host()
    # a pid above the kernel's highest pid_max (PID_MAX_LIMIT): never a live process
    name = f"{cgroup_module.PREFIX}4194305-{uuid.uuid4().hex[:8]}"
    dirs = {c: os.path.join(p, name) for c, p in host.parents.items()}
    for directory in dict.fromkeys(dirs.values()):
        os.mkdir(directory)
    group = cgroup_module.Cgroup(host, dirs, cgroup_module.CgroupLimits(64 << 20, 8, None))
    marker = f"stale{uuid.uuid4().hex}"
    sleeper = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", marker], preexec_fn=group.enter
    )
    try:
        assert group.pids() == [sleeper.pid]
        reaper = threading.Thread(target=sleeper.wait)  # its parent is alive here: it reaps it at once
        reaper.start()
        cgroup_module._remove_stale(host)
        reaper.join(timeout=10)
        assert sleeper.returncode == -signal.SIGKILL
        assert not any(os.path.exists(d) for d in dirs.values())
    finally:
        trap_and_kill(marker)
        group.kill()
        group.remove()


def test_a_kill_by_the_cgroups_memory_limit_ends_the_whole_tree_at_once() -> None:
    """The memory watch's other trigger: the cgroup's limit killed a process of the tree (a forked child, while
    the worker sleeps on). Without it the rest sat out the call's timeout and the grade said "did not return"
    instead of "used more than ... of memory" (the test above, when the kernel struck before the watch's poll).
    The watch is handed a killed count that has risen: it kills its tree at once and records the limit."""
    from grader.sandbox.proctree import MemoryWatch

    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        watch = MemoryWatch(lambda: [sleeper.pid], 1 << 40, oom_killed=lambda: True).start()
        assert sleeper.wait(timeout=10) == -signal.SIGKILL
        assert watch.exceeded is not None and watch.exceeded > watch.limit_bytes
        polls: list[int] = []
        quiet = MemoryWatch(lambda: polls.append(1) or [], 1 << 40, oom_killed=lambda: False).start()
        assert wait_until(lambda: len(polls) >= 3, 10)  # three polls: nothing to kill, nothing recorded
        quiet.stop()
        assert quiet.exceeded is None
    finally:
        sleeper.kill()
        sleeper.wait()


def test_tasks_are_capped_by_the_cgroup_also_for_root(tmp_path: Path, cgroup_mode: SandboxConfig) -> None:
    """Without namespaces, RLIMIT_NPROC does not apply to root; the pids controller counts every task."""
    config = replace(cgroup_mode, max_processes=64)
    seen = _probe(
        tmp_path,
        """
        import time
        started = 0
        try:
            for _ in range(300):
                if os.fork() == 0:
                    time.sleep(30)
                    os._exit(0)
                started += 1
        except OSError as exc:
            seen["error"] = errno.errorcode.get(exc.errno)
        seen["started"] = started
        """,
        config,
    )
    assert seen.get("error") == "EAGAIN" and seen["started"] < 64, seen


def test_the_cpu_quota_holds_whatever_the_submission_forks(
    tmp_path: Path, cgroup_mode: SandboxConfig
) -> None:
    """Four spinning children under a quota of half a CPU: the group's CPU time stays near half its wall time
    (without the quota it is the machine's core count; the quota is the feature, asserted with a margin)."""
    if "cpu" not in cgroup_host().parents and cgroup_host().version == 1:
        pytest.skip("no cpu controller here")
    config = replace(cgroup_mode, cpus=0.5)
    spinners = """
    import os, time
    def shaped_reward(scores, completions, prompts=None):
        for _ in range(4):
            if os.fork() == 0:
                while True:
                    pass
        time.sleep(3)
        return [float(s) for s in scores]
    """
    with SandboxedSubmission(_submission(tmp_path, GOOD + textwrap.dedent(spinners)), config) as sub:
        assert sub.start().ok and sub.sandbox_info["limits_in_force"]["cpu"] == "0.5 CPU (cgroup quota)"
        sub.begin_check(30)
        used, began = sub._cgroup.cpu_seconds(), time.monotonic()
        assert sub.call("shaped_reward", [0.5], ["x"]).ok
        used, wall = sub._cgroup.cpu_seconds() - used, time.monotonic() - began
    assert used < 0.8 * wall, (used, wall)


def test_without_a_cgroup_sysv_memory_is_refused_and_descriptors_capped(
    tmp_path: Path, mode: SandboxConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where nothing would count a detached segment (no memory cgroup), SysV shared memory is refused; memfds
    are bounded by the descriptor limit (a few hundred, soft and hard) times the per-file limit."""
    _without_cgroups(monkeypatch)
    body = "\n".join(
        [
            "import resource",
            "libc = ctypes.CDLL(None, use_errno=True)",
            "seen['shmget'] = libc.shmget(0, 1 << 20, 0o1600) >= 0 or errno.errorcode.get(ctypes.get_errno())",
            "seen['nofile'] = resource.getrlimit(resource.RLIMIT_NOFILE)",
            "try:",
            "    resource.setrlimit(resource.RLIMIT_NOFILE, (4096, 4096))",
            "    seen['raise'] = 'ok'",
            "except (OSError, ValueError) as exc:",  # Python refuses a hard limit above the current one itself
            "    seen['raise'] = type(exc).__name__",
        ]
    )
    seen = _probe(tmp_path, body, replace(mode, isolation="auto") if mode.isolation == "strict" else mode)
    assert seen["shmget"] == "EPERM", seen
    assert seen["nofile"] == [mode.open_files, mode.open_files] and seen["raise"] != "ok", seen


def test_probe_result_is_cached_and_names_its_bwrap() -> None:
    first = namespace_launcher()
    assert namespace_launcher() is first  # probed once per process
    if not isinstance(first, str):
        assert os.access(first.bwrap, os.X_OK) and "bubblewrap" in first.version
        assert first.drop_uid == (os.geteuid() == 0)


def test_threads_of_the_grader_are_not_needed_to_stop_a_worker(tmp_path: Path, mode: SandboxConfig) -> None:
    """The memory watch is a thread of the grader: closing the sandbox stops it (no thread leaks per check)."""
    before = threading.active_count()
    for _ in range(3):
        with SandboxedSubmission(_submission(tmp_path, GOOD), mode) as sub:
            assert sub.start().ok
    assert wait_until(lambda: threading.active_count() <= before, 10), threading.enumerate()


GRADER_THAT_STARTS_A_LANE = """
import sys
from grader.training.runs import Job, execute

work, submission = sys.argv[1], sys.argv[2]
execute([Job("baseline", "baseline", submission, 0)], work_dir=work, timeout_s=600, preset="tiny", lanes=1)
"""


def test_a_grader_killed_outright_takes_its_training_lanes_with_it(tmp_path: Path) -> None:
    """A grader killed with SIGKILL (a lost batch worker) cannot sweep its tree: the kernel kills its training
    lanes (parent-death signal), instead of leaving them to run out their own budget."""
    work = tmp_path / f"lanes{uuid.uuid4().hex}"
    lane = f"{work.name}/lane0/lane.json"  # in the lane's command line, not in the grader's
    submission = tmp_path / "rewards.py"
    submission.write_text(GOOD)
    grader = subprocess.Popen(
        [sys.executable, "-c", GRADER_THAT_STARTS_A_LANE, str(work), str(submission)],
        cwd=REPO_ROOT,
        start_new_session=True,
    )
    try:
        assert wait_until(lambda: processes_with(lane), 60), "the lane never started"
        time.sleep(1.0)  # the lane is at work (importing torch, loading the model)
        assert processes_with(lane), "the lane ended on its own"
        kill_and_expect_gone(grader, lane)
    finally:
        if grader.poll() is None:
            grader.kill()
