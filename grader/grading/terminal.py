"""The check table of the terminal report: one line per check (status, short name, points), grouped by the
function the check is about, and what several checks of a function share said once below them (the points the
rubric's gates withheld, a function that is not implemented, a time budget that ran out, a check not run).

It is a view of ``results.json``: everything here is read from :class:`~grader.grading.results.TestResult`
fields and texts, nothing is added to them. The explanations of failures are printed below the table by
:mod:`grader.grading.report`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from rich.cells import cell_len
from rich.console import Group
from rich.padding import Padding
from rich.text import Text

from grader.contract import function_of_check
from grader.grading.budget import TAG_NOT_RUN, TAG_UNFINISHED
from grader.grading.results import TestResult

#: The tag a check gets when the function it calls raised NotImplementedError (grader.checks.harness).
TAG_NOT_IMPLEMENTED = "not-implemented"
INDENT = 2
STATUS_WIDTH = 7  # the longest label, "not run"
NOTE_INDENT = INDENT + STATUS_WIDTH + 2  # notes start under the check names
GAP = 2  # between a name and its points
#: Narrower than this, a name is not cut further: the line wraps instead (a terminal that narrow wraps anyway).
MIN_NAME_WIDTH = 12
_WITHHELD = re.compile(r"^Withheld: (.*?)\.(?:\s|$)", re.S)
# A check that did not run: the budget's "not run: ..." or the training baseline's "The baseline run was not
# run: ..." (a 0-point check scores 0 / 0 whether it ran or not, so only its text tells).
_NOT_RUN = re.compile(r"^(?:the [^.:\n]* was )?not run\b", re.I)
_NOT_IMPLEMENTED_HINT = re.compile(r"It is not implemented yet[^\n]*")
# "kl_penalty_forward raised NotImplementedError: ..." (a property check), or "The run with your
# kl_penalty_forward could not be scored: kl_penalty_forward raised NotImplementedError: ..." (a training check)
_RAISED_NOT_IMPLEMENTED = re.compile(r"\b(\w+) raised NotImplementedError\b")


@dataclass
class FunctionGroup:
    """The checks of one function, in the order of the results."""

    function: str
    tests: list[TestResult] = field(default_factory=list)


def first_line(text: str) -> str:
    """What went wrong, in one line: the first line after what was tested."""
    return next((s.strip() for s in text.splitlines() if s.strip() and not s.startswith("Tested:")), "")


def is_held(test: TestResult) -> bool:
    """The rubric's gates took this check's points: it passed on its own (tag ``withheld``), or it could not be
    judged on this machine and its gate was closed anyway (its text says "Withheld:", it has no tag)."""
    return test.withheld or (test.gradable and test.score == 0 and test.output.startswith("Withheld: "))


def is_not_run(test: TestResult) -> bool:
    return TAG_NOT_RUN in test.tags or bool(_NOT_RUN.match(first_line(test.output)))


def not_implemented(test: TestResult) -> str | None:
    """The function whose NotImplementedError failed this check, if that is why it failed."""
    if test.passed or not test.gradable:
        return None
    raised = _RAISED_NOT_IMPLEMENTED.search(first_line(test.output))
    if raised:
        return raised.group(1)
    return function_of(test) if TAG_NOT_IMPLEMENTED in test.tags else None


def is_summarised(test: TestResult) -> bool:
    """A check whose reason is one of its function's notes, shared with its other checks: not explained alone."""
    return is_held(test) or is_not_run(test) or TAG_UNFINISHED in test.tags or bool(not_implemented(test))


def explained_failures(tests: list[TestResult]) -> list[TestResult]:
    """The failures explained one by one below the table (the summarised ones are said once per function)."""
    return [t for t in tests if not t.passed and t.gradable and not is_summarised(t)]


