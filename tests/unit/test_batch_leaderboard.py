"""The batch's class leaderboard of the tuning challenge (grader/tools/batch/leaderboard.py and its writers).

Rows are made as the batch makes them: results from the real result types (``TestResult`` with leaderboard
entries, ``GradingResults.to_gradescope_dict``), validated by ``validate_results`` (the batch's reader) into a
``Graded`` row; the last test grades with the stand-in grader in process and reads its results.json with the
batch's own ``read_row``.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from grader.contract import LeaderboardEntry
from grader.grading.results import GradingResults, TestResult, validate_results
from grader.tools.batch import (
    Graded,
    print_summary,
    summarise,
    write_charts,
    write_gradebook,
    write_summary_md,
)
from grader.tools.batch.leaderboard import build_leaderboard
from grader.tools.batch.writers import LEADERBOARD_CHART, leaderboard_chart

CHALLENGE = "challenge.outcome"


def _row(
    name: str,
    met: int | None = None,
    numbers: tuple[float, float, float] = (0.5, 20.0, 0.5),
    preset: str = "tiny",
) -> Graded:
    """A submission's row: one plain check and, unless ``met`` is None, the challenge's check (``met`` of its
    three targets: a third of its points each) with the entries the challenge check names."""
    tests = [TestResult("forward.zero", 2.0, 2.0, "ok", check_id="forward.zero")]
    if met is not None:
        sentiment, perplexity, distinct = numbers
        entries = [
            LeaderboardEntry(f"sentiment ({preset})", sentiment, "desc"),
            LeaderboardEntry(f"reference perplexity ({preset})", perplexity, "asc"),
            LeaderboardEntry(f"distinct-2 ({preset})", distinct, "desc"),
        ]
        tests.append(
            TestResult(
                "challenge: your training configuration ends positive and sensible",
                10.0 * met / 3,
                10.0,
                "Your configuration's run ended at ...",
                check_id=CHALLENGE,
                leaderboard=[e.to_dict() for e in entries],
            )
        )
    return _graded(name, GradingResults(tests=tests).to_gradescope_dict())


def _graded(name: str, data: dict) -> Graded:
    """What the batch's read_row makes of a results.json payload (after a round trip through JSON)."""
    score, tests = validate_results(json.loads(json.dumps(data)))
    return Graded(name, score, sum(t["max_score"] for t in tests), tests)


def _no_run(name: str) -> Graded:
    """The challenge's check for a run that never ended: points 0, no leaderboard entries."""
    failed = TestResult(
        "challenge: your training configuration ends positive and sensible",
        0.0,
        10.0,
        "Your tuning challenge could not be run: TRAINING_CHALLENGE has no 'kl_coef'.\nDeclare it ...",
        check_id=CHALLENGE,
    )
    return _graded(name, GradingResults(tests=[failed]).to_gradescope_dict())


def _summary_md(tmp_path: Path, rows: list[Graded]) -> str:
    write_summary_md(tmp_path / "summary.md", summarise(rows), rows)
    return (tmp_path / "summary.md").read_text(encoding="utf-8")


def _table_names(md: str, heading: str) -> list[str]:
    """The submission column of the table under ``heading`` (up to the next heading)."""
    section = md.split(heading + "\n", 1)[1].split("\n#", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and line[2:3].isdigit()]
    return [line.split(" | ")[1].strip() for line in rows]


