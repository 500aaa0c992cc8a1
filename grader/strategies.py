"""Every hypothesis strategy the grader's property checks draw from, in one place.

Inputs are plain JSON-able data (lists of floats and strings): the submission runs in another process.
Strategies are built so that hypothesis shrinks towards small, readable counterexamples (few rows, short rows,
round numbers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hypothesis import strategies as st

#: The contract's range of log-probabilities: finite, <= 0, possibly as low as this.
LOGPROB_MIN = -1000.0

#: The direction check keeps every ratio pi_ref/pi below this (where the contract requires an exact gradient).
MAX_EXACT_RATIO = 10.0


# ---------------------------------------------------------------------------------------------------------------
# Log-probability batches (the KL penalties' inputs)
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LogProbBatch:
    """A batch of completions: per completion, its tokens' log-probs under pi and under pi_ref."""

    policy: list[list[float]]
    ref: list[list[float]]
    kl_coef: float

    @property
    def args(self) -> tuple[list[list[float]], list[list[float]], float]:
        return self.policy, self.ref, self.kl_coef


def kl_coefs(min_value: float = 0.01, max_value: float = 2.0) -> st.SearchStrategy[float]:
    """Positive regularisation strengths."""
    return st.floats(min_value=min_value, max_value=max_value, allow_nan=False, allow_infinity=False)


def log_probs(low: float = -20.0) -> st.SearchStrategy[float]:
    """One token's log-probability: finite, in [low, 0]."""
    return st.floats(min_value=low, max_value=0.0, allow_nan=False, allow_infinity=False)


def _batch_from_rows(rows: list[list[tuple[float, float]]], kl_coef: float) -> LogProbBatch:
    return LogProbBatch(
        policy=[[p for p, _ in row] for row in rows],
        ref=[[r for _, r in row] for row in rows],
        kl_coef=kl_coef,
    )


@st.composite
def logprob_batches(
    draw: st.DrawFn,
    *,
    min_rows: int = 0,
    max_rows: int = 6,
    min_len: int = 0,
    max_len: int = 6,
    low: float = -20.0,
    identical: bool = False,
    coefs: st.SearchStrategy[float] | None = None,
) -> LogProbBatch:
    """Ragged batches (rows of different lengths, empty rows allowed by default). With ``identical``,
    pi_ref == pi token by token."""
    token = log_probs(low).map(lambda x: (x, x)) if identical else st.tuples(log_probs(low), log_probs(low))
    rows = draw(
        st.lists(st.lists(token, min_size=min_len, max_size=max_len), min_size=min_rows, max_size=max_rows)
    )
    return _batch_from_rows(rows, draw(coefs if coefs is not None else kl_coefs()))


_EXTREME_VALUES = (0.0, LOGPROB_MIN, -999.5, -700.0, -1e-300)


@st.composite
def extreme_logprob_batches(draw: st.DrawFn) -> LogProbBatch:
    """Log-probs at the ends of the contract's range: 0 and -1000 in both orders, anything in between, and long
    rows (a short pattern repeated up to 250 times; the explicit examples add rows of 4096 tokens)."""
    value = st.one_of(st.sampled_from(_EXTREME_VALUES), log_probs(LOGPROB_MIN))
    pattern = st.lists(st.tuples(value, value), min_size=1, max_size=4)
    row = st.tuples(pattern, st.sampled_from((1, 1, 2, 10, 250))).map(lambda pr: pr[0] * pr[1])
    rows = draw(st.lists(row, min_size=1, max_size=4))
    return _batch_from_rows(rows, draw(kl_coefs(0.01, 10.0)))


# Hand-picked extreme batches every run tries first (hypothesis's explicit examples).
EXTREME_EXAMPLES = (
    LogProbBatch(policy=[[0.0]], ref=[[LOGPROB_MIN]], kl_coef=0.1),
    LogProbBatch(policy=[[LOGPROB_MIN]], ref=[[0.0]], kl_coef=0.1),
    LogProbBatch(
        policy=[[0.0, LOGPROB_MIN], [LOGPROB_MIN, 0.0]],
        ref=[[LOGPROB_MIN, 0.0], [0.0, LOGPROB_MIN]],
        kl_coef=1.0,
    ),
    LogProbBatch(
        policy=[[LOGPROB_MIN] * 4096, [0.0] * 4096], ref=[[0.0] * 4096, [LOGPROB_MIN] * 4096], kl_coef=1.0
    ),
)


@dataclass(frozen=True)
class SubsetCase:
    """A batch, a reordered sub-batch of it and a batch of one of its rows (indices into its rows)."""

    batch: LogProbBatch
    subset: list[int]
    single: int


@st.composite
def batch_subsets(draw: st.DrawFn) -> SubsetCase:
    batch = draw(logprob_batches(min_rows=2, max_rows=6, max_len=5))
    n = len(batch.policy)
    subset = draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=n, unique=True))  # in drawn order
    return SubsetCase(batch, subset, draw(st.integers(0, n - 1)))


