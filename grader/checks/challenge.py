"""The tuning challenge: the run the student configured (``TRAINING_CHALLENGE``) must end positive and sensible.

The original exercise's fifth aim: tune the reward, the regularisation and the training configuration so that
the model ends with both positive sentiment and sensible text. The grade's training engine makes one run with the
student's configuration (:mod:`grader.training.challenge`: penalty, coefficient, shaping, learning rate, steps)
and this check scores where its last validation lands against the preset's targets
(``[PRESET.challenge]`` in ``grader/training/calibration/thresholds.toml``):

* validation sentiment at least ``min_sentiment`` (positive),
* the samples' perplexity under the reference model at most ``max_ref_perplexity`` (text the reference would
  write: no collapse into word salad or one stock phrase),
* distinct-2 at least ``min_distinct_2`` (not one phrase repeated).

Nothing unless the text stays sensible (the perplexity and distinct-2 targets: a collapsed run's "positive"
word salad earns no points, as in the lesson), then the share of the way from the run's step-0 sentiment to the
sentiment target (partial credit for a run that learned too little). The feedback says where the run landed
against each target, with a sample and the command that reproduces the run. The three numbers are also the class leaderboard's (Gradescope's
``leaderboard``): sentiment and distinct-2 rank high first, perplexity low first, named with the preset (a GPU
run of the gpt2 preset is not ranked with tiny runs).
"""

from __future__ import annotations

import math

from grader.checks.training import _finish, _run_failed, judging, run_set
from grader.contract import CheckContext, CheckFunction, CheckOutcome, LeaderboardEntry, Submission
from grader.training.challenge import NAME
from grader.training.runs import RunRecord
from grader.training.settings import ChallengeTargets


def score_challenge(
    record: RunRecord, targets: ChallengeTargets, preset: str, command: str = ""
) -> CheckOutcome:
    """The outcome of the challenge's run, from its first and last validation: nothing unless the text stays
    sensible (perplexity and distinct-2 targets), then the share of the way from its starting sentiment to the
    sentiment target (all of it at or above the target)."""
    first, final = record.history[0], record.history[-1]
    start = float(first.get("sentiment_mean", math.nan))
    sentiment = float(final.get("sentiment_mean", math.nan))
    perplexity = float(final.get("ref_perplexity", math.nan))
    distinct = float(final.get("distinct_2", math.nan))
    positive = sentiment >= targets.min_sentiment
    reads_like_reference = perplexity <= targets.max_ref_perplexity
    varied = distinct >= targets.min_distinct_2
    sensible = reads_like_reference and varied
    if not sensible:
        fraction = 0.0
    elif positive:
        fraction = 1.0
    else:  # partial credit along the way: the share of the sentiment gain the target asks for
        needed = targets.min_sentiment - start
        fraction = min(1.0, max(0.0, (sentiment - start) / needed)) if needed > 0 else 1.0
    lines = [
        f"Your configuration's run ({preset} preset, step {final.get('step', '?')}) ended at:",
        f"  sentiment {sentiment:.3f}, from {start:.3f} at step 0 (target >= {targets.min_sentiment:g}): "
        f"{_mark(positive)}",
        f"  reference perplexity {perplexity:.1f} (target <= {targets.max_ref_perplexity:g}): "
        f"{_mark(reads_like_reference)}",
        f"  distinct-2 {distinct:.2f} (target >= {targets.min_distinct_2:g}): {_mark(varied)}",
    ]
    sample = _sample(record)
    if sample:
        lines.append(f"A sample at its last step: {sample}")
    if not sensible:
        lines.append(
            "The run bought its sentiment with the text: it drifted from anything the reference model writes, "
            "and a positive score for such text earns nothing here (a KL penalty, a larger kl_coef, a smaller "
            "learning rate or fewer steps hold it closer)."
        )
    elif not positive:
        lines.append(
            f"The text stays sensible but the run learned too little: {fraction:.0%} of the way to the sentiment "
            "target (more steps, a larger learning rate, or a smaller kl_coef)."
        )
    if command:
        lines.append(f"Reproduce and inspect it: {command}")
    outcome = CheckOutcome(fraction, "\n".join(lines))
    outcome.leaderboard = [
        LeaderboardEntry(f"sentiment ({preset})", _finite(sentiment), "desc"),
        LeaderboardEntry(f"reference perplexity ({preset})", _finite(perplexity, worst=1e9), "asc"),
        LeaderboardEntry(f"distinct-2 ({preset})", _finite(distinct), "desc"),
    ]
    return outcome


def _mark(ok: bool) -> str:
    return "met" if ok else "MISSED"


def _finite(value: float, worst: float = 0.0) -> float:
    return value if math.isfinite(value) else worst


def _sample(record: RunRecord, limit: int = 140) -> str:
    samples = record.history[-1].get("samples") or []
    if not samples or not isinstance(samples[0], dict):
        return ""
    text = f"{samples[0].get('prompt', '')}{samples[0].get('completion', '')}".replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check_challenge(submission: Submission, context: CheckContext) -> CheckOutcome:
    runs = run_set(submission, context)
    record = runs.records.get("challenge")
    if record is None:  # the engine was not asked for it: a rubric without the challenge cannot reach here
        return CheckOutcome(0.0, "The tuning challenge's run was not made.")
    if record.gated and record.component is None:  # the declaration itself
        return _finish(
            CheckOutcome(
                0.0,
                f"Your tuning challenge could not be run: {record.error}.\n"
                f"Declare it in rewards.py as the handout's stub does: {NAME} = {{...}}.",
                tags=["challenge:declaration"],
            ),
            runs,
            context,
        )
    if record.gated or not record.usable:
        return _finish(
            _run_failed(record, "your tuning challenge's run", runs.records.get("baseline")), runs, context
        )
    settings = runs.settings
    preset = settings.preset if settings else "?"
    command = runs.challenge.command(preset, runs.seed) if runs.challenge else ""
    outcome = score_challenge(record, settings.challenge, preset, command) if settings else CheckOutcome(0.0)
    return _finish(outcome, runs, context)


def checks() -> dict[str, CheckFunction]:
    return {"challenge.outcome": judging(check_challenge, "challenge")}
