"""A training verdict inside the calibration's noise band is decided by more seeds, not by one draw
(grader/checks/evidence.py, issue 22 item 3): the check asks the grade's engine for its runs at the next seeds and
the majority of three decides; a clear verdict costs nothing more; a draw the machine cannot make leaves the
grade's own verdict, and the feedback says each time what happened.

The runs are made-up records, by run and seed, handed to a real engine in place of the GRPO runs.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from grader.checks import evidence
from grader.checks.training import checks
from grader.contract import CallOutcome, CheckOutcome, NotGradable, TrainingContext
from grader.training import engine as engine_module
from grader.training.engine import TrainingEngine, TrainingOptions
from tests.support.run_records import GOOD, LEARNED, history, run

REFERENCE = Path(__file__).resolve().parents[2] / "reference" / "rewards.py"
CHECK = checks()["training.forward_kl"]


def forward(kl_ratio: float) -> object:
    """A forward run that learns (+0.25) and ends at ``kl_ratio`` x LEARNED's final KL (5.0); the tiny threshold
    is 0.25, so 0.22 and 0.28 are inside the noise band (0.177-0.354), 0.05 and 0.6 far outside it."""
    return run("forward", history([0.55, 0.7, 0.8], [0.0, 1.0, 5.0 * kl_ratio]), wall_time_s=15.0)


class Answers:
    def call(self, function, *args) -> CallOutcome:
        return CallOutcome("ok", value=[0.0] * len(args[0]))


@pytest.fixture
def lanes(monkeypatch) -> list[tuple[int, list[str]]]:
    """(seed, run names) of every request to the lanes; the forward run's KL ratio per seed from ``ratios``."""
    asked: list[tuple[int, list[str]]] = []
    lanes.ratios = {}  # type: ignore[attr-defined]

    def fake_execute(jobs, **_kwargs):
        seed = jobs[0].seed
        asked.append((seed, sorted(job.run for job in jobs)))
        made = {"baseline": LEARNED, "forward": forward(lanes.ratios[seed])}  # type: ignore[attr-defined]
        return {job.key: replace(made[job.run], key=job.key, seed=job.seed) for job in jobs}

    monkeypatch.setattr(engine_module, "execute", fake_execute)
    return asked


def grade(
    ratios: dict[int, float], budget_s: float = 600.0, withheld_by: tuple[str, ...] = ()
) -> CheckOutcome:
    lanes.ratios.clear()  # type: ignore[attr-defined]
    lanes.ratios.update(ratios)  # type: ignore[attr-defined]
    engine = TrainingEngine(
        str(REFERENCE),
        "",
        options=TrainingOptions(preset="tiny"),
        wanted=frozenset({"baseline", "forward"}),
    )
    context = TrainingContext(seed=0, training=engine, budget_s=budget_s, withheld_by=withheld_by)
    return CHECK(Answers(), context)


def test_a_clear_verdict_is_decided_by_the_grades_own_runs(lanes) -> None:
    assert grade({0: 0.05}).fraction == 1.0
    assert grade({0: 0.6}).fraction == 0.0
    assert [seed for seed, _ in lanes] == [0, 0]  # no further seed


def test_a_verdict_in_the_noise_band_that_a_second_seed_confirms_takes_two_seeds(lanes) -> None:
    outcome = grade({0: 0.28, 1: 0.40})
    assert outcome.fraction == 0.0
    assert [seed for seed, _ in lanes] == [0, 1]
    assert lanes[1][1] == ["baseline", "forward"]  # only the runs this check judges
    assert "seed 0 FAIL, seed 1 FAIL. Failed on 2 of 2 seeds" in outcome.feedback
    assert "KL(pi || pi_ref) ratio 0.280 against at most 0.25" in outcome.feedback
    assert outcome.measurements["seeds"] == [0, 1] and outcome.measurements["verdicts"] == [False, False]


