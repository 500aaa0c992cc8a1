"""More evidence for a training check whose result landed in the calibration's noise band.

One GRPO run is one draw: the same submission at another seed ends elsewhere. The thresholds are calibrated so
that the reference clears each one, and the wrong variants miss it, by about 2x on every seed measured
(``grader/training/calibration/tiny.md``); a result closer to a threshold than half that margin (a factor
:data:`NOISE_BAND`, the square root of 2, either side) says little about the submission and much about the seed.
Such a verdict is not left to one draw: the check judges the same runs at the next seeds and the majority of
three decides (a second seed that agrees with the first settles it). So is one where the run says nothing either
way for another reason (:data:`UNDECIDED`: a shaping whose bonus never came up in the run's completions, so the
run is its control's step for step). The feedback says that this happened, and
what each seed gave.

Pure orchestration: the check passes a function that judges its runs at another seed (the runs are the grade's
engine's to make), or answers None when it cannot (no time left in the grade, a run the machine did not finish);
then the seeds judged so far decide, and the feedback says why. A draw that says nothing either way is no
evidence for either verdict: where no seed decided, the check fails once every draw is made (a shaping that
changes nothing on any seed), and is not gradable when the machine, not the submission, left no time for more.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

from grader.contract import CheckOutcome, NotGradable

#: A result within this factor of a threshold, either side, is inside the noise band (half the 2x margin the
#: calibration requires, in log scale).
NOISE_BAND = math.sqrt(2)
#: The measurement key a scoring function lists the quantities under that landed in the band.
NEAR = "near_threshold"
#: The measurement key for other reasons a run at one seed says nothing either way, each a clause that follows
#: "Your result at seed N was ..." (a shaping whose bonus never came up in that run's completions).
UNDECIDED = "undecided"
#: At most this many seeds decide (the grade's own and the next ones): a majority of three.
DRAWS = 3


def near(value: float, threshold: float, band: float = NOISE_BAND) -> bool:
    """``value`` lies within a factor ``band`` of a positive, finite ``threshold``, either side."""
    if not (math.isfinite(value) and math.isfinite(threshold)) or threshold <= 0:
        return False
    return threshold / band <= value <= threshold * band


def decide(
    first: CheckOutcome,
    seed: int,
    judge_at: Callable[[int], CheckOutcome | None],
    machine_cause: Callable[[], str | None] | None = None,
) -> CheckOutcome:
    """``first`` (the verdict at the grade's ``seed``) when it is clear; else the majority over up to
    :data:`DRAWS` seeds (``seed``, ``seed + 1``, ...), judged by ``judge_at`` (None: no evidence to be had).

    A draw that says nothing either way (:data:`UNDECIDED`) is no evidence: the majority is taken over the draws
    that decided, and a split among them goes to the first that decided. When no draw decided: a check that
    made all :data:`DRAWS` fails (a shaping that changes nothing on any seed); one cut short by the machine
    (``judge_at`` answered None) is not gradable where ``machine_cause`` says the machine, not the submission's
    code, took the time (else it fails: a submission that runs out the grade's time does not escape)."""
    quantities = first.measurements.get(NEAR) or []
    reasons = first.measurements.get(UNDECIDED) or []
    if not (quantities or reasons):
        return first
    verdicts: list[tuple[int, CheckOutcome]] = [(seed, first)]
    stopped, missing = "", None
    for extra in range(seed + 1, seed + DRAWS):
        outcome = judge_at(extra)
        if outcome is None:
            missing = extra
            stopped = (
                f"More evidence could not be had at seed {extra} (not enough time left in the grade, or a run this "
                "machine did not finish): the verdict stands on the seeds judged."
            )
            break
        verdicts.append((extra, outcome))
        decided = [o for _, o in verdicts if not _undecided(o)]
        passes = sum(map(_passed, decided))
        if max(passes, len(decided) - passes) * 2 > DRAWS:
            break  # a majority of DRAWS already: two agreeing draws settle it
    decided = [(s, o) for s, o in verdicts if not _undecided(o)]
    why = list(reasons)
    if quantities:
        why.insert(
            0,
            f"close to a threshold ({', '.join(quantities)}: within a factor {NOISE_BAND:.2f} of it, inside the "
            "noise between seeds that the calibration measured)",
        )
    if not decided and stopped and machine_cause is not None and (cause := machine_cause()):
        raise NotGradable(
            f"Your result at seed {seed} was {' and '.join(why)}, so one training run does not decide it, and the "
            f"grader could not make its runs at seed {missing}, which would: {cause}."
        )
    passes = sum(_passed(o) for _, o in decided)
    if not decided:
        passed = False
    elif passes * 2 == len(decided):  # a split (the last draw could not be made): the first seed that decided
        passed = _passed(decided[0][1])
    else:
        passed = passes * 2 > len(decided)
    base = first if _passed(first) == passed else next(o for _, o in verdicts if _passed(o) == passed)
    listed = ", ".join(
        f"seed {s} {'undecided' if _undecided(o) else 'pass' if _passed(o) else 'FAIL'}" for s, o in verdicts
    )
    agreeing = passes if passed else len(decided) - passes
    note = (
        f"Your result at seed {seed} was {' and '.join(why)}, so one training run does not decide it and the "
        "grader judges the runs at further seeds"
    )
    if len(verdicts) > 1:
        if decided:
            of = f"{len(decided)} seeds" + (" that decided" if len(decided) < len(verdicts) else "")
            note += f": {listed}. {'Passed' if passed else 'Failed'} on {agreeing} of {of}."
        else:
            note += f": {listed}. No seed decided it: the run never differed from its control, so it fails."
    else:
        note += "."
    if stopped:
        note += " " + stopped
    if base is not first:
        note += f" The run shown above is seed {next(s for s, o in verdicts if o is base)}'s."
    measurements = {**base.measurements, "seeds": [s for s, _ in verdicts]}
    measurements["verdicts"] = [_passed(o) for _, o in verdicts]
    return replace(base, feedback=f"{base.feedback}\n{note}", measurements=measurements)


def _undecided(outcome: CheckOutcome) -> bool:
    """The draw said nothing either way (its check listed an :data:`UNDECIDED` reason)."""
    return bool(outcome.measurements.get(UNDECIDED))


def _passed(outcome: CheckOutcome) -> bool:
    return outcome.fraction >= 1.0
