"""Calibrate the training checks: run the reference and known-wrong KL penalties and shapings over several seeds,
score them with the thresholds of ``grader/training/calibration/thresholds.toml`` and write the table.

    python -m grader.tools.calibrate --preset tiny --seeds 0 1 2 3 4          # -> grader/training/calibration/tiny.md
    python -m grader.tools.calibrate --preset gpt2 --seeds 0 1 2 3 4          # on a GPU with the models cached

The variants are submission files generated from ``reference/rewards.py`` (instructor repository only), graded
through exactly the machinery a grade uses (:func:`grader.training.runs.execute`: lanes, sandbox, the real pipeline):

* ``reference``: must pass every training check on every seed;
* ``zero_kl``: both penalties return 0 (no regularisation): must fail the forward and backward checks;
* ``sign_flipped``: both penalties negated (a bonus for drifting): must fail both;
* ``r_log_r_backward``: the importance-sampled value estimate r log r (r = pi_ref/pi) as the backward penalty:
  must fail the backward check (it anti-regularises);
* shapings (the shaped run: the variant's ``shaped_reward`` with the reference's forward penalty, judged against
  the reference's forward run): ``identity_shaping`` (the score unchanged: the same run as its control),
  ``constant_shaping`` and ``noise_shaping`` (a pseudo-random function of the text, barely increasing in the
  score: it passes every property check but rewards nothing about sentiment) learn nothing,
  ``gibberish_shaping`` (every new word doubles the reward) drifts into word salad the reference finds unnatural
  and the penalty no longer holds back: each must fail the shaped check. ``vocabulary_shaping`` (score times the
  number of different words: a milder pull towards word lists) and ``previous_shaping`` (the reference's earlier
  score x distinct-word ratio x length) are reported, not required either way.

The wrong KL penalties that the runs cannot tell apart in a short run (k3 as the forward penalty, a sum over
tokens instead of a mean) are not calibrated here: the rubric gates the training points on the property checks
that decide them exactly (see the table's header).

The table lists every run's numbers, each check's verdict per seed, and the margins: how far the worst reference
seed and the best wrong seed are from each threshold. Suggested thresholds (half-way, geometrically for ratios)
are printed for a preset that has none yet.
"""

from __future__ import annotations

import datetime
import json
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

from grader.checks.training import gain, score_baseline, score_kl, score_shaped
from grader.dataclass_cli import parse_into
from grader.training.runs import Job, RunRecord, execute
from grader.training.settings import RUNS, Thresholds, TrainingSettings, load_settings

