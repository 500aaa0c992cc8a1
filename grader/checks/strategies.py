"""Every hypothesis strategy the grader's property checks draw from, in one place.

Inputs are plain JSON-able data (lists of floats and strings): the submission runs in another process.
Strategies are built so that hypothesis shrinks towards small, readable counterexamples (few rows, short rows,
round numbers).
"""

from __future__ import annotations

import math
import random
import re
import struct
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


# ---------------------------------------------------------------------------------------------------------------
# Ragged batches that look like training, and distribution cases hidden inside them
# ---------------------------------------------------------------------------------------------------------------
#
# A submission sees only the batch it is called with. If the checks' batches had a shape training never has
# (say, N one-token rows whose probabilities sum to 1), code could be right on that shape and wrong elsewhere.
# So the value checks call with ragged batches of every size and range, with a distribution case's tokens spliced
# into them, and the direction checks hide their one-token rows among unrelated rows of the same kind.

#: Longest row of the value checks' batches (training completions are 16 to a few hundred tokens).
MAX_VALUE_ROW = 200

#: log(pi_ref / pi) below this in every token of a row: a ratio <= MAX_EXACT_RATIO, where both penalties' values
#: are fixed by the contract (the backward one may clip larger ratios).
_EXACT_LOG_RATIO = math.log(MAX_EXACT_RATIO) * (1.0 - 1e-9)

#: How a generated row's (log pi, log pi_ref) pairs are drawn; each row has its own scale of log pi, 0.01 to 1000:
#: "near": pi_ref close to pi (training); "wide": independent; "below": pi_ref <= 10 pi, far below allowed;
#: "identical"; "extreme": the ends of the range (0, -0.0, subnormals, -1000).
ROW_KINDS = ("near", "near", "wide", "below", "identical", "extreme")
_ROW_EXTREMES = (0.0, -0.0, -5e-324, -1e-300, -1e-8, LOGPROB_MIN, -999.5, -700.0)


def _clamp(x: float) -> float:
    return min(0.0, max(LOGPROB_MIN, x))


def generated_row(length: int, kind: str, seed: int, *, bounded: bool) -> list[tuple[float, float]]:
    """``length`` (log pi, log pi_ref) pairs of the given kind, from a seeded generator (hypothesis draws the
    length, kind and seed: cheap for rows of hundreds of tokens, and still shrinkable to short rows). With
    ``bounded`` every ratio pi_ref/pi is below MAX_EXACT_RATIO."""
    rng = random.Random(seed)
    scale = 10.0 ** rng.uniform(-2.0, 3.0)
    spread = 10.0 ** rng.uniform(-3.0, 0.5)
    row = []
    for _ in range(length):
        lp = _clamp(-rng.expovariate(1.0) * scale)
        if kind == "near":
            lr = _clamp(lp + rng.gauss(0.0, spread))
        elif kind == "wide":
            lr = _clamp(-rng.expovariate(1.0) * 10.0 ** rng.uniform(-2.0, 3.0))
        elif kind == "below":
            lr = rng.uniform(LOGPROB_MIN, min(0.0, lp + _EXACT_LOG_RATIO))
        elif kind == "identical":
            lr = lp
        else:
            lp, lr = rng.choice(_ROW_EXTREMES), rng.choice(_ROW_EXTREMES)
        if bounded and lr - lp > _EXACT_LOG_RATIO:
            lr = lp + _EXACT_LOG_RATIO
        row.append((lp, lr))
    return row


def _bounded_pair(pair: tuple[float, float]) -> tuple[float, float]:
    lp, lr = pair
    return lp, min(lr, lp + _EXACT_LOG_RATIO)


