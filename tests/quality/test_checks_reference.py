"""The checks' validity on known-good and known-unfinished code: the reference solution and correct alternatives
earn full marks, the stubs earn nothing and say why, and grading is deterministic per seed."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from grader.checks import REGISTRY
from grader.checks.misconceptions import get
from grader.contract import BACKWARD, FORWARD, SHAPING, CheckContext
from grader.sandbox import SandboxedSubmission
from tests.support.check_ids import HIDDEN_IDS, PROPERTY_IDS, RUN_IDS
from tests.support.fake_submission import ROOT, FakeSubmission, exercise_module, reference_module

CONTEXT = CheckContext(seed=0)  # the shipped number of examples


# Training checks need a TrainingContext and real runs: tests/test_training_checks.py.


def grade(submission, ids=None, context=CONTEXT):
    return {
        cid: check(submission, context)
        for cid, check in REGISTRY.items()
        if (ids is None or cid in ids) and cid not in RUN_IDS
    }


def test_registry_has_exactly_the_agreed_ids():
    assert set(REGISTRY) == PROPERTY_IDS | HIDDEN_IDS | RUN_IDS


@pytest.mark.slow  # over 10 s on 2 cores (measured with --durations)
def test_reference_earns_full_marks():
    results = grade(FakeSubmission(reference_module()))
    failures = {cid: o.feedback for cid, o in results.items() if o.fraction != 1.0}
    assert not failures
    assert all(o.misconception is None for o in results.values())


def test_stubs_fail_every_check_and_say_what_to_implement():
    results = grade(FakeSubmission(exercise_module()))
    for cid, outcome in results.items():
        assert outcome.fraction == 0.0, cid
        assert "NotImplementedError" in outcome.feedback, cid
        exercise = "Exercise 2" if cid.startswith("shaping") else "Exercise 1"
        assert exercise in outcome.feedback, cid
        assert "not-implemented" in outcome.tags, cid


def test_a_missing_function_fails_with_the_reason():
    ref = reference_module()
    sub = FakeSubmission({FORWARD: ref.kl_penalty_forward, SHAPING: ref.shaped_reward})
    outcome = REGISTRY["kl_backward.direction"](sub, CONTEXT)
    assert outcome.fraction == 0.0
    assert "does not define kl_penalty_backward" in outcome.feedback


# ---------------------------------------------------------------------------------------------------------------
# Alternative correct implementations
# ---------------------------------------------------------------------------------------------------------------


def _loops_forward(log_probs_policy, log_probs_ref, kl_coef=0.1):
    out = []
    for i in range(len(log_probs_policy)):
        total, n = 0.0, 0
        for t in range(len(log_probs_policy[i])):
            total += log_probs_policy[i][t] - log_probs_ref[i][t]
            n += 1
        out.append(kl_coef * total / n if n else 0.0)
    return out


def _loops_backward(log_probs_policy, log_probs_ref, kl_coef=0.1, max_ratio=10.0):
    out = []
    for row_pi, row_ref in zip(log_probs_policy, log_probs_ref, strict=True):
        terms = [
            1.0 - math.exp(min(lr - lp, math.log(max_ratio))) for lp, lr in zip(row_pi, row_ref, strict=True)
        ]
        out.append(kl_coef * sum(terms) / len(terms) if terms else 0.0)
    return out


def _padded(rows, dtype):
    width = max((len(r) for r in rows), default=0)
    values = np.zeros((len(rows), width), dtype=dtype)
    mask = np.zeros((len(rows), width), dtype=bool)
    for i, row in enumerate(rows):
        values[i, : len(row)] = row
        mask[i, : len(row)] = True
    return values, mask


def _numpy_penalty(term, dtype):
    def penalty(log_probs_policy, log_probs_ref, kl_coef=0.1):
        lp, mask = _padded(log_probs_policy, dtype)
        lr, _ = _padded(log_probs_ref, dtype)
        terms = np.where(mask, term(lp, lr), 0.0)
        lengths = mask.sum(axis=1)
        return kl_coef * terms.sum(axis=1) / np.maximum(lengths, 1)  # a numpy array, not a list

    return penalty


def _np_k1(lp, lr):
    return lp - lr


def _np_one_minus_r(lp, lr):
    return 1.0 - np.exp(np.minimum(lr - lp, np.log(10.0)))


def _np_one_minus_r_clipped_both_ways(lp, lr):
    """The common idiom: the log-ratio clipped to [-10, 10] (issue 17: it lost 22 points to a too-tight tolerance
    near r = 0, where the lower clip moves the term by at most e^-10)."""
    return 1.0 - np.exp(np.clip(lr - lp, -10, 10))


def _torch_penalties(dtype_name="float64"):
    import torch

    dtype = getattr(torch, dtype_name)

    def make(term):
        def penalty(log_probs_policy, log_probs_ref, kl_coef=0.1):
            out = []
            for row_pi, row_ref in zip(log_probs_policy, log_probs_ref, strict=True):
                if not row_pi:
                    out.append(torch.tensor(0.0))
                    continue
                lp, lr = torch.tensor(row_pi, dtype=dtype), torch.tensor(row_ref, dtype=dtype)
                out.append(kl_coef * term(lp, lr).mean())
            return torch.stack(out) if out else torch.zeros(0)  # a tensor

        return penalty

    return (
        make(lambda lp, lr: lp - lr),
        make(lambda lp, lr: 1.0 - torch.exp(torch.clamp(lr - lp, max=math.log(20.0)))),
    )


def _exponential_shaping(scores, completions, prompts=None):
    out = []
    for score, text in zip(scores, completions, strict=True):
        words = text.split()
        repeat = len(set(words)) / len(words) if words else 1.0
        out.append(math.expm1(3.0 * score) * (0.25 + 0.75 * repeat))
    return np.asarray(out)


ALTERNATIVES = {
    "plain loops, clip at exactly 10": lambda: {FORWARD: _loops_forward, BACKWARD: _loops_backward},
    "numpy arrays, float64": lambda: {
        FORWARD: _numpy_penalty(_np_k1, np.float64),
        BACKWARD: _numpy_penalty(_np_one_minus_r, np.float64),
    },
    "numpy arrays, float32": lambda: {
        FORWARD: _numpy_penalty(_np_k1, np.float32),
        BACKWARD: _numpy_penalty(_np_one_minus_r, np.float32),
    },
    "numpy arrays, log-ratio clipped to [-10, 10]": lambda: {
        BACKWARD: _numpy_penalty(_np_one_minus_r_clipped_both_ways, np.float64)
    },
    "torch tensors": lambda: dict(zip((FORWARD, BACKWARD), _torch_penalties(), strict=True)),
    "torch tensors, float32": lambda: dict(
        zip((FORWARD, BACKWARD), _torch_penalties("float32"), strict=True)
    ),
}


@pytest.mark.slow  # over 10 s on 2 cores (measured with --durations)
@pytest.mark.parametrize("name", ALTERNATIVES)
def test_correct_alternatives_earn_full_marks(name):
    functions = {
        **{n: getattr(reference_module(), n) for n in (FORWARD, BACKWARD, SHAPING)},
        **ALTERNATIVES[name](),
    }
    results = grade(FakeSubmission(functions), ids={c for c in REGISTRY if c.startswith("kl_")})
    assert {cid: o.feedback for cid, o in results.items() if o.fraction != 1.0} == {}


def test_the_clip_idiom_earns_every_backward_point():
    """Fast guard for the one alternative that was falsely rejected: ``1 - exp(clip(log_ratio, -10, 10))``."""
    functions = {
        **{n: getattr(reference_module(), n) for n in (FORWARD, BACKWARD, SHAPING)},
        BACKWARD: _numpy_penalty(_np_one_minus_r_clipped_both_ways, np.float64),
    }
    results = grade(FakeSubmission(functions), ids={c for c in REGISTRY if c.startswith("kl_backward.")})
    assert {cid: o.feedback for cid, o in results.items() if o.fraction != 1.0} == {}


def _distinct_share(text):
    words = text.lower().split()
    return len(set(words)) / len(words) if words else 1.0


SHAPING_ALTERNATIVES = {
    "expm1 of the score times a repetition factor": _exponential_shaping,
    "score times the share of distinct words": lambda scores, completions, prompts=None: [
        s * _distinct_share(c) for s, c in zip(scores, completions, strict=True)
    ],
    "exp of score times fluency": lambda scores, completions, prompts=None: [
        math.exp(s * _distinct_share(c)) for s, c in zip(scores, completions, strict=True)
    ],
    "score minus a repetition penalty": lambda scores, completions, prompts=None: [
        s - 0.5 * (1.0 - _distinct_share(c)) for s, c in zip(scores, completions, strict=True)
    ],
}


@pytest.mark.parametrize("name", SHAPING_ALTERNATIVES)
def test_alternative_shaping_earns_full_marks(name):
    sub = FakeSubmission({SHAPING: SHAPING_ALTERNATIVES[name]})
    results = grade(sub, ids={c for c in REGISTRY if c.startswith("shaping.")})
    assert {cid: o.feedback for cid, o in results.items() if o.fraction != 1.0} == {}


# ---------------------------------------------------------------------------------------------------------------
# Determinism
# ---------------------------------------------------------------------------------------------------------------


class RecordingSubmission(FakeSubmission):
    def __init__(self, functions):
        super().__init__(functions)
        self.log = []

    def call(self, function, *args, **kwargs):
        self.log.append(repr((function, args, kwargs)))
        return super().call(function, *args, **kwargs)


@pytest.mark.parametrize(
    "check_id", ["kl_forward.direction", "kl_backward.batch_independent", "shaping.contract"]
)
def test_same_seed_same_examples_other_seed_other_examples(check_id):
    ref = reference_module()

    def run(seed):
        sub = RecordingSubmission(ref)
        outcome = REGISTRY[check_id](sub, CheckContext(seed=seed, max_examples=30))
        return outcome, sub.log

    (a, log_a), (b, log_b), (c, log_c) = run(7), run(7), run(8)
    assert a == b and log_a == log_b
    assert log_a != log_c
    assert c.fraction == 1.0


def test_same_seed_same_failure_report():
    mutant = get("sum_not_mean").implementations[FORWARD][0]
    sub = FakeSubmission({FORWARD: mutant})
    first = REGISTRY["kl_forward.mean_over_tokens"](sub, CONTEXT)
    second = REGISTRY["kl_forward.mean_over_tokens"](sub, CONTEXT)
    assert first.fraction == 0.0 and first == second


def test_a_random_submission_is_caught():
    noisy = get("nondeterministic").implementations[FORWARD][0]
    outcome = REGISTRY["kl_forward.zero_when_identical"](FakeSubmission({FORWARD: noisy}), CONTEXT)
    assert outcome.fraction == 0.0
    assert outcome.misconception == "nondeterministic"


# ---------------------------------------------------------------------------------------------------------------
# Through the real sandbox
# ---------------------------------------------------------------------------------------------------------------


def _sandboxed(path):
    return SandboxedSubmission(path)


@pytest.mark.slow  # over 10 s on 2 cores (measured with --durations)
def test_reference_earns_full_marks_through_the_sandbox(tmp_path: Path):
    path = tmp_path / "rewards.py"
    shutil.copy(ROOT / "reference" / "rewards.py", path)
    with _sandboxed(path) as sub:
        assert sub.start().ok
        for cid, check in REGISTRY.items():
            if cid in RUN_IDS:
                continue
            sub.begin_check()
            outcome = check(sub, CONTEXT)
            assert outcome.fraction == 1.0, (cid, outcome.feedback)
            assert "mutation-unchecked" not in outcome.tags, cid


def test_mutation_is_caught_through_the_sandbox(tmp_path: Path):
    path = tmp_path / "rewards.py"
    source = (ROOT / "reference" / "rewards.py").read_text()
    path.write_text(
        source + "\n\n_orig = shaped_reward\n\n"
        "def shaped_reward(scores, completions, prompts=None):\n"
        "    out = _orig(scores, completions, prompts)\n"
        "    scores.reverse()\n"
        "    return out\n"
    )
    with _sandboxed(path) as sub:
        assert sub.start().ok
        sub.begin_check()
        outcome = REGISTRY["shaping.no_mutation"](sub, CONTEXT)
    assert outcome.fraction == 0.0
    assert outcome.misconception == "mutates_inputs"
