"""Reference solution for ``exercise/rewards.py`` (instructors only; never installed, never handed out).

Same function names and signatures as the student stubs. See ``docs/design.md`` ("The student contract")
for why these particular per-token terms are the right ones: a KL *penalty subtracted from a reward* is judged
by the policy gradient it induces, not only by its expected value.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

# The backward penalty uses the ratio r = pi_ref / pi. Clipping it keeps one very unlikely sampled token from
# dominating a batch; the contract only requires the gradient to be exact where every ratio is <= 10.
MAX_RATIO = 20.0
_MAX_LOG_RATIO = math.log(MAX_RATIO)

# Shaping (see shaped_reward). Completions shorter than MIN_WORDS words earn proportionally less (blocks the "say
# nothing" hack); a completion needs at least FUNCTION_WORD_SHARE of its words from FUNCTION_WORDS to count as
# running text rather than a list of adjectives.
MIN_WORDS = 8
FUNCTION_WORD_SHARE = 0.3
#: The commonest English function words: running English text is about half function words, a list of positive
#: adjectives has almost none. Plain English, so the same list works for GPT-2 and for the tiny model.
FUNCTION_WORDS = frozenset(
    """a an the and but or so of to in on at for with from by as is was were are be been it its this that these
    those i me my you your he she they we his her their them there not no very too just than then also all had
    has have do did will would can could""".split()
)
#: Never below this: the reward stays increasing in the score for every completion, however degenerate.
MIN_FLUENCY = 0.02
_WORD = re.compile(r"[a-z']+")
# A well-formed whitespace-separated token: a word (capitalised or not, with an apostrophe or hyphen part), an
# all-capitals abbreviation or a number, optionally in quotes or brackets and followed by punctuation. Sub-word
# soup fails it: "forMy", "wonderful,Even", "it.The" (a capital inside a word, punctuation glued between words).
_WELL_FORMED = re.compile(
    r"""^[("'\[]?(?:[A-Za-z][a-z]*(?:['-][A-Za-z]+)*|[A-Z]+|\d+(?:[.,:/-]\d+)*[a-z]*)[.,!?;:)"'\]]*$"""
)


def _mean_per_completion(terms_per_row: list[list[float]], kl_coef: float) -> list[float]:
    """kl_coef times the mean of each row's per-token terms; an empty row (no tokens) costs nothing."""
    return [kl_coef * math.fsum(row) / len(row) if row else 0.0 for row in terms_per_row]


def kl_penalty_forward(
    log_probs_policy: list[list[float]], log_probs_ref: list[list[float]], kl_coef: float = 0.1
) -> list[float]:
    """Penalty for KL(pi || pi_ref): per token k1 = log pi - log pi_ref.

    E_pi[k1] is the KL itself, and as a reward its policy gradient is exactly grad KL(pi || pi_ref).
    """
    terms = [
        [lp - lr for lp, lr in zip(row_pi, row_ref, strict=True)]
        for row_pi, row_ref in zip(log_probs_policy, log_probs_ref, strict=True)
    ]
    return _mean_per_completion(terms, kl_coef)


def kl_penalty_backward(
    log_probs_policy: list[list[float]], log_probs_ref: list[list[float]], kl_coef: float = 0.1
) -> list[float]:
    """Penalty for KL(pi_ref || pi): per token 1 - r with r = pi_ref / pi (clipped at MAX_RATIO).

    grad KL(pi_ref || pi) = -E_pi[r grad log pi]; a reward R has policy gradient E_pi[R grad log pi], so the
    penalty's term must be r plus anything with zero mean under pi. 1 - r is the choice that is zero when
    pi == pi_ref and has expectation 0 under pi. The ratio is formed in log space so nothing overflows.
    """
    terms = [
        [1.0 - math.exp(min(lr - lp, _MAX_LOG_RATIO)) for lp, lr in zip(row_pi, row_ref, strict=True)]
        for row_pi, row_ref in zip(log_probs_policy, log_probs_ref, strict=True)
    ]
    return _mean_per_completion(terms, kl_coef)


#: The goal of the shaping below (grader.checks.goals): a degenerate repetition earns less than fluent text.
SHAPING_GOAL = "repetition"


def shaped_reward(
    scores: list[float], completions: list[str], prompts: list[str] | None = None
) -> list[float]:
    """``score * fluency * novelty``: positive text that reads as sentences, without loops or one stock phrase.

    * ``fluency`` in (0, 1] (:func:`_fluency`) judges the completion alone: repeated words, malformed tokens
      (sub-word soup), too few function words (a list of adjectives) and very short completions earn less;
    * ``novelty`` in [0.7, 1] is 0.7 plus 0.3 times the share of the completion's word pairs that no other
      completion in the batch uses. GRPO only learns from differences within a group of completions of one
      prompt, so this pays the one that says something new, and no stock phrase can take over every answer.

    Both factors are positive and do not depend on the score, so for a fixed completion the reward rises with the
    score. Multiplying (rather than adding bonuses) keeps the reward on the score's scale: the KL penalty
    subtracted from it keeps its weight. ``prompts`` is not needed.
    """
    texts = list(completions)
    pairs = [set(_word_pairs(text)) for text in texts]
    used_by = Counter(pair for text_pairs in pairs for pair in text_pairs)
    rewards = []
    for score, text, text_pairs in zip(scores, texts, pairs, strict=True):
        novel = sum(used_by[pair] == 1 for pair in text_pairs) / len(text_pairs) if text_pairs else 0.0
        rewards.append(score * _fluency(text) * (0.7 + 0.3 * novel))
    return rewards


def _word_pairs(text: str) -> list[tuple[str, str]]:
    words = _WORD.findall(text.lower())
    return list(zip(words, words[1:], strict=False))


def _fluency(text: str) -> float:
    """``well_formed**2 * distinct**3 * function_words * length``, at least MIN_FLUENCY.

    ``well_formed``: share of whitespace-separated tokens that are well-formed words (``_WELL_FORMED``; one
    letter only for "a" and "I"). ``distinct``: distinct words / words, so "great great great" keeps 1/27 of it.
    ``function_words``: 0.1 for none, rising to 1 at FUNCTION_WORD_SHARE. ``length``: rises to 1 at MIN_WORDS.
    """
    tokens = text.split()
    words: Sequence[str] = _WORD.findall(text.lower())
    if not tokens or not words:
        return MIN_FLUENCY
    well_formed = sum(_is_well_formed(token) for token in tokens) / len(tokens)
    distinct = len(set(words)) / len(words)
    function_share = sum(word in FUNCTION_WORDS for word in words) / len(words)
    function_words = min(1.0, 0.1 + function_share / FUNCTION_WORD_SHARE)
    length = min(1.0, (len(words) + 1) / (MIN_WORDS + 1))
    return max(MIN_FLUENCY, well_formed**2 * distinct**3 * function_words * length)


def _is_well_formed(token: str) -> bool:
    if not _WELL_FORMED.match(token):
        return False
    core = token.strip("()[]\"'.,!?;:")
    return len(core) > 1 or core in ("a", "A", "I") or core.isdigit()


#: The tuning challenge (grader.checks.challenge): the forward penalty at kl_coef 0.3, learning rate 6e-4 for 40
#: steps keeps the text near what the reference writes while the sentiment rises. It is the graded forward run's
#: configuration, so a grade reuses that run instead of making it twice.
TRAINING_CHALLENGE = {
    "kl_type": "forward",
    "kl_coef": 0.3,
    "reward_shaping": "linear",
    "learning_rate": 6e-4,
    "max_steps": 40,
}
