"""Compare finished runs on shared axes: ``python -m exercise.compare RUN_DIR [RUN_DIR ...] --out compare.png``.

Each run's ``curves.png`` scales its own axes, so a KL of 0.2 and one of 8 can look alike. This figure puts every
run on the same axes, read from the ``summary.json`` each run writes: validation sentiment, distinct-2,
repetition, both KL directions (one shared scale), the perplexity of the samples under the reference model and,
for runs of the tiny model, the share of out-of-vocabulary words (``exercise.tiny.vocabulary``).
``--table`` also prints the final validation of each run as a Markdown table, ``--samples N`` a few of its samples.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .report import KL_AXIS_TITLE, KL_BACKWARD_LABEL, KL_FORWARD_LABEL, OOV_LABEL, kl_axis, log_axis


class CompareError(Exception):
    """A run that cannot be compared; the message says which and why."""


@dataclass
class Run:
    label: str
    history: list[dict]

    @property
    def final(self) -> dict:
        return self.history[-1]

    def series(self, key: str) -> tuple[list[int], list[float]]:
        points = [(r["step"], r[key]) for r in self.history if isinstance(r.get(key), (int, float))]
        return [p[0] for p in points], [float(p[1]) for p in points]


def load_run(path: str | Path, label: str | None = None) -> Run:
    """A run from its output directory (or its ``summary.json``)."""
    path = Path(path)
    summary_path = path / "summary.json" if path.is_dir() else path
    if not summary_path.is_file():
        raise CompareError(
            f"{path}: no summary.json there. Pass the --output_dir of a finished `python -m exercise.train` run."
        )
    try:
        summary = json.loads(summary_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CompareError(f"{summary_path}: not readable as JSON ({error})") from None
    history = summary.get("history") if isinstance(summary, dict) else None
    if not isinstance(history, list) or not history or not all(isinstance(r, dict) for r in history):
        raise CompareError(f"{summary_path}: has no validation history (did the run fail before step 0?)")
    missing = [key for key in ("step", "sentiment_mean") if key not in history[0]]
    if missing:
        raise CompareError(f"{summary_path}: validation records lack {', '.join(missing)}")
    if label is None:
        label = summary_path.parent.name or summary.get("config", {}).get("run_name", str(path))
    return Run(label=label, history=history)


# (key, panel title, y-limits or None, log scale)
PANELS = [
    ("sentiment_mean", "validation sentiment (mean)", (-0.02, 1.02), False),
    ("distinct_2", "distinct-2 (higher: more varied)", (-0.02, 1.02), False),
    ("repetition", "repetition within a completion", (-0.02, 1.02), False),
    ("kl_forward", f"{KL_FORWARD_LABEL}\n{KL_AXIS_TITLE}", None, True),
    ("kl_backward", f"{KL_BACKWARD_LABEL}\n{KL_AXIS_TITLE}", None, True),
    ("ref_perplexity", "perplexity of the samples under the reference", None, True),
]
#: Drawn (and tabled) only when a run has it: runs of the tiny model (exercise.tiny.vocabulary).
OOV_PANEL = ("oov_share", OOV_LABEL, (-0.02, 1.02), False)


def _panels(runs: Sequence[Run]) -> list[tuple]:
    has_oov = any(run.series(OOV_PANEL[0])[0] for run in runs)
    return [*PANELS, OOV_PANEL] if has_oov else list(PANELS)


def comparison_figure(runs: Sequence[Run], title: str = ""):
    """One figure, one colour per run, every panel's axis shared by all runs (both KL panels by each other)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = _panels(runs)
    columns = math.ceil(len(panels) / 2)
    fig, grid = plt.subplots(2, columns, figsize=(14 * columns / 3, 7.5), constrained_layout=True)
    axes = grid.ravel()
    for spare in axes[len(panels) :]:
        spare.remove()
    axes = axes[: len(panels)]
    kl_axes = [axes[i] for i, panel in enumerate(panels) if panel[0].startswith("kl_")]
    kl_axes[1].sharey(kl_axes[0])
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, run in enumerate(runs):
        colour = colours[index % len(colours)]
        for ax, (key, _, _, _) in zip(axes, panels, strict=True):
            steps, values = run.series(key)
            if steps:
                ax.plot(steps, values, marker=".", color=colour, label=run.label)
    for ax, (key, panel_title, limits, log) in zip(axes, panels, strict=True):
        ax.set(title=panel_title, xlabel="step")
        if limits:
            ax.set_ylim(*limits)
        if log and key.startswith("kl_"):
            kl_axis(ax)  # KL starts at exactly 0; symlog keeps 0 and still separates 0.1 from 8
        elif log and any(v > 0 for run in runs for v in run.series(key)[1] if math.isfinite(v)):
            log_axis(ax)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(len(runs), 6))
    if title:
        fig.suptitle(title)
    return fig


