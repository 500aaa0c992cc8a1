"""The catalogue of wrong implementations of the student functions: the one place where wrong code is written.

Each is a plausible student solution with one mistake (or, in :data:`SUBMISSIONS`, code that a training run must
tell from a right one). Everything that needs wrong code takes it from here:

* the misconception diagnosis: :data:`IMPLEMENTATIONS` files them under the misconception they show
  (:mod:`grader.checks.misconceptions`); ``python -m grader.tools record`` records their outputs on the probe
  batch, which is what the public grader keeps of them;
* the calibration of the training checks (:mod:`grader.tools.calibrate`) trains the wrong submissions of
  :data:`SUBMISSIONS`, written out as files by :func:`submission_source`;
* the grader's own tests grade IMPLEMENTATIONS as mutants of the reference (``tests/support/mutants.py``) and
  write SUBMISSIONS into submission files (``tests/support/wrong_sources.py``).

A submission file needs text, and :func:`submission_source` generates it from these same functions
(:mod:`.source`), so each is written once. That is why the functions of SUBMISSIONS are self-contained (modules
and builtins only, or the right function they wrap): the text must run on its own at the end of a solution.
The rest are built from the small blocks below and exist as callables only.

The module is over 400 lines because it is the whole catalogue: split, the wrong code would be in several
places again.
"""

from __future__ import annotations

import math
import random
import re
import struct
import zlib
from collections.abc import Callable, Sequence
from typing import Any

from grader.checks.key.source import submission_source as _source
from grader.checks.key.terms import forward_term
from grader.contract import BACKWARD, FORWARD, SHAPING

Rows = Sequence[Sequence[float]]
KLImpl = Callable[..., Any]

# ---------------------------------------------------------------------------------------------------------------
# Building blocks for the wrong implementations (each is a plausible student solution with one mistake)
# ---------------------------------------------------------------------------------------------------------------


def per_token(term: Callable[[float, float], float], *, reduce: str = "mean", coef: str = "once") -> KLImpl:
    """A KL penalty from a per-token term ``term(log_pi, log_ref)``, reduced per row, scaled by the coefficient."""

    def penalty(log_probs_policy: Rows, log_probs_ref: Rows, kl_coef: float = 0.1) -> list[float]:
        scale = {"once": kl_coef, "ignored": 1.0, "squared": kl_coef * kl_coef}[coef]
        out = []
        for row_pi, row_ref in zip(log_probs_policy, log_probs_ref, strict=True):
            terms = [term(lp, lr) for lp, lr in zip(row_pi, row_ref, strict=True)]
            if not terms:
                out.append(0.0)
            elif reduce == "sum":
                out.append(scale * math.fsum(terms))
            else:
                out.append(scale * math.fsum(terms) / len(terms))
        return out

    return penalty


def clipped_ratio(lp: float, lr: float, max_ratio: float = 20.0) -> float:
    return math.exp(min(lr - lp, math.log(max_ratio)))


# The contract's per-token terms (the backward one clipped at 20, as the reference does): most mutants are the
# right term with one mistake around it.
def backward_term(lp: float, lr: float) -> float:
    return 1.0 - clipped_ratio(lp, lr)


def r_log_r_minus_r_plus_1(lp: float, lr: float) -> float:
    r = clipped_ratio(lp, lr)
    return r * math.log(r) - r + 1.0


def k3(lp: float, lr: float) -> float:
    r = clipped_ratio(lp, lr)
    return r - 1.0 - math.log(r)


def k2(lp: float, lr: float) -> float:
    return 0.5 * (lr - lp) ** 2


