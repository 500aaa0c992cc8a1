"""Grade a whole class: a gradebook, per-check pass rates, common misconceptions, charts.

    python -m grader.tools.batch SUBMISSIONS_DIR --out OUT [--no-training] [--jobs N] [--seed N] [--timeout S]

``SUBMISSIONS_DIR`` holds one entry per student, graded in sorted order of name: a folder (graded file found by
:mod:`grader.grading.locate`: ``rewards.py``, ``exercise/rewards.py``, or the only ``.py`` file) or a ``.py`` file
(``alice.py`` is student ``alice``). Each submission is graded by its own ``python -m grader`` process, exactly
as a single grade (same command, same isolation), so its score equals its single-grade score; ``--jobs`` of them
run at once. Nothing a submission does stops the batch: a missing or ambiguous file, a syntax error, a grader
crash or timeout each give a row with score 0 and the reason.

Output in ``OUT``:

* ``gradebook.csv``: ``submission, score, max_score``, one column per check (points earned, rubric order),
  then ``error`` (why a submission could not be graded normally; empty otherwise);
* ``<submission>/results.json`` (the grader's report, Gradescope format) and ``<submission>/grader.log``;
* ``summary.md`` and ``summary.json``: per-check pass rates and misconception counts. A check passes with its
  full points, as in the gradebook; a check that passed on its own but whose points the rubric's gates withheld
  (tag ``withheld``: a check it requires failed) is not passed, and is counted in its own ``withheld`` column so
  that the rate of students who have the property is still visible (passed + withheld);
* ``pass_rates.png``, ``score_histogram.png`` and, when any were recognised, ``misconceptions.png``.

Exit status: 0 when every submission was graded (whatever the scores), 1 when some could not be graded
normally (their rows say why), 2 on a usage error.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from grader.dataclass_cli import parse_into
from grader.grading.locate import locate_submission
from grader.grading.results import TAG_WITHHELD, validate_results
from grader.grading.sanitise import clean_text, clean_tree
from grader.sandbox.proctree import (
    become_subreaper,
    boot_ticks_now,
    children_of_me,
    kill_descendants,
    kill_tree,
)

DEFAULT_GRADER = (sys.executable, "-m", "grader")
#: Output names a submission's folder must not take.
RESERVED = {
    "gradebook.csv",
    "summary.md",
    "summary.json",
    "pass_rates.png",
    "score_histogram.png",
    "misconceptions.png",
}
LOG_LIMIT = 2_000_000  # bytes of grader output kept per submission
_EPS = 1e-9


@dataclass
class BatchConfig:
    submissions: Path = field(
        metadata={
            "positional": True,
            "help": "Folder with one entry per student: a folder holding rewards.py, or a .py file (alice.py).",
        }
    )
    out: Path = field(
        metadata={"help": "Output folder (gradebook.csv, summary, charts, one folder per submission)."}
    )
    no_training: bool = field(
        default=False, metadata={"help": "Skip the training checks (passes --no-training to the grader)."}
    )
    jobs: int = field(
        default=os.cpu_count() or 1,
        metadata={"help": "How many submissions to grade at once (one grader process each)."},
    )
    seed: int | None = field(
        default=None, metadata={"help": "Grading seed passed to every grade (--seed); default: the grader's."}
    )
    timeout: float = field(
        default=1800.0,
        metadata={
            "help": "Seconds after which one grade is killed and scored 0 (a safety net: the grader bounds "
            "its own time)."
        },
    )
    quiet: bool = field(
        default=False, metadata={"help": "No progress bar and no summary table on the terminal."}
    )


@dataclass
class Entry:
    """One student's submission as found in SUBMISSIONS_DIR."""

    name: str
    source: Path  # the folder or file in SUBMISSIONS_DIR
    file: Path | None  # the file to grade; None when there is none
    error: str = ""
    note: str = ""


@dataclass
class Graded:
    """One row of the gradebook."""

    name: str
    score: float
    max_score: float | None
    tests: list[dict[str, Any]]  # as in results.json (validated)
    error: str = ""
    note: str = ""
    exit_code: int | None = None
    seconds: float = 0.0
    submission_file: str = ""


# ---------------------------------------------------------------------------------------------------------------
# Finding submissions
# ---------------------------------------------------------------------------------------------------------------

