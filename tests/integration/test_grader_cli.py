"""``python -m grader`` as CI runs it: exit codes, results.json always valid, JUnit XML, determinism, forgery.

Subprocess smoke tests with the real checks (``--only`` keeps most of them short).
"""

from __future__ import annotations

import json
import os
import shutil
import textwrap
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from grader.sandbox import REPO_ROOT
from tests.support.cli import run_grader

ROOT = Path(__file__).resolve().parents[2]
QUICK = "kl_forward.contract,kl_forward.mean_over_tokens,shaping.deterministic"


def _valid(data: dict | None) -> dict:
    assert data is not None, "results.json was not written"
    assert {"score", "execution_time", "output", "tests"} <= set(data)
    assert abs(data["score"] - sum(t["score"] for t in data["tests"])) < 1e-9
    return data


@pytest.mark.slow  # over 10 s on 2 cores (measured with --durations)
def test_reference_gets_full_marks_exit_0_and_junit(tmp_path: Path) -> None:
    started = time.monotonic()
    code, data, out = run_grader(
        "--submission",
        ROOT / "reference" / "rewards.py",
        "--results",
        tmp_path / "r.json",
        "--junit",
        tmp_path / "junit.xml",
        "--no-training",
    )
    elapsed = time.monotonic() - started
    data = _valid(data)
    assert code == 0, out
    # --no-training: the property checks, 80 of the rubric's 110 points
    assert data["score"] == data["max_score"] == sum(t["max_score"] for t in data["tests"]) == 80
    # the four training checks, the tuning challenge, and the functions held to what they did in training (0 points)
    assert "Training checks skipped (--no-training): 8 checks, 30 points not graded" in data["output"]
    suite = ET.parse(tmp_path / "junit.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "0" and suite.get("errors") == "0"
    assert int(suite.get("tests", "0")) == len(data["tests"])
    assert "full marks" in out
    print(f"--no-training grading of the reference: {elapsed:.1f} s")


@pytest.mark.slow  # over 10 s on 2 cores (measured with --durations)
def test_grading_leaves_the_working_folder_as_it_was(tmp_path: Path) -> None:
    # Students grade from their checkout: no .hypothesis/ caches or other droppings beside their code.
    work = tmp_path / "checkout"
    work.mkdir()
    shutil.copy(ROOT / "reference" / "rewards.py", work / "rewards.py")
    env_before = os.environ.pop("HYPOTHESIS_STORAGE_DIRECTORY", None)
    cache_before = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    try:
        code, _data, out = run_grader(
            "--submission", "rewards.py", "--results", tmp_path / "r.json", "--no-training", cwd=work
        )
    finally:
        if env_before is not None:
            os.environ["HYPOTHESIS_STORAGE_DIRECTORY"] = env_before
        if cache_before is None:
            del os.environ["XDG_CACHE_HOME"]
        else:
            os.environ["XDG_CACHE_HOME"] = cache_before
    assert code == 0, out
    assert sorted(p.name for p in work.iterdir()) == ["rewards.py"]
    # Its caches are kept for the next grade, in the per-user cache folder.
    assert (tmp_path / "cache" / "rl-sentiment" / "hypothesis").is_dir()


def test_hypothesis_storage_is_a_per_user_cache_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from grader.cli import hypothesis_storage

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert hypothesis_storage() == tmp_path / "xdg" / "rl-sentiment" / "hypothesis"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")  # ignored, as the XDG spec says
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert hypothesis_storage() == tmp_path / "home" / ".cache" / "rl-sentiment" / "hypothesis"
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro").chmod(0o500)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "ro"))
    try:
        fallback = hypothesis_storage()
    finally:
        (tmp_path / "ro").chmod(0o700)
    if os.geteuid() != 0:  # root writes anywhere
        assert fallback.name.startswith("grader-hypothesis-") and fallback.is_dir()


def test_stub_scores_zero_exit_1(tmp_path: Path) -> None:
    code, data, out = run_grader(
        "--submission",
        ROOT / "exercise" / "rewards.py",
        "--results",
        tmp_path / "r.json",
        "--no-training",
        "--junit",
        tmp_path / "j.xml",
    )
    data = _valid(data)
    assert code == 1, out
    assert data["score"] == 0 and all(t["score"] == 0 for t in data["tests"])
    assert "NotImplementedError" in data["tests"][0]["output"]
    suite = ET.parse(tmp_path / "j.xml").getroot().find("testsuite")
    assert suite is not None and int(suite.get("failures", "0")) == len(data["tests"])


def test_missing_submission_writes_zero_and_exits_2(tmp_path: Path) -> None:
    code, data, out = run_grader("--submission", tmp_path / "nope.py", "--results", tmp_path / "r.json")
    data = _valid(data)
    assert code == 2
    assert data["score"] == 0 and "does not exist" in data["output"] and data["tests"]
    assert "does not exist" in data["tests"][0]["output"]


def test_a_folder_submission_is_located(tmp_path: Path) -> None:
    folder = tmp_path / "alice"
    (folder / "exercise").mkdir(parents=True)
    (folder / "exercise" / "rewards.py").write_text((ROOT / "reference" / "rewards.py").read_text())
    code, data, out = run_grader("--submission", folder, "--results", tmp_path / "r.json", "--only", QUICK)
    assert code == 0, out
    assert _valid(data)["score"] == data["max_score"] > 0


def test_bad_arguments_exit_2_and_still_write_results(tmp_path: Path) -> None:
    code, data, out = run_grader("--results", tmp_path / "r.json", "--seed", "not-a-number")
    assert code == 2 and "usage" in out
    assert _valid(data)["score"] == 0 and data["extra_data"]["internal_error"]


def test_internal_error_is_reported_with_exit_2(tmp_path: Path) -> None:
    rubric = tmp_path / "rubric.toml"
    rubric.write_text(
        '[checks."kl_forward.contract"]\nname = "a"\npoints = 1\n'
        '[checks."kl_forward.no_such_check"]\nname = "b"\npoints = 1\n'
    )
    code, data, out = run_grader(
        "--submission",
        ROOT / "reference" / "rewards.py",
        "--results",
        tmp_path / "r.json",
        "--rubric",
        rubric,
    )
    data = _valid(data)
    assert code == 2, out
    assert "no check is registered under the id 'kl_forward.no_such_check'" in data["tests"][1]["output"]
    broken = tmp_path / "broken.toml"
    broken.write_text("points = = 3")
    code, data, out = run_grader(
        "--submission",
        ROOT / "reference" / "rewards.py",
        "--results",
        tmp_path / "r.json",
        "--rubric",
        broken,
    )
    assert code == 2 and "not valid TOML" in _valid(data)["output"]


MEAN_AS_SUM = (
    (ROOT / "reference" / "rewards.py")
    .read_text()
    .replace(
        "kl_coef * math.fsum(row) / len(row) if row else 0.0", "kl_coef * math.fsum(row) if row else 0.0"
    )
)


@pytest.mark.slow  # over 10 s on 2 cores (measured with --durations)
def test_same_submission_and_seed_give_identical_results(tmp_path: Path) -> None:
    assert MEAN_AS_SUM != (ROOT / "reference" / "rewards.py").read_text()
    path = tmp_path / "rewards.py"
    path.write_text(MEAN_AS_SUM)
    runs = []
    for i in range(2):
        code, data, _out = run_grader(
            "--submission",
            path,
            "--results",
            tmp_path / f"r{i}.json",
            "--seed",
            "3",
            "--only",
            QUICK + ",kl_forward.direction",
        )
        assert code == 1
        data = _valid(data)
        data.pop("execution_time")
        runs.append(data)
    assert runs[0] == runs[1]
    assert 0 < runs[0]["score"] < runs[0]["max_score"]


def test_forged_results_and_a_late_daemon_do_not_change_the_results(tmp_path: Path) -> None:
    """The submission knows the results path, writes results everywhere it can, and leaves a daemon behind."""
    results = tmp_path / "out" / "results.json"
    results.parent.mkdir()
    forged = json.dumps({"score": 100, "execution_time": 0, "output": "forged", "tests": []})
    source = textwrap.dedent(f"""
    import glob, os
    FORGED = {forged!r}
    targets = [{str(results)!r}, "results.json", "../results.json", "../../results.json"]
    try:
        cmdline = open(f"/proc/{{os.getppid()}}/cmdline", "rb").read().split(b"\\0")
        targets.append(cmdline[cmdline.index(b"--results") + 1].decode())
    except Exception:
        pass
    targets += glob.glob("/tmp/**/results.json", recursive=True)
    for target in targets:
        try:
            with open(target, "w") as f:
                f.write(FORGED)
        except OSError:
            pass
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            import time
            for _ in range(40):
                time.sleep(0.1)
                for target in targets:
                    try:
                        with open(target, "w") as f:
                            f.write(FORGED)
                    except OSError:
                        pass
            os._exit(0)
        os._exit(0)

    def kl_penalty_forward(log_probs_policy, log_probs_ref, kl_coef=0.1):
        raise NotImplementedError
    kl_penalty_backward = shaped_reward = kl_penalty_forward
    """)
    submission = tmp_path / "student" / "rewards.py"
    submission.parent.mkdir()
    submission.write_text(source)
    code, data, out = run_grader(
        "--submission", submission, "--results", results, "--only", QUICK, cwd=tmp_path
    )
    assert code == 1, out
    assert _valid(data)["score"] == 0 and data["output"] != "forged" and data["tests"]
    before = results.read_bytes()
    time.sleep(4.5)  # longer than the daemon would have lived
    assert results.read_bytes() == before
    assert not (tmp_path / "results.json").exists() and not (submission.parent / "results.json").exists()
    if REPO_ROOT is not None:
        assert not (REPO_ROOT / "results.json").exists() or (REPO_ROOT / "results.json").read_text() != forged


def test_time_budget_option_is_documented_and_validated(tmp_path: Path) -> None:
    code, _data, out = run_grader("--help")
    assert code == 0 and "--time-budget SECONDS" in out and "(default: 300.0)" in out
    for bad in ("0", "-5", "nan"):
        results = tmp_path / f"r{bad}.json"
        code, data, out = run_grader(
            "--submission", ROOT / "exercise" / "rewards.py", "--results", results, "--time-budget", bad
        )
        assert code == 2 and "--time-budget must be a positive number of seconds" in out
        assert data is not None and data["score"] == 0 and "--time-budget" in data["output"]