def status(test: TestResult) -> Text:
    if not test.gradable:
        # The machine kept it from being judged: no points lost, left out of the maximum.
        return Text("n/a", style="bold cyan")
    if test.internal_error:
        return Text("ERROR", style="bold magenta")
    if is_held(test):
        # It passed on its own; a check it requires failed (its function's note says which): not "FAIL".
        return Text("held", style="yellow")
    if is_not_run(test):
        # Never "pass": a 0-point check that was not run scores 0 / 0 like one that passed.
        return Text("not run", style="yellow" if test.max_score == 0 else "bold red")
    if TAG_UNFINISHED in test.tags:
        return Text("timeout", style="bold red")
    if test.advisory:
        failed = test.advisory_failed
        return Text("advice" if failed else "ok", style="yellow" if failed else "green")
    if test.passed:
        return Text("pass", style="green")
    return Text("partial" if test.score > 0 else "FAIL", style="yellow" if test.score > 0 else "bold red")


def points(test: TestResult) -> str:
    if test.advisory:
        return "-"
    if not test.gradable:
        return f"not gradable ({test.points_not_graded:g})"
    return f"{test.score:g} / {test.max_score:g}"


def function_of(test: TestResult) -> str:
    """The function a check is about: from its id (``kl_forward.value`` -> ``kl_penalty_forward``), else from
    its name's ``function: ...`` prefix."""
    if test.check_id:
        return function_of_check(test.check_id)
    prefix, sep, _ = test.name.partition(": ")
    return prefix if sep and " " not in prefix else "checks"


def group_by_function(tests: list[TestResult]) -> list[FunctionGroup]:
    groups: dict[str, FunctionGroup] = {}
    for test in tests:
        function = function_of(test)
        groups.setdefault(function, FunctionGroup(function)).tests.append(test)
    return list(groups.values())


def short_name(test: TestResult, function: str, width: int) -> str:
    """The name without its function's prefix; too long for ``width``: without its closing remark in brackets
    ("(hidden)" kept: the student cannot see that check's input), then cut with an ellipsis."""
    name = test.name.removeprefix(f"{function}: ")
    if cell_len(name) <= width:
        return name
    core, remark = _split_remark(name)
    if remark is not None:
        name = core + (" (hidden)" if remark.startswith("hidden") else "")
    return name if cell_len(name) <= width else _cut(name, width)


def brief_name(test: TestResult) -> str:
    """``kl_penalty_backward: value (kl_coef * ...)`` -> ``kl_penalty_backward: value``: the name without its
    closing remark, for a line that says more after it."""
    return _split_remark(test.name)[0]


def _split_remark(name: str) -> tuple[str, str | None]:
    """``"value (kl_coef * mean ...)"`` -> ``("value", "kl_coef * mean ...")``: a bracketed remark at the end,
    after a space (``"is KL(pi || pi_ref)"`` has none: its bracket belongs to the formula)."""
    if not name.endswith(")"):
        return name, None
    depth = 0
    for i in range(len(name) - 1, -1, -1):
        depth += {")": 1, "(": -1}.get(name[i], 0)
        if depth == 0:
            if i > 0 and name[i - 1] == " ":
                return name[: i - 1].rstrip(), name[i + 1 : -1]
            return name, None
    return name, None


def _cut(text: str, width: int) -> str:
    line = Text(text)
    line.truncate(max(width, 1), overflow="ellipsis")
    return line.plain