CALIBRATION_DIR = Path(__file__).resolve().parents[1] / "training" / "calibration"

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
    "identity_shaping": """
def shaped_reward(scores, completions, prompts=None):
    return list(scores)
""",
    "constant_shaping": """
def shaped_reward(scores, completions, prompts=None):
    return [0.5 for _ in scores]
""",
    "noise_shaping": """
import zlib as _zlib


def shaped_reward(scores, completions, prompts=None):
    # deterministic noise from the text, barely increasing in the score
    return [_zlib.crc32(c.encode()) / 2**32 + 1e-3 * s for s, c in zip(scores, completions)]
""",
    "gibberish_shaping": """
import re as _re


def shaped_reward(scores, completions, prompts=None):
    # every different word doubles the reward, however the text reads
    return [s * 2.0 ** len(set(_re.findall(r"[a-z']+", c.lower()))) for s, c in zip(scores, completions)]
""",
    "vocabulary_shaping": """
import re as _re


def shaped_reward(scores, completions, prompts=None):
    # a varied vocabulary: the score times the number of different words
    return [s * len(set(_re.findall(r"[a-z']+", c.lower()))) for s, c in zip(scores, completions)]
""",
    "previous_shaping": """
import re as _re


def shaped_reward(scores, completions, prompts=None):
    # the reference's shaping until the gibberish it produced without a KL penalty was measured (issue 10)
    out = []
    for s, c in zip(scores, completions):
        words = _re.findall(r"[a-z']+", c.lower())
        fluency = len(set(words)) / len(words) * min(1.0, (len(words) + 1) / 6) if words else 1 / 6
        out.append(s * fluency)
    return out
""",
}
VARIANTS = tuple(_OVERRIDES)
SHAPING_VARIANTS = tuple(v for v in VARIANTS if v.endswith("_shaping"))
#: The runs each variant needs (the baseline needs none of its code: made once, with the reference).
_VARIANT_RUNS = {
    "reference": ("baseline", "forward", "backward", "shaped"),
    "zero_kl": ("forward", "backward"),
    "sign_flipped": ("forward", "backward"),
    "r_log_r_backward": ("backward",),
    **{name: ("shaped",) for name in SHAPING_VARIANTS},
}
#: Which checks must pass (True) or fail (False) for each variant; others are reported, not required.
EXPECTED = {
    "reference": {"baseline": True, "forward": True, "backward": True, "shaped": True},
    "zero_kl": {"forward": False, "backward": False},
    "sign_flipped": {"forward": False, "backward": False},
    "r_log_r_backward": {"backward": False},
    "identity_shaping": {"shaped": False},
    "constant_shaping": {"shaped": False},
    "noise_shaping": {"shaped": False},
    "gibberish_shaping": {"shaped": False},
    "vocabulary_shaping": {},
    "previous_shaping": {},
}
#: The shaped check's quantities each wrong shaping is built to fail (its margins are reported against those).
SHAPING_TARGET = {
    "identity_shaping": ("repetition_drop",),
    "constant_shaping": ("gain",),
    "noise_shaping": ("gain",),
    "gibberish_shaping": ("perplexity_ratio", "shaped_kl_ratio"),
}
#: Quantities a check wants at most a threshold (the others: at least).
MAX_QUANTITIES = ("kl_ratio", "perplexity_ratio", "shaped_kl_ratio")


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
            for run in _VARIANT_RUNS[name]
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
    command = f"python -m grader.tools.calibrate --preset {preset} --seeds {' '.join(map(str, seeds))}"
    if [v for v in VARIANTS if v in variants] != list(VARIANTS):
        command += " --variants " + " ".join(v for v in VARIANTS if v in variants)
    if set(runs or RUNS) != set(RUNS):
        command += " --runs " + " ".join(r for r in RUNS if r in runs)
    if settings:
        command += f" --settings {settings}"
    return command


@dataclass
class _Row:
    variant: str
    run: str
    seed: int
    record: dict
    control: (
        dict  # what the run is scored against: the baseline (KL runs) or the reference's forward run (shaped)
    )
    verdict: bool | None  # passed the check of this run, None when it could not be scored


def _control(records: dict[str, dict], run: str, seed: int) -> dict:
    """The record a run of ``run`` is judged against at ``seed`` (the variants share the reference's)."""
    name = "forward" if run == "shaped" else "baseline"
    return records.get(f"reference/{name}/seed{seed}", {})


def _verdict(run: str, record: dict, control: dict, settings: TrainingSettings) -> bool | None:
    """Whether the run passes its check (the saved JSON records scored as the grader scores them)."""
    th = settings.thresholds
    try:
        this = RunRecord.from_dict(record)
        if run == "baseline":
            return score_baseline(this, th).fraction >= 1
        against = RunRecord.from_dict(control)
        if run == "shaped":
            return score_shaped(against, this, th).fraction >= 1
        return score_kl(run, against, this, th, settings.runs.kl_coef(run)).fraction >= 1
    except Exception:  # noqa: BLE001 - an unusable (or missing) control run: no verdict
        return None


def _quantities(row: _Row) -> dict[str, float]:
    """What the run's check compares with its thresholds (empty when the run or its control has no history)."""
    history = row.record.get("history") or []
    control = row.control.get("history") or []
    if not history:
        return {}
    out = {"gain": gain(history)}
    last = history[-1]
    if row.run in ("forward", "backward") and control:
        metric = "kl_forward" if row.run == "forward" else "kl_backward"
        out["kl_ratio"] = last[metric] / control[-1][metric] if control[-1][metric] > 0 else math.inf
    if row.run == "shaped" and control:
        out["repetition_drop"] = control[-1]["repetition"] - last["repetition"]
        base_ppl = control[-1]["ref_perplexity"]
        out["perplexity_ratio"] = last["ref_perplexity"] / base_ppl if base_ppl > 0 else math.inf
        base_kl = control[-1]["kl_forward"]
        out["shaped_kl_ratio"] = last["kl_forward"] / base_kl if base_kl > 0 else math.inf
    return out


