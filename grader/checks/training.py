"""Training checks: short real GRPO runs with the submission's functions, scored against calibrated thresholds.

Four runs per grade, made once and shared by the four checks (the training engine, :mod:`grader.training`, makes them):

* ``baseline``: sentiment reward, no KL penalty. Uses none of the submission's code: it is the control (it must
  learn, and its drift from the reference is what the KL runs are compared with), worth 0 points;
* ``forward`` / ``backward``: sentiment reward minus the submission's KL penalty at the grading coefficient. The
  run must still learn (a smaller gain) and end much closer to the reference than the baseline, measured by the
  exact KL the penalty is meant to control: KL(pi || pi_ref) for forward, KL(pi_ref || pi) for backward;
* ``shaped``: the submission's ``shaped_reward`` with its ``kl_penalty_forward`` (exercise 2's run), compared with
  the ``forward`` run, which differs from it only in the shaping: it must still learn (a sentiment gain), move
  the training metric of the goal the submission declares (grader.checks.goals: repetition lower, completions
  longer or shorter, sentiment further from neutral, more rhymes) by a calibrated amount against it (returning
  the score unchanged reproduces the forward run exactly and fails every goal), and stay near the reference
  model: text that reads as naturally to it (perplexity under pi_ref at most a calibrated factor above the
  forward run's) and a policy the penalty still holds (KL(pi || pi_ref) at most a calibrated factor above the
  forward run's). A shaping that pays for gibberish fails these.

Before any run starts, each function the run needs is called once on a small batch through the grader's sandbox
(the pipeline's own pre-flight does the same inside the run): a stub or a broken function costs its run, with the
reason, in milliseconds, and when no function of the submission can be trained with, nothing is run at all.
The scoring functions (:func:`score_baseline`, :func:`score_kl`, :func:`score_shaped`) are pure functions of
the validation histories, so they are tested on synthetic histories.

Not gradable (:class:`~grader.grading.results.NotGradable`: no points lost, left out of the maximum) is what a
check is when the machine, not the submission, kept it from being judged:

* the control run (the baseline: none of the submission's code) failed, or did not learn: the KL checks compare
  with it, and a control that does not learn means this machine or preset cannot train with these thresholds,
  so the shaped check's verdict means nothing either (a control that failed for another reason, e.g. its time,
  leaves the shaped check gradable: that one compares with the forward run);
* a run failed in the grader rather than in the submission's code (``RunRecord.internal``: a training process
  that died, ran out of memory, lost its GPU, a pipeline error);
* a run missed its time budget while the machine was as slow without the submission's code
  (:func:`overrun_cause`): the control run of the grade missed it too, or the control's time, scaled to the work
  the run had to do within that budget, reached :data:`SLOW_MACHINE_SHARE` of it, or the run's own time outside
  the submission's calls did. A run that missed its budget because the submission's functions were slow is the
  submission's: 0, with the seconds they took.

A check whose rubric gate is closed (its function failed a defining check) scores 0 all the same
(:func:`grader.grading.runner.apply_gates`): a wrong penalty on a slow machine is still a wrong penalty.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

from grader.checks.evidence import NEAR, decide, near
from grader.checks.goals import GOALS
from grader.checks.goals import TrainingMetric as GoalMetric
from grader.checks.misconceptions import diagnose_kl
from grader.contract import (
    FORWARD,
    KL_KINDS,
    SHAPING,
    CheckContext,
    CheckFunction,
    CheckOutcome,
    NotGradable,
    Submission,
    TrainingContext,
)
from grader.training.engine import RunSet, TrainingInternalError
from grader.training.runs import COST, RunRecord
from grader.training.settings import Thresholds, TrainingSettings

KL_METRIC = {"forward": "kl_forward", "backward": "kl_backward"}
KL_NAME = {"forward": "KL(pi || pi_ref)", "backward": "KL(pi_ref || pi)"}


#: A run that missed its time budget is the machine's fault when the work it had to do within that budget, done
#: without the submission's code, took at least this share of the budget (see :func:`overrun_cause`).
SLOW_MACHINE_SHARE = 0.7


# ---------------------------------------------------------------------------------------------------------------
# Scoring (pure functions of the histories)
# ---------------------------------------------------------------------------------------------------------------


def gain(history: Sequence[dict[str, Any]]) -> float:
    """Final minus step-0 validation sentiment."""
    return float(history[-1]["sentiment_mean"]) - float(history[0]["sentiment_mean"])


def _sentiment_line(history: Sequence[dict[str, Any]]) -> str:
    first, last = history[0], history[-1]
    return (
        f"validation sentiment {first['sentiment_mean']:.3f} at step 0 -> {last['sentiment_mean']:.3f} at "
        f"step {last['step']} ({gain(history):+.3f})"
    )


def _usable(record: RunRecord | None) -> bool:
    return record is not None and record.usable


def control_problem(baseline: RunRecord | None, th: Thresholds) -> str | None:
    """Why the control run (the baseline: GRPO on the sentiment reward, none of the submission's code) cannot be
    compared with, or None when it finished and learned at least ``th.baseline_min_gain``."""
    if baseline is None or not baseline.usable:
        error = (baseline.error if baseline else None) or "it produced no validation history"
        return f"the control run (GRPO without a penalty, none of your code) failed on this machine: {error}"
    if gain(baseline.history) < th.baseline_min_gain:
        return (
            f"the control run (GRPO without a penalty, none of your code) did not learn on this machine "
            f"({_sentiment_line(baseline.history)}, needs at least {th.baseline_min_gain:+g}): this machine or "
            "preset does not train as the thresholds were calibrated for (instructors: check the models, or "
            "recalibrate with python -m grader.tools calibrate)"
        )
    return None


def _require_baseline(baseline: RunRecord | None, th: Thresholds) -> list[dict[str, Any]]:
    problem = control_problem(baseline, th)
    if problem is not None:
        raise NotGradable(f"This run is judged against the control run, and {problem}.")
    assert baseline is not None
    return baseline.history


def overrun_cause(record: RunRecord, baseline: RunRecord | None) -> str | None:
    """Why ``record``, a run that missed its time budget (``timed_out``), is the machine's fault, not the
    submission's; None when nothing shows the machine was as slow (then the submission's functions took the
    time). The evidence, any of:

    * the control run (none of the submission's code) also missed its budget;
    * the control's time, scaled by the run costs (``runs.COST``) to the work the run's training process had to
      do within the budget (``record.budget_cost``: this run and those before it in the same process), reached
      :data:`SLOW_MACHINE_SHARE` of the budget (a control made before this grade, ``made_earlier``, says nothing
      about the machine now and is not used);
    * the run's own time outside the submission's calls (``timing``: ``wall_seconds`` minus
      ``submission_seconds``) reached that share of it.
    """
    budget = record.budget_s
    if baseline is not None and baseline is not record and baseline.timed_out:
        return (
            "the control run, which runs none of your code, did not finish within its time budget either: the "
            "machine was too slow or too busy"
        )
    if not budget or budget <= 0:
        return None
    if baseline is not None and baseline.usable and baseline.wall_time_s and not baseline.made_earlier:
        per_unit = float(baseline.wall_time_s) / COST["baseline"]
        needed = per_unit * (record.budget_cost or COST.get(record.run, 1.0))
        if needed >= SLOW_MACHINE_SHARE * budget:
            return (
                f"the control run, which runs none of your code, took {baseline.wall_time_s:.0f} s on this "
                f"machine: without your code the work this run had to finish within its {budget:g} s would "
                f"have taken about {needed:.0f} s, so the machine was too slow or too busy"
            )
    timing = record.timing or {}
    wall, mine = timing.get("wall_seconds"), timing.get("submission_seconds")
    if _number(wall) and _number(mine) and wall - mine >= SLOW_MACHINE_SHARE * budget:
        return (
            f"of the {wall:.0f} s it ran, your functions took {mine:.1f} s and the training itself "
            f"{wall - mine:.0f} s: the machine was too slow or too busy"
        )
    return None


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _run_failed(record: RunRecord, label: str, baseline: RunRecord | None = None) -> CheckOutcome:
    """0 for a run that failed because of the submission; :class:`NotGradable` when the grader or the machine
    failed it (an internal failure, a missed budget that :func:`overrun_cause` puts on the machine)."""
    if record.internal:
        raise NotGradable(
            f"The run with {label} failed in the grader, not in your code: {record.error or 'no record'}"
        )
    error = record.error or "it produced no validation history"
    if record.timed_out:
        cause = overrun_cause(record, baseline)
        if cause is not None:
            raise NotGradable(f"The run with {label} missed its time budget ({error}), and {cause}.")
        mine = (record.timing or {}).get("submission_seconds")
        if _number(mine):
            error += f" (your functions took {mine:.1f} s of it)"
        error += (
            "; the training itself ran at this machine's usual speed (the control run, none of your code, "
            "finished well within the budget), so your functions took the time: make them faster"
        )
    return CheckOutcome(
        0.0,
        f"The run with {label} could not be scored: {error}\n"
        "0 for this check; the other training runs were made and scored independently.",
        tags=["training:run_failed"],
    )


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


def _sample_line(record: RunRecord, label: str, limit: int = 110, index: int = 0) -> str | None:
    """Sample ``index`` of the final validation, for people to read (None when the run kept none)."""
    samples = record.final.get("samples") or []
    if not samples:
        return None
    sample = samples[min(index, len(samples) - 1)]
    text = " ".join(str(sample.get("completion", "")).split())
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"  {label}: {str(sample.get('prompt', ''))!r} -> {text!r}"


def _telling_sample(shaped: RunRecord, control: RunRecord, problem: str | None) -> tuple[int, str]:
    """Which of the final validation's samples to print beside the verdict, and how to introduce it: the one that
    shows the verdict's ``problem`` ("repetition": the completion of the shaped run that repeats itself most;
    "unnatural": the one with the most words the tiny model's pre-training corpus never had, else the most
    different words), so the sample and the diagnosis agree; the first prompt when nothing failed. Both runs
    validate on the same prompts in the same order, so the control's sample at that index answers the same prompt."""
    from exercise.sentiment import words

    first = (0, "the first validation prompt")
    texts = [str(s.get("completion", "")) for s in (shaped.final.get("samples") or [])]
    if problem is None or not texts or not control.final.get("samples"):
        return first
    if problem == "repetition":
        rates = [1 - len(set(ws)) / len(ws) if ws else 0.0 for ws in map(words, texts)]
        what = "the validation prompt where your completion repeats itself most"
    else:
        vocabulary = _corpus_words(shaped)
        if vocabulary is not None:
            rates = [
                sum(w not in vocabulary for w in ws) / len(ws) if ws else 0.0 for ws in map(words, texts)
            ]
            what = "the validation prompt where your completion has the most made-up words (sub-word soup)"
        else:
            rates = [float(len(set(ws))) for ws in map(words, texts)]
            what = "the validation prompt where your completion uses the most different words"
    best = max(range(len(rates)), key=lambda i: (rates[i], -i))
    return (best, what) if rates[best] > 0 else first