_UNSAFE = re.compile(r"[^A-Za-z0-9._@+-]+")


def _safe_name(name: str) -> str:
    safe = _UNSAFE.sub("_", name).strip("._") or "submission"
    return safe if safe not in RESERVED else f"{safe}_submission"


def discover(submissions: Path, out: Path | None = None) -> list[Entry]:
    """Every entry of ``submissions`` (sorted by name); hidden files and ``out`` itself are skipped."""
    out_resolved = out.resolve() if out is not None else None
    entries: list[Entry] = []
    taken: set[str] = set()
    for path in sorted(submissions.iterdir(), key=lambda p: p.name):
        if path.name.startswith((".", "__")) or path.name in ("Thumbs.db",):
            continue
        if out_resolved is not None and not path.is_symlink() and path.resolve() == out_resolved:
            continue
        stem = path.name[:-3] if path.name.endswith(".py") and not path.is_dir() else path.name
        name = _safe_name(stem)
        if name in taken:  # alice/ and alice.py: keep both, distinguishably
            name = _safe_name(path.name)
        suffix = 2
        base = name
        while name in taken:
            name, suffix = f"{base}-{suffix}", suffix + 1
        taken.add(name)
        located = locate_submission(path)
        entries.append(Entry(name, path, located.path, located.error, located.note))
    return entries


# ---------------------------------------------------------------------------------------------------------------
# Grading one submission
# ---------------------------------------------------------------------------------------------------------------


def grade_one(
    entry: Entry,
    out: Path,
    config: BatchConfig,
    grader_cmd: Sequence[str] = DEFAULT_GRADER,
) -> Graded:
    """Grade ``entry`` with one grader process; write ``out/<name>/results.json`` and ``grader.log``."""
    folder = out / entry.name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    results = folder / "results.json"
    log = folder / "grader.log"
    started = time.monotonic()

    if entry.file is None:
        log.write_text(f"not graded: {entry.error}\n", encoding="utf-8")
        return Graded(entry.name, 0.0, None, [], error=entry.error, note=entry.note)

    command = [*grader_cmd, "--submission", str(entry.file.resolve()), "--results", str(results.resolve())]
    if config.no_training:
        command.append("--no-training")
    if config.seed is not None:
        command += ["--seed", str(config.seed)]
    env = dict(os.environ, NO_COLOR="1", COLUMNS="120", PYTHONUNBUFFERED="1")
    env.pop("FORCE_COLOR", None)
    error = ""
    exit_code: int | None = None
    # The grader's output goes to a file, not a pipe: nothing to drain, nothing to deadlock on.
    with tempfile.TemporaryDirectory(prefix="batch-grade-") as cwd, log.open("wb") as log_file:
        try:
            proc = subprocess.Popen(
                command,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: a timeout kills the grader and all it started
            )
        except OSError as exc:
            return Graded(
                entry.name, 0.0, None, [], error=f"could not start the grader: {exc}", note=entry.note
            )
        try:
            exit_code = proc.wait(timeout=config.timeout)
        except subprocess.TimeoutExpired:
            # Its own subtree only: other graders run beside it, and what it orphaned is swept at the end.
            kill_tree(proc, None, set())
            error = f"grading took longer than {config.timeout:g} s and was stopped"
        else:
            try:  # whatever the grader left behind in its process group goes too
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
    seconds = time.monotonic() - started
    if log.stat().st_size > LOG_LIMIT:
        with log.open("r+b") as fh:
            fh.truncate(LOG_LIMIT)
            fh.seek(0, io.SEEK_END)
            fh.write(b"\n[... output truncated by grader.tools.batch ...]\n")

    file_label = entry.file.relative_to(entry.source).as_posix() if entry.source.is_dir() else entry.file.name
    if error:
        results.unlink(missing_ok=True)
        return Graded(entry.name, 0.0, None, [], error, entry.note, exit_code, seconds, file_label)
    try:
        score, tests = validate_results(json.loads(results.read_text(encoding="utf-8")))
    except FileNotFoundError:
        error = f"the grader exited with status {exit_code} without writing results.json (see grader.log)"
        return Graded(entry.name, 0.0, None, [], error, entry.note, exit_code, seconds, file_label)
    except (ValueError, UnicodeDecodeError) as exc:  # json.JSONDecodeError is a ValueError
        error = f"the grader exited with status {exit_code} and wrote an unreadable results.json ({exc})"
        return Graded(entry.name, 0.0, None, [], error, entry.note, exit_code, seconds, file_label)
    max_score = sum(float(t.get("max_score", 0.0)) for t in tests) if tests else None
    if exit_code not in (0, 1):
        error = f"grader error (exit status {exit_code}): {_first_line(results)}"
    return Graded(entry.name, score, max_score, tests, error, entry.note, exit_code, seconds, file_label)


