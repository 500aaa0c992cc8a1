"""Which isolation holds, in words: the layers the grader set up combined with those the worker reports (the
report's line, ``results.json``'s ``sandbox``) and which limit holds for each resource. A part of
:class:`~grader.sandbox.submission.SandboxedSubmission`."""

from __future__ import annotations

import os

from grader.sandbox.policy import gib


class IsolationReport:
    """The isolation's description, a part of :class:`~grader.sandbox.submission.SandboxedSubmission` (a mixin: it
    reads that class's state)."""

    def _describe_isolation(self, reply: dict) -> None:
        """Combine what the grader set up with what the worker reports it applied (sanitised: untrusted)."""
        cfg = self.config
        layers = [str(x)[:120] for x in reply["layers"][:8]]
        abi = reply.get("landlock_abi")
        self.landlock_abi = abi if type(abi) is int and 0 <= abi < 100 else 0
        namespaces = self._launcher is not None
        tasks = cfg.max_processes is not None and (namespaces or os.geteuid() != 0)
        held = self.limits_in_force()
        # the resident-memory watch runs in any case (with a cgroup too: it names what it measured)
        limits = (
            f"limits: {gib(cfg.memory_bytes)} resident memory, {cfg.cpu_seconds} s CPU, "
            f"{gib(cfg.file_bytes)} per file, {cfg.open_files} open files"
        )
        if tasks:
            limits += f", {cfg.max_processes} tasks"
        all_layers = []
        if namespaces:
            user = "unused uid" if self._launcher.drop_uid else "user"
            all_layers.append(
                f"namespaces ({self._launcher.version}: pid, net, ipc, uts, mount, {user}; read-only root, "
                f"/tmp {gib(cfg.tmpfs_bytes)})"
            )
        all_layers += layers
        if self._cgroup is not None:
            all_layers.append(
                f"{self._cgroup.host.describe()} ({gib(cfg.memory_bytes)} memory incl. shared memory and /tmp, "
                f"{held['tasks']}, {held['cpu']})"
            )
        all_layers.append(limits)
        if self._cgroup is None and not namespaces:
            all_layers.append("process-tree sweep")
        kind = "namespaces" if namespaces else "landlock" if self.landlock_abi else "none"
        self.isolation = " + ".join(all_layers)
        reasons = [
            r
            for r in (self._fallback_reason, self._cgroup_reason and f"no cgroup: {self._cgroup_reason}")
            if r
        ]
        if reasons:
            self.isolation += f" [{'; '.join(reasons)}]"
        self.sandbox_info = {
            "isolation": kind,
            "layers": all_layers,
            "landlock_abi": self.landlock_abi,
            "memory_limit_bytes": cfg.memory_bytes,
            "cgroup": None
            if self._cgroup is None
            else {
                "version": self._cgroup.host.version,
                "memory_bytes": cfg.memory_bytes,
                "max_tasks": cfg.max_processes,
                "cpus": cfg.cpus if self._cgroup.cpu_limited else None,
            },
            "limits_in_force": held,
        }
        if self._fallback_reason:
            self.sandbox_info["fallback_reason"] = self._fallback_reason
        if self._cgroup_reason:
            self.sandbox_info["cgroup_reason"] = self._cgroup_reason

    def limits_in_force(self) -> dict[str, str]:
        """Which limit holds for each resource, in words (results.json's ``sandbox.limits_in_force``)."""
        cfg, group = self.config, self._cgroup
        namespaces = self._launcher is not None
        if group is not None:
            memory = (
                f"{gib(cfg.memory_bytes)}, every page counted (cgroup: shared memory, memfds, /tmp included)"
            )
        else:
            memory = (
                f"{gib(cfg.memory_bytes)} resident, mapped pages only (polled; unmapped memfds not counted)"
            )
        if group is not None and cfg.max_processes is not None:
            tasks = f"{cfg.max_processes} tasks (cgroup)"
        elif cfg.max_processes is not None and (namespaces or os.geteuid() != 0):
            tasks = f"{cfg.max_processes} tasks (RLIMIT_NPROC)"
        else:
            tasks = "no task limit"
        cpu = (
            f"{cfg.cpus:g} CPU (cgroup quota)" if group is not None and group.cpu_limited else "no CPU quota"
        )
        if group is not None:
            kill = "by cgroup (frozen, then killed)" if group.host.version == 1 else "by cgroup (cgroup.kill)"
        elif namespaces:
            kill = "with the PID namespace"
        else:
            kill = "process-tree sweep"
        return {"memory": memory, "tasks": tasks, "cpu": cpu, "kill": kill}