def _corpus_words(record: RunRecord) -> frozenset[str] | None:
    """The words of the run's model's pre-training corpus (the tiny model ships them; GPT-2 does not)."""
    from exercise.presets import tiny_model_path
    from exercise.tiny.vocabulary import load_corpus_words

    config = record.config or {}
    tiny = (record.preset or config.get("preset")) == "tiny"
    model = config.get("model_name") or (tiny_model_path() if tiny else None)
    return load_corpus_words(model) if model else None


def _same_history(a: Sequence[dict[str, Any]], b: Sequence[dict[str, Any]], *also: str) -> bool:
    keys = ("step", "sentiment_mean", "repetition", "ref_perplexity", "kl_forward", *also)
    return len(a) == len(b) and all(x.get(k) == y.get(k) for x, y in zip(a, b, strict=True) for k in keys)


def score_shaped(
    control: RunRecord | None,
    shaped: RunRecord,
    th: Thresholds,
    baseline: RunRecord | None = None,
    goal: str = "repetition",
) -> CheckOutcome:
    """The shaped run (the submission's shaping and forward penalty) against its control, the forward run (the
    plain score and the same penalty, seed and coefficient): it learns (sentiment gain >= ``shaped_min_gain``),
    moves the declared ``goal``'s training metric (:class:`grader.checks.goals.TrainingMetric`) its way by at
    least the goal's threshold (repetition falls, mean words per completion rise or fall, the scores' distance
    from neutral widens, the share of rhyming completions rises), and stays near the reference (final perplexity
    under it at most ``shaped_max_perplexity_ratio`` x the control's, final KL(pi || pi_ref) at most
    ``shaped_max_kl_ratio`` x the control's). With the ``baseline`` the feedback also
    says when the forward penalty did not regularise the control (then the comparison is not the one exercise 2
    is about)."""
    if not _usable(shaped):
        if shaped.component == FORWARD:
            return _run_failed(shaped, "your shaped_reward and your kl_penalty_forward", baseline)
        return _run_failed(shaped, "your shaped_reward", baseline)
    if baseline is not None and baseline.usable and gain(baseline.history) < th.baseline_min_gain:
        raise NotGradable(f"Nothing trained on this machine can be judged: {control_problem(baseline, th)}.")
    if control is None or not control.usable:
        error = (control.error if control else None) or "it produced no validation history"
        if control is not None and control.internal:
            raise NotGradable(
                f"This run is judged against the forward run (your kl_penalty_forward on the plain score), and "
                f"that run failed in the grader, not in your code: {error}"
            )
        if control is not None and control.timed_out:
            cause = overrun_cause(control, baseline)
            if cause is not None:
                raise NotGradable(
                    "This run is judged against the forward run (your kl_penalty_forward on the plain score), "
                    f"which missed its time budget ({error}), and {cause}."
                )
        return CheckOutcome(
            0.0,
            "Your shaped run is judged against the same run with the plain score (your kl_penalty_forward, same "
            f"seed and coefficient: the training.forward_kl run), and that run could not be scored: {error}\n"
            "Fix kl_penalty_forward first (see the forward KL checks); 0 for this check until then.",
            tags=["training:run_failed"],
        )
    history, base = shaped.history, control.history
    last, ref = history[-1], base[-1]
    g = gain(history)
    if goal not in GOALS:
        raise ValueError(f"score_shaped: unknown shaping goal {goal!r} (goals: {', '.join(GOALS)})")
    metric = GOALS[goal].metric
    value, ref_value = _goal_value(last, metric, "shaped"), _goal_value(ref, metric, "forward")
    move = metric.direction * (value - ref_value)  # > 0: the goal's way
    least = float(getattr(th, metric.threshold))
    ppl, ref_ppl = float(last["ref_perplexity"]), float(ref["ref_perplexity"])
    ratio = ppl / ref_ppl if math.isfinite(ppl) and math.isfinite(ref_ppl) and ref_ppl > 0 else math.nan
    gain_ok = g >= th.shaped_min_gain
    goal_ok = move >= least
    ppl_ok = ratio <= th.shaped_max_perplexity_ratio  # False for nan: no text to judge
    kl, ref_kl = float(last["kl_forward"]), float(ref["kl_forward"])
    kl_ratio = kl / ref_kl if ref_kl > 0 else (1.0 if kl <= 0 else math.inf)
    kl_ok = kl_ratio <= th.shaped_max_kl_ratio
    kl_coef = (control.config or {}).get("kl_coef")
    coef = f"kl_coef {kl_coef:g}, " if isinstance(kl_coef, (int, float)) else ""
    lines = [
        f"Your shaped_reward with your kl_penalty_forward ({coef}{last['step']} GRPO steps), compared with the same "
        "run on the plain score (the training.forward_kl run: same penalty, same seed):",
        f"  {_sentiment_line(history)}, must rise at least {th.shaped_min_gain:+g} {'ok' if gain_ok else 'FAILED'}",
        f"  your goal ({goal}): {metric.name} {value:.3f}, the plain score's {ref_value:.3f}: must be at least "
        f"{least:g} {metric.way} {'ok' if goal_ok else 'FAILED'}",
        f"  perplexity under the reference model (how natural the text looks to the model you started from) "
        f"{ppl:.1f} against {ref_ppl:.1f}: {ratio:.2f}x, must be at most {th.shaped_max_perplexity_ratio:g}x "
        f"{'ok' if ppl_ok else 'FAILED'}",
        f"  KL(pi || pi_ref) (how far the policy moved from it) {kl:.3f} against {ref_kl:.3f}: {kl_ratio:.2f}x, "
        f"must be at most {th.shaped_max_kl_ratio:g}x {'ok' if kl_ok else 'FAILED'}",
    ]
    if "distinct_2" in last and "distinct_2" in ref:
        lines.append(
            f"  (distinct-2 across completions {last['distinct_2']:.2f} against {ref['distinct_2']:.2f})"
        )
    if goal != "repetition" and "repetition" in last and "repetition" in ref:
        lines.append(f"  (repetition {last['repetition']:.3f} against {ref['repetition']:.3f})")
    problem = "unnatural" if not (ppl_ok and kl_ok) else None
    if problem is None and not goal_ok and goal == "repetition":
        problem = "repetition"  # the other goals' first sample shows their metric as well as any
    index, which = _telling_sample(shaped, control, problem)
    samples = [
        _sample_line(shaped, "yours      ", index=index),
        _sample_line(control, "plain score", index=index),
    ]
    if all(samples):
        lines += [f"At the end, {which}:", *samples]  # type: ignore[list-item]
    tags = []
    if baseline is not None and baseline.usable:
        base_kl = float(baseline.final["kl_forward"])
        if base_kl > 0 and float(ref["kl_forward"]) / base_kl > th.kl_max_ratio:
            lines.append(
                f"Note: with your kl_penalty_forward the plain-score run drifted to KL(pi || pi_ref) = "
                f"{ref['kl_forward']:.3f}, {ref['kl_forward'] / base_kl:.2f}x the unregularised baseline's: your "
                "forward penalty does not hold the policy back (see training.forward_kl), so both runs compared "
                "here are close to unregularised. Fix the penalty first; this verdict may change with it."
            )
            tags.append("training:control_unregularised")
    measured = {
        "goal": goal,
        "metric": metric.key,
        "value": value,
        "control": ref_value,
        "move": move,
        "least_move": least,
        "moved": goal_ok,
        NEAR: [
            what
            for what, value_, threshold in (
                (f"sentiment gain {g:+.3f} against at least {th.shaped_min_gain:+g}", g, th.shaped_min_gain),
                (f"{metric.name} moved {move:.3f} against at least {least:g}", move, least),
                (
                    f"perplexity ratio {ratio:.2f} against at most {th.shaped_max_perplexity_ratio:g}",
                    ratio,
                    th.shaped_max_perplexity_ratio,
                ),
                (
                    f"KL ratio {kl_ratio:.2f} against at most {th.shaped_max_kl_ratio:g}",
                    kl_ratio,
                    th.shaped_max_kl_ratio,
                ),
            )  # fmt: skip
            if near(value_, threshold)
        ],
    }
    if gain_ok and goal_ok and ppl_ok and kl_ok:
        lines.append(f"Your shaping keeps the text positive and natural and {metric.done}.")
        return CheckOutcome(1.0, "\n".join(lines), tags=tags, measurements=measured)
    if _same_history(history, base, metric.key):
        lines.append(
            "Your shaped run is the plain-score run step for step: GRPO sees no difference between your reward "
            "and the score. Returning the score unchanged (or shifted by a constant) changes nothing, because "
            "GRPO compares completions within a group. The shaping has to rank completions differently "
            "from the score, e.g. by what the text itself looks like."
        )
        tags.append("training:shaping_changes_nothing")
    elif not gain_ok:
        if g < 0:
            lines.append(
                "Sentiment fell while training on your shaped reward: the policy found something your shaping "
                "pays for more than positive sentiment. Keep the reward increasing in the score for every "
                "completion, and keep any bonus or penalty from outweighing the score itself."
            )
        else:
            lines.append(
                "The policy hardly became more positive: your reward depends too little on the score (a constant, "
                "or a bonus or penalty that outweighs it), so there is little left for GRPO to learn from."
            )
        tags.append("training:shaped_no_learning")
    if not (ppl_ok and kl_ok):
        what = (
            "The text drifted towards what the reference model finds unnatural (sub-word soup, word salad)"
            if not ppl_ok
            else "The policy moved much further from the reference than the plain-score run with the same penalty"
        )
        lines.append(
            f"{what}: "
            + (
                metric.drift  # the goal's own reason (an amplifying shaping rescales the penalty)
                or "your shaping pays for something (many different words, length ...) more than the KL "
                "penalty holds it back. Keep the reward on the scale of the score (a bonus many times larger than "
                "the score drowns the penalty), and do not pay for variety that does not read as text."
            )
        )
        tags.append("training:shaped_gibberish" if not ppl_ok else "training:shaped_overpowers_penalty")
    if not goal_ok and "training:shaping_changes_nothing" not in tags:
        lines.append(metric.hint)
        tags.append("training:shaping_no_effect")
    return CheckOutcome(0.0, "\n".join(lines), tags=tags, measurements=measured)


