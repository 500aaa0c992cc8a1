"""The lesson's figures: validation curves per configuration and seed, and the kl_coef sweep's final sentiment
against final KL."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .lesson_specs import RunSpec
from .lesson_tables import sweep_points

CURVE_PANELS = [
    ("sentiment_mean", "validation sentiment", False),
    ("distinct_2", "distinct-2", False),
    ("ref_perplexity", "reference perplexity", True),
    ("kl_forward", "KL(pi‖ref) per token", True),
    ("kl_backward", "KL(ref‖pi) per token", True),
]


def curves_figure(
    specs: Sequence[RunSpec], summaries: dict[RunSpec, dict], labels: Sequence[str], out: Path
) -> Path:
    """Validation curves: one colour per configuration, one thin line per seed (a mean would hide the
    seeds that collapse and those that do not)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .compare import load_run
    from .report import log_axis

    fig, axes = plt.subplots(
        1, len(CURVE_PANELS), figsize=(4 * len(CURVE_PANELS), 4), constrained_layout=True
    )
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, label in enumerate(labels):
        colour = colours[index % len(colours)]
        first = True
        for spec in specs:
            if spec.label != label or "final" not in summaries.get(spec, {}):
                continue
            run = load_run(Path(summaries[spec]["config"]["output_dir"]) / "summary.json", label)
            for ax, (key, _, _) in zip(axes, CURVE_PANELS, strict=True):
                steps, values = run.series(key)
                ax.plot(steps, values, color=colour, alpha=0.7, lw=1, label=label if first else None)
            first = False
    for ax, (key, title, log) in zip(axes, CURVE_PANELS, strict=True):
        ax.set(title=title, xlabel="step")
        if key.startswith("kl_"):
            ax.set_yscale("symlog", linthresh=0.1)  # KL starts at exactly 0
        elif log:
            log_axis(ax)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=len(labels))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=72)
    plt.close(fig)
    return out


def sweep_figure(specs: Sequence[RunSpec], summaries: dict[RunSpec, dict], out: Path) -> Path:
    """Final sentiment against final KL, one panel per KL direction: small dots per seed, large dots the means,
    joined in order of kl_coef and labelled with it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = sweep_points(specs, summaries)
    sweep_seeds = {s.seed for s in specs if s.label.startswith("sweep ")}
    # The plain runs of the sweep's seeds: where kl_coef 0 ends, for scale.
    plain = [
        summaries[s]["final"]
        for s in specs
        if s.label == "plain" and s.seed in sweep_seeds and summaries.get(s, {}).get("final")
    ]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True, constrained_layout=True)
    colours = {"forward": "tab:blue", "backward": "tab:orange"}
    for ax, (key, title) in zip(
        axes, (("kl_forward", "KL(pi‖ref)"), ("kl_backward", "KL(ref‖pi)")), strict=True
    ):
        for kl_type in ("forward", "backward"):
            mine = [(c, p) for k, c, p in points if k == kl_type and p]
            means = []
            for coef, finals in mine:
                xs = [f[key] for f in finals]
                ys = [f["sentiment_mean"] for f in finals]
                ax.scatter(xs, ys, s=12, color=colours[kl_type], alpha=0.45)
                means.append((coef, sum(xs) / len(xs), sum(ys) / len(ys)))
            if means:
                ax.plot(
                    [m[1] for m in means],
                    [m[2] for m in means],
                    "o-",
                    color=colours[kl_type],
                    label=f"{kl_type} penalty ({'KL(pi‖ref)' if kl_type == 'forward' else 'KL(ref‖pi)'})",
                )
                for coef, x, y in means:
                    ax.annotate(f"{coef:g}", (x, y), textcoords="offset points", xytext=(4, -10), fontsize=8)
        if plain:
            ax.scatter(
                [f[key] for f in plain],
                [f["sentiment_mean"] for f in plain],
                marker="x",
                color="grey",
                label="no penalty (plain run)",
            )
        ax.set_xscale("log")
        ax.set(xlabel=f"final {title} per token (log scale)", title=f"sentiment against {title}")
    axes[0].set_ylabel("final validation sentiment")
    axes[0].legend(loc="lower right", fontsize=8)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=72)
    plt.close(fig)
    return out
