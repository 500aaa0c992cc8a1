"""Distribution cases hidden among unrelated rows of a batch (the direction checks) and the backward penalty's clip
cases (one-token rows at ratios above the exact range), with the cases always tried and the teaching cases."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from hypothesis import strategies as st

from grader.checks.strategies.distributions import DistributionCase
from grader.checks.strategies.logprob_batches import (
    LOGPROB_MIN,
    MAX_EXACT_RATIO,
    LogProbBatch,
    _batch_from_rows,
    kl_coefs,
)
from grader.checks.strategies.value_batches import ROW_KINDS, generated_row

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
