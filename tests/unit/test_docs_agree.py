"""The README quotes the tiny preset's graded runs and thresholds in prose (students read them there, not in
thresholds.toml); these tests hold the two together, so a recalibration that forgets the README fails here."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.training.settings import load_settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
TINY = load_settings("tiny")


def _quotes() -> list[tuple[str, str]]:
    runs, th = TINY.runs, TINY.thresholds
    return [
        ("forward kl_coef", f"your forward KL (`kl_coef` {runs.forward_kl_coef:g})"),
        ("backward kl_coef", f"your backward KL (`kl_coef` {runs.backward_kl_coef:g})"),
        (
            "steps and learning rate",
            f"each {runs.max_steps} steps at learning rate {runs.learning_rate:.0e}".replace("e-0", "e-"),
        ),
        ("KL runs' gain", f"sentiment by >= {th.kl_min_gain:.2f}"),
        ("KL runs' ratio", f"at most {th.kl_max_ratio:g}x the baseline's"),
        ("shaped gain", f"must raise sentiment by >= {th.shaped_min_gain:g}"),
        ("repetition drop", f"a repetition at least {th.shaped_min_repetition_drop:g} lower"),
        ("words drop", f'`"shorter"` {th.shaped_min_words_drop:g}\n  words fewer'),
        ("perplexity ratio", f"at most {th.shaped_max_perplexity_ratio:g}x the forward run's"),
        ("KL rise", f"at most {th.shaped_max_kl_rise:g} nats per token above it"),
    ]


@pytest.mark.parametrize(("what", "quote"), _quotes(), ids=[w for w, _ in _quotes()])
def test_the_readme_quotes_the_tiny_presets_settings_as_thresholds_toml_has_them(
    what: str, quote: str
) -> None:
    assert quote in README, f"README.md should say {quote!r} ({what}, from thresholds.toml [tiny])"
