"""Which cgroup the sandbox gets (grader/sandbox/cgroup.py), decided from the kernel's files: here on a fake
cgroup v2 tree in a temporary folder (this machine's own hierarchy is v1; the real groups are tested in
tests/quality/test_isolation.py)."""

from __future__ import annotations

import os
from pathlib import Path

from grader.sandbox.cgroup import _v2_parent


def _group(root: Path, controllers: str, enabled: str = "", procs: str = "") -> Path:
    group = root / "user.slice" / "grade.scope"
    group.mkdir(parents=True)
    (group / "cgroup.controllers").write_text(controllers + "\n")
    (group / "cgroup.subtree_control").write_text(enabled + "\n")
    (group / "cgroup.procs").write_text(procs or f"{os.getpid()}\n")
    return group


def test_a_group_that_enables_the_controllers_is_used_as_it_is(tmp_path: Path) -> None:
    group = _group(tmp_path, "cpu memory pids", enabled="memory pids", procs="1\n")
    assert _v2_parent(str(tmp_path), "/user.slice/grade.scope") == (str(group), "")


def test_a_group_delegated_to_the_grader_alone_gets_a_leaf_for_it(tmp_path: Path) -> None:
    """Controllers available but not enabled, the grader its only process: it moves into a leaf of its own and
    enables them (v2 allows no process in a group that enables controllers for its children)."""
    group = _group(tmp_path, "cpu io memory pids")
    leaf = group / f"grader-main-{os.getpid()}"
    leaf.mkdir()  # (the kernel makes a new group's files; a plain folder does not)
    (leaf / "cgroup.procs").write_text("")
    assert _v2_parent(str(tmp_path), "/user.slice/grade.scope") == (str(group), "")
    assert (leaf / "cgroup.procs").read_text() == str(os.getpid())
    assert (group / "cgroup.subtree_control").read_text() == "+memory +pids +cpu"


def test_a_group_shared_with_other_processes_is_left_alone(tmp_path: Path) -> None:
    group = _group(tmp_path, "cpu memory pids", procs=f"{os.getpid()}\n1234\n")
    directory, why = _v2_parent(str(tmp_path), "/user.slice/grade.scope")
    assert directory is None and "other processes" in why and "Delegate=yes" in why
    assert not any(p.name.startswith("grader-main") for p in group.iterdir())  # nothing moved


def test_without_the_memory_controller_there_is_no_v2_group(tmp_path: Path) -> None:
    _group(tmp_path, "cpu pids")
    directory, why = _v2_parent(str(tmp_path), "/user.slice/grade.scope")
    assert directory is None and "memory not available" in why
