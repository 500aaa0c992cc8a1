"""Issue 23: the shaped training run is judged by the declared goal's own metric (grader.checks.goals.TrainingMetric,
grader.checks.training.score_shaped) on synthetic run records: repetition falls, mean words per completion rise
(longer) or fall (shorter), the sentiment scores' distance from neutral widens (contrast), the share of rhyming
completions rises (rhyme), each against the forward run; identity and constant shapings fail every goal. Also the
validation metrics behind them (exercise/validation.py) and the measurement in results.json's extra_data.

A real grade of a length-goal submission (slow): tests/integration/test_goals_grade.py."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import given, settings

from exercise.validation import rhyme_rate, rhymes, sentence_end_words
from grader.checks import training as C
from grader.checks.evidence import UNDECIDED
from grader.checks.goals import GOALS
from grader.checks.strategies import rhyme_cases
from grader.grading.results import GradingResults, NotGradable, TestResult
from grader.training.settings import PRESETS, Thresholds, load_settings
from tests.support.run_records import history, run

TH = Thresholds(
    baseline_min_gain=0.15,
    kl_min_gain=0.1,
    kl_max_ratio=0.17,
    shaped_min_gain=0.085,
    shaped_min_repetition_drop=0.015,
    shaped_max_perplexity_ratio=2.1,
    shaped_max_kl_rise=0.5,
    shaped_min_words_rise=1.0,
    shaped_min_words_drop=1.0,
    shaped_min_contrast_rise=0.01,
    shaped_min_rhyme_rise=0.05,
)
#: the forward run's final goal metrics (the shaped run's control)
CONTROL_METRICS = {
    "repetition": 0.12,
    "completion_words": 14.0,
    "sentiment_contrast": 0.40,
    "rhyme_rate": 0.10,
}
#: the move that each goal's metric must make to pass (a little more than its threshold)
PASSING_MOVE = {"repetition": 0.03, "longer": 2.0, "shorter": 2.0, "contrast": 0.03, "rhyme": 0.10}


def _with(record, metrics):
    """``record`` with ``metrics`` in every validation (the final one is what is judged)."""
    return run(record.run, [{**entry, **metrics} for entry in record.history], wall_time_s=15.0)


CONTROL = _with(run("forward", history([0.55, 0.7, 0.8], [0.0, 0.1, 0.2], repetition=0.12)), CONTROL_METRICS)


def _shaped(goal: str, move: float, sentiments=(0.55, 0.7, 0.8)):
    """A shaped run that learns and stays natural, with the goal's metric moved ``move`` its way."""
    metric = GOALS[goal].metric
    metrics = {**CONTROL_METRICS, metric.key: CONTROL_METRICS[metric.key] + metric.direction * move}
    hist = history(list(sentiments), [0.0, 0.1, 0.2], repetition=metrics["repetition"])
    return _with(run("shaped", hist), metrics)


@pytest.mark.parametrize("goal", GOALS)
def test_a_shaping_that_moves_its_goal_metric_passes(goal):
    metric = GOALS[goal].metric
    outcome = C.score_shaped(CONTROL, _shaped(goal, PASSING_MOVE[goal]), TH, goal=goal)
    assert outcome.fraction == 1, outcome.feedback
    assert f"your goal ({goal}): {metric.name}" in outcome.feedback
    assert f"must be at least {getattr(TH, metric.threshold):g} {metric.way} ok" in outcome.feedback
    assert metric.done in outcome.feedback
    assert outcome.measurements["goal"] == goal and outcome.measurements["metric"] == metric.key
    assert outcome.measurements["move"] == pytest.approx(PASSING_MOVE[goal])
    assert outcome.measurements["moved"] is True


@pytest.mark.parametrize("goal", GOALS)
@pytest.mark.parametrize("how", ["too_little", "the_other_way"])
def test_a_shaping_that_does_not_move_its_goal_metric_enough_fails(goal, how):
    metric = GOALS[goal].metric
    least = getattr(TH, metric.threshold)
    move = 0.5 * least if how == "too_little" else -PASSING_MOVE[goal]
    outcome = C.score_shaped(CONTROL, _shaped(goal, move), TH, goal=goal)
    assert outcome.fraction == 0, outcome.feedback
    assert f"must be at least {least:g} {metric.way} FAILED" in outcome.feedback
    assert metric.hint in outcome.feedback and outcome.tags == ["training:shaping_no_effect"]
    assert outcome.measurements["moved"] is False


