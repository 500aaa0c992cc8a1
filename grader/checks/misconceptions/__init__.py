"""Known wrong answers: the catalogue (:mod:`.catalogue`, its texts in ``misconceptions.toml``), the wrong
implementations that show each (:mod:`.wrong`) and the diagnosis that recognises one in a submission
(:mod:`.diagnose`)."""

from grader.checks.misconceptions.catalogue import CATALOGUE, Misconception, check_texts, get, mutants
from grader.checks.misconceptions.diagnose import (
    PROBE_COEF,
    PROBE_POLICY,
    PROBE_REF,
    SWEEP_COEF,
    SWEEP_LOG_PI,
    SWEEP_RATIOS,
    Diagnosis,
    all_close,
    clipped_backward,
    diagnose_kl,
    is_nondeterministic,
    match_clipping,
    match_outputs,
    sweep_args,
)

__all__ = [
    "CATALOGUE",
    "PROBE_COEF",
    "PROBE_POLICY",
    "PROBE_REF",
    "SWEEP_COEF",
    "SWEEP_LOG_PI",
    "SWEEP_RATIOS",
    "Diagnosis",
    "Misconception",
    "all_close",
    "check_texts",
    "clipped_backward",
    "diagnose_kl",
    "get",
    "is_nondeterministic",
    "match_clipping",
    "match_outputs",
    "mutants",
    "sweep_args",
]
