"""The cheapest wrong code a student could hand in to earn points without the mathematics (issue 8's table):
each is a ``{function name: callable}`` mapping for :class:`tests.support.fake_submission.FakeSubmission`. They live
here, not in ``grader.checks.misconceptions``: they are attacks on the grader, not mistakes to explain."""

from __future__ import annotations

import math
import struct

from grader.checks.key.wrong import flips_above_ten as _penalty_above_ten  # the catalogued mistake (issue 17)
from tests.support.fake_submission import reference_module

_REF = reference_module()
FORWARD, BACKWARD, SHAPING = "kl_penalty_forward", "kl_penalty_backward", "shaped_reward"


def zero_penalty(log_probs_policy, log_probs_ref, kl_coef=0.1):
    return [0.0 for _ in log_probs_policy]


def identity_shaping(scores, completions, prompts=None):
    return list(scores)


def _k1_mean(log_probs_policy, log_probs_ref, kl_coef=0.1):
    return _REF.kl_penalty_forward(log_probs_policy, log_probs_ref, kl_coef)


def _looks_like_the_direction_test(log_probs_policy) -> bool:
    """N rows of exactly one token whose probabilities sum to 1: the old direction check's batch shape."""
    return (
        bool(log_probs_policy)
        and all(len(row) == 1 for row in log_probs_policy)
        and math.isclose(math.fsum(math.exp(row[0]) for row in log_probs_policy), 1.0, rel_tol=1e-6)
    )


def _shape_detector(correct):
    def penalty(log_probs_policy, log_probs_ref, kl_coef=0.1):
        if _looks_like_the_direction_test(log_probs_policy):
            return correct(log_probs_policy, log_probs_ref, kl_coef)
        return [0.0 for _ in log_probs_policy]

    return penalty


def _truncating(term):
    """Right on the first 16 tokens of a row, with every token below -30 dropped: what a grader that only ever
    sends short, mild rows cannot tell from the real thing."""

    def penalty(log_probs_policy, log_probs_ref, kl_coef=0.1):
        out = []
        for row_pi, row_ref in zip(log_probs_policy, log_probs_ref, strict=True):
            kept = [(p, r) for p, r in list(zip(row_pi, row_ref, strict=True))[:16] if p >= -30 and r >= -30]
            out.append(kl_coef * math.fsum(term(p, r) for p, r in kept) / len(kept) if kept else 0.0)
        return out

    return penalty


def _one_minus_r(p, r):
    return 1.0 - math.exp(min(r - p, math.log(20.0)))


def _looks_like_training(log_probs_policy) -> bool:
    """At least 8 rows and 64 tokens, every log-prob float32-exact: training's batches (issue 17)."""
    tokens = [x for row in log_probs_policy for x in row]
    return (
        len(log_probs_policy) >= 8
        and len(tokens) >= 64
        and all(struct.unpack("f", struct.pack("f", x))[0] == x for x in tokens)
    )


def _zero_in_training(correct, looks_like_training=_looks_like_training):
    def penalty(log_probs_policy, log_probs_ref, kl_coef=0.1):
        if looks_like_training(log_probs_policy):
            return [0.0 for _ in log_probs_policy]
        return correct(log_probs_policy, log_probs_ref, kl_coef)

    return penalty


def _looks_like_the_tiny_preset(log_probs_policy) -> bool:
    """At least 8 rows, every one at most 24 tokens, float32-exact: the tiny preset's batches (16 completions of
    at most 24 tokens), which the value checks' training-shaped batches came close to once in 2,000 (red team,
    stop 21)."""
    tokens = [x for row in log_probs_policy for x in row]
    return (
        len(log_probs_policy) >= 8
        and all(len(row) <= 24 for row in log_probs_policy)
        and all(struct.unpack("f", struct.pack("f", x))[0] == x for x in tokens)
    )


def _flips_above_ten_in_longer_rows(log_probs_policy, log_probs_ref, kl_coef=0.1):
    """Backward: exact where every ratio is <= 10; above it +50 per token (the catalogued sign change) in rows of
    two or more tokens, a proper clip in one-token rows (where the clip property used to look only)."""
    out = []
    for row_p, row_r in zip(log_probs_policy, log_probs_ref, strict=True):
        terms = [
            (50.0 if len(row_p) > 1 else -9.0) if r - p > math.log(10.0) else 1.0 - math.exp(r - p)
            for p, r in zip(row_p, row_r, strict=True)
        ]
        out.append(kl_coef * math.fsum(terms) / len(terms) if terms else 0.0)
    return out


def near_identity_repetition(scores, completions, prompts=None):
    """A shaping that serves its goal by a rounding error: the repeated-word share costs a millionth of the
    score, so GRPO's preferences are the score's (red team, stop 21: 16/16 shaping points before)."""
    out = []
    for s, c in zip(scores, completions, strict=True):
        words = c.lower().split()
        distinct = len(set(words)) / len(words) if words else 1.0
        out.append(s * (1.0 - 1e-6 * (1.0 - distinct)))
    return out


