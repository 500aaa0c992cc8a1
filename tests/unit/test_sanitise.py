"""Sanitised output (grader/grading/sanitise.py): text a submission controls cannot hijack the terminal, break strict
JSON parsers or XML, or grow without bound: at unit level, and through the results objects and writers. From a real
submission through the sandbox and the CLI: tests/integration/test_sanitise_cli.py."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from grader.grading.report import render
from grader.grading.results import GradingResults, TestResult
from grader.grading.sanitise import MAX_TEXT_CHARS, clean_text, clean_tree
from tests.support.sanitised import BIG, INJECTION
from tests.support.sanitised import assert_clean as _assert_clean
from tests.support.sanitised import assert_strict_json as _assert_strict_json
from tests.support.sanitised import jq_accepts as _jq_accepts

# --- the function ------------------------------------------------------------------------------------------


def test_escape_sequences_are_removed_whole() -> None:
    assert clean_text("\x1b[2J\x1b[31mred\x1b[0m") == "red"
    assert clean_text("a\x1b]0;title\x07b\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\c") == "ablinkc"
    assert clean_text("\x9b31mC1 red") == "C1 red"
    assert clean_text("\x1bPq#0;2;0;0;0\x1b\\sixel") == "sixel"
    assert clean_text("unterminated \x1b]0;title") == "unterminated 0;title"  # the ESC goes, the text stays
    assert clean_text("\x1b(Bcharset \x1b7saved") == "charset saved"
    assert clean_text("ends with ESC\x1b") == "ends with ESC"


def test_control_characters_go_but_newlines_and_tabs_stay() -> None:
    assert clean_text("a\x00b\x07c\x08d\x7fe\x85f\x0cg\x0bh") == "abcdefgh"
    assert clean_text("line 1\n\tindented") == "line 1\n\tindented"
    # a carriage return cannot overwrite what came before: it becomes a line break, nothing is hidden
    assert clean_text("passed\rFAILED") == "passed\nFAILED"
    assert clean_text("windows\r\nline") == "windows\nline"


def test_surrogates_and_unicode() -> None:
    assert clean_text("lone\ud800 and \udc00") == "lone\ufffd and \ufffd"
    assert clean_text("pair \ud83d\ude00") == "pair \U0001f600"  # a pair is the character it encodes
    assert (
        clean_text("caf\u00e9 \u2013 \u4e2d\u6587 \U0001f600") == "caf\u00e9 \u2013 \u4e2d\u6587 \U0001f600"
    )
    assert clean_text("\u202eevil\u202c \u2066iso\u2069") == "evil iso"
    assert clean_text("x\ufffey\uffffz") == "xyz"


def test_length_is_capped_with_a_note() -> None:
    text = clean_text("x" * BIG)
    assert len(text) <= MAX_TEXT_CHARS
    kept = text.split("\n")[0]
    assert set(kept) == {"x"} and text.endswith(f"[... {BIG - len(kept)} more characters cut]")
    assert clean_text("y" * 100, limit=None) == "y" * 100
    assert clean_text("short") == "short"


def test_non_strings_are_refused() -> None:
    with pytest.raises(TypeError, match="^clean_text expects a str, not bytes$"):
        clean_text(b"bytes")  # type: ignore[arg-type]


def test_clean_tree_cleans_keys_values_and_nesting() -> None:
    tree = {"k\x1b[1m": ["a\x00", ("b\ud800", 1.5)], "n": None, "ok": True, 3: "c\r"}
    assert clean_tree(tree) == {"k": ["a", ["b\ufffd", 1.5]], "n": None, "ok": True, 3: "c\n"}


_PIECES = st.sampled_from(
    ["\x1b[2J", "\x1b]0;t\x07", "\x1b", "\x9b", "\ud800", "\udfff", "\r", "\r\n", "\x00"]
)
_ANY_TEXT = st.lists(
    st.one_of(_PIECES, st.text(st.characters(exclude_categories=()), max_size=20)), max_size=12
).map("".join)


@given(text=_ANY_TEXT, limit=st.sampled_from([None, 60, 200]))
def test_any_text_comes_out_clean_and_cleaning_is_idempotent(text: str, limit: int | None) -> None:
    cleaned = clean_text(text, limit=limit)
    _assert_clean(cleaned)
    assert "\x1b" not in cleaned and "\r" not in cleaned
    assert clean_text(cleaned, limit=limit) == cleaned
    if limit is not None:
        assert len(cleaned) <= max(limit, 40)
    _assert_strict_json(json.dumps({"t": cleaned}))


# --- results objects and their writers ---------------------------------------------------------------------


def _hostile_results() -> GradingResults:
    test = TestResult(
        name="check \x1b[2Jname\ud800",
        score=0.0,
        max_score=2.0,
        output=f"{INJECTION}\n" + "z" * BIG,
        tags=["tag\x1b[31m", "ok"],
        check_id="kl_forward.contract",
        misconception="mis\x00conception",
        artifacts=["plot\r.png"],
    )
    results = GradingResults(tests=[test], output="overall", seed=0)
    # set after construction, as the runner does
    results.output = f"Graded {INJECTION}\n[stdout]\n" + "w" * BIG
    return results


def test_results_fields_are_clean_whenever_they_are_set() -> None:
    results = _hostile_results()
    test = results.tests[0]
    texts = [test.name, test.output, *test.tags, test.misconception or "", *test.artifacts, results.output]
    for text in texts:
        _assert_clean(text)
        assert "\x1b" not in text
    assert test.name == "check name\ufffd" and test.tags == ["tag", "ok"]
    assert "RED" in test.output and "passed\nFAILED" in test.output  # the words survive, only the controls go
    assert len(test.output) <= MAX_TEXT_CHARS and len(results.output) <= MAX_TEXT_CHARS


def test_results_json_is_strict_json_even_after_lists_are_edited_in_place(tmp_path: Path) -> None:
    results = _hostile_results()
    results.tests[0].tags.append("late\x1b[2J\ud800")  # bypasses the setter: the serialiser cleans it
    path = tmp_path / "results.json"
    results.write_json(path)
    text = path.read_text(encoding="utf-8")
    data = _assert_strict_json(text)
    assert data["tests"][0]["tags"][-1] == "late\ufffd"
    assert "\\u001b" not in text and "\\ud800" not in text
    assert len(text) < 4 * MAX_TEXT_CHARS
    _jq_accepts(text, ".tests[0].output | length")


def test_junit_xml_parses() -> None:
    xml = _hostile_results().to_junit_xml()
    root = ET.fromstring(xml.encode("utf-8"))
    assert root.find(".//failure") is not None
    _assert_clean(xml)


def test_terminal_report_renders_without_escapes() -> None:
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="utf-8", errors="strict", write_through=True)
    render(_hostile_results(), Console(file=stream, width=100, color_system=None), explain_all=True)
    printed = raw.getvalue().decode("utf-8")
    assert "RED" in printed and "\x1b" not in printed and "\r" not in printed


# --- batch grading's gradebook and summaries -----------------------------------------------------------------


def test_batch_writers_sanitise_what_results_files_carry(tmp_path: Path) -> None:
    from grader.tools.batch import Graded, print_summary, summarise, write_gradebook, write_summary_md

    tests = [
        {
            "name": "check \x1b[2Jone\ud800",
            "score": 0.0,
            "max_score": 2.0,
            "tags": ["misconception:mis\x1b[31m"],
        },
        {"name": "[bold]two[/bold]", "score": 1.0, "max_score": 1.0},
    ]
    rows = [
        Graded("alice", 1.0, 3.0, tests, error=f"grader error: {INJECTION}"),
        Graded("bob", 3.0, 3.0, [dict(t, score=t["max_score"]) for t in tests]),
    ]
    summary = summarise(rows)
    write_gradebook(tmp_path / "gradebook.csv", rows)
    write_summary_md(tmp_path / "summary.md", summary, rows)
    for name in ("gradebook.csv", "summary.md"):
        text = (tmp_path / name).read_text(encoding="utf-8")
        _assert_clean(text.replace("\r\n", "\n"))  # csv ends its rows with \r\n, as the format says
        assert "\x1b" not in text and "check one\ufffd" in text and "RED" in text
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="utf-8", errors="strict", write_through=True)
    print_summary(summary, rows, Console(file=stream, width=200, color_system=None))
    printed = raw.getvalue().decode("utf-8")
    assert "\x1b" not in printed and "[bold]two[/bold]" in printed  # shown as written, not as markup


# --- exact edges (for the mutation score: tests/README.md, "Mutation score") ---------------------------------


def test_the_cut_keeps_room_for_its_note_and_text_at_the_limit_is_not_cut() -> None:
    assert clean_text("x" * 60, limit=60) == "x" * 60
    assert clean_text("x" * 61, limit=60) == "x" * 20 + "\n[... 41 more characters cut]"
    assert clean_text("x" * 100, limit=10) == "\n[... 100 more characters cut]"  # no room left: only the note
    assert (
        clean_text("x" * (MAX_TEXT_CHARS + 1))
        == "x" * (MAX_TEXT_CHARS - 40) + "\n[... 41 more characters cut]"
    )


def test_each_escape_sequence_ends_where_it_should() -> None:
    # CSI: parameters, intermediates, then one final byte; the text after it stays
    assert clean_text("a\x1b[1;31mb\x1b[?25lc\x1b[ qd\x1b[@e") == "abcde"
    assert clean_text("a\x9b1;2 Hb") == "ab"
    # OSC ends at BEL or ST, whichever comes first; a DCS string only at ST
    assert clean_text("a\x1b]2;t\x07b\x07") == "ab"
    assert clean_text("a\x1b]2;t\x1b\\b") == "ab"
    assert clean_text("a\x1bP1$r\x07still\x1b\\b") == "ab"
    for introducer in "PX^_":
        assert clean_text(f"a\x1b{introducer}payload\x1b\\b") == "ab"
    # any other escape: intermediates then a final byte
    assert clean_text("a\x1b#8b\x1bcc\x1b(0d") == "abcd"


def test_only_the_control_characters_go() -> None:
    kept = "".join(map(chr, range(0x20, 0x7F))) + "\n\t\u00a0\u00ff\u2029\u2065\u206a\u202f\ufffd\ufffd"
    assert clean_text(kept) == kept
    # (ESC and its one-character form 0x9b start a sequence that takes what follows too: tested above)
    removed = [
        *range(0x00, 0x09),
        *range(0x0B, 0x0D),
        *range(0x0E, 0x1B),
        *range(0x1C, 0x20),
        *range(0x7F, 0x9B),
        *range(0x9C, 0xA0),
    ]
    removed += [*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0xFFFE, 0xFFFF]
    for code in removed:
        assert clean_text(f"a{chr(code)}b") in ("ab", "a\nb"), hex(code)
    assert clean_text("a\x0db") == "a\nb"


def test_surrogates_at_the_edges_of_the_range() -> None:
    assert clean_text("\ud7ff\ud800\udbff\udc00\udfff\ue000") == "\ud7ff\ufffd\U0010fc00\ufffd\ue000"


def test_clean_tree_passes_its_limit_down_and_keeps_other_values() -> None:
    note = "\n[... 80 more characters cut]"
    long = "x" * 100
    assert clean_tree({long: [long, (long,)]}, limit=60) == {
        "x" * 20 + note: ["x" * 20 + note, ["x" * 20 + note]]
    }
    assert clean_tree(long, limit=None) == long
    assert clean_tree({"k": long}, limit=None) == {"k": long}
    marker = object()
    assert clean_tree(marker) is marker and clean_tree(None) is None and clean_tree(2.5) == 2.5


def test_clean_tree_makes_non_finite_numbers_null_and_keeps_the_rest():
    """results.json is strict JSON: nan and inf (a ratio over a control at 0) become None, finite numbers, ints
    and bools stay as they are."""
    import math

    tree = {"a": [math.nan, math.inf, -math.inf, 1.5, 0, True, "x"], "b": (2.0,)}
    assert clean_tree(tree) == {"a": [None, None, None, 1.5, 0, True, "x"], "b": [2.0]}
