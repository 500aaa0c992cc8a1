"""Scoring the shaped run (``training.shaped``, exercise 2's run) against the forward run: it learns, moves the
declared goal's training metric (:mod:`grader.checks.goals`) its way, and stays near the reference model;
with the final validation's sample that shows the verdict's problem beside it. A pure function of the
validation histories (tests/unit/test_shaping_goal_training.py, tests/unit/test_training_checks.py).

Separate from :mod:`grader.checks.training`, which makes the checks, and from the KL runs' scoring
(:mod:`grader.checks.training_kl`): the shaped run is compared with another run, on other quantities, and
picks the sample it shows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from grader.checks.evidence import NEAR, UNDECIDED, near
from grader.checks.goals import GOALS
from grader.checks.goals import TrainingMetric as GoalMetric
from grader.checks.training_base import (
    _number,
    _run_failed,
    _sentiment_line,
    _usable,
    control_problem,
    gain,
    overrun_cause,
)
from grader.contract import FORWARD, CheckOutcome, NotGradable
from grader.training.runs import RunRecord
from grader.training.settings import Thresholds


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
    ``shaped_max_kl_rise`` nats per token above the control's). With the ``baseline`` the feedback also
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
    required = math.isfinite(least)  # -inf: shown, not required on this preset (settings.SHOWN_ONLY)
    goal_ok = move >= least
    # the run must differ from its control: with the goal's metric not required, nothing else would fail a
    # shaping that ranks completions as the score does (identity, a shift)
    same = _same_history(history, base, metric.key)
    ppl_ok = ratio <= th.shaped_max_perplexity_ratio  # False for nan: no text to judge
    kl, ref_kl = float(last["kl_forward"]), float(ref["kl_forward"])
    # a difference, not a ratio: the controls end at KL 0.24-0.33 over the calibration's seeds, and dividing by
    # that spread made word salad and a correct shaping that lengthens the text closer (thresholds.toml)
    kl_rise = kl - ref_kl if math.isfinite(ref_kl) else math.nan
    kl_ok = kl_rise <= th.shaped_max_kl_rise  # False for nan
    kl_coef = (control.config or {}).get("kl_coef")
    coef = f"kl_coef {kl_coef:g}, " if isinstance(kl_coef, (int, float)) else ""
    lines = [
        f"Your shaped_reward with your kl_penalty_forward ({coef}{last['step']} GRPO steps), compared with the same "
        "run on the plain score (the training.forward_kl run: same penalty, same seed):",
        f"  {_sentiment_line(history)}, must rise at least {th.shaped_min_gain:+g} {'ok' if gain_ok else 'FAILED'}",
        f"  your goal ({goal}): {metric.name} {value:.3f}, the plain score's {ref_value:.3f}: "
        + (
            f"must be at least {least:g} {metric.way} {'ok' if goal_ok else 'FAILED'}"
            if required
            else "shown, not required (this preset's graded run is too short to move it beyond its seed-to-seed "
            "noise: your goal is judged by its property check, shaping.goal)"
        ),
        f"  perplexity under the reference model (how natural the text looks to the model you started from) "
        f"{ppl:.1f} against {ref_ppl:.1f}: {ratio:.2f}x, must be at most {th.shaped_max_perplexity_ratio:g}x "
        f"{'ok' if ppl_ok else 'FAILED'}",
        f"  KL(pi || pi_ref) (how far the policy moved from it, nats per token) {kl:.3f} against {ref_kl:.3f}: "
        f"{kl_rise:+.3f}, may rise at most {th.shaped_max_kl_rise:g} {'ok' if kl_ok else 'FAILED'}",
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
        "least_move": least if required else None,  # None: shown, not required
        "moved": goal_ok,
        NEAR: [
            what
            for what, value_, threshold in (
                (f"sentiment gain {g:+.3f} against at least {th.shaped_min_gain:+g}", g, th.shaped_min_gain),
                (
                    f"{metric.name} moved {move:.3f} against at least {least:g}",
                    move,
                    least if required else 0.0,
                ),
                (
                    f"perplexity ratio {ratio:.2f} against at most {th.shaped_max_perplexity_ratio:g}",
                    ratio,
                    th.shaped_max_perplexity_ratio,
                ),
                (
                    f"KL rise {kl_rise:+.3f} against at most {th.shaped_max_kl_rise:g}",
                    kl_rise,
                    th.shaped_max_kl_rise,
                ),
            )  # fmt: skip
            if near(value_, threshold)
        ],
        # Step for step the control: the shaping changed no reward GRPO saw. Where the goal's metric is required
        # that is a clear failure (it did not move); where it is only shown, the run may simply not have met what
        # the shaping pays for (a small model writes a real rhyme on some seeds only: tiny.md), so one seed does
        # not decide. A shaping that never changes a reward on any seed (identity in practice) still fails.
        UNDECIDED: (
            [
                "the same run as its control step for step (what your shaping pays for did not come up in that "
                "run's completions, so it changed no reward GRPO saw)"
            ]
            if same and not required
            else []
        ),
    }
    if gain_ok and goal_ok and ppl_ok and kl_ok and not same:
        lines.append(f"Your shaping keeps the text positive and natural and {metric.done}.")
        return CheckOutcome(1.0, "\n".join(lines), tags=tags, measurements=measured)
    if same:
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
