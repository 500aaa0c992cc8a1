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
"""

from __future__ import annotations

import dataclasses
import json
import math
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

from .presets import TINY

REPO = Path(__file__).resolve().parent.parent


@dataclass
class LessonConfig:
    seeds: list[int] = field(
        default_factory=lambda: [42, 7, 0, 1, 2],
        metadata={"help": "Seeds for every configuration of the lesson (at least 2 for a spread)."},
    )
    sweep_seeds: list[int] = field(
        default_factory=lambda: [42, 7, 0],
        metadata={"help": "Seeds for the kl_coef sweep (runs shared with the configurations are made once)."},
    )
    sweep_coefs: list[float] = field(
        default_factory=lambda: [0.03, 0.1, 0.3, 1.0],
        metadata={"help": "kl_coef values of the sweep, for both penalties."},
    )
    sweep: bool = field(
        default=True, metadata={"help": "Make the kl_coef sweep (--no_sweep: the configurations only)."}
    )
    max_steps: int = field(
        default=TINY.max_steps, metadata={"help": "GRPO steps per run (the tiny preset's)."}
    )
    validation_prompts: int = field(
        default=24,
        metadata={
            "help": "Validation prompts per evaluation (the first N of 64; fewer is cheaper, noisier)."
        },
    )
    eval_every: int = field(default=TINY.eval_every, metadata={"help": "Validate every this many steps."})
    learning_rate: float = field(
        default=TINY.learning_rate, metadata={"help": "Learning rate of every run but the high-rate control."}
    )
    high_learning_rate: float = field(
        default=1e-3,
        metadata={"help": "The learning rate of the `--scale_rewards none` control run (0 leaves it out)."},
    )
    workers: int = field(
        default=2, metadata={"help": "Runs at a time, each in its own process with one torch thread."}
    )
    runs_dir: str = field(
        default="outputs/lesson", metadata={"help": "Where each run's summary.json and log go."}
    )
    docs_dir: str = field(
        default="docs", metadata={"help": "Where lesson-runs.md and the figures (figures/) are written."}
    )
    reuse: bool = field(
        default=True,
        metadata={
            "help": "Reuse finished runs with the same settings from --runs_dir (--no_reuse: make all again)."
        },
    )
    report_only: bool = field(
        default=False,
        metadata={
            "help": "Make no runs: write the document and figures from the runs finished so far in --runs_dir "
            "(the others are listed as not run), e.g. while a long lesson is still running."
        },
    )


@dataclass(frozen=True)
class RunSpec:
    """One training run: a configuration of the lesson (or a sweep point) at one seed."""

    label: str  # the configuration's name in the tables
    seed: int
    flags: tuple[tuple[str, object], ...]  # TrainConfig fields beyond the common ones, in a fixed order

    @property
    def cli_flags(self) -> str:
        parts = []
        for name, value in self.flags:
            if value is True:
                parts.append(f"--{name}")
            else:
                parts.append(f"--{name} {value:g}" if isinstance(value, float) else f"--{name} {value}")
        return " ".join(parts)


# The lesson's configurations: the label, the flags, and what each stands for in the README.
SOLUTION = (("use_solution", True),)  # the reference penalties and shaping (the stubs are not implemented)
CONFIGURATIONS: list[tuple[str, tuple[tuple[str, object], ...], str]] = [
    ("plain", (), "no penalty, group scaling (TRL's default): the run that hacks the reward"),
    ("forward", (("kl_type", "forward"), ("kl_coef", 0.1), *SOLUTION), "the KL(pi‖ref) penalty"),
    ("backward", (("kl_type", "backward"), ("kl_coef", 0.1), *SOLUTION), "the KL(ref‖pi) penalty"),
    ("none", (("scale_rewards", "none"),), "no penalty, advantages not divided by the group's spread"),
    (
        "shaped",
        (("reward_shaping", "shaped"), ("kl_type", "forward"), ("kl_coef", 0.1), *SOLUTION),
        "reference shaping + forward",
    ),
]
HIGH_LR_LABEL = "none, high lr"

# Final-validation metrics in the tables: key, column title, format.
METRICS = [
    ("sentiment_mean", "sentiment", "{:.3f}"),
    ("ref_perplexity", "ref. perplexity", "{:.1f}"),
    ("kl_forward", "KL(pi‖ref)", "{:.2f}"),
    ("kl_backward", "KL(ref‖pi)", "{:.2f}"),
    ("distinct_2", "distinct-2", "{:.2f}"),
    ("repetition", "repetition", "{:.2f}"),
]
# A run "collapsed" when its samples read to the reference model as at least this perplexity at the end: the
# tiny model's own text sits near 5, the penalised runs below 20, a degenerate one in the thousands. Runs between
# DRIFT_PERPLEXITY and it are on their way (counted apart: where the line is drawn changes the count).
COLLAPSE_PERPLEXITY = 1000.0
DRIFT_PERPLEXITY = 100.0


def collapse_counts(perplexities: Sequence[float]) -> str:
    """'collapsed / drifted at least' counts, e.g. '2 / 4 of 5'."""
    collapsed = sum(p >= COLLAPSE_PERPLEXITY for p in perplexities)
    drifted = sum(p >= DRIFT_PERPLEXITY for p in perplexities)
    return f"{collapsed} / {drifted} of {len(perplexities)}"


def lesson_specs(config: LessonConfig) -> list[RunSpec]:
    """Every run the lesson needs, configurations first (their table is the lesson's). Specs with the same
    settings (the sweep's forward at 0.1 and the forward configuration) share one run: see :func:`make_runs`."""
    specs: list[RunSpec] = []
    lr = ("learning_rate", config.learning_rate)
    for seed in config.seeds:
        for label, flags, _ in CONFIGURATIONS:
            specs.append(RunSpec(label, seed, (*flags, lr)))
        if config.high_learning_rate > 0:
            high = ("learning_rate", config.high_learning_rate)
            specs.append(RunSpec(HIGH_LR_LABEL, seed, (("scale_rewards", "none"), high)))
    for seed in config.sweep_seeds if config.sweep else []:
        for kl_type in ("forward", "backward"):
            for coef in config.sweep_coefs:
                flags = (("kl_type", kl_type), ("kl_coef", float(coef)), *SOLUTION, lr)
                specs.append(RunSpec(f"sweep {kl_type} {coef:g}", seed, flags))
    return specs


def train_config(spec: RunSpec, config: LessonConfig):
    """The :class:`~exercise.config.TrainConfig` of one run."""
    from .config import TrainConfig

    return TrainConfig(
        preset="tiny",
        seed=spec.seed,
        max_steps=config.max_steps,
        eval_every=config.eval_every,
        validation_prompts=config.validation_prompts,
        save_model=False,
        quiet=True,
        **dict(spec.flags),
    )


def run_dir_name(spec: RunSpec, config: LessonConfig) -> str:
    """A directory per distinct run: the same settings give the same name, so a sweep point equal to a
    configuration (forward at 0.1) is made once."""
    train = train_config(spec, config)
    return (
        f"{train.run_name}_lr{train.learning_rate:g}_steps{config.max_steps}_val{config.validation_prompts}"
    )


def _train_in_worker(config_fields: dict, output_dir: str) -> dict:
    """Runs in a worker process: one training run, its console output to ``train.log``."""
    import warnings

    from rich.console import Console
    from transformers.utils import logging as hf_logging

    from .config import TrainConfig
    from .train import run

    warnings.filterwarnings("ignore", category=FutureWarning)
    hf_logging.disable_progress_bar()
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    made_at = git_state()  # before the run: the code it runs
    with open(Path(output_dir) / "train.log", "w") as log:
        result = run(TrainConfig(**config_fields), console=Console(file=log, width=120))
    (Path(output_dir) / MADE_AT).write_text(made_at + "\n")
    return {"error": result.error, "wall_s": result.wall_time_s}


MADE_AT = "made_at.txt"  # beside summary.json: the commit (and uncommitted changes) a run was made at


def _finished(summary_path: Path, expected: dict) -> bool:
    """A reusable run: its summary exists, has no error, ran every step and has the settings asked for."""
    try:
        summary = json.loads(summary_path.read_text())
    except (OSError, ValueError):
        return False
    saved = summary.get("config", {})
    final = summary.get("final") or {}
    # Fields left to the preset (None) are resolved in the saved config: compare the ones the lesson sets.
    same = all(saved.get(k) == v for k, v in expected.items() if v is not None and k != "output_dir")
    return same and summary.get("error") is None and final.get("step") == expected["max_steps"]


def _log(line: str) -> None:
    print(line, flush=True)  # progress shows at once also when the output goes to a file


def make_runs(specs: Sequence[RunSpec], config: LessonConfig, log=_log) -> dict[RunSpec, dict]:
    """Make (or reuse) every run; returns each spec's summary (or ``{"error": ...}``)."""
    runs_dir = Path(config.runs_dir)
    by_dir: dict[str, list[RunSpec]] = {}
    for spec in specs:
        by_dir.setdefault(run_dir_name(spec, config), []).append(spec)
    todo, done_dirs = [], {}
    for name, group in by_dir.items():
        out = runs_dir / name
        fields = {**dataclasses.asdict(train_config(group[0], config)), "output_dir": str(out)}
        if config.reuse and _finished(out / "summary.json", fields):
            done_dirs[name] = json.loads((out / "summary.json").read_text())
        else:
            todo.append((group[0], fields, out))
    if config.report_only:
        for _spec, _, out in todo:
            done_dirs[out.name] = {"error": "not run yet (--report_only)"}
        log(f"{len(by_dir)} runs: {len(done_dirs) - len(todo)} finished, {len(todo)} not run yet")
        todo = []
    else:
        log(f"{len(by_dir)} runs: {len(done_dirs)} reused, {len(todo)} to make, {config.workers} at a time")
    started = time.perf_counter()
    # A fresh process per run (max_tasks_per_child=1): no state carries from one run into the next, and a run
    # that crashes its process takes only itself down.
    context = get_context("spawn")
    with ProcessPoolExecutor(config.workers, mp_context=context, max_tasks_per_child=1) as pool:
        futures = {pool.submit(_train_in_worker, fields, str(out)): (spec, out) for spec, fields, out in todo}
        for done, future in enumerate(as_completed(futures), 1):
            spec, out = futures[future]
            try:
                outcome = future.result()
            except Exception as error:  # a worker that died: the run is reported failed, the others go on
                outcome = {"error": f"worker process failed: {type(error).__name__}: {error}"}
            summary_path = out / "summary.json"
            if outcome.get("error") is None and summary_path.is_file():
                summary = done_dirs[out.name] = json.loads(summary_path.read_text())
                final = summary["final"]
                note = (
                    f"sentiment {final['sentiment_mean']:.3f}, ref. perplexity {final['ref_perplexity']:.1f}"
                )
            else:
                summary = done_dirs[out.name] = {"error": outcome.get("error") or "no summary.json written"}
                note = f"FAILED: {summary['error']} (log: {out / 'train.log'})"
            elapsed = time.perf_counter() - started
            log(f"[{done}/{len(todo)}, {elapsed:.0f} s] {spec.label} seed {spec.seed}: {note}")
    return {spec: done_dirs[name] for name, group in by_dir.items() for spec in group}


# --- statistics ---------------------------------------------------------------------------------------------


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n - 1; 0 for a single value)."""
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return mean, sd


def fmt_mean_sd(values: Sequence[float], fmt: str) -> str:
    values = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    if not values:
        return "-"
    mean, sd = mean_sd(values)
    return f"{fmt.format(mean)} ± {fmt.format(sd)}"


def late_spreads(summary: dict) -> dict[str, float]:
    """The last logging interval's spreads: the KL penalty's across the batch and the rewards' within a group."""
    logged = [e for e in summary.get("train_log", []) if "reward/group_std" in e]
    if not logged:
        return {}
    last = logged[-1]
    return {
        "penalty_std": float(last.get("reward/kl_penalty_std", float("nan"))),
        "group_std": float(last["reward/group_std"]),
    }


@dataclass
class Table:
    """Final values per configuration and seed."""

    labels: list[str]
    seeds: list[int]
    finals: dict[tuple[str, int], dict]  # (label, seed) -> final validation record (or {} when failed)
    extra: dict[tuple[str, int], dict]  # (label, seed) -> late spreads

    def values(self, label: str, key: str) -> list[float]:
        out = []
        for seed in self.seeds:
            value = self.finals.get((label, seed), {}).get(key)
            if isinstance(value, (int, float)) and math.isfinite(value):
                out.append(float(value))
        return out

    def seed_value(self, label: str, seed: int, key: str) -> float | None:
        value = self.finals.get((label, seed), {}).get(key)
        return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def build_table(specs: Sequence[RunSpec], summaries: dict[RunSpec, dict], labels: Sequence[str]) -> Table:
    seeds = sorted({s.seed for s in specs if s.label in labels}, key=[s.seed for s in specs].index)
    finals, extra = {}, {}
    for spec in specs:
        if spec.label not in labels:
            continue
        summary = summaries.get(spec, {})
        finals[(spec.label, spec.seed)] = summary.get("final") or {}
        extra[(spec.label, spec.seed)] = late_spreads(summary)
    return Table(list(labels), seeds, finals, extra)


# --- the document -------------------------------------------------------------------------------------------


def git_state() -> str:
    """The commit, and which files that change a run (exercise/, reference/) differ from it."""

    def git(*args: str) -> str:
        try:
            done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False)
        except OSError:
            return ""
        return done.stdout.rstrip("\n") if done.returncode == 0 else ""  # status lines start with a space

    commit = git("rev-parse", "--short=10", "HEAD").strip() or "unknown (not a git checkout)"
    changed = [
        line[3:]
        for line in git("status", "--porcelain", "--", "exercise", "reference").splitlines()
        if line[3:] != "exercise/lesson.py"
    ]
    if changed:
        return f"{commit}, with uncommitted changes in {', '.join(sorted(changed))}"
    return commit