def _rows(*, bounded: bool, max_len: int = MAX_VALUE_ROW) -> st.SearchStrategy[list[tuple[float, float]]]:
    """A non-empty row: a few hypothesis-drawn tokens (shrink to readable numbers), or a generated row of up to
    ``max_len`` tokens. Empty rows are the contract check's business: a forgotten empty-row guard costs that
    check, not the checks that define the penalty."""
    pair = st.tuples(log_probs(LOGPROB_MIN), log_probs(LOGPROB_MIN))
    drawn = st.lists(pair.map(_bounded_pair) if bounded else pair, min_size=1, max_size=6)
    generated = st.builds(
        lambda length, kind, seed: generated_row(length, kind, seed, bounded=bounded),
        st.integers(1, max_len),
        st.sampled_from(ROW_KINDS),
        st.integers(0, 2**32 - 1),
    )
    return st.one_of(drawn, generated, generated)


def _spliced(
    rows: list[list[tuple[float, float]]], tokens: list[tuple[float, float]], rng: random.Random
) -> list[list[tuple[float, float]]]:
    """Put each token at a random place: a one-token row of its own, or inside an existing row."""
    rows = [list(r) for r in rows]
    for token in tokens:
        if not rows or rng.random() < 0.5:
            rows.insert(rng.randrange(len(rows) + 1), [token])
        else:
            row = rows[rng.randrange(len(rows))]
            row.insert(rng.randrange(len(row) + 1), token)
    return rows


@st.composite
def value_batches(draw: st.DrawFn, *, bounded: bool = False, max_rows: int = 8) -> LogProbBatch:
    """Ragged batches for the value checks: 1 to ``max_rows`` non-empty rows of up to MAX_VALUE_ROW tokens,
    log-probs over the contract's whole range, often with a small-vocabulary distribution case's tokens (as in
    the direction check) spliced in at random places. With ``bounded``, every ratio pi_ref/pi <= 10."""
    if draw(st.integers(0, 3)) == 0:  # a training-shaped batch, one in four
        return draw(training_batches(bounded=bounded))
    rows = draw(st.lists(_rows(bounded=bounded), min_size=1, max_size=max_rows))
    case = draw(st.none() | distributions())
    if case is not None:
        tokens = list(zip(case.log_pi, case.log_ref, strict=True))
        rows = _spliced(rows, tokens, random.Random(draw(st.integers(0, 2**32 - 1))))
    return _batch_from_rows(rows, draw(kl_coefs(0.001, 10.0)))


#: Training's batches: the pipeline hands over float32 log-probs (rounded to float32, then widened), 8 to 64
#: completions of up to 48 tokens. The value checks draw batches like these too, so neither the number format nor
#: the batch's shape tells a check from training.
TRAINING_ROWS = (8, 64)
TRAINING_MAX_LEN = 48


def to_float32(x: float) -> float:
    """``x`` rounded to the nearest float32 (what a float32 tensor's ``tolist()`` gives back)."""
    return struct.unpack("f", struct.pack("f", x))[0]


def training_like_rows(seed: int, *, bounded: bool) -> list[list[tuple[float, float]]]:
    """A training-shaped batch from one seed: 8 to 64 rows of 1 to 48 tokens, log-probs of a language model's
    sampled tokens (mostly -0.01 to -20), pi_ref near pi, every value float32-exact. With ``bounded`` every
    ratio pi_ref/pi is below MAX_EXACT_RATIO."""
    rng = random.Random(seed)
    rows = []
    for _ in range(TRAINING_ROWS[0] + int(rng.random() * (TRAINING_ROWS[1] - TRAINING_ROWS[0] + 1))):
        scale = 10.0 ** (-1.0 + 1.7 * rng.random())
        spread = 10.0 ** (-3.0 + 2.5 * rng.random())
        row = []
        for _ in range(1 + int(rng.random() * TRAINING_MAX_LEN)):
            lp = to_float32(_clamp(math.log(1.0 - rng.random()) * scale))
            lr = _clamp(lp + spread * (2.0 * rng.random() - 1.0))
            if bounded and lr - lp > _EXACT_LOG_RATIO:
                lr = lp + _EXACT_LOG_RATIO * 0.999
            lr = to_float32(lr)
            if bounded and lr - lp > _EXACT_LOG_RATIO:
                lr = lp
            row.append((lp, lr))
        rows.append(row)
    return rows