def _goal_value(entry: dict[str, Any], metric: GoalMetric, run: str) -> float:
    """The goal's metric in a final validation; :class:`NotGradable` when the pipeline did not record it (a
    training package older than the grader: the grader's problem, not the submission's)."""
    value = entry.get(metric.key)
    if not _number(value):
        raise NotGradable(
            f"The {run} run's validation did not record {metric.key!r} ({metric.name}), which the declared goal "
            "is judged by: the training pipeline (exercise/validation.py) is older than the grader. "
            "Instructors: update both together."
        )
    return float(value)


# ---------------------------------------------------------------------------------------------------------------
# The checks
# ---------------------------------------------------------------------------------------------------------------


def _settings(runs: RunSet) -> TrainingSettings:
    if runs.settings is None:
        raise TrainingInternalError("no training run reported its preset")
    return runs.settings


def run_set(submission: Submission, context: CheckContext) -> RunSet:
    """The grade's runs of this submission at the context's seed, from the grade's training engine."""
    if not isinstance(context, TrainingContext) or context.training is None:
        raise TrainingInternalError(
            "a training check needs a TrainingContext with the grade's training engine"
        )
    return context.training.run_set(submission, context.seed, context.budget_s)


def _declared_goal(context: CheckContext) -> str:
    """The goal the shaped check judges and the curves show: the declared one; "repetition" when the declaration
    is unusable (the shaping checks' feedback says so)."""
    return getattr(context, "shaping_goal", None) or "repetition"


