"""Scoring the control run (``training.baseline``: it learns) and the two KL runs (``training.forward_kl``,
``training.backward_kl``: they learn and end closer to the reference than the control), pure functions of the
validation histories, so they are tested on synthetic histories (tests/unit/test_training_checks.py).

Separate from :mod:`grader.checks.training`, which makes the checks (it asks the engine for the runs and
turns a close verdict into more seeds), and from the shaped run's scoring
(:mod:`grader.checks.training_shaped`), which judges another question.
"""

from __future__ import annotations

import math

from grader.checks.evidence import NEAR, near
from grader.checks.training_base import (
    _require_baseline,
    _run_failed,
    _sentiment_line,
    _usable,
    control_problem,
    gain,
)
from grader.contract import KL_KINDS, CheckOutcome, NotGradable
from grader.training.runs import RunRecord
from grader.training.settings import Thresholds

KL_METRIC = {"forward": "kl_forward", "backward": "kl_backward"}
KL_NAME = {"forward": "KL(pi || pi_ref)", "backward": "KL(pi_ref || pi)"}


def score_baseline(baseline: RunRecord, th: Thresholds) -> CheckOutcome:
    """The control run learns (the pipeline and the model work); its drift is what the KL checks compare with."""
    if baseline.gated:
        return CheckOutcome(0.0, f"The baseline run was {baseline.error}.")
    problem = control_problem(baseline, th)
    if problem is not None:
        raise NotGradable(
            f"{problem[0].upper()}{problem[1:]}. The checks that compare with it are not gradable either."
        )
    history = baseline.history
    first, last = history[0], history[-1]
    text = (
        "The control run: GRPO on the sentiment reward alone (no KL penalty; none of your code) - "
        f"{_sentiment_line(history)}, needs at least {th.baseline_min_gain:+g}.\n"
        f"It ends at KL(pi || pi_ref) = {last['kl_forward']:.3f} and KL(pi_ref || pi) = {last['kl_backward']:.3f} "
        "nats per token from the reference model"
    )
    if "distinct_2" in last and "repetition" in last:
        text += (
            f"; distinct-2 {first['distinct_2']:.2f} -> {last['distinct_2']:.2f}, repetition "
            f"{first['repetition']:.2f} -> {last['repetition']:.2f}"
        )
    text += ". Your KL-regularised runs are compared with this drift."
    return CheckOutcome(1.0, text)


def score_kl(
    kind: str,
    baseline: RunRecord | None,
    student: RunRecord,
    th: Thresholds,
    kl_coef: float | None = None,
) -> CheckOutcome:
    """``kind`` (forward/backward): the regularised run still learns, and its final KL to the reference (the
    direction the penalty is for) is at most ``kl_max_ratio`` times the baseline's."""
    function = KL_KINDS[kind]
    if not _usable(student):
        return _run_failed(student, f"your {function}", baseline)
    base_history = _require_baseline(baseline, th)
    metric, name = KL_METRIC[kind], KL_NAME[kind]
    history = student.history
    kl, base_kl = float(history[-1][metric]), float(base_history[-1][metric])
    ratio = kl / base_kl if base_kl > 0 else math.inf
    g = gain(history)
    kl_ok, gain_ok = ratio <= th.kl_max_ratio, g >= th.kl_min_gain
    coef = f"kl_coef {kl_coef:g}, " if kl_coef is not None else ""
    lines = [
        f"Sentiment reward minus your {function} ({coef}{len(history) and history[-1]['step']} GRPO steps), "
        "compared with the same run without a penalty:",
        f"  {name} at the end: {kl:.3f} nats per token, {ratio:.2f}x the unregularised baseline's {base_kl:.3f} "
        f"(must be at most {th.kl_max_ratio:g}x) {'ok' if kl_ok else 'FAILED'}",
        f"  {_sentiment_line(history)}, must rise at least {th.kl_min_gain:+g} "
        f"{'ok' if gain_ok else 'FAILED'}",
    ]
    measured = {"kl_ratio": ratio, "gain": g, NEAR: []}
    if near(ratio, th.kl_max_ratio):
        measured[NEAR].append(f"{name} ratio {ratio:.3f} against at most {th.kl_max_ratio:g}")
    if near(g, th.kl_min_gain):
        measured[NEAR].append(f"sentiment gain {g:+.3f} against at least {th.kl_min_gain:+g}")
    if kl_ok and gain_ok:
        lines.append("Your penalty keeps the policy close to the reference while it still learns.")
        return CheckOutcome(1.0, "\n".join(lines), measurements=measured)
    tags = []
    if not kl_ok and ratio > 1.0:
        lines.append(
            "The run drifted FURTHER from the reference than with no penalty at all: your penalty pushes the "
            "policy AWAY from pi_ref. That usually means its sign is flipped (a bonus for drifting), or that a "
            "value estimator is used as the reward penalty - for example r log r (r = pi_ref/pi), an unbiased "
            "estimate of the VALUE of KL(pi_ref || pi) whose policy gradient points the wrong way. What matters "
            "is the penalty's gradient: see the 'direction' check."
        )
        tags.append("training:anti_regularises")
    elif not kl_ok:
        lines.append(
            f"The penalty barely holds the policy back ({ratio:.2f}x the baseline's drift): its policy gradient "
            "is nearly zero or points partly the wrong way. Usually the penalty is zero or constant, the "
            "coefficient is ignored, or a value estimator is used as the reward penalty: k3 = r - 1 - log r "
            "(gradient nearly zero near the reference) or r log r (gradient pointing AWAY from the reference). "
            "See the 'direction' check."
        )
        tags.append("training:weak_regularisation")
    else:
        lines.append(
            "The policy stayed close to the reference but hardly learned: the penalty is far too strong. Usually "
            "a sum over tokens instead of a mean (as many times too strong as there are tokens), the coefficient "
            "applied twice, or a penalty that is large even when pi == pi_ref."
        )
        tags.append("training:over_regularises")
    return CheckOutcome(0.0, "\n".join(lines), tags=tags, measurements=measured)