def _first_line(results: Path) -> str:
    try:
        output = json.loads(results.read_text(encoding="utf-8")).get("output", "")
    except (OSError, ValueError, AttributeError):
        return "see grader.log"
    lines = [line.strip() for line in str(output).splitlines() if line.strip()]
    return lines[0][:200] if lines else "see results.json"


# ---------------------------------------------------------------------------------------------------------------
# Summarising
# ---------------------------------------------------------------------------------------------------------------


def misconceptions_of(test: dict[str, Any]) -> list[str]:
    """Misconception ids a test names: a ``misconception`` key (string or list; at the top of the test or in its
    ``extra_data``) and/or tags ``misconception:ID``. Anything else there is ignored."""
    found: list[str] = []
    extra = test.get("extra_data")
    for value in (test.get("misconception"), extra.get("misconception") if isinstance(extra, dict) else None):
        if isinstance(value, str) and value.strip():
            found.append(value.strip())
        elif isinstance(value, list):
            found.extend(v.strip() for v in value if isinstance(v, str) and v.strip())
    tags = test.get("tags")
    if isinstance(tags, list):
        for tag in tags:
            if isinstance(tag, str) and tag.startswith("misconception:") and tag.split(":", 1)[1].strip():
                found.append(tag.split(":", 1)[1].strip())
    return list(dict.fromkeys(found))


def test_passed(test: dict[str, Any]) -> bool | None:
    """Full points on a check; for a 0-point (advisory) check, its ``status`` if it has one, else unknown."""
    status = test.get("status")
    max_score = float(test.get("max_score", 0.0))
    if max_score > 0:
        return float(test.get("score", 0.0)) >= max_score - _EPS
    if status in ("passed", "failed"):
        return status == "passed"
    return None


def check_columns(rows: Sequence[Graded]) -> list[str]:
    """Check names in rubric order: the longest test list first (a complete report), then any others."""
    columns: list[str] = []
    for row in sorted(rows, key=lambda r: -len(r.tests)):
        for test in row.tests:
            if test["name"] not in columns:
                columns.append(test["name"])
    return columns


def expected_max_score(rows: Sequence[Graded]) -> float | None:
    maxima = Counter(row.max_score for row in rows if row.max_score is not None and row.tests)
    return maxima.most_common(1)[0][0] if maxima else None


@dataclass
class CheckStats:
    name: str
    max_score: float
    graded: int  # submissions with a verdict on this check
    passed: int
    mean_points: float
    withheld: int = 0  # passed on its own, points withheld by a gate (counted as not passed)

    @property
    def pass_rate(self) -> float | None:
        return self.passed / self.graded if self.graded else None


@dataclass
class Summary:
    submissions: int
    graded: int  # graded normally (no error)
    errors: int
    max_score: float | None
    mean_score: float
    median_score: float
    full_marks: int
    checks: list[CheckStats]
    misconceptions: list[tuple[str, int, list[str]]]  # id, submissions, checks where seen
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["checks"] = [dict(asdict(c), pass_rate=c.pass_rate) for c in self.checks]
        data["misconceptions"] = [
            {"id": m, "submissions": n, "checks": checks} for m, n, checks in self.misconceptions
        ]
        return data


