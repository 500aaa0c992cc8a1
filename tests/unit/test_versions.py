"""The calibrated library versions (grader/constraints.txt) and the grader's warning when others are installed."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from grader import versions
from grader.versions import VersionDifference, calibrated_versions, version_differences, version_warning

REPO = Path(__file__).resolve().parents[2]


def _installed(table: dict[str, str | None]):
    return lambda package: table.get(package)


def test_the_constraints_pin_the_libraries_the_thresholds_depend_on() -> None:
    pins = calibrated_versions()
    assert {"torch", "transformers", "trl", "accelerate", "datasets", "tokenizers"} <= set(pins)
    # The calibration's own record of the versions it ran with must agree with the pins.
    record = (REPO / "grader" / "training" / "calibration" / "tiny.md").read_text(encoding="utf-8")
    for package in ("torch", "transformers", "trl"):
        assert f"{package} {pins[package]}" in record, package


def test_a_differing_version_is_named_in_the_warning() -> None:
    pins = {"torch": "2.13.0", "transformers": "5.24.0", "trl": "1.16.0"}
    found = version_differences(pins, _installed({"torch": "2.13.0+cpu", "transformers": "5.25.0"}))
    assert found == [
        VersionDifference("transformers", "5.25.0", "5.24.0"),
        VersionDifference("trl", None, "1.16.0"),
    ]
    message = version_warning(found)
    assert "transformers 5.25.0 (calibrated: 5.24.0)" in message
    assert "trl not installed (calibrated: 1.16.0)" in message
    assert "torch" not in message  # the same version in another build (+cpu) is the same version
    assert "pip install -c" in message and str(versions.CONSTRAINTS) in message  # what to do about it


def test_equal_versions_are_silent(monkeypatch: pytest.MonkeyPatch) -> None:
    pins = calibrated_versions()
    monkeypatch.setattr(versions, "installed_version", lambda package: pins[package])
    stream = io.StringIO()
    assert versions.warn_if_uncalibrated(stream) == "" and stream.getvalue() == ""
    assert (
        version_differences(
            pins, _installed({"torch": "2.13"} | {k: v for k, v in pins.items() if k != "torch"})
        )
        == []
    )


def test_the_warning_goes_to_the_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(versions, "installed_version", lambda package: "0.0.1")
    stream = io.StringIO()
    message = versions.warn_if_uncalibrated(stream)
    assert message and stream.getvalue().strip() == message
    for package, version in calibrated_versions().items():
        assert f"{package} 0.0.1 (calibrated: {version})" in message


def test_constraints_file_parsing(tmp_path: Path) -> None:
    path = tmp_path / "c.txt"
    path.write_text("# comment\n\ntorch==2.13.0  # why\nrange>=1.0\nmarker==1.2; python_version < '3.11'\n")
    assert calibrated_versions(path) == {"torch": "2.13.0", "marker": "1.2"}
    assert calibrated_versions(tmp_path / "missing.txt") == {}


def test_the_grader_warns_when_training_checks_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The grader's start (grader/cli.py) prints the warning when the grade has training checks, not without."""
    from grader import cli

    monkeypatch.setattr(versions, "installed_version", lambda package: "0.0.1")
    monkeypatch.setenv("HYPOTHESIS_STORAGE_DIRECTORY", str(tmp_path / "hypothesis"))
    missing = ["--submission", str(tmp_path / "missing.py"), "--results", str(tmp_path / "r.json")]
    cli.main([*missing, "--quiet"])  # nothing to grade: fast, but the grade with training started
    assert "transformers 0.0.1 (calibrated:" in capsys.readouterr().err
    cli.main([*missing, "--quiet", "--no-training"])
    assert "calibrated" not in capsys.readouterr().err
