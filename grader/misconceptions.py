"""The catalogue of known wrong answers, and the diagnosis that recognises them in a submission.

Each :class:`Misconception` has an id (what reports and gradebooks count) and one or more wrong implementations
of the student functions it concerns. Its title and its explanation, per feedback level (hint, explain, solution),
are text in ``grader/misconceptions.toml``, read through :mod:`grader.grading.feedback`, which the handout ships stripped
to the level it grades at. The wrong implementations serve two purposes:

* diagnosis: :func:`diagnose_kl` runs a KL function of the submission on fixed probe inputs and compares its
  output with each catalogued wrong implementation's output on the same probes;
* tests: the grader's own test suite grades them as mutants of the reference solution and expects the check that
  should fail to name the misconception.

Some misconceptions (overflow, an unhandled empty row, mutating the inputs, most reward-shaping mistakes) are
not visible on well-behaved probes; the check that catches them names them directly (``detected_by_probes`` is
False for those).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from grader.contract import BACKWARD, FORWARD, SHAPING, Submission
from grader.grading import feedback

Rows = Sequence[Sequence[float]]
KLImpl = Callable[..., Any]


@dataclass(frozen=True)
class Misconception:
    id: str
    #: student function name -> wrong implementations (the first is the canonical mutant used by the tests)
    implementations: dict[str, tuple[Callable[..., Any], ...]] = field(default_factory=dict)
    detected_by_probes: bool = True

    @property
    def title(self) -> str:
        return feedback.load_catalogue()[self.id].title

    def text(self, level: str, function: str | None = None) -> str:
        """This level's paragraph alone, for ``function`` ("" where this copy of the grader does not have it)."""
        return feedback.load_catalogue()[self.id].text(level, function)

    def explain(self, function: str | None = None) -> str:
        """The derivation (the ``explain`` level's paragraph)."""
        return self.text("explain", function)

    def render(self, function: str | None = None, detail: str = "", level: str | None = None) -> str:
        """What a student reads, at ``level`` (default: the level of the grading run in progress)."""
        return feedback.render(self.id, function, detail, level)


# ---------------------------------------------------------------------------------------------------------------
# Building blocks for the wrong implementations (each is a plausible student solution with one mistake)
# ---------------------------------------------------------------------------------------------------------------


def _per_token(term: Callable[[float, float], float], *, reduce: str = "mean", coef: str = "once") -> KLImpl:
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


def _clipped_ratio(lp: float, lr: float, max_ratio: float = 20.0) -> float:
    return math.exp(min(lr - lp, math.log(max_ratio)))


# The contract's per-token terms: most mutants are the right term with one mistake around it.
def _forward_term(lp: float, lr: float) -> float:
    return lp - lr


def _backward_term(lp: float, lr: float) -> float:
    return 1.0 - _clipped_ratio(lp, lr)


def _r_log_r(lp: float, lr: float) -> float:
    return _clipped_ratio(lp, lr) * min(lr - lp, math.log(20.0))


def _r_log_r_minus_r_plus_1(lp: float, lr: float) -> float:
    r = _clipped_ratio(lp, lr)
    return r * math.log(r) - r + 1.0


def _k3(lp: float, lr: float) -> float:
    r = _clipped_ratio(lp, lr)
    return r - 1.0 - math.log(r)


def _k2(lp: float, lr: float) -> float:
    return 0.5 * (lr - lp) ** 2


def _batch_dependent(term: Callable[[float, float], float], how: str) -> KLImpl:
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


def _sequence_ratio(log_probs_policy: Rows, log_probs_ref: Rows, kl_coef: float = 0.1) -> list[float]:
    """The backward term applied once to the whole sequence's ratio (the product of the token ratios)."""
    out = []
    for row_pi, row_ref in zip(log_probs_policy, log_probs_ref, strict=True):
        log_r = math.fsum(lr - lp for lp, lr in zip(row_pi, row_ref, strict=True))
        out.append(kl_coef * (1.0 - math.exp(min(log_r, math.log(20.0)))) if row_pi else 0.0)
    return out


def _unclipped_backward(log_probs_policy: Rows, log_probs_ref: Rows, kl_coef: float = 0.1) -> list[float]:
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


