"""The training checks: short real GRPO runs with a submission's functions, scored against calibrated thresholds.

Fast tests: the scoring on synthetic validation histories, the settings file, the lane scheduling, the results
hook for the curves PNG, and a stub (every function raises NotImplementedError) scoring 0 on every training check
within seconds (the gate stops it before any run starts).

Slow tests (``-m slow``) grade with the real runs: the seed-0 baseline is made once for the module and shared by
the grades (as a batch shares it, ``--baseline-run``), so each grade makes three GRPO runs of about 15 s on one
core (two processes in parallel): the reference passes; a zero KL penalty and a sign-flipped one fail the forward
and backward checks; r log r as the backward penalty fails the backward check; the score returned unchanged as
the shaping reproduces the forward run and fails the shaped check; the reference graded again, making its own
baseline, gets the same scores and feedback (same seed, same runs; sharing the baseline changes nothing).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import replace
from pathlib import Path

import pytest

from grader.checks import training as C
from grader.contract import CallOutcome, CheckOutcome, TrainingContext
from grader.grading.results import NotGradable
from grader.grading.rubric import load_rubric, parse_rubric
from grader.grading.runner import GradeRequest, grade
from grader.sandbox import SandboxConfig
from grader.tools.calibrate import variant_sources
from grader.training import engine as engine_module
from grader.training import runs as training_runs
from grader.training.engine import TrainingEngine, TrainingOptions
from grader.training.runs import Job, execute, split_jobs
from grader.training.settings import RUNS, SettingsError, Thresholds, load_settings, train_config

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "reference" / "rewards.py"
STUB = ROOT / "exercise" / "rewards.py"
TRAINING_IDS = ("training.baseline", "training.forward_kl", "training.backward_kl", "training.shaped")
TH = Thresholds(
    baseline_min_gain=0.2,
    kl_min_gain=0.1,
    kl_max_ratio=0.3,
    shaped_min_gain=0.05,
    shaped_min_repetition_drop=0.02,
    shaped_max_perplexity_ratio=2.0,
    shaped_max_kl_ratio=3.0,
)


def history(sentiments, kl_forward, kl_backward=None, step=10, repetition=None, perplexity=None):
    """A validation history: one dict per validation, as exercise.train.RunResult.history has them.
    ``repetition`` and ``perplexity`` are the final values (they move there linearly from 0.05 and 4.5)."""
    kl_backward = kl_backward or kl_forward
    n = len(sentiments)
    final_rep = 0.05 + 0.01 * (n - 1) if repetition is None else repetition
    final_ppl = 4.5 if perplexity is None else perplexity
    return [
        {
            "step": i * step,
            "sentiment_mean": s,
            "kl_forward": f,
            "kl_backward": b,
            "distinct_2": 0.8 - 0.01 * i,
            "repetition": final_rep if i == n - 1 else 0.05 + (final_rep - 0.05) * i / (n - 1),
            "ref_perplexity": final_ppl if i == n - 1 else 4.5 + (final_ppl - 4.5) * i / (n - 1),
            "samples": [
                {"prompt": "The acting was", "completion": f" text at step {i * step}.", "sentiment": s}
            ],
        }
        for i, (s, f, b) in enumerate(zip(sentiments, kl_forward, kl_backward, strict=True))
    ]


def record(hist, ok=True, run="forward", **extra):
    """A run's record as the checks read it (what a lane wrote, read back)."""
    return training_runs.RunRecord.from_dict({"run": run, "ok": ok, "history": hist, **extra})


BASELINE = record(history([0.55, 0.8, 0.99], [0.0, 1.0, 5.0], [0.0, 0.8, 3.0]), run="baseline")


# --- scoring on synthetic histories ------------------------------------------------------------------------------


