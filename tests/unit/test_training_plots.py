"""grader/training/plots.py: the training curves show the metric of the declared shaping goal, with its limit."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest

from grader.checks.goals import GOALS
from grader.training.plots import plot_runs, training_figure
from grader.training.runs import RunRecord
from grader.training.settings import load_settings

#: every goal with a limit to draw (the shipped tiny thresholds show some goals' metrics only: no limit)
THRESHOLDS = replace(
    load_settings("tiny").thresholds,
    shaped_min_words_rise=1.0,
    shaped_min_words_drop=3.5,
    shaped_min_contrast_rise=0.01,
    shaped_min_rhyme_rise=0.05,
)


def _history(words: float, contrast: float, rhyme: float, repetition: float) -> list[dict]:
    return [
        {
            "step": step,
            "sentiment_mean": 0.5 + step / 100,
            "kl_forward": step / 100,
            "kl_backward": step / 100,
            "ref_perplexity": 4.5,
            "repetition": repetition,
            "completion_words": words,
            "sentiment_contrast": contrast,
            "rhyme_rate": rhyme,
        }
        for step in (0, 10, 20)
    ]


RECORDS = {
    "forward": RunRecord("forward", ok=True, history=_history(10.0, 0.2, 0.05, 0.12)),
    "shaped": RunRecord("shaped", ok=True, history=_history(14.0, 0.3, 0.2, 0.05)),
}


def _goal_panel(goal: str | None):
    fig = training_figure(RECORDS, thresholds=THRESHOLDS, goal=GOALS[goal] if goal else None)
    try:
        ax = fig.axes[3]
        limits = [line.get_ydata()[0] for line in ax.get_lines() if line.get_linestyle() == ":"]
        return ax.get_ylabel(), ax.get_title(), limits, [t.get_text() for t in ax.texts]
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)


@pytest.mark.parametrize(
    ("goal", "axis", "forward", "sign"),
    [
        ("longer", "words per completion", 10.0, +1),
        ("shorter", "words per completion", 10.0, -1),
        ("contrast", "sentiment contrast", 0.2, +1),
        ("rhyme", "rhyme rate", 0.05, +1),
        ("repetition", "repetition", 0.12, -1),
    ],
)
def test_the_goal_panel_shows_the_declared_goals_metric_and_its_limit(goal, axis, forward, sign) -> None:
    ylabel, title, limits, texts = _goal_panel(goal)
    metric = GOALS[goal].metric
    least = getattr(THRESHOLDS, metric.threshold)
    assert ylabel.startswith(axis) and f'goal "{goal}"' in title
    # the score_shaped rule: the forward run's last value moved the goal's way by the goal's threshold
    assert limits == [pytest.approx(forward + sign * least)]
    side = "above" if sign > 0 else "below"
    assert texts == [
        f"the shaped run passes {side} this line: the forward run's last value {'+' if sign > 0 else '-'} "
        f"{least:g}{' words' if metric.key == 'completion_words' else ''}"
    ]
    if goal != "repetition":  # the repetition limit is the repetition goal's only
        assert "repetition" not in ylabel + " ".join(texts)


def test_a_goal_whose_metric_is_shown_only_gets_no_limit() -> None:
    shown = replace(THRESHOLDS, shaped_min_contrast_rise=-math.inf)
    fig = training_figure(RECORDS, thresholds=shown, goal=GOALS["contrast"])
    try:
        ax = fig.axes[3]
        assert ax.get_ylabel().startswith("sentiment contrast")
        assert not [line for line in ax.get_lines() if line.get_linestyle() == ":"] and not ax.texts
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)


def test_without_a_goal_the_panel_shows_repetition_without_a_limit() -> None:
    ylabel, title, limits, _ = _goal_panel(None)
    assert ylabel.startswith("repetition") and not title and not limits


def test_plot_runs_writes_the_png_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = plot_runs(RECORDS, tmp_path / "out" / "r_training.png", thresholds=THRESHOLDS, goal=GOALS["rhyme"])
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in path.parent.iterdir()] == ["r_training.png"]


def test_every_training_check_passes_the_declared_goal_to_the_curves() -> None:
    """The curves are drawn once per grade, by whichever training check finishes first: each passes the goal."""
    from types import SimpleNamespace

    from grader.checks.training import _finish
    from grader.contract import CheckOutcome

    asked = []
    engine = SimpleNamespace(plot=lambda runs, stem, goal=None: asked.append(goal) or [])
    for declared, drawn in (("longer", GOALS["longer"]), (None, GOALS["repetition"])):
        context = SimpleNamespace(training=engine, artifact_stem="r", shaping_goal=declared)
        _finish(CheckOutcome(1.0, "ok"), SimpleNamespace(settings=None), context)  # type: ignore[arg-type]
        assert asked.pop() is drawn
