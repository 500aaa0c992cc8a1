"""Typed grading results and their serialisations: Gradescope ``results.json`` and JUnit XML.

``GradingResults.to_gradescope_dict()`` follows Gradescope's autograder schema: top-level ``score``,
``execution_time``, ``output`` and ``tests``, each test ``{name, score, max_score, output, visibility, tags}``
(plus ``status`` and ``extra_data`` for tools; Gradescope ignores what it does not know). Full marks means
``score == sum(tests[].max_score)``.

*Not gradable* (:class:`NotGradable`): a check the grader could not judge because of the machine, not the
submission (the training control run failed or did not learn, a run without the submission's code ran out of
memory or time). It loses no points and is left out of the maximum: ``score`` 0 and ``max_score`` 0, the points
it would have been worth in ``extra_data.points_not_graded``, ``extra_data.gradable: false``, tag
``not_gradable``, and its output says so first. Gradescope knows only the ``status`` values "passed" and
"failed", so the test's ``status`` stays "failed" (it needs attention), and the top level's ``extra_data`` says
``gradable: false`` with the checks and points left out: the grade is to be made again (``python -m grader``
exits with status 3, :data:`grader.cli.EXIT_NOT_GRADABLE`). Left out of the maximum rather than scored 0 out
of it, so that every reader of ``results.json`` that knows nothing of the flag (Gradescope's per-test display,
GitHub Classroom's score / maximum, a gradebook's percentage, the ``score == sum(max_score)`` rule) sees no lost
points.

Text in results can come from the submission (exception messages, what it printed), so every text field is
cleaned by :func:`grader.grading.sanitise.clean_text` when it is set (no escape sequences, control characters or lone
surrogates, bounded length), and :meth:`GradingResults.to_gradescope_dict` passes its whole tree through the
same function: ``results.json`` is strict JSON and the terminal report cannot be hijacked, whoever built or
edited the objects.

The results' other views live beside this module, each in its own: reading a ``results.json`` back
(:mod:`grader.grading.results_read`: ``validate_results``), the JUnit XML (:mod:`grader.grading.junit`), and
keeping a hidden seed out of published reports (:mod:`grader.grading.hidden_seed`: ``hide_seed``). Their
public names are re-exported here, so ``from grader.grading.results import validate_results, hide_seed`` works.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from grader.contract import NotGradable  # noqa: F401 - raised by checks, recorded here
from grader.grading.hidden_seed import hide_seed
from grader.grading.junit import junit_xml
from grader.grading.results_read import _leaderboard, _points, validate_results
from grader.grading.sanitise import clean_text, clean_tree

# Imported from here by the reporters, the batch and the tests (their home modules are named above).
__all__ = [
    "TAG_NOT_GRADABLE",
    "TAG_WITHHELD",
    "VISIBILITIES",
    "GradingResults",
    "NotGradable",
    "TestResult",
    "Visibility",
    "hide_seed",
    "internal_error_results",
    "validate_results",
]

Visibility = Literal["visible", "hidden", "after_due_date", "after_published"]
VISIBILITIES: tuple[str, ...] = ("visible", "hidden", "after_due_date", "after_published")
#: The tag of a check whose points the rubric's gates withheld (it passed on its own, a check it requires
#: did not): see :func:`grader.grading.gates.apply_gates`.
TAG_WITHHELD = "withheld"
#: The tag of a check that could not be judged because of the machine (see the module docstring).
TAG_NOT_GRADABLE = "not_gradable"
#: Scores are rounded to this many decimals, so that sums and comparisons are exact enough to be stable.
_DECIMALS = 6


class _CleanText:
    """Sanitises text on assignment: a ``str`` attribute, or the strings of a ``list`` attribute, is stored
    cleaned (dataclass ``__init__`` assigns through here too)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, str):
            value = clean_text(value)
        elif isinstance(value, list):
            value = [clean_text(v) if isinstance(v, str) else v for v in value]
        super().__setattr__(name, value)


