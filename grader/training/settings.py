"""The graded runs (:data:`RUNS`: which functions of the submission each trains with) and their settings and
thresholds per preset, read from ``calibration/thresholds.toml`` next to this file (written by
``python -m grader.tools calibrate``)."""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader.contract import BACKWARD, FORWARD, SHAPING

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

SETTINGS_PATH = Path(__file__).with_name("calibration") / "thresholds.toml"
PRESETS = ("tiny", "gpt2")
PRESET_CHOICES = ("auto", *PRESETS)
#: A lane's own output (transformers' warnings ...), kept for the grader's error messages.
_LOG_TAIL_BYTES = 3000


# ---------------------------------------------------------------------------------------------------------------
# The runs and their settings
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunSpec:
    """One kind of graded run: ``python -m exercise.train --reward_shaping ... --kl_type ...``."""

    name: str
    reward_shaping: str
    kl_type: str
    function: str | None  # the submission's function the run is about (None: the baseline needs none)
    label: str  # for people: legends, feedback
    also_needs: tuple[str, ...] = ()  # further functions of the submission the run trains with

    @property
    def needs(self) -> tuple[str, ...]:
        """Every function of the submission this run calls (the gate tries each before the run starts)."""
        return (self.function, *self.also_needs) if self.function else ()


RUNS: dict[str, RunSpec] = {
    spec.name: spec
    for spec in (
        RunSpec("baseline", "linear", "none", None, "baseline (sentiment reward, no KL penalty)"),
        RunSpec("forward", "linear", "forward", FORWARD, f"your {FORWARD}"),
        RunSpec("backward", "linear", "backward", BACKWARD, f"your {BACKWARD}"),
        # Exercise 2's run (`--reward_shaping shaped --kl_type forward`): the shaping is judged against the forward
        # run, which differs from it only in the shaping (same penalty, coefficient and seed).
        RunSpec(
            "shaped",
            "shaped",
            "forward",
            SHAPING,
            f"your {SHAPING} with your {FORWARD}",
            also_needs=(FORWARD,),
        ),
    )
}


#: The tuning challenge's run (grader.training.challenge): its settings are the student's; the rest is a graded
#: run's. Not in RUNS: only a grade whose rubric has the challenge makes it.
CHALLENGE = RunSpec("challenge", "linear", "none", None, "your tuning challenge's run")


def spec_of(run: str) -> RunSpec:
    return CHALLENGE if run == CHALLENGE.name else RUNS[run]


@dataclass(frozen=True)
class RunSettings:
    max_steps: int
    eval_every: int
    validation_prompts: int  # the first N of exercise.prompts.VALIDATION_PROMPTS
    forward_kl_coef: float
    backward_kl_coef: float
    run_budget_s: float
    #: the graded runs' learning rate (optional key; None: the preset's, exercise/presets.py)
    learning_rate: float | None = None

    def kl_coef(self, kl_type: str) -> float:
        """The coefficient of a run with ``--kl_type kl_type`` (the forward and the shaped run share one)."""
        return {"forward": self.forward_kl_coef, "backward": self.backward_kl_coef}.get(kl_type, 0.0)


#: Threshold keys that changed meaning, and what to write instead (an older thresholds.toml names them).
RENAMED = {
    "shaped_max_kl_ratio": "replaced by shaped_max_kl_rise (2026-12-05): the shaped run's final KL(pi || pi_ref) "
    "may now exceed the forward run's by at most this many nats per token, a difference instead of a ratio. "
    "Recalibrate (python -m grader.tools calibrate) or copy the value from the project's thresholds.toml",
}


@dataclass(frozen=True)
class Thresholds:
    baseline_min_gain: float
    kl_min_gain: float
    kl_max_ratio: float
    shaped_min_gain: float
    shaped_min_repetition_drop: float
    shaped_max_perplexity_ratio: float
    #: nats per token: the shaped run's final KL(pi || pi_ref) minus its control's (a difference, not a ratio: the
    #: controls' KL spread across seeds made the ratio noisier; thresholds.toml says more)
    shaped_max_kl_rise: float
    # The other declared goals' training metrics (grader.checks.goals.TrainingMetric): the least move against the
    # forward run. Read from thresholds.toml like the rest; the defaults only serve code that builds thresholds
    # itself (tests) for the repetition goal: with them no run passes another goal's metric.
    shaped_min_words_rise: float = math.inf
    shaped_min_words_drop: float = math.inf
    shaped_min_contrast_rise: float = math.inf
    shaped_min_rhyme_rise: float = math.inf


