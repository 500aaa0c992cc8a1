"""The catalogue of known wrong answers (the diagnosis that recognises them is :mod:`.diagnose`).

Each :class:`Misconception` has an id (what reports and gradebooks count) and one or more wrong implementations
of the student functions it concerns. Its title and its explanation, per feedback level (hint, explain, solution),
are text in ``grader/checks/misconceptions/misconceptions.toml``, read through :mod:`grader.grading.feedback`, which the handout ships stripped
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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from grader.checks.misconceptions import wrong as W
from grader.contract import BACKWARD, FORWARD, SHAPING
from grader.grading import feedback


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
# The catalogue
# ---------------------------------------------------------------------------------------------------------------

CATALOGUE: dict[str, Misconception] = {}


def _add(
    misconception_id: str, implementations: dict[str, tuple[W.KLImpl, ...]], *, probes: bool = True
) -> None:
    """Register a misconception by its wrong implementations; ``probes``: whether the probe batch reveals it."""
    assert misconception_id not in CATALOGUE, misconception_id
    CATALOGUE[misconception_id] = Misconception(misconception_id, implementations, probes)


def _both(make: Callable[[Callable[[float, float], float]], W.KLImpl]) -> dict[str, tuple[W.KLImpl, ...]]:
    """The same mistake made in both KL penalties, each on its own right per-token term."""
    return {FORWARD: (make(W.forward_term),), BACKWARD: (make(W.backward_term),)}


# The order is the order of diagnosis: the first whose implementation reproduces the probe output wins.
_add(
    "swapped_direction", {FORWARD: (W.per_token(W.backward_term),), BACKWARD: (W.per_token(W.forward_term),)}
)
_add("sum_not_mean", _both(lambda term: W.per_token(term, reduce="sum")))
_add("value_estimator_r_log_r", {FORWARD: (W.per_token(W.r_log_r),), BACKWARD: (W.per_token(W.r_log_r),)})
_add(
    "value_estimator_r_log_r_minus_r_plus_1",
    {FORWARD: (W.per_token(W.r_log_r_minus_r_plus_1),), BACKWARD: (W.per_token(W.r_log_r_minus_r_plus_1),)},
)
_add("value_estimator_k3", {FORWARD: (W.per_token(W.k3),), BACKWARD: (W.per_token(W.k3),)})
_add(
    "inverted_ratio", {BACKWARD: (W.per_token(lambda lp, lr: 1.0 - math.exp(min(lp - lr, math.log(20.0)))),)}
)
_add("wrong_sign", _both(lambda term: W.per_token(lambda lp, lr: -term(lp, lr))))
_add("coef_ignored", _both(lambda term: W.per_token(term, coef="ignored")))
_add("coef_squared", _both(lambda term: W.per_token(term, coef="squared")))
_add("biased_k2", {FORWARD: (W.per_token(W.k2),), BACKWARD: (W.per_token(W.k2),)})
_add(
    "biased_abs",
    {
        FORWARD: (W.per_token(lambda lp, lr: abs(lp - lr)),),
        BACKWARD: (W.per_token(lambda lp, lr: abs(lp - lr)),),
    },
)
_add(
    "probabilities_not_logs",
    {
        FORWARD: (W.per_token(W.log_ratio_of_inputs), W.per_token(W.prob_difference)),
        BACKWARD: (W.per_token(W.ratio_of_inputs),),
    },
)
_add(
    "batch_dependent",
    {
        function: tuple(W.batch_dependent(term, how) for how in ("padded", "tokens", "centred"))
        for function, term in ((FORWARD, W.forward_term), (BACKWARD, W.backward_term))
    },
)
_add("sequence_ratio", {BACKWARD: (W.sequence_ratio,)})
_add(
    "clip_too_tight",
    {
        BACKWARD: (
            W.per_token(lambda lp, lr: 1.0 - W.clipped_ratio(lp, lr, 5.0)),
            W.per_token(lambda lp, lr: 1.0 - min(max(math.exp(min(lr - lp, 700.0)), 0.8), 1.2)),
        )
    },
    probes=False,  # recognised by a dedicated ratio sweep in diagnose_kl
)
_add("overflow", {BACKWARD: (W.unclipped_backward,)}, probes=False)
_add("empty_row", _both(W.empty_row_crash), probes=False)
_add("per_token_output", _both(W.per_token_values), probes=False)
_add(
    "mutates_inputs",
    {
        FORWARD: (W.mutating(W.forward_term),),
        BACKWARD: (W.mutating(W.backward_term),),
        SHAPING: (W.shaping_mutating,),
    },
    probes=False,
)
_add(
    "nondeterministic",
    {FORWARD: (W.nondeterministic(W.forward_term),), SHAPING: (W.shaping_random,)},
    probes=False,
)
_add("shaping_not_monotone", {SHAPING: (W.shaping_decreasing,)}, probes=False)
_add("shaping_ignores_score", {SHAPING: (W.shaping_threshold,)}, probes=False)
_add("shaping_requires_prompts", {SHAPING: (W.shaping_needs_prompts,)}, probes=False)
_add("shaping_empty_completion", {SHAPING: (W.shaping_divides_by_words,)}, probes=False)
_add("shaping_non_finite", {SHAPING: (W.shaping_log,)}, probes=False)
_add("shaping_rewards_repetition", {SHAPING: (W.shaping_positive_words,)}, probes=False)


def check_texts(catalogue: feedback.Catalogue | None = None) -> list[str]:
    """Problems between the wrong implementations here and the text catalogue: an id without text, or text for
    an id nothing here recognises."""
    catalogue = catalogue or feedback.load_catalogue()
    problems = [
        f"{mid}: no text in {catalogue.path.name}" for mid in CATALOGUE if mid not in catalogue.entries
    ]
    problems += [
        f"{mid}: text in {catalogue.path.name} but no wrong implementation in grader/checks/misconceptions/catalogue.py"
        for mid in catalogue.entries
        if mid not in CATALOGUE
    ]
    return problems


def get(misconception_id: str) -> Misconception:
    return CATALOGUE[misconception_id]


def mutants(function: str | None = None) -> list[tuple[str, str, Callable[..., Any]]]:
    """Every catalogued wrong implementation as (misconception id, function, implementation)."""
    return [
        (m.id, fn, impl)
        for m in CATALOGUE.values()
        for fn, impls in m.implementations.items()
        for impl in impls
        if function in (None, fn)
    ]
