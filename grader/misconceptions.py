"""The catalogue of known wrong answers, and the diagnosis that recognises them in a submission.

Each :class:`Misconception` has an id (what reports and gradebooks count), a title, an explanation a student can
fix their code from, and one or more wrong implementations of the student functions it concerns. The same
implementations serve two purposes:

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

from grader.core import Submission

KL_FUNCTIONS = ("kl_penalty_forward", "kl_penalty_backward")
FORWARD, BACKWARD, SHAPING = "kl_penalty_forward", "kl_penalty_backward", "shaped_reward"

Rows = Sequence[Sequence[float]]
KLImpl = Callable[..., Any]


@dataclass(frozen=True)
class Misconception:
    id: str
    title: str
    explanation: str
    #: student function name -> wrong implementations (the first is the canonical mutant used by the tests)
    implementations: dict[str, tuple[Callable[..., Any], ...]] = field(default_factory=dict)
    #: per-function explanation, when the mistake reads differently in the two KL functions
    explanations: dict[str, str] = field(default_factory=dict)
    detected_by_probes: bool = True

    def explain(self, function: str | None = None) -> str:
        return self.explanations.get(function or "", self.explanation)

    def render(self, function: str | None = None, detail: str = "") -> str:
        text = f"Likely misconception: {self.title} [{self.id}]"
        if detail:
            text += f" ({detail})"
        return text + "\n" + _indent(self.explain(function))


def _indent(text: str, prefix: str = "  ") -> str:
    return "\n".join(prefix + line if line else line for line in text.splitlines())


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


def _k1(lp: float, lr: float) -> float:
    return lp - lr


def _one_minus_r(lp: float, lr: float) -> float:
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
    """1 - r for the whole sequence's ratio (the product of the token ratios), not a per-token mean."""
    out = []
    for row_pi, row_ref in zip(log_probs_policy, log_probs_ref, strict=True):
        log_r = math.fsum(lr - lp for lp, lr in zip(row_pi, row_ref, strict=True))
        out.append(kl_coef * (1.0 - math.exp(min(log_r, math.log(20.0)))) if row_pi else 0.0)
    return out


def _unclipped_backward(log_probs_policy: Rows, log_probs_ref: Rows, kl_coef: float = 0.1) -> list[float]:
    """1 - r with r = exp(log_ref - log_pi) and no clipping: exp(1000) overflows."""
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
    """Treats the log-probs as probabilities: log(pi / pi_ref) computed as log(log_pi / log_ref)."""
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

_K1_FIX = "For the forward KL the per-token term is k1 = log pi - log pi_ref (i.e. log_probs_policy - log_probs_ref)."
_BACKWARD_FIX = (
    "For the backward KL the per-token term is 1 - r with r = pi_ref / pi = exp(log_ref - log_pi) "
    "(clip the log-ratio at log(C), C >= 10, before exponentiating)."
)
_REWARD_NOT_LOSS = (
    "Your penalty is subtracted from the reward, and GRPO follows the reward's policy gradient "
    "E_pi[-penalty * grad log pi] with the penalty held fixed; a term with the right expected value can still push "
    "the policy the wrong way."
)

CATALOGUE: dict[str, Misconception] = {}


def _add(m: Misconception, *, with_fixes: bool = False) -> None:
    """Register ``m``; ``with_fixes`` appends the right per-token term of each KL function to its explanation."""
    assert m.id not in CATALOGUE
    if with_fixes:
        m.explanations.update(
            {FORWARD: m.explanation + " " + _K1_FIX, BACKWARD: m.explanation + " " + _BACKWARD_FIX}
        )
    CATALOGUE[m.id] = m