def test_the_board_ranks_by_the_challenge_share_then_sentiment(tmp_path: Path) -> None:
    rows = [
        _row("ann", met=2, numbers=(0.70, 14.0, 0.61)),
        _row("ben", met=3, numbers=(0.85, 12.3, 0.66)),
        _row("cat", met=2, numbers=(0.90, 25.0, 0.58)),
        _row("dan", met=0, numbers=(0.99, 900.0, 0.05)),  # the most positive, by word salad: last
    ]
    (board,) = build_leaderboard(rows).boards
    assert [(s.submission, s.rank, round(s.share * 3)) for s in board.standings] == [
        ("ben", 1, 3),
        ("cat", 2, 2),
        ("ann", 3, 2),
        ("dan", 4, 0),
    ]
    md = _summary_md(tmp_path, rows)
    assert _table_names(md, "### tiny") == ["ben", "cat", "ann", "dan"]
    ben = next(line for line in md.splitlines() if line.startswith("| 1 | ben"))
    assert ben == "| 1 | ben | 100% | 10/10 | 0.85 | 12.3 | 0.66 |"  # perplexity and distinct-2 columns
    data = json.loads(json.dumps(summarise(rows).to_json()))  # summary.json: the same board
    (tiny,) = data["leaderboard"]["presets"]
    assert [s["submission"] for s in tiny["standings"]] == ["ben", "cat", "ann", "dan"]
    assert tiny["standings"][0]["values"] == {
        "sentiment": 0.85,
        "reference perplexity": 12.3,
        "distinct-2": 0.66,
    }
    printed = io.StringIO()
    from rich.console import Console

    print_summary(summarise(rows), rows, Console(file=printed, width=200, color_system=None))
    assert "Challenge leaderboard (tiny)" in printed.getvalue()


def test_equal_runs_share_a_rank() -> None:
    rows = [_row("ann", met=3, numbers=(0.9, 12.0, 0.6)), _row("ben", met=3, numbers=(0.9, 12.0, 0.6))]
    (board,) = build_leaderboard(rows).boards
    assert [s.rank for s in board.standings] == [1, 1]


def test_a_gpt2_run_is_never_ranked_with_tiny_runs(tmp_path: Path) -> None:
    rows = [
        _row("ann", met=2, numbers=(0.70, 14.0, 0.61)),
        _row("gpu", met=3, numbers=(0.95, 30.0, 0.70), preset="gpt2"),
        _row("ben", met=3, numbers=(0.85, 12.3, 0.66)),
    ]
    boards = {b.preset: [s.submission for s in b.standings] for b in build_leaderboard(rows).boards}
    assert boards == {"tiny": ["ben", "ann"], "gpt2": ["gpu"]}
    md = _summary_md(tmp_path, rows)
    assert _table_names(md, "### tiny") == ["ben", "ann"]
    assert _table_names(md, "### gpt2") == ["gpu"]
    header = write_gradebook(tmp_path / "gradebook.csv", rows)
    assert [h for h in header if h.startswith("leaderboard: ")] == [
        "leaderboard: sentiment (tiny)",
        "leaderboard: reference perplexity (tiny)",
        "leaderboard: distinct-2 (tiny)",
        "leaderboard: sentiment (gpt2)",
        "leaderboard: reference perplexity (gpt2)",
        "leaderboard: distinct-2 (gpt2)",
    ]
    with (tmp_path / "gradebook.csv").open(newline="", encoding="utf-8") as fh:
        book = {row["submission"]: row for row in csv.DictReader(fh)}
    assert book["gpu"]["leaderboard: sentiment (gpt2)"] == "0.95"
    assert book["gpu"]["leaderboard: sentiment (tiny)"] == ""  # no tiny run: an empty cell, not 0
    assert book["ann"]["leaderboard: reference perplexity (tiny)"] == "14"


def test_submissions_without_a_run_are_listed_below_the_board(tmp_path: Path) -> None:
    rows = [
        _no_run("=broken"),  # a name a spreadsheet would run as a formula
        _row("ann", met=2, numbers=(0.70, 14.0, 0.61)),
        Graded("cid", 0.0, None, [], error="could not start the grader", reason="internal error"),
    ]
    leaderboard = build_leaderboard(rows)
    assert [s.submission for s in leaderboard.boards[0].standings] == ["ann"]
    assert [n.submission for n in leaderboard.no_run] == ["=broken", "cid"]
    md = _summary_md(tmp_path, rows)
    assert md.index("| 1 | ann |") < md.index("### No run")
    assert (
        "| =broken | no run: Your tuning challenge could not be run: TRAINING_CHALLENGE has no 'kl_coef'. |"
        in md
    )
    assert "| cid | no run: not graded normally (internal error) |" in md
    data = summarise(rows).to_json()["leaderboard"]
    assert [n["submission"] for n in data["no_run"]] == ["=broken", "cid"]
    write_gradebook(tmp_path / "gradebook.csv", rows)
    with (tmp_path / "gradebook.csv").open(newline="", encoding="utf-8") as fh:
        book = {row["submission"]: row for row in csv.DictReader(fh)}
    assert book["'=broken"]["leaderboard: sentiment (tiny)"] == ""  # the name kept from running as a formula