def _f(value: float | None, fmt: str = "{:.3f}") -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else fmt.format(value)


_GATING_NOTE = (
    "**KL training points are gated on the property checks** (the chosen approach; `requires` in "
    "`grader/grading/rubric.toml`). In 80 steps the forward and backward runs cannot tell every wrong penalty from the "
    "right one: k3 (r - 1 - log r) as the forward penalty still holds the policy near the reference, and a sum "
    "over tokens instead of a mean is the right penalty with a larger coefficient, so both pass the runs' "
    "thresholds on most seeds, while the property checks (direction, value, mean over tokens) decide them "
    "exactly in milliseconds. Making the runs discriminate them would need longer runs or more seeds per grade. "
    "So a training check's points count only when its function's defining property checks pass, and this "
    "calibration only has to show that the runs separate the reference from the wrong penalties they *can* "
    "catch (zero, sign-flipped, r log r) and from the wrong shapings."
)

_SHAPED_NOTE = (
    "**The shaped run** is exercise 2's command (`--reward_shaping shaped --kl_type forward`): the submission's "
    "shaping with its forward penalty, judged against the forward run, which differs from it only in the "
    "shaping (same penalty, coefficient and seed). Against the baseline (no penalty) the comparison would say "
    "nothing about fluency: after 80 unregularised steps the baseline's own text has a reference perplexity "
    "of 10^3 to 10^4, so gibberish would look no worse; and returning the score unchanged would reproduce the "
    "baseline, not a better run. Against the forward run, that identity shaping reproduces its control exactly "
    "(repetition drop 0), a shaping that learns nothing fails the gain, and one that pays for word salad stands "
    "out against sensible text: in perplexity under the reference, and more clearly in KL(pi‖ref), because "
    "salad made of common phrases stays fairly predictable token by token while the policy has left the "
    "reference far behind (the KL ratio carries the 2x margins where the perplexity ratio's spread is too "
    "small). The price of this control: the run uses the submission's forward penalty, so a "
    "broken or unregularising `kl_penalty_forward` makes this check meaningless (the feedback says so; the "
    "rubric can gate it on the forward checks)."
)