def _made_at(specs: Sequence[RunSpec], summaries: dict[RunSpec, dict]) -> list[str]:
    """Which commits the runs were made at (each run's made_at.txt), with how many runs each."""
    counts: dict[str, int] = {}
    seen = set()
    for spec in specs:
        output_dir = summaries.get(spec, {}).get("config", {}).get("output_dir")
        if output_dir is None or output_dir in seen:
            continue
        seen.add(output_dir)
        try:
            made = (Path(output_dir) / MADE_AT).read_text().strip()
        except OSError:
            made = "not recorded"
        counts[made] = counts.get(made, 0) + 1
    return [f"{made}: {count}" for made, count in counts.items()]


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def summary_table(table: Table, flags: dict[str, str]) -> list[str]:
    header = ["configuration", "flags", *(title for _, title, _ in METRICS), "ref. perplexity ≥ 1000 / ≥ 100"]
    lines = [_row(header), "|" + " --- |" * len(header)]
    for label in table.labels:
        ppl = table.values(label, "ref_perplexity")
        collapsed = collapse_counts(ppl)
        cells = [label, f"`{flags[label]}`" if flags[label] else "(none)"]
        cells += [fmt_mean_sd(table.values(label, key), fmt) for key, _, fmt in METRICS]
        lines.append(_row([*cells, collapsed]))
    return lines


