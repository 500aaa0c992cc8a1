"""The reward composition (exercise/reward_pipeline.py): order of the stages, checks on what functions return."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from exercise.errors import NotImplementedYet, PipelineError, StudentCodeError
from exercise.functions import RewardFunctions, load_reward_functions
from exercise.reward_pipeline import SentimentReward, check_values, compose_rewards


def k1_forward(lp, lr, kl_coef=0.1):
    return [
        kl_coef * sum(a - b for a, b in zip(p, r, strict=True)) / len(p) if p else 0.0
        for p, r in zip(lp, lr, strict=True)
    ]


def one_minus_r_backward(lp, lr, kl_coef=0.1):
    return [
        kl_coef * sum(1 - math.exp(b - a) for a, b in zip(p, r, strict=True)) / len(p) if p else 0.0
        for p, r in zip(lp, lr, strict=True)
    ]


def double_shaping(scores, completions, prompts=None):
    return [2.0 * s for s in scores]


def not_implemented(*args, **kwargs):
    raise NotImplementedError


FUNCS = RewardFunctions(k1_forward, one_minus_r_backward, double_shaping, source="test functions")
SCORES = [0.2, 0.9]
COMPLETIONS = [" bad film", " great great"]
PROMPTS = ["The film was", "Overall it was"]
LP_PI = [[-1.0, -2.0], [-0.5]]
LP_REF = [[-1.5, -2.5], [-0.5]]


def compose(**kwargs):
    defaults = dict(functions=FUNCS, log_probs_policy=LP_PI, log_probs_ref=LP_REF)
    return compose_rewards(SCORES, COMPLETIONS, PROMPTS, **{**defaults, **kwargs})


def test_linear_no_kl_is_the_score():
    out = compose()
    assert out.rewards == SCORES and out.penalties == [0.0, 0.0]


def test_shaping_only_when_asked():
    assert compose(reward_shaping="linear").rewards == SCORES
    assert compose(reward_shaping="shaped").rewards == [0.4, 1.8]


def test_penalty_subtracted_after_negation():
    out = compose(kl_type="forward", negate_reward=True, kl_coef=1.0)
    assert out.penalties == pytest.approx([0.5, 0.0])
    # -(score) - penalty: negating after the subtraction would give -0.2 + 0.5 instead.
    assert out.rewards == pytest.approx([-0.2 - 0.5, -0.9])


def test_negation_applies_to_the_shaped_reward():
    assert compose(reward_shaping="shaped", negate_reward=True).rewards == pytest.approx([-0.4, -1.8])


def test_backward_uses_kl_penalty_backward_and_coef():
    out = compose(kl_type="backward", kl_coef=0.5)
    expected = one_minus_r_backward(LP_PI, LP_REF, 0.5)
    assert out.penalties == pytest.approx(expected)
    assert out.rewards == pytest.approx([s - p for s, p in zip(SCORES, expected, strict=True)])


def test_kl_without_log_probs_is_an_error():
    with pytest.raises(PipelineError, match="log-probs"):
        compose_rewards(SCORES, COMPLETIONS, PROMPTS, functions=FUNCS, kl_type="forward")


@pytest.mark.parametrize(
    ("kl_type", "shaping", "name", "exercise", "workaround"),
    [
        ("forward", "linear", "kl_penalty_forward", "Exercise 1", "--kl_type none"),
        ("backward", "linear", "kl_penalty_backward", "Exercise 1", "--kl_type none"),
        ("none", "shaped", "shaped_reward", "Exercise 2", "--reward_shaping linear"),
    ],
)
def test_not_implemented_names_function_and_exercise(kl_type, shaping, name, exercise, workaround):
    stubs = RewardFunctions(not_implemented, not_implemented, not_implemented, source="exercise/rewards.py")
    with pytest.raises(NotImplementedYet) as info:
        compose(functions=stubs, kl_type=kl_type, reward_shaping=shaping)
    message = str(info.value)
    assert "\n" not in message
    assert f"{name} is not implemented yet" in message and exercise in message
    assert "exercise/rewards.py" in message and workaround in message and "--use_solution" in message
    assert info.value.component == name


def test_the_real_student_stubs_give_the_message():
    stubs = load_reward_functions(use_solution=False)
    with pytest.raises(
        NotImplementedYet, match="kl_penalty_forward is not implemented yet: that's Exercise 1"
    ):
        compose(functions=stubs, kl_type="forward")


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (lambda lp, lr, c: [0.1, float("nan")], "kl_penalty_forward returned nan for completion 1"),
        (lambda lp, lr, c: [float("inf"), 0.0], "kl_penalty_forward returned inf for completion 0"),
        (lambda lp, lr, c: [0.1], "kl_penalty_forward returned 1 values for 2 completions"),
        (lambda lp, lr, c: [0.1, "x"], "kl_penalty_forward returned a str for completion 1"),
        (lambda lp, lr, c: 0.3, "kl_penalty_forward returned float"),
        (lambda lp, lr, c: 1 / 0, "kl_penalty_forward raised ZeroDivisionError"),
    ],
)
def test_bad_penalty_output_stops_naming_the_component(bad, match):
    functions = RewardFunctions(bad, one_minus_r_backward, double_shaping)
    with pytest.raises(StudentCodeError, match=match) as info:
        compose(functions=functions, kl_type="forward")
    assert info.value.component == "kl_penalty_forward"


def test_bad_shaping_output_is_named():
    functions = RewardFunctions(k1_forward, k1_forward, lambda s, c, p=None: [math.nan] * len(s))
    with pytest.raises(StudentCodeError, match="shaped_reward returned nan for completion 0"):
        compose(functions=functions, reward_shaping="shaped")


def test_non_finite_sentiment_is_named():
    with pytest.raises(StudentCodeError, match="the sentiment scorer returned nan"):
        compose_rewards([math.nan, 0.5], COMPLETIONS, PROMPTS, functions=FUNCS)


def test_numpy_and_tensor_outputs_are_accepted():
    assert check_values("f", np.array([0.5, 1.0]), 2) == [0.5, 1.0]
    assert check_values("f", torch.tensor([0.5, 1.0]), 2) == [0.5, 1.0]


def test_functions_cannot_change_the_inputs_of_later_stages():
    def mutating_shaping(scores, completions, prompts=None):
        scores[0] = 100.0
        completions.clear()
        return list(scores)

    scores = list(SCORES)
    out = compose_rewards(
        scores,
        COMPLETIONS,
        PROMPTS,
        functions=RewardFunctions(k1_forward, k1_forward, mutating_shaping),
        reward_shaping="shaped",
    )
    assert scores == SCORES and out.scores == SCORES


def test_use_solution_loads_reference_by_path():
    functions = load_reward_functions(use_solution=True)
    assert functions.source == "reference/rewards.py"
    assert functions.kl_penalty_forward([[-1.0]], [[-1.0]], 0.1) == [0.0]


def test_missing_reference_is_a_clear_error(monkeypatch, tmp_path):
    import exercise.functions as module

    monkeypatch.setattr(module, "repo_root", lambda: tmp_path)
    with pytest.raises(PipelineError, match="student handouts ship without it"):
        load_reward_functions(use_solution=True)


# --- the TRL reward function, with a real (random, tiny) model ---------------------------------------------------


@pytest.fixture(scope="module")
def tiny(tiny_gpt2_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    directory = tiny_gpt2_dir
    policy = AutoModelForCausalLM.from_pretrained(directory)
    reference = AutoModelForCausalLM.from_pretrained(directory)
    with torch.no_grad():  # make the policy differ from the reference
        for p in policy.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return policy, reference, AutoTokenizer.from_pretrained(directory, padding_side="left")


def test_trl_reward_function_scores_the_sampled_ids(tiny):
    from exercise.logprobs import completion_logprobs

    policy, reference, tokenizer = tiny
    completion_ids = [
        tokenizer(" great film")["input_ids"] + [tokenizer.eos_token_id],
        tokenizer(" bad")["input_ids"],
    ]
    # Text that does not match the ids: the penalty must come from the sampled ids, never from re-tokenised text.
    completions = ["something else entirely", "x"]
    logged = {}
    reward = SentimentReward(
        lambda texts: [0.5] * len(texts), FUNCS, tokenizer, kl_type="forward", kl_coef=1.0, temperature=0.8
    ).bind(policy, reference)
    rewards = reward(
        PROMPTS,
        completions,
        completion_ids,
        log_metric=lambda k, v: logged.setdefault(k, v),
        trainer_state=None,
    )

    prompt_ids = [tokenizer(p)["input_ids"] for p in PROMPTS]
    lp = completion_logprobs(policy, prompt_ids, completion_ids, temperature=0.8)
    lr = completion_logprobs(reference, prompt_ids, completion_ids, temperature=0.8)
    expected = [0.5 - pen for pen in k1_forward(lp, lr, 1.0)]
    assert rewards == pytest.approx(expected, abs=1e-6)
    assert len(reward.last.penalties) == 2 and reward.last.penalties[0] != 0.0
    assert logged["sentiment/raw_mean"] == pytest.approx(0.5)
    assert logged["reward/kl_penalty_mean"] == pytest.approx(sum(reward.last.penalties) / 2)
    # The spread across completions (what GRPO compares): for two values, half their distance.
    spread = abs(reward.last.penalties[0] - reward.last.penalties[1]) / 2
    assert logged["reward/kl_penalty_std"] == pytest.approx(spread) and spread > 0


def test_identical_models_give_zero_k1_penalty(tiny):
    _, reference, tokenizer = tiny
    completion_ids = [tokenizer(" great film")["input_ids"], []]
    reward = SentimentReward(lambda t: [0.7] * len(t), FUNCS, tokenizer, kl_type="forward").bind(
        reference, reference
    )
    assert reward(PROMPTS, ["x", ""], completion_ids) == pytest.approx([0.7, 0.7], abs=1e-6)


def test_unbound_reward_is_an_error(tiny):
    _, _, tokenizer = tiny
    reward = SentimentReward(lambda t: [0.5] * len(t), FUNCS, tokenizer, kl_type="forward")
    with pytest.raises(PipelineError, match="bind"):
        reward(PROMPTS, ["a", "b"], [[1], [2]])
