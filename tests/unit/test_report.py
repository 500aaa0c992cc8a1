"""The run's own figure (exercise/report.py): validation panels plus what the optimiser saw in training."""

from __future__ import annotations

from exercise.report import curves_figure, plot_curves

HISTORY = [
    {
        "step": step,
        "sentiment_mean": 0.6 + step / 200,
        "positive_ratio": 0.5,
        "distinct_2": 0.8,
        "repetition": 0.1,
        "kl_forward": step / 100,
        "kl_backward": step / 90,
        "ref_perplexity": 5.0 + step,
    }
    for step in (0, 10, 20)
]
TRAIN_LOG = [
    {
        "step": 10,
        "reward": 0.7,
        "sentiment/raw_mean": 0.72,
        "reward/kl_penalty_mean": 0.0,
        "reward_std": 0.2,
        "reward/kl_penalty_std": 0.05,
    },
    {
        "step": 20,
        "reward": 0.8,
        "sentiment/raw_mean": 0.82,
        "reward/kl_penalty_mean": 0.0,
        "reward_std": 0.1,
        "reward/kl_penalty_std": 0.04,
    },
    {"train_runtime": 3.0, "step": 20},  # the Trainer's closing entry has none of the keys
]


def _close(fig) -> None:
    """Release a pyplot figure (curves_figure makes one)."""
    import matplotlib.pyplot as plt  # here, not at the top: every pytest-xdist worker imports this module

    plt.close(fig)


def test_perplexity_and_training_panels():
    fig = curves_figure(HISTORY, "run", TRAIN_LOG)
    axes = fig.axes
    assert len(axes) == 6
    perplexity = axes[3]
    assert perplexity.get_yscale() == "log"
    assert list(perplexity.lines[0].get_ydata()) == [5.0, 15.0, 25.0]
    # The backward penalty's mean is ~0 by construction; its spread across completions is what shows it working.
    spread_labels = [line.get_label() for line in axes[5].lines]
    assert spread_labels == ["reward", "KL penalty"]
    assert list(axes[5].lines[1].get_ydata()) == [0.05, 0.04]
    _close(fig)


def test_without_a_training_log_the_panels_say_so(tmp_path):
    fig = curves_figure(HISTORY)
    assert not fig.axes[4].lines and "no training log" in fig.axes[4].texts[0].get_text()
    _close(fig)
    plot_curves(HISTORY, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
