"""``--executor ray``: one Ray task per submission, on a Ray head started for the batch or an existing cluster.

Each task runs the same ``python -m grader`` process as the local executor (same command, same isolation), in
a temporary folder on whichever node Ray picked: the submission's file and the shared baseline travel with the
task, and the grade's files (``results.json``, ``grader.log``, the training plot) come back as its result, so
the nodes need the project installed but no shared file system. The driver writes each submission's files as
its task finishes, so an interrupted batch keeps what was done (``--resume``).

A task whose worker process or node dies is run again by Ray (``max_retries``); a submission whose task is
lost twice gets its row with the reason. A grader stuck in a dead worker's place does not outlive it: it is
started with a parent-death signal.

Ray is an optional dependency (``pip install .[cluster]``), imported only here and only for ``--executor ray``.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from grader.tools.batch import reasons
from grader.tools.batch.config import DEFAULT_GRADER, BatchConfig, Entry, Graded
from grader.tools.batch.grade import (
    RESULT_FILES,
    grader_options,
    mark_done,
    not_gradeable,
    prepare_folder,
    read_row,
    run_grader,
)
from grader.tools.batch.interrupt import Stop

#: How often the driver looks for finished tasks and a Ctrl-C (seconds).
POLL_S = 0.2
#: How long a stopped batch waits for its cancelled tasks to go (their workers killed).
CANCEL_WAIT_S = 30.0

#: Ray runs a task again once when its worker or node is lost: a submission lost twice gets its row.
MAX_RETRIES = 1
#: Object store of an embedded head: results are small, and a container's /dev/shm often is too.
EMBEDDED_OBJECT_STORE_BYTES = 200 * 1024**2
#: Run in place of the grader's interpreter: ask the kernel to kill the grader when the Ray worker that started
#: it dies (a killed worker cannot clean up), then become the grader (exec: same process, same pid).
_LAUNCH = """\
import ctypes, os, sys
parent = int(sys.argv[1])
try:
    ctypes.CDLL(None, use_errno=True).prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG, SIGKILL
except (AttributeError, OSError):
    pass  # not Linux: the grader's own time budget still bounds it
if os.getppid() != parent:
    os._exit(70)  # the worker died before the signal was armed
os.execv(sys.argv[2], sys.argv[2:])
"""


class ClusterError(RuntimeError):
    """Ray is missing or the cluster cannot be reached (a one-line message for the command line)."""


def import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise ClusterError(
            f"--executor ray needs Ray, which is not installed ({exc}): pip install .[cluster] "
            "(or pip install ray), or use --executor local"
        ) from None
    return ray


def unreachable(address: str, timeout_s: float = 5.0) -> str:
    """Why nothing answers at a cluster address ``host:port`` or ``ray://host:port``, or "" (something does, or
    the address is not of that form: ``auto``). Ray itself keeps retrying a dead address (330 s on a 2-core
    test machine) before it reports it in many lines; this says it in one, at once."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not host or not port.isdigit():
        return ""
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            return ""
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        return (
            f"nothing answers at {host}:{port} ({why}): is the cluster running (`ray status` on its head "
            f"node), and is this its address (`ray start --head` prints it)?"
        )


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


# ---------------------------------------------------------------------------------------------------------------
# What runs on the workers
# ---------------------------------------------------------------------------------------------------------------


class Board:
    """Which submissions' tasks have started (a Ray actor without resources: the progress bar's "running")."""

    def __init__(self) -> None:
        self.started: set[str] = set()

    def start(self, name: str) -> None:
        self.started.add(name)

    def names(self) -> list[str]:
        return sorted(self.started)


def remote_grade(
    name: str,
    filename: str,
    source: bytes,
    options: Sequence[str],
    baseline: str | None,
    timeout: float,
    grader_cmd: Sequence[str] | None,
    board: Any = None,
    rubric: str | None = None,
) -> dict[str, Any]:
    """Grade one submission on this node: its file, the shared baseline and the batch's rubric written to a
    temporary folder, the grader run there; returns the grade's files and how the grader ended (plain data)."""
    if board is not None:
        try:
            board.start.remote(name)
        except Exception:  # noqa: BLE001 - progress is a convenience, never a reason to lose a grade
            pass
    with tempfile.TemporaryDirectory(prefix="batch-ray-") as tmp:
        submission = Path(tmp) / "submission" / filename
        submission.parent.mkdir()
        submission.write_bytes(source)
        folder = Path(tmp) / "out"
        folder.mkdir()
        extra: list[str] = []
        if baseline is not None:
            (Path(tmp) / "baseline.json").write_text(baseline, encoding="utf-8")
            extra = ["--baseline-run", str(Path(tmp) / "baseline.json")]
        if rubric is not None:
            (Path(tmp) / "rubric.toml").write_text(rubric, encoding="utf-8")
            extra += ["--rubric", str(Path(tmp) / "rubric.toml")]
        grader = list(grader_cmd) if grader_cmd else [sys.executable, "-m", "grader"]
        command = [sys.executable, "-c", _LAUNCH, str(os.getpid()), *grader]
        command += [
            "--submission",
            str(submission),
            "--results",
            str(folder / "results.json"),
            *options,
            *extra,
        ]
        exit_code, error, seconds = run_grader(command, folder, timeout)
        files = {n: (folder / n).read_bytes() for n in RESULT_FILES if (folder / n).is_file()}
    return {"exit_code": exit_code, "error": error, "seconds": seconds, "files": files}


