"""Calibrate the training checks: run the reference and known-wrong KL penalties over several seeds, score them
with the thresholds of ``grader/calibration/thresholds.toml`` and write the table.

    python -m grader.calibrate --preset tiny --seeds 0 1 2 3 4          # -> grader/calibration/tiny.md
    python -m grader.calibrate --preset gpt2 --seeds 0 1 2 3 4          # on a GPU with the models cached

The variants are submission files generated from ``reference/rewards.py`` (instructor repository only), graded
through exactly the machinery a grade uses (:func:`grader.training.execute`: lanes, sandbox, the real pipeline):

* ``reference``: must pass every training check on every seed;
* ``zero_kl``: both penalties return 0 (no regularisation): must fail the forward and backward checks;
* ``sign_flipped``: both penalties negated (a bonus for drifting): must fail both;
* ``r_log_r_backward``: the importance-sampled value estimate r log r (r = pi_ref/pi) as the backward penalty:
  must fail the backward check (it anti-regularises).

The table lists every run's numbers, each check's verdict per seed, and the margins: how far the worst reference
seed and the best wrong seed are from each threshold. Suggested thresholds (half-way, geometrically for ratios)
are printed for a preset that has none yet.
"""

from __future__ import annotations

import datetime
import math
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from grader import training as T
from grader.checks.training import gain, score_baseline, score_kl, score_shaped
from grader.dataclass_cli import parse_into

CALIBRATION_DIR = Path(__file__).with_name("calibration")

# Appended to the reference solution; each keeps the reference's other functions.
_OVERRIDES = {
    "reference": "",
    "zero_kl": """
def kl_penalty_forward(log_probs_policy, log_probs_ref, kl_coef=0.1):
    return [0.0 for _ in log_probs_policy]


def kl_penalty_backward(log_probs_policy, log_probs_ref, kl_coef=0.1):
    return [0.0 for _ in log_probs_policy]
""",
    "sign_flipped": """
_right_forward, _right_backward = kl_penalty_forward, kl_penalty_backward


def kl_penalty_forward(log_probs_policy, log_probs_ref, kl_coef=0.1):
    return [-p for p in _right_forward(log_probs_policy, log_probs_ref, kl_coef)]


def kl_penalty_backward(log_probs_policy, log_probs_ref, kl_coef=0.1):
    return [-p for p in _right_backward(log_probs_policy, log_probs_ref, kl_coef)]
""",
    "r_log_r_backward": """
import math as _math


def kl_penalty_backward(log_probs_policy, log_probs_ref, kl_coef=0.1):
    # r log r with r = pi_ref / pi (log r clipped at log 20): an unbiased estimate of KL(pi_ref || pi)'s VALUE
    out = []
    for row_pi, row_ref in zip(log_probs_policy, log_probs_ref):
        terms = [_math.exp(min(lr - lp, _math.log(20.0))) * min(lr - lp, _math.log(20.0))
                 for lp, lr in zip(row_pi, row_ref)]
        out.append(kl_coef * sum(terms) / len(terms) if terms else 0.0)
    return out
""",
}
VARIANTS = tuple(_OVERRIDES)
#: The runs each variant needs (the baseline and the shaped run use no KL penalty: made once, with the reference).
_VARIANT_RUNS = {
    "reference": ("baseline", "forward", "backward", "shaped"),
    "zero_kl": ("forward", "backward"),
    "sign_flipped": ("forward", "backward"),
    "r_log_r_backward": ("backward",),
}
#: Which checks must pass (True) or fail (False) for each variant; others are reported, not required.
EXPECTED = {
    "reference": {"baseline": True, "forward": True, "backward": True, "shaped": True},
    "zero_kl": {"forward": False, "backward": False},
    "sign_flipped": {"forward": False, "backward": False},
    "r_log_r_backward": {"backward": False},
}