def test_a_penalty_that_keeps_the_policy_close_and_still_learns_passes():
    student = record(history([0.55, 0.75, 0.9], [0.0, 0.2, 0.3], [0.0, 0.2, 0.25]))
    forward = C.score_kl("forward", BASELINE, student, TH, 0.3)
    assert forward.fraction == 1
    assert "0.300 nats per token, 0.06x the unregularised baseline's 5.000" in forward.feedback
    assert "+0.350" in forward.feedback and "kl_coef 0.3" in forward.feedback
    backward = C.score_kl("backward", BASELINE, student, TH)
    assert backward.fraction == 1 and "KL(pi_ref || pi) at the end: 0.250" in backward.feedback


def test_a_run_that_drifts_further_than_the_baseline_is_named_anti_regularising():
    student = record(history([0.55, 0.9, 0.99], [0.0, 2.0, 7.5], [0.0, 1.5, 6.0]))
    outcome = C.score_kl("backward", BASELINE, student, TH)
    assert outcome.fraction == 0 and "training:anti_regularises" in outcome.tags
    assert "2.00x" in outcome.feedback and "AWAY" in outcome.feedback
    assert "sign is flipped" in outcome.feedback and "r log r" in outcome.feedback


def test_a_penalty_that_barely_regularises_fails_with_its_ratio():
    student = record(history([0.55, 0.9, 0.99], [0.0, 1.0, 3.0]))  # 0.6x the baseline's forward KL
    outcome = C.score_kl("forward", BASELINE, student, TH)
    assert outcome.fraction == 0 and "training:weak_regularisation" in outcome.tags
    assert "0.60x" in outcome.feedback and "must be at most 0.3x" in outcome.feedback


def test_a_penalty_that_stops_learning_fails_as_over_regularising():
    student = record(history([0.55, 0.57, 0.6], [0.0, 0.01, 0.02]))
    outcome = C.score_kl("forward", BASELINE, student, TH)
    assert outcome.fraction == 0 and "training:over_regularises" in outcome.tags
    assert "sum over tokens" in outcome.feedback


def test_thresholds_are_inclusive():
    th = Thresholds(
        baseline_min_gain=0.2,
        kl_min_gain=0.125,
        kl_max_ratio=0.25,
        shaped_min_gain=0.0,
        shaped_min_repetition_drop=0.0,
        shaped_max_perplexity_ratio=1.0,
        shaped_max_kl_ratio=1.0,
    )
    at_limit = record(history([0.5, 0.55, 0.625], [0.0, 1.0, 1.25]))  # gain 0.125, ratio 0.25, both exact
    assert C.score_kl("forward", BASELINE, at_limit, th).fraction == 1


def test_a_failed_student_run_scores_zero_with_its_reason_and_a_failed_baseline_is_not_gradable():
    failed = record([], ok=False, error="kl_penalty_forward returned nan for completion 3")
    outcome = C.score_kl("forward", BASELINE, failed, TH)
    assert outcome.fraction == 0 and "returned nan for completion 3" in outcome.feedback
    assert "other training runs" in outcome.feedback
    with pytest.raises(NotGradable, match="control run .* failed on this machine: boom"):
        C.score_kl("forward", record([], ok=False, error="boom"), BASELINE, TH)
    with pytest.raises(NotGradable, match="did not learn"):
        C.score_baseline(record(history([0.55, 0.56, 0.6], [0.0, 0.1, 0.2])), TH)
    with pytest.raises(NotGradable, match="failed in the grader, not in your code: model missing"):
        C.score_kl("forward", BASELINE, record([], ok=False, error="model missing", internal=True), TH)
    # the student's own failure stays theirs, whatever became of the control
    outcome = C.score_kl("forward", record([], ok=False, error="boom"), failed, TH)
    assert outcome.fraction == 0 and "returned nan" in outcome.feedback


def test_baseline_scoring():
    base = C.score_baseline(BASELINE, TH)
    assert base.fraction == 1 and "+0.440" in base.feedback and "KL(pi || pi_ref) = 5.000" in base.feedback


# The shaped run's control: the forward run (plain score, the same penalty and seed). It learns, and repeats
# itself more by the end (0.14), as the plain score makes it do; its text stays natural (perplexity 4.7).
CONTROL = record(
    history([0.55, 0.8, 0.93], [0.0, 0.15, 0.18], repetition=0.14, perplexity=4.7), config={"kl_coef": 0.3}
)


