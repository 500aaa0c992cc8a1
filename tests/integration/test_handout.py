"""The student handout (grader/tools/handout.py): what goes in, what never does, and that its grader works on its own."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from grader.checks import feedback
from grader.grading.results import GradingResults
from grader.grading.rubric import load_rubric
from grader.tools.handout import (
    HandoutConfig,
    HandoutError,
    SolutionFingerprint,
    build_handout,
    main,
    solution_form_problems,
)
from grader.tools.solution_forms import solution_forms
from tests.support.solution_forms import SOLUTION_FORMS, leaks
from tests.support.wrong_sources import (
    PENALTY_ABOVE_TEN,
    R_LOG_R_BACKWARD,
    SUM_NOT_MEAN_FORWARD,
    ZERO_IN_TRAINING,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def handout(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("handout")
    return build_handout(HandoutConfig(out=out, name="rl-sentiment"))


def _fake_repo(tmp_path: Path) -> Path:
    """A copy of the instructor repository without git (the builder falls back to walking an allow-list)."""
    repo = tmp_path / "repo"
    junk = shutil.ignore_patterns(
        "__pycache__", "*.pyc", ".nox", ".pytest_cache", "*.egg-info", "results.json"
    )
    for name in ("exercise", "grader", "reference", "tests"):
        shutil.copytree(REPO / name, repo / name, ignore=junk)
    for name in ("noxfile.py", "pyproject.toml", ".gitignore"):
        shutil.copy(REPO / name, repo / name)
    return repo


def test_handout_contents(handout) -> None:
    files = set(handout.files)
    assert "exercise/rewards.py" in files and "grader/__init__.py" in files
    assert {"noxfile.py", "pyproject.toml", "README.md", ".gitignore", ".handout.json"} <= files
    assert not (handout.folder / "reference").exists()
    assert not (handout.folder / "tests").exists()
    for rel in files:
        parts = rel.split("/")
        assert parts[0] in {"exercise", "grader", "noxfile.py", "pyproject.toml", "README.md", ".gitignore",
                            ".handout.json"}, rel  # fmt: skip
        assert "__pycache__" not in parts and not rel.endswith((".pyc", ".egg-info")), rel
    # Every package file the exercise ships (assets included) made it.
    if (REPO / "exercise" / "assets").is_dir():
        assets = {
            p.relative_to(REPO).as_posix() for p in (REPO / "exercise" / "assets").rglob("*") if p.is_file()
        }
        assert assets <= files
    # The zip holds exactly the folder's files, under the handout's name.
    with zipfile.ZipFile(handout.zip_path) as zf:
        assert sorted(zf.namelist()) == sorted(f"rl-sentiment/{rel}" for rel in files)
    manifest = json.loads((handout.folder / ".handout.json").read_text())
    assert set(manifest["files"]) == files - {".handout.json"}


def test_handout_has_no_solution(handout) -> None:
    fingerprint = SolutionFingerprint.from_files(
        REPO / "reference" / "rewards.py", REPO / "exercise" / "rewards.py"
    )
    assert fingerprint.bodies and fingerprint.lines  # it does recognise the reference ...
    assert fingerprint.leaks((REPO / "reference" / "rewards.py").read_text())  # ... in the reference itself
    for path in handout.folder.rglob("*.py"):
        assert fingerprint.leaks(path.read_text()) == [], path
    stub = (handout.folder / "exercise" / "rewards.py").read_text()
    assert stub == (REPO / "exercise" / "rewards.py").read_text()


def test_student_readme(handout) -> None:
    readme = (handout.folder / "README.md").read_text()
    assert "exercise/rewards.py" in readme and "nox -s grade" in readme and "Submitting" in readme
    assert "$" not in readme.replace("$ ", "")  # every template placeholder was filled
    assert "reference" not in readme.lower()


def test_a_solution_in_the_student_file_is_refused(tmp_path: Path) -> None:
    repo = _fake_repo(tmp_path)
    shutil.copy(repo / "reference" / "rewards.py", repo / "exercise" / "rewards.py")
    with pytest.raises(HandoutError, match="not a stub"):
        build_handout(HandoutConfig(out=tmp_path / "out", repo=repo))
    assert not (tmp_path / "out" / "rl-sentiment").exists()  # nothing half-built is left behind
    assert not (tmp_path / "out" / "rl-sentiment.zip").exists()


def test_solution_code_hidden_elsewhere_is_found(tmp_path: Path) -> None:
    repo = _fake_repo(tmp_path)
    reference = (repo / "reference" / "rewards.py").read_text()
    (repo / "grader" / "helpers_for_checks.py").write_text("import math\n\n" + reference.split('"""', 2)[2])
    with pytest.raises(HandoutError, match="contains the solution"):
        build_handout(HandoutConfig(out=tmp_path / "out", repo=repo))