def _empty_row_crash(term: Callable[[float, float], float]) -> KLImpl:
    def penalty(log_probs_policy: Rows, log_probs_ref: Rows, kl_coef: float = 0.1) -> list[float]:
        return [
            kl_coef * sum(term(lp, lr) for lp, lr in zip(a, b, strict=True)) / len(a)
            for a, b in zip(log_probs_policy, log_probs_ref, strict=True)
        ]

    return penalty


def _per_token_values(term: Callable[[float, float], float]) -> KLImpl:
    def penalty(log_probs_policy: Rows, log_probs_ref: Rows, kl_coef: float = 0.1) -> list[float]:
        return [
            kl_coef * term(lp, lr)
            for a, b in zip(log_probs_policy, log_probs_ref, strict=True)
            for lp, lr in zip(a, b, strict=True)
        ]

    return penalty


def _mutating(term: Callable[[float, float], float]) -> KLImpl:
    def penalty(log_probs_policy: Rows, log_probs_ref: Rows, kl_coef: float = 0.1) -> list[float]:
        out = []
        for row_pi, row_ref in zip(log_probs_policy, log_probs_ref, strict=True):
            for t in range(len(row_pi)):  # reuses the input row as scratch space
                row_pi[t] = term(row_pi[t], row_ref[t])  # type: ignore[index]
            out.append(kl_coef * math.fsum(row_pi) / len(row_pi) if row_pi else 0.0)
        return out

    return penalty


def _nondeterministic(term: Callable[[float, float], float]) -> KLImpl:
    base = _per_token(term)

    def penalty(log_probs_policy: Rows, log_probs_ref: Rows, kl_coef: float = 0.1) -> list[float]:
        return [v + random.gauss(0.0, 1e-3) for v in base(log_probs_policy, log_probs_ref, kl_coef)]

    return penalty


def _log_ratio_of_inputs(lp: float, lr: float) -> float:
    """Treats the log-probs as probabilities: the log of the ratio of the two log-probs."""
    return math.log(lp / lr)


def _prob_difference(lp: float, lr: float) -> float:
    return math.exp(lp) - math.exp(lr)


def _ratio_of_inputs(lp: float, lr: float) -> float:
    """Treats the log-probs as probabilities: r = pi_ref / pi computed as log_ref / log_pi."""
    return 1.0 - lr / lp


# Reward-shaping mutants: a simple, otherwise reasonable shaping with one mistake each.
def _fluency(text: str) -> float:
    words = text.lower().split()
    return (len(set(words)) / len(words)) if words else 0.5


def _shaping_decreasing(
    scores: list[float], completions: list[str], prompts: list[str] | None = None
) -> list[float]:
    return [(1.0 - s) * _fluency(c) for s, c in zip(scores, completions, strict=True)]


def _shaping_threshold(
    scores: list[float], completions: list[str], prompts: list[str] | None = None
) -> list[float]:
    # a length bonus only: the score is ignored for the shortest completions
    return [s * _fluency(c) if len(c.split()) > 2 else 0.1 for s, c in zip(scores, completions, strict=True)]


def _shaping_random(
    scores: list[float], completions: list[str], prompts: list[str] | None = None
) -> list[float]:
    return [s * _fluency(c) + random.uniform(0.0, 0.01) for s, c in zip(scores, completions, strict=True)]


def _shaping_mutating(
    scores: list[float], completions: list[str], prompts: list[str] | None = None
) -> list[float]:
    for i, c in enumerate(completions):
        scores[i] = scores[i] * _fluency(c)
    return list(scores)


def _shaping_needs_prompts(
    scores: list[float], completions: list[str], prompts: list[str] | None = None
) -> list[float]:
    return [
        s * _fluency(c) * (1.0 if len(p) < 1000 else 0.5)
        for s, c, p in zip(scores, completions, prompts, strict=True)
    ]  # type: ignore[arg-type]


def _shaping_divides_by_words(
    scores: list[float], completions: list[str], prompts: list[str] | None = None
) -> list[float]:
    return [s * len(set(c.split())) / len(c.split()) for s, c in zip(scores, completions, strict=True)]