@dataclass
class CalibrateConfig:
    preset: Literal["tiny", "gpt2"] = field(
        default="tiny",
        metadata={"help": "the preset to calibrate (its tables in grader/calibration/thresholds.toml)"},
    )
    seeds: list[int] = field(
        default_factory=lambda: [0, 1, 2, 3, 4],
        metadata={"help": "grading seeds (each is a grader --seed)", "metavar": "N"},
    )
    variants: list[str] = field(
        default_factory=lambda: list(VARIANTS),
        metadata={"help": "which submissions to run", "choices": VARIANTS},
    )
    out: Path | None = field(
        default=None,
        metadata={
            "help": "the markdown table to write (default: grader/calibration/<preset>.md)",
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


def parse_args(argv: Sequence[str] | None = None) -> CalibrateConfig:
    return parse_into(
        CalibrateConfig,
        argv,
        prog="python -m grader.calibrate",
        description="Calibrate the training checks: the reference and wrong KL penalties over seeds -> a table.",
    )


def variant_sources(reference: Path) -> dict[str, str]:
    source = reference.read_text(encoding="utf-8")
    return {
        name: source + ("\n\n# --- calibration variant: " + name + "\n" + extra if extra else "")
        for name, extra in _OVERRIDES.items()
    }


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
    settings = T.load_settings(config.preset, config.settings)
    scratch = Path(tempfile.mkdtemp(prefix="grader-calibrate-"))
    try:
        files = {}
        for name, text in variant_sources(reference).items():
            if name in variants:
                files[name] = scratch / f"{name}.py"
                files[name].write_text(text, encoding="utf-8")
        jobs = [
            T.Job(f"{name}/{run}/seed{seed}", run, str(files[name]), seed)
            for seed in config.seeds
            for name in variants
            for run in _VARIANT_RUNS[name]
        ]
        started = time.monotonic()
        records = T.execute(
            jobs,
            work_dir=scratch / "work",
            timeout_s=config.timeout,
            preset=config.preset,
            lanes=config.jobs,
            settings_path=config.settings.absolute() if config.settings else None,
        )
        elapsed = time.monotonic() - started
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    command = "python -m grader.calibrate --preset {} --seeds {}".format(
        config.preset, " ".join(map(str, config.seeds))
    )
    if variants != list(VARIANTS):
        command += " --variants " + " ".join(variants)
    if config.settings:
        command += f" --settings {config.settings}"
    return render(records, settings, config.seeds, variants, command, elapsed, len(jobs))


@dataclass
class _Row:
    variant: str
    run: str
    seed: int
    record: dict
    verdict: bool | None  # passed the check of this run, None when it could not be scored


def _verdict(
    run: str, record: dict, baseline: dict, th: T.Thresholds, settings: T.TrainingSettings
) -> bool | None:
    try:
        if run == "baseline":
            return score_baseline(record, th).fraction >= 1
        if run == "shaped":
            return score_shaped(baseline, record, th).fraction >= 1
        return score_kl(run, baseline, record, th, settings.runs.kl_coef(run)).fraction >= 1
    except Exception:  # noqa: BLE001 - an unusable baseline: no verdict
        return None


def _f(value: float | None, fmt: str = "{:.3f}") -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else fmt.format(value)


def render(
    records: dict[str, dict],
    settings: T.TrainingSettings,
    seeds: Sequence[int],
    variants: Sequence[str],
    command: str,
    elapsed: float,
    n_runs: int,
) -> tuple[str, bool]:
    th = settings.thresholds
    rows: list[_Row] = []
    for seed in seeds:
        baseline = records.get(f"reference/baseline/seed{seed}", {})
        for variant in variants:
            for run in _VARIANT_RUNS[variant]:
                record = records.get(f"{variant}/{run}/seed{seed}", {})
                rows.append(_Row(variant, run, seed, record, _verdict(run, record, baseline, th, settings)))

    def base_final(seed: int, metric: str) -> float | None:
        history = records.get(f"reference/baseline/seed{seed}", {}).get("history") or []
        return history[-1][metric] if history else None

    lines = [
        f"# Training-check calibration: preset `{settings.preset}`",
        "",
        "Regenerate (instructor repository; overwrites this file):",
        "",
        "```",
        command,
        "```",
        "",
        f"Written {datetime.date.today().isoformat()} by `grader/calibrate.py` on {platform.machine()} "
        f"({platform.python_implementation()} {platform.python_version()}, {_versions()}); {n_runs} runs in "
        f"{elapsed:.0f} s, one torch thread per run.",
        "",
        f"Run settings (`[{settings.preset}.runs]` of `grader/calibration/thresholds.toml`): "
        + ", ".join(f"{k} = {v:g}" for k, v in vars(settings.runs).items()),
        "",
        f"Thresholds (`[{settings.preset}.thresholds]`): "
        + ", ".join(f"{k} = {v:g}" for k, v in vars(th).items()),
        "",
        "## Verdicts",
        "",
        "Passes per check over the seeds; **bold** where the calibration requires it (reference: pass on every "
        "seed; the wrong penalties: fail on every seed).",
        "",
        "| variant | " + " | ".join(T.RUNS) + " |",
        "| --- | " + " | ".join("---" for _ in T.RUNS) + " |",
    ]
    all_good = True
    for variant in variants:
        cells = []
        for run in T.RUNS:
            verdicts = [r.verdict for r in rows if r.variant == variant and r.run == run]
            if not verdicts:
                cells.append("")
                continue
            passes = sum(1 for v in verdicts if v)
            text = f"{passes}/{len(verdicts)} pass"
            want = EXPECTED[variant].get(run)
            if want is not None:
                good = all(v is want for v in verdicts)
                all_good &= good
                text = f"**{text}**" + ("" if good else " (NOT AS REQUIRED)")
            cells.append(text)
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    zero_same = [
        _same_history(records.get(f"zero_kl/{run}/seed{s}"), records.get(f"reference/baseline/seed{s}"))
        for s in seeds
        for run in ("forward", "backward")
        if "zero_kl" in variants
    ]
    if zero_same:
        lines += [
            "",
            f"Determinism: the zero-KL runs reproduce the baseline's validation history exactly in "
            f"{sum(zero_same)}/{len(zero_same)} cases (same seed, same rewards: the same run).",
        ]

    lines += ["", "## Margins", "", *_margins(rows, th, variants), ""]
    lines += [
        "## Every run",
        "",
        "Sentiment is the validation mean (held-out prompts); KL values are exact, per token, at the final "
        "validation; ratio = the run's final KL in its penalty's direction / the baseline's (same seed).",
        "",
        "| seed | variant | run | sentiment step 0 | final | gain | KL(pi‖ref) | KL(ref‖pi) | ratio | distinct-2 "
        "| verdict | wall s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        history = row.record.get("history") or []
        if not history:
            lines.append(
                f"| {row.seed} | {row.variant} | {row.run} | | | | | | | | error: "
                f"{str(row.record.get('error'))[:120]} | |"
            )
            continue
        first, last = history[0], history[-1]
        ratio = None
        if row.run in ("forward", "backward"):
            metric = "kl_forward" if row.run == "forward" else "kl_backward"
            base = base_final(row.seed, metric)
            ratio = last[metric] / base if base else None
        verdict = {True: "pass", False: "fail", None: "-"}[row.verdict]
        lines.append(
            f"| {row.seed} | {row.variant} | {row.run} | {first['sentiment_mean']:.3f} | "
            f"{last['sentiment_mean']:.3f} | {gain(history):+.3f} | {last['kl_forward']:.3f} | "
            f"{last['kl_backward']:.3f} | {_f(ratio, '{:.3f}')} | {_f(last.get('distinct_2'), '{:.2f}')} | "
            f"{verdict} | {_f(row.record.get('wall_time_s'), '{:.1f}')} |"
        )
    return "\n".join(lines) + "\n", all_good


def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    parts = []
    for package in ("torch", "transformers", "trl"):
        try:
            parts.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            pass
    return ", ".join(parts)


def _same_history(a: dict | None, b: dict | None) -> bool:
    keys = ("step", "sentiment_mean", "kl_forward", "kl_backward")
    ha, hb = (a or {}).get("history") or [], (b or {}).get("history") or []
    return bool(ha) and [[h[k] for k in keys] for h in ha] == [[h[k] for k in keys] for h in hb]


def _margins(rows: list[_Row], th: T.Thresholds, variants: Sequence[str]) -> list[str]:
    """Worst reference seed and best wrong seed against each threshold."""

    def values(variant: str, run: str, what: str) -> list[float]:
        out = []
        for row in rows:
            history = row.record.get("history") or []
            if row.variant != variant or row.run != run or not history:
                continue
            if what == "gain":
                out.append(gain(history))
            else:
                base = next(
                    (
                        r.record.get("history")
                        for r in rows
                        if r.variant == "reference" and r.run == "baseline" and r.seed == row.seed
                    ),
                    None,
                )
                metric = "kl_forward" if run == "forward" else "kl_backward"
                if base:
                    out.append(history[-1][metric] / base[-1][metric])
        return out

    lines = [
        "| quantity | threshold | reference, worst seed | margin | wrong variants, closest seed |",
        "| --- | --- | --- | --- | --- |",
    ]
    suggestions = {}
    for run, key, label in (
        ("baseline", "baseline_min_gain", "baseline: sentiment gain"),
        ("shaped", "shaped_min_gain", "shaped: sentiment gain"),
    ):
        ref = values("reference", run, "gain")
        if ref:
            worst = min(ref)
            lines.append(
                f"| {label} | >= {getattr(th, key):+.3f} | {worst:+.3f} | {worst - getattr(th, key):+.3f} | |"
            )
    for run in ("forward", "backward"):
        ref_gain = values("reference", run, "gain")
        ref_ratio = values("reference", run, "ratio")
        wrong = {
            v: values(v, run, "ratio") for v in variants if v != "reference" and EXPECTED[v].get(run) is False
        }
        closest = {v: min(vals) for v, vals in wrong.items() if vals}
        if ref_gain:
            lines.append(
                f"| {run}: sentiment gain | >= {th.kl_min_gain:+.3f} | {min(ref_gain):+.3f} | "
                f"{min(ref_gain) - th.kl_min_gain:+.3f} | |"
            )
        if ref_ratio:
            worst = max(ref_ratio)
            wrong_text = ", ".join(f"{v} {x:.3f}" for v, x in closest.items())
            if closest:
                wrong_text += f" ({min(closest.values()) / th.kl_max_ratio:.1f}x above)"
            factor_ref = th.kl_max_ratio / worst if worst > 0 else math.inf
            lines.append(
                f"| {run}: final KL / baseline's | <= {th.kl_max_ratio:.3f} | {worst:.3f} | "
                f"{factor_ref:.1f}x below | {wrong_text} |"
            )
            if closest:
                suggestions[run] = math.sqrt(worst * min(closest.values()))
    if suggestions:
        lines += [
            "",
            "Ratio thresholds half-way (geometric mean) between the worst reference seed and the closest wrong "
            "seed: "
            + ", ".join(f"{run} {value:.3f}" for run, value in suggestions.items())
            + " (kl_max_ratio must lie between the two for every seed).",
        ]
    return lines


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


if __name__ == "__main__":
    sys.exit(main())
