"""Log-probability batches, the KL penalties' inputs: ragged batches of (log pi, log pi_ref) rows and a kl_coef, the
extremes of the contract's range, and the cases of the batch properties (subsets, repeats, the coefficient)."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st

#: The contract's range of log-probabilities: finite, <= 0, possibly as low as this.
LOGPROB_MIN = -1000.0

#: The direction check keeps every ratio pi_ref/pi below this (where the contract requires an exact gradient).
MAX_EXACT_RATIO = 10.0


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