def _shaping_log(
    scores: list[float], completions: list[str], prompts: list[str] | None = None
) -> list[float]:
    import numpy as np

    with np.errstate(divide="ignore"):
        return [float(np.log(s)) * (2.0 - _fluency(c)) for s, c in zip(scores, completions, strict=True)]


def _shaping_positive_words(
    scores: list[float], completions: list[str], prompts: list[str] | None = None
) -> list[float]:
    positive = {"great", "amazing", "wonderful", "brilliant", "love", "excellent", "perfect", "best"}
    return [
        s + 0.1 * sum(w.strip(".,!").lower() in positive for w in c.split())
        for s, c in zip(scores, completions, strict=True)
    ]


# ---------------------------------------------------------------------------------------------------------------
# The catalogue
# ---------------------------------------------------------------------------------------------------------------

CATALOGUE: dict[str, Misconception] = {}


def _add(
    misconception_id: str, implementations: dict[str, tuple[KLImpl, ...]], *, probes: bool = True
) -> None:
    """Register a misconception by its wrong implementations; ``probes``: whether the probe batch reveals it."""
    assert misconception_id not in CATALOGUE, misconception_id
    CATALOGUE[misconception_id] = Misconception(misconception_id, implementations, probes)


def _both(make: Callable[[Callable[[float, float], float]], KLImpl]) -> dict[str, tuple[KLImpl, ...]]:
    """The same mistake made in both KL penalties, each on its own right per-token term."""
    return {FORWARD: (make(_forward_term),), BACKWARD: (make(_backward_term),)}


# The order is the order of diagnosis: the first whose implementation reproduces the probe output wins.
_add("swapped_direction", {FORWARD: (_per_token(_backward_term),), BACKWARD: (_per_token(_forward_term),)})
_add("sum_not_mean", _both(lambda term: _per_token(term, reduce="sum")))
_add("value_estimator_r_log_r", {FORWARD: (_per_token(_r_log_r),), BACKWARD: (_per_token(_r_log_r),)})
_add(
    "value_estimator_r_log_r_minus_r_plus_1",
    {FORWARD: (_per_token(_r_log_r_minus_r_plus_1),), BACKWARD: (_per_token(_r_log_r_minus_r_plus_1),)},
)
_add("value_estimator_k3", {FORWARD: (_per_token(_k3),), BACKWARD: (_per_token(_k3),)})
_add("inverted_ratio", {BACKWARD: (_per_token(lambda lp, lr: 1.0 - math.exp(min(lp - lr, math.log(20.0)))),)})
_add("wrong_sign", _both(lambda term: _per_token(lambda lp, lr: -term(lp, lr))))
_add("coef_ignored", _both(lambda term: _per_token(term, coef="ignored")))
_add("coef_squared", _both(lambda term: _per_token(term, coef="squared")))
_add("biased_k2", {FORWARD: (_per_token(_k2),), BACKWARD: (_per_token(_k2),)})
_add(
    "biased_abs",
    {
        FORWARD: (_per_token(lambda lp, lr: abs(lp - lr)),),
        BACKWARD: (_per_token(lambda lp, lr: abs(lp - lr)),),
    },
)
_add(
    "probabilities_not_logs",
    {
        FORWARD: (_per_token(_log_ratio_of_inputs), _per_token(_prob_difference)),
        BACKWARD: (_per_token(_ratio_of_inputs),),
    },
)
_add(
    "batch_dependent",
    {
        function: tuple(_batch_dependent(term, how) for how in ("padded", "tokens", "centred"))
        for function, term in ((FORWARD, _forward_term), (BACKWARD, _backward_term))
    },
)
_add("sequence_ratio", {BACKWARD: (_sequence_ratio,)})
_add(
    "clip_too_tight",
    {
        BACKWARD: (
            _per_token(lambda lp, lr: 1.0 - _clipped_ratio(lp, lr, 5.0)),
            _per_token(lambda lp, lr: 1.0 - min(max(math.exp(min(lr - lp, 700.0)), 0.8), 1.2)),
        )
    },
    probes=False,  # recognised by a dedicated ratio sweep in diagnose_kl
)
_add("overflow", {BACKWARD: (_unclipped_backward,)}, probes=False)
_add("empty_row", _both(_empty_row_crash), probes=False)
_add("per_token_output", _both(_per_token_values), probes=False)
_add(
    "mutates_inputs",
    {
        FORWARD: (_mutating(_forward_term),),
        BACKWARD: (_mutating(_backward_term),),
        SHAPING: (_shaping_mutating,),
    },
    probes=False,
)
_add(
    "nondeterministic",
    {FORWARD: (_nondeterministic(_forward_term),), SHAPING: (_shaping_random,)},
    probes=False,
)
_add("shaping_not_monotone", {SHAPING: (_shaping_decreasing,)}, probes=False)
_add("shaping_ignores_score", {SHAPING: (_shaping_threshold,)}, probes=False)
_add("shaping_requires_prompts", {SHAPING: (_shaping_needs_prompts,)}, probes=False)
_add("shaping_empty_completion", {SHAPING: (_shaping_divides_by_words,)}, probes=False)
_add("shaping_non_finite", {SHAPING: (_shaping_log,)}, probes=False)
_add("shaping_rewards_repetition", {SHAPING: (_shaping_positive_words,)}, probes=False)