@st.composite
def training_batches(draw: st.DrawFn, *, bounded: bool = False) -> LogProbBatch:
    """Training-shaped batches (see :func:`training_like_rows`), at a typical kl_coef."""
    rows = training_like_rows(draw(st.integers(0, 2**32 - 1)), bounded=bounded)
    return _batch_from_rows(rows, draw(st.sampled_from((0.01, 0.05, 0.1, 0.2, 0.3, 1.0))))


def fixed_value_batches(function_bounded: bool, count: int = 24, seed: int = 20261204) -> list[LogProbBatch]:
    """The public value checks' batches: ``count`` fixed batches from one seed (plain ``random.Random``, the same on
    every Python), a third of them training-shaped, the rest ragged like :func:`value_batches` with, in every
    other one, a small-vocabulary case's tokens spliced in. Their expected values are recorded, not computed
    (``grader/checks/recorded.json``)."""
    rng = random.Random(seed)
    batches = []
    for i in range(count):
        coef = (0.001, 0.01, 0.1, 0.3, 1.0, 10.0)[i % 6] * (1.0 + rng.random())
        if i % 3 == 0:
            rows = training_like_rows(int(rng.random() * 2**32), bounded=function_bounded)
        else:
            rows = [
                generated_row(
                    1 + int(rng.random() * (MAX_VALUE_ROW if rng.random() < 0.3 else 24)),
                    ROW_KINDS[int(rng.random() * len(ROW_KINDS))],
                    int(rng.random() * 2**32),
                    bounded=function_bounded,
                )
                for _ in range(1 + int(rng.random() * 8))
            ]
            if i % 2 == 0:
                vocab = 2 + int(rng.random() * 7)
                case = DistributionCase(
                    tuple(4.0 * rng.random() - 2.0 for _ in range(vocab)),
                    tuple(2.0 * rng.random() - 1.0 for _ in range(vocab)),
                    coef,
                )
                tokens = list(zip(case.log_pi, case.log_ref, strict=True))
                if function_bounded:
                    tokens = [_bounded_pair(t) for t in tokens]
                rows = _spliced(rows, tokens, random.Random(int(rng.random() * 2**32)))
        batches.append(_batch_from_rows(rows, coef))
    return batches


#: Ratios pi_ref/pi above the contract's exact range at which the backward penalty's clipping is checked: there it
#: may be clipped (at any ratio >= 10) but must never rise with the ratio, nor above its value at ratio 10.
ABOVE_EXACT_LOG_RATIOS = (math.log(10.5), math.log(20.0), 5.0, 10.0, 30.0, 100.0, 300.0, 699.0, 900.0)


@dataclass(frozen=True)
class ClipCase:
    """One-token rows at log(pi_ref/pi) = log 10 (``rows[0]``) and at increasing log-ratios above it
    (``rows[1:]``), hidden among unrelated rows; every row's log pi is ``log_pi``."""

    batch: LogProbBatch
    rows: tuple[int, ...]
    log_ratios: tuple[float, ...]


def clip_case(log_pi: float, kl_coef: float, seed: int, decoys: int = 3) -> ClipCase:
    """A :class:`ClipCase` with log pi = ``log_pi`` (<= -900, so that every ratio fits under log pi_ref <= 0)."""
    ratios = (math.log(MAX_EXACT_RATIO), *ABOVE_EXACT_LOG_RATIOS)
    items: list[tuple[int, list[tuple[float, float]]]] = [
        (k, [(log_pi, min(0.0, log_pi + lr))]) for k, lr in enumerate(ratios)
    ]
    items += [(-1, row) for row in decoy_rows(decoys, seed)]
    random.Random(seed).shuffle(items)
    rows = [0] * len(ratios)
    for i, (k, _) in enumerate(items):
        if k >= 0:
            rows[k] = i
    return ClipCase(_batch_from_rows([row for _, row in items], kl_coef), tuple(rows), ratios)


