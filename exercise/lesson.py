"""The lesson's evidence over several seeds: ``python -m exercise.lesson [--flags]`` (``--help`` lists them).

The README's lesson (the plain run hacks the reward, ``--scale_rewards none`` does not, the forward and backward
penalties hold the policy near the reference, the reference shaping repeats less) was first told from one seed.
This command makes every number it quotes: it trains each configuration of the lesson on several seeds with the
exercise's own entry point (:func:`exercise.train.run`, on the tiny preset), in worker processes (``--workers`` at
a time, a fresh process per run, so each run is exactly the one ``python -m exercise.train`` makes with the same
flags), then writes ``docs/lesson-runs.md`` (mean ± sd over seeds and every seed's value, with the command and
the git commit that made them) and the figures beside it.

Two parts:

* **configurations** (``--seeds``): the plain run, the forward and backward penalties at ``kl_coef`` 0.1,
  the plain run with ``--scale_rewards none`` (at the preset's learning rate and at ``--high_learning_rate``:
  the claim that it stays away from collapse depends on the learning rate), and the reference shaping;
* **a kl_coef sweep** (``--sweep_seeds`` x ``--sweep_coefs``, both penalties, the preset's learning rate): final
  sentiment against final KL in both directions.

Runs already made with the same settings (their ``summary.json`` under ``--runs_dir``) are reused unless
``--no_reuse``, so an interrupted lesson loses only the runs in flight.
Where its parts live: the settings and the runs they declare in :mod:`exercise.lesson_specs`, making the runs in
:mod:`exercise.lesson_runs`, the statistics and tables in :mod:`exercise.lesson_tables`, the document in
:mod:`exercise.lesson_document`, the figures in :mod:`exercise.lesson_figures`; this module is the command.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from .lesson_document import NOTES_END, NOTES_START, write_document
from .lesson_figures import CURVE_PANELS, curves_figure, sweep_figure
from .lesson_runs import MADE_AT, REPO, git_state, make_runs
from .lesson_specs import (
    CONFIGURATIONS,
    HIGH_LR_LABEL,
    SOLUTION,
    LessonConfig,
    RunSpec,
    lesson_specs,
    run_dir_name,
    train_config,
)
from .lesson_tables import (
    COLLAPSE_PERPLEXITY,
    DRIFT_PERPLEXITY,
    METRICS,
    Table,
    build_table,
    claims,
    collapse_counts,
    fmt_mean_sd,
    late_spreads,
    mean_sd,
    per_seed_table,
    spread_over_time,
    summary_table,
    sweep_points,
    sweep_table,
)

__all__ = [
    "COLLAPSE_PERPLEXITY",
    "CONFIGURATIONS",
    "CURVE_PANELS",
    "DRIFT_PERPLEXITY",
    "HIGH_LR_LABEL",
    "MADE_AT",
    "METRICS",
    "NOTES_END",
    "NOTES_START",
    "REPO",
    "SOLUTION",
    "LessonConfig",
    "RunSpec",
    "Table",
    "build_parser",
    "build_table",
    "check",
    "claims",
    "collapse_counts",
    "curves_figure",
    "fmt_mean_sd",
    "git_state",
    "late_spreads",
    "lesson_specs",
    "main",
    "make_runs",
    "mean_sd",
    "parse_args",
    "per_seed_table",
    "run_dir_name",
    "spread_over_time",
    "summary_table",
    "sweep_figure",
    "sweep_points",
    "sweep_table",
    "train_config",
    "write_document",
]


def build_parser():
    """The command line, generated from :class:`LessonConfig` (as ``exercise/config.py`` does for training)."""
    from transformers import HfArgumentParser

    parser = HfArgumentParser(LessonConfig)
    parser.prog = "python -m exercise.lesson"
    parser.description = __doc__.split("\n\n")[0]
    return parser


def parse_args(argv: Sequence[str] | None = None) -> LessonConfig:
    (config,) = build_parser().parse_args_into_dataclasses(args=None if argv is None else list(argv))
    return config


def check(config: LessonConfig) -> str | None:
    """What is wrong with the settings, as one line that says what to do; None when nothing is."""
    if not config.seeds:
        return "--seeds is empty: give at least one seed (five or more for the lesson's tables)"
    if len(set(config.seeds)) != len(config.seeds) or len(set(config.sweep_seeds)) != len(config.sweep_seeds):
        return "--seeds and --sweep_seeds must not repeat a seed (a repeated run adds no evidence)"
    if config.workers < 1:
        return "--workers must be at least 1"
    if any(c <= 0 for c in config.sweep_coefs):
        return "--sweep_coefs must be positive (the plain run is the kl_coef 0 point)"
    if config.max_steps < 1 or config.validation_prompts < 1 or config.eval_every < 1:
        return "--max_steps, --validation_prompts and --eval_every must be at least 1"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    config = parse_args(argv)
    problem = check(config)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    specs = lesson_specs(config)
    summaries = make_runs(specs, config)
    docs = Path(config.docs_dir)
    labels = [label for label, _, _ in CONFIGURATIONS] + (
        [HIGH_LR_LABEL] if config.high_learning_rate > 0 else []
    )
    figures = {"curves": curves_figure(specs, summaries, labels, docs / "figures" / "lesson-curves.png")}
    if config.sweep:
        figures["sweep"] = sweep_figure(specs, summaries, docs / "figures" / "lesson-sweep.png")
    document = write_document(docs / "lesson-runs.md", config, argv, specs, summaries, figures)
    failed = len({run_dir_name(s, config) for s in specs if summaries[s].get("error")})
    print(f"Wrote {document} and {', '.join(str(p) for p in figures.values())}")
    if config.report_only:
        if failed:
            print(f"{failed} runs not finished yet: the document says n/a for them")
        return 0
    if failed:
        print(
            f"error: {failed} of {len({run_dir_name(s, config) for s in specs})} runs failed; the document lists them",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
