"""The rubric's gates (its ``requires``): a check's points count only when the checks it requires passed.

:func:`apply_gates` runs once over a grade's results, after every check has run (:mod:`grader.grading.runner`),
and is the only place that withholds points. Separate from the runner because it is a pure function of the
rubric and the results, tested without grading anything (tests/unit/test_rubric_gates.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from grader.grading.budget import TAG_NOT_RUN, TAG_UNFINISHED
from grader.grading.results import TAG_NOT_GRADABLE, TAG_WITHHELD, TestResult
from grader.grading.rubric import RubricEntry


def apply_gates(
    entries: Sequence[RubricEntry], tests: Sequence[TestResult], notes: list[str] | None = None
) -> list[TestResult]:
    """``tests`` with the points of every check whose gate is closed withheld: score 0, the reason first in its
    output, tag ``withheld``. A gate is closed when a check it requires was graded and did not pass on its own
    (its verdict before gates: chains are the rubric's to spell out). A required check that was not graded
    (--no-training, --only, or not reached or cut short by the grade's time budget) does not close it. A note for
    the overall output is appended to ``notes``."""
    by_id = {e.check_id: e for e in entries}
    # A check that could not be judged has no verdict: like one not graded, it closes no gate. Nor does one the
    # grade's time budget never reached or cut short: it judged nothing (a slow grade that never reached the
    # advisory in-training checks must not lose every property point they gate).
    verdicts = {
        t.check_id: t.passed
        for t in tests
        if t.gradable and TAG_NOT_RUN not in t.tags and TAG_UNFINISHED not in t.tags
    }
    internal = {t.check_id for t in tests if t.internal_error}
    gated, withheld = [], 0.0
    for test in tests:
        entry = by_id.get(test.check_id)
        failed = [r for r in (entry.requires if entry else ()) if verdicts.get(r) is False]
        if not failed:
            gated.append(test)
            continue
        broken = [r for r in failed if r in internal]
        reasons = "requires " + ", and ".join(
            f"{' and '.join(ids)}, which {verdict}"
            for ids, verdict in (
                ([r for r in failed if r not in internal], "failed"),
                (broken, "could not be graded (internal error)"),
            )
            if ids
        )
        names = "; ".join(f"{r}: {by_id[r].name}" for r in failed if r in by_id)
        if not test.gradable:
            # Its points are withheld whatever its run would have shown: a verdict after all, 0 of its points.
            output = (
                f"Withheld: {reasons}. This check's points count only when the checks it requires pass "
                f"({names}), so it scores 0 whatever it would have found; it also could not be judged on this "
                f"machine:\n\n{test.output}"
            )
            tags = [t for t in test.tags if t != TAG_NOT_GRADABLE]
            test = replace(
                test,
                score=0.0,
                max_score=test.points_not_graded,
                output=output,
                tags=tags,
                gradable=True,
                points_not_graded=0.0,
            )
        elif test.score > 0:
            withheld += test.score
            output = (
                f"Withheld: {reasons}. On its own this check earned {test.score:g} / {test.max_score:g}, but its "
                f"points count only when the checks it requires pass ({names}).\n\n{test.output}"
            )
            test = replace(test, score=0.0, output=output, tags=[*test.tags, TAG_WITHHELD])
        else:
            test = replace(test, output=f"{test.output}\n(Gate: this check {reasons}.)")
        gated.append(test)
    if withheld and notes is not None:
        count = sum(TAG_WITHHELD in t.tags for t in gated)
        notes.append(
            f"Withheld by the rubric's gates: {withheld:g} points on {count} checks that passed, because a "
            "check they require failed (each says which). Fix the defining checks first."
        )
    return gated