def test_each_goal_is_judged_by_its_own_metric_only():
    """A run that moved only the "longer" metric passes that goal and fails every other one (whose metrics are
    the control's); a shorter-goal run that got longer fails."""
    longer = _shaped("longer", PASSING_MOVE["longer"])
    verdicts = {goal: C.score_shaped(CONTROL, longer, TH, goal=goal).fraction for goal in GOALS}
    assert verdicts == {goal: float(goal == "longer") for goal in GOALS}


@pytest.mark.parametrize("goal", GOALS)
def test_identity_and_constant_shapings_fail_every_goal(goal):
    """Identity reproduces the forward run step for step (every metric's move is 0). A constant learns nothing
    and leaves the text as the untrained model writes it: as tiny.md measured (seed 0), shorter, less repetitive
    and closer to neutral than the forward run, so its moves pass the "repetition" and "shorter" metrics; it
    fails those goals (and every other) on the sentiment gain."""
    identity = C.score_shaped(CONTROL, run("shaped", CONTROL.history), TH, goal=goal)
    assert identity.fraction == 0 and "training:shaping_changes_nothing" in identity.tags
    assert identity.measurements["move"] == 0 and "FAILED" in identity.feedback
    untrained = {"repetition": 0.05, "completion_words": 11.4, "sentiment_contrast": 0.23, "rhyme_rate": 0.0}
    flat = [0.55, 0.55, 0.56]
    constant = _with(run("shaped", history(flat, [0.0, 0.0, 0.0], repetition=0.05)), untrained)
    outcome = C.score_shaped(CONTROL, constant, TH, goal=goal)
    assert outcome.fraction == 0 and "training:shaped_no_learning" in outcome.tags
    assert outcome.measurements["moved"] is (goal in ("repetition", "shorter"))


def test_a_run_without_the_goal_metric_is_not_gradable():
    """A validation history without the goal's metric (a pipeline older than the grader) is the grader's problem."""
    old = run("shaped", history([0.55, 0.7, 0.8], [0.0, 0.1, 0.2]))
    with pytest.raises(NotGradable, match="completion_words"):
        C.score_shaped(CONTROL, old, TH, goal="longer")
    assert C.score_shaped(CONTROL, _shaped("repetition", 0.03), TH).fraction == 1  # the default goal's metric


def test_an_unknown_goal_is_a_grader_error():
    with pytest.raises(ValueError, match="unknown shaping goal"):
        C.score_shaped(CONTROL, _shaped("longer", 2.0), TH, goal="poetry")


@pytest.mark.parametrize("preset", PRESETS)
def test_every_goal_has_a_positive_threshold_or_is_shown_only_in_every_preset(preset):
    """A positive least move fails the identity shaping (move 0); a goal whose metric the preset's run cannot
    measure is shown only (-inf), and there the same-history rule fails it (next test). The repetition goal, the
    stub's default and the one the calibration separates best, is always required."""
    th = load_settings(preset).thresholds
    for goal in GOALS.values():
        least = getattr(th, goal.metric.threshold)
        assert least == -math.inf or (math.isfinite(least) and least > 0), goal.id
    assert th.shaped_min_repetition_drop > 0


SHOWN = replace(TH, shaped_min_contrast_rise=-math.inf)


def test_a_shown_only_goal_metric_is_reported_but_not_required():
    """Where the calibration found the run too short to move a goal's metric beyond noise, a correct shaping
    whose run moved it the wrong way by chance keeps its points; the feedback says why it is not required."""
    outcome = C.score_shaped(CONTROL, _shaped("contrast", -PASSING_MOVE["contrast"]), SHOWN, goal="contrast")
    assert outcome.fraction == 1, outcome.feedback
    assert "shown, not required" in outcome.feedback and "shaping.goal" in outcome.feedback
    assert outcome.measurements["least_move"] is None  # results.json stays plain JSON (no -Infinity)
    assert not outcome.measurements["near_threshold"]