def batch_dependent(term: Callable[[float, float], float], how: str) -> KLImpl:
    def penalty(log_probs_policy: Rows, log_probs_ref: Rows, kl_coef: float = 0.1) -> list[float]:
        rows = [
            [term(lp, lr) for lp, lr in zip(a, b, strict=True)]
            for a, b in zip(log_probs_policy, log_probs_ref, strict=True)
        ]
        if how == "padded":  # mean over a zero-padded [batch, max_len] tensor
            width = max((len(r) for r in rows), default=1) or 1
            return [kl_coef * math.fsum(r) / width for r in rows]
        if how == "tokens":  # every row divided by the batch's total number of tokens
            total = sum(len(r) for r in rows) or 1
            return [kl_coef * math.fsum(r) / total for r in rows]
        means = [
            kl_coef * math.fsum(r) / len(r) if r else 0.0 for r in rows
        ]  # "centred": minus the batch mean
        avg = math.fsum(means) / len(means) if means else 0.0
        return [m - avg for m in means]

    return penalty


def sequence_ratio(log_probs_policy: Rows, log_probs_ref: Rows, kl_coef: float = 0.1) -> list[float]:
    """The backward term applied once to the whole sequence's ratio (the product of the token ratios)."""
    out = []
    for row_pi, row_ref in zip(log_probs_policy, log_probs_ref, strict=True):
        log_r = math.fsum(lr - lp for lp, lr in zip(row_pi, row_ref, strict=True))
        out.append(kl_coef * (1.0 - math.exp(min(log_r, math.log(20.0)))) if row_pi else 0.0)
    return out


def unclipped_backward(log_probs_policy: Rows, log_probs_ref: Rows, kl_coef: float = 0.1) -> list[float]:
    """The backward penalty computed without clipping the log-ratio: exp(1000) overflows (numpy: inf, then nan)."""
    import numpy as np

    out = []
    for row_pi, row_ref in zip(log_probs_policy, log_probs_ref, strict=True):
        if not row_pi:
            out.append(0.0)
            continue
        with np.errstate(over="ignore", invalid="ignore"):
            ratio = np.exp(np.asarray(row_ref, dtype=float) - np.asarray(row_pi, dtype=float))
            out.append(float(kl_coef * np.mean(1.0 - ratio)))
    return out


def empty_row_crash(term: Callable[[float, float], float]) -> KLImpl:
    def penalty(log_probs_policy: Rows, log_probs_ref: Rows, kl_coef: float = 0.1) -> list[float]:
        return [
            kl_coef * sum(term(lp, lr) for lp, lr in zip(a, b, strict=True)) / len(a)
            for a, b in zip(log_probs_policy, log_probs_ref, strict=True)
        ]

    return penalty


def per_token_values(term: Callable[[float, float], float]) -> KLImpl:
    def penalty(log_probs_policy: Rows, log_probs_ref: Rows, kl_coef: float = 0.1) -> list[float]:
        return [
            kl_coef * term(lp, lr)
            for a, b in zip(log_probs_policy, log_probs_ref, strict=True)
            for lp, lr in zip(a, b, strict=True)
        ]

    return penalty


def mutating(term: Callable[[float, float], float]) -> KLImpl:
    def penalty(log_probs_policy: Rows, log_probs_ref: Rows, kl_coef: float = 0.1) -> list[float]:
        out = []
        for row_pi, row_ref in zip(log_probs_policy, log_probs_ref, strict=True):
            for t in range(len(row_pi)):  # reuses the input row as scratch space
                row_pi[t] = term(row_pi[t], row_ref[t])  # type: ignore[index]
            out.append(kl_coef * math.fsum(row_pi) / len(row_pi) if row_pi else 0.0)
        return out

    return penalty


def nondeterministic(term: Callable[[float, float], float]) -> KLImpl:
    base = per_token(term)

    def penalty(log_probs_policy: Rows, log_probs_ref: Rows, kl_coef: float = 0.1) -> list[float]:
        return [v + random.gauss(0.0, 1e-3) for v in base(log_probs_policy, log_probs_ref, kl_coef)]

    return penalty


def log_ratio_of_inputs(lp: float, lr: float) -> float:
    """Treats the log-probs as probabilities: the log of the ratio of the two log-probs."""
    return math.log(lp / lr)