@dataclass(frozen=True)
class ChallengeTargets:
    """Where the tuning challenge's run must end (validation at its last step), and how long it may be."""

    min_sentiment: float  # validation sentiment mean at least this
    max_ref_perplexity: float  # the samples' perplexity under the reference model at most this
    min_distinct_2: float  # distinct bigram share of the samples at least this
    max_run_steps: int  # the longest run a student may ask for (the grade's time budget)


@dataclass(frozen=True)
class TrainingSettings:
    preset: str
    calibrated: bool
    note: str
    runs: RunSettings
    thresholds: Thresholds
    challenge: ChallengeTargets


class SettingsError(ValueError):
    """``thresholds.toml`` is missing, unreadable or invalid (the grader's problem, reported as such)."""


#: The declared goals' training metrics (``[<preset>.thresholds]``): each a number, or ``SHOWN_ONLY`` where the
#: calibration found the graded run too short to move the metric beyond its seed-to-seed noise on that preset. Then
#: the shaped check shows the metric but does not require it, and the goal is judged by its defining property check
#: (which gates the shaped check's points), so a correct shaping is never charged for the run's noise.
GOAL_METRIC_KEYS = frozenset(
    {"shaped_min_words_rise", "shaped_min_words_drop", "shaped_min_contrast_rise", "shaped_min_rhyme_rise"}
)
SHOWN_ONLY = "shown"


def load_settings(preset: str, path: str | os.PathLike | None = None) -> TrainingSettings:
    """The run settings and thresholds of ``preset`` (``tiny`` or ``gpt2``), validated."""
    path = Path(path) if path is not None else SETTINGS_PATH
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"{path}: cannot read the training settings ({exc})") from exc
    table = data.get(preset)
    if not isinstance(table, dict):
        raise SettingsError(f"{path}: no [{preset}] table (presets there: {', '.join(sorted(data))})")

    def section(name: str, cls: type) -> Any:
        raw = table.get(name)
        known = cls.__dataclass_fields__
        # the keys without a default must be there; those with one may be
        wanted = {f for f, spec in known.items() if spec.default is dataclasses.MISSING}
        renamed = sorted(set(raw) & set(RENAMED)) if isinstance(raw, dict) else []
        if renamed:
            raise SettingsError(f"{path}: [{preset}.{name}] {renamed[0]}: {RENAMED[renamed[0]]}")
        if not isinstance(raw, dict) or not wanted <= set(raw) <= set(known):
            got = sorted(raw) if isinstance(raw, dict) else raw
            optional = sorted(set(known) - wanted)
            also = f" (and may have {optional})" if optional else ""
            raise SettingsError(
                f"{path}: [{preset}.{name}] must have exactly {sorted(wanted)}{also}, not {got}"
            )
        raw = dict(raw)
        for key, value in raw.items():
            if key in GOAL_METRIC_KEYS and value == SHOWN_ONLY:
                raw[key] = -math.inf  # the goal's metric is shown, not required (see SHOWN_ONLY)
            elif isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                also = f' (or "{SHOWN_ONLY}")' if key in GOAL_METRIC_KEYS else ""
                raise SettingsError(f"{path}: [{preset}.{name}] {key} must be a number{also}, not {value!r}")
        return cls(**raw)

    runs = section("runs", RunSettings)
    if min(runs.max_steps, runs.eval_every, runs.validation_prompts) < 1 or runs.run_budget_s <= 0:
        raise SettingsError(
            f"{path}: [{preset}.runs] max_steps, eval_every, validation_prompts and run_budget_s must be positive"
        )
    if runs.validation_prompts != int(runs.validation_prompts):
        raise SettingsError(f"{path}: [{preset}.runs] validation_prompts must be a whole number")
    if min(runs.forward_kl_coef, runs.backward_kl_coef) <= 0:
        raise SettingsError(f"{path}: [{preset}.runs] the KL coefficients must be positive")
    if runs.learning_rate is not None and runs.learning_rate <= 0:
        raise SettingsError(f"{path}: [{preset}.runs] learning_rate must be positive")
    thresholds = section("thresholds", Thresholds)
    if (
        min(thresholds.kl_max_ratio, thresholds.shaped_max_perplexity_ratio, thresholds.shaped_max_kl_rise)
        <= 0
    ):
        raise SettingsError(
            f"{path}: [{preset}.thresholds] kl_max_ratio, shaped_max_perplexity_ratio and shaped_max_kl_rise "
            "must be positive"
        )
    challenge = section("challenge", ChallengeTargets)
    if challenge.max_run_steps != int(challenge.max_run_steps) or challenge.max_run_steps < 20:
        raise SettingsError(
            f"{path}: [{preset}.challenge] max_run_steps must be a whole number of at least 20"
        )
    return TrainingSettings(
        preset=preset,
        calibrated=bool(table.get("calibrated", False)),
        note=str(table.get("note", "")),
        runs=runs,
        thresholds=thresholds,
        challenge=ChallengeTargets(**{**challenge.__dict__, "max_run_steps": int(challenge.max_run_steps)}),
    )


