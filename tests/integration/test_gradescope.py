"""The Gradescope bundle (grader/tools/gradescope/): its contents, and run_autograder against a fake /autograder.

The fake root is a temporary folder laid out like Gradescope's (``source/`` = the unpacked zip,
``submission/``, ``results/``); ``AUTOGRADER_ROOT``/``AUTOGRADER_SOURCE``/``AUTOGRADER_PYTHON`` point the
bundle's own ``run_autograder`` script at it.
"""

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
from grader.tools.gradescope import BUNDLE_NAME, GradescopeConfig, build_bundle, hide_seed, run_autograder
from grader.tools.gradescope.config import RUNNER_FILES
from grader.tools.handout import is_excluded
from tests.support.fake_grader import COMMAND as FAKE_GRADER
from tests.support.solution_forms import SOLUTION_FORMS, leaks
from tests.support.wrong_sources import SUM_NOT_MEAN_FORWARD

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("gradescope")
    zip_path, settings = build_bundle(GradescopeConfig(out=out, no_training=True))
    return zip_path, settings


def _fake_root(tmp_path: Path, zip_path: Path) -> Path:
    """Unpack the bundle the way Gradescope does: into ROOT/source."""
    root = tmp_path / "autograder"
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(root / "source")
    for name in ("run_autograder", "setup.sh"):
        (root / "source" / name).chmod(0o755)
    (root / "submission").mkdir()
    return root