def prob_difference(lp: float, lr: float) -> float:
    return math.exp(lp) - math.exp(lr)


def ratio_of_inputs(lp: float, lr: float) -> float:
    """Treats the log-probs as probabilities: r = pi_ref / pi computed as log_ref / log_pi."""
    return 1.0 - lr / lp


# Reward-shaping mutants: a simple, otherwise reasonable shaping with one mistake each.
def fluency(text: str) -> float:
    words = text.lower().split()
    return (len(set(words)) / len(words)) if words else 0.5


def shaping_decreasing(
    scores: list[float], completions: list[str], prompts: list[str] | None = None
) -> list[float]:
    return [(1.0 - s) * fluency(c) for s, c in zip(scores, completions, strict=True)]


def shaping_threshold(
    scores: list[float], completions: list[str], prompts: list[str] | None = None
) -> list[float]:
    # a length bonus only: the score is ignored for the shortest completions
    return [s * fluency(c) if len(c.split()) > 2 else 0.1 for s, c in zip(scores, completions, strict=True)]


def shaping_random(
    scores: list[float], completions: list[str], prompts: list[str] | None = None
) -> list[float]:
    return [s * fluency(c) + random.uniform(0.0, 0.01) for s, c in zip(scores, completions, strict=True)]


def shaping_mutating(
    scores: list[float], completions: list[str], prompts: list[str] | None = None
) -> list[float]:
    for i, c in enumerate(completions):
        scores[i] = scores[i] * fluency(c)
    return list(scores)


def shaping_needs_prompts(
    scores: list[float], completions: list[str], prompts: list[str] | None = None
) -> list[float]:
    return [
        s * fluency(c) * (1.0 if len(p) < 1000 else 0.5)
        for s, c, p in zip(scores, completions, prompts, strict=True)
    ]  # type: ignore[arg-type]


def shaping_divides_by_words(
    scores: list[float], completions: list[str], prompts: list[str] | None = None
) -> list[float]:
    return [s * len(set(c.split())) / len(c.split()) for s, c in zip(scores, completions, strict=True)]


def shaping_log(scores: list[float], completions: list[str], prompts: list[str] | None = None) -> list[float]:
    import numpy as np

    with np.errstate(divide="ignore"):
        return [float(np.log(s)) * (2.0 - fluency(c)) for s, c in zip(scores, completions, strict=True)]


def shaping_positive_words(
    scores: list[float], completions: list[str], prompts: list[str] | None = None
) -> list[float]:
    positive = {"great", "amazing", "wonderful", "brilliant", "love", "excellent", "perfect", "best"}
    return [
        s + 0.1 * sum(w.strip(".,!").lower() in positive for w in c.split())
        for s, c in zip(scores, completions, strict=True)
    ]


# ---------------------------------------------------------------------------------------------------------------
# Self-contained wrong implementations: they can be written out as a submission's text (see the docstring)
# ---------------------------------------------------------------------------------------------------------------


def zero_penalty(
    log_probs_policy: list[list[float]], log_probs_ref: list[list[float]], kl_coef: float = 0.1
) -> list[float]:
    return [0.0 for _ in log_probs_policy]


def negated(right: KLImpl) -> KLImpl:
    """The right penalty with its sign flipped: a bonus for drifting away from the reference."""

    def penalty(
        log_probs_policy: list[list[float]], log_probs_ref: list[list[float]], kl_coef: float = 0.1
    ) -> list[float]:
        return [-p for p in right(log_probs_policy, log_probs_ref, kl_coef)]

    return penalty


