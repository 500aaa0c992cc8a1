"""Finding rewards.py in what a student uploaded (grader/grading/locate.py): each rule's exact answer, the
messages a batch row shows, and the limits (file size, files scanned).

The rules' main cases through a batch are in tests/integration/test_batch.py; these pin the messages and the
edges that the mutation run (tests/README.md, "Mutation score") found unchecked.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from grader.contract import MAX_SUBMISSION_BYTES
from grader.grading import locate
from grader.grading.locate import Located, locate_submission
from tests.support.files import write_file


def _sized(path: Path, size: int) -> Path:
    """A file of ``size`` bytes (sparse: no time spent writing them)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    os.truncate(path, size)
    return path


def test_a_python_file_is_graded_as_it_is(tmp_path: Path) -> None:
    entry = write_file(tmp_path / "alice.py", "x = 1\n")
    assert locate_submission(entry) == Located(entry)


def test_a_file_that_is_not_python_or_too_big_is_refused_with_its_name(tmp_path: Path) -> None:
    assert locate_submission(write_file(tmp_path / "notes.txt", "")) == Located(
        None, "notes.txt is not a .py file (upload rewards.py)"
    )
    big = _sized(tmp_path / "big.py", MAX_SUBMISSION_BYTES + 1)
    assert locate_submission(big) == Located(
        None,
        f"big.py is {MAX_SUBMISSION_BYTES + 1} bytes, more than the {MAX_SUBMISSION_BYTES} allowed for rewards.py",
    )
    at_the_limit = _sized(tmp_path / "limit.py", MAX_SUBMISSION_BYTES)
    assert locate_submission(at_the_limit) == Located(at_the_limit)


def test_a_missing_entry_says_so(tmp_path: Path) -> None:
    assert locate_submission(tmp_path / "gone") == Located(None, f"{tmp_path / 'gone'} does not exist")


def test_a_found_file_says_which_rule_chose_it(tmp_path: Path) -> None:
    nested = write_file(tmp_path / "a" / "sub" / "rewards.py", "")
    write_file(tmp_path / "a" / "notes.py", "")
    assert locate_submission(tmp_path / "a") == Located(
        nested, note="graded sub/rewards.py (the only rewards.py)"
    )
    renamed = write_file(tmp_path / "b" / "hw" / "alice.py", "")
    assert locate_submission(tmp_path / "b") == Located(
        renamed, note="graded hw/alice.py (the only .py file)"
    )


def test_several_rewards_files_are_listed_five_at_most(tmp_path: Path) -> None:
    for name in "abcdef":
        write_file(tmp_path / "many" / name / "rewards.py", "")
    listing = ", ".join(f"{name}/rewards.py" for name in "abcde")
    assert locate_submission(tmp_path / "many") == Located(
        None, f"found 6 files named rewards.py ({listing}); upload exactly one"
    )
    write_file(tmp_path / "two" / "a" / "rewards.py", "")
    write_file(tmp_path / "two" / "b" / "rewards.py", "")
    assert locate_submission(tmp_path / "two") == Located(
        None, "found 2 files named rewards.py (a/rewards.py, b/rewards.py); upload exactly one"
    )


@pytest.mark.parametrize(("count", "more"), [(2, ""), (5, ""), (6, " and 1 more"), (8, " and 3 more")])
def test_other_python_files_are_listed_five_at_most_with_how_many_more(
    tmp_path: Path, count: int, more: str
) -> None:
    names = [f"f{i}.py" for i in range(count)]
    for name in names:
        write_file(tmp_path / name, "")
    listing = ", ".join(names[:5])
    assert locate_submission(tmp_path) == Located(
        None, f"no rewards.py, and {count} other .py files ({listing}{more}): cannot tell which to grade"
    )


def test_no_python_file_at_all(tmp_path: Path) -> None:
    write_file(tmp_path / "README.md", "")
    assert locate_submission(tmp_path) == Located(
        None, "no rewards.py (and no other .py file) in the submission"
    )


def test_hidden_folders_and_files_are_not_searched(tmp_path: Path) -> None:
    chosen = write_file(tmp_path / "hw" / "mine.py", "")
    write_file(tmp_path / ".backup" / "rewards.py", "")
    write_file(tmp_path / "hw" / ".scratch.py", "")
    assert locate_submission(tmp_path).path == chosen


def test_a_searched_file_too_big_is_refused(tmp_path: Path) -> None:
    _sized(tmp_path / "sub" / "rewards.py", MAX_SUBMISSION_BYTES + 1)
    located = locate_submission(tmp_path)
    assert located.path is None
    assert located.error.startswith("rewards.py is ") and "more than the" in located.error


def test_the_search_stops_after_the_files_it_may_scan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(locate, "_MAX_FILES_SCANNED", 3)
    for name in ("a.txt", "b.txt", "c.py"):
        write_file(tmp_path / "within" / name, "")
    # the third file scanned is still looked at
    assert locate_submission(tmp_path / "within").path == tmp_path / "within" / "c.py"
    for name in ("a.txt", "b.txt", "c.txt", "d.py"):
        write_file(tmp_path / "beyond" / name, "")
    assert locate_submission(tmp_path / "beyond").path is None