def train_config(
    run: str,
    settings: TrainingSettings,
    seed: int,
    output_dir: str,
    *,
    model_name: str = "",
    sentiment_model: str = "",
) -> dict[str, Any]:
    """The :class:`exercise.config.TrainConfig` fields of one graded run (plain data: it is also recorded).
    ``model_name`` / ``sentiment_model`` (the grade's ``--model_name`` / ``--sentiment_model``) replace the
    preset's models; left empty, the fields are not set at all, so the record says the preset's were used."""
    spec = spec_of(run)
    models = {"model_name": model_name, "sentiment_model": sentiment_model}
    return {
        **{name: value for name, value in models.items() if value},
        "preset": settings.preset,
        "reward_shaping": spec.reward_shaping,
        "kl_type": spec.kl_type,
        "kl_coef": settings.runs.kl_coef(spec.kl_type) if spec.kl_type != "none" else 0.1,
        **({"learning_rate": settings.runs.learning_rate} if settings.runs.learning_rate else {}),
        "max_steps": settings.runs.max_steps,
        "eval_every": settings.runs.eval_every,
        "validation_prompts": int(settings.runs.validation_prompts),
        "seed": seed,
        "output_dir": output_dir,
        "save_model": False,
        "write_files": False,  # the lane returns the record; the run's own files and plot would go unread
        "quiet": True,
    }


def file_digest(path: str | os.PathLike) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ---------------------------------------------------------------------------------------------------------------
# The grade's own models (--model_name / --sentiment_model)
# ---------------------------------------------------------------------------------------------------------------

#: What the sentiment option takes besides a model directory (exercise.sentiment.build_scorer).
VADER = "vader"


def model_option_problem(option: str, value: str) -> str:
    """Why the training runs could not load ``value`` given as ``option`` (``--model_name`` or
    ``--sentiment_model``), as one line that says what to pass instead; "" when they can.

    The runs are offline (their processes set HF_HUB_OFFLINE), so a model is a local directory written by
    ``save_pretrained`` (or a Hub name already in the local Hugging Face cache)."""
    if option == "--sentiment_model" and value.lower() == VADER:
        return ""
    what = (
        "a 5-star sentiment classifier"
        if option == "--sentiment_model"
        else "a causal language model (GPT-2)"
    )
    fix = f"pass the directory that save_pretrained wrote for {what} (config.json, weights, tokenizer files)"
    if option == "--sentiment_model":
        fix += ", or vader"
    path = Path(value).expanduser()
    if path.is_dir():
        if (path / "config.json").is_file():
            return ""
        return f"{option} {value}: the directory has no config.json, so it holds no saved model; {fix}"
    if path.exists():
        return f"{option} {value}: a file, not a model directory; {fix}"
    if not value.startswith((".", "/", "~")) and _in_hub_cache(value):
        return ""
    return (
        f"{option} {value}: no such directory, and no model of that name in the local Hugging Face cache (the "
        f"training runs are offline); {fix}"
    )


def _in_hub_cache(name: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(name, "config.json"), str)
    except Exception:  # noqa: BLE001 - a name the hub library rejects, or no hub library: not cached
        return False


def model_option_value(value: str) -> str:
    """What the runs get for a model option that :func:`model_option_problem` accepted: a directory as an absolute
    path (the training processes run in their own working directories), a name or ``vader`` as it is."""
    path = Path(value).expanduser()
    return str(path.resolve()) if path.is_dir() else value
