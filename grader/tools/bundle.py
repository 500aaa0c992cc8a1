"""Shared by the instructor tools that package the repository (the handout, the Gradescope bundle): which files
a checkout has, and a reproducible zip of them."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import zipfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

# A zip entry's timestamp: fixed, so the same sources give a byte-identical zip.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def git_files(repo: Path) -> list[str] | None:
    """Tracked and untracked-but-not-ignored files, or None when ``repo`` is not a usable git checkout."""
    if not (repo / ".git").exists() or shutil.which("git") is None:
        return None
    try:
        proc = subprocess.run(
            ["git", "-C", str(repo), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            capture_output=True,
            check=True,
            timeout=60,
        )
    except (subprocess.SubprocessError, OSError):
        return None
    return [p for p in proc.stdout.decode("utf-8", "surrogateescape").split("\0") if p]


def walk(root: Path, start: str, excluded: Callable[[str], bool]) -> Iterable[str]:
    """Files below ``root/start`` as repository-relative POSIX paths, pruning excluded folders."""
    base = root / start
    if base.is_file():
        yield start
        return
    for dirpath, dirs, files in os.walk(base):
        rel_dir = Path(dirpath).relative_to(root).as_posix()
        dirs[:] = sorted(d for d in dirs if not excluded(f"{rel_dir}/{d}"))
        for name in sorted(files):
            yield f"{rel_dir}/{name}"


def write_zip(folder: Path, zip_path: Path, files: Sequence[str], prefix: str | None = None) -> None:
    """A deterministic zip of ``files`` (relative to ``folder``): entries under ``prefix/`` (default: the
    folder's name; "" for the zip's root), sorted, fixed timestamps, executable bits kept."""
    prefix = folder.name if prefix is None else prefix
    tmp = zip_path.with_name(zip_path.name + ".part")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for rel in sorted(files):
            path = folder / rel
            info = zipfile.ZipInfo(f"{prefix}/{rel}" if prefix else rel, date_time=ZIP_EPOCH)
            mode = 0o755 if os.access(path, os.X_OK) else 0o644
            info.external_attr = (stat.S_IFREG | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, path.read_bytes())
    os.replace(tmp, zip_path)