def per_seed_table(table: Table, key: str, fmt: str) -> list[str]:
    header = ["configuration", *(f"seed {s}" for s in table.seeds)]
    lines = [_row(header), "|" + " --- |" * len(header)]
    for label in table.labels:
        cells = [label]
        for seed in table.seeds:
            value = table.seed_value(label, seed, key)
            cells.append("n/a" if value is None else fmt.format(value))
        lines.append(_row(cells))
    return lines


def claims(table: Table) -> list[tuple[str, str]]:
    """The README's lesson claims, each measured over the seeds (the rows of the issue that asked for them)."""
    seeds = table.seeds
    rows = []

    def per_seed(label: str, key: str, fmt: str) -> str:
        parts = []
        for s in seeds:
            value = table.seed_value(label, s, key)
            parts.append(f"{s}: " + ("n/a" if value is None else fmt.format(value)))
        return ", ".join(parts)

    ppl = table.values("plain", "ref_perplexity")
    rows.append(
        (
            "the plain run collapses within the run (reference perplexity ≥ 1000 at the end; ≥ 100 counted too)",
            f"on {collapse_counts(ppl)} seeds; ref. perplexity "
            f"{per_seed('plain', 'ref_perplexity', '{:.0f}')}; distinct-2 {per_seed('plain', 'distinct_2', '{:.2f}')}",
        )
    )
    diverse = [
        s
        for s in seeds
        if (p := table.seed_value("plain", s, "ref_perplexity")) is not None
        and p >= COLLAPSE_PERPLEXITY
        and (d := table.seed_value("plain", s, "distinct_2")) is not None
        and d >= 0.5
    ]
    collapsed = [
        s for s in seeds if (table.seed_value("plain", s, "ref_perplexity") or 0) >= COLLAPSE_PERPLEXITY
    ]
    rows.append(
        (
            '"distinct-2 falls" marks the hack (collapsed plain runs with distinct-2 still ≥ 0.5)',
            f"{len(diverse)} of the {len(collapsed)} collapsed"
            + (f" (seeds {', '.join(map(str, diverse))})" if diverse else ""),
        )
    )
    for label, what in (
        ("none", "at the preset's learning rate"),
        (HIGH_LR_LABEL, "at the high learning rate"),
    ):
        if label not in table.labels:
            continue
        ppl = table.values(label, "ref_perplexity")
        rows.append(
            (
                f"`--scale_rewards none` ends far from collapse, {what}",
                f"ref. perplexity ≥ 1000 / ≥ 100 on {collapse_counts(ppl)}; distinct-2 "
                f"{fmt_mean_sd(table.values(label, 'distinct_2'), '{:.2f}')}, ref. perplexity "
                f"{fmt_mean_sd(ppl, '{:.1f}')} ({per_seed(label, 'ref_perplexity', '{:.0f}')})",
            )
        )
    for key, name in (("kl_forward", "KL(pi‖ref)"), ("kl_backward", "KL(ref‖pi)")):
        by_seed = {
            s: b / f
            for s in seeds
            if (b := table.seed_value("backward", s, key)) is not None
            and (f := table.seed_value("forward", s, key))
        }
        if by_seed:
            ratios = list(by_seed.values())
            further = sum(r > 1 for r in ratios)
            rows.append(
                (
                    f"backward ends further from the reference than forward in {name} (kl_coef 0.1)",
                    f"ratio backward / forward {fmt_mean_sd(ratios, '{:.2f}')}; further on {further} of {len(ratios)} "
                    f"seeds ({', '.join(f'{s}: {r:.2f}' for s, r in by_seed.items())})",
                )
            )
    for label in ("forward", "backward"):
        spreads = [table.extra.get((label, s), {}) for s in seeds]
        penalty = [x["penalty_std"] for x in spreads if "penalty_std" in x]
        group = [x["group_std"] for x in spreads if "group_std" in x]
        if penalty and group:
            above = sum(x["penalty_std"] > x["group_std"] for x in spreads if x)
            rows.append(
                (
                    f'"the penalty steers the run almost alone" late in a run ({label}, kl_coef 0.1, last 10 steps)',
                    f"penalty spread (batch) {fmt_mean_sd(penalty, '{:.3f}')} against the reward's spread within a "
                    f"group {fmt_mean_sd(group, '{:.3f}')}; penalty spread larger on {above} of {len(penalty)} seeds",
                )
            )
    return rows