def zero_in_training(right: KLImpl) -> KLImpl:
    """Right, unless the batch looks like training's (>= 8 rows, >= 64 tokens, float32-exact log-probs): then
    zeros. Issue 17's gaming row, as a student would write it after reading the grader."""

    def penalty(
        log_probs_policy: list[list[float]], log_probs_ref: list[list[float]], kl_coef: float = 0.1
    ) -> list[float]:
        tokens = [x for row in log_probs_policy for x in row]
        if (
            len(log_probs_policy) >= 8
            and len(tokens) >= 64
            and all(struct.unpack("f", struct.pack("f", x))[0] == x for x in tokens)
        ):
            return [0.0] * len(log_probs_policy)
        return right(log_probs_policy, log_probs_ref, kl_coef)

    return penalty


def sum_not_mean_forward(
    log_probs_policy: list[list[float]], log_probs_ref: list[list[float]], kl_coef: float = 0.1
) -> list[float]:
    """The forward penalty summed over a completion's tokens instead of averaged."""
    return [
        kl_coef * math.fsum(lp - lr for lp, lr in zip(row_pi, row_ref, strict=True)) if row_pi else 0.0
        for row_pi, row_ref in zip(log_probs_policy, log_probs_ref, strict=True)
    ]


def r_log_r(
    log_probs_policy: list[list[float]], log_probs_ref: list[list[float]], kl_coef: float = 0.1
) -> list[float]:
    """r log r with r = pi_ref / pi (log r clipped at log 20): an unbiased estimate of KL(pi_ref || pi)'s VALUE,
    but as a penalty it pushes the policy away from the reference."""
    out = []
    for row_pi, row_ref in zip(log_probs_policy, log_probs_ref, strict=True):
        terms = [
            math.exp(min(lr - lp, math.log(20.0))) * min(lr - lp, math.log(20.0))
            for lp, lr in zip(row_pi, row_ref, strict=True)
        ]
        out.append(kl_coef * sum(terms) / len(terms) if terms else 0.0)
    return out


def flips_above_ten(
    log_probs_policy: list[list[float]], log_probs_ref: list[list[float]], kl_coef: float = 0.1
) -> list[float]:
    """The backward penalty, exact up to ratio 10, with a large *penalty* above it (where the KL's gradient asks
    for a bonus): right wherever the contract fixes the value, wrong where it only allows a clip."""
    out = []
    for row_pi, row_ref in zip(log_probs_policy, log_probs_ref, strict=True):
        terms = [
            50.0 if lr - lp > math.log(10.0) else 1.0 - math.exp(lr - lp)
            for lp, lr in zip(row_pi, row_ref, strict=True)
        ]
        out.append(kl_coef * math.fsum(terms) / len(terms) if terms else 0.0)
    return out


# Shapings that the shaped training run must tell from a right one (the calibration's; they pass the property
# checks or most of them).
def identity_shaping(
    scores: list[float], completions: list[str], prompts: list[str] | None = None
) -> list[float]:
    return list(scores)


def constant_shaping(
    scores: list[float], completions: list[str], prompts: list[str] | None = None
) -> list[float]:
    return [0.5 for _ in scores]


def noise_shaping(
    scores: list[float], completions: list[str], prompts: list[str] | None = None
) -> list[float]:
    # deterministic noise from the text, barely increasing in the score
    return [zlib.crc32(c.encode()) / 2**32 + 1e-3 * s for s, c in zip(scores, completions, strict=True)]


def gibberish_shaping(
    scores: list[float], completions: list[str], prompts: list[str] | None = None
) -> list[float]:
    # every different word doubles the reward, however the text reads
    return [
        s * 2.0 ** len(set(re.findall(r"[a-z']+", c.lower())))
        for s, c in zip(scores, completions, strict=True)
    ]


def vocabulary_shaping(
    scores: list[float], completions: list[str], prompts: list[str] | None = None
) -> list[float]:
    # a varied vocabulary: the score times the number of different words
    return [s * len(set(re.findall(r"[a-z']+", c.lower()))) for s, c in zip(scores, completions, strict=True)]