def _run_script(root: Path, python: str = sys.executable) -> subprocess.CompletedProcess:
    env = dict(
        os.environ,
        AUTOGRADER_ROOT=str(root),
        AUTOGRADER_SOURCE=str(root / "source"),
        AUTOGRADER_PYTHON=python,
    )
    return subprocess.run(
        ["bash", str(root / "source" / "run_autograder")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _results(root: Path) -> dict:
    data = json.loads((root / "results" / "results.json").read_text())
    GradingResults.from_dict(data)  # a valid results.json (ValueError says what is wrong)
    assert isinstance(data["score"], int | float) and isinstance(data["tests"], list)
    assert isinstance(data["output"], str) and data["output"].strip()  # it always says what happened
    return data


def test_bundle_layout(bundle: tuple[Path, dict]) -> None:
    zip_path, settings = bundle
    with zipfile.ZipFile(zip_path) as zf:
        names = set(zf.namelist())
        modes = {info.filename: info.external_attr >> 16 for info in zf.infolist()}
        config = json.loads(zf.read("autograder.json"))
    # Gradescope wants both scripts at the zip's root, executable.
    assert {"setup.sh", "run_autograder", "autograder.json", "pyproject.toml", "README.md"} <= names
    assert modes["run_autograder"] & 0o111 and modes["setup.sh"] & 0o111
    assert (
        "exercise/rewards.py" in names
        and "grader/tools/gradescope/run.py" in names
        and "grader/grading/locate.py" in names
    )
    assert not any(n.startswith(("reference/", "tests/", ".ci/", ".git/")) for n in names)
    assert "grader/checks/key/terms.py" in names  # the answer key: the bundle grades the hidden checks
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    # A hidden seed, drawn at build time: not the default students grade with.
    assert (
        config == {k: settings[k] for k in config} and isinstance(config["seed"], int) and config["seed"] != 0
    )
    assert config["no_training"] is True
    setup = zipfile.ZipFile(zip_path).read("setup.sh").decode()
    assert "download.pytorch.org/whl/cpu" in setup and '"$SOURCE"' in setup
    for script in ("setup.sh", "run_autograder"):
        subprocess.run(["bash", "-n", str(zip_path.parent / BUNDLE_NAME / script)], check=True)


def test_bundle_holds_no_instructor_only_file_but_the_answer_key(bundle: tuple[Path, dict]) -> None:
    """Issue 21: what a handout leaves out as the instructor's (the tools, the calibration, the instructor's
    README) stays out of the bundle too, except the answer key (it grades the hidden checks) and the runner
    Gradescope calls."""
    zip_path, _ = bundle
    names = set(zipfile.ZipFile(zip_path).namelist())
    kept = {"autograder.json", *RUNNER_FILES}  # the bundle's own settings (its seed) and its runner
    instructor_only = sorted(
        n for n in names if is_excluded(n) and not n.startswith("grader/checks/key/") and n not in kept
    )
    assert instructor_only == []
    for name in ("grader/tools/calibrate.py", "grader/tools/handout.py", "grader/tools/gradescope/build.py"):
        assert name not in names
    assert not any(n.startswith("grader/tools/batch/") or n.endswith("calibration/tiny.md") for n in names)
    assert zipfile.ZipFile(zip_path).read("README.md") != (REPO / "README.md").read_bytes()
    # The answer key is there, all of it, and so is the runner.
    key = {p.relative_to(REPO).as_posix() for p in (REPO / "grader" / "checks" / "key").glob("*.py")}
    assert key and key <= names
    assert RUNNER_FILES <= names


def test_bundle_installs_the_calibrated_versions(bundle: tuple[Path, dict]) -> None:
    """Issue 21: setup.sh installs torch and the project with the constraints file the bundle carries."""
    zip_path, _ = bundle
    with zipfile.ZipFile(zip_path) as zf:
        setup = zf.read("setup.sh").decode()
        constraints = zf.read("grader/constraints.txt").decode()
    assert constraints == (REPO / "grader" / "constraints.txt").read_text() and "torch==" in constraints
    assert 'CONSTRAINTS="$SOURCE/grader/constraints.txt"' in setup
    installs = [line for line in setup.splitlines() if "pip install" in line and "--upgrade pip" not in line]
    assert len(installs) == 2 and all('-c "$CONSTRAINTS"' in line for line in installs), installs


#: A stand-in grader that, like the real one after training checks, draws the curves next to the results and
#: names the file in the report (the training check's feedback and the summary), and names the submission's path.
PLOTTING_GRADER = """
import sys
from pathlib import Path

from grader.grading.results import GradingResults, TestResult

args = sys.argv[1:]
submission = Path(args[args.index("--submission") + 1])
results = Path(args[args.index("--results") + 1])
plot = results.with_name(results.stem + "_training.png")
plot.write_bytes(b"png")
test = TestResult("training: baseline", 5.0, 5.0, f"learns.\\nCurves of all training runs: {plot}",
                  check_id="training.baseline", artifacts=[str(plot)])
output = (f"Graded {submission.name}: 5 / 5 points.\\nSubmitted file: {submission}\\n"
          f"Plots written next to the results: {plot}\\nSandbox: namespaces.")
GradingResults(tests=[test], output=output, seed=0).write_json(results)
"""


def test_students_see_no_path_of_the_machine(bundle: tuple[Path, dict], tmp_path: Path) -> None:
    """Issue 21: the report shown on Gradescope names no file of the machine (the curves a student cannot open,
    the submission's folder), and keeps the rest of what the grader said."""
    root = _fake_root(tmp_path, bundle[0])
    (root / "submission" / "rewards.py").write_text("x = 1\n")
    script = tmp_path / "plotting_grader.py"
    script.write_text(PLOTTING_GRADER)
    data = run_autograder(root, root / "source", grader_cmd=(sys.executable, str(script)))
    assert (root / "results" / "results_training.png").is_file()  # it did draw one ...
    written = (root / "results" / "results.json").read_text()
    assert str(tmp_path) not in written and "results_training.png" not in written  # ... and nobody is told
    assert "artifacts" not in written
    assert data["score"] == 5.0 and data["tests"][0]["output"] == "learns."
    assert "Submitted file: rewards.py" in data["output"] and "Sandbox: namespaces." in data["output"]


def test_bundle_grades_at_hint_and_holds_no_solution(bundle: tuple[Path, dict]) -> None:
    zip_path, settings = bundle
    folder = zip_path.parent / BUNDLE_NAME
    assert settings["feedback_level"] == "hint"
    assert json.loads(zipfile.ZipFile(zip_path).read("autograder.json"))["feedback_level"] == "hint"
    assert load_rubric(folder / "grader" / "grading" / "rubric.toml").feedback_level == "hint"
    assert (
        feedback.load_catalogue(folder / "grader" / "checks" / "misconceptions" / "misconceptions.toml").level
        == "hint"
    )
    assert (
        zipfile.ZipFile(zip_path).read("grader/checks/misconceptions/misconceptions.toml")
        == (folder / "grader" / "checks" / "misconceptions" / "misconceptions.toml").read_bytes()
    )  # the zip carries the stripped copy
    assert leaks(folder) == []


def test_bundle_level_can_be_chosen(tmp_path: Path) -> None:
    _, settings = build_bundle(GradescopeConfig(out=tmp_path, seed=3, feedback_level="explain"))
    folder = tmp_path / BUNDLE_NAME
    assert settings["feedback_level"] == "explain"
    assert load_rubric(folder / "grader" / "grading" / "rubric.toml").feedback_level == "explain"
    assert (
        feedback.load_catalogue(folder / "grader" / "checks" / "misconceptions" / "misconceptions.toml").level
        == "explain"
    )


def test_explicit_seed_is_baked_in(tmp_path: Path) -> None:
    _, settings = build_bundle(GradescopeConfig(out=tmp_path, seed=424242))
    assert json.loads((tmp_path / BUNDLE_NAME / "autograder.json").read_text())["seed"] == 424242
    assert settings["no_training"] is False


def test_run_with_stand_in_grader_uses_hidden_seed_and_hides_it(
    bundle: tuple[Path, dict], tmp_path: Path
) -> None:
    zip_path, settings = bundle
    root = _fake_root(tmp_path, zip_path)
    (root / "submission" / "my_rewards.py").write_text("# fake: pass=forward.zero\n")  # renamed: still found
    data = run_autograder(root, root / "source", grader_cmd=FAKE_GRADER)
    assert data == _results(root)
    assert data["score"] == 2.0
    assert "my_rewards.py" in data["output"]  # tells the student which file was graded
    # The fake grader records its command line: the bundle's seed and --no-training reached it ...
    assert data["argv"][data["argv"].index("--no-training") - 1] == "<hidden>"
    # ... and the seed appears nowhere in what the student sees.
    assert str(settings["seed"]) not in (root / "results" / "results.json").read_text()


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({}, "no rewards.py"),
        ({"a.py": "", "b.py": ""}, "cannot tell which"),
        ({"rewards.py": "# fake: crash\n"}, "could not produce a report"),
        ({"rewards.py": "# fake: garbage\n"}, "could not produce a report"),
    ],
)
def test_run_always_writes_valid_results(
    bundle: tuple[Path, dict], tmp_path: Path, files: dict, message: str
) -> None:
    root = _fake_root(tmp_path, bundle[0])
    for name, text in files.items():
        (root / "submission" / name).write_text(text)
    (root / "results").mkdir()
    (root / "results" / "results.json").write_text('{"score": 100, "tests": []}')  # a forged file is replaced
    data = run_autograder(root, root / "source", grader_cmd=FAKE_GRADER)
    assert data == _results(root)
    assert data["score"] == 0 and message in data["output"]


