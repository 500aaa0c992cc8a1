"""The rubric a batch's grades use: ``--rubric`` checked before anything is graded, and with
``--hidden-visibility`` the batch's copy of it (``OUT/_shared/rubric.toml``) that says when Gradescope shows the
hidden checks' results ([defaults] hidden_visibility), comments and layout kept."""

from __future__ import annotations

import re

from grader.grading.rubric import DEFAULT_RUBRIC, RubricError, load_rubric
from grader.tools.batch.config import BatchConfig

_TABLE = re.compile(r"\s*\[")


def rubric_problem(config: BatchConfig) -> str:
    """What is wrong with ``--rubric`` (every problem, as the grader would say it), or "": a bad rubric is one
    message at the start, not a row of internal errors per submission."""
    if config.rubric is None:
        return ""
    try:
        load_rubric(config.rubric)
    except RubricError as exc:
        return f"--rubric: {exc}"
    return ""


def with_default(text: str, key: str, value: str) -> str:
    """``text`` (a rubric file) with ``[defaults] key = "value"`` (replaced, or added to the table, or a
    [defaults] table added)."""
    lines = text.splitlines(keepends=True)
    header = next((i for i, line in enumerate(lines) if re.match(r"\s*\[defaults\]\s*(#.*)?$", line)), None)
    setting = f'{key} = "{value}"\n'
    if header is None:
        return text.rstrip("\n") + f"\n\n[defaults]\n{setting}"
    end = next((i for i in range(header + 1, len(lines)) if _TABLE.match(lines[i])), len(lines))
    for i in range(header + 1, end):
        if re.match(rf"\s*{re.escape(key)}\s*=", lines[i]):
            lines[i] = setting
            return "".join(lines)
    lines.insert(header + 1, setting)
    return "".join(lines)


def write_rubric_copy(config: BatchConfig) -> None:
    """With ``--hidden-visibility``, write the batch's rubric (:meth:`BatchConfig.rubric_file`) and check it."""
    copy = config.rubric_file()
    if config.hidden_visibility is None or copy is None:
        return
    source = config.rubric if config.rubric is not None else DEFAULT_RUBRIC
    copy.parent.mkdir(parents=True, exist_ok=True)
    text = with_default(source.read_text(encoding="utf-8"), "hidden_visibility", config.hidden_visibility)
    copy.write_text(text, encoding="utf-8")
    load_rubric(copy)  # the copy grades exactly as its source, but for the visibility: anything else is a bug
