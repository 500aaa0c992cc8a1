"""Every hypothesis strategy the grader's property checks draw from, by what it generates.

Inputs are plain JSON-able data (lists of floats and strings): the submission runs in another process.
Strategies are built so that hypothesis shrinks towards small, readable counterexamples (few rows, short rows,
round numbers).

* :mod:`~grader.checks.strategies.logprob_batches`: log-probability batches (the KL penalties' inputs) and the
  batch properties' cases;
* :mod:`~grader.checks.strategies.distributions`: small-vocabulary distributions (exact expectations, gradients);
* :mod:`~grader.checks.strategies.value_batches`: ragged, training-like batches of the value checks;
* :mod:`~grader.checks.strategies.hidden_cases`: distribution cases hidden among unrelated rows, clip cases;
* :mod:`~grader.checks.strategies.fluent_texts`: fluent reviews and the words a hacked policy repeats;
* :mod:`~grader.checks.strategies.shaping_cases`: reward shaping's batches, monotonicity and repetition cases;
* :mod:`~grader.checks.strategies.goal_cases`: the other shaping goals' cases (length, contrast, rhyme).

Every public name is re-exported here: the checks use ``from grader.checks import strategies as S``.
"""

from __future__ import annotations

from grader.checks.strategies.distributions import (
    DistributionCase,
    distributions,
)
from grader.checks.strategies.fluent_texts import (
    ENDINGS,
    FILM_NOUNS,
    MAX_TEXT_WORDS,
    MIN_REPEATS,
    PRAISE_WORDS,
    fluent_text,
    fluent_texts,
    text_words,
)
from grader.checks.strategies.goal_cases import (
    NON_RHYMES,
    RHYMES,
    ContrastCase,
    LengthCase,
    RhymeCase,
    contrast_cases,
    length_cases,
    rhyme_cases,
)
from grader.checks.strategies.hidden_cases import (
    ABOVE_EXACT_LOG_RATIOS,
    DIRECTION_EXAMPLES,
    TEACHING_DIRECTION_CASES,
    ClipCase,
    HiddenCase,
    clip_case,
    clip_cases,
    decoy_rows,
    hidden,
    hide,
    shown_in_order,
)
from grader.checks.strategies.logprob_batches import (
    EXTREME_EXAMPLES,
    LOGPROB_MIN,
    MAX_EXACT_RATIO,
    CoefCase,
    LogProbBatch,
    RepeatCase,
    SubsetCase,
    batch_subsets,
    coef_cases,
    extreme_logprob_batches,
    kl_coefs,
    log_probs,
    logprob_batches,
    repeat_cases,
)
from grader.checks.strategies.shaping_cases import (
    SCORE_GRID,
    SEPARATORS,
    UNIT_KINDS,
    MonotoneCase,
    RepetitionCase,
    ShapingBatch,
    completions,
    empty_ish_completions,
    monotone_cases,
    repeated_units,
    repetition_cases,
    scores,
    shaping_batches,
)
from grader.checks.strategies.value_batches import (
    MAX_VALUE_ROW,
    ROW_KINDS,
    TRAINING_MAX_LEN,
    TRAINING_ROWS,
    VALUE_EXAMPLES,
    fixed_value_batches,
    generated_row,
    to_float32,
    training_batches,
    training_like_rows,
    value_batches,
)

__all__ = [
    "LOGPROB_MIN",
    "MAX_EXACT_RATIO",
    "LogProbBatch",
    "kl_coefs",
    "log_probs",
    "logprob_batches",
    "extreme_logprob_batches",
    "EXTREME_EXAMPLES",
    "SubsetCase",
    "batch_subsets",
    "RepeatCase",
    "repeat_cases",
    "CoefCase",
    "coef_cases",
    "DistributionCase",
    "distributions",
    "MAX_VALUE_ROW",
    "ROW_KINDS",
    "generated_row",
    "value_batches",
    "TRAINING_ROWS",
    "TRAINING_MAX_LEN",
    "to_float32",
    "training_like_rows",
    "training_batches",
    "fixed_value_batches",
    "VALUE_EXAMPLES",
    "ABOVE_EXACT_LOG_RATIOS",
    "ClipCase",
    "clip_case",
    "clip_cases",
    "HiddenCase",
    "hide",
    "decoy_rows",
    "hidden",
    "DIRECTION_EXAMPLES",
    "shown_in_order",
    "TEACHING_DIRECTION_CASES",
    "PRAISE_WORDS",
    "FILM_NOUNS",
    "MIN_REPEATS",
    "MAX_TEXT_WORDS",
    "ENDINGS",
    "text_words",
    "fluent_text",
    "fluent_texts",
    "completions",
    "scores",
    "ShapingBatch",
    "shaping_batches",
    "empty_ish_completions",
    "MonotoneCase",
    "SCORE_GRID",
    "monotone_cases",
    "UNIT_KINDS",
    "SEPARATORS",
    "RepetitionCase",
    "repeated_units",
    "repetition_cases",
    "LengthCase",
    "length_cases",
    "ContrastCase",
    "contrast_cases",
    "RHYMES",
    "NON_RHYMES",
    "RhymeCase",
    "rhyme_cases",
]