def test_identity_fails_a_shown_only_goal_too():
    """With the goal's metric not required, nothing but the same-history rule fails a shaping that ranks the
    completions as the score does. One such run does not decide, though: a correct shaping whose bonus never came
    up in its run's completions (a real rhyme, on the tiny preset, on some seeds only: tiny.md) is its control's
    run too, so the verdict asks for the runs at further seeds (grader/checks/evidence.py); a shaping that
    changes nothing on any seed fails there too (tests/unit/test_seed_luck.py). Where the metric is required, the
    same run is a clear failure: it did not move."""
    identity = C.score_shaped(CONTROL, run("shaped", CONTROL.history), SHOWN, goal="contrast")
    assert identity.fraction == 0 and "training:shaping_changes_nothing" in identity.tags
    (reason,) = identity.measurements[UNDECIDED]
    assert "the same run as its control step for step" in reason
    required = C.score_shaped(CONTROL, run("shaped", CONTROL.history), TH, goal="contrast")
    assert required.fraction == 0 and not required.measurements[UNDECIDED]
    moved = C.score_shaped(CONTROL, _shaped("contrast", -PASSING_MOVE["contrast"]), SHOWN, goal="contrast")
    assert not moved.measurements[UNDECIDED]  # a run of its own decides


def test_shown_only_is_read_from_the_settings_file_for_goal_metrics_only(tmp_path):
    from grader.training.settings import SETTINGS_PATH, SettingsError

    text = SETTINGS_PATH.read_text(encoding="utf-8")
    start = text.index("[tiny.thresholds]")
    key = "shaped_min_contrast_rise = "
    at = text.index(key, start)
    end = text.index("\n", at)
    shown = tmp_path / "shown.toml"
    shown.write_text(text[:at] + key + '"shown"' + text[end:], encoding="utf-8")
    assert load_settings("tiny", shown).thresholds.shaped_min_contrast_rise == -math.inf
    at = text.index("shaped_min_gain = ", start)
    end = text.index("\n", at)
    bad = tmp_path / "bad.toml"
    bad.write_text(text[:at] + 'shaped_min_gain = "shown"' + text[end:], encoding="utf-8")
    with pytest.raises(SettingsError, match="shaped_min_gain must be a number, not 'shown'"):
        load_settings("tiny", bad)


def _drifted(goal: str, failing: str):
    """A shaped run that moved its goal's metric and learned, but ended far from the reference: 4x the control's
    KL ("kl"), or 3x its perplexity ("perplexity")."""
    shaped = _shaped(goal, PASSING_MOVE[goal])
    last = {"kl_forward": 4 * CONTROL.final["kl_forward"]} if failing == "kl" else {"ref_perplexity": 13.5}
    return run("shaped", [*shaped.history[:-1], {**shaped.final, **last}], wall_time_s=15.0)


@pytest.mark.parametrize("failing", ["kl", "perplexity"])
def test_a_drifting_contrast_shaping_is_told_that_amplifying_rescales_the_penalty(failing):
    """An amplifying shaping (e.g. exp(3 * (score - 0.5)), 0.22 to 4.5) multiplies the reward's scale, so the same
    kl_coef holds the policy back less: the feedback says so and how to rescale, instead of the general reason."""
    outcome = C.score_shaped(CONTROL, _drifted("contrast", failing), TH, goal="contrast")
    assert outcome.fraction == 0 and outcome.measurements["moved"] is True, outcome.feedback
    text = " ".join(outcome.feedback.split())
    assert GOALS["contrast"].metric.drift and GOALS["contrast"].metric.drift in text
    for says in (
        "multiplies the reward's scale",
        "same kl_coef",
        "within [0, 1]",
        "divide it by its largest",
    ):
        assert says in text
    assert "many different words" not in text  # the general reason does not fit an amplifying shaping
    for other in ("longer", "shorter"):  # the goals without a reason of their own keep the general one
        text = C.score_shaped(CONTROL, _drifted(other, failing), TH, goal=other).feedback
        assert "many different words" in text and "multiplies the reward's scale" not in text


@pytest.mark.parametrize("failing", ["kl", "perplexity"])
def test_a_drifting_rhyme_shaping_is_told_to_keep_its_bonus_a_fraction_of_the_score(failing):
    """A rhyme bonus that drifts (as the whole score's bonus per pair did on half the seeds while the same word
    twice counted as a rhyme, tiny.md): the feedback says why and how much smaller to make it, instead of the
    general reason."""
    outcome = C.score_shaped(CONTROL, _drifted("rhyme", failing), TH, goal="rhyme")
    assert outcome.fraction == 0, outcome.feedback
    text = " ".join(outcome.feedback.split())
    assert GOALS["rhyme"].metric.drift in text
    assert "away from what the reference model writes" in text and "a fraction of the score" in text
    assert "many different words" not in text and "multiplies the reward's scale" not in text


