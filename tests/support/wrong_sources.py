"""Wrong functions as source text, appended to the reference solution to make a submission file that a student
might hand in (the catalogued ones, as callables, are in grader/checks/misconceptions/wrong.py)."""

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
