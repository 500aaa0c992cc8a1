"""Batch grading (grader/tools/batch.py): discovery, one row per submission whatever it does, a gradebook that agrees
with each results.json, pass rates, misconception counts and charts.

Most tests drive the batch with a stand-in grader (tests/support/fake_grader.py: same command line and results format,
outcome chosen by directives in the submission) so they take seconds; the tests under "With the real grader" use
``python -m grader`` itself.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grader.grading.locate import locate_submission
from grader.grading.results import GradingResults
from grader.tools import batch
from grader.tools.batch import BatchConfig, discover, run_batch
from tests.support.fake_grader import COMMAND as FAKE_GRADER
from tests.support.files import aged_stamps, stamps, write_file

REPO = Path(__file__).resolve().parents[2]
FAKE_CHECKS = ["forward.zero", "forward.direction", "backward.direction", "backward.mean", "shaping.contract",
               "shaping.goal"]  # fmt: skip
FAKE_MAX = 11.5


def _fake_config(submissions: Path, out: Path, **options) -> BatchConfig:
    """A quiet batch for the stand-in grader, which makes no training runs: no shared baseline run to make."""
    return BatchConfig(submissions, out, quiet=True, shared_baseline=False, **options)


def _read_gradebook(out: Path) -> tuple[list[str], dict[str, dict[str, str]]]:
    with (out / "gradebook.csv").open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        rows = {row["submission"]: row for row in reader}
        return list(reader.fieldnames or []), rows


def _is_png(path: Path) -> bool:
    data = path.read_bytes()
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return False
    from matplotlib.image import imread  # decodes the whole image: a truncated file fails here

    image = imread(path)
    return image.ndim == 3 and image.shape[0] > 50 and image.shape[1] > 50


# ---------------------------------------------------------------------------------------------------------------
# Discovery
# ---------------------------------------------------------------------------------------------------------------


def test_locate_rules(tmp_path: Path) -> None:
    plain = write_file(tmp_path / "a" / "rewards.py", "x = 1\n")
    assert locate_submission(plain.parent).path == plain
    whole_repo = write_file(tmp_path / "b" / "exercise" / "rewards.py", "x = 1\n")
    write_file(tmp_path / "b" / "exercise" / "train.py", "x = 1\n")
    assert locate_submission(tmp_path / "b").path == whole_repo
    renamed = write_file(tmp_path / "c" / "alice_rewards.py", "x = 1\n")
    write_file(tmp_path / "c" / "__pycache__" / "junk.py", "")
    write_file(tmp_path / "c" / ".hidden.py", "")
    located = locate_submission(tmp_path / "c")
    assert located.path == renamed and "only .py file" in located.note
    nested = write_file(tmp_path / "d" / "sub" / "deeper" / "rewards.py", "x = 1\n")
    write_file(tmp_path / "d" / "notes.py", "")
    assert locate_submission(tmp_path / "d").path == nested

    write_file(tmp_path / "e" / "one.py", "")
    write_file(tmp_path / "e" / "two.py", "")
    ambiguous = locate_submission(tmp_path / "e")
    assert ambiguous.path is None and "one.py" in ambiguous.error and "two.py" in ambiguous.error
    (tmp_path / "f").mkdir()
    assert "no rewards.py" in locate_submission(tmp_path / "f").error
    assert "not a .py file" in locate_submission(write_file(tmp_path / "g.zip", "PK")).error


def test_locate_refuses_links_to_other_files(tmp_path: Path) -> None:
    """A symlink to the reference solution must not earn its marks."""
    target = REPO / "reference" / "rewards.py"
    (tmp_path / "linked").mkdir()
    (tmp_path / "linked" / "rewards.py").symlink_to(target)
    assert locate_submission(tmp_path / "linked").path is None
    (tmp_path / "dirlink").mkdir()
    (tmp_path / "dirlink" / "exercise").symlink_to(target.parent, target_is_directory=True)
    assert "outside" in locate_submission(tmp_path / "dirlink").error
    (tmp_path / "whole").symlink_to(target.parent, target_is_directory=True)
    assert "symbolic link" in locate_submission(tmp_path / "whole").error


def test_discover_names_sorted_unique_and_skips_out(tmp_path: Path) -> None:
    subs = tmp_path / "subs"
    write_file(subs / "zoe" / "rewards.py", "")
    write_file(subs / "alice.py", "")
    write_file(subs / "alice" / "rewards.py", "")
    write_file(subs / "bob smith" / "rewards.py", "")
    write_file(subs / ".DS_Store", "")
    write_file(subs / "gradebook.csv" / "rewards.py", "")  # would collide with an output file
    out = subs / "graded"
    out.mkdir()
    names = [e.name for e in discover(subs, out)]
    assert names == ["alice", "alice.py", "bob_smith", "gradebook.csv_submission", "zoe"]


# ---------------------------------------------------------------------------------------------------------------
# Batch with the stand-in grader
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture
def class_folder(tmp_path: Path) -> Path:
    subs = tmp_path / "submissions"
    write_file(subs / "alice" / "rewards.py", "# fake: pass=forward.zero,forward.direction,backward.direction,"
           "backward.mean,shaping.contract,shaping.goal\n")  # fmt: skip
    write_file(subs / "bob.py", "# fake: pass=forward.zero,shaping.contract\n"
           "# fake: misconception=forward.direction:swapped_direction\n"
           "# fake: tag-misconception=backward.mean:sum_instead_of_mean\n")  # fmt: skip
    write_file(subs / "carol" / "exercise" / "rewards.py", "# fake: pass=forward.zero,backward.mean\n"
           "# fake: misconception=forward.direction:swapped_direction\n")  # fmt: skip
    write_file(subs / "dave" / "a.py", "# fake: pass=forward.zero\n")
    write_file(subs / "dave" / "b.py", "# fake: pass=forward.zero\n")  # two files: cannot tell which
    (subs / "erin").mkdir()  # nothing submitted
    write_file(subs / "frank.py", "# fake: crash\n")  # the grader dies without results
    write_file(subs / "gina.py", "# fake: garbage\n")  # unreadable results.json
    write_file(subs / "hank.py", "# fake: internal\n")  # grader internal error (exit 2, score 0 written)
    return subs


def test_batch_gradebook_matches_each_results_json(class_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    config = BatchConfig(submissions=class_folder, out=out, jobs=2, seed=7, no_training=True, quiet=True)
    rows, summary = run_batch(config, grader_cmd=FAKE_GRADER)

    expected = ["alice", "bob", "carol", "dave", "erin", "frank", "gina", "hank"]
    assert [r.name for r in rows] == expected
    header, book = _read_gradebook(out)
    assert header == ["submission", "score", "max_score", *FAKE_CHECKS, "reason", "error"]
    assert list(book) == expected

    for name in ("alice", "bob", "carol"):
        results = json.loads((out / name / "results.json").read_text())
        assert results["argv"][-3:] == ["--no-training", "--seed", "7"]  # options reached the grader
        assert float(book[name]["score"]) == results["score"]
        assert float(book[name]["max_score"]) == sum(t["max_score"] for t in results["tests"]) == FAKE_MAX
        for test in results["tests"]:
            assert float(book[name][test["name"]]) == test["score"]
        assert book[name]["error"] == ""
        assert "fake grader: grading" in (out / name / "grader.log").read_text()
    assert float(book["alice"]["score"]) == FAKE_MAX
    assert float(book["bob"]["score"]) == 4.0
    assert float(book["carol"]["score"]) == 3.5

    # Broken and hostile submissions: a row each, score 0, max_score filled in, a reason.
    for name, error, reason in (
        ("dave", "cannot tell which", "nothing to grade"),
        ("erin", "no rewards.py", "nothing to grade"),
        ("frank", "without writing results.json", "internal error"),
        ("gina", "unreadable results.json", "internal error"),
        ("hank", "grader error (exit status 2)", "internal error"),
    ):
        assert float(book[name]["score"]) == 0.0, name
        assert float(book[name]["max_score"]) == FAKE_MAX, name
        assert all(float(book[name][c]) == 0.0 for c in FAKE_CHECKS), name
        assert error in book[name]["error"], (name, book[name]["error"])
        assert book[name]["reason"] == reason, (name, book[name]["reason"])
    assert [book[name]["reason"] for name in ("alice", "bob", "carol")] == ["", "", ""]  # ordinary grades
    assert "crashing on purpose" in (out / "frank" / "grader.log").read_text()
    assert "internal error" in book["hank"]["error"]

    assert summary.submissions == 8 and summary.errors == 5 and summary.full_marks == 1
    assert summary.mean_score == pytest.approx((11.5 + 4.0 + 3.5) / 8)


def test_batch_pass_rates_and_misconceptions(class_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    rows, summary = run_batch(_fake_config(class_folder, out, jobs=3), grader_cmd=FAKE_GRADER)
    rates = {c.name: (c.passed, c.graded) for c in summary.checks}
    # Every submission counts: one that could not be graded has not passed any check.
    assert rates["forward.zero"] == (3, 8)  # alice, bob, carol
    assert rates["forward.direction"] == (1, 8)
    assert rates["backward.mean"] == (2, 8)  # alice, carol
    assert rates["shaping.contract"] == (2, 8)
    # The advisory 0-point check: judged by its status, over the reports that have it.
    assert rates["shaping.goal"] == (1, 3)
    assert {m: (n, where) for m, n, where in summary.misconceptions} == {
        "swapped_direction": (2, ["forward.direction"]),  # in extra_data (bob, carol)
        "sum_instead_of_mean": (1, ["backward.mean"]),  # a "misconception:ID" tag (bob)
    }

    saved = json.loads((out / "summary.json").read_text())
    assert saved["submissions"] == 8
    assert {c["name"]: c["pass_rate"] for c in saved["checks"]}["forward.zero"] == pytest.approx(3 / 8)
    assert [r["submission"] for r in saved["rows"]] == [r.name for r in rows]
    md = (out / "summary.md").read_text()
    assert "| forward.zero | 2 | 3/8 | 38% |" in md
    assert "| swapped_direction | 2 | 25% | forward.direction |" in md
    for chart in ("pass_rates.png", "score_histogram.png", "misconceptions.png"):
        assert _is_png(out / chart), chart


def test_batch_timeout_kills_the_grade_and_continues(tmp_path: Path) -> None:
    subs = tmp_path / "subs"
    write_file(subs / "slow.py", "# fake: sleep=60\n")
    write_file(subs / "quick.py", "# fake: pass=forward.zero\n")
    started = time.monotonic()
    rows, _ = run_batch(_fake_config(subs, tmp_path / "out", jobs=2, timeout=2), FAKE_GRADER)
    assert time.monotonic() - started < 30
    by_name = {r.name: r for r in rows}
    assert by_name["slow"].score == 0 and "longer than 2 s" in by_name["slow"].error
    assert by_name["quick"].score == 2.0 and not by_name["quick"].error


def test_daemons_of_a_killed_grade_do_not_outlive_the_batch(tmp_path: Path) -> None:
    pid_file = tmp_path / "daemon.pid"
    subs = tmp_path / "subs"
    write_file(subs / "evil.py", f"# fake: daemon={pid_file}\n# fake: sleep=60\n")
    rows, _ = run_batch(_fake_config(subs, tmp_path / "out", jobs=1, timeout=2), FAKE_GRADER)
    assert rows[0].score == 0 and "longer than 2 s" in rows[0].error
    daemon = int(pid_file.read_text())
    # Gone, or at most a zombie nobody has reaped yet: it can no longer run.
    state = Path(f"/proc/{daemon}/stat")
    assert not state.exists() or state.read_text().rsplit(")", 1)[1].split()[0] in "ZX"


def test_batch_is_deterministic_whatever_the_finishing_order(tmp_path: Path, class_folder: Path) -> None:
    write_file(class_folder / "aaron.py", "# fake: sleep=1.5\n# fake: pass=forward.zero\n")  # finishes last
    one, _ = run_batch(_fake_config(class_folder, tmp_path / "one", jobs=4), FAKE_GRADER)
    two, _ = run_batch(_fake_config(class_folder, tmp_path / "two", jobs=1), FAKE_GRADER)
    assert [r.name for r in one] == sorted(r.name for r in one)
    assert (tmp_path / "one" / "gradebook.csv").read_text() == (
        tmp_path / "two" / "gradebook.csv"
    ).read_text()


def test_cli_is_generated_from_the_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        batch.main(["--help"])
    assert exc.value.code == 0
    help_text = " ".join(capsys.readouterr().out.split())
    for option in ("SUBMISSIONS", "--out", "--no-training", "--jobs", "--seed", "--timeout"):
        assert option.lower() in help_text.lower(), option
    assert "one grader process each" in help_text  # the field's help text
    with pytest.raises(SystemExit) as exc:
        batch.main([str(tmp_path)])  # --out is required
    assert exc.value.code == 2
    assert batch.main([str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2


def test_cli_end_to_end_with_exit_status(class_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code = batch.main(
        [str(class_folder), "--out", str(out), "--jobs", "2", "--quiet", "--no-shared-baseline"],
        grader_cmd=FAKE_GRADER,
    )
    assert code == 1  # some submissions could not be graded normally
    shutil.rmtree(class_folder)
    write_file(class_folder / "alice.py", "# fake: pass=forward.zero\n")
    code = batch.main(
        [str(class_folder), "--out", str(out / "clean"), "--quiet", "--no-shared-baseline"],
        grader_cmd=FAKE_GRADER,
    )
    assert code == 0


# ---------------------------------------------------------------------------------------------------------------
# With the real grader
# ---------------------------------------------------------------------------------------------------------------


def _single_grade(submission: Path, results: Path) -> dict:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grader",
            "--submission",
            str(submission),
            "--results",
            str(results),
            "--no-training",
        ],
        capture_output=True,
        timeout=300,
        check=False,
    )
    return json.loads(results.read_text())


@pytest.mark.slow  # over 10 s on 2 cores (measured with --durations)
def test_real_grader_batch_scores_equal_single_grades(tmp_path: Path) -> None:
    subs = tmp_path / "subs"
    shutil.copy(REPO / "reference" / "rewards.py", write_file(subs / "ref" / "rewards.py", ""))
    shutil.copy(REPO / "exercise" / "rewards.py", write_file(subs / "stub.py", ""))
    write_file(subs / "syntax.py", "def kl_penalty_forward(:\n")
    write_file(subs / "exits.py", "import sys\nsys.exit(0)\n")
    out = tmp_path / "out"
    rows, summary = run_batch(BatchConfig(subs, out, no_training=True, jobs=2, quiet=True))
    by_name = {r.name: r for r in rows}
    assert by_name["ref"].score == by_name["ref"].max_score > 0
    assert by_name["stub"].score == by_name["syntax"].score == by_name["exits"].score == 0
    for name, path in (("ref", subs / "ref" / "rewards.py"), ("stub", subs / "stub.py")):
        single = _single_grade(path, tmp_path / f"{name}.json")
        batch_results = json.loads((out / name / "results.json").read_text())
        assert batch_results["score"] == single["score"]
        assert [(t["name"], t["score"]) for t in batch_results["tests"]] == [
            (t["name"], t["score"]) for t in single["tests"]
        ]
    # "||" in a check name is escaped for Markdown tables.
    assert "KL(pi \\|\\| pi_ref)" in (out / "summary.md").read_text()
    header, book = _read_gradebook(out)
    assert header[3:-2] == [  # the checks, between max_score and (reason, error)
        t["name"] for t in json.loads((out / "ref" / "results.json").read_text())["tests"]
    ]


def test_a_withheld_check_is_not_passed_and_is_counted_apart(tmp_path: Path) -> None:
    def test(name: str, score: float, tags: list[str]) -> dict:
        return {"name": name, "score": score, "max_score": 3.0, "tags": tags}

    rows = [
        batch.Graded("ann", 3.0, 6.0, [test("direction", 0.0, []), test("contract", 0.0, ["withheld"])]),
        batch.Graded("ben", 6.0, 6.0, [test("direction", 3.0, []), test("contract", 3.0, [])]),
        batch.Graded("cid", 0.0, 6.0, [test("direction", 0.0, []), test("contract", 0.0, [])]),
    ]
    summary = batch.summarise(rows)
    contract = {c.name: c for c in summary.checks}["contract"]
    assert (contract.passed, contract.graded, contract.withheld) == (1, 3, 1)
    assert {c["name"]: c["withheld"] for c in summary.to_json()["checks"]} == {"direction": 0, "contract": 1}
    batch.write_summary_md(tmp_path / "summary.md", summary, rows)
    assert "| contract | 3 | 1/3 | 33% | 1 | 1.00 |" in (tmp_path / "summary.md").read_text()


# ---------------------------------------------------------------------------------------------------------------
# Shared baseline, --resume, progress events (stand-in grader)
# ---------------------------------------------------------------------------------------------------------------

#: What a made baseline file holds, as far as the batch is concerned (the grader checks the rest).
FAKE_BASELINE = {"format": "stand-in", "preset": "tiny", "record": {"run": "baseline"}}


def test_the_shared_baseline_is_made_once_and_given_to_every_grade(
    class_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = []

    def make_baseline(self, seed: int, preset: str, timeout: float) -> dict:
        made.append((seed, preset))
        return FAKE_BASELINE

    monkeypatch.setattr(batch.run.LocalExecutor, "make_baseline", make_baseline)
    out = tmp_path / "out"
    rows, summary = run_batch(BatchConfig(class_folder, out, jobs=2, seed=3, quiet=True), FAKE_GRADER)
    assert made == [(3, "auto")]  # once for the batch, at its seed
    shared = out / "_shared" / "baseline-seed3-tiny.json"  # named with the preset it was made with
    assert json.loads(shared.read_text()) == FAKE_BASELINE
    for name in ("alice", "bob", "carol"):
        argv = json.loads((out / name / "results.json").read_text())["argv"]
        assert argv[argv.index("--baseline-run") + 1] == str(shared.resolve()), name
    assert any("shared baseline run: made once" in note for note in summary.notes)
    assert "shared baseline run: made once" in (out / "summary.md").read_text()
    assert [r.name for r in rows][:3] == ["alice", "bob", "carol"]  # _shared is not a submission


def test_without_a_shared_baseline_each_grade_makes_its_own(
    class_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from grader.training.baseline import BaselineError

    def broken(self, seed: int, preset: str, timeout: float) -> dict:
        raise BaselineError("the baseline run failed: no validation history")

    monkeypatch.setattr(batch.run.LocalExecutor, "make_baseline", broken)
    out = tmp_path / "out"
    _, summary = run_batch(BatchConfig(class_folder, out, jobs=2, quiet=True), FAKE_GRADER)
    assert "--baseline-run" not in json.loads((out / "alice" / "results.json").read_text())["argv"]
    assert any(
        "failed (the baseline run failed" in n and "each grade made its own" in n for n in summary.notes
    )
    # --no-training grades need no baseline at all
    monkeypatch.setattr(batch.run.LocalExecutor, "make_baseline", None)
    run_batch(BatchConfig(class_folder, tmp_path / "plain", no_training=True, quiet=True), FAKE_GRADER)
    assert not (tmp_path / "plain" / "_shared").exists()


def _stamps(out: Path, *, age: bool = False) -> dict[str, tuple[int, int]]:
    """Each submission's results.json: (inode, mtime_ns), set to long ago first with ``age`` (any rewrite then
    shows, whatever the clock's granularity)."""
    files = list(out.glob("*/results.json"))
    return {p.parent.name: stamp for p, stamp in (aged_stamps(files) if age else stamps(files)).items()}


