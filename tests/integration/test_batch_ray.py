"""The batch's Ray executor (grader/tools/batch/cluster.py) on a real Ray: a local cluster started with
``ray start --head`` (2 CPUs, 127.0.0.1) and the embedded head the batch starts itself.

The grades are the real ``python -m grader`` with ``--no-training`` (a few seconds each): what is tested is where
and how they run, not the training checks. Without Ray these tests skip, except in CI (``GRADER_REQUIRE_RAY=1``),
where they fail. Every test here is slow: starting Ray alone takes 5-25 s on 2 shared cores.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import psutil
import pytest

from grader.tools.batch import BatchConfig, run_batch
from tests.support.files import aged_stamps, stamps, write_file
from tests.support.ray_cluster import local_cluster, require_ray
from tests.support.wrong_sources import R_LOG_R_BACKWARD, SUM_NOT_MEAN_FORWARD

REPO = Path(__file__).resolve().parents[2]
REFERENCE = (REPO / "reference" / "rewards.py").read_text(encoding="utf-8")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def _ray() -> None:
    """Ray or a skip (a failure in CI), when these tests run: not at collection, where importing Ray would cost
    every pytest-xdist worker of the fast tier a second."""
    require_ray()


@pytest.fixture(scope="module")
def six(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six submissions that earn different scores (one of each kind of outcome the gradebook shows)."""
    subs = tmp_path_factory.mktemp("six")
    write_file(subs / "ada" / "rewards.py", REFERENCE)
    write_file(subs / "ben.py", (REPO / "exercise" / "rewards.py").read_text(encoding="utf-8"))  # the stub
    write_file(subs / "cy" / "exercise" / "rewards.py", REFERENCE + SUM_NOT_MEAN_FORWARD)
    write_file(subs / "dee.py", REFERENCE + R_LOG_R_BACKWARD)
    write_file(subs / "eve.py", "def kl_penalty_forward(:\n")
    write_file(subs / "fay.py", "import sys\nsys.exit(0)\n")
    return subs