def test_the_measurement_reaches_results_json():
    measured = C.score_shaped(CONTROL, _shaped("rhyme", 0.1), TH, goal="rhyme").measurements
    test = TestResult("shaped", 8.0, 8.0, "ok", check_id="training.shaped", measurements=measured)
    data = GradingResults([test], 1.0).to_gradescope_dict()
    assert data["tests"][0]["extra_data"]["measurements"]["metric"] == "rhyme_rate"
    again = GradingResults.from_dict(data).tests[0].measurements
    assert again["move"] == pytest.approx(0.1) and again["goal"] == "rhyme"


# ---------------------------------------------------------------------------------------------------------------
# The validation metrics (exercise/validation.py)
# ---------------------------------------------------------------------------------------------------------------


def test_sentence_ends_and_rhymes():
    assert sentence_end_words("I loved the night. It was a delight! And then") == ["night", "delight", "then"]
    assert rhymes("I loved the night. It was a delight.")
    assert not rhymes("I loved the night. It was a table.")
    assert rhymes("Great night. The plot was a delight")  # the text after the last end is a sentence too
    # the same word twice is repetition, not a rhyme (whatever its case)
    assert not rhymes("Good in every way. Fine in every way.") and not rhymes("So so. So SO.")
    assert rhymes("It was bright. It was BRIGHT and light.")
    assert not rhymes("") and not rhymes("night light")  # one sentence: nothing to rhyme with
    assert rhyme_rate(["A night. A light.", "A night. A table.", "", "Bright. Delight. Music."]) == 0.5
    assert rhyme_rate([]) == 0.0


@settings(max_examples=60, deadline=None)
@given(rhyme_cases())
def test_the_rhyme_metric_follows_the_rhyme_goals_rule(case):
    """The training metric counts as rhyming exactly what the rhyme goal's property pays for."""
    assert rhymes(case.rhyming) and not rhymes(case.plain)


def test_the_validation_record_has_the_goal_metrics_of_its_own_texts(tiny_gpt2_dir):
    """completion_words, sentiment_contrast and rhyme_rate come from the validation's texts and scores (the
    samples hold all three prompts' here), and every goal's metric is in the record."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from exercise.sentiment import VaderScorer, words
    from exercise.validation import Validator

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_gpt2_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_gpt2_dir, padding_side="left")
    prompts = ["The movie was", "I think the acting", "Overall the film"]
    validator = Validator(tokenizer, VaderScorer(), prompts, max_new_tokens=12, temperature=1.0, seed=0)
    record = validator.evaluate(model, model, step=0)
    texts = [s["completion"] for s in record["samples"]]
    scores = [s["sentiment"] for s in record["samples"]]
    assert len(texts) == 3
    assert record["completion_words"] == pytest.approx(sum(len(words(t)) for t in texts) / 3)
    assert record["sentiment_contrast"] == pytest.approx(sum(abs(s - 0.5) for s in scores) / 3)
    assert record["rhyme_rate"] == rhyme_rate(texts)
    assert {goal.metric.key for goal in GOALS.values()} <= set(record)


def test_thresholds_built_in_code_without_the_goal_keys_pass_no_other_goal():
    th = replace(TH, shaped_min_words_rise=math.inf)
    assert C.score_shaped(CONTROL, _shaped("longer", 100.0), th, goal="longer").fraction == 0


@pytest.mark.parametrize(
    "name", ["contrast", "longer", "shorter", "rhyme", "exponential", "rhyme_mild", "shorter_mild"]
)
def test_the_calibrations_correct_shapings_pass_their_goals_property(name):
    """The shapings the goals' training thresholds are calibrated with (tests/support/goal_shapings.py) are correct
    by the goal's defining property, so the calibration measures correct submissions."""
    from grader.checks import shaping
    from grader.contract import SHAPING, CheckContext
    from tests.support.fake_submission import FakeSubmission
    from tests.support.goal_shapings import ALSO_CORRECT, CORRECT

    goal, fn = ALSO_CORRECT.get(name) or (name, CORRECT[name])
    context = CheckContext(seed=0, max_examples=60, shaping_goal=goal)
    assert shaping.goal(FakeSubmission({SHAPING: fn}), context).fraction == 1