def notes(group: FunctionGroup, told: set[str], owners: set[str] = frozenset()) -> list[Text]:
    """What several checks of the function share, once: the gates' withheld points (by reason), the time
    budget, a check not run, and a NotImplementedError: in full once per function (``told``: the functions
    told already; ``owners``: those with a group of their own, told there), elsewhere by the function's name."""
    held: dict[str, list[TestResult]] = {}
    shared: dict[str, list[TestResult]] = {}
    unfinished: dict[str, list[TestResult]] = {}  # function -> the checks its NotImplementedError failed
    for test in group.tests:
        function = not_implemented(test)
        if is_held(test):
            match = _WITHHELD.match(test.output)
            reason = match.group(1) if match else "requires a check that did not pass"
            held.setdefault(reason, []).append(test)
        elif function and function not in told and (function == group.function or function not in owners):
            raised = _RAISED_NOT_IMPLEMENTED.search(test.output)
            hint = _NOT_IMPLEMENTED_HINT.search(test.output)
            text = test.output[raised.start() :].splitlines()[0] if raised else first_line(test.output)
            text += f". {hint.group(0)}" if hint else ""
            shared.setdefault(text, []).append(test)
        elif function:
            unfinished.setdefault(function, []).append(test)
        elif is_not_run(test) or TAG_UNFINISHED in test.tags:
            shared.setdefault(first_line(test.output), []).append(test)
    lines = []
    for reason, tests in held.items():
        worth = sum(t.max_score for t in tests)
        one = len(tests) == 1
        lines.append(
            Text(
                f"{len(tests)} held check{'' if one else 's'} ({worth:g} point{'' if worth == 1 else 's'}) "
                f"passed on {'its' if one else 'their'} own, but {'it' if one else 'each'} {reason}.",
                style="yellow",
            )
        )
    for text, tests in shared.items():
        count = f"{len(tests)} checks: " if len(tests) > 1 else ""
        lines.append(Text(count + text, style="red" if any(t.max_score for t in tests) else "yellow"))
    if unfinished:
        count = sum(len(tests) for tests in unfinished.values())
        names = _and(list(unfinished))
        lines.append(
            Text(
                f"{count} check{'s' if count > 1 else ''} failed because {names} "
                f"{'is' if len(unfinished) == 1 else 'are'} not implemented yet.",
                style="red",
            )
        )
    told.update(f for f in map(not_implemented, group.tests) if f and f not in unfinished)
    return lines


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def check_table(tests: list[TestResult], width: int) -> Group:
    """Every check on one line at ``width`` columns (a name is shortened to fit), grouped by function, each
    group's notes below its checks."""
    groups = group_by_function(tests)
    point_width = max(cell_len(points(t)) for t in tests)
    totals = {g.function: _total(g.tests) for g in groups}
    point_width = max(point_width, *(cell_len(t) for t in totals.values()))
    longest = max(cell_len(t.name.removeprefix(f"{g.function}: ")) for g in groups for t in g.tests)
    room = width - NOTE_INDENT - GAP - point_width
    name_width = max(min(room, longest), MIN_NAME_WIDTH)
    row = NOTE_INDENT + name_width + GAP + point_width
    lines: list = [Text("Grading report", style="bold")]
    # A NotImplementedError is told in full once, in its own function's group when there is one.
    told: set[str] = set()
    owners = {g.function for g in groups if any(not_implemented(t) == g.function for t in g.tests)}
    for group in groups:
        header = Text(_cut(group.function, row - GAP - point_width), style="bold")
        header.append(
            " " * (row - cell_len(header.plain) - point_width) + totals[group.function].rjust(point_width)
        )
        lines.append(header)
        for test in group.tests:
            name = short_name(test, group.function, name_width)
            line = Text(" " * INDENT)
            line.append_text(status(test))
            line.append(" " * (NOTE_INDENT - cell_len(line.plain)))
            line.append(name + " " * (name_width - cell_len(name) + GAP) + points(test).rjust(point_width))
            lines.append(line)
        lines.extend(
            Padding(note, (0, 0, 0, NOTE_INDENT), expand=False) for note in notes(group, told, owners)
        )
    return Group(*lines)


def _total(tests: list[TestResult]) -> str:
    counted = [t for t in tests if t.gradable and not t.advisory]
    if not counted:
        return ""
    score = round(math.fsum(t.score for t in counted), 6)
    most = round(math.fsum(t.max_score for t in counted), 6)
    return f"{score:g} / {most:g}"