def test_run_autograder_script_missing_submission(bundle: tuple[Path, dict], tmp_path: Path) -> None:
    """The bundle's own script, end to end, with nothing submitted: a valid report and a clear message."""
    root = _fake_root(tmp_path, bundle[0])
    proc = _run_script(root)
    assert proc.returncode == 0, proc.stderr
    data = _results(root)
    assert data["score"] == 0 and "Nothing to grade" in data["output"] and "rewards.py" in data["output"]


def test_run_autograder_script_when_python_cannot_start(bundle: tuple[Path, dict], tmp_path: Path) -> None:
    root = _fake_root(tmp_path, bundle[0])
    (root / "submission" / "rewards.py").write_text("x = 1\n")
    proc = _run_script(root, python=shutil.which("false") or "/bin/false")
    assert proc.returncode == 0
    data = _results(root)
    assert data["score"] == 0 and "failed to start" in data["output"]


def test_run_autograder_script_grades_the_stub_with_the_real_grader(
    bundle: tuple[Path, dict], tmp_path: Path
) -> None:
    root = _fake_root(tmp_path, bundle[0])
    shutil.copy(REPO / "exercise" / "rewards.py", root / "submission" / "rewards.py")
    proc = _run_script(root)
    assert proc.returncode == 0, proc.stderr
    data = _results(root)
    assert data["score"] == 0
    assert len(data["tests"]) > 0 and sum(t["max_score"] for t in data["tests"]) > 0
    assert "NotImplementedError" in json.dumps(data)
    assert str(bundle[1]["seed"]) not in (root / "results" / "results.json").read_text()
    # The bundle is the instructor's grader: it grades the hidden checks, shown after the due date (issue 17).
    hidden = [t for t in GradingResults.from_dict(data).tests if t.check_id.endswith(".value_random")]
    assert len(hidden) == 2 and {t.visibility for t in hidden} == {"after_due_date"}


def test_students_on_gradescope_get_hints_only(bundle: tuple[Path, dict], tmp_path: Path) -> None:
    """A wrong submission graded by the bundle's own grader: misconceptions named with hints, no derivation,
    no formula, and the output says which level was shown."""
    root = _fake_root(tmp_path, bundle[0])
    (root / "submission" / "rewards.py").write_text(
        (REPO / "reference" / "rewards.py").read_text() + SUM_NOT_MEAN_FORWARD
    )
    # The bundle's own grader (run_autograder runs it in the bundle's folder), on one check to keep it short.
    quick = (sys.executable, "-m", "grader", "--only", "kl_forward.mean_over_tokens")
    data = run_autograder(root, root / "source", grader_cmd=quick)
    assert data == _results(root)
    dumped = json.dumps(data)
    assert data["feedback_level"] == "hint" and "[sum_not_mean]" in dumped and "Hint: " in dumped
    assert "Why: " not in dumped and "Fix: " not in dumped and not SOLUTION_FORMS.search(dumped)
    assert "Feedback level: hint \u2014 your instructor chose how much the grader explains" in data["output"]


def test_hide_seed() -> None:
    data = {
        "seed": 99,
        "output": "graded with seed 1234567; 1234567 examples",
        "tests": [{"name": "t", "output": "seed=1234567", "meta": {"grading_seed": 1234567}}],
    }
    hidden = hide_seed(data, 1234567)
    assert "1234567" not in json.dumps(hidden) and "seed" not in hidden
    short = hide_seed({"output": "seed 7: 7 tokens"}, 7)
    assert short["output"] == "seed <hidden>: 7 tokens"  # a short seed is hidden only where labelled