def _finish(outcome: CheckOutcome, runs: RunSet, context: CheckContext) -> CheckOutcome:
    notes = []
    if runs.settings is not None and not runs.settings.calibrated:
        notes.append(f"Note: the {runs.settings.preset} thresholds are {runs.settings.note}.")
    engine = getattr(context, "training", None)
    stem = getattr(context, "artifact_stem", "")
    outcome.artifacts = engine.plot(runs, stem, GOALS.get(_declared_goal(context))) if engine else []
    if outcome.artifacts:
        notes.append(f"Curves of all training runs: {outcome.artifacts[0]}")
    if notes:
        outcome.feedback = "\n".join([outcome.feedback, *notes])
    return outcome


def check_baseline(submission: Submission, context: CheckContext) -> CheckOutcome:
    runs = run_set(submission, context)
    baseline = runs.records["baseline"]
    if baseline.gated:
        return _finish(score_baseline(baseline, Thresholds(0, 0, 0, 0, 0, 0, 0)), runs, context)
    if not baseline.usable:  # whether or not any run reported its preset
        raise NotGradable(f"{control_problem(baseline, Thresholds(0, 0, 0, 0, 0, 0, 0))}.")
    outcome = score_baseline(baseline, _settings(runs).thresholds)
    if runs.baseline_note:
        outcome.feedback += "\n" + runs.baseline_note
    return _finish(outcome, runs, context)


