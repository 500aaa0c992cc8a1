"""Project-wide pytest configuration.

Hypothesis settings profiles are chosen by environment variable, as in Hypothesis's own suite:
``HYPOTHESIS_PROFILE=dev`` (few examples, for editing), ``default`` and ``ci`` (more examples, derandomised).
"""

from __future__ import annotations

import os

# One BLAS/OpenMP thread per process: the tiny models gain nothing from more, and on a shared 2-core machine
# two threads per process made training steps many times slower. Set before torch is imported anywhere;
# subprocesses (CLI smoke tests, grader workers) inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
# Tests never reach the Hugging Face Hub: fail fast instead of waiting on the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# The control run that `python -m grader` keeps across grades (grader/training/cache.py) is kept for this test
# session only, in a directory of its own: the user's ~/.cache is never read or written, and the grades of one
# session share their seed-0 control as a student's grades do. Set before xdist starts its workers (they
# inherit it); a test that needs its grades to make the control passes --no-run-cache. Removed at the end.
if "GRADER_RUN_CACHE" not in os.environ:
    import atexit
    import shutil
    import tempfile

    os.environ["GRADER_RUN_CACHE"] = _RUN_CACHE = tempfile.mkdtemp(prefix="grader-test-runs-")
    atexit.register(shutil.rmtree, _RUN_CACHE, ignore_errors=True)

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("default", deadline=None, database=None)
settings.register_profile("dev", parent=settings.get_profile("default"), max_examples=20)
settings.register_profile(
    "ci",
    parent=settings.get_profile("default"),
    max_examples=200,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "default"))


@pytest.fixture(scope="session")
def tiny_gpt2_dir(tmp_path_factory: pytest.TempPathFactory):
    """The random tiny GPT-2 stand-in (tests/support/tiny_models.py), built once per session and loaded by each
    test through ``from_pretrained``. Read-only: a test that changes weights loads its own copy in memory."""
    from tests.support.tiny_models import make_tiny_gpt2

    return make_tiny_gpt2(tmp_path_factory.mktemp("tiny-gpt2"))


@pytest.fixture
def stripped_to_hint(tmp_path, monkeypatch: pytest.MonkeyPatch):
    """The grader's catalogue replaced by the copy a handout ships (stripped to hint), as in a handout. Shared by
    the feedback-level tests in process (unit) and through a real grade (integration)."""
    from grader.checks import feedback

    path = tmp_path / "misconceptions.toml"
    path.write_text(feedback.strip_catalogue(feedback.CATALOGUE_PATH, "hint"), encoding="utf-8")
    feedback._default_catalogue.cache_clear()
    monkeypatch.setattr(feedback, "CATALOGUE_PATH", path)
    yield path
    feedback._default_catalogue.cache_clear()


@pytest.fixture(scope="session")
def kept_control():
    """The seed-0 control run of the tiny preset in this session's run cache (as a student's first grade keeps
    it), made once for the session's slow tests; its record. The grades of those tests then make three runs
    instead of four, as a student's second grade does."""
    from grader.training import cache
    from grader.training.baseline import make_baseline
    from grader.training.runs import RunRecord

    directory = cache.default_dir()
    record = cache.read(directory, 0, "tiny")
    if record is None:
        record = RunRecord.from_dict(make_baseline(0, "tiny")["record"])
        assert cache.write(directory, record) is not None, record
    return record


@pytest.fixture(scope="session")
def reference_batch(tmp_path_factory, kept_control):
    """The reference graded in full (property checks, training checks, the challenge) by a batch of one, with the
    session's kept control as the batch's shared baseline: three graded runs and the challenge's, the one real
    grade of the solution in the slow tier. Shared by the slow tests that need one (a full grade is ~60 CPU-s):
    tests/integration/test_batch.py (the batch and its shared baseline), test_training_checks_grade.py (every
    training check passes, the curves, the same seed reproduces it), test_challenge_runs.py (the tuned
    configuration passes). Read-only: a test that changes its files copies them first.

    Returns ``(rows, summary, out)``: the batch's gradebook rows and summary, and its output folder (the grade's
    results.json and curves in ``out / "ref"``)."""
    import shutil
    from pathlib import Path

    from grader.tools.batch import BatchConfig, run_batch

    root = tmp_path_factory.mktemp("reference-batch")
    reference = Path(__file__).resolve().parents[1] / "reference" / "rewards.py"
    if not reference.is_file():
        pytest.skip("a handout has no reference/")
    (root / "subs" / "ref").mkdir(parents=True)
    shutil.copy(reference, root / "subs" / "ref" / "rewards.py")
    out = root / "out"
    # A generous time budget: on a busy machine the four runs can take minutes, and this is no test of time.
    rows, summary = run_batch(BatchConfig(root / "subs", out, jobs=1, time_budget=1800, quiet=True))
    return rows, summary, out
