"""The training curves of a grade's runs, for people (matplotlib only, in the grader process)."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

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

#: The y-axis of each metric a panel can show (keys of the validation history, exercise/validation.py).
_AXES = {
    "repetition": "repetition (share of words already used)",
    "completion_words": "words per completion (mean)",
    "sentiment_contrast": "sentiment contrast (mean distance from 0.5)",
    "rhyme_rate": "rhyme rate (share of completions that rhyme)",
}
#: What the goal's limit counts in, where it is not a plain number.
_UNITS = {"completion_words": " words"}


class _GoalMetric(Protocol):
    @property
    def key(self) -> str: ...
    @property
    def direction(self) -> int: ...
    @property
    def threshold(self) -> str: ...


class ShapingGoal(Protocol):
    """What the plot needs of the declared shaping goal (a :class:`grader.checks.goals.Goal`, which this layer
    may not import): its id, its aim and the training metric the shaped check judges."""

    @property
    def id(self) -> str: ...
    @property
    def aim(self) -> str: ...
    @property
    def metric(self) -> _GoalMetric: ...


def plot_runs(records: dict[str, RunRecord], path: str | os.PathLike, **figure: Any) -> Path:
    """:func:`training_figure` of ``records`` (its keyword arguments in ``figure``) written to ``path`` as PNG."""
    path = Path(path)
    fig = training_figure(records, **figure)  # first: it selects the Agg backend

    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    try:
        fig.savefig(tmp, dpi=100)
    finally:
        plt.close(fig)
    os.replace(tmp, path)
    return path


def training_figure(
    records: dict[str, RunRecord],
    *,
    title: str = "",
    thresholds: Thresholds | None = None,
    labels: Callable[[str], str] | None = None,
    goal: ShapingGoal | None = None,
) -> Any:
    """Sentiment, KL(pi || pi_ref), KL(pi_ref || pi), the shaping goal's metric and reference perplexity against
    the step, one line per run (``records`` by run name). The goal panel shows the metric the shaped check judges
    for the declared ``goal`` (words per completion for "longer", rhyme rate for "rhyme" ...; repetition without
    a goal). The KL limits of the forward and backward checks, and the shaped check's limits relative to the
    forward run (the goal's among them), are drawn where ``thresholds`` are given."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, grid = plt.subplots(2, 3, figsize=(15, 8), constrained_layout=True)
    axes = list(grid.flat)
    judged = goal.metric.key if goal is not None else "repetition"
    panels = (
        ("sentiment_mean", "validation sentiment (mean)"),
        ("kl_forward", "KL(pi || pi_ref) per token"),
        ("kl_backward", "KL(pi_ref || pi) per token"),
        (judged, _AXES.get(judged, judged)),  # the panel of the shaping goal's metric
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
            limit = control[-1][metric] + thresholds.shaped_max_kl_rise
            ax.axhline(limit, color=_STYLE["shaped"]["color"], linewidth=0.8, linestyle=":")
            ax.annotate(
                f"pass limit of the shaped run: forward's + {thresholds.shaped_max_kl_rise:g}",
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
            if goal is not None and metric == goal.metric.key:
                limit, text = _goal_limit(goal, thresholds, control[-1][metric])
            elif metric == "ref_perplexity":
                limit = thresholds.shaped_max_perplexity_ratio * control[-1][metric]
                text = f"pass limit of the shaped run: {thresholds.shaped_max_perplexity_ratio:g} x forward's"
            if limit is not None and math.isfinite(limit):  # a goal shown only (threshold -inf) has no limit
                ax.axhline(limit, color=_STYLE["shaped"]["color"], linewidth=0.8, linestyle=":")
                ax.annotate(text, (0.02, limit), xycoords=("axes fraction", "data"), fontsize=7, va="bottom")
        if goal is not None and metric == judged:
            ax.set_title(f'your shaping goal "{goal.id}":\n{goal.aim}', fontsize=8)
        ax.set_xlabel("GRPO step")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    handles, names = axes[0].get_legend_handles_labels()
    axes[-1].axis("off")
    if handles:
        axes[-1].legend(handles, names, fontsize=9, loc="center")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def _goal_limit(goal: ShapingGoal, thresholds: Thresholds, forward: float) -> tuple[float, str]:
    """Where the shaped run's last value of the goal's metric must end (the forward run's last, moved the goal's
    way by its threshold: grader.checks.training's score_shaped), and that line's label."""
    m = goal.metric
    least = float(getattr(thresholds, m.threshold))
    side, sign = ("above", "+") if m.direction > 0 else ("below", "-")
    text = (
        f"the shaped run passes {side} this line: the forward run's last value {sign} {least:g}"
        f"{_UNITS.get(m.key, '')}"
    )
    return forward + m.direction * least, text


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
