"""What a run shows and leaves behind: rich tables in the terminal, and in ``output_dir``
``summary.json`` (config, validation history, timing), ``curves.png`` and ``samples.jsonl``."""

from __future__ import annotations

import json
import math
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from transformers import TrainerCallback

# (key, label, format, which way is "good" for the colour of the change: +1 up, -1 down, 0 neither)
METRICS = [
    ("sentiment_mean", "sentiment (mean)", "{:.3f}", +1),
    ("sentiment_std", "sentiment (std)", "{:.3f}", 0),
    ("positive_ratio", "positive ratio", "{:.2f}", +1),
    ("distinct_1", "distinct-1", "{:.3f}", +1),
    ("distinct_2", "distinct-2", "{:.3f}", +1),
    ("repetition", "repetition", "{:.3f}", -1),
    ("kl_forward", "KL(pi||ref) /token", "{:.4f}", -1),
    ("kl_backward", "KL(ref||pi) /token", "{:.4f}", -1),
    ("ref_perplexity", "ref. perplexity", "{:.1f}", -1),
    ("completion_length", "length (tokens)", "{:.1f}", 0),
    ("hackable_mean", "hackable reward", "{:.3f}", 0),
]


def _fmt(fmt: str, value) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else fmt.format(value)


def print_validation(
    console: Console, record: dict, first: dict | None, *, show_samples: bool = True
) -> None:
    """One validation: metrics (with the change since step 0) and a few samples."""
    table = Table(title=f"validation at step {record['step']}", title_justify="left", show_edge=False)
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
        for sample in record.get("samples", []):
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
    plot_curves(history, paths["curves"], title=summary.get("config", {}).get("run_name", ""))
    return paths


def plot_curves(history: list[dict], path: Path, title: str = "") -> None:
    """Sentiment, KL to the reference (both directions) and distinct-2 against the training step."""
    import matplotlib

    matplotlib.use("Agg")  # files only; works without a display
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in history]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), constrained_layout=True)
    axes[0].plot(steps, [r["sentiment_mean"] for r in history], marker="o", label="mean")
    axes[0].plot(
        steps, [r["positive_ratio"] for r in history], marker=".", linestyle="--", label="positive ratio"
    )
    axes[0].set(title="validation sentiment", xlabel="step", ylim=(-0.02, 1.02))
    axes[0].legend()
    axes[1].plot(steps, [r["kl_forward"] for r in history], marker="o", label="KL(pi || ref)")
    axes[1].plot(
        steps, [r["kl_backward"] for r in history], marker=".", linestyle="--", label="KL(ref || pi)"
    )
    axes[1].set(title="KL to the reference (nats/token)", xlabel="step")
    axes[1].legend()
    axes[2].plot(steps, [r["distinct_2"] for r in history], marker="o", label="distinct-2")
    axes[2].plot(steps, [r["repetition"] for r in history], marker=".", linestyle="--", label="repetition")
    axes[2].set(title="diversity", xlabel="step", ylim=(-0.02, 1.02))
    axes[2].legend()
    if title:
        fig.suptitle(title)
    fig.savefig(path, dpi=110)
    plt.close(fig)


class LogLineCallback(TrainerCallback):
    """Prints one compact line per logging step (instead of the Trainer's raw dicts)."""

    KEYS = [
        ("reward", "reward"),
        ("sentiment/raw_mean", "score"),
        ("reward/kl_penalty_mean", "penalty"),
        ("kl", "trl-kl"),
        ("entropy", "entropy"),
        ("completions/mean_length", "length"),
    ]

    def __init__(self, console: Console, max_steps: int, *, quiet: bool):
        self.console, self.max_steps, self.quiet = console, max_steps, quiet

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.quiet or not logs or "reward" not in logs:
            return
        parts = [f"{label} {logs[key]:.3f}" for key, label in self.KEYS if isinstance(logs.get(key), float)]
        self.console.print(f"[dim]step {state.global_step:>4}/{self.max_steps}[/]  " + "  ".join(parts))
