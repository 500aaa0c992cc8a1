"""What a run shows and leaves behind: rich tables in the terminal, and in ``output_dir``
``summary.json`` (config, validation history, timing), ``curves.png`` and ``samples.jsonl``."""

from __future__ import annotations

import json
import math
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

# (key, label, format, which way is "good" for the colour of the change: +1 up, -1 down, 0 neither)
METRICS = [
    ("sentiment_mean", "sentiment (mean)", "{:.3f}", +1),
    ("sentiment_std", "sentiment (std)", "{:.3f}", 0),
    ("positive_ratio", "share > 0.5 (neutral)", "{:.2f}", +1),
    ("distinct_1", "distinct-1", "{:.3f}", +1),
    ("distinct_2", "distinct-2", "{:.3f}", +1),
    ("repetition", "repetition", "{:.3f}", -1),
    ("kl_forward", "KL(pi||ref) /token", "{:.4f}", -1),
    ("kl_backward", "KL(ref||pi) /token", "{:.4f}", -1),
    ("ref_perplexity", "ref. perplexity", "{:.1f}", -1),
    ("completion_length", "length (tokens)", "{:.1f}", 0),
    ("oov_share", "out-of-vocab. words", "{:.3f}", -1),
    ("hackable_mean", "hackable reward", "{:.3f}", 0),
]


# Samples printed per validation; summary.json and samples.jsonl keep all the validator keeps.
SAMPLES_SHOWN = 4


def _fmt(fmt: str, value) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else fmt.format(value)


def print_validation(
    console: Console, record: dict, first: dict | None, *, show_samples: bool = True
) -> None:
    """One validation: metrics (with the change since step 0) and a few samples."""
    table = Table(
        title=f"validation at step {record['step']}",
        title_justify="left",
        caption="KL: per token, exact over the vocabulary, at the prefixes pi sampled (not a sequence-level KL)",
        caption_justify="left",
        show_edge=False,
    )
    table.add_column("metric")
    table.add_column("value", justify="right")
    if first is not None and first is not record:
        table.add_column("since step 0", justify="right")
    for key, label, fmt, good in METRICS:
        if key not in record:
            continue
        row = [label, _fmt(fmt, record.get(key))]
        if first is not None and first is not record:
            delta = record.get(key, math.nan) - first.get(key, math.nan)
            colour = (
                ""
                if good == 0 or not delta or math.isnan(delta)
                else ("green" if delta * good > 0 else "red")
            )
            text = _fmt("{:+" + fmt[2:], delta)
            row.append(f"[{colour}]{text}[/]" if colour else text)
        table.add_row(*row)
    console.print(table)
    if show_samples:
        for sample in record.get("samples", [])[:SAMPLES_SHOWN]:
            completion = " ".join(sample["completion"].split())  # one line per sample, even with newlines
            console.print(
                f"  [dim]{sample['sentiment']:.2f}[/] [bold]{escape(sample['prompt'])}[/] [cyan]{escape(completion)}[/]",
                soft_wrap=True,
            )
    console.print()


def print_summary(console: Console, history: list[dict], timing: dict) -> None:
    """The whole run at a glance: one row per validation."""
    table = Table(title="validation history", title_justify="left", show_edge=False)
    keys = ["sentiment_mean", "positive_ratio", "distinct_2", "repetition", "kl_forward", "kl_backward"]
    labels = {key: label for key, label, _, _ in METRICS}
    formats = {key: fmt for key, _, fmt, _ in METRICS}
    table.add_column("step", justify="right")
    for key in keys:
        table.add_column(labels[key], justify="right")
    for record in history:
        table.add_row(str(record["step"]), *(_fmt(formats[k], record.get(k)) for k in keys))
    console.print(table)
    if timing.get("steps"):
        console.print(
            f"{timing['steps']} steps in {timing['train_seconds']:.1f} s of training "
            f"({timing['seconds_per_step']:.3f} s/step), {timing['validation_seconds']:.1f} s validating, "
            f"{timing['wall_seconds']:.1f} s in all."
        )


def write_outputs(output_dir: Path, summary: dict, history: list[dict]) -> dict[str, Path]:
    """``summary.json``, ``samples.jsonl`` and ``curves.png`` in ``output_dir``; returns their paths."""
    output_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "summary": output_dir / "summary.json",
        "samples": output_dir / "samples.jsonl",
        "curves": output_dir / "curves.png",
    }
    paths["summary"].write_text(json.dumps(summary, indent=2, default=str) + "\n")
    with paths["samples"].open("w") as handle:
        for record in history:
            for sample in record.get("samples", []):
                handle.write(json.dumps({"step": record["step"], **sample}) + "\n")
    plot_curves(
        history,
        paths["curves"],
        title=summary.get("config", {}).get("run_name", ""),
        train_log=summary.get("train_log"),
    )
    return paths