def test_the_handout_has_no_answer_key_and_no_solution_form(handout) -> None:
    """Issue 17: nothing a student receives computes or states the penalties' per-token terms; the answer key
    (the terms, the wrong implementations one mistake away from them, the hidden checks) stays out."""
    assert not (handout.folder / "grader" / "checks" / "key").exists()
    assert not any(rel.startswith("grader/checks/key/") for rel in handout.files)
    assert solution_form_problems(handout.folder, "hint") == []
    # ... while the scan does find them in the instructor's repository, where they are
    for rel in ("grader/checks/key/terms.py", "reference/rewards.py"):
        assert solution_forms((REPO / rel).read_text(), python=True), rel


@pytest.mark.parametrize(
    "planted",
    [
        "def f(a, b):\n    return [1.0 - np.exp(y - x) for x, y in zip(a, b)]\n",
        "def f(q, p):\n    return -np.expm1(q - p)\n",
        "def f(policy_logps, ref_logps):\n    return (policy_logps - ref_logps).mean()\n",
        "def f(lp, lr):\n    return 1 - torch.exp(torch.clamp(lr - lp, max=3.0))\n",
        "# the backward penalty is kl_coef * mean(1 - r)\n",
        '"""Forward: average lp - lr over the tokens."""\n',
    ],
    ids=["1-np.exp", "expm1", "renamed-log-ratio", "1-torch.exp", "comment", "docstring"],
)
def test_a_solution_form_anywhere_in_the_handout_is_refused(tmp_path: Path, planted: str) -> None:
    repo = _fake_repo(tmp_path)
    (repo / "grader" / "helpers_for_checks.py").write_text("import numpy as np\nimport torch\n\n" + planted)
    with pytest.raises(HandoutError, match="per-token term"):
        build_handout(HandoutConfig(out=tmp_path / "out", repo=repo))


