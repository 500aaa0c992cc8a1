"""One sanitiser for every text a submission can influence on its way to people or to parsers.

The submission controls exception messages, what it prints, and (through them) parts of the feedback. Those
strings reach a terminal (the rich report, batch summaries), ``results.json`` (read by Gradescope, ``jq`` and
strict JSON parsers), JUnit XML and CSV/Markdown files. :func:`clean_text` makes a string safe for all of them:

* ANSI/VT escape sequences are removed whole (``"\\x1b[2J"`` clears a screen; removing only the ESC byte would
  leave ``"[2J"`` behind), as are the remaining C0 and C1 control characters and DEL. Newline and tab stay;
  a carriage return becomes a newline, so text cannot overwrite the line before it and nothing is hidden;
* bidirectional overrides and isolates (U+202A-U+202E, U+2066-U+2069) are removed: they make text display in a
  different order than it reads;
* unpaired UTF-16 surrogates (``"\\ud800"``; unencodable, rejected by strict JSON parsers) become U+FFFD, the
  replacement character; a high + low surrogate pair is joined into the character it encodes. The
  noncharacters U+FFFE and U+FFFF, which XML cannot carry, are removed;
* the length is capped (:data:`MAX_TEXT_CHARS`), with a note saying how much was cut.

It is applied once, where results are built (:mod:`grader.grading.results`: every text field of a result is cleaned
when it is set, and the serialised tree again), so the report, JSON, XML and batch writers all see clean text.
"""

from __future__ import annotations

import math
import re
from typing import Any

#: Longest text kept in one field (a test's output, the overall output ...). Real feedback is a few KB; the
#: cap bounds results.json and the terminal whatever a submission manages to get into a message.
MAX_TEXT_CHARS = 50_000

_ESCAPE_SEQUENCE = re.compile(
    r"""
      \x1b\[[0-?]*[ -/]*[@-~]              # CSI: colours, cursor movement, clearing the screen
    | \x9b[0-?]*[ -/]*[@-~]                # the same with the one-character C1 introducer
    | \x1b\][^\x07\x1b]*(?:\x07|\x1b\\)     # OSC: window title, hyperlinks (ended by BEL or ST)
    | \x1b[PX^_][^\x1b]*\x1b\\              # DCS, SOS, PM, APC strings (ended by ST)
    | \x1b[ -/]*[0-~]                      # any other escape (charset selection, reset, ...)
    """,
    re.VERBOSE,
)
_NOTE_ROOM = 40  # characters kept free for the "[... N more characters cut]" note
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ufffe\uffff]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(text: str, limit: int | None = MAX_TEXT_CHARS) -> str:
    """``text`` without escape sequences, control characters (but newline and tab) or lone surrogates, cut to
    ``limit`` characters (None: no cap). Idempotent; fast on text that is already clean."""
    if not isinstance(text, str):
        raise TypeError(f"clean_text expects a str, not {type(text).__name__}")
    cut = 0
    if limit is not None and len(text) > limit:
        # Cut first: the work stays bounded for a 16 MB message (a sequence split by the cut is removed below).
        # Room is kept for the note, so the result fits the limit and cleaning it again changes nothing.
        keep = max(0, limit - _NOTE_ROOM)
        text, cut = text[:keep], len(text) - keep
    if _SURROGATE.search(text):
        text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    text = _ESCAPE_SEQUENCE.sub("", text)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    if cut:
        text += f"\n[... {cut} more characters cut]"
    return text


def clean_tree(value: Any, limit: int | None = MAX_TEXT_CHARS) -> Any:
    """A JSON-like tree (dicts, lists, tuples, scalars) with every string, keys included, passed through
    :func:`clean_text`, and every non-finite float (nan, inf: a ratio over a control that stayed at 0, a run
    that produced nan) made None, so the tree is strict JSON (null) as Gradescope and jq read it; other values
    are returned as they are."""
    if isinstance(value, str):
        return clean_text(value, limit)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {
            (clean_text(k, limit) if isinstance(k, str) else k): clean_tree(v, limit)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [clean_tree(v, limit) for v in value]
    return value