@st.composite
def clip_cases(draw: st.DrawFn) -> ClipCase:
    """Clip cases at a random log pi in [-1000, -900] and coefficient."""
    log_pi = draw(st.floats(LOGPROB_MIN, -900.0, allow_nan=False))
    return clip_case(
        log_pi, draw(kl_coefs(0.01, 5.0)), draw(st.integers(0, 2**32 - 1)), draw(st.integers(0, 6))
    )


@dataclass(frozen=True)
class HiddenCase:
    """A distribution case's one-token rows (one per vocabulary entry) hidden among unrelated rows of a batch:
    ``batch.policy[rows[a]] == [case.log_pi[a]]``. Checks read back only those rows."""

    case: DistributionCase
    batch: LogProbBatch
    rows: tuple[int, ...]

    @property
    def decoys(self) -> int:
        return len(self.batch.policy) - len(self.rows)


def hide(case: DistributionCase, decoys: list[list[tuple[float, float]]], seed: int) -> HiddenCase:
    """Shuffle the case's one-token rows and the decoy rows together (deterministically, by ``seed``)."""
    items: list[tuple[int, list[tuple[float, float]]]] = [
        (a, [(lp, lr)]) for a, (lp, lr) in enumerate(zip(case.log_pi, case.log_ref, strict=True))
    ]
    items += [(-1, row) for row in decoys]
    random.Random(seed).shuffle(items)
    rows = [0] * len(case.log_pi)
    for i, (a, _) in enumerate(items):
        if a >= 0:
            rows[a] = i
    return HiddenCase(case, _batch_from_rows([row for _, row in items], case.kl_coef), tuple(rows))


def decoy_rows(count: int, seed: int, max_len: int = 48) -> list[list[tuple[float, float]]]:
    """``count`` unrelated non-empty rows of 1 to ``max_len`` tokens, all from one seed, ratios <= 10 (so that no
    decoy can overflow a correct unclipped penalty)."""
    rng = random.Random(seed)
    return [
        generated_row(rng.randint(1, max_len), rng.choice(ROW_KINDS), rng.getrandbits(32), bounded=True)
        for _ in range(count)
    ]


@st.composite
def hidden(draw: st.DrawFn, cases: st.SearchStrategy[DistributionCase], max_decoys: int = 4) -> HiddenCase:
    """A case from ``cases`` hidden among 0 to ``max_decoys`` unrelated rows (two draws: the decoys do not slow
    hypothesis down, and a failure that does not need them shrinks to none)."""
    case = draw(cases)
    count = draw(st.integers(0, max_decoys))
    seed = draw(st.integers(0, 2**32 - 1))
    return hide(case, decoy_rows(count, seed), seed)


#: Batches the value checks always try: training-sized completions (8 of 16 to 24 tokens), and long rows reaching
#: far below -30 (every ratio <= 10, so both penalties' values are fixed).
VALUE_EXAMPLES = (
    _batch_from_rows([generated_row(16 + i, "near", 10 + i, bounded=True) for i in range(8)], 0.1),
    _batch_from_rows(
        [
            generated_row(n, kind, 20 + n, bounded=True)
            for n, kind in ((200, "below"), (40, "near"), (17, "wide"))
        ],
        0.3,
    ),
)


def _case_with_ratio(ratio: float, vocab: int = 4, kl_coef: float = 0.5) -> DistributionCase:
    """A case where one rare token is ``ratio`` (just below 10) times likelier under pi_ref than under pi."""
    half = 0.5 * math.log(ratio)
    logits = (-3.0,) + (1.0,) * (vocab - 1)
    shift = (half,) + (-half,) * (vocab - 1)
    return DistributionCase(logits, shift, kl_coef)