def summarise(rows: Sequence[Graded], seconds: float = 0.0) -> Summary:
    """Per-check pass rates (over every submission: one that could not be graded fails every check) and
    misconception counts (each submission counted once per misconception)."""
    columns = check_columns(rows)
    max_score = expected_max_score(rows)
    by_name: dict[str, list[dict[str, Any]]] = {name: [] for name in columns}
    maxima: dict[str, float] = {}
    for row in rows:
        for test in row.tests:
            by_name[test["name"]].append(test)
            maxima.setdefault(test["name"], float(test.get("max_score", 0.0)))
    checks = []
    for name in columns:
        verdicts = [test_passed(t) for t in by_name[name]]
        known = [v for v in verdicts if v is not None]
        missing = sum(1 for row in rows if not any(t["name"] == name for t in row.tests))
        if maxima[name] > 0:
            graded = len(known) + missing  # no report on this check: not passed
        else:
            graded = len(known)
        points = [float(t.get("score", 0.0)) for t in by_name[name]] + [0.0] * missing
        withheld = sum(1 for t in by_name[name] if TAG_WITHHELD in (t.get("tags") or ()))
        checks.append(
            CheckStats(
                name, maxima[name], graded, sum(known), statistics.fmean(points) if points else 0.0, withheld
            )
        )
    seen: dict[str, set[str]] = {}
    where: dict[str, list[str]] = {}
    for row in rows:
        for test in row.tests:
            for mid in misconceptions_of(test):
                seen.setdefault(mid, set()).add(row.name)
                where.setdefault(mid, [])
                if test["name"] not in where[mid]:
                    where[mid].append(test["name"])
    misconceptions = sorted(((m, len(s), where[m]) for m, s in seen.items()), key=lambda x: (-x[1], x[0]))
    scores = [row.score for row in rows]
    return Summary(
        submissions=len(rows),
        graded=sum(1 for row in rows if not row.error),
        errors=sum(1 for row in rows if row.error),
        max_score=max_score,
        mean_score=statistics.fmean(scores) if scores else 0.0,
        median_score=statistics.median(scores) if scores else 0.0,
        full_marks=sum(1 for r in rows if max_score and not r.error and r.score >= max_score - _EPS),
        checks=checks,
        misconceptions=misconceptions,
        seconds=seconds,
    )


def _number(value: float | None) -> str:
    if value is None:
        return ""
    value = float(value)
    return str(int(value)) if value.is_integer() else repr(value)


def write_gradebook(path: Path, rows: Sequence[Graded]) -> list[str]:
    """``gradebook.csv``; returns its header."""
    columns = check_columns(rows)
    fallback_max = expected_max_score(rows)
    header = ["submission", "score", "max_score", *columns, "error"]
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(clean_tree(header))  # check names and errors come from results.json files
        for row in rows:
            points = {t["name"]: float(t.get("score", 0.0)) for t in row.tests}
            max_score = row.max_score if row.max_score is not None else fallback_max
            writer.writerow(
                clean_tree(
                    [row.name, _number(row.score), _number(max_score)]
                    + [_number(points.get(name, 0.0)) for name in columns]
                    + [row.error]
                )
            )
    return header


