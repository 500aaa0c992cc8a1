"""The training curves of a grade's runs, for people (matplotlib only, in the grader process)."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from exercise.report import kl_axis
from grader.training.runs import RunRecord
from grader.training.settings import RUNS, Thresholds

# ---------------------------------------------------------------------------------------------------------------
# The curves (grader process; matplotlib only)
# ---------------------------------------------------------------------------------------------------------------

_STYLE = {
    "baseline": dict(color="0.45", linestyle="--"),
    "forward": dict(color="tab:blue"),
    "backward": dict(color="tab:orange"),
    "shaped": dict(color="tab:green"),
}


def plot_runs(
    records: dict[str, RunRecord],
    path: str | os.PathLike,
    *,
    title: str = "",
    thresholds: Thresholds | None = None,
    labels: Callable[[str], str] | None = None,
) -> Path:
    """Sentiment, KL(pi || pi_ref), KL(pi_ref || pi), repetition and reference perplexity against the step, one
    line per run (``records`` by run name). The KL limits of the forward and backward checks, and the shaped
    check's limits relative to the forward run, are drawn where ``thresholds`` are given."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    fig, grid = plt.subplots(2, 3, figsize=(15, 8), constrained_layout=True)
    axes = list(grid.flat)
    panels = (
        ("sentiment_mean", "validation sentiment (mean)"),
        ("kl_forward", "KL(pi || pi_ref) per token"),
        ("kl_backward", "KL(pi_ref || pi) per token"),
        ("repetition", "repetition (share of words already used)"),
        ("ref_perplexity", "perplexity under the reference model"),
    )
    baseline = records["baseline"].history if "baseline" in records else []
    control = (
        records["forward"].history if "forward" in records else []
    )  # what the shaped run is compared with
    for ax, (metric, ylabel) in zip(axes, panels, strict=False):
        for name, record in records.items():
            history = record.history
            points = [(h["step"], h.get(metric)) for h in history if _number(h.get(metric))]
            if not points:
                continue
            label = (labels or (lambda n: RUNS[n].label if n in RUNS else n))(name)
            if not record.ok:
                label += " (stopped)"
            ax.plot(*zip(*points, strict=True), marker="o", markersize=3, label=label, **_STYLE.get(name, {}))
        if metric == "kl_forward" and thresholds is not None and control and _number(control[-1].get(metric)):
            limit = thresholds.shaped_max_kl_ratio * control[-1][metric]
            ax.axhline(limit, color=_STYLE["shaped"]["color"], linewidth=0.8, linestyle=":")
            ax.annotate(
                f"pass limit of the shaped run: {thresholds.shaped_max_kl_ratio:g} x forward's",
                (0.02, limit),
                xycoords=("axes fraction", "data"),
                fontsize=7,
                va="top",
            )
        if metric.startswith("kl_"):
            run = "forward" if metric == "kl_forward" else "backward"
            if thresholds is not None and baseline and _number(baseline[-1].get(metric)):
                limit = thresholds.kl_max_ratio * baseline[-1][metric]
                ax.axhline(limit, color=_STYLE[run]["color"], linewidth=0.8, linestyle=":")
                ax.annotate(
                    f"pass limit of the {run} run: {thresholds.kl_max_ratio:g} x baseline",
                    (0.02, limit),
                    xycoords=("axes fraction", "data"),
                    fontsize=7,
                    va="bottom",
                )
            # symlog from 0 with plain labels (a KL is never negative: no "-10^-1" tick), after the limit lines
            kl_axis(ax)
        if metric == "ref_perplexity":
            plotted = [y for line in ax.get_lines() for y in line.get_ydata() if y > 0]
            if plotted and max(plotted) > 20 * min(plotted):  # gibberish: perplexity in the thousands
                ax.set_yscale("log")
        if thresholds is not None and control and _number(control[-1].get(metric)):
            limit = None
            if metric == "repetition":
                limit = control[-1][metric] - thresholds.shaped_min_repetition_drop
                text = (
                    f"pass limit of the shaped run: {thresholds.shaped_min_repetition_drop:g} below forward's"
                )
            elif metric == "ref_perplexity":
                limit = thresholds.shaped_max_perplexity_ratio * control[-1][metric]
                text = f"pass limit of the shaped run: {thresholds.shaped_max_perplexity_ratio:g} x forward's"
            if limit is not None:
                ax.axhline(limit, color=_STYLE["shaped"]["color"], linewidth=0.8, linestyle=":")
                ax.annotate(text, (0.02, limit), xycoords=("axes fraction", "data"), fontsize=7, va="bottom")
        ax.set_xlabel("GRPO step")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    handles, names = axes[0].get_legend_handles_labels()
    axes[-1].axis("off")
    if handles:
        axes[-1].legend(handles, names, fontsize=9, loc="center")
    if title:
        fig.suptitle(title, fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)
    return path


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
