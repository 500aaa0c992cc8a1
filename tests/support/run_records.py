"""Made-up training run records, as the lanes write them, for the not-gradable tests: the unit tests score them
directly, the integration tests hand them to a real grade in place of the GRPO runs."""

from __future__ import annotations

from grader.training.runs import RunRecord


def history(sentiments, kl, repetition=0.05, perplexity=4.5):
    """A validation history: sentiment and KL per validation; repetition and perplexity from the second on."""
    return [
        {
            "step": 10 * i,
            "sentiment_mean": s,
            "kl_forward": k,
            "kl_backward": k,
            "repetition": repetition if i else 0.05,
            "ref_perplexity": perplexity if i else 4.5,
        }
        for i, (s, k) in enumerate(zip(sentiments, kl, strict=True))
    ]


def run(name, hist=None, **extra) -> RunRecord:
    """A run of the tiny preset at kl_coef 0.3: ok with ``hist``, failed without."""
    fields = {"ok": hist is not None, "history": hist or [], "preset": "tiny", "config": {"kl_coef": 0.3}}
    return RunRecord(name, **{**fields, **extra})


LEARNED = run("baseline", history([0.55, 0.8, 0.95], [0.0, 1.0, 5.0]), wall_time_s=12.0)
STALLED = run("baseline", history([0.55, 0.56, 0.57], [0.0, 0.01, 0.02]), wall_time_s=12.0)  # did not learn
GOOD = {  # a KL run that learns and stays close, a shaped run that repeats less than the forward run
    "forward": run("forward", history([0.55, 0.7, 0.8], [0.0, 0.1, 0.2], repetition=0.12), wall_time_s=15.0),
    "backward": run("backward", history([0.55, 0.7, 0.8], [0.0, 0.1, 0.2]), wall_time_s=15.0),
    "shaped": run("shaped", history([0.55, 0.7, 0.8], [0.0, 0.1, 0.2], repetition=0.05), wall_time_s=15.0),
}


def timed_out(name, budget_s=600.0, budget_cost=2.4, **extra) -> RunRecord:
    """A run stopped at its budget (as ``execute`` records a lane killed at ``timeout_s``)."""
    error = f"the training runs did not finish within their time budget ({budget_s:g} s)"
    return run(name, error=error, timed_out=True, budget_s=budget_s, budget_cost=budget_cost, **extra)