def _more_evidence(
    submission: Submission,
    context: CheckContext,
    judged: tuple[str, ...],
    first: RunSet,
    score: Callable[[RunSet], CheckOutcome],
) -> Callable[[int], CheckOutcome | None]:
    """For :func:`grader.checks.evidence.decide`: the check's verdict on its runs (``judged``) made at another
    seed, or None when the check's time left is not enough for them (judged by what the grade's own runs took)
    or a run did not finish there: the machine's doing, never evidence against the submission."""
    started = time.monotonic()

    def judge_at(seed: int) -> CheckOutcome | None:
        assert isinstance(context, TrainingContext) and context.training is not None  # run_set checked it
        left = context.budget_s - (time.monotonic() - started)
        if left < 1.5 * max(first.wall_time_s, 1.0):
            return None
        runs = context.training.run_set(submission, seed, left, only=frozenset(judged))
        if not all(_usable(runs.records.get(name)) for name in judged) or runs.settings is None:
            return None
        try:
            return score(runs)
        except NotGradable:
            return None

    return judge_at


def _check_kl(kind: str):
    def check(submission: Submission, context: CheckContext) -> CheckOutcome:
        runs = run_set(submission, context)
        student = runs.records[kind]
        if student.gated or not student.usable:  # judged without the settings: no run may have reported them
            outcome = _run_failed(student, f"your {KL_KINDS[kind]}", runs.records.get("baseline"))
            return _finish(outcome, runs, context)

        def score(made: RunSet) -> CheckOutcome:
            settings = _settings(made)
            return score_kl(
                kind, made.records.get("baseline"), made.records[kind], settings.thresholds,
                settings.runs.kl_coef(kind),
            )  # fmt: skip

        outcome = decide(
            score(runs),
            context.seed,
            _more_evidence(submission, context, ("baseline", kind), runs, score),
        )
        if outcome.fraction < 1 and student.usable:
            diagnosis = diagnose_kl(submission, KL_KINDS[kind])
            if diagnosis is not None:
                outcome.misconception = diagnosis.id
                outcome.feedback += "\n" + diagnosis.render(KL_KINDS[kind])
        return _finish(outcome, runs, context)

    check.__name__ = f"check_{kind}_kl"
    return check


