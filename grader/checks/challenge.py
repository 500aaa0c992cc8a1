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

One third of the points per target met: the feedback says where the run landed against each, with a sample and
the command that reproduces the run. The three numbers are also the class leaderboard's (Gradescope's
``leaderboard``): sentiment and distinct-2 rank high first, perplexity low first, named with the preset (a GPU
run of the gpt2 preset is not ranked with tiny runs).
"""

from __future__ import annotations

import math

from grader.checks.training import _finish, _run_failed, run_set
from grader.contract import CheckContext, CheckFunction, CheckOutcome, LeaderboardEntry, Submission
from grader.training.challenge import NAME
from grader.training.runs import RunRecord
from grader.training.settings import ChallengeTargets


def score_challenge(
    record: RunRecord, targets: ChallengeTargets, preset: str, command: str = ""
) -> CheckOutcome:
    """The outcome of the challenge's run: a third of the points per target its last validation meets."""
    final = record.history[-1]
    sentiment = float(final.get("sentiment_mean", math.nan))
    perplexity = float(final.get("ref_perplexity", math.nan))
    distinct = float(final.get("distinct_2", math.nan))
    met = {
        "positive": sentiment >= targets.min_sentiment,
        "reads like the reference": perplexity <= targets.max_ref_perplexity,
        "varied": distinct >= targets.min_distinct_2,
    }
    lines = [
        f"Your configuration's run ({preset} preset, step {final.get('step', '?')}) ended at:",
        f"  sentiment {sentiment:.3f} (target >= {targets.min_sentiment:g}): {_mark(met['positive'])}",
        f"  reference perplexity {perplexity:.1f} (target <= {targets.max_ref_perplexity:g}): "
        f"{_mark(met['reads like the reference'])}",
        f"  distinct-2 {distinct:.2f} (target >= {targets.min_distinct_2:g}): {_mark(met['varied'])}",
    ]
    sample = _sample(record)
    if sample:
        lines.append(f"A sample at its last step: {sample}")
    missed = [name for name, ok in met.items() if not ok]
    if missed == ["positive"]:
        lines.append(
            "The text stays sensible but not positive enough: the run learns too little (more steps, a larger "
            "learning rate, or a smaller kl_coef)."
        )
    elif missed:
        lines.append(
            "The run bought its sentiment with the text: it drifted from what the reference model writes "
            "(a KL penalty, a larger kl_coef, a smaller learning rate or fewer steps hold it closer)."
        )
    if command:
        lines.append(f"Reproduce and inspect it: {command}")
    outcome = CheckOutcome(sum(met.values()) / len(met), "\n".join(lines))
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


#: The run this check judges (see grader.checks.training.RUNS_JUDGED)
RUNS_JUDGED = {"challenge.outcome": frozenset({"challenge"})}


def checks() -> dict[str, CheckFunction]:
    return {"challenge.outcome": check_challenge}
