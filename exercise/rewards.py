"""Your exercises: KL regularisation (Exercise 1) and reward shaping (Exercise 2).

This is the only file you edit. The training pipeline (``python -m exercise.train``) calls these functions on
every batch of sampled completions, and ``nox -s grade`` grades them.

How the pipeline uses them
--------------------------
For each prompt GRPO samples several completions. For every completion the pipeline computes

    reward = shaped_reward(score)  -  kl_penalty(log_probs_policy, log_probs_ref, kl_coef)
             (or the raw score with --reward_shaping linear)

and GRPO then follows the *policy gradient* of that reward: it raises the log-probability of completions whose
reward is above their group's average and lowers the others. The penalty is treated like any other reward:
a number per completion, with no gradient flowing through it.

``log_probs_policy[i][t]`` is log pi(y_t | prompt, y_<t) for token t of completion i under the model being
trained; ``log_probs_ref[i][t]`` is the same token's log-probability under the frozen starting model pi_ref.
Both are finite and <= 0 (as low as -1000). Rows can have different lengths, including 0.

Group scaling (--scale_rewards)
-------------------------------
GRPO's advantage is a completion's reward minus its group's mean reward, and by default (``--scale_rewards
group``) divided by the standard deviation of the group's rewards (``batch``: of the whole batch's; ``none``: not
divided). Two consequences. A constant added to every reward of a group changes nothing, so what a penalty or a
shaping does is decided by how it *ranks* completions within a group, not by its average. And with group scaling
``kl_coef`` is not a price in reward units: the penalty competes with the spread of the scores within a group.
Early on, when scores differ by tenths, kl_coef 0.1 barely counts; once the sentiment saturates and the scores
differ by thousandths, the same penalty steers the run almost alone. With ``--scale_rewards none`` a nat of KL
per token costs ``kl_coef`` of sentiment.

The contract
------------
What each function must do is its *contract*: the signature, the inputs and outputs described here, and the
rules listed under "Rules the grader checks" in each function's docstring. ``nox -s grade`` reports each rule by
the id shown there. The rules marked *defining* are the ones only the mathematics passes; the other rules' points
count only when the function passes its defining rules (wrong code can be finite, linear in kl_coef, a mean ...).
Rules marked *hidden* are graded when you submit, on inputs nobody sees in advance; your report says how many
points they are worth.

*The contract's per-token term* of a KL penalty is the term whose mean over a completion's tokens, times kl_coef,
is that completion's penalty (rule "value"). Two rules fix it: as a reward, its policy gradient must be that of
the right KL (rule "direction"), which fixes it up to an added constant, and it must be 0 for a token where pi and
pi_ref agree, which fixes the constant (for the backward penalty: wherever the ratio pi_ref / pi is <= 10, above
which you may clip). Finding it is Exercise 1.
"""

from __future__ import annotations

# ============================================================================================================
# Exercise 1: KL penalties                                                                  # YOUR CODE HERE
# ============================================================================================================
#
# Without regularisation the policy drifts wherever the reward is easiest to get ("amazing! amazing! truly!").
# A KL penalty keeps it near pi_ref. Two directions exist:
#
#   forward  KL(pi || pi_ref) = E_{y~pi}    [ log pi(y) - log pi_ref(y) ]
#   backward KL(pi_ref || pi) = E_{y~pi_ref}[ log pi_ref(y) - log pi(y) ]
#
# They weigh different text. The forward KL averages over what the policy writes, so it charges most for text the
# policy now writes far more often than the reference would. The backward KL averages over what the reference
# writes, so it charges most for text the reference liked and the policy has stopped writing. Train with each and
# compare both KL curves of both runs (`python -m exercise.compare`): how far each drifts, in which direction, is
# for you to measure. The textbook picture from fitting a distribution ("mode-seeking" vs "mass-covering") does
# not carry over to RL fine-tuning; don't expect to see it.
#
# The catch: you only have samples from pi, and your penalty is used as a *reward*. An estimator with the right
# expected value can still push the policy the wrong way. What matters is the gradient GRPO follows:
#
#   grad_theta E_{y~pi}[ -penalty(y) ] = E_{y~pi}[ -penalty(y) * grad_theta log pi(y) ]   (penalty held fixed)
#
# and you want it to equal  -kl_coef * grad_theta KL(...)  for the KL you regularise.
# Per completion, return kl_coef times the MEAN over its tokens of your per-token term (0.0 for an empty row).


