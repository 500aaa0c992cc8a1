"""Record what the public grader checks against: ``python -m grader.tools record`` (instructors; the tests
fail when ``grader/checks/recorded.json`` is out of date, and print this command).

Writes the contract's value of every row of the public value check's fixed batches, and every catalogued wrong
implementation's output on the diagnosis probe batch (:mod:`grader.checks.recorded` says why numbers).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from grader.checks import recorded
from grader.checks.key.terms import contract_value
from grader.checks.key.wrong import IMPLEMENTATIONS
from grader.checks.misconceptions import CATALOGUE, PROBE_COEF, PROBE_POLICY, PROBE_REF


def recording() -> dict[str, Any]:
    """Everything ``recorded.json`` holds, computed afresh from the key."""
    value = {}
    for function in recorded.FUNCTIONS:
        batches = recorded.value_batches(function)
        value[function] = {
            "fingerprint": recorded.fingerprint(batches),
            "rows": [
                [
                    contract_value(function, row_pi, row_ref, batch.kl_coef)
                    for row_pi, row_ref in zip(batch.policy, batch.ref, strict=True)
                ]
                for batch in batches
            ],
        }
    probes: dict[str, dict[str, list[list[float]]]] = {}
    for mid, misconception in CATALOGUE.items():
        if not misconception.detected_by_probes:
            continue
        for function, impls in IMPLEMENTATIONS.get(mid, {}).items():
            outputs = [[float(v) for v in impl(PROBE_POLICY, PROBE_REF, PROBE_COEF)] for impl in impls]
            probes.setdefault(mid, {})[function] = outputs
    return {
        "about": "Recorded by python -m grader.tools record: see grader/checks/recorded.py.",
        "value": value,
        "probes": probes,
    }


def render() -> str:
    return json.dumps(recording(), indent=None, separators=(",", ":"), allow_nan=False) + "\n"


def main() -> int:
    recorded.RECORDED_FILE.write_text(render(), encoding="utf-8")
    print(f"wrote {recorded.RECORDED_FILE}", file=sys.stderr)
    return 0
