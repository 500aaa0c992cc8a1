"""``shaping.in_training``: the shaping meets its goal among the batches training gave it, and answers them as it
answered training.

The goal check (``shaping.goal``) calls ``shaped_reward`` with small batches the grader makes; code can tell such
a call from training's (a batch of three, a fixed prompt: red team, stop 21, an identity shaping with a five-line
detector kept every shaping point). The training lanes keep a few of the shaped run's calls as training made
them (:class:`grader.training.lane._Proxy`), and this check, in a grade that trains:

1. calls the shaping again with each recorded batch, unchanged: it must give the rewards training got (code
   that behaves otherwise where it runs, or after so many calls, gives itself away);
2. runs the declared goal's own property again, each case's rows placed at positions drawn from the case among
   one of those real batches (training's size, its prompts, its other completions), reading back only the
   case's rows.

Worth no points itself; every shaping point and the shaped run require it. With ``--no-training`` it is not
graded (and closes no gate).
"""

from __future__ import annotations

import math
import random
import zlib
from dataclasses import dataclass, replace
from typing import Any

from grader.checks import shaping_goal
from grader.checks.harness import fmt
from grader.checks.training_base import NOT_EVIDENCE, gated_by_the_code
from grader.contract import SHAPING, CallOutcome, CheckContext, CheckFunction, CheckOutcome, Submission

#: Goal cases tried among the recorded batches (a share of a grade's examples: each is one call of a real size).
EXAMPLES = 25


@dataclass(frozen=True)
class Batch:
    scores: list[float]
    completions: list[str]
    prompts: list[str] | None


class AmongTrainingBatches:
    """A :class:`grader.contract.Submission` whose ``shaped_reward`` calls are placed among a recorded training
    batch: the call's rows go to positions drawn from its own content (the same case, the same placement, as
    hypothesis's shrinking needs), the rest of the batch is training's, and only the call's rows come back."""

    def __init__(self, submission: Submission, batches: list[Batch]) -> None:
        self._submission = submission
        self._batches = batches

    def __getattr__(self, name: str) -> Any:
        return getattr(self._submission, name)

    def call(self, function: str, *args: Any, **kwargs: Any) -> CallOutcome:
        if function != SHAPING or kwargs or len(args) < 2:
            return self._submission.call(function, *args, **kwargs)
        scores, completions = list(args[0]), list(args[1])
        rng = random.Random(zlib.crc32(repr((scores, completions)).encode()))
        base = self._batches[rng.randrange(len(self._batches))]
        size = max(len(base.scores), len(scores))
        all_scores = [base.scores[i % len(base.scores)] for i in range(size)]
        all_completions = [base.completions[i % len(base.completions)] for i in range(size)]
        prompts = base.prompts and [base.prompts[i % len(base.prompts)] for i in range(size)]
        places = rng.sample(range(size), len(scores))
        for place, score, completion in zip(places, scores, completions, strict=True):
            all_scores[place], all_completions[place] = score, completion
        outcome = self._submission.call(SHAPING, all_scores, all_completions, prompts)
        if not outcome.ok or outcome.value is None or len(outcome.value) != size:
            return outcome
        return replace(outcome, value=[outcome.value[place] for place in places])


def _recorded(record: Any) -> list[tuple[int, Batch, list[float]]]:
    """The shaped run's recorded shaping calls that returned rewards: (call index, batch, rewards)."""
    out = []
    for call in (record.calls or []) if record is not None else []:
        if call.get("function") != SHAPING or call.get("status") != "ok":
            continue
        try:
            args = call["args"]
            batch = Batch(
                [float(s) for s in args[0]],
                [str(c) for c in args[1]],
                list(args[2]) if len(args) > 2 and args[2] else None,
            )
            rewards = [float(v) for v in call["value"]]
        except (KeyError, IndexError, TypeError, ValueError):
            continue
        if batch.scores and len(batch.scores) == len(batch.completions) == len(rewards):
            out.append((int(call.get("index", -1)), batch, rewards))
    return out


