"""The calibration's table: each run scored as the grader scores it, the verdicts per variant and seed against
what the calibration requires (:mod:`grader.tools.calibrate_variants`), the margins of each threshold (how far the
worst reference seed and the closest wrong seed are from it, and a threshold half-way between them), every run's
numbers and the shaped runs' samples. ``python -m grader.tools calibrate`` writes it; ``--rerender`` rewrites it
from saved records.
"""

from __future__ import annotations

import datetime
import math
import platform
from collections.abc import Sequence
from dataclasses import dataclass

from grader.checks.training import gain, score_baseline, score_kl, score_shaped
from grader.tools.calibrate_variants import EXPECTED, SHAPING_TARGET, VARIANT_RUNS
from grader.training.runs import RunRecord
from grader.training.settings import RUNS, Thresholds, TrainingSettings

#: Quantities a check wants at most a threshold (the others: at least).
MAX_QUANTITIES = ("kl_ratio", "perplexity_ratio", "shaped_kl_rise")


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
        out["shaped_kl_rise"] = last["kl_forward"] - control[-1]["kl_forward"]
    return out


def _f(value: float | None, fmt: str = "{:.3f}") -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else fmt.format(value)


_GATING_NOTE = (
    "**KL training points are gated on the property checks** (the chosen approach; `requires` in "
    "`grader/grading/rubric.toml`). In 40 steps the forward and backward runs cannot tell every wrong penalty from the "
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
    "nothing about fluency: after its unregularised steps the baseline's own text has a reference perplexity "
    "of 10^3 to 10^4, so gibberish would look no worse; and returning the score unchanged would reproduce the "
    "baseline, not a better run. Against the forward run, that identity shaping reproduces its control exactly "
    "(repetition drop 0), a shaping that learns nothing fails the gain, and one that pays for word salad stands "
    "out against sensible text: in perplexity under the reference, and more clearly in KL(pi‖ref), because "
    "salad made of common phrases stays fairly predictable token by token while the policy has left the "
    "reference far behind (the KL carries the margins where the perplexity ratio's spread is too small; as a rise "
    "over the forward run's KL, in nats per token, not a ratio: the forward runs' own KL varies between seeds, "
    "and dividing by it brought word salad and a correct shaping that lengthens the text closer). The price of this control: the run uses the submission's forward penalty, so a "
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
            for run in VARIANT_RUNS[variant]:
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
        + ", ".join(f"{k} = {v:g}" for k, v in vars(settings.runs).items() if v is not None),
        "",
        f"Thresholds (`[{settings.preset}.thresholds]`): "
        + ", ".join(f"{k} = {v:g}" if v != -math.inf else f'{k} = "shown"' for k, v in vars(th).items()),
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
        "run its final perplexity under the reference / the forward run's (same seed; its KL rise follows from "
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
        ("shaped", "shaped_kl_rise", "shaped_max_kl_rise", "shaped: KL(pi‖ref) - forward's", "max"),
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
            if (
                kind == "min" and closest <= 0
            ):  # the wrong variants do not clear 0: half the reference's worst
                suggestions[label] = worst / 2
            elif kind == "max" and worst <= 0:  # a rise the reference never shows: half the closest wrong one
                suggestions[label] = closest / 2
            else:
                suggestions[label] = math.sqrt(worst * closest)
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
