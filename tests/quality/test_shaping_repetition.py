"""``shaping.goal``, the check that defines a shaping (issue 17): its cases are generated, not listed, so no
rule that tells two fixed sets apart passes it, while every reasonable repetition penalty does, whatever the seed.

A case is a degenerate repetition (one word, a phrase, a cycle of five to eight different words or a whole
sentence, written three or more times with any separator) and a fluent review composed from sentence patterns with
the same number of words, the same capitalisation and the same ending."""

from __future__ import annotations

import functools
import math
import re
import zlib
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grader.checks import REGISTRY
from grader.checks import strategies as S
from grader.contract import SHAPING, CheckContext
from tests.support.check_ids import RUN_IDS
from tests.support.fake_submission import FakeSubmission, reference_module
from tests.support.gaming_submissions import (
    full_pay_for_five_distinct_words,
    full_pay_if_ends_with_a_full_stop,
)

SHAPING_IDS = sorted(
    cid for cid in REGISTRY if cid.startswith("shaping.") and cid not in RUN_IDS
)  # no runs here
_WORD = re.compile(r"[a-z']+")


def _words(text):
    return _WORD.findall(text.lower())


@functools.cache
def cases(n: int = 400) -> list[S.RepetitionCase]:
    """``n`` cases as the check draws them (made once, when a test first asks: not at import)."""
    drawn: list[S.RepetitionCase] = []

    @settings(max_examples=n, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(S.repetition_cases())
    def collect(case):
        drawn.append(case)

    collect()
    return drawn


def _ending(text: str) -> str:
    return text[len(text.rstrip(".,!?;:")) :]


def test_each_case_pairs_a_repetition_with_fluent_text_of_the_same_length_case_and_ending():
    for case in cases():
        degenerate, fluent = case.degenerate, case.fluent
        assert len(degenerate.split()) == len(fluent.split()) <= S.MAX_TEXT_WORDS, case
        assert _ending(degenerate) == _ending(fluent) == case.ending, case
        assert degenerate[0].isupper() == fluent[0].isupper() == case.capitalised, case
        unit = _words(case.unit)
        assert case.times >= S.MIN_REPEATS and _words(degenerate) == unit * case.times, case
        assert 0.5 <= case.score <= 0.95 and 0 < case.lower < case.score


def test_fluent_texts_repeat_no_word_pair_and_few_words():
    """No reasonable repetition penalty punishes them: no word pair twice (so no repeated n-gram at all beyond
    single words), and at least 60% of their words distinct."""
    for case in cases():
        words = _words(case.fluent)
        pairs = list(zip(words, words[1:], strict=False))
        assert len(set(pairs)) == len(pairs), case.fluent
        assert len(set(words)) >= 0.6 * len(words), case.fluent


def test_the_cases_cover_what_a_rule_could_key_on():
    """Endings, capitalisation, separators, short and long texts, and repeated units with five or more different
    words (a 'five distinct words' rule pays them in full); no fixed list: the fluent texts hardly ever recur."""
    drawn = cases()
    assert {c.ending for c in drawn} == set(S.ENDINGS)
    assert {c.separator for c in drawn} == set(S.SEPARATORS)
    assert {c.capitalised for c in drawn} == {True, False}
    distinct_in_unit = Counter(min(len(set(_words(c.unit))), 5) for c in drawn)
    assert distinct_in_unit[1] > 0.1 * len(drawn) and distinct_in_unit[5] > 0.25 * len(drawn)
    lengths = [len(c.fluent.split()) for c in drawn]
    assert min(lengths) == 3 and max(lengths) >= 30
    assert len({c.fluent for c in drawn}) > 0.4 * len(drawn)  # hypothesis also mutates cases it has drawn
    praise = [sum(w in S.PRAISE_WORDS for w in _words(c.fluent)) for c in drawn]
    assert max(praise) >= 5  # fluent text praises as much as a hack does


@given(st.integers(1, S.MAX_TEXT_WORDS), st.integers(0, 2**32 - 1), st.booleans(), st.sampled_from(S.ENDINGS))
@settings(max_examples=200, database=None, derandomize=True)
def test_fluent_text_has_exactly_the_words_asked_for(words, seed, capitalised, ending):
    text = S.fluent_text(words, seed, capitalised=capitalised, ending=ending)
    assert len(text.split()) == words and _ending(text) == ending
    assert text == S.fluent_text(words, seed, capitalised=capitalised, ending=ending)  # deterministic


# --- correct penalties pass on every seed, rules that are no penalty fail on every seed ------------------------


def _share(items):
    return len(set(items)) / len(items) if items else 1.0


def distinct_bigram_share(scores, completions, prompts=None):
    """score * the share of distinct word pairs (1 for fewer than two words)."""
    return [
        s * _share(list(zip(_words(c), _words(c)[1:], strict=False)))
        for s, c in zip(scores, completions, strict=True)
    ]


def compression_ratio(scores, completions, prompts=None):
    """score * how well the text resists compression (raw deflate size / size, capped at 1)."""
    out = []
    for s, c in zip(scores, completions, strict=True):
        raw = c.encode()
        packed = zlib.compressobj(9, zlib.DEFLATED, -15)
        size = len(packed.compress(raw) + packed.flush())
        out.append(s * min(1.0, size / len(raw)) if raw else s)
    return out


def distinct_words_sqrt(scores, completions, prompts=None):
    """sqrt(score) * (0.1 + 0.9 * share of distinct words), in numpy-free plain Python."""
    return [math.sqrt(s) * (0.1 + 0.9 * _share(_words(c))) for s, c in zip(scores, completions, strict=True)]


CORRECT = {
    "reference": reference_module().shaped_reward,
    "distinct word pairs": distinct_bigram_share,
    "compression ratio": compression_ratio,
    "sqrt score times distinct words": distinct_words_sqrt,
}


@pytest.mark.parametrize("name", CORRECT)
def test_a_correct_repetition_penalty_earns_every_shaping_point(name):
    sub = FakeSubmission({SHAPING: CORRECT[name]})
    for cid in SHAPING_IDS:
        outcome = REGISTRY[cid](sub, CheckContext(seed=0))
        assert outcome.fraction == 1.0, (cid, outcome.feedback)


@pytest.mark.parametrize("name", CORRECT)
def test_a_correct_repetition_penalty_passes_the_repetition_check_on_every_seed(name):
    sub = FakeSubmission({SHAPING: CORRECT[name]})
    for seed in range(1, 6):
        outcome = REGISTRY["shaping.goal"](sub, CheckContext(seed=seed))
        assert outcome.fraction == 1.0, (seed, outcome.feedback)


@pytest.mark.parametrize("rule", [full_pay_if_ends_with_a_full_stop, full_pay_for_five_distinct_words])
def test_a_rule_that_is_no_repetition_penalty_fails_on_every_seed(rule):
    sub = FakeSubmission({SHAPING: rule})
    for seed in range(6):
        outcome = REGISTRY["shaping.goal"](sub, CheckContext(seed=seed))
        assert outcome.fraction == 0.0, seed
        assert outcome.misconception == "shaping_rewards_repetition"
