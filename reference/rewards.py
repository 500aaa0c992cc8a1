"""Reference solution for ``exercise/rewards.py`` (instructors only; never installed, never handed out).

Same function names and signatures as the student stubs. See ``../shared/DESIGN.md`` (the student contract)
for why these particular per-token terms are the right ones: a KL *penalty subtracted from a reward* is judged
by the policy gradient it induces, not only by its expected value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

# The backward penalty uses the ratio r = pi_ref / pi. Clipping it keeps one very unlikely sampled token from
# dominating a batch; the contract only requires the gradient to be exact where every ratio is <= 10.
MAX_RATIO = 20.0
_MAX_LOG_RATIO = math.log(MAX_RATIO)

# Shaping: completions shorter than this many words earn proportionally less (blocks the "say nothing" hack).
MIN_WORDS = 5
_WORD = re.compile(r"[a-z']+")


def _mean_per_completion(terms_per_row: list[list[float]], kl_coef: float) -> list[float]:
    """kl_coef times the mean of each row's per-token terms; an empty row (no tokens) costs nothing."""
    return [kl_coef * math.fsum(row) / len(row) if row else 0.0 for row in terms_per_row]


def kl_penalty_forward(
    log_probs_policy: list[list[float]], log_probs_ref: list[list[float]], kl_coef: float = 0.1
) -> list[float]:
    """Penalty for KL(pi || pi_ref): per token k1 = log pi - log pi_ref.

    E_pi[k1] is the KL itself, and as a reward its policy gradient is exactly grad KL(pi || pi_ref).
    """
    terms = [
        [lp - lr for lp, lr in zip(row_pi, row_ref, strict=True)]
        for row_pi, row_ref in zip(log_probs_policy, log_probs_ref, strict=True)
    ]
    return _mean_per_completion(terms, kl_coef)


def kl_penalty_backward(
    log_probs_policy: list[list[float]], log_probs_ref: list[list[float]], kl_coef: float = 0.1
) -> list[float]:
    """Penalty for KL(pi_ref || pi): per token 1 - r with r = pi_ref / pi (clipped at MAX_RATIO).

    grad KL(pi_ref || pi) = -E_pi[r grad log pi]; a reward R has policy gradient E_pi[R grad log pi], so the
    penalty's term must be r plus anything with zero mean under pi. 1 - r is the choice that is zero when
    pi == pi_ref and has expectation 0 under pi. The ratio is formed in log space so nothing overflows.
    """
    terms = [
        [1.0 - math.exp(min(lr - lp, _MAX_LOG_RATIO)) for lp, lr in zip(row_pi, row_ref, strict=True)]
        for row_pi, row_ref in zip(log_probs_policy, log_probs_ref, strict=True)
    ]
    return _mean_per_completion(terms, kl_coef)


def shaped_reward(
    scores: list[float], completions: list[str], prompts: list[str] | None = None
) -> list[float]:
    """Sentiment times a fluency factor in (0, 1]: repeated words and very short completions earn less.

    ``score * distinct_word_ratio * length_factor``: still increasing in the score for any fixed completion
    (the factor is always positive), but "great great great great" keeps a quarter of its sentiment, so
    the policy gains nothing by collapsing onto one positive word.
    """
    return [score * _fluency(text) for score, text in zip(scores, completions, strict=True)]


def _fluency(text: str) -> float:
    words: Sequence[str] = _WORD.findall(text.lower())
    if not words:
        return 1.0 / (MIN_WORDS + 1)
    distinct_ratio = len(set(words)) / len(words)
    length_factor = min(1.0, (len(words) + 1) / (MIN_WORDS + 1))
    return distinct_ratio * length_factor