def kl_penalty_forward(
    log_probs_policy: list[list[float]], log_probs_ref: list[list[float]], kl_coef: float = 0.1
) -> list[float]:
    """Return one penalty per completion that regularises the forward KL, KL(pi || pi_ref).

    Hints:
      * Write KL(pi || pi_ref) as an expectation under pi. What single-sample quantity has that expectation?
      * Check its gradient with the formula above: for a softmax policy, grad E_pi[f] = E_pi[f grad log pi]
        + E_pi[grad f]. What does the second term contribute for your f? (Hint: E_pi[grad log pi] = 0.)
      * The estimator k3 = r - 1 - log r (r = pi_ref / pi) is unbiased and never negative, and TRL uses it
        inside its loss. Is it also right as a reward? Compare its policy gradient near pi == pi_ref.

    Args:
        log_probs_policy: per completion, the log-probs of its sampled tokens under the policy pi.
        log_probs_ref: the same tokens' log-probs under the reference pi_ref (same shape).
        kl_coef: the regularisation strength; the penalty scales linearly with it.

    Returns:
        One float per completion: kl_coef * mean over tokens of your per-token term; 0.0 for an empty row.

    Rules the grader checks (by these ids; "The contract" at the top of this file says what defining means):
      * kl_forward.direction (defining): for a softmax policy over a small vocabulary (one-token completions,
        every ratio pi_ref / pi <= 10), the exact policy gradient of E_pi[-penalty], the penalty held fixed as
        a reward is, equals -kl_coef * grad KL(pi || pi_ref).
      * kl_forward.value (defining): on fixed batches like training's (ragged, log-probs down to -1000, some
        float32), each completion's penalty is kl_coef times the mean over its tokens of the contract's
        per-token term.
      * kl_forward.value_random (defining, hidden): the same on random batches like training's.
      * kl_forward.contract: one finite float per completion, for rows of different lengths; 0.0 for an empty
        row, [] for an empty batch; the inputs are left unchanged.
      * kl_forward.zero_when_identical: 0 for every completion whose log-probs under pi and pi_ref are equal.
      * kl_forward.nonnegative_in_expectation: E_pi[penalty] >= 0 over a small vocabulary (a KL is never
        negative).
      * kl_forward.expected_value: E_pi[penalty] = kl_coef * KL(pi || pi_ref) over a small vocabulary.
      * kl_forward.linear_in_coef: penalty(kl_coef = c) = c * penalty(kl_coef = 1), and 0 for c = 0.
      * kl_forward.mean_over_tokens: a mean over the completion's tokens, not a sum.
      * kl_forward.batch_independent: a completion's penalty depends on its own tokens only.
      * kl_forward.finite_extreme: finite for log-probs down to -1000 and rows thousands of tokens long.
      * training.forward_kl: a short GRPO run with this penalty still raises the sentiment and ends far closer
        to pi_ref (in KL(pi || pi_ref)) than the same run without a penalty.
      * kl_forward.in_training (defining, hidden): in a grade that trains, the penalties this function returned
        for the batches the training runs gave it are the contract's too (worth no points itself: every point
        above counts only when it holds).
    """
    raise NotImplementedError("kl_penalty_forward: Exercise 1 in exercise/rewards.py")


