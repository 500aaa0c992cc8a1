"""A real Ray cluster on this machine for the batch's Ray executor: ``ray start --head`` on 127.0.0.1 with a
given number of CPUs, and ``ray stop`` afterwards; and :func:`require_ray`, which imports Ray or skips, except
in CI (``GRADER_REQUIRE_RAY=1``), where a missing Ray fails instead."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

from tests.support.ci import skip_unless_required


def require_ray() -> ModuleType:
    try:
        import ray
    except ImportError:
        # CI installs the cluster extra: there a missing Ray is a broken environment, not a skip
        skip_unless_required("GRADER_REQUIRE_RAY", "Ray is not installed (pip install .[cluster])")
    return ray


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ray_cli() -> str:
    beside = Path(sys.executable).with_name("ray")  # the Ray of this interpreter's environment
    return str(beside) if beside.exists() else "ray"


@contextmanager
def local_cluster(cpus: int = 2) -> Iterator[str]:
    """A Ray head on 127.0.0.1 with ``cpus`` CPUs and no dashboard; yields its address."""
    port = free_port()
    # A test cluster of this machine: no token (a driver connects without one unless told RAY_AUTH_MODE=token).
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="disabled")
    command = [_ray_cli(), "start", "--head", "--num-cpus", str(cpus), "--port", str(port),
               "--node-ip-address", "127.0.0.1", "--include-dashboard", "false", "--disable-usage-stats"]  # fmt: skip
    started = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180, check=False)
    try:
        if started.returncode != 0:
            raise RuntimeError(
                f"ray start failed ({started.returncode}):\n{started.stdout}\n{started.stderr}"
            )
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run(
            [_ray_cli(), "stop", "--force"], env=env, capture_output=True, timeout=120, check=False
        )