def previous_shaping(
    scores: list[float], completions: list[str], prompts: list[str] | None = None
) -> list[float]:
    # the reference's shaping until the gibberish it produced without a KL penalty was measured (issue 10)
    out = []
    for s, c in zip(scores, completions, strict=True):
        words = re.findall(r"[a-z']+", c.lower())
        fluency = len(set(words)) / len(words) * min(1.0, (len(words) + 1) / 6) if words else 1 / 6
        out.append(s * fluency)
    return out


# ---------------------------------------------------------------------------------------------------------------
# The table: misconception id -> student function -> its wrong implementations (the first is the canonical mutant
# the tests use). The ids, their order and texts are the public catalogue's (grader.checks.misconceptions).
# ---------------------------------------------------------------------------------------------------------------

#: The right penalties the wrappers above wrap here (a submission's text wraps the submission's own).
RIGHT: dict[str, KLImpl] = {FORWARD: per_token(forward_term), BACKWARD: per_token(backward_term)}

IMPLEMENTATIONS: dict[str, dict[str, tuple[KLImpl, ...]]] = {}


def _impl(
    misconception_id: str, implementations: dict[str, tuple[KLImpl, ...]], *, probes: bool = True
) -> None:
    del probes  # the public catalogue says which misconceptions the probes reveal
    IMPLEMENTATIONS[misconception_id] = implementations


def _both(make: Callable[[Callable[[float, float], float]], KLImpl]) -> dict[str, tuple[KLImpl, ...]]:
    """The same mistake made in both KL penalties, each on its own right per-token term."""
    return {FORWARD: (make(forward_term),), BACKWARD: (make(backward_term),)}


_impl("swapped_direction", {FORWARD: (per_token(backward_term),), BACKWARD: (per_token(forward_term),)})
_impl("sum_not_mean", {FORWARD: (sum_not_mean_forward,), BACKWARD: (per_token(backward_term, reduce="sum"),)})
_impl("value_estimator_r_log_r", {FORWARD: (r_log_r,), BACKWARD: (r_log_r,)})
_impl("value_estimator_neg_r_log_r", {FORWARD: (negated(r_log_r),), BACKWARD: (negated(r_log_r),)})
_impl("log_ratio_backward", {BACKWARD: (per_token(lambda lp, lr: lr - lp),)})
_impl(
    "value_estimator_r_log_r_minus_r_plus_1",
    {FORWARD: (per_token(r_log_r_minus_r_plus_1),), BACKWARD: (per_token(r_log_r_minus_r_plus_1),)},
)
_impl("value_estimator_k3", {FORWARD: (per_token(k3),), BACKWARD: (per_token(k3),)})
_impl("inverted_ratio", {BACKWARD: (per_token(lambda lp, lr: 1.0 - math.exp(min(lp - lr, math.log(20.0)))),)})
_impl("wrong_sign", {FORWARD: (negated(RIGHT[FORWARD]),), BACKWARD: (negated(RIGHT[BACKWARD]),)})
_impl("coef_ignored", _both(lambda term: per_token(term, coef="ignored")))
_impl("coef_squared", _both(lambda term: per_token(term, coef="squared")))
_impl("biased_k2", {FORWARD: (per_token(k2),), BACKWARD: (per_token(k2),)})
_impl(
    "biased_abs",
    {
        FORWARD: (per_token(lambda lp, lr: abs(lp - lr)),),
        BACKWARD: (per_token(lambda lp, lr: abs(lp - lr)),),
    },
)
_impl(
    "probabilities_not_logs",
    {
        FORWARD: (per_token(log_ratio_of_inputs), per_token(prob_difference)),
        BACKWARD: (per_token(ratio_of_inputs),),
    },
)
_impl(
    "batch_dependent",
    {
        function: tuple(batch_dependent(term, how) for how in ("padded", "tokens", "centred"))
        for function, term in ((FORWARD, forward_term), (BACKWARD, backward_term))
    },
)
_impl("sequence_ratio", {BACKWARD: (sequence_ratio,)})
_impl(
    "clip_too_tight",
    {
        BACKWARD: (
            per_token(lambda lp, lr: 1.0 - clipped_ratio(lp, lr, 5.0)),
            per_token(lambda lp, lr: 1.0 - min(max(math.exp(min(lr - lp, 700.0)), 0.8), 1.2)),
        )
    },
    probes=False,  # recognised by a dedicated ratio sweep in diagnose_kl
)
_impl("clip_flips_sign", {BACKWARD: (flips_above_ten,)}, probes=False)
_impl("overflow", {BACKWARD: (unclipped_backward,)}, probes=False)
_impl("empty_row", _both(empty_row_crash), probes=False)
_impl("per_token_output", _both(per_token_values), probes=False)
_impl(
    "mutates_inputs",
    {
        FORWARD: (mutating(forward_term),),
        BACKWARD: (mutating(backward_term),),
        SHAPING: (shaping_mutating,),
    },
    probes=False,
)
_impl(
    "nondeterministic",
    {FORWARD: (nondeterministic(forward_term),), SHAPING: (shaping_random,)},
    probes=False,
)
_impl("shaping_not_monotone", {SHAPING: (shaping_decreasing,)}, probes=False)
_impl("shaping_ignores_score", {SHAPING: (shaping_threshold,)}, probes=False)
_impl("shaping_requires_prompts", {SHAPING: (shaping_needs_prompts,)}, probes=False)
_impl("shaping_empty_completion", {SHAPING: (shaping_divides_by_words,)}, probes=False)
_impl("shaping_non_finite", {SHAPING: (shaping_log,)}, probes=False)
_impl("shaping_rewards_repetition", {SHAPING: (shaping_positive_words,)}, probes=False)