def test_a_split_is_decided_by_a_third_seed_and_the_feedback_shows_the_deciding_run(lanes) -> None:
    """A correct penalty unlucky at the grade's seed (just above the threshold) passes on the next two."""
    outcome = grade({0: 0.28, 1: 0.12, 2: 0.08})
    assert outcome.fraction == 1.0
    assert [seed for seed, _ in lanes] == [0, 1, 2]
    assert "seed 0 FAIL, seed 1 pass, seed 2 pass. Passed on 2 of 3 seeds" in outcome.feedback
    assert "The run shown above is seed 1's" in outcome.feedback
    assert "0.12x the unregularised baseline's" in outcome.feedback  # seed 1's numbers, not seed 0's
    # ... and a wrong one lucky at the grade's seed (just below it) fails on the next two
    assert grade({0: 0.22, 1: 0.3, 2: 0.5}).fraction == 0.0


def test_without_time_for_more_runs_the_grades_own_verdict_stands_and_says_why(lanes) -> None:
    """A further seed needs 1.5x the time the grade's own runs took (at least 1 s): with 1 s left the check
    makes none, and the grade's own verdict stands (a machine too slow for more evidence costs nothing)."""
    outcome = grade({0: 0.22}, budget_s=1.0)
    assert outcome.fraction == 1.0
    assert [seed for seed, _ in lanes] == [0]
    assert "More evidence could not be had at seed 1" in outcome.feedback


def test_a_run_that_says_nothing_either_way_is_decided_by_more_seeds_too() -> None:
    """A reason other than a threshold (evidence.UNDECIDED: a shaping whose bonus never came up in the run) asks
    for the same draws; the feedback gives the reason. Changing nothing on any seed still fails."""
    same = "the same run as its control step for step"
    first = CheckOutcome(0.0, "same", measurements={evidence.NEAR: [], evidence.UNDECIDED: [same]})
    later = {1: CheckOutcome(1.0, "moved"), 2: CheckOutcome(1.0, "moved")}
    outcome = evidence.decide(first, 0, later.get)
    assert outcome.fraction == 1.0 and outcome.feedback.startswith("moved")
    assert f"Your result at seed 0 was {same}, so one training run does not decide it" in outcome.feedback
    assert (
        "seed 0 undecided, seed 1 pass, seed 2 pass. Passed on 2 of 2 seeds that decided" in outcome.feedback
    )
    assert "close to a threshold" not in outcome.feedback
    never = evidence.decide(first, 0, lambda seed: first)
    assert never.fraction == 0.0 and never.measurements["seeds"] == [0, 1, 2]
    assert "seed 0 undecided, seed 1 undecided, seed 2 undecided. No seed decided it" in never.feedback


UNDECIDED_FIRST = CheckOutcome(
    0.0, "same", measurements={evidence.NEAR: [], evidence.UNDECIDED: ["the same run as its control"]}
)


def test_an_undecided_draw_is_no_evidence_against_the_submission() -> None:
    """A correct rhyme shaping whose bonus came up at seed 1 only (seeds 0 and 2 met no rhyme: its control's run
    step for step) passes on the one seed that decided; counted as failures, the undecided draws outvoted it."""
    later = {1: CheckOutcome(1.0, "moved"), 2: UNDECIDED_FIRST}
    outcome = evidence.decide(UNDECIDED_FIRST, 0, later.get)
    assert outcome.fraction == 1.0
    assert (
        "seed 0 undecided, seed 1 pass, seed 2 undecided. Passed on 1 of 1 seeds that decided"
        in outcome.feedback
    )
    # a split among the draws that decided (the third could not be made) goes to the first of them
    split = evidence.decide(UNDECIDED_FIRST, 0, {1: CheckOutcome(1.0, "moved"), 2: None}.get)
    assert split.fraction == 1.0 and "More evidence could not be had at seed 2" in split.feedback


def test_no_time_for_the_seeds_that_decide_is_the_machines_fault_unless_the_submission_took_it() -> None:
    """An undecided run with no time left for more: not gradable when the machine took the time (no points
    lost); a fail when the submission's own calls did (running out the time must not escape a verdict)."""
    with pytest.raises(
        NotGradable, match="could not make its runs at seed 1, which would: the machine was slow"
    ):
        evidence.decide(UNDECIDED_FIRST, 0, lambda seed: None, lambda: "the machine was slow")
    blamed = evidence.decide(UNDECIDED_FIRST, 0, lambda seed: None, lambda: None)
    assert blamed.fraction == 0.0 and "More evidence could not be had at seed 1" in blamed.feedback
    # a run close to a threshold decides by itself: the machine is not asked about
    near = CheckOutcome(0.0, "near", measurements={evidence.NEAR: ["KL rise +0.6 against at most 0.55"]})
    kept = evidence.decide(near, 0, lambda seed: None, lambda: pytest.fail("asked the machine"))
    assert kept.fraction == 0.0


