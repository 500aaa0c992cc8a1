"""Training checks: short real GRPO runs with the submission's functions, scored against calibrated thresholds.

Four runs per grade, made once and shared by the four checks (see :mod:`grader.training` for how they run):

* ``baseline``: sentiment reward, no KL penalty. Uses none of the submission's code: it is the control (it must
  learn, and its drift from the reference is what the KL runs are compared with), worth 0 points;
* ``forward`` / ``backward``: sentiment reward minus the submission's KL penalty at the grading coefficient. The
  run must still learn (a smaller gain) and end much closer to the reference than the baseline, measured by the
  exact KL the penalty is meant to control: KL(pi || pi_ref) for forward, KL(pi_ref || pi) for backward;
* ``shaped``: the submission's ``shaped_reward``, no KL penalty: finite rewards all along and sentiment that does
  not fall.

Before any run starts, each function the run needs is called once on a small batch through the grader's sandbox
(the pipeline's own pre-flight does the same inside the run): a stub or a broken function costs its run, with the
reason, in milliseconds, and when no function of the submission can be trained with, nothing is run at all.
The scoring functions (:func:`score_baseline`, :func:`score_kl`, :func:`score_shaped`) are pure functions of
the validation histories, so they are tested on synthetic histories.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader import training as T
from grader.checks.harness import CallFailed
from grader.core import CheckContext, CheckFunction, CheckOutcome, Submission, TrainingContext
from grader.misconceptions import diagnose_kl

KL_METRIC = {"forward": "kl_forward", "backward": "kl_backward"}
KL_NAME = {"forward": "KL(pi || pi_ref)", "backward": "KL(pi_ref || pi)"}
FUNCTION = {"forward": "kl_penalty_forward", "backward": "kl_penalty_backward"}


class TrainingInternalError(RuntimeError):
    """The training runs could not be judged for a reason that is not the submission's (raised: the runner
    reports it as an internal grader error)."""


# ---------------------------------------------------------------------------------------------------------------
# The shared runs
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class RunSet:
    """The graded runs of one submission at one seed, by run name (``grader.training.RUNS``)."""

    records: dict[str, dict[str, Any]]
    settings: T.TrainingSettings | None
    seed: int
    wall_time_s: float = 0.0
    plots: dict[str, str] = field(default_factory=dict)  # artifact stem -> PNG written for it


#: (submission digest, seed, preset, settings digest) -> its runs: the four checks of a grade share them.
_CACHE: dict[tuple[str, int, str, str], RunSet] = {}

# What the gate calls each function with (the pipeline's pre-flight uses a batch of the same shape).
_GATE_KL = ([[-2.0, -0.5], [-1.0]], [[-2.5, -0.25], [-1.0]], 0.1)
_GATE_SHAPING = ([0.25, 0.75], [" was fine.", " was a wonderful, moving film."], ["The movie", "Overall, it"])


def _gate(submission: Submission, function: str) -> str | None:
    """Why ``function`` cannot be trained with (its one call on a small batch fails), or None."""
    args = _GATE_SHAPING if function == "shaped_reward" else _GATE_KL
    outcome = submission.call(function, *args)
    if not outcome.ok or outcome.value is None:
        return CallFailed(function, outcome).describe()
    if len(outcome.value) != 2:
        return (
            f"{function} returned {len(outcome.value)} values for 2 completions (one per completion expected)"
        )
    if not all(math.isfinite(v) for v in outcome.value):
        return f"{function} returned a non-finite value ({outcome.value}) for an ordinary batch"
    return None


def run_set(submission: Submission, context: CheckContext) -> RunSet:
    """The four graded runs of this submission and seed: made on first use, then taken from the cache."""
    if not isinstance(context, TrainingContext) or not context.submission_path:
        raise TrainingInternalError("a training check needs a TrainingContext with the submission's path")
    settings_digest = T.file_digest(T.SETTINGS_PATH)
    key = (T.file_digest(context.submission_path), context.seed, context.training_preset, settings_digest)
    cached = _CACHE.get(key)
    if cached is not None:
        return cached

    started = _now()
    records: dict[str, dict[str, Any]] = {}
    jobs = []
    for name, spec in T.RUNS.items():
        if spec.function is None:
            continue
        reason = _gate(submission, spec.function)
        if reason is None:
            jobs.append(T.Job(name, name, context.submission_path, context.seed))
        else:
            records[name] = {
                "run": name,
                "ok": False,
                "error": reason,
                "component": spec.function,
                "internal": False,
                "history": [],
                "gated": True,
            }
    if jobs:  # the control run is only worth its time when there is something to compare with it
        jobs.insert(0, T.Job("baseline", "baseline", context.submission_path, context.seed))
        work = Path(context.work_dir or ".") / f"training-seed{context.seed}"
        records.update(
            T.execute(
                jobs,
                work_dir=work,
                timeout_s=context.budget_s,
                preset=context.training_preset,
                lanes=context.training_lanes,
                call_timeout_s=context.call_timeout_s,
                hidden_paths=context.hidden_paths,
            )
        )
    else:
        records["baseline"] = {
            "run": "baseline",
            "ok": False,
            "internal": False,
            "history": [],
            "gated": True,
            "error": "not run: none of your functions could be trained with (see the other "
            "training checks), so there is nothing to compare it with",
        }
    presets = {r["preset"] for r in records.values() if r.get("preset")}
    if len(presets) > 1:
        raise TrainingInternalError(f"the training processes disagreed on the preset: {sorted(presets)}")
    settings = T.load_settings(presets.pop()) if presets else None
    result = RunSet(records, settings, context.seed, _now() - started)
    _CACHE[key] = result
    return result


def _now() -> float:
    import time

    return time.monotonic()


def _artifacts(runs: RunSet, context: CheckContext, submission_name: str) -> list[str]:
    """The curves PNG next to the results (``<results stem>_training.png``), drawn once per grade."""
    stem = getattr(context, "artifact_stem", "")
    if not stem or not any(r.get("history") for r in runs.records.values()):
        return []
    if stem not in runs.plots:
        path = Path(f"{stem}_training.png")
        preset = runs.settings.preset if runs.settings else "?"
        try:
            T.plot_runs(
                {name: runs.records[name] for name in T.RUNS if name in runs.records},
                path,
                title=f"Training checks for {submission_name}: preset {preset}, seed {runs.seed}",
                thresholds=runs.settings.thresholds if runs.settings else None,
            )
            runs.plots[stem] = str(path)
        except Exception:  # noqa: BLE001 - a picture is a convenience: never a reason to fail a check
            runs.plots[stem] = ""
    return [runs.plots[stem]] if runs.plots[stem] else []


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


def _usable(record: dict[str, Any] | None) -> bool:
    history = (record or {}).get("history") or []
    return bool(record and record.get("ok") and len(history) >= 2)


def _require_baseline(baseline: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not _usable(baseline):
        error = (baseline or {}).get("error") or "no validation history"
        raise TrainingInternalError(f"the baseline run (none of your code) failed: {error}")
    return baseline["history"]  # type: ignore[index]


def _run_failed(record: dict[str, Any], label: str) -> CheckOutcome:
    if record.get("internal"):
        raise TrainingInternalError(f"the {label} run failed in the grader: {record.get('error')}")
    error = record.get("error") or "it produced no validation history"
    return CheckOutcome(
        0.0,
        f"The run with {label} could not be scored: {error}\n"
        "0 for this check; the other training runs were made and scored independently.",
        tags=["training:run_failed"],
    )


def score_baseline(baseline: dict[str, Any], th: T.Thresholds) -> CheckOutcome:
    """The control run learns (the pipeline and the model work); its drift is what the KL checks compare with."""
    if baseline.get("gated"):
        return CheckOutcome(0.0, f"The baseline run was {baseline['error']}.")
    history = _require_baseline(baseline)
    g = gain(history)
    first, last = history[0], history[-1]
    text = (
        "The control run: GRPO on the sentiment reward alone (no KL penalty; none of your code) - "
        f"{_sentiment_line(history)}, needs at least {th.baseline_min_gain:+.2f}.\n"
        f"It ends at KL(pi || pi_ref) = {last['kl_forward']:.3f} and KL(pi_ref || pi) = {last['kl_backward']:.3f} "
        "nats per token from the reference model"
    )
    if "distinct_2" in last and "repetition" in last:
        text += (
            f"; distinct-2 {first['distinct_2']:.2f} -> {last['distinct_2']:.2f}, repetition "
            f"{first['repetition']:.2f} -> {last['repetition']:.2f}"
        )
    text += ". Your KL-regularised runs are compared with this drift."
    if g < th.baseline_min_gain:
        raise TrainingInternalError(
            f"the baseline run did not learn ({_sentiment_line(history)}, needs {th.baseline_min_gain:+.2f}): "
            "the thresholds do not fit this machine or preset; recalibrate with python -m grader.calibrate"
        )
    return CheckOutcome(1.0, text)


def score_kl(
    kind: str,
    baseline: dict[str, Any],
    student: dict[str, Any],
    th: T.Thresholds,
    kl_coef: float | None = None,
) -> CheckOutcome:
    """``kind`` (forward/backward): the regularised run still learns, and its final KL to the reference (the
    direction the penalty is for) is at most ``kl_max_ratio`` times the baseline's."""
    function = FUNCTION[kind]
    base_history = _require_baseline(baseline)
    if not _usable(student):
        return _run_failed(student, f"your {function}")
    metric, name = KL_METRIC[kind], KL_NAME[kind]
    history = student["history"]
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
        f"  {_sentiment_line(history)}, must rise at least {th.kl_min_gain:+.2f} "
        f"{'ok' if gain_ok else 'FAILED'}",
    ]
    if kl_ok and gain_ok:
        lines.append("Your penalty keeps the policy close to the reference while it still learns.")
        return CheckOutcome(1.0, "\n".join(lines))
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
    return CheckOutcome(0.0, "\n".join(lines), tags=tags)


