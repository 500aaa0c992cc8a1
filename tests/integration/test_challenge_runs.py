"""The tuning challenge on real runs of the tiny preset: the handout's defaults fail, the reference's tuned
configuration passes, through the real grade (``--only challenge.outcome`` for the defaults: one run; the
reference's from the session's full grade of the solution, tests/conftest.py ``reference_batch``)."""

from __future__ import annotations

import json

import pytest

from grader.grading.results import GradingResults
from grader.grading.runner import GradeRequest, grade
from tests.support.cli import ROOT

STUB = ROOT / "exercise" / "rewards.py"


@pytest.mark.slow
def test_the_defaults_collapse_and_the_tuned_configuration_passes(tmp_path, reference_batch):
    """Slow: one real 40-step GRPO run of the tiny preset for the handout's defaults (a grade with only the
    challenge makes no other run), and the session's full grade of the reference, whose challenge run (the
    tuned configuration, the graded forward run's twin) it made as its own. Seed 0, as calibrated in
    challenge-tiny.md."""
    graded = grade(GradeRequest(STUB, seed=0, only=["challenge.outcome"], artifact_stem=tmp_path / "stub"))
    (stub,) = graded.tests
    assert stub.score == 0 and "bought its sentiment with the text" in stub.output, stub.output
    assert "MISSED" in stub.output and "nox -s train" in stub.output
    _, _, out = reference_batch
    reference_results = GradingResults.from_dict(json.loads((out / "ref" / "results.json").read_text()))
    reference = next(t for t in reference_results.tests if t.check_id == "challenge.outcome")
    assert reference.score == reference.max_score == 10, reference.output
    # both runs are on the leaderboard, named with their preset; the collapse ranks far below in perplexity
    board = {e["name"]: e["value"] for e in reference_results.leaderboard}
    stub_board = {e["name"]: e["value"] for e in graded.leaderboard}
    assert (
        set(board)
        == set(stub_board)
        == {
            "sentiment (tiny)",
            "reference perplexity (tiny)",
            "distinct-2 (tiny)",
        }
    )
    assert board["reference perplexity (tiny)"] * 10 < stub_board["reference perplexity (tiny)"]
