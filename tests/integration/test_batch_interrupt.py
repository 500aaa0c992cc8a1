"""Ctrl-C on a local batch (grader/tools/batch/interrupt.py): the first SIGINT ends the running grades with their
process trees, starts no queued one, writes the gradebook of the grades that finished, says how to --resume, and
exits 130 without a traceback; --resume then grades only the rest. With the stand-in grader (fast, its outcome
chosen by directives in the submission); the same on Ray is in test_batch_ray.py."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from grader.tools import batch
from tests.support.fake_grader import COMMAND as FAKE_GRADER
from tests.support.files import aged_stamps, stamps, write_file
from tests.support.sandbox import processes_with, trap_and_kill, wait_until

REPO = Path(__file__).resolve().parents[2]
#: The batch's command line, with the stand-in grader.
DRIVER = (
    "import sys; from grader.tools.batch import main; from tests.support.fake_grader import COMMAND; "
    "sys.exit(main(sys.argv[1:], grader_cmd=COMMAND))"
)


def gradebook(out: Path) -> dict[str, dict[str, str]]:
    with (out / "gradebook.csv").open(newline="", encoding="utf-8") as fh:
        return {row["submission"]: row for row in csv.DictReader(fh)}


def _alive(pid: int) -> bool:
    """Running (not gone, not a zombie)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in "ZX"
    except (OSError, IndexError):
        return False


def test_ctrl_c_stops_a_local_batch_and_resume_grades_the_rest(tmp_path: Path) -> None:
    subs, out = tmp_path / "subs", tmp_path / "out"
    write_file(subs / "a_quick.py", "# fake: pass=forward.zero\n")
    write_file(subs / "b_quick.py", "# fake: pass=forward.zero,forward.direction\n")
    pids = {name: tmp_path / f"{name}.pid" for name in ("c_slow", "d_slow")}
    for (
        name,
        pid_file,
    ) in pids.items():  # each leaves a detached grandchild behind, then grades for 10 minutes
        write_file(subs / f"{name}.py", f"# fake: daemon={pid_file}\n# fake: sleep=600\n")
    write_file(subs / "e_queued.py", "# fake: sleep=600\n")
    argv = [str(subs), "--out", str(out), "--jobs", "2", "--no-shared-baseline", "--quiet"]
    proc = subprocess.Popen(
        [sys.executable, "-c", DRIVER, *argv],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        # The quick grades are done and both slow ones run (their grandchildren are up): then Ctrl-C.
        # a pid file exists a moment before its number is in it (the fake daemon writes it after creating it)
        assert wait_until(lambda: all(p.exists() and p.read_text().strip() for p in pids.values()), 120), (
            "the slow grades never started"
        )
        assert (out / "a_quick" / "batch.json").exists() and (out / "b_quick" / "batch.json").exists()
        daemons = [int(p.read_text()) for p in pids.values()]
        os.kill(proc.pid, signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        trap_and_kill(str(subs))

    assert proc.returncode == 130, (stdout, stderr)
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
    assert "--resume" in stderr and "2 submissions graded" in stderr, stderr
    # Nothing of the stopped grades runs on: neither their graders nor what those left behind.
    assert not processes_with(str(subs)), processes_with(str(subs))
    assert not any(_alive(pid) for pid in daemons)
    # The gradebook, summary and charts of what finished; the rest are left for --resume.
    book = gradebook(out)
    assert list(book) == ["a_quick", "b_quick"]
    assert (book["a_quick"]["score"], book["b_quick"]["score"]) == ("2", "5")
    assert (out / "summary.md").exists() and (out / "score_histogram.png").exists()
    assert "3 of 5 submissions not graded" in (out / "summary.md").read_text()
    assert not (out / "e_queued").exists()  # queued: never started
    assert not (out / "c_slow" / "batch.json").exists()  # stopped: not marked done

    # --resume grades the three others (quick now) and keeps the two finished grades untouched.
    for name in ("c_slow", "d_slow", "e_queued"):
        write_file(subs / f"{name}.py", "# fake: pass=forward.zero\n")
    before = aged_stamps([out / "a_quick" / "results.json", out / "b_quick" / "results.json"])
    assert batch.main([*argv, "--resume"], grader_cmd=FAKE_GRADER) == 0
    assert stamps(before) == before
    assert list(gradebook(out)) == ["a_quick", "b_quick", "c_slow", "d_slow", "e_queued"]


def test_a_stop_request_records_no_row_for_the_grades_it_ends(tmp_path: Path) -> None:
    """In process (what the signal handler leads to): a stop during the grades leaves only finished rows."""
    subs, out = tmp_path / "subs", tmp_path / "out"
    write_file(subs / "a_quick.py", "# fake: pass=forward.zero\n")
    write_file(subs / "b_slow.py", "# fake: sleep=600\n")
    stop = batch.Stop()

    def stop_once_running() -> None:
        assert wait_until(lambda: processes_with(str(subs / "b_slow.py")), 60)
        stop.request()

    class StopWhenSlowStarts(batch.BatchEvents):
        def started(self, name: str) -> None:
            super().started(name)
            if name == "b_slow":  # the grader starts after this returns: wait for it elsewhere
                threading.Thread(target=stop_once_running, daemon=True).start()

    config = batch.BatchConfig(subs, out, jobs=1, quiet=True, shared_baseline=False)
    rows, summary = batch.run_batch(config, FAKE_GRADER, events=StopWhenSlowStarts(), stop=stop)
    assert [r.name for r in rows] == ["a_quick"] and summary.submissions == 1
    assert list(gradebook(out)) == ["a_quick"]
    assert not processes_with(str(subs / "b_slow.py"))