def score_shaped(baseline: dict[str, Any] | None, shaped: dict[str, Any], th: T.Thresholds) -> CheckOutcome:
    """The run with the submission's shaping completes (finite rewards throughout) and sentiment does not fall."""
    if not _usable(shaped):
        return _run_failed(shaped, "your shaped_reward")
    history = shaped["history"]
    g = gain(history)
    lines = [
        f"GRPO on your shaped_reward (no KL penalty): every reward was finite; {_sentiment_line(history)}, must "
        f"be at least {th.shaped_min_gain:+.2f}."
    ]
    last = history[-1]
    if _usable(baseline) and "distinct_2" in last:
        base = baseline["history"][-1]  # type: ignore[index]
        lines.append(
            f"At the end: distinct-2 {last['distinct_2']:.2f} and repetition {last['repetition']:.2f} "
            f"(baseline with the plain score: {base['distinct_2']:.2f} and {base['repetition']:.2f}); "
            f"KL(pi || pi_ref) {last['kl_forward']:.3f} (baseline {base['kl_forward']:.3f})."
        )
    if g >= th.shaped_min_gain:
        return CheckOutcome(1.0, "\n".join(lines))
    lines.append(
        "Sentiment fell while training on your shaped reward: the policy found something your shaping pays for "
        "more than positive sentiment. GRPO compares completions within a group, so only differences in reward "
        "matter: keep the reward increasing in the score for every completion, and keep any bonus or penalty "
        "(length, repetition ...) from outweighing the score itself."
    )
    return CheckOutcome(0.0, "\n".join(lines), tags=["training:sentiment_collapsed"])