def shaped_run(sentiments=(0.55, 0.75, 0.86), repetition=0.05, perplexity=4.1, kl=(0.0, 0.14, 0.16)):
    return record(history(list(sentiments), list(kl), repetition=repetition, perplexity=perplexity))


def test_a_shaping_that_learns_repeats_less_and_stays_natural_passes():
    """Reference-like: sentiment +0.31, repetition 0.05 against the control's 0.14, perplexity 0.87x."""
    outcome = C.score_shaped(CONTROL, shaped_run(), TH, BASELINE)
    assert outcome.fraction == 1, outcome.feedback
    assert "0.050, the plain score's 0.140: must be at least 0.02 lower ok" in outcome.feedback
    assert "4.1 against 4.7: 0.87x, must be at most 2x ok" in outcome.feedback
    assert "(+0.310), must rise at least +0.05 ok" in outcome.feedback
    assert "kl_coef 0.3" in outcome.feedback
    assert "text at step 20" in outcome.feedback  # a sample of each run, to read
    assert not outcome.tags


def test_a_shaping_that_learns_nothing_fails_even_when_its_text_is_varied_and_natural():
    """Constant (or noise) on the training batches: sentiment stays put, whatever the text looks like."""
    flat = C.score_shaped(CONTROL, shaped_run(sentiments=(0.55, 0.56, 0.57)), TH)
    assert flat.fraction == 0 and "training:shaped_no_learning" in flat.tags
    assert (
        "(+0.020), must rise at least +0.05 FAILED" in flat.feedback
        and "hardly became more positive" in flat.feedback
    )
    fell = C.score_shaped(CONTROL, shaped_run(sentiments=(0.55, 0.5, 0.4)), TH)
    assert fell.fraction == 0 and "Sentiment fell" in fell.feedback


def test_the_identity_shaping_reproduces_its_control_and_fails():
    """`return list(scores)`: the shaped run is the forward run, step for step."""
    same = record(CONTROL.history)
    outcome = C.score_shaped(CONTROL, same, TH)
    assert outcome.fraction == 0 and outcome.tags == ["training:shaping_changes_nothing"]
    assert "must be at least 0.02 lower FAILED" in outcome.feedback
    assert "plain-score run step for step" in outcome.feedback
    # a different run that is just as repetitive as the control fails on repetition alone
    as_repetitive = C.score_shaped(CONTROL, shaped_run(repetition=0.13), TH)
    assert as_repetitive.fraction == 0 and as_repetitive.tags == ["training:shaping_no_effect"]


def test_the_repetition_drop_is_required_for_the_repetition_goal_only():
    """Issue 23: a shaping declared for another goal (grader.checks.goals) is not failed for repeating itself as
    much as the plain score; its goal's own training metric is not calibrated yet, so it is reported, not required."""
    as_repetitive = shaped_run(repetition=0.13)
    assert C.score_shaped(CONTROL, as_repetitive, TH).fraction == 0.0
    other = C.score_shaped(CONTROL, as_repetitive, TH, goal="longer")
    assert other.fraction == 1.0, other.feedback
    assert "not required (your declared goal is 'longer')" in other.feedback


def test_a_shaping_that_pays_for_gibberish_fails_on_perplexity():
    """Varied, positive, not repetitive, and unnatural: perplexity 35 against the control's 4.7 (7.4x)."""
    outcome = C.score_shaped(CONTROL, shaped_run(repetition=0.09, perplexity=35.0, kl=(0.0, 1.0, 1.7)), TH)
    assert outcome.fraction == 0 and outcome.tags == ["training:shaped_gibberish"]
    assert "35.0 against 4.7: 7.45x, must be at most 2x FAILED" in outcome.feedback
    assert "1.700 against 0.180: 9.44x, must be at most 3x FAILED" in outcome.feedback
    assert "unnatural" in outcome.feedback


