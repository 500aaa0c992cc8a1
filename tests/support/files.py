"""Writing test inputs: one helper for every test module that lays out files (submissions, class folders)."""

from __future__ import annotations

from pathlib import Path


def write_file(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` (UTF-8), making its folders; return ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