# ---------------------------------------------------------------------------------------------------------------
# The checks
# ---------------------------------------------------------------------------------------------------------------


def _settings(runs: RunSet) -> T.TrainingSettings:
    if runs.settings is None:
        raise TrainingInternalError("no training run reported its preset")
    return runs.settings


def _finish(outcome: CheckOutcome, runs: RunSet, context: CheckContext, name: str) -> CheckOutcome:
    notes = []
    if runs.settings is not None and not runs.settings.calibrated:
        notes.append(f"Note: the {runs.settings.preset} thresholds are {runs.settings.note}.")
    outcome.artifacts = _artifacts(runs, context, name)
    if outcome.artifacts:
        notes.append(f"Curves of all training runs: {outcome.artifacts[0]}")
    if notes:
        outcome.feedback = "\n".join([outcome.feedback, *notes])
    return outcome


def _name(context: CheckContext) -> str:
    return Path(getattr(context, "submission_path", "") or "rewards.py").name


def check_baseline(submission: Submission, context: CheckContext) -> CheckOutcome:
    runs = run_set(submission, context)
    baseline = runs.records["baseline"]
    if baseline.get("gated"):
        return _finish(score_baseline(baseline, T.Thresholds(0, 0, 0, 0)), runs, context, _name(context))
    return _finish(score_baseline(baseline, _settings(runs).thresholds), runs, context, _name(context))


def _check_kl(kind: str):
    def check(submission: Submission, context: CheckContext) -> CheckOutcome:
        runs = run_set(submission, context)
        student = runs.records[kind]
        if student.get("gated"):
            return _finish(_run_failed(student, f"your {FUNCTION[kind]}"), runs, context, _name(context))
        settings = _settings(runs)
        outcome = score_kl(
            kind, runs.records.get("baseline", {}), student, settings.thresholds, settings.runs.kl_coef(kind)
        )
        if outcome.fraction < 1 and _usable(student):
            diagnosis = diagnose_kl(submission, FUNCTION[kind])
            if diagnosis is not None:
                outcome.misconception = diagnosis.id
                outcome.feedback += "\n" + diagnosis.render(FUNCTION[kind])
        return _finish(outcome, runs, context, _name(context))

    check.__name__ = f"check_{kind}_kl"
    return check


def check_shaped(submission: Submission, context: CheckContext) -> CheckOutcome:
    runs = run_set(submission, context)
    shaped = runs.records["shaped"]
    if shaped.get("gated"):
        return _finish(_run_failed(shaped, "your shaped_reward"), runs, context, _name(context))
    outcome = score_shaped(runs.records.get("baseline"), shaped, _settings(runs).thresholds)
    return _finish(outcome, runs, context, _name(context))


def checks() -> dict[str, CheckFunction]:
    return {
        "training.baseline": check_baseline,
        "training.forward_kl": _check_kl("forward"),
        "training.backward_kl": _check_kl("backward"),
        "training.shaped": check_shaped,
    }