#: Unrelated rows the hand-picked cases are hidden among: a training-like completion and a short one.
_EXAMPLE_DECOYS = [generated_row(24, "near", 1, bounded=True), generated_row(3, "wide", 2, bounded=True)]

#: Cases the direction check always tries: ratios near the contract's limit of 10, in both directions.
DIRECTION_EXAMPLES = tuple(
    hide(case, _EXAMPLE_DECOYS, seed)
    for seed, case in enumerate(
        (
            _case_with_ratio(9.5),
            DistributionCase((1.0, -3.0, 1.0), (-1.1, 1.1, -1.1), 0.1),
            DistributionCase((0.0, 1.0, 2.0), (1.1, 0.0, -1.1), 1.0),
        )
    )
)


def shown_in_order(case: DistributionCase) -> HiddenCase:
    """``case`` as one one-token row per vocabulary entry, in vocabulary order (no decoys): the readable form."""
    rows = [[(lp, lr)] for lp, lr in zip(case.log_pi, case.log_ref, strict=True)]
    return HiddenCase(case, _batch_from_rows(rows, case.kl_coef), tuple(range(len(rows))))


#: Cases a failed direction check is shown on when the submission fails one of them too: four tokens, no two alike,
#: ratios 0.3 to 4, so the gradient has three free directions and a wrong term's *shape* shows in the numbers (the
#: search shrinks towards symmetric cases, where every gradient points along one line and a cosine says nothing).
TEACHING_DIRECTION_CASES = (
    shown_in_order(DistributionCase((0.0, 1.0, -0.5, 0.3), (0.8, -0.6, 0.2, -0.3), 1.0)),
    shown_in_order(DistributionCase((0.5, -1.0, 0.0, 1.2), (-0.4, 0.9, 0.3, -0.5), 0.5)),
)


# ---------------------------------------------------------------------------------------------------------------
# Reward shaping
# ---------------------------------------------------------------------------------------------------------------

#: Adjectives the fluent texts praise with, and the words a hacked policy repeats: a shaping cannot tell fluent text
#: from a repetition by its vocabulary, since both draw from the same words.
PRAISE_WORDS = (
    "great",
    "amazing",
    "wonderful",
    "brilliant",
    "excellent",
    "perfect",
    "superb",
    "lovely",
    "fantastic",
    "stunning",
    "beautiful",
    "charming",
    "delightful",
    "gripping",
    "moving",
    "clever",
    "funny",
    "warm",
    "memorable",
    "touching",
    "thoughtful",
    "vivid",
    "tender",
    "bold",
    "sharp",
    "honest",
    "gentle",
    "haunting",
    "fresh",
    "rich",
)
FILM_NOUNS = (
    "acting",
    "story",
    "script",
    "music",
    "score",
    "cast",
    "ending",
    "photography",
    "dialogue",
    "soundtrack",
    "direction",
    "pacing",
    "plot",
    "villain",
    "hero",
    "humour",
    "editing",
    "casting",
    "scenery",
    "finale",
    "heroine",
    "performance",
    "premise",
    "setting",
    "twist",
    "opening",
    "romance",
    "lead",
)
_STATES = ("interested", "hooked", "curious", "smiling", "guessing", "engaged", "moved", "happy")
_PAST_VERBS = ("loved", "enjoyed", "admired", "adored", "liked", "appreciated", "relished", "cherished")
_VERBS = ("love", "enjoy", "remember", "treasure", "savour", "admire")