#: Labels shared by the run's curves and ``python -m exercise.compare``. The validation KLs are exact over the
#: vocabulary, but only at the prefixes the policy itself sampled: a per-token average along pi's own text, not the
#: KL between the two models' distributions over whole sequences.
KL_FORWARD_LABEL = "KL(pi || ref)"
KL_BACKWARD_LABEL = "KL(ref || pi)"
KL_AXIS_TITLE = "KL per token, exact over the vocabulary,\non prefixes sampled from pi (nats)"
OOV_LABEL = "out-of-vocabulary words (not in the\ntiny model's corpus: made-up words)"


def plot_curves(
    history: list[dict], path: Path, title: str = "", train_log: list[dict] | None = None
) -> None:
    """:func:`curves_figure` written to ``path``."""
    import matplotlib.pyplot as plt

    fig = curves_figure(history, title, train_log)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def curves_figure(history: list[dict], title: str = "", train_log: list[dict] | None = None):
    """Validation (sentiment, both KLs, diversity, reference perplexity) and, from TRL's log, the training reward
    and its spread across completions, against the training step."""
    import matplotlib

    matplotlib.use("Agg")  # files only; works without a display
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in history]
    fig, grid = plt.subplots(2, 3, figsize=(14, 7.2), constrained_layout=True)
    axes = grid.ravel()
    axes[0].plot(steps, [r["sentiment_mean"] for r in history], marker="o", label="mean")
    axes[0].plot(
        steps,
        [r["positive_ratio"] for r in history],
        marker=".",
        linestyle="--",
        label="share above neutral (> 0.5)",
    )
    axes[0].set(title="validation sentiment", xlabel="step", ylim=(-0.02, 1.02))
    axes[0].legend()
    axes[1].plot(steps, [r["kl_forward"] for r in history], marker="o", label=KL_FORWARD_LABEL)
    axes[1].plot(
        steps, [r["kl_backward"] for r in history], marker=".", linestyle="--", label=KL_BACKWARD_LABEL
    )
    axes[1].set(title=KL_AXIS_TITLE, xlabel="step")
    axes[1].legend()
    axes[2].plot(steps, [r["distinct_2"] for r in history], marker="o", label="distinct-2")
    axes[2].plot(steps, [r["repetition"] for r in history], marker=".", linestyle="--", label="repetition")
    if any("oov_share" in r for r in history):  # the tiny model: words its corpus never had
        oov = [r.get("oov_share", math.nan) for r in history]
        axes[2].plot(steps, oov, marker="x", linestyle=":", label=OOV_LABEL)
    axes[2].set(title="the samples' words", xlabel="step", ylim=(-0.02, 1.02))
    axes[2].legend()
    perplexity = [r.get("ref_perplexity", math.nan) for r in history]
    axes[3].plot(steps, perplexity, marker="o")
    axes[3].set(title="perplexity of the samples under the reference\n(how unnatural they read to pi_ref)")
    axes[3].set(xlabel="step")
    if any(math.isfinite(v) and v > 0 for v in perplexity):
        log_axis(axes[3])
    _plot_train_log(axes[4], axes[5], train_log or [])
    if title:
        fig.suptitle(title)
    return fig


def log_axis(ax) -> None:
    """A log-scaled y axis labelled in plain numbers (3, 10, 100), without matplotlib's 4x10^0 minor labels."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def kl_axis(ax, linthresh: float = 0.1) -> None:
    """A KL's y axis: symlog (linear up to ``linthresh``, so it keeps the exact 0 of step 0, logarithmic above, so
    0.1 and 8 are both readable), from 0, labelled in plain numbers. A KL is never negative, and matplotlib's
    default margin below 0 put a "-10^-1" tick on it. Call it after plotting: it fixes the limits."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    ax.set_yscale("symlog", linthresh=linthresh)
    ax.set_ylim(0.0, max(ax.get_ylim()[1], linthresh))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def _plot_train_log(rewards_ax, spread_ax, train_log: list[dict]) -> None:
    """TRL's per-logging-step averages: what the optimiser saw, as opposed to the held-out validation."""

    def series(key):
        points = [(e["step"], e[key]) for e in train_log if isinstance(e.get(key), (int, float))]
        return [p[0] for p in points], [p[1] for p in points]

    for key, label, style in (
        ("reward", "reward (what GRPO maximises)", "-"),
        ("sentiment/raw_mean", "sentiment score", "--"),
        ("reward/kl_penalty_mean", "KL penalty", ":"),
    ):
        x, y = series(key)
        if x:
            rewards_ax.plot(x, y, linestyle=style, marker=".", label=label)
    rewards_ax.set(title="training batches: mean per completion", xlabel="step")
    for key, label, style in (
        ("reward_std", "reward", "-"),
        ("reward/group_std", "reward within a prompt's group\n(what --scale_rewards group divides by)", "--"),
        ("reward/kl_penalty_std", "KL penalty", ":"),
    ):
        x, y = series(key)
        if x:
            spread_ax.plot(x, y, linestyle=style, marker=".", label=label)
    spread_ax.set(
        title="training batches: std across completions\n(GRPO compares completions)", xlabel="step"
    )
    for ax in (rewards_ax, spread_ax):
        if ax.lines:
            ax.legend()
        else:
            ax.text(0.5, 0.5, "no training log", ha="center", va="center", transform=ax.transAxes)
