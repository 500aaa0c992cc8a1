"""The GitHub Classroom workflow (.github/workflows/classroom.yml) and its reporter (grader/classroom.py)."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest

from grader import classroom

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / ".github" / "workflows" / "classroom.yml"


@pytest.fixture(scope="module")
def workflow() -> dict:
    import yaml  # a dependency of transformers: always installed

    data = yaml.safe_load(WORKFLOW.read_text())
    assert isinstance(data, dict)
    return data


def _steps(workflow: dict) -> list[dict]:
    return workflow["jobs"]["run-autograding-tests"]["steps"]


def test_workflow_names_classroom_requires(workflow: dict) -> None:
    # The Classroom reporter only uploads points from this workflow name and this single job.
    assert workflow["name"] == "Autograding Tests"
    assert list(workflow["jobs"]) == ["run-autograding-tests"]
    assert "push" in workflow["on"]  # quoted "on": YAML 1.1 would otherwise read it as True
    assert workflow["permissions"] == {"contents": "read", "actions": "read"}


def test_workflow_grades_with_the_instructors_grader(workflow: dict) -> None:
    steps = _steps(workflow)
    checkouts = [s for s in steps if str(s.get("uses", "")).startswith("actions/checkout@")]
    assert len(checkouts) == 2
    submission, instructor = checkouts
    assert submission["with"]["path"] == "submission"
    assert instructor["with"]["repository"] == "${{ vars.GRADER_REPOSITORY }}"
    assert instructor["with"]["ref"] == "${{ vars.GRADER_REF }}"
    assert instructor["with"]["path"] != "submission"
    # Never with the student's own repository as the grader: the job is skipped without the variable (and in the
    # instructor's repository), and a guard before any checkout fails if it is somehow empty or the same.
    condition = workflow["jobs"]["run-autograding-tests"]["if"]
    assert (
        "vars.GRADER_REPOSITORY != ''" in condition
        and "vars.GRADER_REPOSITORY != github.repository" in condition
    )
    guard = steps[0]["run"]
    assert steps.index(submission) > 0 and "GRADER_REPOSITORY" in guard and "exit 1" in guard
    assert "$GITHUB_REPOSITORY" in guard

    runs = "\n".join(s.get("run", "") for s in steps)
    install = _install_step(workflow)
    assert f"./{instructor['with']['path']}" in install["run"]  # the instructor's copy is installed ...
    assert "./submission" not in runs.replace(
        "/submission/exercise/rewards.py", ""
    )  # ... never the student's
    grade = next(s for s in steps if s.get("id") == "grade")
    assert 'cd "$RUNNER_TEMP"' in grade["run"]  # nothing of the student's repo on sys.path
    assert re.search(r"python -m grader \"\$\{args\[@\]\}\"", grade["run"])
    assert '--submission "$GITHUB_WORKSPACE/submission/exercise/rewards.py"' in grade["run"]
    assert '--results "$GITHUB_WORKSPACE/results.json"' in grade["run"]
    assert "python -m grader.classroom" in grade["run"]


def _install_step(workflow: dict) -> dict:
    return next(
        s for s in _steps(workflow) if "pip install" in s.get("run", "") and "instructor-grader" in s["run"]
    )


def _pip_installs(run: str) -> list[str]:
    """The script's pip install commands, one per line (the line continuations joined)."""
    return [
        line.strip()
        for line in run.replace("\\\n", " ").splitlines()
        if "pip install" in line and "--upgrade pip" not in line
    ]


def test_workflow_installs_the_calibrated_versions(workflow: dict) -> None:
    """Issue 21: every package the grade needs is installed with the grader's constraints file (the versions
    the training thresholds were calibrated with), the one inside the instructor's checkout."""
    install = _install_step(workflow)["run"]
    variables = dict(re.findall(r"^\s*(\w+)=(\S+)\s*$", install, re.MULTILINE))
    commands = _pip_installs(install)
    assert any("torch" in c for c in commands) and any("./instructor-grader" in c for c in commands)
    for command in commands:
        match = re.search(r"(?:-c|--constraint)[ =]\"?(\$\w+|[^\s\"]+)\"?", command)
        assert match, f"installs without the constraints file: {command}"
        path = match.group(1)
        path = variables.get(path.lstrip("$"), path) if path.startswith("$") else path
        assert path.lstrip("./") == "instructor-grader/grader/constraints.txt", command
    # The file is the one the grader checks its versions against, and it ships in the grader package, also in
    # a handout (the grader repository the workflow checks out is made from one).
    from grader.tools.handout import is_excluded
    from grader.versions import CONSTRAINTS

    assert CONSTRAINTS == REPO / "grader" / "constraints.txt" and CONSTRAINTS.is_file()
    assert not is_excluded("grader/constraints.txt")


