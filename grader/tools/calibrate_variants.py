"""The submissions the calibration trains, the runs each needs and what each must pass or fail.

The variants are submission files generated from ``reference/rewards.py`` (instructor repository only), graded
through exactly the machinery a grade uses (:func:`grader.training.runs.execute`: lanes, sandbox, the real pipeline):

* ``reference``: must pass every training check on every seed;
* ``zero_kl``: both penalties return 0 (no regularisation): must fail the forward and backward checks;
* ``sign_flipped``: both penalties negated (a bonus for drifting): must fail both;
* ``r_log_r_backward``: the importance-sampled value estimate r log r (r = pi_ref/pi) as the backward penalty:
  must fail the backward check (it anti-regularises);
* shapings (the shaped run: the variant's ``shaped_reward`` with the reference's forward penalty, judged against
  the reference's forward run): ``identity_shaping`` (the score unchanged: the same run as its control),
  ``constant_shaping`` and ``noise_shaping`` (a pseudo-random function of the text, barely increasing in the
  score: it passes every property check but rewards nothing about sentiment) learn nothing,
  ``gibberish_shaping`` (every new word doubles the reward) drifts into word salad the reference finds unnatural
  and the penalty no longer holds back: each must fail the shaped check. ``vocabulary_shaping`` (score times the
  number of different words: a milder pull towards word lists) and ``previous_shaping`` (the reference's earlier
  score x distinct-word ratio x length) are reported, not required either way.

The wrong KL penalties that the runs cannot tell apart in a short run (k3 as the forward penalty, a sum over
tokens instead of a mean) are not calibrated here: the rubric gates the training points on the property checks
that decide them exactly (see the table's header).

The wrong variants' code is the answer key's catalogue of wrong implementations
(:data:`grader.checks.key.wrong.SUBMISSIONS`), the one place wrong code is written: ``sign_flipped`` is its
``wrong_sign`` mistake, ``r_log_r_backward`` its ``value_estimator_r_log_r`` one.
"""

from __future__ import annotations

from pathlib import Path

from grader.checks.key.wrong import submission_source

#: ``reference`` and the wrong variants, in the table's order.
VARIANTS = (
    "reference",
    "zero_kl",
    "sign_flipped",
    "r_log_r_backward",
    "identity_shaping",
    "constant_shaping",
    "noise_shaping",
    "gibberish_shaping",
    "vocabulary_shaping",
    "previous_shaping",
)
SHAPING_VARIANTS = tuple(v for v in VARIANTS if v.endswith("_shaping"))
#: The runs each variant needs (the baseline needs none of its code: made once, with the reference).
VARIANT_RUNS = {
    "reference": ("baseline", "forward", "backward", "shaped"),
    "zero_kl": ("forward", "backward"),
    "sign_flipped": ("forward", "backward"),
    "r_log_r_backward": ("backward",),
    **{name: ("shaped",) for name in SHAPING_VARIANTS},
}
#: Which checks must pass (True) or fail (False) for each variant; others are reported, not required.
EXPECTED = {
    "reference": {"baseline": True, "forward": True, "backward": True, "shaped": True},
    "zero_kl": {"forward": False, "backward": False},
    "sign_flipped": {"forward": False, "backward": False},
    "r_log_r_backward": {"backward": False},
    "identity_shaping": {"shaped": False},
    "constant_shaping": {"shaped": False},
    "noise_shaping": {"shaped": False},
    "gibberish_shaping": {"shaped": False},
    "vocabulary_shaping": {},
    "previous_shaping": {},
}
#: The shaped check's quantities each wrong shaping is built to fail (its margins are reported against those).
SHAPING_TARGET = {
    "identity_shaping": ("repetition_drop",),
    "constant_shaping": ("gain",),
    "noise_shaping": ("gain",),
    "gibberish_shaping": ("perplexity_ratio", "shaped_kl_rise"),
}


def variant_sources(reference: Path) -> dict[str, str]:
    """Each variant's submission file: the reference solution, with the wrong variant's functions appended."""
    source = reference.read_text(encoding="utf-8")
    return {
        name: source
        + ("\n\n# --- calibration variant: " + name + submission_source(name) if name != "reference" else "")
        for name in VARIANTS
    }