def spread_over_time(specs: Sequence[RunSpec], summaries: dict[RunSpec, dict], label: str) -> list[str]:
    """Per logging interval of ``label``'s runs: the rewards' spread within a group (what group scaling divides
    the advantages by) and the validation at the interval's end, mean ± sd over the seeds."""
    rows: dict[int, dict[str, list[float]]] = {}
    for spec in specs:
        summary = summaries.get(spec, {})
        if spec.label != label or "history" not in summary:
            continue
        validation = {r["step"]: r for r in summary["history"]}
        for entry in summary.get("train_log", []):
            if "reward/group_std" not in entry or entry.get("step") not in validation:
                continue
            row = rows.setdefault(entry["step"], {"group": [], "distinct_2": [], "ref_perplexity": []})
            row["group"].append(float(entry["reward/group_std"]))
            for key in ("distinct_2", "ref_perplexity"):
                row[key].append(float(validation[entry["step"]][key]))
    header = [
        "steps up to",
        "seeds",
        "reward spread within a group",
        "distinct-2 at the end",
        "ref. perplexity",
    ]
    lines = [_row(header), "|" + " --- |" * len(header)]
    for step in sorted(rows):
        row = rows[step]
        cells = [str(step), str(len(row["group"])), fmt_mean_sd(row["group"], "{:.2g}")]
        cells += [fmt_mean_sd(row["distinct_2"], "{:.2f}"), fmt_mean_sd(row["ref_perplexity"], "{:.1f}")]
        lines.append(_row(cells))
    return lines


