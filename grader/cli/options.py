"""The grader's options, declared once: :class:`GradeConfig` generates ``python -m grader``'s command line (and the
batch passes a course's choices through it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

#: Default --time-budget: about five times a full grade with training on two CPU cores (about a minute), so a
#: student on a slow laptop still gets every check, and a hung or slow submission answers within 5 minutes.
DEFAULT_TIME_BUDGET_S = 300.0


@dataclass
class GradeConfig:
    submission: Path = field(
        metadata={"help": "the student's rewards.py, or a folder containing it", "metavar": "PATH"}
    )
    results: Path = field(
        default=Path("results.json"),
        metadata={
            "help": "where to write the Gradescope results (written atomically, after the submission's processes are dead)",
            "metavar": "PATH",
        },
    )
    junit: Path | None = field(
        default=None, metadata={"help": "also write a JUnit XML report here", "metavar": "PATH"}
    )
    no_training: bool = field(default=False, metadata={"help": "skip the checks that need a training run"})
    training_preset: Literal["auto", "tiny", "gpt2"] = field(
        default="auto",
        metadata={
            "help": "models of the training checks: tiny (the small offline model, CPU), gpt2 (GPT-2 and the "
            "5-star sentiment model, for a GPU), auto (gpt2 on CUDA when both are available locally and its "
            "thresholds are calibrated, else tiny)",
        },
    )
    training_jobs: int | None = field(
        default=None,
        metadata={
            "help": "training runs made in parallel, one process each (default: one per CPU core, at most 4)",
            "metavar": "N",
        },
    )
    seed: int = field(default=0, metadata={"help": "selects hypothesis's examples; same seed, same results"})
    rubric: Path | None = field(
        default=None,
        metadata={
            "help": "grade with this rubric file instead of grader/grading/rubric.toml",
            "metavar": "PATH",
        },
    )
    only: str | None = field(
        default=None,
        metadata={
            "help": "grade only these comma-separated check ids (e.g. kl_forward.direction)",
            "metavar": "IDS",
        },
    )
    max_examples: int | None = field(
        default=None,
        metadata={
            "help": "hypothesis examples per property check (default: the checks' own)",
            "metavar": "N",
        },
    )
    call_timeout: float = field(
        default=10.0, metadata={"help": "seconds one call of a student function may take"}
    )
    time_budget: float = field(
        default=DEFAULT_TIME_BUDGET_S,
        metadata={
            "help": "seconds the whole grade may take: then the grader stops the submission (and any training "
            "runs), scores every unfinished check 0 with the reason and writes the results as usual. A full "
            "grade takes about a minute on a laptop; raise it for slow machines or the gpt2 training preset",
            "metavar": "SECONDS",
        },
    )
    isolation: Literal["auto", "strict", "fallback"] = field(
        default="auto",
        metadata={
            "help": "how the submission is confined: auto (Linux namespaces through bubblewrap where they work, "
            "else Landlock, limits and a process-tree sweep; a cgroup for memory, tasks and CPU where one can be "
            "made; the report's Sandbox line says which), strict (namespaces and a cgroup or no grade: exit 2, for "
            "official grading), fallback (never namespaces, for debugging)",
        },
    )
    cpus: float = field(
        default=1.0,
        metadata={
            "help": "CPUs the submission's processes may use together (a cgroup CPU quota, where the grader can "
            "make a cgroup: the report's Sandbox line says), so a submission that forks spinners slows only its "
            "own grade; batch grading passes its --cpus-per-grade",
            "metavar": "N",
        },
    )
    baseline_run: Path | None = field(
        default=None,
        metadata={
            "help": "use this shared baseline run (made once per seed and preset by python -m "
            "grader.training.baseline or the batch) instead of making the training checks' baseline "
            "run; it must match this grade's seed, preset, training settings and libraries, else exit 2",
            "metavar": "FILE",
        },
    )
    no_run_cache: bool = field(
        default=False,
        metadata={
            "help": "make the training checks' control run even when an earlier grade on this machine kept a "
            "matching one (kept in $GRADER_RUN_CACHE, else ~/.cache/rl-sentiment/runs; only the control run, "
            "which calls none of your code, is kept)",
        },
    )
    model_name: str | None = field(
        default=None,
        metadata={
            "help": "the training runs' policy model instead of the preset's: a directory written by "
            "save_pretrained (the runs are offline), e.g. GPT-2 for --training-preset gpt2",
            "metavar": "DIR",
        },
    )
    sentiment_model: str | None = field(
        default=None,
        metadata={
            "help": "the training runs' sentiment model instead of the preset's: a 5-star classifier's directory "
            "written by save_pretrained, or vader",
            "metavar": "DIR",
        },
    )
    quiet: bool = field(default=False, metadata={"help": "print only the score line"})
    explain_all: bool = field(
        default=False, metadata={"help": "explain every failed check, not only the first"}
    )
    feedback_level: Literal["hint", "explain", "solution"] | None = field(
        default=None,
        metadata={
            "help": "how much a failed check explains: hint (what is wrong and where to look), explain (adds the "
            "derivation), solution (adds the fix). Default: the rubric's [feedback] level. A handout's grader "
            "contains only the texts of the level it was built with",
        },
    )
