"""The library versions the training checks were calibrated with (``grader/constraints.txt``), and a warning
when a grade with training runs on others.

The thresholds are only meaningful for the runs they were calibrated on, and those runs depend on torch,
transformers, TRL and the rest: another version can move a run's numbers past a threshold. The grade still runs
(a newer library is usually fine, and refusing would leave a student without feedback); the warning says which
versions differ so that whoever reads a surprising training score knows where to look.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TextIO

CONSTRAINTS = Path(__file__).with_name("constraints.txt")
_PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s;#]+)")


@dataclass(frozen=True)
class VersionDifference:
    package: str
    installed: str | None  # None: not installed
    calibrated: str

    def describe(self) -> str:
        have = f"{self.installed}" if self.installed is not None else "not installed"
        return f"{self.package} {have} (calibrated: {self.calibrated})"


def calibrated_versions(path: Path = CONSTRAINTS) -> dict[str, str]:
    """Package -> pinned version, from the ``name==version`` lines of a constraints file (empty if none)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return {}
    pins = {}
    for line in text.splitlines():
        match = _PIN.match(line)
        if match:
            pins[match.group(1)] = match.group(2)
    return pins


def installed_version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _public(version: str) -> object:
    """What ``==`` compares in a constraint: the version without its local label (``2.13.0+cpu`` is 2.13.0),
    normalised where ``packaging`` is installed (``2.13`` is 2.13.0)."""
    public = version.split("+", 1)[0]
    try:
        from packaging.version import InvalidVersion, Version
    except ImportError:  # packaging comes with transformers; without it, compare the text
        return public
    try:
        return Version(public)
    except InvalidVersion:
        return public


def version_differences(
    calibrated: Mapping[str, str] | None = None,
    installed: Callable[[str], str | None] | None = None,
) -> list[VersionDifference]:
    """Every calibrated package whose installed version differs (or that is not installed)."""
    pins = calibrated_versions() if calibrated is None else calibrated
    installed = installed or installed_version
    differences = []
    for package, version in pins.items():
        have = installed(package)
        if have is None or _public(have) != _public(version):
            differences.append(VersionDifference(package, have, version))
    return differences


def version_warning(differences: list[VersionDifference], constraints: Path = CONSTRAINTS) -> str:
    """One warning naming each differing version, or "" when there is none."""
    if not differences:
        return ""
    listed = ", ".join(d.describe() for d in differences)
    return (
        f"grader: warning: the training checks' thresholds were calibrated with other library versions than "
        f"these: {listed}. The training checks may score differently than they would with the calibrated ones. "
        f"To grade as calibrated, reinstall with the constraints: pip install -c {constraints} "
        f"<the project's folder>. Instructors who mean to use these versions: recalibrate (python -m grader.tools "
        f"calibrate) and write them into {constraints.name}."
    )


def warn_if_uncalibrated(stream: TextIO | None = None) -> str:
    """Print the warning (to stderr by default) when installed versions differ from the calibrated ones; return
    it ("" when they are the same). Call it once when a grade with training checks starts."""
    message = version_warning(version_differences())
    if message:
        print(message, file=stream if stream is not None else sys.stderr, flush=True)
    return message
