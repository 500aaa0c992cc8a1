"""Calibrate the training checks: run the reference and known-wrong KL penalties and shapings over several seeds,
score them with the thresholds of ``grader/training/calibration/thresholds.toml`` and write the table.

    python -m grader.tools calibrate --preset tiny --seeds 0 1 2 3 4          # -> grader/training/calibration/tiny.md
    python -m grader.tools calibrate --preset gpt2 --seeds 0 1 2 3 4          # on a GPU with the models cached

The variants (the reference and known-wrong submissions, what each must pass or fail) are
:mod:`grader.tools.calibrate_variants`; the table, its verdicts and margins :mod:`grader.tools.calibrate_table`.

The table lists every run's numbers, each check's verdict per seed, and the margins: how far the worst reference
seed and the best wrong seed are from each threshold. Suggested thresholds (half-way, geometrically for ratios)
are printed for a preset that has none yet.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from grader.dataclass_cli import parse_into
from grader.tools.calibrate_table import render
from grader.tools.calibrate_variants import VARIANT_RUNS, VARIANTS, variant_sources
from grader.training.runs import Job, execute
from grader.training.settings import RUNS, load_settings

__all__ = ["VARIANTS", "CalibrateConfig", "calibrate", "main", "parse_args", "variant_sources"]

CALIBRATION_DIR = Path(__file__).resolve().parents[1] / "training" / "calibration"


@dataclass
class CalibrateConfig:
    preset: Literal["tiny", "gpt2"] = field(
        default="tiny",
        metadata={
            "help": "the preset to calibrate (its tables in grader/training/calibration/thresholds.toml)"
        },
    )
    seeds: list[int] = field(
        default_factory=lambda: [0, 1, 2, 3, 4],
        metadata={"help": "grading seeds (each is a grader --seed)", "metavar": "N"},
    )
    variants: list[str] = field(
        default_factory=lambda: list(VARIANTS),
        metadata={"help": "which submissions to run", "choices": VARIANTS},
    )
    runs: list[str] = field(
        default_factory=lambda: list(RUNS),
        metadata={
            "help": "which graded runs to make (the reference's controls are added: the baseline for the KL "
            "runs, the forward run for the shaped one); e.g. --runs shaped to recalibrate the shaping only",
            "choices": tuple(RUNS),
        },
    )
    out: Path | None = field(
        default=None,
        metadata={
            "help": "the markdown table to write (default: grader/training/calibration/<preset>.md)",
            "metavar": "PATH",
        },
    )
    jobs: int | None = field(
        default=None,
        metadata={"help": "parallel training processes (default: CPU cores, at most 4)", "metavar": "N"},
    )
    timeout: float = field(default=7200.0, metadata={"help": "seconds for all runs together"})
    settings: Path | None = field(
        default=None,
        metadata={
            "help": "read run settings and thresholds from this file instead of thresholds.toml "
            "(to try settings before committing them)",
            "metavar": "TOML",
        },
    )
    records: Path | None = field(
        default=None,
        metadata={
            "help": "also save every run's record (JSON) here, to redo the table later with --rerender. When "
            "the file exists, the runs it already holds (made without error) are not made again and the new "
            "ones are added: an interrupted calibration resumes, and one made in parts (--seeds 0, then "
            "--seeds 1 ...) adds up; --rerender FILE then writes the table of everything in it",
            "metavar": "JSON",
        },
    )
    rerender: Path | None = field(
        default=None,
        metadata={
            "help": "make no runs: write the table from records saved with --records, scored with the "
            "current thresholds (to try thresholds without rerunning)",
            "metavar": "JSON",
        },
    )


def parse_args(argv: Sequence[str] | None = None) -> CalibrateConfig:
    return parse_into(
        CalibrateConfig,
        argv,
        prog="python -m grader.tools calibrate",
        description="Calibrate the training checks: the reference and wrong penalties and shapings over seeds "
        "-> a table.",
    )


def calibrate(config: CalibrateConfig) -> tuple[str, bool]:
    """Run everything, return (the markdown table, whether every expectation held on every seed)."""
    from grader.sandbox import REPO_ROOT

    reference = (REPO_ROOT or Path.cwd()) / "reference" / "rewards.py"
    if not reference.is_file():
        raise SystemExit(
            f"calibration needs the reference solution at {reference} (the instructor repository)"
        )
    unknown = sorted(set(config.variants) - set(VARIANTS))
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    variants = [v for v in VARIANTS if v in config.variants]
    if "reference" not in variants:
        variants.insert(0, "reference")  # the baseline comes from it
    settings = load_settings(config.preset, config.settings)
    if config.rerender:
        saved = json.loads(config.rerender.read_text(encoding="utf-8"))
        return render(
            saved["records"],
            settings,
            saved["seeds"],
            [v for v in VARIANTS if v in saved["variants"]],
            _command(config.preset, saved["seeds"], saved["variants"], saved["runs"], config.settings),
            saved["elapsed"],
            saved["n_runs"],
        )
    previous = _load_saved(config.records)
    scratch = Path(tempfile.mkdtemp(prefix="grader-calibrate-"))
    try:
        files = {}
        for name, text in variant_sources(reference).items():
            if name in variants:
                files[name] = scratch / f"{name}.py"
                files[name].write_text(text, encoding="utf-8")
        wanted = set(config.runs)
        controls = {"baseline"} if wanted & {"forward", "backward"} else set()
        controls |= {"forward"} if "shaped" in wanted else set()
        jobs = [
            Job(f"{name}/{run}/seed{seed}", run, str(files[name]), seed)
            for seed in config.seeds
            for name in variants
            for run in VARIANT_RUNS[name]
            if run in wanted or (name == "reference" and run in controls)
        ]
        done = {key for key, record in previous["records"].items() if record.get("ok")}
        jobs_to_make = [job for job in jobs if job.key not in done]
        started = time.monotonic()
        made = execute(
            jobs_to_make,
            work_dir=scratch / "work",
            timeout_s=config.timeout,
            preset=config.preset,
            lanes=config.jobs,
            settings_path=config.settings.absolute() if config.settings else None,
        )
        elapsed = time.monotonic() - started
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    records = {**previous["records"], **{key: record.to_dict() for key, record in made.items()}}
    command = _command(config.preset, config.seeds, variants, config.runs, config.settings)
    if config.records:
        saved = {
            "records": records,
            "seeds": sorted(set(previous["seeds"]) | set(config.seeds)),
            "variants": [v for v in VARIANTS if v in set(previous["variants"]) | set(variants)],
            "runs": [r for r in RUNS if r in set(previous["runs"]) | set(config.runs)],
            "elapsed": previous["elapsed"] + elapsed,
            "n_runs": previous["n_runs"] + len(jobs_to_make),
        }
        config.records.write_text(json.dumps(saved), encoding="utf-8")
    wanted_records = {job.key: records[job.key] for job in jobs}
    return render(wanted_records, settings, config.seeds, variants, command, elapsed, len(jobs_to_make))


def _load_saved(path: Path | None) -> dict:
    """What an earlier calibration saved with ``--records`` (nothing when there is no such file yet)."""
    empty = {"records": {}, "seeds": [], "variants": [], "runs": [], "elapsed": 0.0, "n_runs": 0}
    if path is None or not path.is_file():
        return empty
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SystemExit(
            f"{path}: cannot read the saved records ({exc}); move it away to start afresh"
        ) from None
    return {**empty, **saved}


def _command(
    preset: str, seeds: Sequence[int], variants: Sequence[str], runs: Sequence[str], settings
) -> str:
    """The one command that makes this table from scratch."""
    command = f"python -m grader.tools calibrate --preset {preset} --seeds {' '.join(map(str, seeds))}"
    if [v for v in VARIANTS if v in variants] != list(VARIANTS):
        command += " --variants " + " ".join(v for v in VARIANTS if v in variants)
    if set(runs or RUNS) != set(RUNS):
        command += " --runs " + " ".join(r for r in RUNS if r in runs)
    if settings:
        command += f" --settings {settings}"
    return command


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_args(argv)
    out = config.out or CALIBRATION_DIR / f"{config.preset}.md"
    text, ok = calibrate(config)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    print(text)
    print(
        f"Wrote {out}. {'Every requirement held.' if ok else 'SOME REQUIREMENTS FAILED: see the verdicts.'}"
    )
    return 0 if ok else 1
