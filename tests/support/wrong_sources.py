"""Wrong functions as source text, appended to the reference solution to make a submission file that a student
might hand in (the catalogued ones, as callables, are in the answer key, grader/checks/key/wrong.py)."""

#: A forward penalty that sums over tokens instead of averaging.
SUM_NOT_MEAN_FORWARD = """

def kl_penalty_forward(log_probs_policy, log_probs_ref, kl_coef=0.1):
    return [kl_coef * sum(p - r for p, r in zip(a, b)) for a, b in zip(log_probs_policy, log_probs_ref)]
"""

#: r log r (r = pi_ref / pi) as the backward penalty: the value estimator, not the penalty.
R_LOG_R_BACKWARD = """

import math as _m


def kl_penalty_backward(log_probs_policy, log_probs_ref, kl_coef=0.1):
    out = []
    for a, b in zip(log_probs_policy, log_probs_ref):
        logs = [min(r - p, _m.log(20.0)) for p, r in zip(a, b)]
        out.append(kl_coef * sum(_m.exp(x) * x for x in logs) / len(logs) if logs else 0.0)
    return out
"""

#: Issue 17's KL gaming rows, as a student would write them after reading the grader.
#: Right unless the batch looks like training's (>= 8 rows, >= 64 tokens, float32-exact log-probs): then zeros.
ZERO_IN_TRAINING = """

import struct as _struct

_right_forward, _right_backward = kl_penalty_forward, kl_penalty_backward


def _training(rows):
    tokens = [x for row in rows for x in row]
    return len(rows) >= 8 and len(tokens) >= 64 and all(
        _struct.unpack("f", _struct.pack("f", x))[0] == x for x in tokens
    )


def kl_penalty_forward(log_probs_policy, log_probs_ref, kl_coef=0.1):
    if _training(log_probs_policy):
        return [0.0] * len(log_probs_policy)
    return _right_forward(log_probs_policy, log_probs_ref, kl_coef)


def kl_penalty_backward(log_probs_policy, log_probs_ref, kl_coef=0.1):
    if _training(log_probs_policy):
        return [0.0] * len(log_probs_policy)
    return _right_backward(log_probs_policy, log_probs_ref, kl_coef)
"""

#: The backward penalty exact up to ratio 10 and a +50 penalty per token above it (a sign change, not a clip).
PENALTY_ABOVE_TEN = """

import math as _m


def kl_penalty_backward(log_probs_policy, log_probs_ref, kl_coef=0.1):
    out = []
    for a, b in zip(log_probs_policy, log_probs_ref):
        t = [50.0 if r - p > _m.log(10.0) else 1.0 - _m.exp(r - p) for p, r in zip(a, b)]
        out.append(kl_coef * sum(t) / len(t) if t else 0.0)
    return out
"""