#: Sentence patterns of the fluent texts: {A} an adjective, {N} a noun, {S} a state, {V} a past and {P} a present
#: verb. A text uses each pattern at most once and each drawn word at most once.
_SENTENCES = (
    "the {N} was {A} and the {N} felt {A}.",
    "I {V} the {N}, but the {A} {N} stayed with me.",
    "it is a film with {A} {N}.",
    "what {A} {N}!",
    "{A} {N}, {A} {N} and {A} {N}.",
    "the {N} kept me {S} until the very end.",
    "you will {P} every minute of it.",
    "there is {A} {N} in the middle, and it works.",
    "even the {N} is {A}.",
    "my friends {V} it as much as I did.",
    "that {A} {N} alone is worth the ticket.",
    "this is the most {A} {N} I have seen in years.",
    "{A}, {A} and {A}: this {N} has it all.",
    "nothing about its {N} feels forced.",
    "clearly the director {V} this {N}.",
    "so {A}!",
    "we laughed at the {N} and {V} the {N}.",
    "her {N} is {A}, his {N} even more {A}.",
)

_SLOTS = {"A": PRAISE_WORDS, "N": FILM_NOUNS, "S": _STATES, "V": _PAST_VERBS, "P": _VERBS}
_SLOT = re.compile(r"\{([ANSVP])\}")
_TEXT_WORD = re.compile(r"[a-z']+")

#: Word counts of the repetition cases (degenerate and fluent alike): GPT-2 completions of 24-64 tokens.
MIN_REPEATS = 3
MAX_TEXT_WORDS = 40

#: Endings of a completion's last word: generation stops anywhere, so a completion may end in any of these.
ENDINGS = ("", ".", "!", ",", "...", "?")


def text_words(text: str) -> list[str]:
    """The lowercase words of ``text`` (what the fluent texts keep free of repeated word pairs)."""
    return _TEXT_WORD.findall(text.lower())


def _with_case(text: str, capitalised: bool) -> str:
    return (text[:1].upper() if capitalised else text[:1].lower()) + text[1:]


def _with_ending(text: str, ending: str) -> str:
    return text.rstrip(".,!?;:") + ending


def _sentence(pattern: str, rng: random.Random, pools: dict[str, list[str]]) -> str | None:
    words: list[str] = []
    for key in _SLOT.findall(pattern):
        if not pools[key]:
            return None
        words.append(pools[key].pop(rng.randrange(len(pools[key]))))
    it = iter(words)
    return _with_case(_SLOT.sub(lambda _: next(it), pattern), True)


def _fluent_attempt(words: int, rng: random.Random) -> str | None:
    """Whole sentences that add up to ``words`` exactly, or (half the time, and where they cannot) sentences cut
    after ``words`` words: generation stops mid-sentence as often as not."""
    pools = {key: list(values) for key, values in _SLOTS.items()}
    patterns = list(_SENTENCES)
    rng.shuffle(patterns)
    whole = rng.random() >= 0.5
    tokens: list[str] = []
    for pattern in patterns:
        if len(tokens) >= words:
            break
        sentence = _sentence(pattern, rng, pools)
        if sentence is None or (whole and len(tokens) + len(sentence.split()) > words):
            continue
        tokens += sentence.split()
    if len(tokens) < words:
        return None
    text = " ".join(tokens[:words])
    lowered = text_words(text)
    pairs = list(zip(lowered, lowered[1:], strict=False))
    if len(set(pairs)) < len(pairs) or len(set(lowered)) < 0.6 * len(lowered):
        return None
    return text


def fluent_text(words: int, seed: int, *, capitalised: bool = True, ending: str = ".") -> str:
    """A fluent review of exactly ``words`` whitespace-separated words (at least 1, at most MAX_TEXT_WORDS),
    composed from ``_SENTENCES`` by ``seed``: no word pair occurs twice in it (so no reasonable repetition
    penalty can punish it), at least 60% of its words are distinct, and its last word ends with ``ending``."""
    if not 1 <= words <= MAX_TEXT_WORDS:
        raise ValueError(f"a fluent text has 1 to {MAX_TEXT_WORDS} words, not {words}")
    rng = random.Random(seed)
    for _ in range(10_000):
        text = _fluent_attempt(words, rng)
        if text is not None:
            return _with_ending(_with_case(text, capitalised), ending)
    raise AssertionError(f"no fluent text of {words} words for seed {seed}")  # pragma: no cover


