"""Writing test inputs: one helper for every test module that lays out files (submissions, class folders)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path


def write_file(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` (UTF-8), making its folders; return ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


#: A time no file a test writes can have (2001-09-09): a file set to it shows any later write at once, without
#: waiting for the clock to move past the file system's timestamp granularity.
LONG_AGO_NS = 1_000_000_000 * 10**9


def aged_stamps(paths: Iterable[Path]) -> dict[Path, tuple[int, int]]:
    """Set each file's times to :data:`LONG_AGO_NS`; return its ``(inode, mtime_ns)``, which any later write of
    the file changes (in place: the time; replaced, as atomic writes do: the inode too). Compare with
    :func:`stamps`."""
    paths = list(paths)
    for path in paths:
        os.utime(path, ns=(LONG_AGO_NS, LONG_AGO_NS))
    return stamps(paths)


def stamps(paths: Iterable[Path]) -> dict[Path, tuple[int, int]]:
    """Each file's ``(inode, mtime_ns)``."""
    return {path: (path.stat().st_ino, path.stat().st_mtime_ns) for path in paths}
