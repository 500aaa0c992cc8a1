"""The batch: grade every submission (on this machine or on Ray) and write everything; ``main`` is the command
line."""

from __future__ import annotations

import json
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from grader.dataclass_cli import parse_into
from grader.grading.sanitise import clean_tree
from grader.sandbox.proctree import (
    become_subreaper,
    boot_ticks_now,
    children_of_me,
    kill_descendants,
)
from grader.tools.batch import reasons
from grader.tools.batch.config import DEFAULT_GRADER, SHARED_DIR, BatchConfig, Entry, Graded
from grader.tools.batch.discover import discover
from grader.tools.batch.grade import already_done, grade_one
from grader.tools.batch.interrupt import EXIT_INTERRUPTED, Stop
from grader.tools.batch.progress import BatchEvents
from grader.tools.batch.rubric import rubric_problem, write_rubric_copy
from grader.tools.batch.summary import Summary, expected_max_score, row_points_not_graded, summarise
from grader.tools.batch.writers import (
    print_summary,
    write_charts,
    write_gradebook,
    write_summary_md,
)

#: How often the executors' wait loops look for a Ctrl-C (seconds).
POLL_S = 0.2

# ---------------------------------------------------------------------------------------------------------------
# The local executor
# ---------------------------------------------------------------------------------------------------------------


class LocalExecutor:
    """``--jobs`` grader processes at a time on this machine (threads wait on them)."""

    def __init__(self, config: BatchConfig, grader_cmd: Sequence[str] = DEFAULT_GRADER) -> None:
        if config.local_jobs() < 1:
            raise ValueError("--jobs must be at least 1")
        self.config, self.grader_cmd = config, grader_cmd
        self.where = f"this machine, {config.local_jobs()} at a time"

    def __enter__(self) -> LocalExecutor:
        # A grader killed on its timeout cannot clean up after its worker: whatever that double-forked is
        # re-parented to us (a subreaper) and swept once the pool is done.
        become_subreaper()
        self.since, self.preexisting = boot_ticks_now(), children_of_me()
        return self

    def __exit__(self, *exc: object) -> None:
        kill_descendants(self.since, self.preexisting)

    def make_baseline(self, seed: int, preset: str, timeout: float) -> dict[str, Any]:
        """The baseline file's content: the control an earlier grade or batch on this machine kept
        (grader/training/cache.py) when it matches, else made now and kept."""
        from grader.training import cache
        from grader.training.baseline import baseline_content, make_baseline
        from grader.training.lane import resolve_preset
        from grader.training.runs import RunRecord

        directory = cache.default_dir()
        kept = cache.read(directory, seed, resolve_preset(preset)) if directory else None
        if kept is not None:
            return {**baseline_content(kept), "kept": True}
        content = make_baseline(seed, preset, timeout_s=timeout)
        if directory:
            cache.write(directory, RunRecord.from_dict(content["record"]))
        return content

    def grade(
        self,
        entries: Sequence[Entry],
        out: Path,
        baseline: Path | None,
        events: BatchEvents,
        stop: Stop | None = None,
    ) -> None:
        """Grade ``entries``, ``--jobs`` at a time; when ``stop`` is requested (Ctrl-C), the queued grades do not
        start and the running ones end without a row."""
        stop = stop if stop is not None else Stop()
        events.slots(self.config.local_jobs())

        def work(entry: Entry) -> None:
            if stop.requested:
                return
            events.started(entry.name)
            try:
                row = grade_one(entry, out, self.config, self.grader_cmd, baseline, stop)
            except Exception as exc:  # a bug here must cost one row, never the batch
                error = f"batch error: {type(exc).__name__}: {exc}"
                row = Graded(entry.name, 0.0, None, [], error=error, reason=reasons.INTERNAL)
            if row is None:
                events.stopped(entry.name)
            else:
                events.finished(row)

        pool = ThreadPoolExecutor(max_workers=self.config.local_jobs(), thread_name_prefix="grade")
        try:
            pending = {pool.submit(work, entry) for entry in entries}
            while pending:
                if stop.check():
                    # the queued grades are dropped here, not waited for (the pool's own exit would run them)
                    pool.shutdown(wait=False, cancel_futures=True)
                done, pending = wait(pending, timeout=POLL_S)
                for future in done:
                    if not future.cancelled():
                        future.result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def make_executor(config: BatchConfig, grader_cmd: Sequence[str] = DEFAULT_GRADER) -> Any:
    if config.executor == "ray":
        from grader.tools.batch.cluster import RayExecutor

        return RayExecutor(config, grader_cmd)
    return LocalExecutor(config, grader_cmd)