def kl_penalty_backward(
    log_probs_policy: list[list[float]], log_probs_ref: list[list[float]], kl_coef: float = 0.1
) -> list[float]:
    """Return one penalty per completion that regularises the backward KL, KL(pi_ref || pi).

    Hints:
      * KL(pi_ref || pi) is an expectation under pi_ref, but your samples come from pi. Importance weights
        r = pi_ref / pi move an expectation from pi_ref to pi: E_ref[g] = E_pi[r g].
      * The tempting estimator r * log r has the right *value* in expectation. Work out its policy gradient
        as a reward and compare it with grad KL(pi_ref || pi) = -E_ref[grad log pi]. Which way does it push?
      * So derive the per-token term from the gradient instead: find f with E_pi[f grad log pi] equal to the
        gradient you want. Of all such f, pick the one that is 0 when pi == pi_ref.
      * r can be astronomically large (log-probs go down to -1000): compute it from log-probabilities, and
        you may clip it for stability, but not below 10.

    Args and Returns: as for ``kl_penalty_forward``.

    Rules the grader checks (by these ids; "The contract" at the top of this file says what defining means):
      * kl_backward.direction (defining): for a softmax policy over a small vocabulary (one-token completions,
        every ratio pi_ref / pi <= 10), the exact policy gradient of E_pi[-penalty], the penalty held fixed as
        a reward is, equals -kl_coef * grad KL(pi_ref || pi).
      * kl_backward.value (defining): on fixed batches like training's (ragged, log-probs down to -1000, some
        float32), each completion's penalty is kl_coef times the mean over its tokens of the contract's
        per-token term wherever every ratio pi_ref / pi is <= 10; where a ratio is above 10 you may clip it, so
        a token's term there never rises with the ratio nor above its value at ratio 10.
      * kl_backward.value_random (defining, hidden): the same on random batches like training's.
      * kl_backward.contract: one finite float per completion, for rows of different lengths; 0.0 for an empty
        row, [] for an empty batch; the inputs are left unchanged.
      * kl_backward.zero_when_identical: 0 for every completion whose log-probs under pi and pi_ref are equal.
      * kl_backward.nonnegative_in_expectation: E_pi[penalty] >= 0 over a small vocabulary (a KL is never
        negative).
      * kl_backward.linear_in_coef: penalty(kl_coef = c) = c * penalty(kl_coef = 1), and 0 for c = 0.
      * kl_backward.mean_over_tokens: a mean over the completion's tokens, not a sum.
      * kl_backward.batch_independent: a completion's penalty depends on its own tokens only.
      * kl_backward.finite_extreme: finite for log-probs down to -1000 and rows thousands of tokens long.
      * training.backward_kl: a short GRPO run with this penalty still raises the sentiment and ends far closer
        to pi_ref (in KL(pi_ref || pi)) than the same run without a penalty.
      * kl_backward.in_training (defining, hidden): in a grade that trains, the penalties this function returned
        for the batches the training runs gave it are the contract's too (worth no points itself: every point
        above counts only when it holds).
    """
    raise NotImplementedError("kl_penalty_backward: Exercise 1 in exercise/rewards.py")


# ============================================================================================================
# Exercise 2: reward shaping                                                                # YOUR CODE HERE
# ============================================================================================================
#
# The sentiment model gives each completion a score in [0, 1] (1 = very positive). Shaping turns it into the
# reward GRPO maximises. Ideas: amplify differences from neutral (exponential), penalise repetition
# ("great great great"), encourage a length, reward rhymes ... Aim for text that is positive AND sensible.
#
# Choose the goal of your shaping and declare it below (SHAPING_GOAL): the grader checks that your shaping does
# what its goal says (the other shaping points, and the shaped training run, count only when it does). Every goal
# must still reward sentiment (a fluent completion earns more with a higher score). The goals:
#
#   "repetition"  penalise repetition: a degenerate repetition earns strictly LESS than a fluent completion with
#                 the same score. A degenerate repetition is one word, a phrase or a cycle of several words
#                 written over and over, whatever its punctuation: "great great great", "Great film! Great film!
#                 Great film!", "amazing, wonderful, brilliant, superb, perfect, amazing, wonderful, ..." (many
#                 different praise words in a loop are still a repetition). The grader generates both texts
#                 afresh, with the same number of words and the same ending, so what tells them apart must be the
#                 repetition itself, not the ending, the length or the words used.
#   "longer" / "shorter"  at the same score, a longer (shorter) fluent completion earns strictly more.
#   "contrast"    amplify differences among positive completions (e.g. exponential): for a fixed completion, each
#                 equal step h up in score at or above 0.5 is worth at least (1 + h/4) times the step below it.
#   "rhyme"       at the same score, a completion whose sentences end in rhyming words (different words with the
#                 same last three letters: "night" / "light") earns strictly more than the same text without the
#                 rhyme; the same word twice ("way" / "way") is repetition, not a rhyme, and earns no more.
# "More" and "less" mean by enough to train with: at least what a rise of 0.01 in the score is worth to your
# reward, or 1% of the reward (a bonus of a millionth changes nothing GRPO learns).
#
# Then, whatever the goal: one finite float per completion; deterministic; do not modify the inputs; work with
# prompts=None and with empty completions; for a fixed completion the reward never decreases as the score rises,
# and is not constant in the score.

SHAPING_GOAL = ""  # YOUR CHOICE: "repetition", "longer", "shorter", "contrast" or "rhyme"


