"""Small-vocabulary distributions (sequence length 1), for the exact expectation and gradient checks."""

from __future__ import annotations

import math
from dataclasses import dataclass

from hypothesis import strategies as st

from grader.checks.strategies.logprob_batches import MAX_EXACT_RATIO, kl_coefs


def _log_softmax(logits: tuple[float, ...]) -> list[float]:
    top = max(logits)
    lse = top + math.log(math.fsum(math.exp(x - top) for x in logits))
    return [min(0.0, x - lse) for x in logits]


@dataclass(frozen=True)
class DistributionCase:
    """A softmax policy pi over a vocabulary of V tokens and a reference pi_ref = softmax(logits + shift).

    Every pairwise shift difference bounds the log-ratio: |log(pi_ref/pi)| <= max(shift) - min(shift).
    """

    logits: tuple[float, ...]
    shift: tuple[float, ...]
    kl_coef: float

    @property
    def log_pi(self) -> list[float]:
        return _log_softmax(self.logits)

    @property
    def log_ref(self) -> list[float]:
        return _log_softmax(tuple(x + d for x, d in zip(self.logits, self.shift, strict=True)))

    @property
    def pi(self) -> list[float]:
        return [math.exp(x) for x in self.log_pi]

    @property
    def ref(self) -> list[float]:
        return [math.exp(x) for x in self.log_ref]

    @property
    def args(self) -> tuple[list[list[float]], list[list[float]], float]:
        """The call that enumerates the vocabulary: one completion of one token per vocabulary entry."""
        return [[x] for x in self.log_pi], [[x] for x in self.log_ref], self.kl_coef


@st.composite
def distributions(
    draw: st.DrawFn, *, min_vocab: int = 2, max_vocab: int = 8, max_ratio: float | None = MAX_EXACT_RATIO
) -> DistributionCase:
    """(pi, pi_ref, kl_coef) over a small vocabulary. With ``max_ratio``, every ratio pi_ref/pi and pi/pi_ref is
    at most that (so a penalty that clips the ratio at ``max_ratio`` or above must be exact); without it, the
    two distributions can be far apart."""
    vocab = draw(st.integers(min_value=min_vocab, max_value=max_vocab))
    spread = 0.5 * math.log(max_ratio) * (1.0 - 1e-9) if max_ratio is not None else 4.0
    logits = draw(st.lists(st.floats(-3.0, 3.0), min_size=vocab, max_size=vocab))
    shift = draw(st.lists(st.floats(-spread, spread), min_size=vocab, max_size=vocab))
    return DistributionCase(tuple(logits), tuple(shift), draw(kl_coefs()))
