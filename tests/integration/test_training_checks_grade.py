"""The training checks inside a real grade: the runner, the sandbox and the training lanes together.

Fast tests: the grade's sandbox settings reaching each training lane's configuration, the results hook that lists
the files a check writes (the curves PNG), and a stub (every function raises NotImplementedError) scoring 0 on
every training check within seconds (the gate stops it before any run starts).

Slow tests (``-m slow``) grade with the real runs: the seed-0 baseline is made once for the session and shared by
the grades (as a batch shares it, ``--baseline-run``), so each grade makes three GRPO runs of about 15 CPU-s. The
reference's grade is the session's one full grade of the solution (tests/conftest.py ``reference_batch``): it
passes every training check. The calibration's wrong variants, two to a submission (each check has its own run):
a sign-flipped forward penalty and a zero backward one fail the forward and backward checks; r log r as the
backward penalty fails the backward check while the score returned unchanged as the shaping reproduces the
forward run and fails the shaped check, and that forward run reproduces the reference's. The reference's control
and forward run made again by a grade get the same scores and feedback (same seed, same runs; sharing the
baseline changes nothing); a function that fails in the middle of its run costs that run only.

The scoring itself, on synthetic validation histories, is in tests/unit/test_training_checks.py.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from grader.checks import training as C
from grader.checks.key.wrong import submission_source
from grader.contract import CallOutcome, CheckOutcome, TrainingContext
from grader.grading.results import GradingResults
from grader.grading.rubric import parse_rubric
from grader.grading.runner import GradeRequest, grade
from grader.sandbox import SandboxConfig
from grader.training import engine as engine_module
from grader.training import runs as training_runs
from grader.training.engine import TrainingEngine, TrainingOptions
from grader.training.runs import Job, execute
from tests.support.check_ids import TRAINING_IDS

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "reference" / "rewards.py"
STUB = ROOT / "exercise" / "rewards.py"


# --- the lanes and the results hook ------------------------------------------------------------------------------


def test_the_lanes_sandbox_gets_the_grades_sandbox(tmp_path, monkeypatch):
    """--isolation and --cpus reach the training lanes: the engine passes the grade's SandboxConfig to
    execute(), which writes it into each lane's configuration, from which the lane builds its own."""
    seen, real_execute = {}, execute
    grades_sandbox = SandboxConfig(isolation="strict", cpus=0.5, call_timeout_s=3.0)

    def fake_execute(jobs, **kwargs):
        seen.update(kwargs)
        return {}

    monkeypatch.setattr(engine_module, "execute", fake_execute)  # where the engine looks it up
    engine = TrainingEngine(str(REFERENCE if REFERENCE.is_file() else STUB), sandbox=grades_sandbox)
    context = TrainingContext(training=engine)
    ok = type("Ok", (), {"call": lambda self, f, *a: CallOutcome("ok", [0.1, 0.2])})()
    runs = C.run_set(ok, context)
    assert runs.records == {} and engine._made  # the (empty) runs are this grade's, kept by its engine
    assert seen["sandbox"] == grades_sandbox

    real_popen = (
        training_runs.subprocess.Popen
    )  # a lane that exits at once: only its configuration matters here
    monkeypatch.setattr(training_runs.subprocess, "Popen", lambda argv, **kw: real_popen(["true"], **kw))
    records = real_execute(
        [Job("baseline", "baseline", str(STUB))], work_dir=tmp_path, timeout_s=30, sandbox=grades_sandbox
    )
    written = json.loads((tmp_path / "lane0" / "lane.json").read_text())["sandbox"]
    lane_sandbox = training_runs.sandbox_from_fields(written, check_budget_s=99.0)
    assert lane_sandbox == replace(grades_sandbox, check_budget_s=99.0)
    assert records["baseline"].internal and not records["baseline"].ok


def test_files_a_check_writes_are_listed_in_the_results(tmp_path):
    """The hook for the curves PNG: the runner hands checks a path stem next to the results and lists what they
    wrote in the results' output and the test's extra_data."""
    seen = {}

    def writes_a_plot(submission, context):
        seen["stem"] = context.artifact_stem
        path = Path(f"{context.artifact_stem}_training.png")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"png")
        return CheckOutcome(1.0, "ok", artifacts=[str(path)])

    rubric = parse_rubric({"checks": {"training.fake": {"name": "training: fake", "points": 1}}})
    submission = tmp_path / "rewards.py"
    submission.write_text("def shaped_reward(s, c, p=None):\n    return list(s)\n")
    results = grade(
        GradeRequest(submission, rubric=rubric, artifact_stem=tmp_path / "out" / "results"),
        registry={"training.fake": writes_a_plot},
    )
    expected = str((tmp_path / "out" / "results_training.png").absolute())
    assert seen["stem"] == str((tmp_path / "out" / "results").absolute())
    assert expected in results.output
    assert results.to_gradescope_dict()["tests"][0]["extra_data"]["artifacts"] == [expected]


