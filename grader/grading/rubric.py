"""The rubric (``grader/grading/rubric.toml``): which checks are graded, their names, points, visibility and budgets,
and the gates between them.

A gate (``requires = ["kl_forward.direction", ...]`` on a check) makes the check's points count only when every
check it requires passed: a function's secondary properties (finite, linear in the coefficient, ...) are worth
nothing when its defining property fails, so the cheapest wrong code (zeros, a constant) earns little. The gated
check still runs and reports its own verdict; :func:`grader.grading.runner.apply_gates` withholds the points.

``load_rubric()`` reads and validates it; every problem in the file is reported at once, with the check id,
as a :class:`RubricError`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from grader.checks.feedback import FALLBACK_LEVEL, FeedbackLevel, check_level
from grader.contract import function_of_check
from grader.grading.results import VISIBILITIES, Visibility

DEFAULT_RUBRIC = Path(__file__).with_name("rubric.toml")
_ID = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")
_ENTRY_KEYS = {
    "name",
    "points",
    "visibility",
    "advisory",
    "requires_training",
    "budget_s",
    "tags",
    "requires",
    "hidden",
}
_DEFAULT_KEYS = {"visibility", "budget_s", "hidden_visibility"}
MAX_BUDGET_S = 3600.0


class RubricError(ValueError):
    """The rubric file is unreadable or invalid; the message lists every problem."""


@dataclass(frozen=True)
class RubricEntry:
    check_id: str
    name: str
    points: float
    visibility: Visibility = "visible"
    advisory: bool = False
    requires_training: bool = False
    budget_s: float = 60.0
    tags: tuple[str, ...] = ()
    #: the gate: ids of the checks that must pass for this check's points to count
    requires: tuple[str, ...] = ()
    #: in the instructor's grader only, never in a student handout (see rubric.toml)
    hidden: bool = False

    @property
    def function_tag(self) -> str:
        """The contract function the check is about (``kl_forward`` -> ``kl_penalty_forward``), for tags."""
        return function_of_check(self.check_id)


@dataclass(frozen=True)
class Rubric:
    entries: tuple[RubricEntry, ...]
    path: Path = field(default=DEFAULT_RUBRIC)
    #: how much a failed check explains: [feedback] level (see grader.checks.feedback)
    feedback_level: FeedbackLevel = FALLBACK_LEVEL

    @property
    def total_points(self) -> float:
        return math.fsum(e.points for e in self.entries)

    def selected(self, training: bool) -> tuple[RubricEntry, ...]:
        """The entries to grade: all of them, or those that need no training run."""
        return tuple(e for e in self.entries if training or not e.requires_training)

    def without_absent_hidden(self, registered: Collection[str]) -> tuple[Rubric, tuple[RubricEntry, ...]]:
        """This rubric less its hidden checks that this copy of the grader does not have (a student handout has no
        answer key), and those checks. Gates on an absent check stay open, as on any check not graded."""
        absent = tuple(e for e in self.entries if e.hidden and e.check_id not in registered)
        if not absent:
            return self, ()
        kept = tuple(e for e in self.entries if e not in absent)
        return Rubric(kept, self.path, self.feedback_level), absent

    def __getitem__(self, check_id: str) -> RubricEntry:
        for entry in self.entries:
            if entry.check_id == check_id:
                return entry
        raise KeyError(check_id)


def load_rubric(path: str | Path | None = None, known_ids: Collection[str] | None = None) -> Rubric:
    """Load and validate a rubric. ``known_ids``: if given, every id must be one of them (typo protection)."""
    path = Path(path) if path is not None else DEFAULT_RUBRIC
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RubricError(f"{path}: cannot read the rubric ({exc.strerror or exc})") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RubricError(f"{path}: not valid TOML: {exc}") from exc
    return parse_rubric(data, path, known_ids)


def parse_rubric(
    data: dict[str, Any], path: Path = DEFAULT_RUBRIC, known_ids: Collection[str] | None = None
) -> Rubric:
    problems: list[str] = []
    for key in sorted(set(data) - {"defaults", "checks", "feedback"}):
        problems.append(
            f'unknown top-level key {key!r} (expected [feedback], [defaults] and [checks."<id>"] tables)'
        )
    feedback_level = _feedback_level(data.get("feedback", {}), problems)
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        problems.append("[defaults] must be a table")
        defaults = {}
    for key in sorted(set(defaults) - _DEFAULT_KEYS):
        problems.append(f"[defaults]: unknown key {key!r} (allowed: {', '.join(sorted(_DEFAULT_KEYS))})")
    checks = data.get("checks")
    if not isinstance(checks, dict) or not checks:
        problems.append('no checks: add [checks."<id>"] tables')
        checks = {}

    entries = []
    for check_id, raw in checks.items():
        where = f"checks.{check_id!r}"
        errors_before = len(problems)
        if not _ID.match(check_id):
            problems.append(
                f"{where}: not a check id (lowercase words separated by dots, e.g. 'kl_forward.direction')"
            )
        elif known_ids is not None and check_id not in known_ids:
            close = [
                k
                for k in sorted(known_ids)
                if k.split(".")[-1] == check_id.split(".")[-1] or k.split(".")[0] == check_id.split(".")[0]
            ]
            hint = f" (known ids include: {', '.join(close[:6])})" if close else ""
            problems.append(f"{where}: unknown check id: no check is registered under it{hint}")
        if not isinstance(raw, dict):
            problems.append(f"{where}: must be a table")
            continue
        for key in sorted(set(raw) - _ENTRY_KEYS):
            problems.append(f"{where}: unknown key {key!r} (allowed: {', '.join(sorted(_ENTRY_KEYS))})")
        merged = {**defaults, **raw}
        name = merged.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            problems.append(f"{where}: 'name' must be a non-empty string of at most 200 characters")
        points = merged.get("points")
        if (
            isinstance(points, bool)
            or not isinstance(points, (int, float))
            or not math.isfinite(points)
            or points < 0
        ):
            problems.append(f"{where}: 'points' must be a number >= 0, not {points!r}")
            points = 0
        hidden = raw.get("hidden", False)
        if not isinstance(hidden, bool):
            problems.append(f"{where}: 'hidden' must be true or false, not {hidden!r}")
            hidden = False
        visibility = raw.get(
            "visibility",
            defaults.get("hidden_visibility", "after_due_date")
            if hidden
            else defaults.get("visibility", "visible"),
        )
        if visibility not in VISIBILITIES:
            problems.append(
                f"{where}: 'visibility' must be one of {', '.join(VISIBILITIES)}, not {visibility!r}"
            )
        flags = {}
        for key, default in (("advisory", False), ("requires_training", check_id.startswith("training."))):
            value = merged.get(key, default)
            if not isinstance(value, bool):
                problems.append(f"{where}: {key!r} must be true or false, not {value!r}")
                value = default
            flags[key] = value
        if flags["advisory"] and points:
            problems.append(f"{where}: an advisory check is worth 0 points (points = {points!r})")
        budget = merged.get("budget_s", 60.0)
        if (
            isinstance(budget, bool)
            or not isinstance(budget, (int, float))
            or not (0 < budget <= MAX_BUDGET_S)
        ):
            problems.append(
                f"{where}: 'budget_s' must be a number of seconds in (0, {MAX_BUDGET_S:g}], not {budget!r}"
            )
        tags = merged.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
            problems.append(f"{where}: 'tags' must be a list of non-empty strings")
        requires = merged.get("requires", [])
        if (
            not isinstance(requires, list)
            or not all(isinstance(r, str) and r for r in requires)
            or len(set(requires)) != len(requires)
        ):
            problems.append(f"{where}: 'requires' must be a list of distinct check ids")
            requires = []
        if len(problems) == errors_before:
            entries.append(
                RubricEntry(
                    check_id,
                    name.strip(),
                    float(points),
                    visibility,
                    flags["advisory"],
                    flags["requires_training"],
                    float(budget),
                    tuple(tags),
                    tuple(requires),
                    hidden,
                )
            )
    problems.extend(_gate_problems(entries, set(checks)))
    if not problems and not math.fsum(e.points for e in entries) > 0:
        problems.append("the checks are worth 0 points in total")
    if problems:
        raise RubricError(f"{path}: invalid rubric:\n" + "\n".join(f"  - {p}" for p in problems))
    return Rubric(tuple(entries), path, feedback_level)


def _gate_problems(entries: Sequence[RubricEntry], ids: set[str]) -> list[str]:
    """What is wrong with the ``requires`` gates: unknown or unusable checks, and cycles (a check whose points
    depend, through other gates, on its own)."""
    problems = []
    by_id = {e.check_id: e for e in entries}
    for entry in entries:
        where = f"checks.{entry.check_id!r}"
        for required in entry.requires:
            target = by_id.get(required)
            if required == entry.check_id:
                problems.append(f"{where}: 'requires' names the check itself")
            elif required not in ids:
                problems.append(
                    f"{where}: requires {required!r}, which is not a check of this rubric (gates can only "
                    "name checks listed here)"
                )
            elif target is not None and target.points == 0 and not target.advisory:
                # A 0-point check's verdict is not visible in its score (0 / 0 either way).
                problems.append(
                    f"{where}: requires {required!r}, which is worth 0 points and not advisory, so its "
                    "result cannot tell a pass from a failure; give it points or make it advisory"
                )
    cycle = _find_cycle(
        {e.check_id: [r for r in e.requires if r in by_id and r != e.check_id] for e in entries}
    )
    if cycle:
        problems.append("the gates form a cycle (no check on it could ever score): " + " -> ".join(cycle))
    return problems


def _find_cycle(graph: dict[str, list[str]]) -> list[str]:
    """One cycle of ``graph`` (as a closed path of ids), or [] if it has none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return []

    for node in graph:
        if node not in state:
            found = visit(node)
            if found:
                return found
    return []


def _feedback_level(table: Any, problems: list[str]) -> FeedbackLevel:
    """``[feedback] level``; the least revealing level when the table is absent."""
    if not isinstance(table, dict):
        problems.append("[feedback] must be a table")
        return FALLBACK_LEVEL
    for key in sorted(set(table) - {"level"}):
        problems.append(f"[feedback]: unknown key {key!r} (allowed: level)")
    try:
        return check_level(table.get("level", FALLBACK_LEVEL), "[feedback] level")
    except ValueError as exc:
        problems.append(str(exc))
        return FALLBACK_LEVEL