def sweep_table(specs: Sequence[RunSpec], summaries: dict[RunSpec, dict]) -> list[str]:
    header = [
        "penalty",
        "kl_coef",
        "seeds",
        "sentiment",
        "KL(pi‖ref)",
        "KL(ref‖pi)",
        "ref. perplexity",
        "distinct-2",
    ]
    lines = [_row(header), "|" + " --- |" * len(header)]
    for kl_type, coef, points in sweep_points(specs, summaries):
        cells = [kl_type, f"{coef:g}", str(len(points))]
        for key, fmt in (
            ("sentiment_mean", "{:.3f}"),
            ("kl_forward", "{:.2f}"),
            ("kl_backward", "{:.2f}"),
            ("ref_perplexity", "{:.1f}"),
            ("distinct_2", "{:.2f}"),
        ):
            cells.append(fmt_mean_sd([p[key] for p in points], fmt))
        lines.append(_row(cells))
    return lines


def sweep_points(
    specs: Sequence[RunSpec], summaries: dict[RunSpec, dict]
) -> list[tuple[str, float, list[dict]]]:
    """(penalty, coefficient, the final records of its seeds), in sweep order."""
    groups: dict[tuple[str, float], list[dict]] = {}
    for spec in specs:
        if spec.label.startswith("sweep "):
            _, kl_type, _ = spec.label.split(" ")
            final = summaries.get(spec, {}).get("final")
            entry = groups.setdefault((kl_type, dict(spec.flags)["kl_coef"]), [])
            if final:
                entry.append(final)
    return [(k, c, points) for (k, c), points in groups.items()]