# ---------------------------------------------------------------------------------------------------------------
# The shared baseline
# ---------------------------------------------------------------------------------------------------------------


def shared_baseline(
    config: BatchConfig, executor: Any, events: BatchEvents, stop: Stop | None = None
) -> tuple[Path | None, str]:
    """The baseline file every grade of this batch uses (made once by ``executor``, or kept from an earlier
    run with ``--resume`` when it still matches), and a note for the summary; (None, why) when each grade
    must make its own, or when the batch was stopped (Ctrl-C) during the run."""
    from grader.training.baseline import BaselineError, load_baseline, write_baseline

    stop = stop if stop is not None else Stop()
    seed = config.seed if config.seed is not None else 0  # the grader's default seed
    shared_dir = config.out / SHARED_DIR
    # named with the preset it was made with (`auto` resolves on the machine that makes it)
    for path in sorted(shared_dir.glob(f"baseline-seed{seed}-*.json")) if config.resume else ():
        try:
            load_baseline(path, seed=seed, preset=config.training_preset)
            return path, f"shared baseline run: kept {path.name} (--resume)"
        except BaselineError:
            continue  # made again below
    events.phase("baseline run")
    started = time.monotonic()
    try:
        with stop.interruptible():  # minutes of training that cannot poll for Ctrl-C
            content = executor.make_baseline(seed, config.training_preset, config.timeout)
    except KeyboardInterrupt:
        stop.request()
        return None, "shared baseline run: interrupted (Ctrl-C)"
    except Exception as exc:  # noqa: BLE001 - whatever went wrong, every grade can still make its own
        reason = exc if isinstance(exc, BaselineError) else f"{type(exc).__name__}: {exc}"
        return None, f"shared baseline run failed ({reason}): each grade made its own"
    finally:
        events.phase("grading")
    kept = content.pop("kept", False)  # how it was had, not part of the file
    path = write_baseline(shared_dir / f"baseline-seed{seed}-{content['preset']}.json", content)
    if kept:
        return path, (
            f"shared baseline run: kept from an earlier grade on this machine ({content['preset']} preset, "
            f"seed {seed}; settings, libraries and pipeline match) and used by every grade"
        )
    return path, (
        f"shared baseline run: made once in {time.monotonic() - started:.0f} s ({content['preset']} preset, "
        f"seed {seed}) and used by every grade"
    )


# ---------------------------------------------------------------------------------------------------------------
# The batch
# ---------------------------------------------------------------------------------------------------------------


def run_batch(
    config: BatchConfig,
    grader_cmd: Sequence[str] = DEFAULT_GRADER,
    on_done: Callable[[Graded], None] | None = None,
    events: BatchEvents | None = None,
    stop: Stop | None = None,
) -> tuple[list[Graded], Summary]:
    """Grade every submission in ``config.submissions`` and write all outputs to ``config.out``: each
    submission's files as its grade finishes, the gradebook, summaries and charts at the end. When ``stop`` is
    requested (Ctrl-C in :func:`main`), the grades still queued or running are left out: the outputs hold the
    rows of the grades that finished (and those ``--resume`` kept), and the summary says how many are missing."""
    if not config.submissions.is_dir():
        raise NotADirectoryError(f"{config.submissions} is not a folder")
    stop = stop if stop is not None else Stop()
    events = events if events is not None else BatchEvents(on_done)
    if on_done is not None and events.on_done is None:
        events.on_done = on_done
    out = config.out
    out.mkdir(parents=True, exist_ok=True)
    write_rubric_copy(config)
    entries = discover(config.submissions, out)
    started = time.monotonic()
    events.begin(len(entries))
    rows: dict[str, Graded] = {}
    todo = []
    for entry in entries:
        kept = already_done(entry, out, config) if config.resume else None
        if kept is None:
            todo.append(entry)
        else:
            rows[entry.name] = kept
            events.finished(kept, kept=True)
    notes: list[str] = []

    class Collect(BatchEvents):
        def slots(self, count: int) -> None:
            events.slots(count)

        def started(self, name: str) -> None:
            events.started(name)

        def stopped(self, name: str) -> None:
            events.stopped(name)

        def finished(self, row: Graded, kept: bool = False) -> None:
            rows[row.name] = row
            events.finished(row, kept)

    executor = make_executor(config, grader_cmd)
    with executor:
        notes.append(f"graded on {executor.where}")
        baseline = None
        if config.shared_baseline and not config.no_training and any(e.file is not None for e in todo):
            baseline, note = shared_baseline(config, executor, events, stop)
            notes.append(note)
        events.grading()
        if todo and not stop.check():
            if config.executor == "ray":
                text = baseline.read_text(encoding="utf-8") if baseline is not None else None
                executor.grade(todo, out, text, Collect(), stop)
            else:
                executor.grade(todo, out, baseline, Collect(), stop)
    if config.resume:
        notes.append(f"--resume: kept {len(entries) - len(todo)} finished grades, graded {len(todo)}")
    ordered = [rows[entry.name] for entry in entries if entry.name in rows]
    if len(ordered) < len(entries):
        notes.append(
            f"interrupted (Ctrl-C): {len(entries) - len(ordered)} of {len(entries)} submissions not graded, "
            "left out of the gradebook and summary; --resume grades them"
        )
    fallback = expected_max_score(ordered)
    for row in ordered:
        if row.max_score is None:
            row.max_score = fallback
    summary = summarise(ordered, seconds=time.monotonic() - started)
    summary.notes = notes
    write_gradebook(out / "gradebook.csv", ordered)
    write_summary_md(out / "summary.md", summary, ordered)
    data = summary.to_json()
    data["rows"] = [
        {
            "submission": r.name,
            "file": r.submission_file,
            "score": r.score,
            "max_score": r.max_score,
            "reason": r.reason,
            "error": r.error,
            "note": r.note,
            "exit_code": r.exit_code,
            "seconds": round(r.seconds, 3),
            # points of checks the machine kept from being judged (left out of max_score); None: none
            "not_gradable": row_points_not_graded(r.tests),
        }
        for r in ordered
    ]
    data["not_graded"] = [entry.name for entry in entries if entry.name not in rows]
    (out / "summary.json").write_text(json.dumps(clean_tree(data), indent=2) + "\n", encoding="utf-8")
    write_charts(out, summary, ordered)
    return ordered, summary