def shaped_reward(
    scores: list[float], completions: list[str], prompts: list[str] | None = None
) -> list[float]:
    """Turn sentiment scores into rewards.

    The grader trains with it as exercise 2 does (``--reward_shaping shaped --kl_type forward``, so with your
    forward penalty) and compares that run with the same run on the plain score: yours should still become more
    positive, repeat itself less, and read as naturally to the model you started from (no gibberish).

    Args:
        scores: sentiment of each completion, in [0, 1].
        completions: the generated texts (without the prompt).
        prompts: the prompts they continue, or None.

    Returns:
        One reward per completion.

    Rules the grader checks (by these ids; "The contract" at the top of this file says what defining means):
      * shaping.goal (defining): it rewards sentiment (a fluent completion earns strictly more with a higher
        score) and does what your SHAPING_GOAL says (the goals above). Without a declaration it is graded for
        "repetition"; with an empty or unknown one it earns no shaping points.
      * shaping.contract: one finite float per completion, for scores in [0, 1] and any text; [] for an empty
        batch.
      * shaping.deterministic: the same inputs give exactly the same rewards.
      * shaping.no_mutation: the inputs are left unchanged.
      * shaping.prompts_none: works with prompts=None (or not given) and with a list of prompts.
      * shaping.empty_completions: a finite reward for empty completions and completions without words.
      * shaping.monotone_in_score: for a fixed completion, never decreases as the score rises, and is not
        constant in it.
      * training.shaped: the run of Exercise 2 (your shaping with your forward penalty) against the same run on
        the plain score: it still raises the sentiment, for "repetition" repeats itself less, and stays near
        pi_ref (perplexity under it within a few times the plain run's, KL(pi || pi_ref) at most about half a
        nat per token above it: keep the reward on the scale of the score, so the penalty still holds).
      * shaping.in_training (defining): in a grade that trains, your shaping gives the batches the shaped run
        gave it the rewards it gave them in training, and meets its goal with the goal's cases placed among
        those batches (worth no points itself: every point above counts only when it holds).
    """
    raise NotImplementedError("shaped_reward: Exercise 2 in exercise/rewards.py")


# ============================================================================================================
# Exercise 3: the tuning challenge. YOUR CODE HERE (change the values, keep the names).
# ============================================================================================================
# The original exercise's last aim: tune the reward, the regularisation and the training configuration so that the
# model ends with both positive sentiment and sensible text. `nox -s grade` trains once with this configuration
# (your functions where it uses them) and checks where the run ends: sentiment high, text the reference model
# would write (low perplexity under it), and varied (distinct bigrams). These defaults train without a penalty at a
# large learning rate: they collapse into word salad. Try your own run first with `nox -s train` (the grader's
# feedback prints the exact command), then change the values here. Graded as challenge.outcome (a third of its points
# per target met); your numbers also go on the class leaderboard.
#   kl_type         "none", "forward" (your kl_penalty_forward) or "backward" (your kl_penalty_backward)
#   kl_coef         0 to 2, the penalty's weight
#   reward_shaping  "linear" (the sentiment score) or "shaped" (your shaped_reward)
#   learning_rate   1e-5 to 1e-3
#   max_steps       20 to 120 GRPO steps on the tiny preset
TRAINING_CHALLENGE = {
    "kl_type": "none",
    "kl_coef": 0.1,
    "reward_shaping": "linear",
    "learning_rate": 1e-3,
    "max_steps": 40,
}


# ============================================================================================================
# DO NOT MODIFY below this line: a quick self-check you can run with `python exercise/rewards.py`.
# ============================================================================================================

if __name__ == "__main__":
    policy, ref = [[-1.0, -2.0], [-0.5]], [[-1.2, -1.5], [-0.5]]
    for fn in (kl_penalty_forward, kl_penalty_backward):
        try:
            print(f"{fn.__name__}: {fn(policy, ref, kl_coef=0.1)}")
        except NotImplementedError as exc:
            print(f"{fn.__name__}: not implemented yet ({exc})")
    try:
        print(f"shaped_reward: {shaped_reward([0.2, 0.9], ['a dull film', 'great great great'])}")
    except NotImplementedError as exc:
        print(f"shaped_reward: not implemented yet ({exc})")
    print("Run `nox -s grade` for a score and detailed feedback.")
