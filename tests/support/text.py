"""Reading feedback text in assertions."""

from __future__ import annotations


def flat(text: str) -> str:
    """``text`` on one line, single-spaced: the report and the feedback wrap, an assertion should not care where."""
    return " ".join(text.split())
