"""The reward GRPO maximises, all in one place:

    reward = [-1 if --negate_reward] * shaped_reward(sentiment(completion))  -  kl_penalty(log pi, log pi_ref)

1. ``sentiment``: the run's scorer (5-star model, VADER or the hackable word counter), a score in [0, 1].
2. ``shaped_reward``: the student's function (Exercise 2), only with ``--reward_shaping shaped``.
3. Negation (``--negate_reward``) happens *before* the penalty is subtracted: negating afterwards would turn the
   KL penalty into a bonus for drifting away from the reference.
4. ``kl_penalty_forward`` / ``kl_penalty_backward`` (Exercise 1, ``--kl_type``), given per-token log-probs of the
   sampled completion tokens under the policy and the frozen reference (see ``exercise/logprobs.py``).

Everything the student's functions return is checked before it reaches the optimiser: one finite number per
completion, or the run stops with a message naming the function.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .errors import NotImplementedYet, PipelineError, StudentCodeError
from .functions import BACKWARD, EXERCISES, FORWARD, SHAPING, RewardFunctions
from .logprobs import completion_logprobs, reference_model

# What to run instead while a function is still a stub.
_WORKAROUND = {FORWARD: "--kl_type none", BACKWARD: "--kl_type none", SHAPING: "--reward_shaping linear"}


def call_component(name: str, function: Callable, *args, expected: int, source: str) -> list[float]:
    """Call one reward component and return its output as ``expected`` finite floats, or stop the run."""
    try:
        output = function(*args)
    except NotImplementedError:
        raise NotImplementedYet(
            f"{name} is not implemented yet: that's {EXERCISES.get(name, 'an exercise')} in {source}. "
            f"Run with {_WORKAROUND.get(name, 'the default flags')}, or --use_solution to see the reference.",
            component=name,
        ) from None
    except PipelineError:
        raise
    except Exception as error:  # the student's bug, reported as such (their traceback is not ours to show)
        raise StudentCodeError(
            f"{name} raised {type(error).__name__}: {error} (in {source})", component=name
        ) from error
    return check_values(name, output, expected)


def check_values(component: str, values, expected: int) -> list[float]:
    """``values`` as a list of ``expected`` finite floats; a list, tuple, 1-D numpy array or tensor is accepted."""
    if hasattr(values, "tolist") and not isinstance(values, (list, tuple)):
        values = values.tolist()
    if not isinstance(values, (list, tuple)):
        raise StudentCodeError(
            f"{component} returned {type(values).__name__}; expected a list of {expected} numbers, one per completion",
            component=component,
        )
    if len(values) != expected:
        raise StudentCodeError(
            f"{component} returned {len(values)} values for {expected} completions (one per completion expected)",
            component=component,
        )
    floats = []
    for index, value in enumerate(values):
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise StudentCodeError(
                f"{component} returned a {type(value).__name__} for completion {index}, not a number",
                component=component,
            ) from None
        if not math.isfinite(number):
            raise StudentCodeError(
                f"{component} returned {number} for completion {index}", component=component
            )
        floats.append(number)
    return floats


@dataclass
class RewardBreakdown:
    """Each stage of the reward for one batch (lists of the same length)."""

    scores: list[float]  # raw sentiment in [0, 1]
    shaped: list[float]  # after shaping (== scores for linear) and negation
    penalties: list[float]  # KL penalty (zeros for --kl_type none)
    rewards: list[float]  # shaped - penalties: what GRPO maximises


def compose_rewards(
    scores: Sequence[float],
    completions: Sequence[str],
    prompts: Sequence[str] | None,
    *,
    functions: RewardFunctions,
    reward_shaping: str = "linear",
    negate_reward: bool = False,
    kl_type: str = "none",
    kl_coef: float = 0.1,
    log_probs_policy: Sequence[Sequence[float]] | None = None,
    log_probs_ref: Sequence[Sequence[float]] | None = None,
) -> RewardBreakdown:
    """The reward formula, without models: scores -> shaping -> negation -> minus the KL penalty."""
    n = len(completions)
    scores = check_values("the sentiment scorer", scores, n)
    source = functions.source

    shaped = scores
    if reward_shaping == "shaped":
        # Copies, so a function that mutates its inputs cannot change what the next stage sees.
        prompts_copy = list(prompts) if prompts is not None else None
        shaped = call_component(
            SHAPING,
            functions.shaped_reward,
            list(scores),
            list(completions),
            prompts_copy,
            expected=n,
            source=source,
        )
    elif reward_shaping != "linear":
        raise PipelineError(f"unknown reward_shaping {reward_shaping!r}")

    if negate_reward:
        shaped = [-value for value in shaped]

    if kl_type == "none":
        penalties = [0.0] * n
    elif kl_type in ("forward", "backward"):
        if log_probs_policy is None or log_probs_ref is None:
            raise PipelineError(f"--kl_type {kl_type} needs per-token log-probs of policy and reference")
        name = f"kl_penalty_{kl_type}"
        penalties = call_component(
            name,
            getattr(functions, name),
            [list(row) for row in log_probs_policy],
            [list(row) for row in log_probs_ref],
            kl_coef,
            expected=n,
            source=source,
        )
    else:
        raise PipelineError(f"unknown kl_type {kl_type!r}")

    rewards = [value - penalty for value, penalty in zip(shaped, penalties, strict=True)]
    return RewardBreakdown(scores=scores, shaped=shaped, penalties=penalties, rewards=rewards)


class SentimentReward:
    """The reward function handed to TRL's ``GRPOTrainer`` (``reward_funcs=[SentimentReward(...)]``).

    TRL calls it with the decoded ``prompts`` and ``completions`` and the sampled ``completion_ids`` (EOS included,
    no padding); it returns one float per completion. Policy and reference are attached with :meth:`bind` once the
    trainer has built the (possibly LoRA-wrapped) policy.
    """

    def __init__(
        self,
        scorer: Callable[[Sequence[str]], list[float]],
        functions: RewardFunctions,
        tokenizer,
        *,
        reward_shaping: str = "linear",
        negate_reward: bool = False,
        kl_type: str = "none",
        kl_coef: float = 0.1,
        temperature: float = 1.0,
    ):
        self.__name__ = "sentiment"  # the name TRL logs the reward under
        self.scorer = scorer
        self.functions = functions
        self.tokenizer = tokenizer
        self.reward_shaping = reward_shaping
        self.negate_reward = negate_reward
        self.kl_type = kl_type
        self.kl_coef = kl_coef
        self.temperature = temperature
        self.policy = None
        self.frozen_reference = None
        self.last: RewardBreakdown | None = None

    def bind(self, policy, frozen_reference=None) -> SentimentReward:
        """Attach the policy being trained and the frozen reference (``None``: LoRA, adapters disabled)."""
        self.policy = policy
        self.frozen_reference = frozen_reference
        return self

    def log_probs(self, prompts: Sequence[str], completion_ids: Sequence[Sequence[int]]):
        """Per-token log-probs of the sampled tokens under policy and reference, at the sampling temperature."""
        if self.policy is None:
            raise PipelineError("SentimentReward.bind(policy, reference) must be called before training")
        # TRL tokenises plain-text prompts with exactly this call, so these are the ids the policy was fed.
        prompt_ids = self.tokenizer(text=list(prompts))["input_ids"]
        kwargs = dict(temperature=self.temperature, pad_token_id=self.tokenizer.pad_token_id or 0)
        policy_rows = completion_logprobs(self.policy, prompt_ids, completion_ids, **kwargs)
        with reference_model(self.policy, self.frozen_reference) as reference:
            reference_rows = completion_logprobs(reference, prompt_ids, completion_ids, **kwargs)
        return policy_rows, reference_rows

    def __call__(self, prompts, completions, completion_ids, log_metric=None, **_unused) -> list[float]:
        scores = self.scorer(list(completions))
        log_probs_policy = log_probs_ref = None
        if self.kl_type != "none":
            log_probs_policy, log_probs_ref = self.log_probs(prompts, completion_ids)
        breakdown = compose_rewards(
            scores,
            completions,
            prompts,
            functions=self.functions,
            reward_shaping=self.reward_shaping,
            negate_reward=self.negate_reward,
            kl_type=self.kl_type,
            kl_coef=self.kl_coef,
            log_probs_policy=log_probs_policy,
            log_probs_ref=log_probs_ref,
        )
        self.last = breakdown
        if log_metric is not None:  # TRL averages these per logging step, next to its own metrics
            n = len(breakdown.rewards)
            log_metric("sentiment/raw_mean", sum(breakdown.scores) / n)
            mean_penalty = sum(breakdown.penalties) / n
            log_metric("reward/kl_penalty_mean", mean_penalty)
            # The spread is what GRPO acts on (it compares completions with each other). A penalty's mean can be
            # near 0 by construction and still steer the run: its spread shows it at work.
            log_metric(
                "reward/kl_penalty_std",
                math.sqrt(sum((p - mean_penalty) ** 2 for p in breakdown.penalties) / n),
            )
            # What `--scale_rewards group` divides each advantage by: the spread of the rewards among the
            # completions of one prompt (TRL's own reward_std is the whole batch's).
            group_std = mean_group_std(prompts, breakdown.rewards)
            if group_std is not None:
                log_metric("reward/group_std", group_std)
        return breakdown.rewards


def mean_group_std(prompts: Sequence[str], rewards: Sequence[float]) -> float | None:
    """The standard deviation of the rewards within each prompt's group of completions (Bessel-corrected, as TRL
    computes it for its advantages), averaged over the groups; None when no prompt has two completions."""
    groups: dict[str, list[float]] = {}
    for prompt, reward in zip(prompts, rewards, strict=True):
        groups.setdefault(str(prompt), []).append(float(reward))
    stds = []
    for values in groups.values():
        if len(values) > 1:
            mean = sum(values) / len(values)
            stds.append(math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)))
    return sum(stds) / len(stds) if stds else None


def preflight(functions: RewardFunctions, *, reward_shaping: str, kl_type: str, kl_coef: float) -> None:
    """Call the functions this run needs once on a tiny made-up batch, before any model is loaded.

    A stub that still raises ``NotImplementedError``, or a function returning the wrong shape or NaN, then stops
    the run in a second instead of after the models have loaded.
    """
    compose_rewards(
        [0.25, 0.75],
        [" was fine.", " was a wonderful, moving film."],
        ["The movie", "Overall, it"],
        functions=functions,
        reward_shaping=reward_shaping,
        kl_type=kl_type,
        kl_coef=kl_coef,
        log_probs_policy=[[-2.0, -0.5], [-1.0]],
        log_probs_ref=[[-2.5, -0.25], [-1.0]],
    )
