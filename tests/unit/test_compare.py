"""``python -m exercise.compare``: runs read from synthetic summary.json files, plotted on shared axes."""

from __future__ import annotations

import json

import pytest

from exercise.compare import CompareError, comparison_figure, load_run, main, markdown_table, plot_comparison


def _record(step, sentiment, kl_forward, kl_backward, **extra):
    return {
        "step": step,
        "sentiment_mean": sentiment,
        "distinct_2": 0.8 - step / 200,
        "repetition": step / 200,
        "kl_forward": kl_forward,
        "kl_backward": kl_backward,
        "ref_perplexity": 5.0 + step,
        **extra,
    }


def _write_run(directory, records):
    directory.mkdir(parents=True)
    (directory / "summary.json").write_text(json.dumps({"config": {"run_name": "x"}, "history": records}))
    return directory


@pytest.fixture
def two_runs(tmp_path):
    small = _write_run(tmp_path / "forward", [_record(0, 0.6, 0.0, 0.0), _record(60, 0.9, 0.2, 0.25)])
    large = _write_run(tmp_path / "vanilla", [_record(0, 0.6, 0.0, 0.0), _record(60, 0.99, 8.0, 9.0)])
    return small, large


def test_loads_series_and_labels_from_directories(two_runs):
    run = load_run(two_runs[0])
    assert run.label == "forward"
    assert run.series("kl_forward") == ([0, 60], [0.0, 0.2])
    assert load_run(two_runs[0] / "summary.json", "mine").label == "mine"


def test_kl_panels_share_one_scale_across_runs_and_directions(two_runs, tmp_path):
    import matplotlib.pyplot as plt

    runs = [load_run(path) for path in two_runs]
    fig = comparison_figure(runs)
    axes = fig.axes
    forward_ax, backward_ax = axes[3], axes[4]
    # Shared: the small run's KL is drawn against the large run's range, in both directions alike.
    assert forward_ax.get_ylim() == backward_ax.get_ylim()
    assert forward_ax.get_ylim()[1] >= 9.0
    assert [line.get_label() for line in axes[0].lines] == ["forward", "vanilla"]
    plt.close(fig)
    out = plot_comparison(runs, tmp_path / "figs" / "compare.png")
    assert out.is_file() and out.stat().st_size > 10_000


def test_markdown_table_has_one_row_per_run_with_final_values(two_runs):
    table = markdown_table([load_run(path) for path in two_runs]).splitlines()
    assert len(table) == 4
    assert table[2].startswith("| forward | 60 | 0.900 |")
    assert "| 8.00 | 9.00 | 65.0 |" in table[3]


def test_cli_writes_the_figure_and_prints_the_table_and_samples(two_runs, tmp_path, capsys):
    summary = json.loads((two_runs[1] / "summary.json").read_text())
    summary["history"][-1]["samples"] = [
        {"prompt": "The film", "completion": " great great\ngreat", "sentiment": 0.99},
        {"prompt": "The cast", "completion": " a|b", "sentiment": 0.9},
        {"prompt": "Not shown", "completion": " x", "sentiment": 0.5},
    ]
    (two_runs[1] / "summary.json").write_text(json.dumps(summary))
    out = tmp_path / "cmp.png"
    assert main([str(p) for p in two_runs] + ["--out", str(out), "--table", "--samples", "2"]) == 0
    assert out.is_file()
    printed = capsys.readouterr().out
    assert "| vanilla | 60 |" in printed
    assert "- *The film* great great great (0.99)" in printed
    assert "a\\|b" in printed and "Not shown" not in printed
    assert "**forward** (step 60):\n\n- (no samples kept)" in printed


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "no summary.json"),
        ("{not json", "not readable as JSON"),
        (json.dumps({"history": []}), "no validation history"),
        (json.dumps({"history": [{"step": 0}]}), "lack sentiment_mean"),
    ],
)
def test_unusable_runs_are_one_line_errors(tmp_path, capsys, content, message):
    run = tmp_path / "broken"
    run.mkdir()
    if content is not None:
        (run / "summary.json").write_text(content)
    with pytest.raises(CompareError, match=message):
        load_run(run)
    assert main([str(run), "--out", str(tmp_path / "x.png")]) == 2
    assert message in capsys.readouterr().err


def test_labels_must_match_runs(two_runs, tmp_path, capsys):
    assert main([str(two_runs[0]), "--labels", "a", "b", "--out", str(tmp_path / "x.png")]) == 2
    assert "one per run" in capsys.readouterr().err


def test_oov_share_gets_a_panel_and_a_column_when_a_run_has_it(two_runs, tmp_path):
    import matplotlib.pyplot as plt

    from exercise.report import OOV_LABEL, curves_figure

    summary = json.loads((two_runs[1] / "summary.json").read_text())
    for record, share in zip(summary["history"], (0.01, 0.42), strict=True):
        record["oov_share"] = share
    (two_runs[1] / "summary.json").write_text(json.dumps(summary))
    runs = [load_run(path) for path in two_runs]
    fig = comparison_figure(runs)
    titles = [ax.get_title() for ax in fig.axes]
    assert len(fig.axes) == 7 and titles[6] == OOV_LABEL  # the spare cell of the 2 x 4 grid is gone
    assert [line.get_label() for line in fig.axes[6].lines] == ["vanilla"]  # only the run that has it
    assert fig.axes[3].get_ylim() == fig.axes[4].get_ylim()  # the KL panels still share their scale
    plt.close(fig)
    table = markdown_table(runs).splitlines()
    assert table[0].endswith("| out-of-vocab. words |")
    assert table[2].endswith("| - |") and table[3].endswith("| 0.42 |")
    # without it (GPT-2 runs): the six panels and columns as before
    assert len(comparison_figure(runs[:1]).axes) == 6
    assert "out-of-vocab" not in markdown_table(runs[:1])
    # the run's own curves.png draws it with distinct-2 and repetition
    curves = curves_figure([{**record, "positive_ratio": 0.5} for record in summary["history"]])
    assert OOV_LABEL in [line.get_label() for line in curves.axes[2].lines]
    plt.close("all")


@pytest.mark.parametrize(
    "kl", [[0.0, 0.0], [0.0, 0.004], [0.0, 0.3], [0.0, 8.0]], ids=["zero", "tiny", "mid", "large"]
)
def test_kl_panels_start_at_zero_with_plain_tick_labels(tmp_path, kl):
    """Issue 25: the KL panels' symlog axis showed a "-10^-1" tick below 0; a KL is never negative."""
    import matplotlib.pyplot as plt

    run = _write_run(tmp_path / "r", [_record(0, 0.6, kl[0], kl[0]), _record(60, 0.9, kl[1], kl[1])])
    fig = comparison_figure([load_run(run)])
    fig.canvas.draw()
    for ax in (fig.axes[3], fig.axes[4]):
        assert ax.get_ylim()[0] == 0.0 and ax.get_ylim()[1] >= max(kl)
        labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
        assert labels and not any(label.startswith(("-", "$")) or "10^" in label for label in labels), labels
    plt.close(fig)
