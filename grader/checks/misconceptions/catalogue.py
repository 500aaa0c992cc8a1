"""The catalogue of known wrong answers (the diagnosis that recognises them is :mod:`.diagnose`).

Each :class:`Misconception` has an id (what reports and gradebooks count). Its title and its explanation, per
feedback level (hint, explain, solution), are text in ``grader/checks/misconceptions/misconceptions.toml``, read
through :mod:`grader.checks.feedback`, which the handout ships stripped to the level it grades at.

Its wrong implementations (a plausible solution with one mistake each) are part of the answer key
(:mod:`grader.checks.key.wrong`): most are the right per-token term with one mistake around it, so they stay with
the instructor. What the public grader keeps of them is numbers: their outputs on the fixed probe batch, recorded
in ``grader/checks/recorded.json`` (:mod:`grader.checks.recorded`). They serve two purposes:

* diagnosis: :func:`diagnose_kl` runs a KL function of the submission on the fixed probe batch and compares its
  output with each catalogued wrong implementation's recorded output on the same batch;
* tests: the grader's own test suite grades them as mutants of the reference solution and expects the check that
  should fail to name the misconception.

Some misconceptions (overflow, an unhandled empty row, mutating the inputs, most reward-shaping mistakes) are
not visible on well-behaved probes; the check that catches them names them directly (``detected_by_probes`` is
False for those).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from grader.checks import answer_key, feedback


@dataclass(frozen=True)
class Misconception:
    id: str
    detected_by_probes: bool = True

    @property
    def implementations(self) -> dict[str, tuple[Callable[..., Any], ...]]:
        """Student function name -> wrong implementations (the first is the canonical mutant used by the tests);
        empty where this copy of the grader has no answer key (a handout)."""
        return answer_key.wrong_implementations().get(self.id, {})

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


def _add(misconception_id: str, *, probes: bool = True) -> None:
    """Register a misconception; ``probes``: whether the probe batch reveals it."""
    assert misconception_id not in CATALOGUE, misconception_id
    CATALOGUE[misconception_id] = Misconception(misconception_id, probes)


# The order is the order of diagnosis: the first whose recorded probe output matches the submission's wins.
_add("swapped_direction")
_add("sum_not_mean")
_add("value_estimator_r_log_r")
_add("value_estimator_neg_r_log_r")
_add("log_ratio_backward")
_add("value_estimator_r_log_r_minus_r_plus_1")
_add("value_estimator_k3")
_add("inverted_ratio")
_add("wrong_sign")
_add("coef_ignored")
_add("coef_squared")
_add("biased_k2")
_add("biased_abs")
_add("probabilities_not_logs")
_add("batch_dependent")
_add("sequence_ratio")
_add("clip_too_tight", probes=False)
_add("clip_flips_sign", probes=False)
_add("overflow", probes=False)
_add("empty_row", probes=False)
_add("per_token_output", probes=False)
_add("mutates_inputs", probes=False)
_add("nondeterministic", probes=False)
_add("shaping_not_monotone", probes=False)
_add("shaping_ignores_score", probes=False)
_add("shaping_requires_prompts", probes=False)
_add("shaping_empty_completion", probes=False)
_add("shaping_non_finite", probes=False)
_add("shaping_rewards_repetition", probes=False)


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