PROG = "python -m grader.tools batch"


def main(
    argv: Sequence[str] | None = None, grader_cmd: Sequence[str] = DEFAULT_GRADER, prog: str = PROG
) -> int:
    """The command line (``prog``: how the user called it, for the help and the ``--resume`` hint). Exit status:
    0 every submission graded, 1 some could not be graded normally, 2 usage error, 130 stopped by Ctrl-C."""
    argv = list(sys.argv[1:] if argv is None else argv)
    config = parse_into(
        BatchConfig,
        argv,
        prog=prog,
        description="Grade a folder of submissions in parallel, on this machine or on a Ray cluster: "
        "gradebook.csv, results per submission, pass rates per check, common misconceptions, charts. "
        "Ctrl-C stops the batch and writes the gradebook of the grades that finished (--resume grades the rest).",
    )
    problem = _invalid(config)
    if problem:
        print(f"batch: {problem}", file=sys.stderr)
        return 2
    if config.executor == "ray":
        from grader.tools.batch.cluster import ClusterError, import_ray

        try:
            import_ray()
        except ClusterError as exc:
            print(f"batch: {exc}", file=sys.stderr)
            return 2
    stop = Stop()
    with stop.handling_sigint():  # until the last line is printed: no Ctrl-C ends in a traceback
        return _run(config, argv, grader_cmd, prog, stop)


def _run(config: BatchConfig, argv: list[str], grader_cmd: Sequence[str], prog: str, stop: Stop) -> int:
    from rich.console import Console

    from grader.tools.batch.cluster import ClusterError
    from grader.tools.batch.progress import ProgressBar

    console = Console(stderr=True, quiet=config.quiet)
    try:
        with ProgressBar(console, config.quiet) as progress:
            rows, summary = run_batch(config, grader_cmd, events=progress, stop=stop)
    except ClusterError as exc:
        print(f"batch: {exc}", file=sys.stderr)
        return 2
    if not config.quiet:
        print_summary(summary, rows, Console())
        Console().print(f"wrote {config.out / 'gradebook.csv'}, summary.md/json and charts in {config.out}")
    if stop.requested:
        again = argv if "--resume" in argv else [*argv, "--resume"]
        print(
            f"batch: stopped (Ctrl-C) with {len(rows)} submissions graded; the gradebook, summary and charts in "
            f"{config.out} hold those. To grade the rest, run again with --resume:\n  "
            f"{prog} {shlex.join(again)}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    return 1 if summary.errors else 0


def _invalid(config: BatchConfig) -> str:
    """What is wrong with option values argparse accepted, or ""."""
    if not config.submissions.is_dir():
        return f"{config.submissions} is not a folder"
    if config.jobs is not None and config.jobs < 1:
        return "--jobs must be at least 1"
    if config.cpus_per_grade <= 0 or config.gpus_per_grade < 0:
        return "--cpus-per-grade must be positive and --gpus-per-grade at least 0"
    if config.ray_address and config.executor != "ray":
        return "--ray-address needs --executor ray"
    return rubric_problem(config)
