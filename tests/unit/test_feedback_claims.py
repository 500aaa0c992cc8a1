"""Every claim in numbers that the misconception feedback makes, measured on the distributions it is about.

The feedback (``grader/checks/misconceptions/misconceptions.toml``) is shown when the 'direction' check fails:
that check draws a softmax policy over 2 to 8 tokens and a reference with every ratio pi_ref / pi at most 10
(``grader.checks.strategies.distributions``), one-token sequences, and the report shows the failure on the
teaching cases (``TEACHING_DIRECTION_CASES``). The wrong penalties are the answer key's catalogued ones
(``grader.checks.key.wrong.IMPLEMENTATIONS``). For each, the policy gradient of E_pi[-penalty] (penalty held
fixed) is compared with the right one, -grad KL, in closed form over the enumerated vocabulary.

Each test first finds its claim's wording in the text, so a text that changes its number fails here until the
number is measured again.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import pytest
import tomllib

from grader.checks.key.wrong import BACKWARD, FORWARD, IMPLEMENTATIONS
from grader.checks.strategies import MAX_EXACT_RATIO, TEACHING_DIRECTION_CASES, DistributionCase

TEXTS = Path(__file__).resolve().parents[2] / "grader" / "checks" / "misconceptions" / "misconceptions.toml"


def text(misconception: str, level: str, function: str | None = None) -> str:
    table = tomllib.loads(TEXTS.read_text())["misconception"][misconception]
    entry = table[function] if function else table
    return " ".join(entry[level].split())


def random_cases(count: int = 1500, seed: int = 0, spread: float | None = None) -> list[DistributionCase]:
    """The direction check's distributions (same ranges as ``strategies.distributions``), drawn with a fixed seed."""
    rng = random.Random(seed)
    spread = 0.5 * math.log(MAX_EXACT_RATIO) * (1.0 - 1e-9) if spread is None else spread
    cases = []
    for _ in range(count):
        vocab = rng.randint(2, 8)
        logits = tuple(rng.uniform(-3.0, 3.0) for _ in range(vocab))
        cases.append(DistributionCase(logits, tuple(rng.uniform(-spread, spread) for _ in range(vocab)), 1.0))
    return cases


def penalty_gradient(implementation, case: DistributionCase) -> np.ndarray:
    """Policy gradient (w.r.t. the logits) of E_pi[-penalty], the penalty held fixed, exact over the vocabulary."""
    log_pi, log_ref, kl_coef = case.args
    penalty = np.asarray(implementation(log_pi, log_ref, kl_coef), dtype=float)
    pi = np.asarray(case.pi)
    return -(pi * penalty) @ (np.eye(len(pi)) - pi)  # grad log pi(x) w.r.t. the logits is e_x - pi


def right_gradient(function: str, case: DistributionCase) -> np.ndarray:
    """-grad KL w.r.t. the logits: forward KL(pi || pi_ref), backward KL(pi_ref || pi) (= pi - pi_ref)."""
    pi, ref = np.asarray(case.pi), np.asarray(case.ref)
    if function == BACKWARD:
        return ref - pi
    return -(pi * np.log(pi / ref)) @ (np.eye(len(pi)) - pi)


def cosines(misconception: str, function: str, cases) -> np.ndarray:
    implementation = IMPLEMENTATIONS[misconception][function][0]
    out = []
    for case in cases:
        a, b = penalty_gradient(implementation, case), right_gradient(function, case)
        if np.linalg.norm(a) > 1e-12 and np.linalg.norm(b) > 1e-12:
            out.append(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
    return np.asarray(out)


TEACHING = [shown.case for shown in TEACHING_DIRECTION_CASES]


@pytest.mark.parametrize(
    ("misconception", "function", "wording"),
    [
        ("value_estimator_r_log_r", None, "cosine about -0.97 with the right direction"),
        ("value_estimator_r_log_r", BACKWARD, "cosine about -0.97 with the right direction"),
        ("inverted_ratio", None, "cosine about -0.95 with the right direction"),
    ],
)
def test_stated_cosine_is_the_mean_over_the_direction_checks_distributions(misconception, function, wording):
    assert wording in text(misconception, "explain", function)
    stated = float(wording.split("about ")[1].split(" ")[0])
    # The generic text stands for every function the misconception is catalogued for.
    for fn in [function] if function else list(IMPLEMENTATIONS[misconception]):
        measured = cosines(misconception, fn, random_cases())
        assert abs(measured.mean() - stated) <= 0.03, (fn, measured.mean())
        assert all(cosines(misconception, fn, TEACHING) < -0.9)


def test_r_log_r_minus_r_plus_1_cosine_takes_any_value_and_is_negative_on_the_shown_cases():
    assert "takes any value from -1 to +1 (negative on the examples the report shows)" in text(
        "value_estimator_r_log_r_minus_r_plus_1", "explain"
    )
    for function in (FORWARD, BACKWARD):
        measured = cosines("value_estimator_r_log_r_minus_r_plus_1", function, random_cases())
        assert measured.min() < -0.95 and measured.max() > 0.95
        # Neither mostly aligned nor mostly opposed: a quarter of the cases on each side of +-0.5 at least.
        assert (measured < -0.5).mean() > 0.25 and (measured > 0.5).mean() > 0.25
        assert all(cosines("value_estimator_r_log_r_minus_r_plus_1", function, TEACHING) < 0)


def test_k3_as_a_reward_follows_forward_minus_backward_and_nearly_vanishes_near_the_reference():
    assert "grad KL(pi || pi_ref) - grad KL(pi_ref || pi)" in text("value_estimator_k3", "explain")
    assert "nearly zero near the reference" in text("value_estimator_k3", "explain")
    for function in (FORWARD, BACKWARD):
        implementation = IMPLEMENTATIONS["value_estimator_k3"][function][0]
        for case in random_cases(200, seed=1):
            # -(grad KL_fwd - grad KL_bwd) = right_gradient(forward) - right_gradient(backward)
            expected = right_gradient(FORWARD, case) - right_gradient(BACKWARD, case)
            assert np.allclose(penalty_gradient(implementation, case), expected, atol=1e-12)
        near = random_cases(300, seed=2, spread=0.05)
        ratios = [
            np.linalg.norm(penalty_gradient(implementation, c)) / np.linalg.norm(right_gradient(function, c))
            for c in near
        ]
        assert max(ratios) < 0.1  # second order in log r, against the right term's first order


def test_k2_almost_vanishes_near_the_reference():
    assert "almost vanishes near the reference" in text("biased_k2", "explain")
    for function in (FORWARD, BACKWARD):
        implementation = IMPLEMENTATIONS["biased_k2"][function][0]
        ratios = [
            np.linalg.norm(penalty_gradient(implementation, c)) / np.linalg.norm(right_gradient(function, c))
            for c in random_cases(300, seed=3, spread=0.05)
        ]
        assert max(ratios) < 0.1


def test_a_lower_clip_at_minus_10_moves_the_backward_term_by_at_most_e_to_the_minus_10():
    assert "changes nothing that matters" in text("clip_too_tight", "explain")
    for log_ratio in np.linspace(-1000.0, -10.0, 500):
        exact = 1 - math.exp(log_ratio)
        clipped = 1 - math.exp(max(log_ratio, -10.0))
        assert abs(exact - clipped) <= math.exp(-10) + 1e-15  # float rounding of 1 - e^x