@dataclass(frozen=True)
class RepeatCase:
    batch: LogProbBatch
    times: int


def repeat_cases() -> st.SearchStrategy[RepeatCase]:
    return st.builds(
        RepeatCase,
        logprob_batches(min_rows=1, max_rows=4, min_len=1, max_len=4),
        st.integers(min_value=2, max_value=4),
    )


@dataclass(frozen=True)
class CoefCase:
    batch: LogProbBatch  # its kl_coef is the "c" of the linearity property
    zero: bool  # also compare against kl_coef = 0


def coef_cases() -> st.SearchStrategy[CoefCase]:
    return st.builds(
        CoefCase,
        logprob_batches(min_rows=1, max_rows=5, max_len=4, coefs=kl_coefs(0.001, 10.0)),
        st.booleans(),
    )


# ---------------------------------------------------------------------------------------------------------------
# Small-vocabulary distributions (sequence length 1), for the exact expectation and gradient checks
# ---------------------------------------------------------------------------------------------------------------


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


def _case_with_ratio(ratio: float, vocab: int = 4, kl_coef: float = 0.5) -> DistributionCase:
    """A case where one rare token is ``ratio`` (just below 10) times likelier under pi_ref than under pi."""
    half = 0.5 * math.log(ratio)
    logits = (-3.0,) + (1.0,) * (vocab - 1)
    shift = (half,) + (-half,) * (vocab - 1)
    return DistributionCase(logits, shift, kl_coef)


#: Cases the direction check always tries first: ratios near the contract's limit of 10, in both directions.
DIRECTION_EXAMPLES = (
    _case_with_ratio(9.5),
    DistributionCase((1.0, -3.0, 1.0), (-1.1, 1.1, -1.1), 0.1),
    DistributionCase((0.0, 1.0, 2.0), (1.1, 0.0, -1.1), 1.0),
)


# ---------------------------------------------------------------------------------------------------------------
# Reward shaping
# ---------------------------------------------------------------------------------------------------------------

POSITIVE_WORDS = ("great", "amazing", "wonderful", "brilliant", "love", "excellent", "perfect", "best")

FLUENT_COMPLETIONS = (
    "The acting was strong and the story kept me interested until the very end.",
    "A warm, funny film with a clever script and a lovely final scene.",
    "I enjoyed the music, the photography and most of the cast; the plot drags a little in the middle.",
    "It is a thoughtful drama that trusts its audience and rewards patience.",
    "The director gets honest performances from everyone, and the ending works.",
)

_REVIEW_WORDS = (
    "the",
    "film",
    "was",
    "great",
    "boring",
    "plot",
    "acting",
    "not",
    "a",
    "movie",
    "loved",
    "it",
    "and",
    "!",
    "...",
    "terrible",
    "fine",
)

completions = st.one_of(
    st.text(max_size=40),
    st.sampled_from(FLUENT_COMPLETIONS),
    st.lists(st.sampled_from(_REVIEW_WORDS), max_size=12).map(" ".join),
)

scores = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@dataclass(frozen=True)
class ShapingBatch:
    scores: list[float]
    completions: list[str]
    prompts: list[str]


@st.composite
def shaping_batches(
    draw: st.DrawFn, *, min_size: int = 0, max_size: int = 8, completion: st.SearchStrategy[str] | None = None
) -> ShapingBatch:
    items = draw(
        st.lists(
            st.tuples(scores, completion if completion is not None else completions, st.text(max_size=20)),
            min_size=min_size,
            max_size=max_size,
        )
    )
    return ShapingBatch([s for s, _, _ in items], [c for _, c, _ in items], [p for _, _, p in items])


def empty_ish_completions() -> st.SearchStrategy[str]:
    """Completions with no words at all."""
    return st.sampled_from(("", " ", "\n", "\t \n", "...", "!", "\u200b"))


@dataclass(frozen=True)
class MonotoneCase:
    completion: str
    scores: list[float]  # ascending, always including 0 and 1


#: The score grid every monotonicity case contains (hypothesis adds a few scores of its own).
SCORE_GRID = tuple(i / 20 for i in range(21))


@st.composite
def monotone_cases(draw: st.DrawFn) -> MonotoneCase:
    extra = draw(st.lists(scores, max_size=5))
    return MonotoneCase(draw(completions), sorted(set(SCORE_GRID) | set(extra)))


@dataclass(frozen=True)
class RepetitionCase:
    word: str
    times: int
    fluent: str
    score: float

    @property
    def degenerate(self) -> str:
        return " ".join([self.word] * self.times)


def repetition_cases() -> st.SearchStrategy[RepetitionCase]:
    return st.builds(
        RepetitionCase,
        st.sampled_from(POSITIVE_WORDS),
        st.integers(3, 16),
        st.sampled_from(FLUENT_COMPLETIONS),
        st.floats(0.5, 1.0),
    )