def test_the_shaped_check_blames_the_machine_only_when_its_runs_spent_the_time_training() -> None:
    """training._machine_cause reads the judged runs' timing: time inside the submission's calls below 30% of
    their wall time is the machine's; a shaping that sleeps to run out the grade's time is not."""
    from grader.checks.training import _machine_cause
    from grader.training.engine import RunSet

    def runs(mine: float) -> RunSet:
        timing = {"wall_seconds": 20.0, "submission_seconds": mine}
        records = {name: replace(LEARNED, run=name, timing=timing) for name in ("forward", "shaped")}
        return RunSet(records, None, 0)

    assert "too slow or too busy" in (_machine_cause(runs(0.5), ("forward", "shaped"))() or "")
    assert _machine_cause(runs(15.0), ("forward", "shaped"))() is None
    assert _machine_cause(RunSet({}, None, 0), ("forward", "shaped"))() is None  # no timing: no excuse


def test_decide_leaves_a_clear_outcome_alone_and_never_asks_for_more() -> None:
    first = CheckOutcome(1.0, "fine", measurements={evidence.NEAR: []})
    assert evidence.decide(first, 0, lambda seed: pytest.fail(f"asked for seed {seed}")) is first


@pytest.mark.parametrize(
    ("value", "threshold", "inside"),
    [(0.17, 0.17, True), (0.121, 0.17, True), (0.240, 0.17, True), (0.119, 0.17, False), (0.241, 0.17, False),
     (-0.1, 0.1, False), (float("nan"), 0.17, False), (0.5, float("inf"), False)],
)  # fmt: skip
def test_the_noise_band_is_a_factor_of_root_two_either_side(value, threshold, inside) -> None:
    assert evidence.near(value, threshold) is inside


def test_a_grade_without_time_for_the_seeds_that_decide_a_shaped_run_is_not_charged(monkeypatch) -> None:
    """Wiring: the shaped check at seed 0 is its control step for step (a rhyme shaping that met no rhyme), and
    the grade has 1 s left: not gradable when the runs spent their time training, a fail when they spent it
    in the submission's calls."""
    shaped_check = checks()["training.shaped"]
    control = replace(GOOD["forward"], history=[{**h, "rhyme_rate": 0.0} for h in GOOD["forward"].history])

    def grade_with(submission_seconds: float):
        timing = {"wall_seconds": 15.0, "submission_seconds": submission_seconds}

        def fake_execute(jobs, **_kwargs):
            return {j.key: replace(control, run=j.run, key=j.key, seed=j.seed, timing=timing) for j in jobs}

        monkeypatch.setattr(engine_module, "execute", fake_execute)
        engine = TrainingEngine(
            str(REFERENCE),
            "",
            options=TrainingOptions(preset="tiny"),
            wanted=frozenset({"forward", "shaped"}),
        )
        context = TrainingContext(seed=0, training=engine, budget_s=1.0, shaping_goal="rhyme")
        return shaped_check(Answers(), context)

    with pytest.raises(NotGradable, match="the machine was too slow or too busy"):
        grade_with(0.2)
    charged = grade_with(12.0)
    assert charged.fraction == 0.0 and "More evidence could not be had at seed 1" in charged.feedback


def test_a_check_whose_gate_already_failed_spends_no_runs_on_further_seeds(lanes) -> None:
    """Its points are withheld whatever it finds (the runner passes withheld_by): a result in the noise band
    keeps the grade's own seed's verdict, and the feedback says why no more runs were made."""
    outcome = grade({0: 0.28, 1: 0.1, 2: 0.1}, withheld_by=("kl_forward.direction",))
    assert [seed for seed, _ in lanes] == [0]
    assert outcome.fraction == 0.0 and "withheld anyway (it requires kl_forward.direction" in outcome.feedback
