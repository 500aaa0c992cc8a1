"""Known wrong answers: the catalogue (:mod:`.catalogue`, its texts in ``misconceptions.toml``), the wrong
implementations that show each (in the answer key, :mod:`grader.checks.key.wrong`) and the diagnosis that recognises one in a submission
(:mod:`.diagnose`)."""

from grader.checks.misconceptions.catalogue import CATALOGUE, Misconception, check_texts, get, mutants
from grader.checks.misconceptions.diagnose import (
    PROBE_COEF,
    PROBE_POLICY,
    PROBE_REF,
    Diagnosis,
    all_close,
    diagnose_kl,
    is_nondeterministic,
    match_outputs,
)

__all__ = [
    "CATALOGUE",
    "PROBE_COEF",
    "PROBE_POLICY",
    "PROBE_REF",
    "Diagnosis",
    "Misconception",
    "all_close",
    "check_texts",
    "diagnose_kl",
    "get",
    "is_nondeterministic",
    "match_outputs",
    "mutants",
]