def check_texts(catalogue: feedback.Catalogue | None = None) -> list[str]:
    """Problems between the wrong implementations here and the text catalogue: an id without text, or text for
    an id nothing here recognises."""
    catalogue = catalogue or feedback.load_catalogue()
    problems = [
        f"{mid}: no text in {catalogue.path.name}" for mid in CATALOGUE if mid not in catalogue.entries
    ]
    problems += [
        f"{mid}: text in {catalogue.path.name} but no wrong implementation in grader/misconceptions.py"
        for mid in catalogue.entries
        if mid not in CATALOGUE
    ]
    return problems


def get(misconception_id: str) -> Misconception:
    return CATALOGUE[misconception_id]


# ---------------------------------------------------------------------------------------------------------------
# Diagnosis
# ---------------------------------------------------------------------------------------------------------------

#: Probe batch for the KL penalties: ragged rows, every log-prob strictly negative (some wrong implementations
#: divide by them), every ratio pi_ref/pi within [0.1, 5] (so any legitimate clipping at >= 10 is inactive),
#: one token with pi == pi_ref, and a coefficient far from 1 (so a missing or doubled coefficient shows).
PROBE_POLICY = [[-0.5], [-2.0, -0.3], [-1.2, -4.0, -0.7], [-2.5, -1.0]]
PROBE_REF = [[-1.5], [-0.4, -2.6], [-1.2, -3.1, -0.9], [-1.0, -2.9]]
PROBE_COEF = 0.3

#: Ratio sweep for the backward penalty's clipping (single-token rows, ratios from 0.05 to 9.9).
SWEEP_RATIOS = (0.05, 0.1, 0.2, 0.5, 0.8, 1.0, 1.2, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 9.9)
SWEEP_LOG_PI = -3.0
SWEEP_COEF = 0.5


@dataclass(frozen=True)
class Diagnosis:
    misconception: Misconception
    detail: str = ""
    #: the wrong implementation that reproduced the submission's probe output (None for recognised symptoms)
    implementation: Callable[..., Any] | None = None

    @property
    def id(self) -> str:
        return self.misconception.id

    def render(self, function: str | None = None) -> str:
        return self.misconception.render(function, self.detail)


def _all_close(got: Sequence[float], want: Sequence[float], rtol: float = 1e-3, atol: float = 1e-6) -> bool:
    return len(got) == len(want) and all(
        math.isfinite(g) and math.isfinite(w) and abs(g - w) <= atol + rtol * abs(w)
        for g, w in zip(got, want, strict=True)
    )


def _expected(impl: Callable[..., Any], *args: Any) -> list[float] | None:
    try:
        return [float(v) for v in impl(*args)]
    except Exception:
        return None


def match_outputs(function: str, probe_output: Sequence[float]) -> Diagnosis | None:
    """The first catalogued misconception whose wrong implementation reproduces ``probe_output`` (the output of
    ``function`` on the probe batch)."""
    for m in CATALOGUE.values():
        if not m.detected_by_probes:
            continue
        for impl in m.implementations.get(function, ()):
            want = _expected(impl, PROBE_POLICY, PROBE_REF, PROBE_COEF)
            if want is not None and _all_close(probe_output, want):
                return Diagnosis(m, implementation=impl)
    return None