def remote_baseline(seed: int, preset: str, timeout: float) -> dict[str, Any]:
    """Make the shared baseline run on a worker (where grades run: its preset resolves as theirs do)."""
    from grader.training.baseline import make_baseline

    return make_baseline(seed, preset, timeout_s=timeout)


# ---------------------------------------------------------------------------------------------------------------
# The driver
# ---------------------------------------------------------------------------------------------------------------


class RayExecutor:
    """Connects to (or starts) Ray on entering, disconnects (or stops it) on leaving."""

    def __init__(self, config: BatchConfig, grader_cmd: Sequence[str] = DEFAULT_GRADER) -> None:
        if config.cpus_per_grade <= 0 or config.gpus_per_grade < 0:
            raise ValueError("--cpus-per-grade must be positive and --gpus-per-grade at least 0")
        self.config = config
        # The default grader is resolved on each worker (its own interpreter); a stand-in is used as given.
        self.grader_cmd = None if tuple(grader_cmd) == tuple(DEFAULT_GRADER) else list(grader_cmd)
        self.ray = import_ray()
        self.where = ""

    def __enter__(self) -> RayExecutor:
        ray, config = self.ray, self.config
        # Ray's driver-side notices (token authentication, "Started a local Ray instance" ...) would print into
        # the progress line; its errors still show. Ray sets this logger's level when imported: set it after.
        self.ray_logger = logging.getLogger("ray")
        self.ray_log_level = self.ray_logger.level
        self.ray_logger.setLevel(logging.ERROR)
        common = {"log_to_driver": False, "configure_logging": False, "ignore_reinit_error": True}
        problem = unreachable(config.ray_address) if config.ray_address else ""
        if problem:
            self.ray_logger.setLevel(self.ray_log_level)
            raise ClusterError(f"could not reach Ray at {config.ray_address}: {problem}")
        try:
            if config.ray_address:
                ray.init(address=config.ray_address, **common)
                self.where = f"the Ray cluster at {config.ray_address}"
            else:
                # An embedded head for this batch: this machine's CPUs, reachable from here only, no dashboard.
                ray.init(
                    address="local",  # a new head even where a `ray start` cluster runs (else Ray joins it)
                    num_cpus=available_cpus(),
                    include_dashboard=False,
                    _node_ip_address="127.0.0.1",
                    object_store_memory=EMBEDDED_OBJECT_STORE_BYTES,
                    **common,
                )
                self.where = f"a Ray head started on this machine ({available_cpus()} CPUs)"
        except Exception as exc:  # noqa: BLE001 - connection errors come in many types
            self.ray_logger.setLevel(self.ray_log_level)
            target = config.ray_address or "an embedded head"
            first = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
            raise ClusterError(
                f"could not start or reach Ray ({target}): {type(exc).__name__}: {first}"
            ) from None
        resources = ray.cluster_resources()
        if (
            resources.get("CPU", 0) < self.config.cpus_per_grade
            or resources.get("GPU", 0) < config.gpus_per_grade
        ):
            self.__exit__()
            raise ClusterError(
                f"{self.where} has {resources.get('CPU', 0):g} CPUs and {resources.get('GPU', 0):g} GPUs: no node "
                f"can take a grade of --cpus-per-grade {config.cpus_per_grade:g} --gpus-per-grade "
                f"{config.gpus_per_grade:g}"
            )
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.ray.shutdown()  # an embedded head stops; a cluster's only disconnects
        finally:
            self.ray_logger.setLevel(self.ray_log_level)

    def _options(self) -> dict[str, Any]:
        return {
            "num_cpus": self.config.cpus_per_grade,
            "num_gpus": self.config.gpus_per_grade,
            "max_retries": MAX_RETRIES,
            "retry_exceptions": False,  # the task catches what the grader does; only a lost worker is retried
        }

    def make_baseline(self, seed: int, preset: str, timeout: float) -> dict[str, Any]:
        task = self.ray.remote(remote_baseline).options(**self._options())
        ref = task.remote(seed, preset, timeout)
        try:
            return self.ray.get(ref)
        except KeyboardInterrupt:  # Ctrl-C (Stop.interruptible): a cluster's worker must not go on with it
            self._cancel([ref])
            raise

    def grade(
        self,
        entries: Sequence[Entry],
        out: Path,
        baseline: str | None,
        events: Any,
        stop: Stop | None = None,
    ) -> None:
        """Grade ``entries``: ``events.started(name)`` when a task starts, ``events.finished(row)`` with each
        row (its files written) as its task ends. When ``stop`` is requested (Ctrl-C), every task still queued
        or running is cancelled (a running one's worker is killed, and its grader with it: parent-death signal)
        and records no row."""
        ray, config = self.ray, self.config
        stop = stop if stop is not None else Stop()
        try:
            board = ray.remote(Board).options(num_cpus=0).remote()
        except Exception:  # noqa: BLE001 - no "running" count then, same grades
            board = None
        events.slots(self._slots())
        options = grader_options(config, None, training_jobs=max(1, int(config.cpus_per_grade)))
        rubric_file = config.rubric_file()
        rubric = rubric_file.read_text(encoding="utf-8") if rubric_file is not None else None
        task = ray.remote(remote_grade).options(**self._options())
        baseline_ref = ray.put(baseline) if baseline is not None else None  # stored once, not once per task
        pending: dict[Any, Entry] = {}
        for entry in entries:
            if entry.file is None:
                events.finished(not_gradeable(entry, prepare_folder(entry, out)))
                continue
            try:
                source = entry.file.read_bytes()
            except OSError as exc:
                prepare_folder(entry, out)
                error = f"cannot read the submission: {exc}"
                events.finished(
                    Graded(entry.name, 0.0, None, [], error=error, note=entry.note, reason=reasons.NOTHING)
                )
                continue
            args = (
                entry.name,
                entry.file.name,
                source,
                options,
                baseline_ref,
                config.timeout,
                self.grader_cmd,
            )
            pending[task.remote(*args, board, rubric)] = entry
        seen: set[str] = set()
        while pending and not stop.check():
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=POLL_S)
            for ref in ready:
                entry = pending.pop(ref)
                seen.add(entry.name)
                events.finished(self._row(ref, entry, out))
            for name in self._started(board) if board is not None else ():
                if name not in seen:
                    seen.add(name)
                    events.started(name)
        if pending:  # stopped: the rest are cancelled, their grades left for --resume
            self._cancel(list(pending))
            for entry in pending.values():
                events.stopped(entry.name)
        if board is not None:
            try:
                ray.kill(board)
            except Exception:  # noqa: BLE001 - it goes with the job anyway
                pass

    def _cancel(self, refs: list[Any]) -> None:
        """Cancel tasks, killing the workers of those that run (force): their graders die with them."""
        for ref in refs:
            try:
                self.ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001 - a task that just finished cannot be cancelled: nothing to do
                pass
        try:  # until each is gone, so that no grader of this batch outlives it (bounded)
            self.ray.wait(refs, num_returns=len(refs), timeout=CANCEL_WAIT_S)
        except Exception:  # noqa: BLE001
            pass

    def _slots(self) -> int:
        """Grades the cluster runs at once (for the time left)."""
        try:
            resources = self.ray.cluster_resources()
        except Exception:  # noqa: BLE001 - progress only
            return 1
        slots = resources.get("CPU", 0) / self.config.cpus_per_grade
        if self.config.gpus_per_grade > 0:
            slots = min(slots, resources.get("GPU", 0) / self.config.gpus_per_grade)
        return max(1, int(slots + 1e-9))

    def _started(self, board: Any) -> list[str]:
        try:
            return self.ray.get(board.names.remote(), timeout=2)
        except Exception:  # noqa: BLE001 - the board's node may be gone: progress only
            return []

    def _row(self, ref: Any, entry: Entry, out: Path) -> Graded:
        folder = prepare_folder(entry, out)
        try:
            result = self.ray.get(ref)
        except self.ray.exceptions.RayError as exc:
            return lost_row(entry, folder, exc)
        for name, data in result["files"].items():
            if name in RESULT_FILES:
                (folder / name).write_bytes(data)
        row = read_row(entry, folder, result["exit_code"], result["error"], result["seconds"])
        mark_done(entry, folder, self.config, row)
        return row


def lost_row(entry: Entry, folder: Path, exc: BaseException) -> Graded:
    """The row of a submission whose task Ray gave up on (its worker or node lost on every attempt)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    detail = f"{type(exc).__name__}: {lines[0][:300]}" if lines else type(exc).__name__
    error = f"not graded: its Ray task was lost {MAX_RETRIES + 1} times (worker or node failure; {detail})"
    (folder / "grader.log").write_text(f"{error}\n\n{exc}\n", encoding="utf-8")
    return Graded(
        entry.name,
        0.0,
        None,
        [],
        error=error,
        note=entry.note,
        submission_file=entry.file.name if entry.file else "",
        reason=reasons.LOST,
    )
