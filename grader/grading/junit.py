"""The JUnit XML view of a grade (``python -m grader --junit``): one ``testcase`` per check, for CI systems that
show test reports.

Separate from :mod:`grader.grading.results` because it is one serialisation among others with its own format
rules (what counts as a failure, an error or skipped; text XML 1.0 can carry), while that module holds the
results themselves; :meth:`GradingResults.to_junit_xml <grader.grading.results.GradingResults.to_junit_xml>`
calls :func:`junit_xml`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

from grader.grading.sanitise import clean_text

if TYPE_CHECKING:
    from grader.grading.results import GradingResults


def junit_xml(results: GradingResults, suite_name: str = "grader") -> str:
    """One ``testcase`` per check; lost points are ``failure`` elements, grader faults ``error`` elements."""
    suite = ET.Element(
        "testsuite",
        name=suite_name,
        tests=str(len(results.tests)),
        failures=str(sum(1 for t in results.tests if not t.passed and not t.internal_error and t.gradable)),
        errors=str(sum(1 for t in results.tests if t.internal_error)),
        skipped=str(len(results.not_gradable)),
        time=f"{results.execution_time:.3f}",
    )
    for test in results.tests:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=(test.check_id.split(".")[0] or suite_name),
            name=test.name,
            time="0",
        )
        ET.SubElement(case, "properties")
        props = case.find("properties")
        assert props is not None
        for key, value in (
            ("check_id", test.check_id),
            ("score", f"{test.score:g}"),
            ("max_score", f"{test.max_score:g}"),
            ("misconception", test.misconception or ""),
        ):
            if value:
                ET.SubElement(props, "property", name=key, value=value)
        if not test.gradable:
            skipped = ET.SubElement(case, "skipped", message=_first_line(test.output))
            skipped.text = _xml_safe(test.output)
        elif test.internal_error:
            error = ET.SubElement(case, "error", message=_first_line(test.output), type="internal_error")
            error.text = _xml_safe(test.output)
        elif not test.passed:
            failure = ET.SubElement(
                case,
                "failure",
                message=_first_line(test.output),
                type=test.misconception or "check_failed",
            )
            failure.text = _xml_safe(test.output)
    if results.output:
        out = ET.SubElement(suite, "system-out")
        out.text = _xml_safe(results.output)
    root = ET.Element(
        "testsuites",
        name=suite_name,
        tests=suite.get("tests", "0"),
        failures=suite.get("failures", "0"),
        errors=suite.get("errors", "0"),
    )
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return _xml_safe(line[:300])


def _xml_safe(text: str) -> str:
    """Text XML 1.0 can carry: :func:`~grader.grading.sanitise.clean_text` drops every character it cannot (control
    characters, lone surrogates, U+FFFE/U+FFFF) along with escape sequences."""
    return clean_text(text)