def test_a_batch_without_the_challenge_has_no_leaderboard(tmp_path: Path) -> None:
    rows = [_row("ann"), _row("ben")]  # e.g. --no-training: nobody is "no run"
    assert not build_leaderboard(rows)
    assert "leaderboard" not in _summary_md(tmp_path, rows).lower()
    assert not any(h.startswith("leaderboard") for h in write_gradebook(tmp_path / "gradebook.csv", rows))
    assert leaderboard_chart(summarise(rows).leaderboard) is None  # so write_charts writes no leaderboard.png


def test_the_chart_plots_sentiment_against_log_perplexity_per_preset(tmp_path: Path) -> None:
    rows = [
        _row("ann", met=2, numbers=(0.70, 14.0, 0.61)),
        _row("ben", met=3, numbers=(0.85, 12.3, 0.66)),
        _row("gpu", met=3, numbers=(0.95, 30.0, 0.70), preset="gpt2"),
        _no_run("cid"),
    ]
    summary = summarise(rows)
    written = write_charts(tmp_path, summary, rows)
    chart = tmp_path / LEADERBOARD_CHART
    assert chart in written
    from matplotlib.image import imread  # decodes the whole image: a truncated file fails here

    assert imread(chart).shape[1] > 500
    fig = leaderboard_chart(summary.leaderboard)
    tiny, gpt2 = fig.axes
    assert tiny.get_xscale() == "log" and "tiny" in tiny.get_title() and "gpt2" in gpt2.get_title()
    (points,) = tiny.collections
    assert sorted(map(tuple, points.get_offsets().tolist())) == [(12.3, 0.85), (14.0, 0.70)]
    assert sorted(t.get_text() for t in tiny.texts) == ["ann", "ben"]  # each point labelled


def test_the_stand_in_grader_writes_the_leaderboard_as_the_grader_does(tmp_path: Path) -> None:
    """The batch's path end to end, in process: the stand-in grader's results.json, read by read_row."""
    from grader.tools.batch.config import Entry
    from grader.tools.batch.grade import read_row
    from tests.support import fake_grader

    sources = {
        "ann": "# fake: challenge=0.7,14.0,0.61\n",  # sensible, two thirds of the way from 0.5 to 0.8
        "ben": "# fake: challenge=0.85,12.3,0.66\n",
        "gpu": "# fake: challenge=0.95,30.0,0.7\n# fake: challenge-preset=gpt2\n",
        "cid": "# fake: challenge-failed\n",
    }
    rows = []
    for name, source in sources.items():
        folder = tmp_path / name
        folder.mkdir()
        (folder / "rewards.py").write_text(source, encoding="utf-8")
        argv = ["--submission", str(folder / "rewards.py"), "--results", str(folder / "results.json")]
        exit_code = fake_grader.main(argv)
        data = json.loads((folder / "results.json").read_text(encoding="utf-8"))
        results = GradingResults.from_dict(data)
        assert data.get("leaderboard", []) == results.leaderboard  # top level == the check's entries
        rows.append(read_row(Entry(name, folder, folder / "rewards.py"), folder, exit_code, "", 0.0))
    assert json.loads((tmp_path / "gpu" / "results.json").read_text())["leaderboard"] == [
        {"name": "sentiment (gpt2)", "value": 0.95, "order": "desc"},
        {"name": "reference perplexity (gpt2)", "value": 30.0, "order": "asc"},
        {"name": "distinct-2 (gpt2)", "value": 0.7, "order": "desc"},
    ]
    leaderboard = summarise(rows).leaderboard
    boards = {b.preset: [(s.submission, s.share) for s in b.standings] for b in leaderboard.boards}
    assert boards == {"tiny": [("ben", 1.0), ("ann", pytest.approx(2 / 3))], "gpt2": [("gpu", 0.0)]}
    assert [n.submission for n in leaderboard.no_run] == ["cid"]