@dataclass
class TestResult(_CleanText):
    """One graded check."""

    __test__ = False  # not a pytest test class

    name: str
    score: float
    max_score: float
    output: str = ""
    visibility: Visibility = "visible"
    tags: list[str] = field(default_factory=list)
    check_id: str = ""
    advisory: bool = False  # worth 0 points; reported, never counted
    misconception: str | None = None
    internal_error: bool = False  # the grader failed, not the submission
    advisory_failed: bool = False  # an advisory (0-point) check whose property did not hold
    artifacts: list[str] = field(
        default_factory=list
    )  # files the check wrote for people (e.g. training curves)
    #: False: the machine, not the submission, kept this check from being judged; ``max_score`` is then 0 and
    #: ``points_not_graded`` holds the points it is worth (see the module docstring)
    gradable: bool = True
    points_not_graded: float = 0.0
    #: the check's numbers for a class leaderboard (the results' top-level ``leaderboard``)
    leaderboard: list[dict[str, Any]] = field(default_factory=list)
    #: what the check measured, for tools (``extra_data.measurements``; e.g. the shaped run's goal metric)
    measurements: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.max_score) and self.max_score >= 0):
            raise ValueError(f"{self.name}: max_score must be a finite number >= 0, not {self.max_score!r}")
        score = self.score if math.isfinite(self.score) else 0.0
        self.score = round(min(max(score, 0.0), self.max_score), _DECIMALS)

    @property
    def passed(self) -> bool:
        return (
            self.gradable
            and not self.internal_error
            and not self.advisory_failed
            and self.score >= self.max_score
        )

    @property
    def withheld(self) -> bool:
        """The rubric's gates took this check's points (it earned them on its own)."""
        return TAG_WITHHELD in self.tags

    @property
    def status(self) -> Literal["passed", "failed"]:
        return "passed" if self.passed else "failed"

    def to_gradescope_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "score": self.score,
            "max_score": self.max_score,
            "output": self.output,
            "visibility": self.visibility,
            "tags": list(self.tags),
            "status": self.status,
        }
        extra = {
            "check_id": self.check_id,
            "advisory": self.advisory,
            "misconception": self.misconception,
            "internal_error": self.internal_error,
            "artifacts": list(self.artifacts),
            "leaderboard": list(self.leaderboard),
            "measurements": dict(self.measurements),
        }
        data["extra_data"] = {k: v for k, v in extra.items() if v not in (None, "", False, [], {})}
        if not self.gradable:
            data["extra_data"].update(gradable=False, points_not_graded=self.points_not_graded)
        return data