def test_a_shaping_that_overpowers_the_penalty_fails_on_kl_even_when_its_text_reads_well():
    """Word salad of common phrases can stay fairly predictable token by token (perplexity 1.6x here), while the
    policy has moved 8x further from the reference than the plain score took it under the same penalty."""
    outcome = C.score_shaped(CONTROL, shaped_run(repetition=0.09, perplexity=7.5, kl=(0.0, 0.8, 1.44)), TH)
    assert outcome.fraction == 0 and outcome.tags == ["training:shaped_overpowers_penalty"]
    assert "7.5 against 4.7: 1.60x, must be at most 2x ok" in outcome.feedback
    assert "8.00x, must be at most 3x FAILED" in outcome.feedback
    assert "drowns the penalty" in outcome.feedback


def test_shaped_thresholds_are_inclusive():
    th = Thresholds(
        0.2,
        0.1,
        0.3,
        shaped_min_gain=0.25,
        shaped_min_repetition_drop=0.0625,
        shaped_max_perplexity_ratio=1.25,
        shaped_max_kl_ratio=2.5,
    )
    # gain 0.25, repetition 0.0625 below 0.125, perplexity 1.25x 4.0, KL 2.5x 0.25: all exactly at their limits
    control = record(history([0.5, 0.9], [0.0, 0.25], repetition=0.125, perplexity=4.0))
    at_limit = record(history([0.5, 0.75], [0.0, 0.625], repetition=0.0625, perplexity=5.0))
    assert C.score_shaped(control, at_limit, th).fraction == 1


def test_a_failed_shaped_run_or_control_scores_zero_with_the_reason():
    nan = C.score_shaped(CONTROL, record([], ok=False, error="shaped_reward returned nan"), TH)
    assert nan.fraction == 0 and "returned nan" in nan.feedback
    forward_broke = record(
        [], ok=False, error="kl_penalty_forward raised ValueError", component="kl_penalty_forward"
    )
    outcome = C.score_shaped(CONTROL, forward_broke, TH)
    assert outcome.fraction == 0 and "your shaped_reward and your kl_penalty_forward" in outcome.feedback
    no_control = C.score_shaped(
        record([], ok=False, error="kl_penalty_forward returned inf"), shaped_run(), TH
    )
    assert no_control.fraction == 0 and "returned inf" in no_control.feedback
    assert "Fix kl_penalty_forward first" in no_control.feedback
    with pytest.raises(NotGradable, match="forward run .* failed in the grader, not in your code"):
        C.score_shaped(record([], ok=False, error="model missing", internal=True), shaped_run(), TH)


def test_the_shaped_feedback_says_when_the_forward_penalty_did_not_regularise_the_control():
    drifted = record(history([0.55, 0.9, 0.99], [0.0, 2.0, 4.0], repetition=0.3, perplexity=300.0))
    outcome = C.score_shaped(drifted, shaped_run(perplexity=250.0, kl=(0.0, 2.0, 3.5)), TH, BASELINE)
    assert "training:control_unregularised" in outcome.tags
    assert (
        "0.80x the unregularised baseline's" in outcome.feedback
        and "Fix the penalty first" in outcome.feedback
    )


# --- settings, scheduling, rubric --------------------------------------------------------------------------------


def test_shipped_settings_load_and_the_gpt2_ones_say_they_are_uncalibrated(tmp_path):
    tiny = load_settings("tiny")
    assert tiny.calibrated and tiny.runs.max_steps >= 1 and 0 < tiny.thresholds.kl_max_ratio < 1
    gpt2 = load_settings("gpt2")
    assert not gpt2.calibrated and "python -m grader.tools.calibrate --preset gpt2" in gpt2.note
    bad = tmp_path / "t.toml"
    bad.write_text("[tiny]\n[tiny.runs]\nmax_steps = 1\n")
    with pytest.raises(SettingsError, match=r"\[tiny.runs\] must have exactly"):
        load_settings("tiny", bad)
    with pytest.raises(SettingsError, match="no \\[gpt2\\] table"):
        load_settings("gpt2", bad)


