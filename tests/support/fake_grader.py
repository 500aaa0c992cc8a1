"""A stand-in for ``python -m grader`` with the same command line and results.json format, for fast tests of the
tools that drive the grader (batch grading, the Gradescope runner).

It never imports the submission: it reads directives from the submission's text, so tests can ask for any
outcome cheaply and deterministically:

    # fake: pass=forward.zero,forward.direction     checks earning full points (default: none)
    # fake: misconception=forward.direction:swapped_direction   (the result's misconception: extra_data)
    # fake: tag-misconception=backward.mean:sum_instead_of_mean (a "misconception:ID" tag only)
    # fake: crash          exit 3 without writing results.json
    # fake: garbage        write a results.json that is not JSON, exit 1
    # fake: internal       write score 0 with an internal-error output, exit 2
    # fake: sleep=30       sleep first (timeouts)
    # fake: daemon=PATH    first leave a detached (setsid, double-forked) sleeper behind; its pid goes to PATH
    # fake: challenge=0.91,12.3,0.61   add the tuning challenge's check (``challenge.outcome``, scored by the real
                         check on a run that ended at sentiment, reference perplexity, distinct-2), with the
                         leaderboard the real grader writes (in the check's extra_data and at the top)
    # fake: challenge-preset=gpt2      that run's preset (default: --training-preset when given, else tiny)
    # fake: challenge-failed           add the challenge's check for a run that never ended: no leaderboard

Its results are built from the real grader's result types (:class:`grader.grading.results.TestResult` and
:class:`~grader.grading.results.GradingResults`), so results.json has exactly the real shape (the misconception
and an internal error in ``extra_data``, the status of an advisory check...), plus one key of its own: the command
line it was called with, in the top-level ``argv``. (The real grader both tags a misconception and names it in
``extra_data``; the two directives above give one each, so a tool must read both.)
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

from grader.grading.results import GradingResults, TestResult, internal_error_results

#: The challenge's check as the fake rubric has it (only with a challenge directive: other tests keep their columns).
CHALLENGE = ("challenge.outcome", 10.0)
#: The fake's challenge targets (the real ones are calibrated per preset): sentiment >= 0.8, reference
#: perplexity <= 20, distinct-2 >= 0.5.
CHALLENGE_TARGETS = (0.8, 20.0, 0.5)
#: How tests start it: the same interpreter, this file as a script.
COMMAND = (sys.executable, str(Path(__file__).resolve()))
#: (name, max_score): the fake rubric, in order; "shaping.goal" is advisory (0 points).
RUBRIC = [
    ("forward.zero", 2.0),
    ("forward.direction", 3.0),
    ("backward.direction", 3.0),
    ("backward.mean", 1.5),
    ("shaping.contract", 2.0),
    ("shaping.goal", 0.0),
]


def _leave_a_daemon(pid_file: Path) -> None:
    import os

    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            pid_file.write_text(str(os.getpid()))
            time.sleep(600)
        os._exit(0)
    os.wait()
    while not pid_file.exists():
        time.sleep(0.01)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fake-grader")
    parser.add_argument("--submission", required=True)
    parser.add_argument("--results", required=True)
    parser.add_argument("--junit")
    parser.add_argument("--no-training", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--time-budget", type=float)  # as the real grader: the Gradescope runner passes it
    # as the real grader: batch grading passes them when the grades make training runs
    parser.add_argument("--baseline-run")
    parser.add_argument("--training-preset")
    parser.add_argument("--training-jobs", type=int)
    args = parser.parse_args(argv)
    results = Path(args.results)
    submission = Path(args.submission)
    started = time.monotonic()
    try:
        text = submission.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        text = None
        reason = f"cannot read the submission: {exc}"
    directives: dict[str, list[str]] = {}
    for key, value in re.findall(r"#\s*fake:\s*([a-z-]+)(?:=(\S+))?", text or ""):
        directives.setdefault(key, []).extend(v for v in (value or "").split(",") if v)
    if "daemon" in directives:
        _leave_a_daemon(Path(directives["daemon"][0]))
    if "sleep" in directives:
        time.sleep(float(directives["sleep"][0]))
    if "crash" in directives:
        print("fake grader: crashing on purpose", flush=True)
        return 3
    if "garbage" in directives:
        results.write_text("{not json", encoding="utf-8")
        return 1
    print(f"fake grader: grading {submission} (seed {args.seed}, training {not args.no_training})")
    if text is None or "internal" in directives:
        output = reason if text is None else "internal error: the grader failed"
        _write(results, internal_error_results(output, seed=args.seed))
        return 2
    passing = set(directives.get("pass", []))
    misconceptions = dict(item.split(":", 1) for item in directives.get("misconception", []))
    tag_misconceptions = dict(item.split(":", 1) for item in directives.get("tag-misconception", []))
    tests = []
    for name, max_score in RUBRIC:
        passed = name in passing
        tags = ["fake"] + (
            [f"misconception:{tag_misconceptions[name]}"] if name in tag_misconceptions else []
        )
        tests.append(
            TestResult(
                name,
                max_score if passed else 0.0,
                max_score,
                "ok" if passed else f"{name} failed",
                tags=tags,
                check_id=name,
                advisory=max_score == 0,
                misconception=misconceptions.get(name),
                advisory_failed=max_score == 0 and not passed,
            )
        )
    preset = (directives.get("challenge-preset") or [args.training_preset or "tiny"])[0]
    if "challenge" in directives:
        tests.append(_challenge(preset, [float(v) for v in directives["challenge"]]))
    elif "challenge-failed" in directives:
        name, max_score = CHALLENGE
        output = "Your tuning challenge could not be run: TRAINING_CHALLENGE['kl_coef'] is not a number."
        tests.append(TestResult(name, 0.0, max_score, output, tags=["fake"], check_id=name))
    graded = GradingResults(
        tests=tests, execution_time=time.monotonic() - started, output="fake grade", seed=args.seed
    )
    _write(results, graded)
    return 0 if graded.full_marks else 1


def _challenge(preset: str, ended_at: list[float]) -> TestResult:
    """The challenge's result as the real grader makes it: the real check scores a run record that ended at
    ``ended_at`` (sentiment, reference perplexity, distinct-2) and names the leaderboard entries; the points and
    entries go into the result as the grader's runner puts them."""
    # imported here: the checks package costs seconds, and only a challenge directive needs it
    from grader.checks.challenge import score_challenge
    from grader.training.runs import RunRecord
    from grader.training.settings import ChallengeTargets

    sentiment, perplexity, distinct = ended_at
    record = RunRecord(
        "challenge",
        ok=True,
        history=[  # from a fixed start (sentiment 0.5 at step 0), as a real run's first validation
            {"step": 0, "sentiment_mean": 0.5},
            {"step": 1, "sentiment_mean": sentiment, "ref_perplexity": perplexity, "distinct_2": distinct},
        ],
    )
    outcome = score_challenge(record, ChallengeTargets(*CHALLENGE_TARGETS, max_run_steps=100), preset)
    name, max_score = CHALLENGE
    return TestResult(
        name,
        outcome.fraction * max_score,
        max_score,
        outcome.feedback,
        tags=["fake"],
        check_id=name,
        leaderboard=[e.to_dict() for e in outcome.leaderboard],
    )


def _write(path: Path, results: GradingResults) -> None:
    """results.json as the real grader writes it (atomically), plus the command line under ``argv``."""
    data = results.to_gradescope_dict()
    data["argv"] = sys.argv[1:]
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, allow_nan=False), encoding="utf-8")
    tmp.replace(path)


if __name__ == "__main__":
    sys.exit(main())