def sweep_args() -> tuple[list[list[float]], list[list[float]], float]:
    return (
        [[SWEEP_LOG_PI] for _ in SWEEP_RATIOS],
        [[SWEEP_LOG_PI + math.log(r)] for r in SWEEP_RATIOS],
        SWEEP_COEF,
    )


def clipped_backward(low: float, high: float) -> KLImpl:
    """The backward penalty with its ratio clipped to [low, high]."""
    return _per_token(lambda lp, lr: 1.0 - min(max(math.exp(min(lr - lp, 700.0)), low), high))


def match_clipping(sweep_output: Sequence[float]) -> Diagnosis | None:
    """Recognise, from the sweep, the backward penalty with its ratio clipped to a range narrower than [0, 10]."""
    if len(sweep_output) != len(SWEEP_RATIOS) or not all(math.isfinite(v) for v in sweep_output):
        return None
    implied = [
        1.0 - v / SWEEP_COEF for v in sweep_output
    ]  # the ratio the submission used, if its term is the contract's
    lo, hi = min(implied), max(implied)
    if not all(
        abs(got - min(max(r, lo), hi)) <= 1e-4 * max(1.0, r)
        for got, r in zip(implied, SWEEP_RATIOS, strict=True)
    ):
        return None
    clipped_above = hi < SWEEP_RATIOS[-1] * (1 - 1e-3)
    clipped_below = lo > SWEEP_RATIOS[0] * (1 + 1e-3)
    if not (clipped_above or clipped_below):
        return None
    parts = []
    if clipped_below:
        parts.append(f"from below at {lo:.3g}")
    if clipped_above:
        parts.append(f"from above at {hi:.3g}")
    return Diagnosis(
        CATALOGUE["clip_too_tight"], "your ratio is clipped " + " and ".join(parts), clipped_backward(lo, hi)
    )


def diagnose_kl(submission: Submission, function: str) -> Diagnosis | None:
    """Run ``function`` of the submission on fixed probes and name what it does wrong, if it is catalogued:
    non-determinism (the same probe twice gives different outputs), a wrong implementation reproduced exactly,
    or (backward) a ratio clipped too tightly. Costs two to three calls; a failed call means no diagnosis."""
    first = submission.call(function, PROBE_POLICY, PROBE_REF, PROBE_COEF)
    if not first.ok or first.value is None:
        return None
    second = submission.call(function, PROBE_POLICY, PROBE_REF, PROBE_COEF)
    if second.ok and second.value is not None and not _same(first.value, second.value):
        return Diagnosis(CATALOGUE["nondeterministic"], "the same probe batch gave different penalties twice")
    found = match_outputs(function, first.value)
    if found is not None:
        return found
    tokens = sum(len(row) for row in PROBE_POLICY)
    if len(first.value) == tokens:
        per_token = CATALOGUE["per_token_output"]
        return Diagnosis(per_token, implementation=per_token.implementations[function][0])
    if function == BACKWARD:
        policy, ref, coef = sweep_args()
        sweep = submission.call(function, policy, ref, coef)
        if sweep.ok and sweep.value is not None:
            return match_clipping(sweep.value)
    return None


def _same(a: Sequence[float], b: Sequence[float]) -> bool:
    return len(a) == len(b) and all(
        x == y or (math.isnan(x) and math.isnan(y)) for x, y in zip(a, b, strict=True)
    )


def is_nondeterministic(submission: Submission, function: str, *args: Any) -> bool:
    """Whether two identical calls give different outputs."""
    first = submission.call(function, *args)
    second = submission.call(function, *args)
    return bool(
        first.ok
        and second.ok
        and first.value is not None
        and second.value is not None
        and not _same(first.value, second.value)
    )


def mutants(function: str | None = None) -> list[tuple[str, str, Callable[..., Any]]]:
    """Every catalogued wrong implementation as (misconception id, function, implementation)."""
    return [
        (m.id, fn, impl)
        for m in CATALOGUE.values()
        for fn, impls in m.implementations.items()
        for impl in impls
        if function in (None, fn)
    ]