# --- the stub: 0 on every training check, without a training run ----------------------------------------------


def test_the_stub_scores_zero_on_every_training_check_without_a_training_run(tmp_path):
    results = grade(GradeRequest(STUB, only=TRAINING_IDS, seed=0, artifact_stem=tmp_path / "results"))
    by_id = {t.check_id: t for t in results.tests}
    assert set(by_id) == set(TRAINING_IDS) and results.score == 0
    assert not any(t.internal_error for t in results.tests)
    for check_id, function in (
        ("training.forward_kl", "kl_penalty_forward"),
        ("training.backward_kl", "kl_penalty_backward"),
        ("training.shaped", "shaped_reward"),
    ):
        output = by_id[check_id].output
        assert f"{function} raised NotImplementedError" in output and "not implemented yet" in output, output
    assert "none of your functions could be trained with" in by_id["training.baseline"].output
    assert not (tmp_path / "results_training.png").exists()  # nothing ran, nothing to draw


# --- real runs (slow) --------------------------------------------------------------------------------------------


def _grade_training(
    path: Path,
    tmp_path: Path,
    baseline_run: Path | None = None,
    seed: int = 0,
    only: tuple[str, ...] = TRAINING_IDS,
    run_cache: str = "",
):
    options = TrainingOptions(baseline_run=str(baseline_run) if baseline_run else "", run_cache=run_cache)
    results = grade(
        GradeRequest(
            path,
            only=only,
            seed=seed,
            artifact_stem=tmp_path / f"{path.stem}-results",
            training_options=options,
        )
    )
    assert not any(t.internal_error for t in results.tests), [t.output for t in results.tests]
    return {t.check_id: t for t in results.tests}, results


@pytest.fixture(scope="module")
def shared_baseline(tmp_path_factory, kept_control) -> Path:
    """The seed-0 baseline run, made once for the session (tests/conftest.py) and shared by this module's grades
    as a batch shares it (--baseline-run), so each grade below makes three runs instead of four.
    test_same_seed_same_training_scores makes its own."""
    from grader.training.baseline import baseline_content, write_baseline

    return write_baseline(
        tmp_path_factory.mktemp("baseline") / "baseline.json", baseline_content(kept_control)
    )


@pytest.fixture(scope="module")
def reference_graded(reference_batch):
    """The reference's training checks at seed 0 with the shared baseline, from the session's full grade of the
    reference (tests/conftest.py ``reference_batch``: three graded runs and the challenge's, shared with the
    batch and challenge tests): the checks by id, the results, the folder of its results.json and curves."""
    _, _, out = reference_batch
    results = GradingResults.from_dict(json.loads((out / "ref" / "results.json").read_text()))
    by_id = {t.check_id: t for t in results.tests if t.check_id in TRAINING_IDS}
    assert set(by_id) == set(TRAINING_IDS), [t.check_id for t in results.tests]
    return by_id, results, out / "ref"


@pytest.mark.slow
def test_the_reference_passes_every_training_check_and_the_curves_are_drawn(reference_graded):
    """Slow: the session's full grade of the reference (its three runs beside the shared baseline)."""
    by_id, results, folder = reference_graded
    assert all(t.score == t.max_score for t in by_id.values()), [t.output for t in by_id.values()]
    assert sum(t.score for t in by_id.values()) == 20
    png = folder / "results_training.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and str(png.resolve()) in results.output
    assert "the unregularised baseline's" in by_id["training.forward_kl"].output
    assert "made once and shared by every grade" in by_id["training.baseline"].output


def _combined(tmp_path: Path, name: str) -> Path:
    """The reference with the catalogued wrong functions of ``name`` (grader/checks/key/wrong.py SUBMISSIONS)."""
    path = tmp_path / f"{name}.py"
    path.write_text(REFERENCE.read_text(encoding="utf-8") + submission_source(name), encoding="utf-8")
    return path


# The calibration's wrong KL variants and the identity shaping, two to a submission: each training check has its
# own run, so one grade shows two of them failing (grader/training/calibration/tiny.md has every variant on its
# own, on ten seeds: zero_kl and sign_flipped fail both KL checks, r log r the backward one, the identity shaping
# the shaped one).


@pytest.mark.slow
def test_a_sign_flipped_forward_and_a_zero_backward_penalty_fail_both_kl_checks(tmp_path, shared_baseline):
    """Slow: three real GRPO runs."""
    by_id, _ = _grade_training(
        _combined(tmp_path, "flipped_forward_zero_backward"), tmp_path, shared_baseline
    )
    forward, backward = by_id["training.forward_kl"], by_id["training.backward_kl"]
    assert forward.score == 0 and "AWAY" in forward.output, forward.output
    assert forward.misconception == "wrong_sign"
    assert backward.score == 0 and "barely holds the policy back" in backward.output, backward.output
    # The shaped run trains the reference's shaping with this broken forward penalty (exercise 2's run), so its
    # verdict is not the shaping's: the feedback says that the penalty did not regularise the comparison.
    assert "with your kl_penalty_forward the plain-score run drifted" in by_id["training.shaped"].output