def check_shaped(submission: Submission, context: CheckContext) -> CheckOutcome:
    runs = run_set(submission, context)
    shaped = runs.records["shaped"]
    if shaped.gated or not shaped.usable:
        label = f"your {SHAPING} and your {FORWARD}" if shaped.component == FORWARD else f"your {SHAPING}"
        outcome = _run_failed(shaped, label, runs.records.get("baseline"))
        return _finish(outcome, runs, context)

    def score(made: RunSet) -> CheckOutcome:
        return score_shaped(
            made.records.get("forward"),
            made.records["shaped"],
            _settings(made).thresholds,
            made.records.get("baseline"),
            goal=_declared_goal(context),
        )

    outcome = decide(
        score(runs), context.seed, _more_evidence(submission, context, ("forward", "shaped"), runs, score)
    )
    return _finish(outcome, runs, context)


def judging(check: CheckFunction, *runs: str) -> CheckFunction:
    """Mark ``check`` with the training runs it judges (``runs_judged``): a grade's engine makes only the runs of
    its checks (``--only training.shaped`` makes two runs, not four)."""
    check.runs_judged = frozenset(runs)  # type: ignore[attr-defined]
    return check


def checks() -> dict[str, CheckFunction]:
    return {
        "training.baseline": judging(check_baseline, "baseline"),
        "training.forward_kl": judging(_check_kl("forward"), "baseline", "forward"),
        "training.backward_kl": judging(_check_kl("backward"), "baseline", "backward"),
        "training.shaped": judging(check_shaped, "forward", "shaped"),
    }
