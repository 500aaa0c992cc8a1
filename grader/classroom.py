"""Turn a results.json into what GitHub Actions and GitHub Classroom show: a job summary and points.

    python -m grader.classroom results.json [--summary FILE] [--output FILE]

Used by ``.github/workflows/classroom.yml`` after the grader ran. It appends a Markdown table of the checks to
``--summary`` (default ``$GITHUB_STEP_SUMMARY``) and writes ``result=<base64 JSON>`` to ``--output`` (default
``$GITHUB_OUTPUT``): the payload ``classroom-resources/autograding-grading-reporter`` reads from the
``<RUNNER>_RESULTS`` environment variable. That payload is

    {"version": 1, "status": "pass" | "fail" | "error", "max_score": M,
     "tests": [{"name", "status", "score", "message", "test_code", "filename", "line_no", "execution_time"}]}

and the reporter sums ``tests[].score`` against ``max_score`` to report ``Points X/M`` to Classroom, so partial
credit per check survives (a plain ``autograding-command-grader`` step would be all-or-nothing). Without any
``$GITHUB_*`` variables it prints the summary, which makes it easy to try locally.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

MESSAGE_LIMIT = 1500  # characters of a check's feedback in the reporter's log


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}"


def load_results(path: Path) -> tuple[dict[str, Any] | None, str]:
    """The validated results, or None and why not."""
    from grader.grading.results import validate_results

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        validate_results(data)
    except FileNotFoundError:
        return None, f"{path} was not written"
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        return None, f"{path} is not a valid results file ({exc})"
    return data, ""


def reporter_payload(data: dict[str, Any] | None, problem: str = "") -> dict[str, Any]:
    """The JSON the GitHub Classroom grading reporter expects for one runner."""
    if data is None:
        return {
            "version": 1,
            "status": "error",
            "max_score": 0,
            "tests": [
                {
                    "name": "grader",
                    "status": "error",
                    "score": 0,
                    "message": problem or "the grader did not run",
                }
            ],
        }
    tests = []
    for test in data.get("tests", []):
        score = float(test.get("score", 0.0))
        max_score = float(test.get("max_score", 0.0))
        passed = score >= max_score - 1e-9 if max_score > 0 else test.get("status", "passed") != "failed"
        tests.append(
            {
                "name": test["name"],
                # a check the machine kept from being judged is neither passed nor failed: regrade it
                "status": "error" if not _gradable(test) else "pass" if passed else "fail",
                "score": score,
                "message": str(test.get("output", ""))[:MESSAGE_LIMIT],
                "test_code": "",
                "filename": "",
                "line_no": 0,
                "execution_time": "",
            }
        )
    max_score = sum(float(t.get("max_score", 0.0)) for t in data.get("tests", []))
    score = sum(t["score"] for t in tests)
    status = "pass" if max_score > 0 and score >= max_score - 1e-9 else "fail"
    if any(t["status"] == "error" for t in tests):
        status = "error"
    return {"version": 1, "status": status, "max_score": max_score, "tests": tests}


def _gradable(test: dict[str, Any]) -> bool:
    """False for a check the grader marked not gradable (grader.grading.results: the machine's fault)."""
    extra = test.get("extra_data")
    return not (isinstance(extra, dict) and extra.get("gradable") is False)


def summary_markdown(data: dict[str, Any] | None, problem: str = "") -> str:
    if data is None:
        return f"## Autograding\n\n:x: No grade: {problem}.\n"
    tests = data.get("tests", [])
    max_score = sum(float(t.get("max_score", 0.0)) for t in tests)
    lines = [
        f"## Autograding: {_number(float(data.get('score', 0.0)))} / {_number(max_score)} points",
        "",
        "| | check | points |",
        "| --- | --- | ---: |",
    ]
    for test in tests:
        score, top = float(test.get("score", 0.0)), float(test.get("max_score", 0.0))
        mark = (
            ":white_check_mark:" if (top > 0 and score >= top - 1e-9) or (top == 0 and score >= 0) else ":x:"
        )
        if top > 0 and 0 < score < top:
            mark = ":large_orange_diamond:"
        if not _gradable(test):
            mark = ":grey_question: not gradable (regrade)"
        name = str(test["name"]).replace("|", "\\|")
        lines.append(f"| {mark} | {name} | {_number(score)} / {_number(top)} |")
    failed = [t for t in tests if float(t.get("score", 0.0)) < float(t.get("max_score", 0.0)) - 1e-9]
    if failed:
        lines += ["", "### Feedback", ""]
        for test in failed:
            body = str(test.get("output", "")).strip()[:MESSAGE_LIMIT] or "(no message)"
            lines += [f"<details><summary>{test['name']}</summary>", "", "```", body, "```", "", "</details>"]
    output = str(data.get("output", "")).strip()
    if output:
        lines += ["", "### Grader output", "", "```", output[:4000], "```"]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m grader.classroom",  # in student repositories, which have no grader/tools
        description="Report a results.json to GitHub Actions / Classroom.",
    )
    parser.add_argument("results", type=Path, help="the grader's results.json")
    parser.add_argument("--summary", type=Path, default=os.environ.get("GITHUB_STEP_SUMMARY") or None,
                        help="Markdown file to append the summary to (default: $GITHUB_STEP_SUMMARY)")  # fmt: skip
    parser.add_argument("--output", type=Path, default=os.environ.get("GITHUB_OUTPUT") or None,
                        help="file to append result=<base64> to (default: $GITHUB_OUTPUT)")  # fmt: skip
    parser.add_argument("--hide-seed", type=int, default=None,
                        help="a grading seed to keep out of what students see (default: $GRADER_SEED if set)")  # fmt: skip
    args = parser.parse_args(argv)
    data, problem = load_results(args.results)
    seed = args.hide_seed
    if seed is None and os.environ.get("GRADER_SEED", "").strip().isdigit():
        seed = int(os.environ["GRADER_SEED"].strip())
    if data is not None and seed is not None:
        from grader.grading.results import hide_seed

        data = hide_seed(data, seed)
    markdown = summary_markdown(data, problem)
    if args.summary:
        with args.summary.open("a", encoding="utf-8") as fh:
            fh.write(markdown)
    else:
        print(markdown)
    payload = reporter_payload(data, problem)
    encoded = base64.b64encode(json.dumps(payload).encode("utf-8")).decode("ascii")
    if args.output:
        with args.output.open("a", encoding="utf-8") as fh:
            fh.write(f"result={encoded}\n")
    points = sum(t["score"] for t in payload["tests"])
    print(f"Points {_number(points)}/{_number(payload['max_score'])}")
    return 0 if data is not None else 1


if __name__ == "__main__":
    sys.exit(main())