def test_the_shaped_run_is_exercise_2s_run_with_the_forward_runs_coefficient():
    """--reward_shaping shaped --kl_type forward at the forward run's kl_coef: the two differ only in the shaping."""
    settings = load_settings("tiny")
    shaped = train_config("shaped", settings, 3, "out")
    forward = train_config("forward", settings, 3, "out")
    assert (shaped["reward_shaping"], shaped["kl_type"]) == ("shaped", "forward")
    assert {k: v for k, v in shaped.items() if k != "reward_shaping"} == {
        k: v for k, v in forward.items() if k != "reward_shaping"
    }
    assert RUNS["shaped"].needs == ("shaped_reward", "kl_penalty_forward")
    assert RUNS["baseline"].needs == ()


def test_jobs_are_spread_over_lanes_by_cost_and_keep_their_order_per_submission():
    jobs = [Job(r, r, "s.py") for r in ("baseline", "forward", "backward", "shaped")]
    lanes = split_jobs(jobs, 2)
    assert sorted(len(lane) for lane in lanes) == [2, 2]
    assert all({j.run for j in lane} & {"forward", "backward"} for lane in lanes)  # one KL run each
    assert split_jobs(jobs, 8) and len(split_jobs(jobs, 8)) == 4
    assert [j.run for lane in split_jobs(jobs, 1) for j in lane] == [j.run for j in jobs]


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


def test_each_grade_makes_its_own_runs():
    """The runs belong to the grade's engine: two engines never share them (no module-global cache)."""
    first, second = TrainingEngine("a.py"), TrainingEngine("a.py")
    first._made[("key",)] = "runs"
    assert second._made == {} and TrainingEngine("a.py")._made == {}


def test_the_rubric_has_the_training_checks_registered():
    from grader.checks import REGISTRY

    rubric = load_rubric()
    for check_id in TRAINING_IDS:
        entry = rubric[check_id]
        assert entry.requires_training and entry.name.startswith("training:") and check_id in REGISTRY
    assert rubric["training.baseline"].points == 0  # none of the submission's code: no free points
    assert math.fsum(rubric[c].points for c in TRAINING_IDS) == 20


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


def _variant(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.py"
    path.write_text(variant_sources(REFERENCE)[name])
    return path


def _grade_training(path: Path, tmp_path: Path, seed: int = 0, baseline_run: Path | None = None):
    results = grade(
        GradeRequest(
            path,
            only=TRAINING_IDS,
            seed=seed,
            artifact_stem=tmp_path / f"{path.stem}-results",
            training_options=TrainingOptions(baseline_run=str(baseline_run)),
        )
    )
    assert not any(t.internal_error for t in results.tests), [t.output for t in results.tests]
    return {t.check_id: t for t in results.tests}, results


@pytest.fixture(scope="module")
def shared_baseline(tmp_path_factory) -> Path:
    """The seed-0 baseline run, made once for this module's grades (as a batch shares it: --baseline-run), so
    each grade below makes three runs instead of four. test_same_seed_same_training_scores makes its own."""
    from grader.training.baseline import make_baseline, write_baseline

    return write_baseline(tmp_path_factory.mktemp("baseline") / "baseline.json", make_baseline(0, "tiny"))


@pytest.fixture(scope="module")
def reference_graded(shared_baseline, tmp_path_factory):
    """The reference's training checks at seed 0 with the shared baseline (three real GRPO runs)."""
    tmp_path = tmp_path_factory.mktemp("reference")
    return (*_grade_training(REFERENCE, tmp_path, baseline_run=shared_baseline), tmp_path)


@pytest.mark.slow
def test_the_reference_passes_every_training_check_and_the_curves_are_drawn(reference_graded):
    """Slow: the shared baseline and three real GRPO runs (about 30 s on two cores)."""
    by_id, results, tmp_path = reference_graded
    assert all(t.score == t.max_score for t in by_id.values()), [t.output for t in by_id.values()]
    assert results.score == 20
    png = tmp_path / "rewards-results_training.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and str(png.absolute()) in results.output
    assert "the unregularised baseline's" in by_id["training.forward_kl"].output
    assert "made once and shared by every grade" in by_id["training.baseline"].output


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["zero_kl", "sign_flipped"])
def test_no_penalty_and_a_sign_flipped_penalty_fail_both_kl_checks(tmp_path, variant, shared_baseline):
    """Slow: three real GRPO runs per variant."""
    by_id, _ = _grade_training(_variant(tmp_path, variant), tmp_path, baseline_run=shared_baseline)
    for check_id in ("training.forward_kl", "training.backward_kl"):
        assert by_id[check_id].score == 0, by_id[check_id].output
    # The shaped run trains the reference's shaping with this broken forward penalty (exercise 2's run), so its
    # verdict is not the shaping's: the feedback says that the penalty did not regularise the comparison.
    assert "with your kl_penalty_forward the plain-score run drifted" in by_id["training.shaped"].output
    if variant == "sign_flipped":
        assert "AWAY" in by_id["training.forward_kl"].output
        assert by_id["training.forward_kl"].misconception == "wrong_sign"
    else:
        assert "barely holds the policy back" in by_id["training.forward_kl"].output


