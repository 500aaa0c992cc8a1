"""Finding the submissions in a folder: one entry per student, a reason when one cannot be graded."""

from __future__ import annotations

import re
from pathlib import Path

from grader.grading.locate import locate_submission
from grader.tools.batch.config import RESERVED, Entry

# ---------------------------------------------------------------------------------------------------------------
# Finding submissions
# ---------------------------------------------------------------------------------------------------------------

_UNSAFE = re.compile(r"[^A-Za-z0-9._@+-]+")


def _safe_name(name: str) -> str:
    safe = _UNSAFE.sub("_", name).strip("._") or "submission"
    return safe if safe not in RESERVED else f"{safe}_submission"


def discover(submissions: Path, out: Path | None = None) -> list[Entry]:
    """Every entry of ``submissions`` (sorted by name); hidden files and ``out`` itself are skipped."""
    out_resolved = out.resolve() if out is not None else None
    entries: list[Entry] = []
    taken: set[str] = set()
    for path in sorted(submissions.iterdir(), key=lambda p: p.name):
        if path.name.startswith((".", "__")) or path.name in ("Thumbs.db",):
            continue
        if out_resolved is not None and not path.is_symlink() and path.resolve() == out_resolved:
            continue
        stem = path.name[:-3] if path.name.endswith(".py") and not path.is_dir() else path.name
        name = _safe_name(stem)
        if name in taken:  # alice/ and alice.py: keep both, distinguishably
            name = _safe_name(path.name)
        suffix = 2
        base = name
        while name in taken:
            name, suffix = f"{base}-{suffix}", suffix + 1
        taken.add(name)
        located = locate_submission(path)
        entries.append(Entry(name, path, located.path, located.error, located.note))
    return entries
