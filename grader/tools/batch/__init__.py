"""Grade a whole class: a gradebook, per-check pass rates, common misconceptions, charts.

    python -m grader.tools batch SUBMISSIONS_DIR --out OUT [--no-training] [--jobs N] [--seed N] [--timeout S]
        [--resume] [--executor local|ray] [--ray-address ADDR] [--cpus-per-grade N] [--gpus-per-grade N]
        [--feedback-level LEVEL] [--rubric FILE] [--isolation MODE] [--hidden-visibility WHEN]

``SUBMISSIONS_DIR`` holds one entry per student, graded in sorted order of name: a folder (graded file found by
:mod:`grader.grading.locate`: ``rewards.py``, ``exercise/rewards.py``, or the only ``.py`` file) or a ``.py`` file
(``alice.py`` is student ``alice``). Each submission is graded by its own ``python -m grader`` process, exactly
as a single grade (same command, same isolation), so its score equals its single-grade score. Where they run:

* ``--executor local`` (default): ``--jobs`` grader processes at a time on this machine;
* ``--executor ray``: one Ray task per submission, reserving ``--cpus-per-grade`` / ``--gpus-per-grade``, on a
  Ray head started for the batch or the cluster at ``--ray-address`` (:mod:`grader.tools.batch.cluster`).

What a course sets reaches every grade: ``--feedback-level``, ``--rubric`` and ``--isolation`` are the grader's
own options (declared once, in :class:`grader.cli.GradeConfig`), passed to each grade; ``--hidden-visibility``
(when Gradescope shows the hidden checks' results) goes into the batch's copy of the rubric,
``_shared/rubric.toml``. A grade made with other options is not kept by ``--resume``.

Ctrl-C (:mod:`grader.tools.batch.interrupt`): the first stops the batch: no queued grade starts, the running ones
end with their process trees (on Ray: their tasks are cancelled and their workers killed), and the gradebook,
summary and charts of the grades that finished are written; the command to ``--resume`` with is printed, and
the exit status is 130.

Nothing a submission does stops the batch: a missing or ambiguous file, a syntax error, a grader crash or
timeout, a Ray task lost twice each give a row with score 0 and the reason. Each submission's files are written
as its grade finishes; ``--resume`` keeps those that hold a valid result for the same file and options.

The training checks' baseline run uses no submission code: the batch makes it once (``_shared/`` in ``OUT``)
and grades every submission with ``--baseline-run`` (:mod:`grader.training.baseline`), unless
``--no-shared-baseline``.

Output in ``OUT``:

* ``gradebook.csv``: ``submission, score, max_score``, one column per check (points earned, rubric order),
  then ``reason`` (why a row is no ordinary grade, from a fixed vocabulary: syntax error, import error, not
  implemented, timed out, killed for memory, not gradable, internal error ...; :mod:`grader.tools.batch.reasons`)
  and ``error`` (the details when a submission could not be graded normally; empty otherwise). A text cell that a
  spreadsheet would read as a formula (starting with =, +, -, @, a tab or a carriage return) starts with a single
  quote;
* ``<submission>/results.json`` (the grader's report, Gradescope format) and ``<submission>/grader.log``;
* ``summary.md`` and ``summary.json``: per-check pass rates and misconception counts. A check passes with its
  full points, as in the gradebook; a check that passed on its own but whose points the rubric's gates withheld
  (tag ``withheld``: a check it requires failed) is not passed, and is counted in its own ``withheld`` column so
  that the rate of students who have the property is still visible (passed + withheld);
* with the tuning challenge in the grades: the class leaderboard (:mod:`grader.tools.batch.leaderboard`) in
  ``summary.md`` / ``summary.json`` (one board per training preset, ranked by the challenge's share of points, then sentiment;
  the submissions with no run listed below), one ``leaderboard: NAME`` gradebook column per number, and
  ``leaderboard.png`` (sentiment against reference perplexity, log scale, one panel per preset);
* ``pass_rates.png``, ``score_histogram.png`` and, when any were recognised, ``misconceptions.png``.

The progress line (on a terminal) fits 80 columns: done / total, ``failed`` (grades that did not finish
normally: a reason other than "not implemented"), running, the elapsed time and the time left (the mean duration
of this run's grades, over the grades that run at once), then the last submission graded, shortened.

Exit status: 0 when every submission was graded (whatever the scores), 1 when some could not be graded
normally (their rows say why), 2 on a usage error, 130 when stopped by Ctrl-C.
"""

from grader.tools.batch.config import DEFAULT_GRADER, BatchConfig, Entry, Graded
from grader.tools.batch.discover import discover
from grader.tools.batch.grade import grade_one
from grader.tools.batch.interrupt import EXIT_INTERRUPTED, Stop
from grader.tools.batch.progress import BatchEvents, ProgressBar
from grader.tools.batch.run import LocalExecutor, main, run_batch
from grader.tools.batch.summary import CheckStats, Summary, summarise
from grader.tools.batch.writers import print_summary, write_charts, write_gradebook, write_summary_md

__all__ = [
    "BatchEvents",
    "LocalExecutor",
    "ProgressBar",
    "DEFAULT_GRADER",
    "EXIT_INTERRUPTED",
    "Stop",
    "BatchConfig",
    "CheckStats",
    "Entry",
    "Graded",
    "Summary",
    "discover",
    "grade_one",
    "main",
    "print_summary",
    "run_batch",
    "summarise",
    "write_charts",
    "write_gradebook",
    "write_summary_md",
]
