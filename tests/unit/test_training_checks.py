"""The training checks' scoring: a submission's short GRPO runs judged against calibrated thresholds, on synthetic
validation histories and run records, in process and in milliseconds.

Also the settings file, the lane scheduling, the run records' JSON, each grade's own runs, the rubric's training
entries, the calibration's command line and table, and the sample the shaped feedback prints. The training checks
inside a real grade (the sandbox, the lanes, the stub's zeros and the real runs, slow) are in
tests/integration/test_training_checks_grade.py.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import replace

import pytest

from grader.checks import training as C
from grader.grading.results import NotGradable
from grader.grading.rubric import load_rubric
from grader.training import runs as training_runs
from grader.training.engine import TrainingEngine
from grader.training.runs import Job, split_jobs
from grader.training.settings import RUNS, SettingsError, Thresholds, load_settings, train_config
from tests.support.check_ids import TRAINING_IDS

TH = Thresholds(
    baseline_min_gain=0.2,
    kl_min_gain=0.1,
    kl_max_ratio=0.3,
    shaped_min_gain=0.05,
    shaped_min_repetition_drop=0.02,
    shaped_max_perplexity_ratio=2.0,
    shaped_max_kl_rise=0.5,
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
        shaped_max_kl_rise=1.0,
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
    """Issue 23: a shaping declared for another goal (grader.checks.goals) is judged by its goal's own training
    metric, not failed for repeating itself as much as the plain score (each goal's metric:
    tests/unit/test_shaping_goal_training.py)."""
    as_repetitive = shaped_run(repetition=0.13)
    assert C.score_shaped(CONTROL, as_repetitive, TH).fraction == 0.0
    longer = record([{**e, "completion_words": 16.0} for e in as_repetitive.history])
    control = record([{**e, "completion_words": 12.0} for e in CONTROL.history], config={"kl_coef": 0.3})
    th = replace(TH, shaped_min_words_rise=2.0)
    other = C.score_shaped(control, longer, th, goal="longer")
    assert other.fraction == 1.0, other.feedback
    assert "your goal (longer): mean words per completion 16.000, the plain score's 12.000" in other.feedback


def test_a_shaping_that_pays_for_gibberish_fails_on_perplexity():
    """Varied, positive, not repetitive, and unnatural: perplexity 35 against the control's 4.7 (7.4x)."""
    outcome = C.score_shaped(CONTROL, shaped_run(repetition=0.09, perplexity=35.0, kl=(0.0, 1.0, 1.7)), TH)
    assert outcome.fraction == 0 and outcome.tags == ["training:shaped_gibberish"]
    assert "35.0 against 4.7: 7.45x, must be at most 2x FAILED" in outcome.feedback
    assert "1.700 against 0.180: +1.520, may rise at most 0.5 FAILED" in outcome.feedback
    assert "unnatural" in outcome.feedback


def test_a_shaping_that_overpowers_the_penalty_fails_on_kl_even_when_its_text_reads_well():
    """Word salad of common phrases can stay fairly predictable token by token (perplexity 1.6x here), while the
    policy has moved 1.26 nats per token further from the reference than the plain score took it under the same
    penalty (8x as far)."""
    outcome = C.score_shaped(CONTROL, shaped_run(repetition=0.09, perplexity=7.5, kl=(0.0, 0.8, 1.44)), TH)
    assert outcome.fraction == 0 and outcome.tags == ["training:shaped_overpowers_penalty"]
    assert "7.5 against 4.7: 1.60x, must be at most 2x ok" in outcome.feedback
    assert "+1.260, may rise at most 0.5 FAILED" in outcome.feedback
    assert "drowns the penalty" in outcome.feedback


def test_the_shaped_kl_is_judged_as_a_rise_over_the_control_not_a_ratio():
    """The forward runs' own KL varies between seeds (0.24-0.33 on the calibration's), and a ratio over it let
    word salad come within 1.3x of the threshold: the check compares nats per token. A control that barely moved
    (KL 0.05) does not turn a correct shaping's modest drift into a failure (0.30 is 6x that, +0.25 nats), and a
    run 1.0 nat further than a drifting control fails although it is only 2x its KL."""
    barely = record(history([0.55, 0.8, 0.93], [0.0, 0.04, 0.05], repetition=0.14, perplexity=4.7))
    modest = C.score_shaped(barely, shaped_run(kl=(0.0, 0.2, 0.3)), TH)
    assert modest.fraction == 1, modest.feedback
    assert "0.300 against 0.050: +0.250, may rise at most 0.5 ok" in modest.feedback
    drifting = record(history([0.55, 0.8, 0.93], [0.0, 0.8, 1.0], repetition=0.14, perplexity=4.7))
    far = C.score_shaped(drifting, shaped_run(kl=(0.0, 1.5, 2.0)), TH)
    assert far.fraction == 0 and "training:shaped_overpowers_penalty" in far.tags
    assert "2.000 against 1.000: +1.000, may rise at most 0.5 FAILED" in far.feedback


def test_shaped_thresholds_are_inclusive():
    th = Thresholds(
        0.2,
        0.1,
        0.3,
        shaped_min_gain=0.25,
        shaped_min_repetition_drop=0.0625,
        shaped_max_perplexity_ratio=1.25,
        shaped_max_kl_rise=0.375,
    )
    # gain 0.25, repetition 0.0625 below 0.125, perplexity 1.25x 4.0, KL 0.375 above 0.25: all exactly at their
    # limits (each value exact in binary)
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
    assert not gpt2.calibrated and "python -m grader.tools calibrate --preset gpt2" in gpt2.note
    bad = tmp_path / "t.toml"
    bad.write_text("[tiny]\n[tiny.runs]\nmax_steps = 1\n")
    with pytest.raises(SettingsError, match=r"\[tiny.runs\] must have exactly"):
        load_settings("tiny", bad)
    with pytest.raises(SettingsError, match="no \\[gpt2\\] table"):
        load_settings("gpt2", bad)


def test_a_thresholds_file_with_the_old_shaped_kl_ratio_says_what_replaced_it(tmp_path):
    """An instructor's older thresholds.toml names shaped_max_kl_ratio: a ratio read as a rise of 2.8 nats would
    pass every word salad, so the file is refused with what to write instead."""
    from grader.training.settings import SETTINGS_PATH

    old = tmp_path / "old.toml"
    old.write_text(
        SETTINGS_PATH.read_text().replace("shaped_max_kl_rise = 0.55", "shaped_max_kl_ratio = 2.8")
    )
    with pytest.raises(
        SettingsError, match=r"\[tiny.thresholds\] shaped_max_kl_ratio: replaced by shaped_max_kl_rise"
    ):
        load_settings("tiny", old)


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
