"""The contract between the exercise, the grader's checks and the sandbox: one definition of each.

* The student's three functions (their names come from :mod:`exercise.functions`, which defines what a run
  takes from the student: the exercise never imports the grader, the grader depends on the exercise), which
  exercise teaches each, the two KL kinds, and the check-id group of each function (``kl_forward.*``).
* The seam between the checks and the sandbox that runs a submission: checks never touch submission code
  directly; they call its functions through a :class:`Submission`, which returns a
  :class:`CallOutcome` holding plain, validated Python floats (or the reason there are none). The production
  implementation is :class:`grader.sandbox.SandboxedSubmission` (a separate, resource-limited worker
  process); tests may use an in-process fake with the same interface.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from exercise.functions import EXERCISES, NAMES

if TYPE_CHECKING:  # the engine sits above the contract: named for the type checker only
    from grader.training.engine import TrainingEngine

#: The largest submission file graded: far above any hand-written rewards.py, so a bigger one is not a solution
MAX_SUBMISSION_BYTES = 2_000_000

#: The three functions of the student contract (docs/design.md), in the order the report lists them.
STUDENT_FUNCTIONS: tuple[str, ...] = NAMES
FORWARD, BACKWARD, SHAPING = STUDENT_FUNCTIONS
#: The two KL penalties (``--kl_type`` of a run) and the function that computes each.
KL_KINDS: dict[str, str] = {"forward": FORWARD, "backward": BACKWARD}
KL_FUNCTIONS: tuple[str, ...] = tuple(KL_KINDS.values())
#: Where each function is taught ("Exercise 1"), for messages that tell the student what to fix.
EXERCISE: dict[str, str] = EXERCISES
#: The check-id group of each function (``kl_forward.direction`` is about ``kl_penalty_forward``).
CHECK_GROUPS: dict[str, str] = {"kl_forward": FORWARD, "kl_backward": BACKWARD, "shaping": SHAPING}


def top_level_assignments(tree: ast.Module, name: str) -> list[ast.expr | None]:
    """The values assigned to ``name`` at the top level of a submission file's syntax tree, in file order (None for
    a bare annotation, ``NAME: str``): how the grader reads what a file declares (its shaping goal, its tuning
    challenge) without running it. Assignments inside functions, classes or ``if`` blocks are not declarations."""
    values: list[ast.expr | None] = []
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign):
            targets, value = [node.target], node.value
        else:
            continue
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            values.append(value)
    return values


def function_of_check(check_id: str) -> str:
    """The contract function a check is about (``kl_forward.value`` -> ``kl_penalty_forward``); the group
    itself for checks about no single function (``training.*``)."""
    group = check_id.split(".")[0]
    return CHECK_GROUPS.get(group, group)


CallStatus = Literal["ok", "error", "timeout", "crashed", "invalid", "missing"]


@dataclass(frozen=True)
class CallOutcome:
    """What one call of a submission function produced, already validated by the grader.

    ``status``:
      * ``ok``: ``value`` is a list of Python floats (may contain nan/inf: checks decide whether that's wrong).
      * ``error``: the function raised; ``message`` is ``"ExceptionType: text"`` (truncated).
      * ``timeout``: it ran past the per-call or per-check time limit; the worker was killed.
      * ``crashed``: the worker process died (exit, signal, memory limit); ``message`` says how.
      * ``invalid``: it returned something that is not a 1-D sequence of real numbers; ``message`` says what.
      * ``missing``: the submission does not define the function (or it is not callable).

    ``inputs_mutated``: whether the call changed its arguments in place (the worker keeps a pristine copy of
    the decoded arguments and compares after the call); ``None`` when the runner did not check.
    """

    status: CallStatus
    value: list[float] | None = None
    message: str = ""
    inputs_mutated: bool | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def not_implemented(self) -> bool:
        return self.status == "error" and self.message.startswith("NotImplementedError")

    def describe(self, function: str) -> str:
        """What went wrong in this call of ``function``, as the student reads it (not for ``ok``)."""
        fn, o = function, self
        where = f"{EXERCISE.get(fn, 'the exercise')} in exercise/rewards.py"
        if o.not_implemented:
            return f"{fn} raised {o.message}. It is not implemented yet: complete {where}."
        if o.status == "error":
            return f"{fn} raised {o.message}"
        if o.status == "timeout":
            return f"{fn} did not finish in time and was stopped ({o.message or 'time limit'})."
        if o.status == "crashed":
            return f"The submission's process died while running {fn} ({o.message or 'no details'})."
        if o.status == "invalid":
            return (
                f"{fn} returned {o.message or 'something unusable'}; it must return one real number per "
                "completion (a list of floats, or a 1-D numpy array or tensor)."
            )
        if o.status == "missing":
            return f"The submission does not define {fn} ({o.message or 'not found'}); {where} is required."
        return f"{fn}: {o.status} {o.message}"


class Submission(Protocol):
    """A submission whose functions can be called safely, one call at a time."""

    def call(self, function: str, *args: Any, **kwargs: Any) -> CallOutcome:
        """Call ``function(*args, **kwargs)`` in the submission; arguments are plain JSON-able data."""
        ...


@dataclass
class CheckOutcome:
    """A check's verdict, before the rubric turns it into points.

    ``fraction`` in [0, 1] is the share of the check's points earned (most checks are all-or-nothing).
    ``feedback`` is what the student reads: what was tested, what went wrong, how to fix it.
    """

    fraction: float
    feedback: str = ""
    misconception: str | None = None  # a short id from grader.checks.misconceptions, when one was recognised
    counterexample: str | None = None  # the smallest failing input hypothesis found, pretty-printed
    tags: list[str] = field(default_factory=list)
    artifacts: list[str] = field(default_factory=list)  # files written for people to look at (paths)
    #: numbers a class compares (Gradescope's leaderboard): the tuning challenge's outcome
    leaderboard: list[LeaderboardEntry] = field(default_factory=list)
    #: what the check measured, for tools (results.json's ``extra_data.measurements``): plain JSON values
    measurements: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LeaderboardEntry:
    """One column of a class leaderboard (Gradescope's ``leaderboard`` entries): ``order`` "desc" ranks larger
    values first, "asc" smaller ones."""

    name: str
    value: float
    order: Literal["asc", "desc"] = "desc"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "order": self.order}


@dataclass(frozen=True)
class CheckContext:
    """Settings every check receives. ``seed`` selects hypothesis's examples (``--seed``): same seed, same
    examples, same result; CI can grade with seeds students never saw."""

    seed: int = 0
    #: hypothesis examples per property before its share (checks' EXAMPLE_SHARE): 40 keeps every catalogued
    #: misconception and gaming case caught on every seed tested (tests/quality, seeds 0-7 at 30) and the
    #: property checks near 2 CPU-seconds; more examples only cost the student's wait
    max_examples: int = 40
    #: the goal ``shaped_reward`` declares (``SHAPING_GOAL``, see grader.checks.goals); None: an unusable
    #: declaration, which ``shaping_goal_note`` explains (the note also says when none was declared)
    shaping_goal: str | None = "repetition"
    shaping_goal_note: str = ""


class NotGradable(Exception):  # noqa: N818 - a verdict, not an error of the grader
    """Raised by a check that cannot judge the submission because of the machine, not the submission (the
    message says why, for the student and the instructor): the runner records the check as not gradable."""


class CheckFunction(Protocol):
    """A check: given a submission, return its verdict. Registered by id in ``grader.checks.REGISTRY``."""

    def __call__(self, submission: Submission, context: CheckContext) -> CheckOutcome: ...


@dataclass(frozen=True)
class TrainingContext(CheckContext):
    """The richer context a check with ``requires_training = true`` in the rubric receives.

    Its ``submission`` argument is still the sandboxed submission (function calls go through it as usual).
    ``training``: the grade's training engine (:class:`grader.training.engine.TrainingEngine`), the one handle
    through which a check gets the grade's runs (made once, by the first check that asks, shared by the others);
    one per grade, so nothing outlives a grade. ``budget_s``: the seconds this check may spend making runs.
    ``artifact_stem``: where files for people to look at may be written, as a path prefix (the CLI passes the
    results path without its suffix); empty: write none. ``withheld_by``: checks this one requires that already
    failed in this grade (its points are withheld whatever it finds, so it spends no time on further seeds).
    """

    training: TrainingEngine | None = None
    budget_s: float = 600.0
    artifact_stem: str = ""
    withheld_by: tuple[str, ...] = ()
