"""Running a submission safely (docs/design.md, "Isolation").

* :mod:`.submission`: :class:`SandboxedSubmission`, the production :class:`~grader.contract.Submission`: starts
  the worker, sends it calls, watches its memory and time, restarts it between checks; its parts: :mod:`.launch`
  (starting the worker: environment, command line, what happens between fork and exec, the handshake),
  :mod:`.channel` (the pipe exchange and how a worker that closed it ended), :mod:`.isolation_report` (which
  isolation holds, in words), :mod:`.errors` (the sandbox's own errors);
* :mod:`.policy`: what the worker may do: :class:`SandboxConfig` (limits), the namespaces mode (bubblewrap) and
  what the fallback mode lets it read (Landlock);
* :mod:`.protocol`: the wire protocol between the grader and the worker (one JSON line per request and reply,
  replies untrusted);
* :mod:`.worker`: the script that runs inside the sandbox, next to the submission (stdlib only);
* :mod:`.proctree`: finding and killing process trees, the resident-memory watch (also used by batch grading
  and the training lanes); :mod:`.proctable` reads the process table for it;
* :mod:`.cgroup`: a cgroup per sandbox (v2 where delegated, else v1): memory that counts shared memory, tasks,
  a CPU quota, and a kill nothing escapes.
"""

from grader.sandbox.policy import (
    ISOLATION_CHOICES,
    REPO_ROOT,
    Isolation,
    NamespaceLauncher,
    SandboxConfig,
    namespace_launcher,
    readable_paths,
)
from grader.sandbox.submission import SandboxedSubmission, SandboxError, SubmissionFileError

__all__ = [
    "ISOLATION_CHOICES",
    "REPO_ROOT",
    "Isolation",
    "NamespaceLauncher",
    "SandboxConfig",
    "SandboxError",
    "SandboxedSubmission",
    "SubmissionFileError",
    "namespace_launcher",
    "readable_paths",
]