@pytest.mark.slow
def test_r_log_r_as_backward_penalty_fails_the_backward_check(tmp_path, shared_baseline):
    """Slow: three real GRPO runs."""
    by_id, _ = _grade_training(_variant(tmp_path, "r_log_r_backward"), tmp_path, baseline_run=shared_baseline)
    backward = by_id["training.backward_kl"]
    assert backward.score == 0 and "AWAY" in backward.output, backward.output
    assert backward.misconception == "value_estimator_r_log_r"
    assert by_id["training.forward_kl"].score == by_id["training.forward_kl"].max_score


@pytest.mark.slow
def test_the_score_unchanged_as_shaping_reproduces_the_forward_run_and_fails(tmp_path, shared_baseline):
    """Slow: three real GRPO runs. Through the sandbox and the JSON crossing, the identity shaping's rewards are
    the plain score's to the bit, so the shaped run is the forward run step for step."""
    by_id, _ = _grade_training(_variant(tmp_path, "identity_shaping"), tmp_path, baseline_run=shared_baseline)
    shaped = by_id["training.shaped"]
    assert shaped.score == 0 and "plain-score run step for step" in shaped.output, shaped.output
    assert by_id["training.forward_kl"].score == by_id["training.forward_kl"].max_score


@pytest.mark.slow
def test_same_seed_same_training_scores(tmp_path, reference_graded):
    """Slow: the reference graded again (four real GRPO runs), this time making its own baseline: the same
    scores and feedback as the grade with the shared baseline, so sharing it changes nothing but the time."""
    first, *_ = reference_graded
    second, _ = _grade_training(REFERENCE, tmp_path)
    note = re.compile(r"\nThis baseline run was made once and shared[^\n]*")
    curves = re.compile(r"Curves of all training runs: \S+")

    def comparable(output: str) -> str:
        return curves.sub("Curves: PNG", note.sub("", output))

    assert {k: (t.score, comparable(t.output)) for k, t in first.items()} == {
        k: (t.score, comparable(t.output)) for k, t in second.items()
    }


def test_a_run_record_writes_what_it_has():
    gated = training_runs.RunRecord("forward", error="stub", component="kl_penalty_forward", gated=True)
    assert gated.to_dict() == {
        "run": "forward",
        "ok": False,
        "error": "stub",
        "component": "kl_penalty_forward",
        "internal": False,
        "history": [],
        "gated": True,
    }
    done = training_runs.RunRecord(
        "baseline", ok=True, key="baseline", seed=3, preset="tiny", wall_time_s=1.5
    )
    assert json.loads(json.dumps(done.to_dict())) == {
        "run": "baseline",
        "ok": True,
        "error": None,
        "component": None,
        "internal": False,
        "history": [],
        "key": "baseline",
        "seed": 3,
        "preset": "tiny",
        "wall_time_s": 1.5,
    }


