"""Wrong implementations of the student functions: each a plausible student solution with one mistake.

The catalogue (:mod:`.catalogue`) files them under the misconception they show; the diagnosis (:mod:`.diagnose`)
compares a submission's output with theirs; the grader's own tests grade them as mutants of the reference.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from typing import Any

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


# The contract's per-token terms: most mutants are the right term with one mistake around it.
def forward_term(lp: float, lr: float) -> float:
    return lp - lr


def backward_term(lp: float, lr: float) -> float:
    return 1.0 - clipped_ratio(lp, lr)


def r_log_r(lp: float, lr: float) -> float:
    return clipped_ratio(lp, lr) * min(lr - lp, math.log(20.0))


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
