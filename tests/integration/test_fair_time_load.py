"""Fair time under real load (issue 18): the run-queue wait :class:`~grader.grading.budget.RunQueueWait` reads is
what CPU-spinning neighbour processes took from this thread. It starts those processes, so it is an integration
test; the budget's arithmetic on a fake wait is in ``tests/unit/test_fair_time.py``."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import psutil
import pytest

from grader.grading.budget import RunQueueWait
from tests.support.sandbox import wait_until


@pytest.mark.skipif(
    not os.path.exists(f"/proc/self/task/{threading.get_native_id()}/schedstat"), reason="no schedstat"
)
def test_the_run_queue_wait_counts_what_a_neighbour_took() -> None:
    """This thread and two spinning processes on one CPU: about two thirds of the wall time is waiting, which
    the budget gives back; alone on its CPU it is next to nothing (asserted with wide margins)."""
    if not hasattr(os, "sched_setaffinity"):
        pytest.skip("no CPU affinity here")
    cpu = min(os.sched_getaffinity(0))
    before = os.sched_getaffinity(0)
    spin = "import os, sys\nos.sched_setaffinity(0, {int(sys.argv[1])})\nwhile True:\n    pass\n"
    hogs = [subprocess.Popen([sys.executable, "-c", spin, str(cpu)]) for _ in range(2)]
    try:
        os.sched_setaffinity(0, {cpu})
        # the hogs are spinning on that CPU
        assert wait_until(lambda: all(psutil.Process(h.pid).cpu_times().user > 0.05 for h in hogs), 30)
        wait = RunQueueWait()
        start, began = wait(), time.monotonic()
        while time.monotonic() - began < 1.0:
            pass
        waited = wait() - start
    finally:
        os.sched_setaffinity(0, before)
        for hog in hogs:
            hog.kill()
            hog.wait()
    assert waited > 0.3, waited