@st.composite
def fluent_texts(draw: st.DrawFn, min_words: int = 1, max_words: int = 24) -> str:
    return fluent_text(
        draw(st.integers(min_words, max_words)),
        draw(st.integers(0, 2**32 - 1)),
        capitalised=draw(st.booleans()),
        ending=draw(st.sampled_from(ENDINGS)),
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
    fluent_texts(),
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


#: What a hacked policy repeats, by the number of distinct words in the repeated unit: one word; a short phrase;
#: a cycle of 5-8 different words (a list of praise that a "enough distinct words" rule would pay in full); a whole
#: sentence (the loop of a degenerate language model).
UNIT_KINDS = ("word", "phrase", "cycle", "sentence")
#: Between copies of the unit: what a model emits while it loops.
SEPARATORS = (" ", ", ", ". ", "! ", "... ")


@dataclass(frozen=True)
class RepetitionCase:
    """A degenerate completion (``unit`` written ``times`` >= MIN_REPEATS times, the copies joined by
    ``separator``, every copy written the same way, so that splitting on spaces finds the repetition; only the
    last word's ``ending`` may differ) and a fluent one with the same number of words, the same capitalisation and
    the same ending, at the same ``score``; the fluent one again at a ``lower`` score."""

    unit: str
    times: int
    separator: str
    capitalised: bool
    ending: str
    fluent: str
    score: float
    lower: float

    @property
    def degenerate(self) -> str:
        unit = _with_case(self.unit, self.capitalised)
        return _with_ending(" ".join([unit + self.separator.rstrip()] * self.times), self.ending)


#: Single words a hacked policy repeats besides the fluent texts' own adjectives and nouns.
_FILLER_WORDS = ("the", "movie", "film", "love", "best", "so", "and", "very")


@st.composite
def repeated_units(draw: st.DrawFn) -> str:
    """One unit a hacked policy repeats, from the fluent texts' own vocabulary or a slice of a fluent text."""
    kind = draw(st.sampled_from(UNIT_KINDS))
    vocabulary = PRAISE_WORDS + FILM_NOUNS + _FILLER_WORDS
    if kind == "word":
        return draw(st.sampled_from(vocabulary))
    if kind == "cycle":  # 5-8 different words, praise alone or mixed with nouns
        pool = draw(st.sampled_from((PRAISE_WORDS, PRAISE_WORDS + FILM_NOUNS)))
        words = draw(st.lists(st.sampled_from(pool), min_size=5, max_size=8, unique=True))
        return draw(st.sampled_from((" ", ", "))).join(words)
    length = draw(st.integers(2, 4) if kind == "phrase" else st.integers(5, 12))
    if kind == "phrase" and draw(st.booleans()):
        return " ".join(
            draw(st.lists(st.sampled_from(vocabulary), min_size=length, max_size=length, unique=True))
        )
    source = fluent_text(MAX_TEXT_WORDS, draw(st.integers(0, 2**32 - 1)), capitalised=False, ending="")
    words = source.split()
    start = draw(st.integers(0, len(words) - length))
    return " ".join(words[start : start + length]).strip(".,!?;:")


@st.composite
def repetition_cases(draw: st.DrawFn) -> RepetitionCase:
    unit = draw(repeated_units())
    times = draw(st.integers(MIN_REPEATS, max(MIN_REPEATS, MAX_TEXT_WORDS // len(unit.split()))))
    separator = draw(st.sampled_from(SEPARATORS))
    capitalised = draw(st.booleans())
    ending = draw(st.sampled_from(ENDINGS))
    case = RepetitionCase(unit, times, separator, capitalised, ending, "", 0.0, 0.0)
    words = len(case.degenerate.split())
    fluent = fluent_text(words, draw(st.integers(0, 2**32 - 1)), capitalised=capitalised, ending=ending)
    # Scores of a hacked policy: high, but below 1 (where a shaping such as log(score) * factor is 0 for any text).
    score = draw(st.floats(0.5, 0.95))
    return RepetitionCase(
        unit, times, separator, capitalised, ending, fluent, score, score * draw(st.floats(0.1, 0.8))
    )


# ---------------------------------------------------------------------------------------------------------------
# Exercise 2's other shaping goals (grader.checks.goals): length, contrast, rhyme
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LengthCase:
    """Two fluent completions at the same ``score`` with the same ending, ``long`` at least 4 words longer."""

    short: str
    long: str
    score: float
    lower: float


@st.composite
def length_cases(draw: st.DrawFn) -> LengthCase:
    n = draw(st.integers(3, 20))
    m = draw(st.integers(n + 4, min(MAX_TEXT_WORDS, n + 20)))
    ending = draw(st.sampled_from(ENDINGS))
    capitalised = draw(st.booleans())
    seed = draw(st.integers(0, 2**32 - 1))
    score = draw(st.floats(0.05, 1.0))
    return LengthCase(
        fluent_text(n, seed, capitalised=capitalised, ending=ending),
        fluent_text(m, seed + 1, capitalised=capitalised, ending=ending),
        score,
        draw(st.floats(0.0, score - 0.05)),
    )


@dataclass(frozen=True)
class ContrastCase:
    """One fluent completion at three equally spaced scores at or above neutral (0.5)."""

    text: str
    scores: tuple[float, float, float]


@st.composite
def contrast_cases(draw: st.DrawFn) -> ContrastCase:
    step = draw(st.floats(0.02, 0.25))
    start = draw(st.floats(0.5, 1.0 - 2 * step))
    text = draw(fluent_texts(3, 24))
    return ContrastCase(text, (start, start + step, start + 2 * step))


#: Word pairs that rhyme by their last three letters, and words that rhyme with none of them (their last two
#: letters differ from every rhyming word's).
RHYMES = (
    ("night", "light"),
    ("bright", "delight"),
    ("heart", "start"),
    ("mind", "kind"),
    ("song", "long"),
    ("grace", "place"),
    ("dream", "gleam"),
    ("wonder", "thunder"),
)
NON_RHYMES = ("table", "music", "window", "garden", "pencil", "orbit", "salad", "velvet")


@dataclass(frozen=True)
class RhymeCase:
    """Two sentences ending in ``pair`` (``rhyming``) or in ``pair[0]`` and ``other`` (``plain``): the same words
    otherwise, the same word count, at the same ``score``."""

    first: str
    second: str
    pair: tuple[str, str]
    other: str
    score: float
    lower: float

    @property
    def rhyming(self) -> str:
        return f"{self.first} {self.pair[0]}. {self.second} {self.pair[1]}."

    @property
    def plain(self) -> str:
        return f"{self.first} {self.pair[0]}. {self.second} {self.other}."


def _one_sentence(text: str) -> str:
    """``text`` as one sentence: its inner sentence ends become commas (so only the rhyme words end sentences)."""
    words = re.sub(r"[.!?]+(\s)", r",\1", text).split()
    return " ".join([words[0], *(w if w == "I" else w.lower() for w in words[1:])])


@st.composite
def rhyme_cases(draw: st.DrawFn) -> RhymeCase:
    seed = draw(st.integers(0, 2**32 - 1))
    score = draw(st.floats(0.05, 1.0))
    return RhymeCase(
        _one_sentence(fluent_text(draw(st.integers(2, 12)), seed, ending="")),
        _one_sentence(fluent_text(draw(st.integers(2, 12)), seed + 1, ending="")),
        draw(st.sampled_from(RHYMES)),
        draw(st.sampled_from(NON_RHYMES)),
        score,
        draw(st.floats(0.0, score - 0.05)),
    )
