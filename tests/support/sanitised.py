"""Hostile text and the assertions that output is clean of it (grader/grading/sanitise.py), for the sanitiser's
unit tests and the grade of a hostile submission through the CLI."""

from __future__ import annotations

import json
import shutil
import subprocess

from tests.support.ci import skip_unless_required

#: What a hostile message can carry: clear the screen and turn red, a window title, a lone surrogate, NUL,
#: a carriage return that overwrites the line, a C1 CSI, a bidi override, and a noncharacter.
INJECTION = (
    "\x1b[2J\x1b[31mRED\x1b[0m \x1b]0;pwned\x07 lone\ud800 nul\x00 passed\rFAILED"
    " c1\x9b31m bidi\u202egnp.exe nonchar\uffff end"
)
BIG = 16 << 20  # a 16 MB message


def assert_clean(text: str) -> None:
    assert not any(0xD800 <= ord(c) <= 0xDFFF for c in text), "a surrogate is left"
    bad = [c for c in text if (ord(c) < 0x20 and c not in "\n\t") or 0x7F <= ord(c) <= 0x9F]
    assert not bad, f"control characters left: {bad!r}"
    assert not set(text) & {"\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\ufffe", "\uffff"}
    text.encode("utf-8")  # strict: raises on anything unencodable


def assert_strict_json(text: str) -> dict:
    data = json.loads(text, strict=True)  # strict=True: no raw control characters inside strings
    json.dumps(data, ensure_ascii=True).encode("ascii")
    json.dumps(data, ensure_ascii=False).encode("utf-8")  # raises on a lone surrogate
    return data


def jq_accepts(text: str, program: str) -> None:
    """A second, independent JSON parser reads the file: ``jq -e PROGRAM`` holds. Without jq: skipped (after
    every other assertion of the test), except in CI (``GRADER_REQUIRE_JQ=1``), where it fails."""
    if shutil.which("jq") is None:
        skip_unless_required(
            "GRADER_REQUIRE_JQ", "jq is not installed: results.json not read by a second parser"
        )
    jq = subprocess.run(["jq", "-e", program], input=text, text=True, capture_output=True)
    assert jq.returncode == 0, jq.stderr