@dataclass
class GradingResults(_CleanText):
    """A whole grading run."""

    tests: list[TestResult]
    execution_time: float = 0.0
    output: str = ""
    visibility: Visibility = "visible"
    stdout_visibility: Visibility = "hidden"
    internal_error: bool = False
    seed: int | None = None
    #: how much the feedback explains (grader.checks.feedback: hint, explain, solution); None when nothing was graded
    feedback_level: str | None = None
    #: how the submission was confined (grader.sandbox: isolation "namespaces" | "landlock" | "none", layers)
    sandbox: dict[str, Any] | None = None

    @property
    def score(self) -> float:
        return round(math.fsum(t.score for t in self.tests), _DECIMALS)

    @property
    def max_score(self) -> float:
        return round(math.fsum(t.max_score for t in self.tests), _DECIMALS)

    @property
    def leaderboard(self) -> list[dict[str, Any]]:
        """Gradescope's leaderboard entries (name, value, order): those of the checks that report any."""
        return [entry for test in self.tests for entry in test.leaderboard]

    @property
    def not_gradable(self) -> list[TestResult]:
        """The checks the machine kept from being judged (left out of ``max_score``)."""
        return [t for t in self.tests if not t.gradable]

    @property
    def points_not_graded(self) -> float:
        return round(math.fsum(t.points_not_graded for t in self.not_gradable), _DECIMALS)

    @property
    def full_marks(self) -> bool:
        """Every point earned, nothing went wrong in the grader, there was something to grade, and every check
        could be judged (a grade with checks not gradable is incomplete, whatever its score)."""
        return (
            not self.internal_error
            and bool(self.tests)
            and not self.not_gradable
            and all(t.score >= t.max_score for t in self.tests)
        )

    @classmethod
    def from_dict(cls, data: Any) -> GradingResults:
        """Results read back from a ``results.json`` payload (ours, or one written by another grader version):
        validated by :func:`validate_results` (``ValueError`` says what is wrong), unknown keys ignored."""
        validate_results(data)
        extra = data.get("extra_data") if isinstance(data.get("extra_data"), dict) else {}
        tests = []
        for test in data.get("tests", []):
            test_extra = test.get("extra_data") if isinstance(test.get("extra_data"), dict) else {}
            tags = test.get("tags") if isinstance(test.get("tags"), list) else []
            visibility = test.get("visibility") if test.get("visibility") in VISIBILITIES else "visible"
            tests.append(
                TestResult(
                    test["name"],
                    float(test.get("score", 0.0)),
                    float(test.get("max_score", 0.0)),
                    str(test.get("output", "")),
                    visibility,
                    [str(t) for t in tags],
                    str(test_extra.get("check_id", "")),
                    bool(test_extra.get("advisory", False)),
                    test_extra.get("misconception")
                    if isinstance(test_extra.get("misconception"), str)
                    else None,
                    bool(test_extra.get("internal_error", False)),
                    # a failed check worth nothing is failed advice, unless it was not gradable (its maximum
                    # is 0 because the machine kept it from being judged)
                    test.get("status") == "failed"
                    and float(test.get("max_score", 0.0)) == 0
                    and test_extra.get("gradable") is not False,
                    [str(a) for a in test_extra.get("artifacts", []) if isinstance(a, str)],
                    gradable=test_extra.get("gradable") is not False,
                    points_not_graded=_points(test_extra.get("points_not_graded")),
                    leaderboard=_leaderboard(test_extra.get("leaderboard")),
                    measurements=dict(test_extra["measurements"])
                    if isinstance(test_extra.get("measurements"), dict)
                    else {},
                )
            )
        seed = extra.get("seed")
        return cls(
            tests,
            float(data.get("execution_time", 0.0) or 0.0),
            str(data.get("output", "")),
            data.get("visibility") if data.get("visibility") in VISIBILITIES else "visible",
            data.get("stdout_visibility") if data.get("stdout_visibility") in VISIBILITIES else "hidden",
            bool(extra.get("internal_error", False)),
            seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
            feedback_level=data.get("feedback_level")
            if isinstance(data.get("feedback_level"), str)
            else None,
            sandbox=data.get("sandbox") if isinstance(data.get("sandbox"), dict) else None,
        )

    def to_gradescope_dict(self) -> dict[str, Any]:
        # Cleaned again as a whole: a list edited in place (``test.tags.append``) bypasses the setter.
        return clean_tree(self._gradescope_tree())

    def _gradescope_tree(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "max_score": self.max_score,
            "execution_time": round(self.execution_time, 3),
            "output": self.output,
            "visibility": self.visibility,
            "stdout_visibility": self.stdout_visibility,
            "tests": [t.to_gradescope_dict() for t in self.tests],
            **({"leaderboard": self.leaderboard} if self.leaderboard else {}),
            **({"feedback_level": self.feedback_level} if self.feedback_level else {}),
            **({"sandbox": self.sandbox} if self.sandbox else {}),
            "extra_data": {
                "full_marks": self.full_marks,
                "internal_error": self.internal_error,
                "seed": self.seed,
                "gradable": not self.not_gradable,
                **(
                    {
                        "not_gradable": [t.check_id or t.name for t in self.not_gradable],
                        "points_not_graded": self.points_not_graded,
                    }
                    if self.not_gradable
                    else {}
                ),
            },
        }

    def to_json(self) -> str:
        return json.dumps(self.to_gradescope_dict(), indent=2, allow_nan=False) + "\n"

    def write_json(self, path: str | os.PathLike) -> None:
        """Write ``results.json`` atomically: a temporary file in the same directory, then ``os.replace``."""
        _atomic_write(Path(path), self.to_json())

    def to_junit_xml(self, suite_name: str = "grader") -> str:
        """One ``testcase`` per check; lost points are ``failure`` elements, grader faults ``error`` elements
        (:func:`grader.grading.junit.junit_xml`)."""
        return junit_xml(self, suite_name)

    def write_junit(self, path: str | os.PathLike) -> None:
        _atomic_write(Path(path), self.to_junit_xml())


def _atomic_write(path: Path, text: str) -> None:
    path = path.absolute()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def internal_error_results(
    message: str, execution_time: float = 0.0, seed: int | None = None
) -> GradingResults:
    """Results when grading could not run at all: score 0, the reason in ``output``."""
    return GradingResults(
        tests=[],
        execution_time=execution_time,
        output=f"Internal grader error: {message}",
        internal_error=True,
        seed=seed,
    )
