"""The lesson's numbers: statistics over seeds (mean ± sd, collapse counts), the table of final values, and the
Markdown tables and claims the document shows."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from .lesson_specs import HIGH_LR_LABEL, RunSpec

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