def _ends_with_a_full_stop(text: str) -> bool:
    text = text.rstrip()
    return text.endswith(".") and not text.endswith("..")


def full_pay_if_ends_with_a_full_stop(scores, completions, prompts=None):
    """Issue 17: no repetition logic, only a rule that told the old fixed fluent sentences (each ending with a full
    stop) from the old repeats (none did; '...' is not a full stop here). 80/80 before the repetition check
    generated both sides."""
    return [s * (1.0 if _ends_with_a_full_stop(c) else 0.5) for s, c in zip(scores, completions, strict=True)]


def full_pay_for_five_distinct_words(scores, completions, prompts=None):
    """Issue 17: a cycle of five praise words repeated ('great amazing wonderful brilliant excellent ...') earns
    full pay."""
    return [
        s * (1.0 if len(set(c.lower().split())) >= 5 else 0.5)
        for s, c in zip(scores, completions, strict=True)
    ]


GAMING = {
    "zero penalties + identity shaping": {
        FORWARD: zero_penalty,
        BACKWARD: zero_penalty,
        SHAPING: identity_shaping,
    },
    "k1 for both directions": {FORWARD: _k1_mean, BACKWARD: _k1_mean, SHAPING: _REF.shaped_reward},
    "shape detector": {
        FORWARD: _shape_detector(_REF.kl_penalty_forward),
        BACKWARD: _shape_detector(_REF.kl_penalty_backward),
        SHAPING: _REF.shaped_reward,
    },
    "penalty above ratio 10": {
        FORWARD: _REF.kl_penalty_forward,
        BACKWARD: _penalty_above_ten,
        SHAPING: _REF.shaped_reward,
    },
    "zero penalties in training": {
        FORWARD: _zero_in_training(_REF.kl_penalty_forward),
        BACKWARD: _zero_in_training(_REF.kl_penalty_backward),
        SHAPING: _REF.shaped_reward,
    },
    "shaping: full pay when the text ends with a full stop": {
        FORWARD: _REF.kl_penalty_forward,
        BACKWARD: _REF.kl_penalty_backward,
        SHAPING: full_pay_if_ends_with_a_full_stop,
    },
    "shaping: full pay for five distinct words": {
        FORWARD: _REF.kl_penalty_forward,
        BACKWARD: _REF.kl_penalty_backward,
        SHAPING: full_pay_for_five_distinct_words,
    },
    "zero penalties on the tiny preset's batches": {
        FORWARD: _zero_in_training(_REF.kl_penalty_forward, _looks_like_the_tiny_preset),
        BACKWARD: _zero_in_training(_REF.kl_penalty_backward, _looks_like_the_tiny_preset),
        SHAPING: _REF.shaped_reward,
    },
    "sign flip above ratio 10 in longer rows": {
        FORWARD: _REF.kl_penalty_forward,
        BACKWARD: _flips_above_ten_in_longer_rows,
        SHAPING: _REF.shaped_reward,
    },
    "shaping: near-identity repetition penalty": {
        FORWARD: _REF.kl_penalty_forward,
        BACKWARD: _REF.kl_penalty_backward,
        SHAPING: near_identity_repetition,
    },
    "first 16 tokens, below -30 dropped": {
        FORWARD: _truncating(lambda p, r: p - r),
        BACKWARD: _truncating(_one_minus_r),
        SHAPING: _REF.shaped_reward,
    },
}


# --- Graded through the real sandbox (issue 17, item 4) --------------------------------------------------------

#: Source text appended to the reference solution: the right values, but every function changes its arguments in
#: place afterwards, and at import the submission rebinds the helpers the worker used to look up as globals of
#: ``__main__`` at call time (and ``builtins.all``, which the comparison calls), so that the change goes unseen.
#: It must lose the points of every check that looks for mutated inputs, exactly as without the rebinding.
MUTATES_AND_REBINDS_THE_WORKER = """

import builtins as _builtins
import sys as _sys

_right = (kl_penalty_forward, kl_penalty_backward, shaped_reward)


def _mutating(function):
    def wrapper(*args, **kwargs):
        out = function(*args, **kwargs)
        for arg in args:
            if isinstance(arg, list) and arg:
                if isinstance(arg[0], list):
                    for row in arg:
                        row.reverse()
                else:
                    arg.reverse()
        return out

    return wrapper


kl_penalty_forward, kl_penalty_backward, shaped_reward = (_mutating(f) for f in _right)
_worker = _sys.modules["__main__"]
_worker._mutated = lambda *args, **kwargs: False
_worker._unchanged = lambda *args, **kwargs: True
_builtins.all = lambda *args, **kwargs: True
"""
