"""A shared baseline run: the training checks' control run, made once and reused by many grades.

The baseline run (GRPO on the sentiment reward, no penalty) calls none of the submission's functions, so every
grade at one seed and preset makes the same run. A batch makes it once (:func:`make_baseline`), writes it to a
file (:func:`write_baseline`) and grades every submission with ``python -m grader --baseline-run FILE``; each
grade then makes three runs instead of four.

A shared run must be the run the grade would have made, or the grade would be wrong, so :func:`load_baseline`
accepts a file only when everything the run depends on matches the grade: the seed, the preset (a concrete one;
the grade's ``auto`` is compared once its lanes have resolved it), the training settings file (its digest), the
versions of torch, transformers and TRL, and the run's recorded configuration; and only a baseline that finished
with a validation history. Anything else is a :class:`BaselineError` with one line saying what differs.

    python -m grader.tools baseline --out baseline.json [--seed N] [--training-preset tiny]

makes one by hand (the batch does this itself).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from grader.sandbox.policy import SandboxConfig
from grader.training.runs import Job, RunRecord, execute
from grader.training.settings import (
    PRESETS,
    SETTINGS_PATH,
    SettingsError,
    file_digest,
    load_settings,
    train_config,
)

FORMAT = "rl-sentiment baseline run"
#: 2: files record the training pipeline's digest (version 1 files are refused: make them again)
VERSION = 2
#: The libraries a run's numbers depend on (the grader process reads their versions without importing them).
LIBRARIES = ("torch", "transformers", "trl")
#: What the scoring reads from every validation of the baseline.
_HISTORY_KEYS = ("step", "sentiment_mean", "kl_forward", "kl_backward")
#: A baseline takes one run's budget; ``auto`` does not know its preset yet, so the larger one.
DEFAULT_TIMEOUT_S = 600.0


class BaselineError(ValueError):
    """A shared baseline file that cannot be used for this grade (the message is one line saying why)."""


#: The code and files a run's numbers depend on besides the libraries: the exercise's pipeline and shipped model
#: (the student's exercise/rewards.py aside: the baseline calls none of it) and the grader's training lane.
_PIPELINE_ROOTS = (
    (Path(__file__).resolve().parents[2] / "exercise", ("rewards.py",)),
    (Path(__file__).resolve().parent, ()),
)
#: The sentiment scorer of the tiny preset is a library too; its version is part of the pipeline's digest.
_PIPELINE_LIBRARIES = ("vaderSentiment",)


@functools.cache
def pipeline_digest() -> str:
    """One digest of everything in :data:`_PIPELINE_ROOTS` (Python files and the shipped model's files) and the
    scorer library's version: a change to any of them (a new grader, an edited pipeline) makes earlier runs stale.
    Tens of milliseconds (the model's 3.7 MB), and a kept run is checked and named with it several times: computed
    once per process (the code a process runs does not change under it)."""
    digest = hashlib.sha256()
    for root, skipped in _PIPELINE_ROOTS:
        for path in sorted(root.rglob("*")):
            if path.name in skipped or not path.is_file() or "__pycache__" in path.parts:
                continue
            if path.suffix not in {".py", ".json", ".txt", ".safetensors", ".toml"}:
                continue
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    for name in _PIPELINE_LIBRARIES:
        try:
            digest.update(f"{name}=={metadata.version(name)}".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{name} missing".encode())
    return digest.hexdigest()


def environment() -> dict[str, Any]:
    """What a baseline run depends on besides its seed and preset: the settings file, library versions and the
    pipeline's code and model files."""
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "settings_digest": file_digest(SETTINGS_PATH),
        "versions": versions,
        "pipeline_digest": pipeline_digest(),
    }


def make_baseline(
    seed: int,
    preset: str = "auto",
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    call_timeout_s: float = 10.0,
    isolation: str = "auto",
    work_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Make the baseline run of ``seed`` and ``preset`` in a training lane; return the file's content.

    Raises :class:`BaselineError` when the run does not finish with a validation history (the caller decides
    whether to grade without a shared baseline)."""
    with tempfile.TemporaryDirectory(prefix="grader-baseline-", dir=work_dir) as tmp:
        # A lane opens a sandbox for its submission even when the run calls none of its functions: give it
        # a file with none.
        placeholder = Path(tmp) / "no_submission.py"
        placeholder.write_text("# the baseline run calls no submission code\n", encoding="utf-8")
        records = execute(
            [Job("baseline", "baseline", str(placeholder), seed)],
            work_dir=Path(tmp) / "runs",
            timeout_s=timeout_s,
            preset=preset,
            lanes=1,
            sandbox=SandboxConfig(call_timeout_s=call_timeout_s, isolation=isolation),
        )
    record = records.get("baseline")
    if record is None or not record.usable:
        raise BaselineError(
            f"the baseline run failed: {(record.error if record else None) or 'no validation history'}"
        )
    return baseline_content(record)


def baseline_content(record: RunRecord) -> dict[str, Any]:
    """A baseline file's content for ``record``, a finished baseline run made by this grader."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "seed": record.seed,
        "preset": record.preset,
        **environment(),
        "record": record.to_dict(),
    }


def write_baseline(path: str | Path, content: Mapping[str, Any]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(content) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def check_baseline(content: Any, *, seed: int, preset: str, source: str = "the shared baseline") -> RunRecord:
    """The baseline record in ``content`` (a baseline file's JSON), if it may stand in for this grade's own
    baseline run at ``seed`` and ``preset`` (``auto``: any concrete preset); else :class:`BaselineError`."""
    if not isinstance(content, dict) or content.get("format") != FORMAT:
        raise BaselineError(f"{source} is not a baseline-run file (make one with {_MAKE})")
    if content.get("version") != VERSION:
        raise BaselineError(
            f"{source} has format version {content.get('version')!r}, not {VERSION}: make it again"
        )
    if content.get("seed") != seed:
        raise BaselineError(
            f"{source} was made for seed {content.get('seed')!r}, this grade uses seed {seed}"
        )
    made_for = content.get("preset")
    if made_for not in PRESETS:
        raise BaselineError(f"{source} names no training preset ({made_for!r})")
    if preset != "auto" and made_for != preset:
        raise BaselineError(f"{source} was made with the {made_for} preset, this grade uses {preset}")
    here = environment()
    if content.get("settings_digest") != here["settings_digest"]:
        raise BaselineError(
            f"{source} was made with other training settings ({SETTINGS_PATH.name} changed since): make it again"
        )
    if content.get("versions") != here["versions"]:
        raise BaselineError(
            f"{source} was made with {_versions(content.get('versions'))}, this grader has "
            f"{_versions(here['versions'])}: make it again here"
        )
    if content.get("pipeline_digest") != here["pipeline_digest"]:
        raise BaselineError(
            f"{source} was made by another version of the training pipeline (exercise/ or grader/training/ "
            "changed since): make it again"
        )
    record = content.get("record")
    if not isinstance(record, dict) or record.get("run") != "baseline":
        raise BaselineError(f"{source} holds no baseline run record")
    if not record.get("ok") or record.get("internal") or record.get("gated") or record.get("error"):
        raise BaselineError(f"{source} is a failed run ({record.get('error') or 'not ok'}): make it again")
    if record.get("seed") != seed or record.get("preset") != made_for:
        raise BaselineError(f"{source}: its run record is for another seed or preset than the file says")
    history = record.get("history")
    if not isinstance(history, list) or len(history) < 2 or not all(_validation(v) for v in history):
        raise BaselineError(f"{source} has no usable validation history")
    try:
        expected = train_config("baseline", load_settings(made_for), seed, "")
    except SettingsError as exc:
        raise BaselineError(f"cannot check {source}: {exc}") from exc
    recorded = dict(record.get("config") or {})
    recorded["output_dir"] = expected["output_dir"] = ""  # where the run wrote its files does not matter
    if recorded != expected:
        raise BaselineError(f"{source} was made with other run settings than this grader's: make it again")
    return RunRecord.from_dict(record)


def load_baseline(path: str | Path, *, seed: int, preset: str) -> RunRecord:
    """:func:`check_baseline` on the file at ``path`` (an unreadable file is a :class:`BaselineError` too)."""
    source = f"the shared baseline {path}"
    try:
        content = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise BaselineError(f"cannot read {source}: {reason}") from exc
    return check_baseline(content, seed=seed, preset=preset, source=source)


def _validation(entry: Any) -> bool:
    return isinstance(entry, dict) and all(
        isinstance(entry.get(k), int | float)
        and not isinstance(entry.get(k), bool)
        and math.isfinite(entry.get(k))
        for k in _HISTORY_KEYS
    )


def _versions(versions: Any) -> str:
    if not isinstance(versions, dict):
        return "unknown library versions"
    return ", ".join(f"{name} {versions.get(name)}" for name in LIBRARIES)


_MAKE = "python -m grader.tools baseline"


# ---------------------------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class BaselineConfig:
    out: Path = field(metadata={"help": "where to write the baseline file (JSON)", "metavar": "PATH"})
    seed: int = field(default=0, metadata={"help": "the grading seed the baseline is for"})
    training_preset: Literal["auto", "tiny", "gpt2"] = field(
        default="auto",
        metadata={"help": "the training preset (auto: as a grade on this machine resolves it)"},
    )
    timeout: float = field(default=DEFAULT_TIMEOUT_S, metadata={"help": "seconds the run may take"})


def main(argv: Sequence[str] | None = None) -> int:
    from grader.dataclass_cli import parse_into

    config = parse_into(
        BaselineConfig,
        argv,
        prog=_MAKE,
        description="Make the training checks' baseline run once, for python -m grader --baseline-run FILE.",
    )
    try:
        content = make_baseline(config.seed, config.training_preset, timeout_s=config.timeout)
    except BaselineError as exc:
        print(f"{_MAKE}: error: {exc}", file=sys.stderr)
        return 2
    write_baseline(config.out, content)
    print(f"wrote {config.out} (seed {config.seed}, preset {content['preset']})")
    return 0
