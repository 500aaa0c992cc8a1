"""Sanitised output from a real submission (grader/grading/sanitise.py): text a hostile submission prints or puts
in its exceptions (escape sequences, a lone surrogate as raw bytes, NUL, carriage returns, a 16 MB message) goes
through the sandbox and ``python -m grader`` and comes out as a clean report, strict JSON and parsable JUnit.

The sanitiser itself, the results objects and their writers, in process: tests/unit/test_sanitise.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

from tests.support.sanitised import BIG, INJECTION
from tests.support.sanitised import assert_clean as _assert_clean
from tests.support.sanitised import assert_strict_json as _assert_strict_json
from tests.support.sanitised import jq_accepts as _jq_accepts

ROOT = Path(__file__).resolve().parents[2]

HOSTILE = f"""
import sys
INJECTION = {INJECTION!r}
sys.stdout.reconfigure(errors="surrogatepass")  # write the lone surrogate as raw (invalid UTF-8) bytes
sys.stderr.reconfigure(errors="surrogatepass")
print("printed:", INJECTION)
print("stderr:", INJECTION, file=sys.stderr)

def kl_penalty_forward(log_probs_policy, log_probs_ref, kl_coef=0.1):
    raise ValueError(INJECTION + "x" * {BIG})

def kl_penalty_backward(log_probs_policy, log_probs_ref, kl_coef=0.1):
    raise RuntimeError(INJECTION)

def shaped_reward(scores, completions, prompts=None):
    class Evil(Exception):
        def __str__(self):
            return INJECTION * 3
    raise Evil()
"""


def test_injected_text_from_a_submission_gives_strict_json_and_a_clean_report(tmp_path: Path) -> None:
    submission = tmp_path / "rewards.py"
    submission.write_text(textwrap.dedent(HOSTILE), encoding="utf-8", errors="surrogatepass")
    results, junit = tmp_path / "results.json", tmp_path / "junit.xml"
    env = {k: v for k, v in os.environ.items() if k != "FORCE_COLOR"}
    env.update(NO_COLOR="1", COLUMNS="160")
    proc = subprocess.run(
        [sys.executable, "-m", "grader", "--submission", submission, "--results", results, "--junit", junit,
         "--no-training", "--explain-all", "--only", "kl_forward.contract,kl_backward.contract,shaping.contract"],
        cwd=ROOT, env=env, capture_output=True, timeout=120,
    )  # fmt: skip
    printed = proc.stdout.decode("utf-8") + proc.stderr.decode("utf-8")  # strict: valid UTF-8 only
    assert proc.returncode == 1, printed
    assert "could not print the report" not in printed and "Traceback" not in printed
    assert "\x1b" not in printed and "\r" not in printed and "RED" in printed
    text = results.read_text(encoding="utf-8")
    data = _assert_strict_json(text)
    assert [t["score"] for t in data["tests"]] == [0, 0, 0]
    for test in data["tests"]:
        _assert_clean(test["output"])
        assert "RED" in test["output"], test["output"]  # the student still reads their message
    _assert_clean(data["output"])
    assert "printed:" in data["output"]
    assert len(text) < 1_000_000
    ET.fromstring(junit.read_bytes())
    _jq_accepts(text, ".tests | length == 3")
