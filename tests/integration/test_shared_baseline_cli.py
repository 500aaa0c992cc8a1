"""The shared baseline run through the real grader (``python -m grader --baseline-run FILE``): a file that does
not match the grade is refused from the command line before anything is graded (and not checked at all with
--no-training, which grades in the sandbox), and a grade hands the file to its training checks' one engine only.

How a file is checked, in process, on synthetic baseline files: tests/unit/test_shared_baseline.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grader import cli
from grader.contract import TrainingContext
from grader.training.engine import TrainingOptions
from tests.support.baseline_files import baseline_content as _content
from tests.support.baseline_files import baseline_file as _file

REPO = Path(__file__).resolve().parents[2]


def test_the_grader_refuses_a_mismatched_baseline_before_grading(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "results.json"
    path = _file(tmp_path, _content(seed=1))
    argv = ["--submission", str(REPO / "exercise" / "rewards.py"), "--results", str(results), "--quiet"]
    assert cli.main([*argv, "--baseline-run", str(path)]) == cli.EXIT_ERROR  # graded at seed 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"python -m grader: error: --baseline-run: the shared baseline {path} was made for seed 1, "
                   "this grade uses seed 0"]  # fmt: skip
    data = json.loads(results.read_text())
    assert data["score"] == 0 and "was made for seed 1" in data["output"]
    # With --no-training the baseline is not used, so it is not checked either.
    assert cli.main([*argv, "--baseline-run", str(path), "--no-training"]) == cli.EXIT_POINTS_LOST


def test_the_grade_hands_the_file_to_training_contexts_only(tmp_path) -> None:
    """GradeRequest(training_options=TrainingOptions(baseline_run=...)) -> the grade's one training engine, which
    every training check's TrainingContext carries; the property checks' contexts do not."""
    from grader.contract import CheckOutcome
    from grader.grading.runner import GradeRequest, grade

    seen = []

    def check(submission, context):
        seen.append(context)
        return CheckOutcome(1.0)

    submission = tmp_path / "rewards.py"
    submission.write_text("")
    ids = ["kl_forward.value", "training.forward_kl", "training.backward_kl"]
    shared = str((tmp_path / "baseline.json").absolute())
    request = GradeRequest(submission, only=ids, training_options=TrainingOptions(baseline_run=shared))
    grade(request, registry=dict.fromkeys(ids, check))
    plain, *training = seen
    assert not isinstance(plain, TrainingContext)
    assert [c.training.options.baseline_run for c in training] == [shared] * 2
    assert training[0].training is training[1].training  # the grade's training checks share one engine