def test_resume_regrades_nothing_that_is_done(class_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first, _ = run_batch(_fake_config(class_folder, out, jobs=3, no_training=True), FAKE_GRADER)
    before = _stamps(out, age=True)
    book = (out / "gradebook.csv").read_text()

    again, summary = run_batch(
        _fake_config(class_folder, out, jobs=3, no_training=True, resume=True), FAKE_GRADER
    )
    after = _stamps(out)
    done = {"alice", "bob", "carol"}  # graded normally; the others have no valid result (or nothing to grade)
    assert {name: after[name] for name in done} == {name: before[name] for name in done}
    assert all(after[name] != before[name] for name in ("gina", "hank"))  # grader errors are graded again
    assert (out / "gradebook.csv").read_text() == book
    assert [(r.name, r.score, r.error) for r in again] == [(r.name, r.score, r.error) for r in first]
    assert "--resume: kept 3 finished grades, graded 5" in summary.notes

    # A changed file, a new submission, other options: graded again; the rest still kept.
    write_file(class_folder / "bob.py", "# fake: pass=forward.zero,forward.direction\n")
    write_file(class_folder / "zed.py", "# fake: pass=forward.zero\n")
    rows, _ = run_batch(_fake_config(class_folder, out, jobs=3, no_training=True, resume=True), FAKE_GRADER)
    latest = _stamps(out)
    assert latest["alice"] == before["alice"] and latest["carol"] == before["carol"]
    assert latest["bob"] != before["bob"] and {r.name: r.score for r in rows}["bob"] == 5.0
    latest = _stamps(out, age=True)
    assert {r.name: r.score for r in rows}["zed"] == 2.0
    run_batch(_fake_config(class_folder, out, jobs=3, no_training=True, seed=5, resume=True), FAKE_GRADER)
    assert all(_stamps(out)[name] != latest[name] for name in ("alice", "bob", "carol"))  # another seed


def test_progress_events_count_done_failed_and_running(class_folder: Path, tmp_path: Path) -> None:
    class Record(batch.BatchEvents):
        def __init__(self) -> None:
            super().__init__()
            self.most_running = 0
            self.phases: list[str] = []

        def changed(self, last: str) -> None:
            with self.lock:
                self.most_running = max(self.most_running, len(self.running))

        def phase(self, text: str) -> None:
            self.phases.append(text)

    events = Record()
    write_file(class_folder / "slow.py", "# fake: sleep=1\n# fake: pass=forward.zero\n")
    rows, _ = run_batch(
        _fake_config(class_folder, tmp_path / "out", jobs=2, no_training=True), FAKE_GRADER, events=events
    )
    assert events.total == len(rows) == events.done == 9
    assert events.failed == sum(1 for r in rows if r.error) == 5
    assert events.most_running == 2  # --jobs 2: never more at once, and the slow grade overlapped another
    assert not events.running


def test_executor_ray_without_ray_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    write_file(tmp_path / "subs" / "a.py", "")
    code = batch.main([str(tmp_path / "subs"), "--out", str(tmp_path / "out"), "--executor", "ray"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip install .[cluster]" in err
    assert batch.main([str(tmp_path / "subs"), "--out", str(tmp_path / "o"), "--ray-address", "auto"]) == 2


def test_an_unreachable_ray_address_is_one_line_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.support.ray_cluster import free_port, require_ray

    require_ray()
    write_file(tmp_path / "subs" / "a.py", "")
    for address in (f"127.0.0.1:{free_port()}", f"ray://127.0.0.1:{free_port()}"):  # nothing listens there
        argv = [
            str(tmp_path / "subs"),
            "--out",
            str(tmp_path / "out"),
            "--executor",
            "ray",
            "--ray-address",
            address,
        ]
        code = batch.main(argv)
        assert code == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and f"could not reach Ray at {address}: nothing answers" in err, err
        assert "ray status" in err
    assert not (tmp_path / "out" / "a").exists()  # nothing was graded


@pytest.mark.slow
def test_a_batch_shares_one_real_baseline_run_and_the_reference_keeps_full_marks(
    reference_batch, kept_control
) -> None:
    """Slow: the one batch that makes real training runs with a shared baseline (tests/conftest.py: the reference
    graded in full, shared with the other slow tests that need a real grade): the session's kept control becomes
    the batch's shared baseline, then the reference's three runs and the challenge's (a full grade). How a
    baseline is checked is tested on synthetic runs in tests/unit/test_shared_baseline.py; made by the batch: the
    test above (with a stand-in)."""
    from grader.training.baseline import load_baseline

    rows, summary, out = reference_batch
    assert rows[0].error == "" and rows[0].score == rows[0].max_score == 110  # the challenge: its forward run
    shared = out / "_shared" / "baseline-seed0-tiny.json"
    baseline = load_baseline(shared, seed=0, preset="auto")  # a valid shared baseline for this grader
    assert baseline.history == kept_control.history
    assert any(note.startswith("shared baseline run: kept from an earlier grade") for note in summary.notes)
    results = GradingResults.from_dict(json.loads((out / "ref" / "results.json").read_text()))
    check = next(t for t in results.tests if t.check_id == "training.baseline")
    assert "made once and shared by every grade" in check.output
    # The grade scored the shared run: its numbers are the file's.
    assert f"KL(pi || pi_ref) = {baseline.final['kl_forward']:.3f}" in check.output


def test_grader_options_pass_only_what_differs_from_the_graders_defaults(tmp_path: Path) -> None:
    from grader.tools.batch.grade import grader_options

    plain = BatchConfig(tmp_path, tmp_path / "out")
    assert grader_options(plain) == []
    assert grader_options(plain, baseline="/b.json", training_jobs=2) == [
        "--training-jobs",
        "2",
        "--baseline-run",
        "/b.json",
    ]
    custom = BatchConfig(tmp_path, tmp_path / "out", seed=4, time_budget=900, training_preset="tiny")
    assert grader_options(custom) == ["--seed", "4", "--time-budget", "900", "--training-preset", "tiny"]
    # --no-training grades make no training runs: no baseline, preset or lanes to pass
    quick = BatchConfig(tmp_path, tmp_path / "out", no_training=True, training_preset="tiny")
    assert grader_options(quick, baseline="/b.json", training_jobs=2) == ["--no-training"]


BATCH_WITH_A_SLOW_GRADER = """
import sys
from pathlib import Path
from grader.tools.batch import BatchConfig, run_batch

subs, out, marker = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
grader = [sys.executable, "-c", "import time; time.sleep(120)", marker]  # the marker is in its command line
run_batch(BatchConfig(subs, out, no_training=True, jobs=1, quiet=True), grader_cmd=grader)
"""


def test_a_batch_killed_outright_takes_its_graders_with_it(tmp_path: Path) -> None:
    """kill -9 on the batch (a lost CI job) leaves no grader running: each is started with a parent-death
    signal (its training lanes die with it in turn)."""
    import uuid

    from tests.support.sandbox import kill_and_expect_gone, processes_with, wait_until

    marker = f"slowgrader{uuid.uuid4().hex}"
    subs = tmp_path / "subs"
    write_file(subs / "a.py", "")
    batch_proc = subprocess.Popen(
        [sys.executable, "-c", BATCH_WITH_A_SLOW_GRADER, str(subs), str(tmp_path / "out"), marker],
        cwd=REPO,
        start_new_session=True,
    )
    started = wait_until(lambda: [p for p in processes_with(marker) if p != batch_proc.pid], 60)
    kill_and_expect_gone(batch_proc, marker)  # also when the grader never started: nothing is left running
    assert started, "the grader never started"
