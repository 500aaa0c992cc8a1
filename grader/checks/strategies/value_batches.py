"""Ragged batches that look like training, for the value checks: generated rows of every kind and range,
training-shaped float32 batches, the fixed batches of the public value check and the batches always tried."""

from __future__ import annotations

import math
import random
import struct

from hypothesis import strategies as st

from grader.checks.strategies.distributions import DistributionCase, distributions
from grader.checks.strategies.logprob_batches import (
    LOGPROB_MIN,
    MAX_EXACT_RATIO,
    LogProbBatch,
    _batch_from_rows,
    kl_coefs,
    log_probs,
)

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


#: The presets' own batch shapes (exercise/presets.py): prompts_per_step x num_generations completions of at most
#: max_completion_length tokens (tiny: 16 of <= 24, gpt2: 64 of <= 48). Measured by a red-team audit: code that
#: zeroed the penalty on ">= 8 rows, all <= 24 tokens, float32" batches (the tiny preset's, the one graded on CPU)
#: passed every value check, since the batches above have all rows that short once in 2,000.
PRESET_SHAPES = ((16, 24), (64, 48))


def preset_like_rows(
    seed: int, *, bounded: bool, shape: tuple[int, int] | None = None
) -> list[list[tuple[float, float]]]:
    """A batch of one preset's exact shape (``shape``, else one of :data:`PRESET_SHAPES` drawn) from one seed: its
    number of completions, each of its maximum length (cut off there, as many of training's are) or shorter,
    log-probs drawn as :func:`training_like_rows`'s."""
    rng = random.Random(seed)
    count, longest = shape or PRESET_SHAPES[int(rng.random() * len(PRESET_SHAPES))]
    pool = [token for row in training_like_rows(seed, bounded=bounded) for token in row]
    while len(pool) < count * longest:
        pool += pool
    rows, at = [], 0
    for _ in range(count):
        length = longest if rng.random() < 0.5 else 1 + int(rng.random() * longest)
        rows.append(pool[at : at + length])
        at += length
    return rows


@st.composite
def training_batches(draw: st.DrawFn, *, bounded: bool = False) -> LogProbBatch:
    """Training-shaped batches (see :func:`training_like_rows`; half of them of a preset's exact shape,
    :func:`preset_like_rows`), at a typical kl_coef."""
    seed = draw(st.integers(0, 2**32 - 1))
    shaped = preset_like_rows if draw(st.booleans()) else training_like_rows
    rows = shaped(seed, bounded=bounded)
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


#: Batches the value checks always try: training-sized completions (8 of 16 to 24 tokens), and long rows reaching
#: far below -30 (every ratio <= 10, so both penalties' values are fixed).
VALUE_EXAMPLES = (
    _batch_from_rows([generated_row(16 + i, "near", 10 + i, bounded=True) for i in range(8)], 0.1),
    # each preset's exact batch shape, float32 (the hidden draws have them too; these make sure every grade does)
    *(
        _batch_from_rows(preset_like_rows(7 + i, bounded=True, shape=shape), 0.3)
        for i, shape in enumerate(PRESET_SHAPES)
    ),
    # ratios far above 10 inside longer rows, beside exact tokens: what a drifting policy's batches hold (a clip is
    # allowed there, a sign change is not)
    _batch_from_rows(
        [
            [(-6.0, -2.0), (-0.4, -0.5), (-2.0, -2.3)],
            [(-1.2, -1.0), (-9.0, -3.5), (-0.1, -0.1), (-4.0, -4.4), (-7.5, -1.5)],
            [(-3.0, -2.5), (-0.7, -0.9)],
        ],
        0.2,
    ),
    _batch_from_rows(
        [
            generated_row(n, kind, 20 + n, bounded=True)
            for n, kind in ((200, "below"), (40, "near"), (17, "wide"))
        ],
        0.3,
    ),
)
