"""No false rejects: correct code written with torch earns full marks through the real sandbox, and the memory
limit does not reject libraries that map far more than they use (the CUDA build of torch).

Measured with the default ``pip install torch`` (2.14.1+cu130, no GPU, one thread): after ``import torch`` the
worker maps 3.07 GiB (VmPeak) and uses 505 MiB resident (220 MiB of it shared library pages); a small tensor
computation adds about 7 MiB. The old 2 GiB ``RLIMIT_AS`` made that import fail. The sandbox now caps the
address space at 16 GiB (only against absurd reservations) and limits the *resident* memory of the worker's
process tree (2 GiB by default, polled). The CUDA wheel itself is not installed in CI: the tests below
reproduce its failure mode (gigabytes of address space mapped, little of it used) with ``mmap``.
"""

from __future__ import annotations

import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from grader.checks import REGISTRY
from grader.grading.runner import GradeRequest, grade
from grader.sandbox import SandboxConfig, SandboxedSubmission
from tests.support.check_ids import RUN_IDS
from tests.support.sandbox import GOOD, RUBRIC, write_submission
from tests.support.sandbox import REGISTRY as EXACT_REGISTRY

#: Correct in every respect, written the way a torch user would: tensors, broadcasting, masks for ragged rows.
TORCH_SOLUTION = '''
"""KL penalties and reward shaping with torch."""
import torch

MAX_LOG_RATIO = torch.log(torch.tensor(20.0, dtype=torch.float64))


def _padded(rows):
    """Ragged rows -> (values, mask): one row per completion, zero-padded to the longest."""
    width = max((len(r) for r in rows), default=0)
    values = torch.zeros(len(rows), width, dtype=torch.float64)
    mask = torch.zeros(len(rows), width, dtype=torch.float64)
    for i, row in enumerate(rows):
        if len(row):
            values[i, : len(row)] = torch.tensor(row, dtype=torch.float64)
            mask[i, : len(row)] = 1.0
    return values, mask


def _row_means(terms, mask, kl_coef):
    counts = mask.sum(dim=1)
    sums = (terms * mask).sum(dim=1)
    means = torch.where(counts > 0, sums / counts.clamp(min=1.0), torch.zeros_like(sums))
    return kl_coef * means


def kl_penalty_forward(log_probs_policy, log_probs_ref, kl_coef=0.1):
    log_pi, mask = _padded(log_probs_policy)
    log_ref, _ = _padded(log_probs_ref)
    return _row_means(log_pi - log_ref, mask, kl_coef)


def kl_penalty_backward(log_probs_policy, log_probs_ref, kl_coef=0.1):
    log_pi, mask = _padded(log_probs_policy)
    log_ref, _ = _padded(log_probs_ref)
    ratio = torch.exp(torch.clamp(log_ref - log_pi, max=MAX_LOG_RATIO))
    return _row_means(1.0 - ratio, mask, kl_coef)


def shaped_reward(scores, completions, prompts=None):
    s = torch.tensor([float(x) for x in scores], dtype=torch.float64)
    words = [c.lower().split() for c in completions]
    distinct = torch.tensor([len(set(w)) / len(w) if w else 0.2 for w in words], dtype=torch.float64)
    length = torch.tensor([min(1.0, (len(w) + 1) / 6) for w in words], dtype=torch.float64)
    return (s * distinct * length).tolist()
'''


@pytest.mark.slow  # about 10 s on 2 cores: every property check with torch imported in the worker
def test_a_torch_solution_earns_full_marks_through_the_sandbox(tmp_path: Path) -> None:
    """Every property check of the real rubric, graded as `nox -s grade -- --no-training` would."""
    results = grade(GradeRequest(write_submission(tmp_path, TORCH_SOLUTION), training=False, max_examples=20))
    failed = {t.check_id: t.output for t in results.tests if t.score < t.max_score}
    assert results.full_marks and not failed, failed
    assert {t.check_id for t in results.tests} == set(REGISTRY) - RUN_IDS


# --- the CUDA wheel's failure mode, without the CUDA wheel ------------------------------------------------------

#: Reserve 8 GiB of address space at import, as the CUDA libraries do, and touch almost none of it.
MAPS_8_GIB = """
import mmap
NORESERVE = 0x4000  # MAP_NORESERVE (Linux): Python 3.11's mmap exports neither it nor PROT_NONE (0)
_reserved = mmap.mmap(-1, 8 << 30, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | NORESERVE, prot=0)  # PROT_NONE
_untouched = mmap.mmap(-1, 2 << 30, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | NORESERVE)
_untouched[:4096] = b"x" * 4096
"""

FAST = SandboxConfig(call_timeout_s=20.0, import_timeout_s=20.0, check_budget_s=40.0)


@pytest.mark.parametrize("isolation", ["auto", "fallback"])
def test_mapping_gigabytes_without_using_them_is_not_rejected(tmp_path: Path, isolation: str) -> None:
    results = grade(
        GradeRequest(
            write_submission(tmp_path, MAPS_8_GIB + GOOD),
            rubric=RUBRIC,
            sandbox=replace(FAST, isolation=isolation),
        ),
        registry=EXACT_REGISTRY,
    )
    assert results.full_marks, results.output


@pytest.mark.parametrize("isolation", ["auto", "fallback"])
def test_really_using_more_than_the_limit_fails_with_the_memory_message(
    tmp_path: Path, isolation: str
) -> None:
    hog = """
    def kl_penalty_forward(log_probs_policy, log_probs_ref, kl_coef=0.1):
        block = bytearray(900 << 20)
        block[::4096] = b"x" * len(block[::4096])  # every page resident
        return [0.0] * len(log_probs_policy)
    """
    config = replace(FAST, memory_bytes=512 << 20, isolation=isolation)
    with SandboxedSubmission(write_submission(tmp_path, GOOD + textwrap.dedent(hog)), config) as sub:
        assert sub.start().ok
        sub.begin_check(40)
        out = sub.call("kl_penalty_forward", [[-1.0]], [[-1.0]], kl_coef=0.1)
        assert out.status == "crashed", out
        assert "used more than 512 MiB of memory (the sandbox's limit" in out.message, out.message
        sub.begin_check(40)  # the next check gets a fresh worker
        assert sub.call("shaped_reward", [0.5], ["fine"]).value == [0.5]


def test_the_memory_limit_counts_resident_memory_not_mappings(tmp_path: Path) -> None:
    """The address-space cap is far above the resident limit, and both are what the report says."""
    config = SandboxConfig()
    assert config.address_space_bytes is None or config.address_space_bytes >= 8 * config.memory_bytes
    with SandboxedSubmission(write_submission(tmp_path, GOOD), config) as sub:
        assert sub.start().ok
        assert "2 GiB resident memory" in sub.isolation
        assert sub.sandbox_info["memory_limit_bytes"] == 2 << 30