def render(
    records: dict[str, dict],
    settings: TrainingSettings,
    seeds: Sequence[int],
    variants: Sequence[str],
    command: str,
    elapsed: float,
    n_runs: int,
) -> tuple[str, bool]:
    th = settings.thresholds
    rows: list[_Row] = []
    for seed in seeds:
        for variant in variants:
            for run in _VARIANT_RUNS[variant]:
                key = f"{variant}/{run}/seed{seed}"
                if key not in records:
                    continue  # not asked for (--runs)
                control = _control(records, run, seed)
                rows.append(
                    _Row(
                        variant,
                        run,
                        seed,
                        records[key],
                        control,
                        _verdict(run, records[key], control, settings),
                    )
                )

    lines = [
        f"# Training-check calibration: preset `{settings.preset}`",
        "",
        "Regenerate (instructor repository; overwrites this file):",
        "",
        "```",
        command,
        "```",
        "",
        f"Written {datetime.date.today().isoformat()} by `grader/tools/calibrate.py` on {platform.machine()} "
        f"({platform.python_implementation()} {platform.python_version()}, {_versions()}); {n_runs} runs in "
        f"{elapsed:.0f} s, one torch thread per run.",
        "",
        f"Run settings (`[{settings.preset}.runs]` of `grader/training/calibration/thresholds.toml`): "
        + ", ".join(f"{k} = {v:g}" for k, v in vars(settings.runs).items()),
        "",
        f"Thresholds (`[{settings.preset}.thresholds]`): "
        + ", ".join(f"{k} = {v:g}" for k, v in vars(th).items()),
        "",
        _GATING_NOTE,
        "",
        _SHAPED_NOTE,
        "",
        "## Verdicts",
        "",
        "Passes per check over the seeds; **bold** where the calibration requires it (reference: pass on every "
        "seed; the wrong penalties and shapings: fail on every seed).",
        "",
        "| variant | " + " | ".join(RUNS) + " |",
        "| --- | " + " | ".join("---" for _ in RUNS) + " |",
    ]
    all_good = True
    for variant in variants:
        cells = []
        for run in RUNS:
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

    same = []
    for variant, run, control in (
        ("zero_kl", "forward", "baseline"),
        ("zero_kl", "backward", "baseline"),
        ("identity_shaping", "shaped", "forward"),
    ):
        if variant in variants:
            for s in seeds:
                a, b = records.get(f"{variant}/{run}/seed{s}"), records.get(f"reference/{control}/seed{s}")
                if a is not None and b is not None:
                    same.append(_same_history(a, b))
    if same:
        lines += [
            "",
            "Determinism: the zero-KL runs reproduce the baseline's validation history, and the identity shaping "
            f"reproduces the forward run's, exactly in {sum(same)}/{len(same)} cases (same seed, same rewards: "
            "the same run).",
        ]

    lines += ["", "## Margins", "", *_margins(rows, th, variants), ""]
    lines += [
        "## Every run",
        "",
        "Sentiment is the validation mean (held-out prompts); KL values are exact, per token, at the final "
        "validation. ratio: for a KL run its final KL in its penalty's direction / the baseline's; for a shaped "
        "run its final perplexity under the reference / the forward run's (same seed; its KL ratio follows from "
        "the KL(pi‖ref) column and the forward run's row). repetition: share of a "
        "completion's words it already used (mean over completions); ref ppl: perplexity of the sampled text "
        "under the reference model.",
        "",
        "| seed | variant | run | sentiment step 0 | final | gain | KL(pi‖ref) | KL(ref‖pi) | ratio | distinct-2 "
        "| repetition | ref ppl | verdict | wall s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        history = row.record.get("history") or []
        if not history:
            lines.append(
                f"| {row.seed} | {row.variant} | {row.run} | | | | | | | | | | error: "
                f"{str(row.record.get('error'))[:120]} | |"
            )
            continue
        first, last = history[0], history[-1]
        q = _quantities(row)
        ratio = q.get("kl_ratio", q.get("perplexity_ratio"))
        verdict = {True: "pass", False: "fail", None: "-"}[row.verdict]
        lines.append(
            f"| {row.seed} | {row.variant} | {row.run} | {first['sentiment_mean']:.3f} | "
            f"{last['sentiment_mean']:.3f} | {gain(history):+.3f} | {last['kl_forward']:.3f} | "
            f"{last['kl_backward']:.3f} | {_f(ratio, '{:.3f}')} | {_f(last.get('distinct_2'), '{:.2f}')} | "
            f"{_f(last.get('repetition'), '{:.3f}')} | {_f(last.get('ref_perplexity'), '{:.1f}')} | "
            f"{verdict} | {_f(row.record.get('wall_time_s'), '{:.1f}')} |"
        )
    samples = _sample_section(rows)
    if samples:
        lines += ["", *samples]
    return "\n".join(lines) + "\n", all_good


def _sample_section(rows: list[_Row], per_run: int = 2) -> list[str]:
    """The first validation samples at the end of each shaped run of the first seed, and of its control."""
    first_seed = min((r.seed for r in rows if r.run == "shaped"), default=None)
    if first_seed is None:
        return []
    out = [
        f"## Samples (seed {first_seed}, final validation)",
        "",
        "What the text of each shaped run looks like at the end, next to the forward run (its control).",
        "",
    ]
    shown = [r for r in rows if r.seed == first_seed and r.run == "shaped"]
    control = next((r.control for r in shown if r.control.get("history")), None)
    entries = [("reference forward (control: plain score)", control or {})]
    entries += [(f"{r.variant} shaped", r.record) for r in shown]
    for label, record in entries:
        samples = ((record.get("history") or [{}])[-1].get("samples") or [])[:per_run]
        for sample in samples:
            text = " ".join(str(sample.get("completion", "")).split()).replace("|", "\\|")
            out.append(f"- {label}: *{sample.get('prompt', '')}* → {text}")
    return out


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


def _margins(rows: list[_Row], th: Thresholds, variants: Sequence[str]) -> list[str]:
    """Worst reference seed and closest wrong seed against each threshold, as factors: how many times the
    threshold the reference clears it by, and how many times over it the closest wrong variant misses it."""

    def values(variant: str, run: str, quantity: str) -> list[float]:
        return [
            q[quantity]
            for row in rows
            if row.variant == variant and row.run == run and quantity in (q := _quantities(row))
        ]

    def wrong_values(run: str, quantity: str) -> dict[str, float]:
        """Per wrong variant aimed at ``quantity``, its value closest to passing."""
        out = {}
        for v in variants:
            if v == "reference" or EXPECTED[v].get(run) is not False:
                continue
            if quantity not in (SHAPING_TARGET.get(v, ()) if run == "shaped" else ("kl_ratio",)):
                continue
            vals = values(v, run, quantity)
            if vals:
                out[v] = min(vals) if quantity in MAX_QUANTITIES else max(vals)
        return out

    lines = [
        "| quantity | threshold | reference, worst seed | margin | wrong variants, closest seed | margin |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    suggestions: dict[str, float] = {}
    specs = (
        # run, quantity, threshold key, label, "min" (value >= threshold) or "max" (value <= threshold)
        ("baseline", "gain", "baseline_min_gain", "baseline: sentiment gain", "min"),
        ("forward", "gain", "kl_min_gain", "forward: sentiment gain", "min"),
        ("forward", "kl_ratio", "kl_max_ratio", "forward: final KL / baseline's", "max"),
        ("backward", "gain", "kl_min_gain", "backward: sentiment gain", "min"),
        ("backward", "kl_ratio", "kl_max_ratio", "backward: final KL / baseline's", "max"),
        ("shaped", "gain", "shaped_min_gain", "shaped: sentiment gain", "min"),
        (
            "shaped",
            "repetition_drop",
            "shaped_min_repetition_drop",
            "shaped: repetition below forward's",
            "min",
        ),
        (
            "shaped",
            "perplexity_ratio",
            "shaped_max_perplexity_ratio",
            "shaped: ref perplexity / forward's",
            "max",
        ),
        ("shaped", "shaped_kl_ratio", "shaped_max_kl_ratio", "shaped: KL(pi‖ref) / forward's", "max"),
    )
    for run, quantity, key, label, kind in specs:
        ref = values("reference", run, quantity)
        if not ref:
            continue
        t = getattr(th, key)
        worst = min(ref) if kind == "min" else max(ref)
        wrong = wrong_values(run, quantity)
        if kind == "min":
            ref_margin = worst / t if t > 0 else math.inf
            closest = max(wrong.values()) if wrong else None
            wrong_margin = (t / closest if closest > 0 else math.inf) if closest is not None else None
        else:
            ref_margin = t / worst if worst > 0 else math.inf
            closest = min(wrong.values()) if wrong else None
            wrong_margin = closest / t if closest is not None else None
        fmt = "{:+.3f}" if kind == "min" else "{:.3f}"
        wrong_text = ", ".join(f"{v} {fmt.format(x)}" for v, x in wrong.items())
        lines.append(
            f"| {label} | {'>=' if kind == 'min' else '<='} {fmt.format(t)} | {fmt.format(worst)} | "
            f"{_factor(ref_margin)} | {wrong_text} | {_factor(wrong_margin) if wrong else ''} |"
        )
        if closest is not None:
            if kind == "max" or closest > 0:
                suggestions[label] = math.sqrt(worst * closest)
            else:  # the wrong variants do not clear 0: a threshold at half the reference's worst
                suggestions[label] = worst / 2
    lines += [
        "",
        "Margins are factors: the reference's worst seed clears the threshold by that factor (worst / threshold "
        "for a minimum, threshold / worst for a maximum); the closest wrong seed misses it by that factor "
        '("any" when the wrong value is at or below 0 against a positive minimum). The calibration asks for at '
        "least 2x on each side of a threshold that separates the reference from wrong variants; the gains of the "
        "baseline and the KL runs have none (they only guard that the runs learn on this machine and preset), "
        "and the wrong variant aimed at two thresholds (word salad: perplexity and KL) needs it on one.",
    ]
    if suggestions:
        lines += [
            "",
            "Thresholds half-way (geometric mean; half the reference's worst where the wrong variants stay at or "
            "below 0) between the worst reference seed and the closest wrong seed: "
            + ", ".join(f"{label} {value:.3g}" for label, value in suggestions.items())
            + ".",
        ]
    return lines


def _factor(value: float | None) -> str:
    if value is None:
        return ""
    return "any" if math.isinf(value) else f"{value:.1f}x"


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