@pytest.fixture(scope="module")
def local_book(six: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same batch with --executor local: what Ray must reproduce."""
    out = tmp_path_factory.mktemp("local")
    rows, _ = run_batch(BatchConfig(six, out, no_training=True, jobs=2, quiet=True))
    assert len(rows) == 6 and not any(r.error for r in rows)
    assert len({r.score for r in rows}) >= 4  # the comparison below can tell submissions apart
    return out


@pytest.fixture(scope="module")
def cluster() -> str:
    with local_cluster(cpus=2) as address:
        yield address


def _same_grades(one: Path, two: Path) -> None:
    assert (one / "gradebook.csv").read_text() == (two / "gradebook.csv").read_text()
    for results in sorted(one.glob("*/results.json")):
        mine = json.loads(results.read_text())
        theirs = json.loads((two / results.parent.name / "results.json").read_text())
        assert [(t["name"], t["score"], t["output"]) for t in mine["tests"]] == [
            (t["name"], t["score"], t["output"]) for t in theirs["tests"]
        ], results.parent.name


def test_a_ray_cluster_grades_like_the_local_pool_and_resume_regrades_nothing(
    six: Path, local_book: Path, cluster: str, tmp_path: Path
) -> None:
    out = tmp_path / "ray"
    config = BatchConfig(six, out, no_training=True, executor="ray", ray_address=cluster, quiet=True)
    rows, summary = run_batch(config)
    assert [r.name for r in rows] == ["ada", "ben", "cy", "dee", "eve", "fay"]
    _same_grades(local_book, out)
    assert f"graded on the Ray cluster at {cluster}" in summary.notes

    before = aged_stamps(out.glob("*/*"))
    again, summary = run_batch(BatchConfig(six, out, no_training=True, executor="ray", ray_address=cluster,
                                           resume=True, quiet=True))  # fmt: skip
    assert "--resume: kept 6 finished grades, graded 0" in summary.notes
    assert stamps(out.glob("*/*")) == before  # not one file rewritten
    assert [(r.name, r.score) for r in again] == [(r.name, r.score) for r in rows]


def test_the_embedded_head_grades_like_the_local_pool(
    six: Path, local_book: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "embedded"
    rows, summary = run_batch(BatchConfig(six, out, no_training=True, executor="ray", quiet=True))
    _same_grades(local_book, out)
    assert any(note.startswith("graded on a Ray head started on this machine") for note in summary.notes)
    # Ray's notices would print into the progress line: none reaches the terminal
    printed = capfd.readouterr()
    assert "Token authentication" not in printed.err + printed.out, printed.err


def _graders_of(filename: str) -> list[tuple[int, int]]:
    """(pid, parent pid) of the grader processes grading a submission file named ``filename`` on a worker."""
    found = []
    for proc in psutil.process_iter(["pid", "ppid", "cmdline"]):
        command = proc.info["cmdline"] or []
        if "--submission" in command:
            path = command[command.index("--submission") + 1 :][:1]
            if path and path[0].endswith(f"/submission/{filename}"):
                found.append((proc.info["pid"], proc.info["ppid"]))
    return found


def _kill_worker_grading(filename: str, spare: set[int], timeout: float = 180.0) -> tuple[int, int]:
    """SIGKILL the Ray worker process running ``filename``'s grade (not one in ``spare``); (worker, grader)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid, worker in _graders_of(filename):
            try:
                is_ray_worker = worker not in spare and psutil.Process(worker).cmdline()[0].startswith(
                    "ray::"
                )
            except (psutil.Error, IndexError):
                continue
            if is_ray_worker:
                os.kill(worker, signal.SIGKILL)
                return worker, pid
        time.sleep(0.05)
    raise AssertionError(f"no Ray worker was grading {filename} within {timeout:g} s")


def _gone(pid: int, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.1)
    return False


def test_killed_workers_are_retried_and_a_submission_lost_twice_gets_its_row(
    cluster: str, tmp_path: Path
) -> None:
    subs = tmp_path / "subs"
    slow = REFERENCE + "\nimport time as _time\n\n_time.sleep(4)  # a wide window to kill the worker in\n"
    write_file(subs / "a_twice.py", slow)
    write_file(subs / "b_once.py", slow)
    write_file(subs / "c_fine.py", REFERENCE)
    out = tmp_path / "out"
    config = BatchConfig(subs, out, no_training=True, executor="ray", ray_address=cluster, quiet=True)
    finished: dict = {}
    batch = threading.Thread(target=lambda: finished.update(rows=run_batch(config)[0]), daemon=True)
    batch.start()

    first, grader = _kill_worker_grading("a_twice.py", spare=set())
    assert _gone(grader), "the grader of a killed worker must die with it"
    _kill_worker_grading("b_once.py", spare=set())
    _kill_worker_grading("a_twice.py", spare={first})  # its retry: the second and last attempt
    batch.join(timeout=300)
    assert not batch.is_alive(), "the batch did not finish"

    rows = {row.name: row for row in finished["rows"]}
    assert sorted(rows) == ["a_twice", "b_once", "c_fine"]  # every row
    assert rows["b_once"].error == "" and rows["b_once"].score == rows["c_fine"].score > 0  # retried, graded
    assert rows["a_twice"].score == 0 and "its Ray task was lost 2 times" in rows["a_twice"].error
    assert "lost 2 times" in (out / "a_twice" / "grader.log").read_text()
    book = (out / "gradebook.csv").read_text()
    assert "a_twice" in book and "lost 2 times" in book
    shutil.rmtree(out)


#: The batch's command line, with the stand-in grader (its outcome chosen by directives in the submission).
DRIVER = (
    "import sys; from grader.tools.batch import main; from tests.support.fake_grader import COMMAND; "
    "sys.exit(main(sys.argv[1:], grader_cmd=COMMAND))"
)


def test_ctrl_c_stops_a_ray_batch_and_resume_grades_the_rest(cluster: str, tmp_path: Path) -> None:
    """The first SIGINT cancels the queued tasks and kills the running ones' workers (their graders die with
    them), writes the gradebook of the grades that finished and exits 130; --resume grades the rest."""
    import csv
    import subprocess
    import sys
    import uuid

    from grader.tools import batch
    from tests.support.fake_grader import COMMAND as FAKE_GRADER
    from tests.support.sandbox import processes_with, trap_and_kill, wait_until

    token = uuid.uuid4().hex[:12]  # in every grader's command line (the submission's file name)
    subs, out = tmp_path / "subs", tmp_path / "out"
    write_file(subs / "a_quick.py", "# fake: pass=forward.zero\n")
    write_file(subs / "b_quick.py", "# fake: pass=forward.zero,forward.direction\n")
    for name in ("c_slow", "d_slow", "e_slow"):
        write_file(subs / f"{name}_{token}.py", "# fake: sleep=600\n")
    argv = [str(subs), "--out", str(out), "--executor", "ray", "--ray-address", cluster, "--quiet"]
    proc = subprocess.Popen(
        [sys.executable, "-c", DRIVER, *argv, "--no-shared-baseline"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        # 2 CPUs: the quick grades finish, then two slow ones run and one waits in the queue.
        assert wait_until(
            lambda: len(processes_with(token)) >= 2 and len(list(out.glob("*_quick/batch.json"))) == 2, 240
        ), "the grades did not start"
        os.kill(proc.pid, signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        gone = wait_until(lambda: not processes_with(token), 30)
        trap_and_kill(token)
    assert proc.returncode == 130, (stdout, stderr)
    assert "Traceback" not in stderr and "--resume" in stderr, stderr
    assert gone, "a grader of the stopped batch is still running"
    with (out / "gradebook.csv").open(newline="", encoding="utf-8") as fh:
        assert [row["submission"] for row in csv.DictReader(fh)] == ["a_quick", "b_quick"]

    for name in ("c_slow", "d_slow", "e_slow"):
        write_file(subs / f"{name}_{token}.py", "# fake: pass=forward.zero\n")
    assert batch.main([*argv, "--no-shared-baseline", "--resume"], grader_cmd=FAKE_GRADER) == 0
    with (out / "gradebook.csv").open(newline="", encoding="utf-8") as fh:
        assert len(list(csv.DictReader(fh))) == 5