# ---------------------------------------------------------------------------------------------------------------
# Wrong submissions: the student functions each replaces in a right solution, written out by submission_source
# ---------------------------------------------------------------------------------------------------------------


def _mistake(misconception_id: str, *functions: str) -> dict[str, KLImpl]:
    """The canonical implementation of a catalogued misconception, for ``functions``."""
    return {f: IMPLEMENTATIONS[misconception_id][f][0] for f in functions}


SUBMISSIONS: dict[str, dict[str, KLImpl]] = {
    # the calibration's wrong variants (grader.tools.calibrate says what each must fail)
    "zero_kl": {FORWARD: zero_penalty, BACKWARD: zero_penalty},
    "sign_flipped": _mistake("wrong_sign", FORWARD, BACKWARD),
    "r_log_r_backward": _mistake("value_estimator_r_log_r", BACKWARD),
    "identity_shaping": {SHAPING: identity_shaping},
    "constant_shaping": {SHAPING: constant_shaping},
    "noise_shaping": {SHAPING: noise_shaping},
    "gibberish_shaping": {SHAPING: gibberish_shaping},
    "vocabulary_shaping": {SHAPING: vocabulary_shaping},
    "previous_shaping": {SHAPING: previous_shaping},
    # the tests' submission files
    "sum_not_mean_forward": _mistake("sum_not_mean", FORWARD),
    "penalty_above_ten": _mistake("clip_flips_sign", BACKWARD),
    "zero_in_training": {
        FORWARD: zero_in_training(RIGHT[FORWARD]),
        BACKWARD: zero_in_training(RIGHT[BACKWARD]),
    },
    # two calibration variants in one submission each, so that one real grade shows both failing
    # (tests/integration/test_training_checks_grade.py: each training check has its own run)
    "flipped_forward_zero_backward": {**_mistake("wrong_sign", FORWARD), BACKWARD: zero_penalty},
    "r_log_r_backward_identity_shaping": {
        **_mistake("value_estimator_r_log_r", BACKWARD),
        SHAPING: identity_shaping,
    },
}


def submission_source(name: str) -> str:
    """The text that, appended to a right solution (``reference/rewards.py``), makes the wrong submission
    ``name`` of :data:`SUBMISSIONS`: it replaces those functions and keeps the others."""
    return _source(SUBMISSIONS[name], RIGHT)