_add(
    Misconception(
        "swapped_direction",
        "swapped direction (forward and backward KL exchanged)",
        "",
        {FORWARD: (_per_token(_one_minus_r),), BACKWARD: (_per_token(_k1),)},
        explanations={
            FORWARD: (
                "kl_penalty_forward uses 1 - pi_ref/pi, the backward penalty's term: its policy gradient is "
                "-grad KL(pi_ref || pi), so it regularises the other direction (mass-covering instead of "
                "mode-seeking). "
                + _K1_FIX
                + " Its expectation under pi is KL(pi || pi_ref), and as a reward "
                "its policy gradient is exactly -grad KL(pi || pi_ref)."
            ),
            BACKWARD: (
                "kl_penalty_backward uses log pi - log pi_ref, the forward penalty's term, so it regularises "
                "KL(pi || pi_ref). KL(pi_ref || pi) is an expectation under pi_ref; its gradient, importance-"
                "weighted to samples from pi, is -E_pi[r grad log pi] with r = pi_ref/pi. " + _BACKWARD_FIX
            ),
        },
    )
)
_add(
    Misconception(
        "sum_not_mean",
        "sum over tokens instead of the mean",
        "You add the per-token terms up; the contract asks for kl_coef times their MEAN over the completion's tokens "
        "(sum / number of tokens; 0.0 for an empty row). With a sum, a completion twice as long pays twice as much "
        "for the same per-token drift, so the penalty turns into a hidden length penalty and its scale depends on "
        "the generation length.",
        {FORWARD: (_per_token(_k1, reduce="sum"),), BACKWARD: (_per_token(_one_minus_r, reduce="sum"),)},
    )
)
_add(
    Misconception(
        "value_estimator_r_log_r",
        "a value estimator used as a reward penalty (r log r)",
        "",
        {FORWARD: (_per_token(_r_log_r),), BACKWARD: (_per_token(_r_log_r),)},
        explanations={
            BACKWARD: (
                "r log r (r = pi_ref/pi) is the importance-sampled estimate of the VALUE of KL(pi_ref || pi): "
                "E_pi[r log r] = KL(pi_ref || pi). " + _REWARD_NOT_LOSS + " For r log r that gradient points "
                "AWAY from the reference (cosine about -0.97 with the right direction): it anti-regularises. "
                "Derive the term from the gradient instead: grad KL(pi_ref || pi) = -E_pi[r grad log pi], so a "
                "reward penalty with term 1 - r (zero when pi == pi_ref, mean 0 under pi) has exactly the right "
                "policy gradient. " + _BACKWARD_FIX
            ),
            FORWARD: (
                "r log r (r = pi_ref/pi) estimates the value of the backward KL, KL(pi_ref || pi), not "
                "KL(pi || pi_ref), and used as a reward penalty its policy gradient points away from the "
                "reference (it anti-regularises). " + _K1_FIX
            ),
        },
    )
)
_add(
    Misconception(
        "value_estimator_r_log_r_minus_r_plus_1",
        "a value estimator used as a reward penalty (r log r - r + 1)",
        "r log r - r + 1 (r = pi_ref/pi) is a non-negative, unbiased estimate of the VALUE of KL(pi_ref || pi). "
        + _REWARD_NOT_LOSS
        + " Its policy gradient as a reward is essentially unrelated to the KL's gradient "
        "(cosine near 0 on average, sometimes -1). Value estimators belong in a loss, where the gradient flows "
        "through them; a reward needs a term whose REINFORCE gradient is the KL's gradient.",
        {FORWARD: (_per_token(_r_log_r_minus_r_plus_1),), BACKWARD: (_per_token(_r_log_r_minus_r_plus_1),)},
    ),
    with_fixes=True,
)
_add(
    Misconception(
        "value_estimator_k3",
        "a value estimator used as a reward penalty (k3 = r - 1 - log r)",
        "k3 = r - 1 - log r (r = pi_ref/pi) is an unbiased, non-negative estimate of the VALUE of KL(pi || pi_ref), "
        "and it is the right term inside a LOSS (TRL puts it there, where the gradient flows through log pi). "
        + _REWARD_NOT_LOSS
        + " As a reward, k3's policy gradient is grad KL(pi||pi_ref) - grad KL(pi_ref||pi): "
        "wrong, and nearly zero near the reference, so it barely regularises.",
        {FORWARD: (_per_token(_k3),), BACKWARD: (_per_token(_k3),)},
    ),
    with_fixes=True,
)
_add(
    Misconception(
        "inverted_ratio",
        "inverted importance ratio (pi / pi_ref instead of pi_ref / pi)",
        "You use r = pi / pi_ref = exp(log_pi - log_ref). The importance weight that turns an expectation under "
        "pi_ref into one under the sampling policy pi is r = pi_ref / pi = exp(log_ref - log_pi) "
        "(E_pi_ref[g] = E_pi[(pi_ref/pi) g]). With the ratio upside down the penalty pushes the policy away from "
        "the reference (cosine about -0.95 with the right direction). " + _BACKWARD_FIX,
        {BACKWARD: (_per_token(lambda lp, lr: 1.0 - math.exp(min(lp - lr, math.log(20.0)))),)},
    )
)
_add(
    Misconception(
        "wrong_sign",
        "wrong sign",
        "",
        {
            FORWARD: (_per_token(lambda lp, lr: lr - lp),),
            BACKWARD: (_per_token(lambda lp, lr: -_one_minus_r(lp, lr)),),
        },
        explanations={
            FORWARD: (
                "Your per-token term is log pi_ref - log pi, the negative of k1. The pipeline SUBTRACTS the "
                "penalty from the reward, so yours becomes a bonus for moving away from the reference. "
                "Return a penalty (positive in expectation): " + _K1_FIX
            ),
            BACKWARD: (
                "Your per-token term is r - 1, the negative of the right one. The pipeline SUBTRACTS the "
                "penalty from the reward, so yours rewards moving away from the reference. " + _BACKWARD_FIX
            ),
        },
    )
)
_add(
    Misconception(
        "coef_ignored",
        "kl_coef ignored",
        "Your penalty does not change with kl_coef. Multiply the mean per-token term by kl_coef: it is the "
        "regularisation strength set by --kl_coef, the penalty must scale linearly with it, and kl_coef = 0 must "
        "switch the penalty off.",
        {FORWARD: (_per_token(_k1, coef="ignored"),), BACKWARD: (_per_token(_one_minus_r, coef="ignored"),)},
    )
)
_add(
    Misconception(
        "coef_squared",
        "kl_coef applied twice",
        "Your penalty grows like kl_coef squared: the coefficient is multiplied in twice (for example once per token "
        "and again on the mean). Apply it exactly once, so that the penalty is linear in kl_coef.",
        {FORWARD: (_per_token(_k1, coef="squared"),), BACKWARD: (_per_token(_one_minus_r, coef="squared"),)},
    )
)
_add(
    Misconception(
        "biased_k2",
        "biased estimator k2 = (log r)^2 / 2",
        "(log r)^2 / 2 is non-negative and has low variance, but it is a biased estimate of the KL and, used as a "
        "reward, its policy gradient is not the KL's gradient (it is second order in log r, so it almost vanishes "
        "near the reference). A per-token term may be negative; only its expectation has to be non-negative.",
        {FORWARD: (_per_token(_k2),), BACKWARD: (_per_token(_k2),)},
    ),
    with_fixes=True,
)
_add(
    Misconception(
        "biased_abs",
        "biased estimator |log pi - log pi_ref|",
        "The absolute value makes every token's term non-negative, but the KL is only non-negative in EXPECTATION: "
        "tokens that pi under-weights relative to pi_ref must contribute a negative term. |log r| is biased, and as "
        "a reward its policy gradient is not the KL's gradient. Drop the absolute value.",
        {
            FORWARD: (_per_token(lambda lp, lr: abs(lp - lr)),),
            BACKWARD: (_per_token(lambda lp, lr: abs(lp - lr)),),
        },
    ),
    with_fixes=True,
)
_add(
    Misconception(
        "probabilities_not_logs",
        "log-probabilities treated as probabilities",
        "The inputs are LOG-probabilities already (finite numbers <= 0), not probabilities. log(pi / pi_ref) is "
        "simply log_pi - log_ref, and the ratio pi_ref / pi is exp(log_ref - log_pi); dividing the log-probs, taking "
        "their log again, or exponentiating them and subtracting gives different quantities.",
        {
            FORWARD: (_per_token(_log_ratio_of_inputs), _per_token(_prob_difference)),
            BACKWARD: (_per_token(_ratio_of_inputs),),
        },
    ),
    with_fixes=True,
)
_add(
    Misconception(
        "batch_dependent",
        "penalty depends on the rest of the batch",
        "A completion's penalty must depend only on its own tokens, but yours changes with the other completions in "
        "the batch: for example dividing by the longest row's length (the mean over a zero-padded tensor), by the "
        "batch's total number of tokens, or subtracting the batch average. GRPO already normalises rewards within a "
        "group; compute each row on its own: kl_coef * (sum of that row's terms) / (that row's length).",
        {
            FORWARD: (
                _batch_dependent(_k1, "padded"),
                _batch_dependent(_k1, "tokens"),
                _batch_dependent(_k1, "centred"),
            ),
            BACKWARD: (
                _batch_dependent(_one_minus_r, "padded"),
                _batch_dependent(_one_minus_r, "tokens"),
                _batch_dependent(_one_minus_r, "centred"),
            ),
        },
    )
)
_add(
    Misconception(
        "sequence_ratio",
        "one ratio for the whole sequence instead of a per-token mean",
        "You combine the tokens' ratios into one sequence-level ratio (a product, or exp of the summed log-ratios) "
        "and apply the term to that. The contract is kl_coef times the MEAN over tokens of the per-token term, each "
        "token with its own ratio r_t = exp(log_ref_t - log_pi_t). " + _BACKWARD_FIX,
        {BACKWARD: (_sequence_ratio,)},
    )
)
_add(
    Misconception(
        "clip_too_tight",
        "ratio clipped too tightly",
        "You clip the ratio r = pi_ref / pi to a range narrower than the contract allows. Clipping for stability is "
        "fine, but only above 10 (and never from below): where every ratio is <= 10 the penalty's gradient must be "
        "exact, and a clipped ratio has zero gradient. A PPO-style clip to [1 - eps, 1 + eps] belongs in a policy "
        "loss, not in this penalty. Clip in log space: exp(min(log_ref - log_pi, log(20))).",
        {
            BACKWARD: (
                _per_token(lambda lp, lr: 1.0 - _clipped_ratio(lp, lr, 5.0)),
                _per_token(lambda lp, lr: 1.0 - min(max(math.exp(min(lr - lp, 700.0)), 0.8), 1.2)),
            )
        },
        detected_by_probes=False,  # recognised by a dedicated ratio sweep in diagnose_kl
    )
)
_add(
    Misconception(
        "overflow",
        "overflow on extreme log-probabilities",
        "Log-probs go down to -1000, so log_ref - log_pi can be +1000 and exp() of it overflows: math.exp raises "
        "OverflowError, numpy and torch return inf (and inf - inf or 0 * inf give nan). Never exponentiate an "
        "unbounded difference and never form pi = exp(log_pi) to divide probabilities (exp(-1000) is 0.0): clip the "
        "log-ratio first, e.g. r = exp(min(log_ref - log_pi, log(20))).",
        {BACKWARD: (_unclipped_backward,)},
        detected_by_probes=False,
    )
)
_add(
    Misconception(
        "empty_row",
        "empty completion not handled",
        "A completion can have no tokens (an empty row). Its penalty must be 0.0, but the mean of no terms divides by "
        "zero (ZeroDivisionError in Python, nan in numpy/torch). Return 0.0 for an empty row, e.g. "
        "`kl_coef * sum(terms) / len(terms) if terms else 0.0`.",
        {FORWARD: (_empty_row_crash(_k1),), BACKWARD: (_empty_row_crash(_one_minus_r),)},
        detected_by_probes=False,
    )
)
_add(
    Misconception(
        "per_token_output",
        "one value per token instead of one per completion",
        "You return a value for every token (flattened). The pipeline needs ONE penalty per completion: kl_coef "
        "times the mean of that completion's per-token terms, so the output has as many entries as there are rows.",
        {FORWARD: (_per_token_values(_k1),), BACKWARD: (_per_token_values(_one_minus_r),)},
        detected_by_probes=False,
    )
)
_add(
    Misconception(
        "mutates_inputs",
        "inputs modified in place",
        "Your function changes the lists it was given (for example writing results into an input row, sorting it, "
        "or popping from it). The pipeline reuses those lists after your call (the other KL direction, logging, the "
        "next reward), so work on new lists and leave the inputs as they were.",
        {FORWARD: (_mutating(_k1),), BACKWARD: (_mutating(_one_minus_r),), SHAPING: (_shaping_mutating,)},
        detected_by_probes=False,
    )
)
_add(
    Misconception(
        "nondeterministic",
        "non-deterministic output",
        "The same inputs gave different outputs. Rewards must be a deterministic function of their inputs: random "
        "noise (random, numpy.random, torch.rand, dropout) or state kept between calls makes training noisy and "
        "results irreproducible. Remove the randomness, or keep any state out of the function.",
        {FORWARD: (_nondeterministic(_k1),), SHAPING: (_shaping_random,)},
        detected_by_probes=False,
    )
)
_add(
    Misconception(
        "shaping_not_monotone",
        "shaped reward decreases as the score rises",
        "For a fixed completion, a higher sentiment score must never give a lower reward; otherwise GRPO learns to be "
        "LESS positive. Check signs and any transformation of the score (1 - score, a negative factor, a "
        "non-monotone function such as (score - 0.5)^2 or sin). A positive factor that depends only on the text "
        "(e.g. a repetition or length factor) times an increasing function of the score keeps it monotone.",
        {SHAPING: (_shaping_decreasing,)},
        detected_by_probes=False,
    )
)
_add(
    Misconception(
        "shaping_ignores_score",
        "shaped reward does not depend on the score",
        "For some completions your reward is the same whatever the sentiment score (e.g. a fixed value for short or "
        "empty texts, a score multiplied by a factor that can be 0, or a threshold). The reward must rise with the "
        "score for every completion: multiply by a factor that is strictly positive, or add the text-based terms "
        "to a score-based term instead of replacing it.",
        {SHAPING: (_shaping_threshold,)},
        detected_by_probes=False,
    )
)
_add(
    Misconception(
        "shaping_requires_prompts",
        "prompts=None not handled",
        "shaped_reward must work when prompts is None or not given (the pipeline and the grader call it that way). "
        "Use prompts only if they are provided: `if prompts is not None: ...`.",
        {SHAPING: (_shaping_needs_prompts,)},
        detected_by_probes=False,
    )
)
_add(
    Misconception(
        "shaping_empty_completion",
        "empty completion not handled",
        "A completion can be empty (or contain no words). Counting words and dividing by their number then divides "
        "by zero. Give empty completions a finite reward that still rises with the score, e.g. treat their word "
        "count as 1 or give them a fixed positive factor.",
        {SHAPING: (_shaping_divides_by_words,)},
        detected_by_probes=False,
    )
)
_add(
    Misconception(
        "shaping_non_finite",
        "non-finite reward for some scores",
        "Your reward is inf or nan for some input, typically log(score) or 1 / score at score 0, or 1 / (1 - score) "
        "at score 1. Scores span the closed interval [0, 1]: keep the transformation finite there, e.g. "
        "log(score + eps) or exp(k * score).",
        {SHAPING: (_shaping_log,)},
        detected_by_probes=False,
    )
)
_add(
    Misconception(
        "shaping_rewards_repetition",
        "repetition out-earns fluent text",
        "A degenerate repetition of one positive word earns at least as much as a fluent completion with the same "
        "sentiment score, so the policy can hack the reward by repeating 'great'. Scale the score by a factor that "
        "falls with repetition (e.g. the ratio of distinct words) instead of adding a bonus per positive word.",
        {SHAPING: (_shaping_positive_words,)},
        detected_by_probes=False,
    )
)


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
    """Recognise a backward penalty 1 - clip(r, lo, hi) with a range narrower than [0, 10] from the sweep."""
    if len(sweep_output) != len(SWEEP_RATIOS) or not all(math.isfinite(v) for v in sweep_output):
        return None
    implied = [
        1.0 - v / SWEEP_COEF for v in sweep_output
    ]  # the ratio the submission used, if its term is 1 - r
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
