"""The batch: grade every submission (``--jobs`` at a time) and write everything; ``main`` is the command
line."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed

from grader.dataclass_cli import parse_into
from grader.grading.sanitise import clean_tree
from grader.sandbox.proctree import (
    become_subreaper,
    boot_ticks_now,
    children_of_me,
    kill_descendants,
)
from grader.tools.batch.config import DEFAULT_GRADER, BatchConfig, Entry, Graded
from grader.tools.batch.discover import discover
from grader.tools.batch.grade import grade_one
from grader.tools.batch.summary import Summary, expected_max_score, summarise
from grader.tools.batch.writers import (
    number_text,
    print_summary,
    write_charts,
    write_gradebook,
    write_summary_md,
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
            shown = f"{row.name}: {number_text(row.score)}" + (" (problem)" if row.error else "")
            progress.update(task, advance=1, description=shown)

        rows, summary = run_batch(config, grader_cmd, on_done=done)
    if not config.quiet:
        print_summary(summary, rows, Console())
        Console().print(f"wrote {config.out / 'gradebook.csv'}, summary.md/json and charts in {config.out}")
    return 1 if summary.errors else 0


if __name__ == "__main__":
    sys.exit(main())