def _percent(rate: float | None) -> str:
    return "n/a" if rate is None else f"{100 * rate:.0f}%"


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell (check names contain "||"; errors may carry anything)."""
    return clean_text(str(text)).replace("|", "\\|").replace("\n", " ")


def write_summary_md(path: Path, summary: Summary, rows: Sequence[Graded]) -> None:
    lines = [
        "# Batch grading summary",
        "",
        f"- submissions: {summary.submissions} (graded normally: {summary.graded}, with problems: {summary.errors})",
        f"- score: mean {summary.mean_score:.2f}, median {summary.median_score:.2f}"
        + (f" of {_number(summary.max_score)}" if summary.max_score is not None else ""),
        f"- full marks: {summary.full_marks}",
        f"- time: {summary.seconds:.1f} s",
        "",
        "## Pass rate per check",
        "",
        "A check whose points the rubric's gates withheld (it passed on its own; a check it requires failed) is "
        "not passed; the withheld column counts those.",
        "",
        "| check | points | passed | pass rate | withheld | mean points |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for c in summary.checks:
        lines.append(
            f"| {_cell(c.name)} | {_number(c.max_score)} | {c.passed}/{c.graded} | {_percent(c.pass_rate)} "
            f"| {c.withheld} | {c.mean_points:.2f} |"
        )
    lines += ["", "## Misconceptions recognised", ""]
    if summary.misconceptions:
        lines += ["| misconception | submissions | share | seen in |", "| --- | ---: | ---: | --- |"]
        for mid, count, where in summary.misconceptions:
            share = count / summary.submissions if summary.submissions else 0.0
            lines.append(f"| {_cell(mid)} | {count} | {100 * share:.0f}% | {_cell(', '.join(where))} |")
    else:
        lines.append("None.")
    problems = [row for row in rows if row.error]
    if problems:
        lines += ["", "## Submissions with problems", "", "| submission | problem |", "| --- | --- |"]
        lines += [f"| {_cell(row.name)} | {_cell(row.error)} |" for row in problems]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _label(name: str, limit: int = 60) -> str:
    """A chart label: long check names are cut (the tables have them in full)."""
    return name if len(name) <= limit else name[: limit - 1].rstrip() + "\u2026"


def write_charts(out: Path, summary: Summary, rows: Sequence[Graded]) -> list[Path]:
    """PNG charts (matplotlib's Agg canvas, no pyplot state: safe anywhere, no display needed)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    written = []
    checks = [c for c in summary.checks if c.pass_rate is not None]
    fig = Figure(figsize=(11, 0.32 * max(len(checks), 3) + 1.2))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    names = [_label(c.name) for c in checks][::-1]
    rates = [100 * (c.pass_rate or 0.0) for c in checks][::-1]
    bars = ax.barh(names, rates, color="#4c72b0")
    for bar, rate in zip(bars, rates, strict=True):
        ax.text(
            min(rate + 1, 92), bar.get_y() + bar.get_height() / 2, f"{rate:.0f}%", va="center", fontsize=8
        )
    ax.set_xlim(0, 100)
    ax.set_xlabel("submissions with full points on the check (%)")
    ax.set_title(f"Pass rate per check ({summary.submissions} submissions)")
    ax.tick_params(axis="y", labelsize=8)
    fig.tight_layout()
    path = out / "pass_rates.png"
    fig.savefig(path, dpi=110)
    written.append(path)

    fig = Figure(figsize=(7, 4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    scores = [row.score for row in rows]
    top = summary.max_score if summary.max_score else max(scores + [1.0])
    bins = max(1, min(20, int(math.ceil(top)))) if top >= 1 else 10
    ax.hist(scores, bins=bins, range=(0, top), color="#55a868", edgecolor="white")
    ax.set_xlabel(f"score (of {_number(summary.max_score) or '?'})")
    ax.set_ylabel("submissions")
    ax.set_title(f"Scores: mean {summary.mean_score:.1f}, median {summary.median_score:.1f}")
    fig.tight_layout()
    path = out / "score_histogram.png"
    fig.savefig(path, dpi=110)
    written.append(path)

    if summary.misconceptions:
        fig = Figure(figsize=(8, 0.35 * max(len(summary.misconceptions), 3) + 1.2))
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        ax.barh(
            [_label(m) for m, _, _ in summary.misconceptions][::-1],
            [n for _, n, _ in summary.misconceptions][::-1],
        )
        ax.set_xlabel("submissions")
        ax.set_title("Misconceptions recognised")
        ax.tick_params(axis="y", labelsize=8)
        fig.tight_layout()
        path = out / "misconceptions.png"
        fig.savefig(path, dpi=110)
        written.append(path)
    return written


def print_summary(summary: Summary, rows: Sequence[Graded], console: Any) -> None:
    from rich.markup import escape
    from rich.table import Table

    def text(value: str) -> str:  # shown as it is: no escape sequences, no rich markup
        return escape(clean_text(str(value)))

    table = Table(title="Pass rate per check", title_justify="left")
    columns = (
        ("check", "left"),
        ("points", "right"),
        ("passed", "right"),
        ("rate", "right"),
        ("held", "right"),
    )
    for title, justify in columns:
        table.add_column(title, justify=justify)
    for c in summary.checks:
        table.add_row(
            text(c.name),
            _number(c.max_score),
            f"{c.passed}/{c.graded}",
            _percent(c.pass_rate),
            str(c.withheld),
        )
    console.print(table)
    if summary.misconceptions:
        table = Table(title="Misconceptions recognised", title_justify="left")
        table.add_column("misconception")
        table.add_column("submissions", justify="right")
        table.add_column("seen in")
        for mid, count, where in summary.misconceptions:
            table.add_row(text(mid), str(count), text(", ".join(where)))
        console.print(table)
    problems = [row for row in rows if row.error]
    if problems:
        table = Table(title="Submissions with problems (scored 0 unless the grader reported otherwise)")
        table.add_column("submission")
        table.add_column("problem")
        for row in problems:
            table.add_row(text(row.name), text(row.error))
        console.print(table)
    total = f" of {_number(summary.max_score)}" if summary.max_score is not None else ""
    console.print(
        f"{summary.submissions} submissions in {summary.seconds:.1f} s: mean {summary.mean_score:.2f}{total}, "
        f"full marks {summary.full_marks}, problems {summary.errors}"
    )


# ---------------------------------------------------------------------------------------------------------------
# The batch
# ---------------------------------------------------------------------------------------------------------------


def run_batch(
    config: BatchConfig,
    grader_cmd: Sequence[str] = DEFAULT_GRADER,
    on_done: Callable[[Graded], None] | None = None,
) -> tuple[list[Graded], Summary]:
    """Grade every submission in ``config.submissions`` and write all outputs to ``config.out``."""
    if not config.submissions.is_dir():
        raise NotADirectoryError(f"{config.submissions} is not a folder")
    if config.jobs < 1:
        raise ValueError("--jobs must be at least 1")
    out = config.out
    out.mkdir(parents=True, exist_ok=True)
    entries = discover(config.submissions, out)
    started = time.monotonic()
    # A grader killed on its timeout cannot clean up after its worker: whatever that double-forked is
    # re-parented to us (a subreaper) and swept once the pool is done.
    become_subreaper()
    since, preexisting = boot_ticks_now(), children_of_me()
    rows: dict[str, Graded] = {}
    lock = threading.Lock()

    def work(entry: Entry) -> Graded:
        try:
            return grade_one(entry, out, config, grader_cmd)
        except Exception as exc:  # a bug here must cost one row, never the batch
            return Graded(entry.name, 0.0, None, [], error=f"batch error: {type(exc).__name__}: {exc}")

    with ThreadPoolExecutor(max_workers=config.jobs, thread_name_prefix="grade") as pool:
        futures = [pool.submit(work, entry) for entry in entries]
        for future in as_completed(futures):
            row = future.result()
            with lock:
                rows[row.name] = row
            if on_done is not None:
                on_done(row)
    kill_descendants(since, preexisting)
    ordered = [rows[entry.name] for entry in entries]
    fallback = expected_max_score(ordered)
    for row in ordered:
        if row.max_score is None:
            row.max_score = fallback
    summary = summarise(ordered, seconds=time.monotonic() - started)
    write_gradebook(out / "gradebook.csv", ordered)
    write_summary_md(out / "summary.md", summary, ordered)
    data = summary.to_json()
    data["rows"] = [
        {
            "submission": r.name,
            "file": r.submission_file,
            "score": r.score,
            "max_score": r.max_score,
            "error": r.error,
            "note": r.note,
            "exit_code": r.exit_code,
            "seconds": round(r.seconds, 3),
        }
        for r in ordered
    ]
    (out / "summary.json").write_text(json.dumps(clean_tree(data), indent=2) + "\n", encoding="utf-8")
    write_charts(out, summary, ordered)
    return ordered, summary


def main(argv: Sequence[str] | None = None, grader_cmd: Sequence[str] = DEFAULT_GRADER) -> int:
    config = parse_into(
        BatchConfig,
        argv,
        prog="python -m grader.tools.batch",
        description="Grade a folder of submissions in parallel: gradebook.csv, results per submission, "
        "pass rates per check, common misconceptions, charts.",
    )
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True, quiet=config.quiet)
    if not config.submissions.is_dir():
        print(f"batch: {config.submissions} is not a folder", file=sys.stderr)
        return 2
    if config.jobs < 1:
        print("batch: --jobs must be at least 1", file=sys.stderr)
        return 2
    total = len(discover(config.submissions, config.out))
    progress = Progress(
        TextColumn("[bold]grading"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=console,
        disable=config.quiet,
    )
    with progress:
        task = progress.add_task("", total=total)

        def done(row: Graded) -> None:
            shown = f"{row.name}: {_number(row.score)}" + (" (problem)" if row.error else "")
            progress.update(task, advance=1, description=shown)

        rows, summary = run_batch(config, grader_cmd, on_done=done)
    if not config.quiet:
        print_summary(summary, rows, Console())
        Console().print(f"wrote {config.out / 'gradebook.csv'}, summary.md/json and charts in {config.out}")
    return 1 if summary.errors else 0


if __name__ == "__main__":
    sys.exit(main())