def test_workflow_caches_pip(workflow: dict) -> None:
    """Issue 21: pip's downloads (torch above all) are cached between pushes, keyed on the grader's pins."""
    steps = _steps(workflow)
    setup = next(s for s in steps if str(s.get("uses", "")).startswith("actions/setup-python@"))
    cache_steps = [s for s in steps if str(s.get("uses", "")).startswith("actions/cache@")]
    if setup["with"].get("cache") == "pip":
        keyed_on = setup["with"]["cache-dependency-path"]
    else:
        assert cache_steps, "neither setup-python's pip cache nor actions/cache"
        assert any("pip" in str(s["with"].get("path", "")) for s in cache_steps)
        keyed_on = " ".join(str(s["with"].get("key", "")) for s in cache_steps)
    assert "instructor-grader/grader/constraints.txt" in keyed_on
    # The cached files must exist when setup-python looks for them: the grader is checked out before it.
    checkout = next(i for i, s in enumerate(steps) if s.get("with", {}).get("path") == "instructor-grader")
    assert checkout < steps.index(setup) < steps.index(_install_step(workflow))


def test_workflow_uploads_results_and_reports_points(workflow: dict) -> None:
    steps = _steps(workflow)
    upload = next(s for s in steps if str(s.get("uses", "")).startswith("actions/upload-artifact@"))
    assert upload["with"]["path"] == "results.json" and upload["if"] == "always()"
    reporter = next(s for s in steps if "autograding-grading-reporter" in str(s.get("uses", "")))
    runner = reporter["with"]["runners"]
    # The reporter reads <RUNNER>_RESULTS, which must carry the grade step's "result" output.
    assert reporter["env"][f"{runner.upper()}_RESULTS"] == f"${{{{ steps.{runner}.outputs.result }}}}"
    assert any(s.get("id") == runner for s in steps)


def _results(tmp_path: Path, tests: list[dict], **extra) -> Path:
    data = {"score": sum(t["score"] for t in tests), "execution_time": 1.0, "output": "graded (seed 8675309)",
            "tests": tests, **extra}  # fmt: skip
    path = tmp_path / "results.json"
    path.write_text(json.dumps(data))
    return path


def test_reporter_payload_keeps_partial_credit(tmp_path: Path) -> None:
    tests = [
        {"name": "a", "score": 4.0, "max_score": 4.0, "output": "ok", "status": "passed"},
        {"name": "b", "score": 1.5, "max_score": 3.0, "output": "half: seed 8675309"},
        {"name": "c", "score": 0.0, "max_score": 0.0, "output": "advice", "status": "failed"},
    ]
    path = _results(tmp_path, tests)
    summary, output = tmp_path / "summary.md", tmp_path / "output.txt"
    assert classroom.main([str(path), "--summary", str(summary), "--output", str(output),
                           "--hide-seed", "8675309"]) == 0  # fmt: skip
    key, value = output.read_text().strip().split("=", 1)
    assert key == "result"
    payload = json.loads(base64.b64decode(value))
    assert payload["max_score"] == 7.0 and payload["status"] == "fail"
    assert [(t["name"], t["status"], t["score"]) for t in payload["tests"]] == [
        ("a", "pass", 4.0),
        ("b", "fail", 1.5),
        ("c", "fail", 0.0),
    ]
    # What the reporter sends to Classroom: the sum of the tests' scores over max_score.
    assert sum(t["score"] for t in payload["tests"]) == 5.5
    text = summary.read_text()
    assert "5.50 / 7 points" in text and "| b | 1.50 / 3 |" in text
    assert "8675309" not in text and "8675309" not in json.dumps(payload)


def test_a_not_gradable_check_is_an_error_not_a_failure(tmp_path: Path) -> None:
    """Issue 22: a check the machine kept from being judged (score 0 of 0, extra_data.gradable false) is reported
    to Classroom as an error (regrade), and so is the whole grade, never as a pass or a student's failure."""
    tests = [
        {"name": "a", "score": 4.0, "max_score": 4.0, "output": "ok", "status": "passed"},
        {"name": "t", "score": 0.0, "max_score": 0.0, "output": "NOT GRADABLE: the control did not learn",
         "status": "failed", "extra_data": {"gradable": False, "points_not_graded": 7.0}},
    ]  # fmt: skip
    path = _results(tmp_path, tests)
    summary, output = tmp_path / "summary.md", tmp_path / "output.txt"
    classroom.main([str(path), "--summary", str(summary), "--output", str(output)])
    payload = json.loads(base64.b64decode(output.read_text().strip().split("=", 1)[1]))
    assert payload["status"] == "error"
    assert [(t["name"], t["status"]) for t in payload["tests"]] == [("a", "pass"), ("t", "error")]
    assert "not gradable (regrade)" in summary.read_text()


def test_reporter_full_marks_and_missing_results(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _results(tmp_path, [{"name": "a", "score": 2, "max_score": 2, "output": ""}])
    output = tmp_path / "out.txt"
    classroom.main([str(path), "--output", str(output), "--summary", str(tmp_path / "s.md")])
    assert json.loads(base64.b64decode(output.read_text().split("=", 1)[1]))["status"] == "pass"
    assert "Points 2/2" in capsys.readouterr().out

    missing = tmp_path / "nothing.json"
    output.unlink()
    assert classroom.main([str(missing), "--output", str(output), "--summary", str(tmp_path / "s.md")]) == 1
    payload = json.loads(base64.b64decode(output.read_text().split("=", 1)[1]))
    assert payload["status"] == "error" and payload["tests"][0]["score"] == 0