def test_records_round_trip_as_json():
    """What a lane writes is plain JSON (nothing is unpickled); non-finite metrics survive the trip."""
    data = record(history([0.5, 0.6], [0.0, float("nan")])).to_dict()
    back = training_runs.RunRecord.from_dict(json.loads(json.dumps(data)))
    assert math.isnan(back.history[1]["kl_forward"]) and json.dumps(back.to_dict()) == json.dumps(data)


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
def test_a_function_that_fails_during_its_run_costs_that_run_only(tmp_path):
    """Slow: the baseline and three runs that stop early. A raise, a hang (past the per-call timeout) and a NaN
    in the middle of a run each score 0 for that run with the reason; the other runs are still made."""
    path = tmp_path / "rewards.py"
    path.write_text(BROKEN_DURING_THE_RUN)
    results = grade(GradeRequest(path, only=TRAINING_IDS, artifact_stem=tmp_path / "results"))
    by_id = {t.check_id: t for t in results.tests}
    assert not any(t.internal_error for t in results.tests), [t.output for t in results.tests]
    assert "raised ValueError: forward broke on call 4" in by_id["training.forward_kl"].output
    assert "did not finish in time" in by_id["training.backward_kl"].output
    assert "returned nan" in by_id["training.shaped"].output
    assert all(by_id[c].score == 0 for c in TRAINING_IDS)
    assert "+0." in by_id["training.baseline"].output  # the control run was still made and scored


def test_calibrate_cli_is_generated_from_its_config() -> None:
    from grader.tools.calibrate import VARIANTS, CalibrateConfig, parse_args

    assert parse_args([]) == CalibrateConfig()
    config = parse_args(["--seeds", "3", "4", "--variants", "reference", "zero_kl", "--preset", "gpt2"])
    assert (config.seeds, config.variants, config.preset) == ([3, 4], ["reference", "zero_kl"], "gpt2")
    assert set(CalibrateConfig().variants) == set(VARIANTS)
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--variants", "no_such_variant"])
    assert exit_info.value.code == 2


def test_calibration_table_scores_the_shaping_variants_against_the_forward_run():
    """The calibration's table from synthetic records: the identity shaping is the forward run (determinism line,
    repetition drop 0), the reference passes, and a requirement that does not hold is flagged."""
    from grader.tools.calibrate import render

    settings = dataclasses.replace(load_settings("tiny"), thresholds=TH)
    forward = record(
        history([0.55, 0.8, 0.93], [0.0, 0.1, 0.18], [0.0, 0.1, 0.2], repetition=0.14, perplexity=4.7)
    )
    records = {
        "reference/baseline/seed0": BASELINE,
        "reference/forward/seed0": forward,
        "reference/shaped/seed0": shaped_run(),
        "identity_shaping/shaped/seed0": record(forward.history),
        "gibberish_shaping/shaped/seed0": shaped_run(repetition=0.09, perplexity=35.0),
    }
    records = {key: r.to_dict() for key, r in records.items()}  # the calibration keeps them as saved JSON
    text, ok = render(
        records,
        settings,
        [0],
        ["reference", "identity_shaping", "gibberish_shaping"],
        "cmd",
        1.0,
        len(records),
    )
    assert ok, text
    assert "| identity_shaping |  |  |  | **0/1 pass** |" in text
    assert "| gibberish_shaping |  |  |  | **0/1 pass** |" in text
    assert "the identity shaping reproduces the forward run's, exactly in 1/1 cases" in text
    assert (
        "| shaped: repetition below forward's | >= +0.020 | +0.090 | 4.5x | identity_shaping +0.000 | any |"
        in text
    )
    assert "gibberish_shaping 7.447" in text and "gate" in text  # the KL gating choice is documented
    records["identity_shaping/shaped/seed0"] = (
        shaped_run().to_dict()
    )  # a "wrong" variant that passes: flagged
    text, ok = render(records, settings, [0], ["reference", "identity_shaping"], "cmd", 1.0, len(records))
    assert not ok and "(NOT AS REQUIRED)" in text