@pytest.mark.slow
def test_r_log_r_as_backward_penalty_and_the_score_unchanged_as_shaping_fail_their_checks(
    tmp_path, shared_baseline, reference_graded
):
    """Slow: three real GRPO runs. r log r (the value estimator) pushes the backward run AWAY from the reference.
    The identity shaping: through the sandbox and the JSON crossing its rewards are the plain score's to the bit,
    so the shaped run is the (right) forward run step for step."""
    path = _combined(tmp_path, "r_log_r_backward_identity_shaping")
    by_id, _ = _grade_training(path, tmp_path, shared_baseline)
    backward = by_id["training.backward_kl"]
    assert backward.score == 0 and "AWAY" in backward.output, backward.output
    assert backward.misconception == "value_estimator_r_log_r"
    # the forward run is the reference's (same function, seed and control): made again, it reproduces
    # the full grade's to the feedback's last digit
    forward, reference_forward = by_id["training.forward_kl"], reference_graded[0]["training.forward_kl"]
    assert forward.score == forward.max_score
    assert _comparable(forward.output) == _comparable(reference_forward.output)
    shaped = by_id["training.shaped"]
    assert shaped.score == 0 and "plain-score run step for step" in shaped.output, shaped.output


@pytest.mark.slow
def test_same_seed_same_training_scores(tmp_path, reference_graded):
    """Slow: the reference's control and forward run made again (two real GRPO runs: a grade makes the control
    only beside a run of the submission's), this time the control by this grade: the same scores and feedback
    as the grade with the shared (and kept: tests/conftest.py) control, so sharing or keeping it changes nothing
    but the time. The backward and shaped checks compare with the same control as the forward one; the forward
    run shows a graded run reproduces too (as in the r log r grade above, beside the shared control)."""
    first, *_ = reference_graded
    compared = ("training.baseline", "training.forward_kl")
    second, _ = _grade_training(REFERENCE, tmp_path, only=compared)
    first = {k: t for k, t in first.items() if k in compared}
    assert {k: (t.score, _comparable(t.output)) for k, t in first.items()} == {
        k: (t.score, _comparable(t.output)) for k, t in second.items()
    }


def _comparable(output: str) -> str:
    """A check's feedback without what differs between two grades of the same runs: the note that the baseline
    was shared, the curves' path."""
    output = re.sub(r"\nThis baseline run was made once and shared[^\n]*", "", output)
    return re.sub(r"Curves of all training runs: \S+", "Curves: PNG", output)


BROKEN_DURING_THE_RUN = """
import time

_calls = {"forward": 0, "backward": 0, "shaped": 0}


def kl_penalty_forward(log_probs_policy, log_probs_ref, kl_coef=0.1):
    _calls["forward"] += 1
    # passes the pre-flight, then fails mid-run; but not in the shaped run (which calls shaped_reward first, and
    # may follow the forward run in the same worker): there the shaping's NaN is what stops it
    if _calls["forward"] > 3 and not _calls["shaped"]:
        raise ValueError("forward broke on call %d" % _calls["forward"])
    return [0.0 for _ in log_probs_policy]


def kl_penalty_backward(log_probs_policy, log_probs_ref, kl_coef=0.1):
    _calls["backward"] += 1
    if _calls["backward"] > 3:
        time.sleep(60)
    return [0.0 for _ in log_probs_policy]


def shaped_reward(scores, completions, prompts=None):
    _calls["shaped"] += 1
    return [float("nan") if len(scores) > 2 else s for s in scores]
"""


@pytest.mark.slow
def test_a_function_that_fails_during_its_run_costs_that_run_only(tmp_path, kept_control):
    """Slow: three runs that stop early, beside the session's kept control (tests/conftest.py: the run cache
    through a real grade). A raise, a hang (past the per-call timeout) and a NaN in the middle of a run each
    score 0 for that run with the reason; the other runs are still made."""
    from grader.training import cache

    path = tmp_path / "rewards.py"
    path.write_text(BROKEN_DURING_THE_RUN)
    options = TrainingOptions(run_cache=cache.default_dir())
    results = grade(
        GradeRequest(path, only=TRAINING_IDS, artifact_stem=tmp_path / "results", training_options=options)
    )
    by_id = {t.check_id: t for t in results.tests}
    assert not any(t.internal_error for t in results.tests), [t.output for t in results.tests]
    assert "raised ValueError: forward broke on call 4" in by_id["training.forward_kl"].output
    assert "did not finish in time" in by_id["training.backward_kl"].output
    assert "returned nan" in by_id["training.shaped"].output
    assert all(by_id[c].score == 0 for c in TRAINING_IDS)
    assert "+0." in by_id["training.baseline"].output  # the control run was still scored ...
    assert "made by an earlier grade on this machine" in by_id["training.baseline"].output  # ... the kept one