def write_document(
    path: Path,
    config: LessonConfig,
    argv: Sequence[str],
    specs: Sequence[RunSpec],
    summaries: dict[RunSpec, dict],
    figures: dict[str, Path],
) -> Path:
    labels = [label for label, _, _ in CONFIGURATIONS]
    if any(s.label == HIGH_LR_LABEL for s in specs):
        labels.append(HIGH_LR_LABEL)
    flags = {label: RunSpec(label, 0, f).cli_flags for label, f, _ in CONFIGURATIONS}
    flags[HIGH_LR_LABEL] = f"--scale_rewards none --learning_rate {config.high_learning_rate:g}"
    table = build_table(specs, summaries, labels)
    command = " ".join(["python -m exercise.lesson", *map(shlex.quote, argv)])
    failed_dirs: dict[str, tuple[RunSpec, str]] = {}
    for s in specs:
        if summaries.get(s, {}).get("error"):
            failed_dirs.setdefault(run_dir_name(s, config), (s, summaries[s]["error"]))
    failed = list(failed_dirs.values())
    distinct = len({run_dir_name(s, config) for s in specs})
    relative = {name: p.relative_to(path.parent).as_posix() for name, p in figures.items()}
    lines = [
        "# The lesson's runs over seeds",
        "",
        "Generated by `exercise/lesson.py`; do not edit by hand (the notes at the end are kept when it is rerun).",
        "",
        f"- command: `{command}`",
        f"- commit: {git_state()} (this document)",
        f"- runs made at (commit: runs; from each run's {MADE_AT}): {'; '.join(_made_at(specs, summaries))}",
        f"- made: {time.strftime('%Y-%m-%d')}, {distinct} runs ({len(failed)} failed or not run; n/a in the tables)",
        f"- every run: `python -m exercise.train --preset tiny --max_steps {config.max_steps} --eval_every "
        f"{config.eval_every} --validation_prompts {config.validation_prompts} --learning_rate "
        f"{config.learning_rate:g} --seed SEED FLAGS` (2 prompts x 8 completions of 24 tokens per step, one torch "
        "thread); the KL penalties and the shaping are the reference solution's (`--use_solution`)",
        "",
        "Values are the final validation (the last step) on the first "
        f"{config.validation_prompts} validation prompts: sentiment is VADER's, in [0, 1]; the KLs are per token, "
        "exact over the vocabulary at the prefixes the policy sampled; the reference perplexity is that of the "
        "samples under the starting model (about 5 for its own text). mean ± sd: over the seeds, sample standard "
        f"deviation. A run counts as collapsed when its reference perplexity ends at {COLLAPSE_PERPLEXITY:g} or "
        f"more; 'a / b of n' counts the runs at or above {COLLAPSE_PERPLEXITY:g} / {DRIFT_PERPLEXITY:g}.",
        "",
        "## The configurations",
        "",
        *summary_table(table, flags),
        "",
    ]
    if "curves" in relative:
        lines += [f"![validation curves of every configuration and seed]({relative['curves']})", ""]
    lines += ["## The lesson's claims, measured", "", _row(["claim", "measured"]), "| --- | --- |"]
    lines += [_row([claim, measured]) for claim, measured in claims(table)]
    lines += ["", "## Every seed", ""]
    for key, title, fmt in METRICS[:5]:
        lines += [f"**{title}**", "", *per_seed_table(table, key, fmt), ""]
    spreads = [
        _row(["configuration", *(f"seed {s}" for s in table.seeds)]),
        "|" + " --- |" * (len(table.seeds) + 1),
    ]
    for label in ("forward", "backward"):
        cells = [label]
        for seed in table.seeds:
            x = table.extra.get((label, seed), {})
            cells.append(f"{x['penalty_std']:.3f} / {x['group_std']:.3f}" if x else "-")
        spreads.append(_row(cells))
    lines += [
        "**Late spreads** (the last logging interval, steps "
        f"{max(1, config.max_steps - 9)}-{config.max_steps}): the KL penalty's standard deviation across the "
        "batch / the rewards' standard deviation within a prompt's group (what `--scale_rewards group` divides by)",
        "",
        *spreads,
        "",
    ]
    lines += [
        "**The plain run over time**: per logging interval (10 steps), the standard deviation of the rewards "
        "within a prompt's group of 8 (averaged over the interval's steps and prompts) and the validation at the "
        "interval's end",
        "",
        *spread_over_time(specs, summaries, "plain"),
        "",
    ]
    points = sweep_points(specs, summaries)
    if points:
        sweep_seeds = sorted({s.seed for s in specs if s.label.startswith("sweep ")})
        lines += [
            "## The kl_coef sweep",
            "",
            f"Both penalties at each `kl_coef`, seeds {', '.join(map(str, sweep_seeds))}, learning rate "
            f"{config.learning_rate:g}, held fixed (the `none` rows above show how far the learning rate alone moves a run).",
            "",
            *sweep_table(specs, summaries),
            "",
        ]
        if "sweep" in relative:
            lines += [f"![final sentiment against final KL, both directions]({relative['sweep']})", ""]
    if failed:
        lines += ["## Runs that failed or were not run", ""]
        lines += [f"- {s.label}, seed {s.seed}: {error}" for s, error in failed]
        lines.append("")
    lines += [NOTES_START, _kept_notes(path), NOTES_END, ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    return path


NOTES_START = "<!-- notes: written by hand, kept when the file is regenerated -->"
NOTES_END = "<!-- end of notes -->"


def _kept_notes(path: Path) -> str:
    """The hand-written notes of the previous version of the document (empty when there were none)."""
    try:
        text = path.read_text()
    except OSError:
        return ""
    if NOTES_START in text and NOTES_END in text:
        return text.split(NOTES_START, 1)[1].split(NOTES_END, 1)[0].strip("\n")
    return ""


# --- figures --------------------------------------------------------------------------------------------------

CURVE_PANELS = [
    ("sentiment_mean", "validation sentiment", False),
    ("distinct_2", "distinct-2", False),
    ("ref_perplexity", "reference perplexity", True),
    ("kl_forward", "KL(pi‖ref) per token", True),
    ("kl_backward", "KL(ref‖pi) per token", True),
]


def curves_figure(
    specs: Sequence[RunSpec], summaries: dict[RunSpec, dict], labels: Sequence[str], out: Path
) -> Path:
    """Validation curves: one colour per configuration, one thin line per seed (a mean would hide the
    seeds that collapse and those that do not)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .compare import load_run
    from .report import log_axis

    fig, axes = plt.subplots(
        1, len(CURVE_PANELS), figsize=(4 * len(CURVE_PANELS), 4), constrained_layout=True
    )
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, label in enumerate(labels):
        colour = colours[index % len(colours)]
        first = True
        for spec in specs:
            if spec.label != label or "final" not in summaries.get(spec, {}):
                continue
            run = load_run(Path(summaries[spec]["config"]["output_dir"]) / "summary.json", label)
            for ax, (key, _, _) in zip(axes, CURVE_PANELS, strict=True):
                steps, values = run.series(key)
                ax.plot(steps, values, color=colour, alpha=0.7, lw=1, label=label if first else None)
            first = False
    for ax, (key, title, log) in zip(axes, CURVE_PANELS, strict=True):
        ax.set(title=title, xlabel="step")
        if key.startswith("kl_"):
            ax.set_yscale("symlog", linthresh=0.1)  # KL starts at exactly 0
        elif log:
            log_axis(ax)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=len(labels))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=72)
    plt.close(fig)
    return out


def sweep_figure(specs: Sequence[RunSpec], summaries: dict[RunSpec, dict], out: Path) -> Path:
    """Final sentiment against final KL, one panel per KL direction: small dots per seed, large dots the means,
    joined in order of kl_coef and labelled with it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = sweep_points(specs, summaries)
    sweep_seeds = {s.seed for s in specs if s.label.startswith("sweep ")}
    # The plain runs of the sweep's seeds: where kl_coef 0 ends, for scale.
    plain = [
        summaries[s]["final"]
        for s in specs
        if s.label == "plain" and s.seed in sweep_seeds and summaries.get(s, {}).get("final")
    ]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True, constrained_layout=True)
    colours = {"forward": "tab:blue", "backward": "tab:orange"}
    for ax, (key, title) in zip(
        axes, (("kl_forward", "KL(pi‖ref)"), ("kl_backward", "KL(ref‖pi)")), strict=True
    ):
        for kl_type in ("forward", "backward"):
            mine = [(c, p) for k, c, p in points if k == kl_type and p]
            means = []
            for coef, finals in mine:
                xs = [f[key] for f in finals]
                ys = [f["sentiment_mean"] for f in finals]
                ax.scatter(xs, ys, s=12, color=colours[kl_type], alpha=0.45)
                means.append((coef, sum(xs) / len(xs), sum(ys) / len(ys)))
            if means:
                ax.plot(
                    [m[1] for m in means],
                    [m[2] for m in means],
                    "o-",
                    color=colours[kl_type],
                    label=f"{kl_type} penalty ({'KL(pi‖ref)' if kl_type == 'forward' else 'KL(ref‖pi)'})",
                )
                for coef, x, y in means:
                    ax.annotate(f"{coef:g}", (x, y), textcoords="offset points", xytext=(4, -10), fontsize=8)
        if plain:
            ax.scatter(
                [f[key] for f in plain],
                [f["sentiment_mean"] for f in plain],
                marker="x",
                color="grey",
                label="no penalty (plain run)",
            )
        ax.set_xscale("log")
        ax.set(xlabel=f"final {title} per token (log scale)", title=f"sentiment against {title}")
    axes[0].set_ylabel("final validation sentiment")
    axes[0].legend(loc="lower right", fontsize=8)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=72)
    plt.close(fig)
    return out


# --- the command ----------------------------------------------------------------------------------------------


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
