"""The misconception catalogue and the diagnosis that matches a submission against it."""

from __future__ import annotations

import math
import struct

import pytest

from grader.checks import misconceptions as M
from grader.checks.harness import fmt
from grader.checks.key import clipping
from grader.checks.key import wrong as W
from grader.checks.key.source import NotSelfContained, function_source
from grader.contract import BACKWARD, FORWARD, KL_FUNCTIONS, SHAPING
from tests.support.fake_submission import ROOT, FakeSubmission, reference_module

KL_PROBED = [
    (mid, fn, impl) for mid, fn, impl in M.mutants() if fn in KL_FUNCTIONS and M.get(mid).detected_by_probes
]


def _probe(impl):
    return [float(v) for v in impl(M.PROBE_POLICY, M.PROBE_REF, M.PROBE_COEF)]


def test_probe_inputs_are_in_range_and_ratios_within_the_exact_region():
    for row_pi, row_ref in zip(M.PROBE_POLICY, M.PROBE_REF, strict=True):
        for lp, lr in zip(row_pi, row_ref, strict=True):
            assert lp < 0 and lr < 0
            assert 0.1 <= math.exp(lr - lp) <= 10


@pytest.mark.parametrize("function", KL_FUNCTIONS)
def test_probe_outputs_tell_every_mutant_apart(function):
    reference = _probe(getattr(reference_module(), function))
    outputs = [(mid, _probe(impl)) for mid, fn, impl in KL_PROBED if fn == function]
    for i, (mid, out) in enumerate(outputs):
        assert not M.all_close(out, reference), f"{mid} looks correct on the probes"
        for other, out2 in outputs[i + 1 :]:
            if other != mid:
                assert not M.all_close(out, out2), f"{mid} and {other} coincide on the probes"


@pytest.mark.parametrize(
    ("misconception_id", "function", "impl"),
    KL_PROBED,
    ids=[f"{m}-{f}-{i}" for i, (m, f, _) in enumerate(KL_PROBED)],
)
def test_diagnosis_names_each_probe_detectable_mutant(misconception_id, function, impl):
    diagnosis = M.diagnose_kl(FakeSubmission({function: impl}), function)
    assert diagnosis is not None and diagnosis.id == misconception_id


@pytest.mark.parametrize("function", KL_FUNCTIONS)
def test_reference_and_legitimate_clipping_get_no_diagnosis(function):
    assert M.diagnose_kl(FakeSubmission(reference_module()), function) is None


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (0.0, 5.0, "from above at 5"),
        (0.8, 1.2, "from below at 0.8 and from above at 1.2"),
        (0.0, 10.0, None),
        (0.0, 20.0, None),
        (0.0, math.inf, None),
    ],
)
def test_clip_sweep(low, high, expected):
    sub = FakeSubmission({BACKWARD: clipping.clipped_backward(low, high)})
    diagnosis = M.diagnose_kl(sub, BACKWARD)
    if expected is None:
        assert diagnosis is None
    else:
        assert diagnosis is not None and diagnosis.id == "clip_too_tight" and expected in diagnosis.detail


def test_failing_calls_give_no_diagnosis():
    def broken(*args, **kwargs):
        raise ValueError("nope")

    assert M.diagnose_kl(FakeSubmission({FORWARD: broken}), FORWARD) is None


def test_every_entry_explains_itself_for_each_function_it_concerns():
    for m in M.CATALOGUE.values():
        assert m.title and m.implementations, m.id
        for fn in m.implementations:
            text = m.explain(fn)
            assert len(text) > 80, (m.id, fn)
            assert m.render(fn).startswith(f"Likely misconception: {m.title} [{m.id}]")


def test_fmt_is_compact():
    assert fmt([0.1234567891, float("nan"), -math.inf]) == "[0.123457, nan, -inf]"
    assert fmt([[-1000.0, 0.0] * 500]) == "[[-1000.0, 0.0] * 500]"
    assert fmt(list(range(20))).endswith("... (12 more)]")


# --- The catalogue's wrong submissions as text (what the calibration and the tests write into files) ----------


def _float32(x: float) -> float:
    return struct.unpack("f", struct.pack("f", x))[0]


_F32 = [_float32(-0.37 * (i + 1) - 0.011 * t) for i in range(8) for t in range(8)]
#: KL batches that tell the wrong submissions' branches apart: the probes, a training-shaped float32 batch (the
#: zero-in-training row), ratios above 10 (the +50 row), empty rows and an empty batch.
_KL_BATCHES = [
    (M.PROBE_POLICY, M.PROBE_REF, M.PROBE_COEF),
    (
        [_F32[i * 8 : i * 8 + 8] for i in range(8)],
        [[x - 0.25 for x in _F32[i * 8 : i * 8 + 8]] for i in range(8)],
        0.2,
    ),
    ([[-9.0, -0.1], [], [-30.0]], [[-0.5, -0.2], [], [-1.0]], 0.7),
    ([], [], 0.1),
]
_SHAPING_INPUTS = [
    (
        [0.1, 0.9, 0.5, 0.7],
        ["great great great great", "A fine film, well acted.", "", "it was it was it was"],
        None,
    ),
    ([0.3], ["Loved it"], ["The movie"]),
]


def _call_all(functions, name):
    batches = _KL_BATCHES if name != SHAPING else _SHAPING_INPUTS
    return [list(functions[name](*args)) for args in batches]


@pytest.mark.parametrize("name", list(W.SUBMISSIONS))
def test_each_wrong_submission_written_out_is_the_catalogued_code(name):
    """Appended to the reference, the generated text replaces exactly the catalogued functions, with the same
    results bit for bit (the wrappers wrapping the reference's own functions), and leaves the others alone."""
    text = (ROOT / "reference" / "rewards.py").read_text(encoding="utf-8") + W.submission_source(name)
    namespace: dict = {"__name__": f"wrong_{name}"}
    exec(compile(text, f"<{name}>", "exec"), namespace)
    reference = reference_module()
    replaced = W.SUBMISSIONS[name]
    for function in (FORWARD, BACKWARD, SHAPING):
        want = replaced[function] if function in replaced else getattr(reference, function)
        assert _call_all(namespace, function) == _call_all({function: want}, function), (name, function)
    assert set(replaced) <= {FORWARD, BACKWARD, SHAPING}


def test_a_function_that_needs_its_neighbours_is_not_written_out():
    """Text is only made of what runs on its own: a per-token term from beside it, or a helper, is refused."""
    summed_backward = W.IMPLEMENTATIONS["sum_not_mean"][BACKWARD][0]  # per_token(backward_term, reduce="sum")
    with pytest.raises(NotSelfContained, match="'coef' of the function that made it"):
        function_source(summed_backward, BACKWARD, W.RIGHT)
    with pytest.raises(NotSelfContained, match="uses 'fluency'"):
        function_source(W.shaping_log, SHAPING, W.RIGHT)
    # a wrapper of anything but the right function it replaces cannot take it from the submission
    with pytest.raises(NotSelfContained, match="'right'"):
        function_source(W.negated(W.r_log_r), BACKWARD, W.RIGHT)
