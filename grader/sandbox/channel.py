"""The grader's side of the pipe pair to the worker: writing a request and reading one size-capped reply line
against a deadline, describing how a worker that closed the channel ended (memory, a signal, an exit), and what
the submission printed. A part of :class:`~grader.sandbox.submission.SandboxedSubmission`."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import time

from grader.contract import CallOutcome
from grader.sandbox.policy import SIGNAL_EXIT_BASE, gib


def _describe_exit(returncode: int | None, namespaces: bool = False) -> str:
    if returncode is None:
        return "it stopped answering"
    if namespaces and returncode > SIGNAL_EXIT_BASE:  # bwrap reports a worker killed by signal N as 128 + N
        returncode = SIGNAL_EXIT_BASE - returncode
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        hint = {
            "SIGXCPU": " (CPU time limit exceeded)",
            "SIGKILL": " (killed: memory or another limit?)",
            "SIGSEGV": " (segmentation fault)",
        }.get(name, "")
        return f"it was killed by {name}{hint}"
    return f"it exited with status {returncode} (os._exit, or an exit from a thread or native code)"


class WorkerChannel:
    """The exchange with the worker, a part of :class:`~grader.sandbox.submission.SandboxedSubmission` (a mixin:
    it works on that class's state)."""

    def _exchange(self, request: bytes, deadline: float) -> bytes | CallOutcome:
        view = memoryview(request)
        while view:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return CallOutcome("timeout")
            _r, writable, _x = select.select([], [self._request_fd], [], remaining)
            if writable:
                try:
                    view = view[os.write(self._request_fd, view) :]
                except BlockingIOError:
                    continue
                except OSError:
                    return self._dead()
        return self._read_line(deadline)

    def _read_line(self, deadline: float) -> bytes | CallOutcome:
        limit = self.config.max_reply_bytes
        while b"\n" not in self._buffer[: limit + 1]:
            if len(self._buffer) > limit:  # not read further, not parsed: the worker is killed
                return CallOutcome("invalid", None, f"it sent a reply larger than {gib(limit)}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return CallOutcome("timeout")
            readable, _w, _x = select.select([self._reply_fd], [], [], remaining)
            if not readable:
                continue
            try:
                chunk = os.read(self._reply_fd, 1 << 16)
            except BlockingIOError:
                continue
            if not chunk:
                return self._dead()
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        if len(line) > limit:
            return CallOutcome("invalid", None, f"it sent a reply larger than {gib(limit)}")
        return line

    def _dead(self) -> CallOutcome:
        """The channel closed: describe how the worker ended (it normally exits right after)."""
        returncode = None
        if self._proc is not None:
            try:
                returncode = self._proc.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                returncode = None
        watch = self._watch
        if self._cgroup is not None and self._cgroup.oom_kills() > self._oom_base:
            how = (
                f"it used more than {gib(self.config.memory_bytes)} of memory (the sandbox's limit, which counts "
                "shared memory, memfds and files in /tmp too) and was stopped"
            )
        elif watch is not None and watch.exceeded is not None:
            how = (
                f"it used more than {gib(watch.limit_bytes)} of memory (the sandbox's limit; measured "
                f"{gib(watch.exceeded)} resident) and was stopped"
            )
        elif returncode is not None:
            how = _describe_exit(returncode, namespaces=self._launcher is not None)
        else:
            how = "it closed the grader's channel"
        return CallOutcome("crashed", None, how)

    # -- captured output ------------------------------------------------------------------------------------

    def _log_tail(self, name: str, limit: int) -> str:
        if self._tmp is None:
            return ""
        try:
            with open(self._tmp / "logs" / name, "rb") as f:
                data = f.read(limit + 1)
        except OSError:
            return ""
        text = data[:limit].decode("utf-8", "replace")
        return text + ("\n[... truncated]" if len(data) > limit else "")

    def captured_output(self) -> str:
        """The beginning of what the submission printed (stdout, then stderr), truncated."""
        limit = self.config.output_excerpt_bytes
        parts = []
        for name in ("stdout.txt", "stderr.txt"):
            text = self._log_tail(name, limit)
            if text.strip():
                parts.append(f"[{name.split('.')[0]}]\n{text.rstrip()}")
        return "\n".join(parts)