def test_calibration_with_saved_records_resumes_and_adds_up(tmp_path, monkeypatch):
    """--records FILE: runs already saved there are not made again, new ones are added, --rerender reads them
    all (an interrupted or seed-by-seed calibration costs no run twice)."""
    import grader.tools.calibrate as cal

    made: list[str] = []

    def fake_execute(jobs, **_kwargs):
        made.extend(job.key for job in jobs)
        return {job.key: record(CONTROL.history, key=job.key) for job in jobs}

    monkeypatch.setattr(cal, "execute", fake_execute)
    saved = tmp_path / "records.json"
    argv = ["--variants", "reference", "identity_shaping", "--runs", "shaped", "--records", str(saved)]
    cal.calibrate(cal.parse_args([*argv, "--seeds", "0"]))
    assert sorted(made) == [
        "identity_shaping/shaped/seed0",
        "reference/forward/seed0",
        "reference/shaped/seed0",
    ]
    made.clear()
    cal.calibrate(cal.parse_args([*argv, "--seeds", "0", "1"]))  # seed 0 is saved: only seed 1 is made
    assert sorted(made) == [
        "identity_shaping/shaped/seed1",
        "reference/forward/seed1",
        "reference/shaped/seed1",
    ]
    content = json.loads(saved.read_text())
    assert content["seeds"] == [0, 1] and content["n_runs"] == 6 and len(content["records"]) == 6
    text, _ = cal.calibrate(cal.parse_args(["--rerender", str(saved)]))
    assert "--seeds 0 1 --variants reference identity_shaping --runs shaped" in text
    assert "| 0 | identity_shaping | shaped |" in text and "| 1 | identity_shaping | shaped |" in text


def _with_samples(run, completions, **extra):
    """``run`` with its final validation's samples replaced: one per completion, prompts "P0", "P1" ..."""
    hist = [dict(r) for r in run.history]
    hist[-1]["samples"] = [
        {"prompt": f"P{i}", "completion": c, "sentiment": 0.9} for i, c in enumerate(completions)
    ]
    return record(hist, **extra)


def test_the_shaped_feedback_prints_the_sample_that_shows_its_diagnosis():
    """Issue 25: the feedback said "sub-word soup, word salad" beside the first prompt's sample, which read fine.
    The sample printed is the one that shows the failure, for both runs at the same prompt."""
    control = _with_samples(CONTROL, [" fine film.", " great great great.", " a good cast."])
    fluent = [" the film was fine.", " the acting was good.", " a lovely ending."]
    # repetition: the completion that repeats itself most
    loops = _with_samples(shaped_run(repetition=0.13), [fluent[0], " great great great great.", fluent[2]])
    outcome = C.score_shaped(control, loops, replace(TH, shaped_min_repetition_drop=0.015))
    assert "training:shaping_no_effect" in outcome.tags
    # the calibrated number, not rounded to 0.01
    assert "must be at least 0.015 lower FAILED" in outcome.feedback
    assert "where your completion repeats itself most:" in outcome.feedback
    assert "'P1' -> 'great great great great.'" in outcome.feedback
    assert "'P1' -> 'great great great.'" in outcome.feedback  # the plain score's, same prompt
    # unnatural, on the tiny model: the completion with the most words its corpus never had
    soup = _with_samples(
        shaped_run(repetition=0.09, perplexity=35.0, kl=(0.0, 1.0, 1.7)),
        [fluent[0], fluent[1], " greatad wefter andad film."],
        preset="tiny",
    )
    outcome = C.score_shaped(control, soup, TH)
    assert (
        "most made-up words" in outcome.feedback
        and "'P2' -> 'greatad wefter andad film.'" in outcome.feedback
    )
    # unnatural, without a corpus (GPT-2): the completion with the most different words
    salad = _with_samples(
        shaped_run(repetition=0.09, perplexity=35.0, kl=(0.0, 1.0, 1.7)),
        [fluent[0], " superb moving lovely tender bright witty bold film.", fluent[2]],
        preset="gpt2",
    )
    assert "'P1' -> 'superb moving" in C.score_shaped(control, salad, TH).feedback
    # a pass shows the first prompt, as before
    passed = C.score_shaped(control, _with_samples(shaped_run(), fluent), TH)
    assert passed.fraction == 1 and "the first validation prompt:" in passed.feedback
    assert "'P0' -> 'the film was fine.'" in passed.feedback