def test_the_handout_grades_the_reference_with_every_public_point(handout, tmp_path: Path) -> None:
    """Without the answer key the handout's grader still gives the reference every public point, from recorded
    numbers, and says how many points the hidden checks are worth."""
    results = tmp_path / "results.json"
    submission = tmp_path / "rewards.py"
    shutil.copy(REPO / "reference" / "rewards.py", submission)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "HYPOTHESIS"))}
    env.update(PYTHONPATH=str(handout.folder), NO_COLOR="1", COLUMNS="200")
    proc = subprocess.run(
        [sys.executable, "-m", "grader", "--submission", str(submission), "--results", str(results),
         "--no-training"],
        cwd=handout.folder, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    graded = GradingResults.from_dict(json.loads(results.read_text()))
    assert graded.score == graded.max_score == 74  # 80 less the 6 hidden points
    assert graded.full_marks and all(t.check_id for t in graded.tests)
    assert not any(t.check_id.endswith("value_random") for t in graded.tests)
    assert "Hidden checks: 2 more checks, worth 6 points" in " ".join(graded.output.split())


def test_without_git_the_allow_list_keeps_caches_out(tmp_path: Path) -> None:
    repo = _fake_repo(tmp_path)
    for junk in ("exercise/__pycache__/x.pyc", "grader/.nox/y.py", "grader/.pytest_cache/z", "runs/a.txt",
                 "exercise/results.json", "secrets.env", ".ci/constraints.txt"):  # fmt: skip
        (repo / junk).parent.mkdir(parents=True, exist_ok=True)
        (repo / junk).write_text("junk")
    result = build_handout(HandoutConfig(out=tmp_path / "out", repo=repo))
    names = set(result.files)
    assert not any(n.endswith((".pyc", "results.json", "secrets.env")) or "/.nox/" in n for n in names)
    assert not any(n.startswith(("runs/", ".ci/", "reference/", "tests/")) for n in names)
    assert "exercise/rewards.py" in names


def test_rebuild_needs_force_and_never_deletes_other_folders(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["--out", str(out)]) == 0
    assert main(["--out", str(out)]) == 2  # exists: refuse without --force
    assert main(["--out", str(out), "--force"]) == 0
    (out / "mine").mkdir()
    (out / "mine" / "thesis.tex").write_text("precious")
    assert main(["--out", str(out), "--name", "mine", "--force"]) == 2  # not a handout: never deleted
    assert (out / "mine" / "thesis.tex").read_text() == "precious"
    assert main(["--out", str(REPO / "exercise" / "x")]) == 2  # not among the sources it copies


def test_classroom_option_adds_the_workflow(tmp_path: Path) -> None:
    result = build_handout(HandoutConfig(out=tmp_path, classroom=True))
    assert ".github/workflows/classroom.yml" in result.files
    assert (result.folder / ".github" / "workflows" / "classroom.yml").read_text() == (
        REPO / ".github" / "workflows" / "classroom.yml"
    ).read_text()


def test_the_handout_grades_its_own_stub(handout, tmp_path: Path) -> None:
    """Inside the handout, with only the handout on the path, its own grader grades the stub: 0 points."""
    results = tmp_path / "results.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "HYPOTHESIS"))}
    env["PYTHONPATH"] = str(handout.folder)
    probe = subprocess.run(
        [sys.executable, "-c", "import grader, sys; print(grader.__file__)"],
        cwd=handout.folder, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    used = Path(probe.stdout.strip()).resolve()
    assert used.is_relative_to(handout.folder.resolve())  # the handout's own grader, not the repository's
    proc = subprocess.run(
        [sys.executable, "-m", "grader", "--submission", "exercise/rewards.py", "--results", str(results),
         "--no-training"],
        cwd=handout.folder, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]  # 1: points lost
    data = json.loads(results.read_text())
    assert data["score"] == 0
    assert data["tests"] and sum(t["max_score"] for t in data["tests"]) > 0
    assert "NotImplementedError" in json.dumps(data["tests"])
    assert not (handout.folder / "reference").exists()


def test_handout_grades_at_hint_and_holds_no_solution(handout) -> None:
    folder = handout.folder
    assert load_rubric(folder / "grader" / "grading" / "rubric.toml").feedback_level == "hint"
    shipped = folder / "grader" / "checks" / "misconceptions" / "misconceptions.toml"
    assert feedback.load_catalogue(shipped).level == "hint"
    assert json.loads((folder / ".handout.json").read_text())["feedback_level"] == "hint"
    # Nothing the handout's grader can show states a per-token term: its data and text files and its string
    # literals (the catalogue, the checks' messages, the README), in any of the forms the texts use.
    assert leaks(folder) == []
    catalogue_text = shipped.read_text()
    for word in ("explain =", "solution =", "[shared", "Why", "len(terms)", "log(20)"):
        assert word not in catalogue_text, word
    assert (
        shipped.stat().st_size
        < 0.5 * (REPO / "grader" / "checks" / "misconceptions" / "misconceptions.toml").stat().st_size
    )
    # The instructor-only calibration tool (it runs the reference) stays out; the thresholds the checks read stay.
    assert (
        "grader/tools/calibrate.py" not in handout.files
        and (folder / "grader/training/calibration/thresholds.toml").is_file()
    )
    assert not list((folder / "grader" / "training" / "calibration").glob("*.md"))
    # The instructor tools stay out (batch, Gradescope, the builders); the grading path is all there.
    assert not (folder / "grader" / "tools").exists()
    for module in (
        "cli/__init__.py",
        "cli/options.py",
        "classroom.py",
        "grading/runner.py",
        "sandbox/worker.py",
        "checks/kl.py",
    ):
        assert (folder / "grader" / module).is_file(), module
    assert "feedback level is **hint**" in (folder / "README.md").read_text()


def test_handout_at_explain_keeps_the_derivations_not_the_solutions(tmp_path: Path) -> None:
    result = build_handout(HandoutConfig(out=tmp_path, feedback_level="explain"))
    assert load_rubric(result.folder / "grader" / "grading" / "rubric.toml").feedback_level == "explain"
    shipped = feedback.load_catalogue(
        result.folder / "grader" / "checks" / "misconceptions" / "misconceptions.toml"
    )
    assert shipped.level == "explain" and shipped["sum_not_mean"].text("explain")
    assert shipped["sum_not_mean"].text("solution") == ""
    assert leaks(result.folder) == []


def test_feedback_above_the_level_hidden_elsewhere_is_found(tmp_path: Path) -> None:
    repo = _fake_repo(tmp_path)
    shutil.copy(
        repo / "grader" / "checks" / "misconceptions" / "misconceptions.toml", repo / "grader" / "notes.toml"
    )
    with pytest.raises(HandoutError, match="grader/notes.toml: contains feedback above the level 'hint'"):
        build_handout(HandoutConfig(out=tmp_path / "out", repo=repo))


def test_the_handout_grader_cannot_be_asked_for_more(handout, tmp_path: Path) -> None:
    """A wrong submission graded by the handout's own grader with --feedback-level solution: hints only."""
    submission = tmp_path / "rewards.py"
    submission.write_text(
        (REPO / "reference" / "rewards.py").read_text() + SUM_NOT_MEAN_FORWARD + R_LOG_R_BACKWARD
    )
    results = tmp_path / "results.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "HYPOTHESIS"))}
    env.update(PYTHONPATH=str(handout.folder), NO_COLOR="1", COLUMNS="200")
    proc = subprocess.run(
        [sys.executable, "-m", "grader", "--submission", str(submission), "--results", str(results),
         "--no-training", "--only", "kl_forward.mean_over_tokens,kl_backward.direction",
         "--feedback-level", "solution"],
        cwd=handout.folder, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    data = json.loads(results.read_text())
    assert data["feedback_level"] == "hint"
    dumped = json.dumps(data)
    assert "[sum_not_mean]" in dumped and "[value_estimator_r_log_r]" in dumped, dumped[-3000:]
    everything = proc.stdout + dumped
    assert "Hint: " in everything and "Why: " not in everything and "Fix: " not in everything
    assert not SOLUTION_FORMS.search(everything)
    assert "only contains the 'hint' texts" in " ".join(data["output"].split())
    assert "Feedback level: hint" in proc.stdout


@pytest.mark.slow  # two whole --no-training grades in the handout, about 10 s each on 2 cores under load
@pytest.mark.parametrize(
    ("source", "lost"),
    [
        (ZERO_IN_TRAINING, ("kl_forward.value", "kl_backward.value")),
        (PENALTY_ABOVE_TEN, ("kl_backward.value",)),
    ],
    ids=["zero-in-training", "penalty-above-ten"],
)
def test_the_handout_grader_alone_catches_the_gaming_rows(handout, tmp_path: Path, source, lost) -> None:
    """Issue 17: without the answer key (recorded numbers, no formulas) the handout's grader still fails the KL
    gaming rows on their value checks, and the gates take the secondary points."""
    submission = tmp_path / "rewards.py"
    submission.write_text((REPO / "reference" / "rewards.py").read_text() + source)
    results = tmp_path / "results.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "HYPOTHESIS"))}
    env.update(PYTHONPATH=str(handout.folder), NO_COLOR="1", COLUMNS="200")
    proc = subprocess.run(
        [sys.executable, "-m", "grader", "--submission", str(submission), "--results", str(results),
         "--no-training"],
        cwd=handout.folder, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-2000:]
    data = GradingResults.from_dict(json.loads(results.read_text()))
    by_id = {t.check_id: t for t in data.tests}
    for check_id in lost:
        assert by_id[check_id].score == 0, by_id[check_id].output
        prefix = check_id.split(".")[0]
        withheld = [t for cid, t in by_id.items() if cid.startswith(prefix) and "withheld" in t.tags]
        assert len(withheld) >= 7, [t.check_id for t in withheld]
    assert data.score <= 0.75 * sum(t.max_score for t in data.tests)