def plot_comparison(runs: Sequence[Run], out: Path, title: str = "") -> Path:
    """:func:`comparison_figure` written to ``out`` (a PNG of about 100 KB)."""
    import matplotlib.pyplot as plt

    fig = comparison_figure(runs, title)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out


TABLE_KEYS = [
    ("sentiment_mean", "sentiment", "{:.3f}"),
    ("distinct_2", "distinct-2", "{:.2f}"),
    ("repetition", "repetition", "{:.2f}"),
    ("kl_forward", "KL(pi‖ref)", "{:.2f}"),
    ("kl_backward", "KL(ref‖pi)", "{:.2f}"),
    ("ref_perplexity", "ref. perplexity", "{:.1f}"),
]
OOV_COLUMN = ("oov_share", "out-of-vocab. words", "{:.2f}")  # when a run has it (the tiny model)


def markdown_table(runs: Sequence[Run]) -> str:
    """The final validation of each run, one row per run."""
    keys = [*TABLE_KEYS, OOV_COLUMN] if any(OOV_COLUMN[0] in run.final for run in runs) else TABLE_KEYS
    header = ["run", "step", *(label for _, label, _ in keys)]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for run in runs:
        final = run.final
        cells = [run.label, str(final["step"])]
        for key, _, fmt in keys:
            value = final.get(key)
            ok = isinstance(value, (int, float)) and math.isfinite(value)
            cells.append(fmt.format(value) if ok else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown_samples(runs: Sequence[Run], count: int) -> str:
    """The first ``count`` samples of each run's final validation (the prompt in italics, then the completion)."""
    lines = []
    for run in runs:
        samples = run.final.get("samples") or []
        lines.append(f"**{run.label}** (step {run.final['step']}):")
        lines.append("")
        for sample in samples[:count]:
            completion = " ".join(str(sample.get("completion", "")).split()).replace("|", "\\|")
            score = sample.get("sentiment")
            score_text = f" ({score:.2f})" if isinstance(score, (int, float)) else ""
            lines.append(f"- *{sample.get('prompt', '')}* {completion}{score_text}")
        if not samples:
            lines.append("- (no samples kept)")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m exercise.compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="run output directories (or their summary.json files)")
    parser.add_argument("--out", default="compare.png", help="the figure to write (default: compare.png)")
    parser.add_argument("--labels", nargs="+", help="one legend label per run (default: the directory names)")
    parser.add_argument("--title", default="", help="a title for the figure")
    parser.add_argument(
        "--table", action="store_true", help="also print the final values as a Markdown table"
    )
    parser.add_argument(
        "--samples",
        type=int,
        default=0,
        metavar="N",
        help="also print N samples of each run's final validation",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.labels and len(args.labels) != len(args.runs):
        print(
            f"error: {len(args.labels)} --labels for {len(args.runs)} runs; give one per run", file=sys.stderr
        )
        return 2
    labels = args.labels or [None] * len(args.runs)
    try:
        runs = [load_run(path, label) for path, label in zip(args.runs, labels, strict=True)]
    except CompareError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    out = plot_comparison(runs, Path(args.out), title=args.title)
    if args.table:
        print(markdown_table(runs))
    if args.samples > 0:
        print(markdown_samples(runs, args.samples))
    print(f"Wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