def _failed_in_training(record: Any) -> tuple[int, int, str] | None:
    """The first recorded shaping call that raised or returned no valid rewards in training (a timeout or a dead
    worker is the machine's, not evidence): (call index, batch size, what happened)."""
    for call in (record.calls or []) if record is not None else []:
        if call.get("function") == SHAPING and call.get("status") in ("error", "invalid"):
            args = call.get("args") or [[]]
            size = len(args[0]) if isinstance(args[0], list) else 0
            return int(call.get("index", -1)), size, str(call.get("message") or call.get("status"))
    return None


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b)) or abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def check(submission: Submission, context: CheckContext) -> CheckOutcome:
    from grader.checks.training import run_set

    runs = run_set(submission, context)
    shaped = runs.records.get("shaped")
    problem = gated_by_the_code(submission, shaped, SHAPING)
    if problem is not None:
        return CheckOutcome(
            0.0,
            f"The shaped run was not made: your shaped_reward failed the one call training starts with, on an "
            f"ordinary batch ({problem}), so nothing it would do in training can be checked; every shaping "
            "point counts only when it can.",
            tags=["training:shaping_differs"],
        )
    failed = _failed_in_training(shaped)
    if failed is not None:
        index, size, message = failed
        return CheckOutcome(
            0.0,
            f"In the shaped run's call {index} (a batch training gave your shaped_reward: {size} completions) it "
            f"did not return rewards: {message}. The shaping checks found no input it fails on, so it treats "
            "training's batches differently; a shaping must give one finite number per completion for any "
            "batch (shaping.contract), and every shaping point counts only when it does so in training too.",
            tags=["training:shaping_differs"],
            measurements={"index": index},
        )
    recorded = _recorded(shaped)
    if not recorded:
        return CheckOutcome(
            1.0,
            "Not run: no call of your shaped_reward was recorded in training (the shaped run was not made, or "
            "stopped before it): nothing to check here; the training checks say why.",
            measurements={"calls": 0},
        )
    for index, batch, rewards in recorded:
        again = submission.call(SHAPING, batch.scores, batch.completions, batch.prompts)
        if again.status in NOT_EVIDENCE:
            continue  # the machine cut the call short: no evidence either way
        if not again.ok or again.value is None or len(again.value) != len(rewards):
            problem = again.describe(SHAPING) if not again.ok else "it returned another number of rewards"
        else:
            differ = [i for i, (x, y) in enumerate(zip(rewards, again.value, strict=True)) if not _same(x, y)]
            if not differ:
                continue
            i = differ[0]
            problem = (
                f"completion {i} got {fmt(again.value[i], 10)} now and {fmt(rewards[i], 10)} in training "
                f"({len(differ)} of {len(rewards)} rewards differ)"
            )
        return CheckOutcome(
            0.0,
            f"Your shaped_reward, called again with the batch the shaped run gave it at call {index} "
            f"({len(rewards)} completions, unchanged), did not give the rewards training got: {problem}. A "
            "shaping is a function of its inputs: every shaping point counts only when it behaves the same "
            "wherever it runs.",
            tags=["training:shaping_differs"],
            measurements={"index": index},
        )
    among = AmongTrainingBatches(submission, [batch for _, batch, _ in recorded])
    outcome = shaping_goal.goal(among, replace(context, max_examples=EXAMPLES))  # type: ignore[arg-type]
    if outcome.fraction >= 1.0:
        return CheckOutcome(
            1.0,
            "Your shaped_reward gave the rewards training got on the batches recorded, and met its goal with each "
            "case placed among one of them.",
        )
    return replace(
        outcome,
        feedback=(
            "Your shaped_reward met its goal on the grader's own small batches (shaping.goal), but not with the "
            f"same kind of cases placed among a batch the shaped run gave it ({len(recorded[0][1].scores)} "
            "completions, training's prompts): a shaping must meet its goal in the batches GRPO trains on, "
            "whatever else is in them. What failed there:\n" + outcome.feedback
        ),
        tags=[*outcome.tags, "training:goal_not_in_training"],
    )


def checks() -> dict[str, CheckFunction]:
    from grader.checks.training import judging

    return {"shaping.in_training": judging(check, "shaped")}
