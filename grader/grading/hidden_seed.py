"""Keeping a hidden grading seed out of what students see (:func:`hide_seed`), for the reporters that publish
results (Gradescope, GitHub Classroom).

Separate from :mod:`grader.grading.results`: it scrubs any JSON-like tree, not only results, and is the one
place that decides what counts as mentioning the seed.
"""

from __future__ import annotations

import re
from typing import Any


def hide_seed(data: Any, seed: int) -> Any:
    """Keep a hidden grading seed out of a report students see (the instructor's log still has it).

    Drops every key whose name mentions "seed" and replaces the seed in strings: after the word "seed" always,
    anywhere when it has 6 or more digits (a short one like 7 would also match unrelated numbers).
    """
    token = re.escape(str(seed))
    labelled = re.compile(rf"(?i)(seed\W{{0,3}}){token}(?!\d)")
    bare = re.compile(rf"(?<!\d){token}(?!\d)") if len(str(seed)) >= 6 else None

    def scrub(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: scrub(v) for k, v in value.items() if not (isinstance(k, str) and "seed" in k.lower())}
        if isinstance(value, list):
            return [scrub(v) for v in value]
        if isinstance(value, str):
            value = labelled.sub(r"\1<hidden>", value)
            return bare.sub("<hidden>", value) if bare is not None else value
        return value

    return scrub(data)
