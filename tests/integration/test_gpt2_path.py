"""The ``gpt2`` preset's code path: a GPT-2 policy, a 5-star BERT classifier scored as expected stars, LoRA with
the base model (adapters disabled) as the reference. Both models load from local directories through
``from_pretrained``, as GPT-2 and ``nlptown/bert-base-multilingual-uncased-sentiment`` do from the Hub cache.

On CPU with small stand-ins of the same architectures (every CI run); with full-size random stand-ins on a GPU
(``-m gpu``, skipped without CUDA). The grader takes the same local directories (``--model_name`` /
``--sentiment_model``) through to its training runs: checked here from the command line to the lanes' run
configuration.
"""

from __future__ import annotations

import math

import pytest
from rich.console import Console

from exercise.config import TrainConfig
from exercise.functions import RewardFunctions
from exercise.train import run
from tests.support.tiny_models import make_tiny_five_star


def k1(lp, lr, kl_coef=0.1):
    return [
        kl_coef * sum(a - b for a, b in zip(p, r, strict=True)) / len(p) if p else 0.0
        for p, r in zip(lp, lr, strict=True)
    ]


def shaping(scores, completions, prompts=None):
    return list(scores)


FUNCTIONS = RewardFunctions(k1, k1, shaping)


def _run(tmp_path, model_dir, sentiment_dir, **changes):
    config = TrainConfig(
        preset="gpt2",
        model_name=str(model_dir),
        sentiment_model=str(sentiment_dir),
        kl_type="forward",
        use_peft=True,
        max_steps=2,
        eval_every=1,
        prompts_per_step=1,
        num_generations=4,
        max_completion_length=8,
        validation_prompts=4,
        output_dir=str(tmp_path / "run"),
        save_model=False,
        quiet=True,
    ).replace(**changes)
    return run(config, FUNCTIONS, console=Console(quiet=True))


def _check(result):
    assert result.ok, result.error
    assert result.config.preset == "gpt2" and result.config.learning_rate == 1e-4  # LoRA's rate
    assert [record["step"] for record in result.history] == [0, 1, 2]
    first = result.history[0]
    # Step 0: the adapters are zero, so the policy is its own reference.
    assert first["kl_forward"] == pytest.approx(0.0, abs=1e-5)
    for record in result.history:
        assert 0.0 <= record["sentiment_mean"] <= 1.0 and math.isfinite(record["ref_perplexity"])
    assert any("reward/kl_penalty_std" in entry for entry in result.train_log)


@pytest.mark.slow
def test_gpt2_preset_with_small_standins_on_cpu(tmp_path, tiny_gpt2_dir):
    """Slow: two LoRA GRPO steps and three validations through the whole pipeline (about 15 s on 2 cores)."""
    sentiment_dir = make_tiny_five_star(tmp_path / "five-star")
    result = _run(tmp_path, tiny_gpt2_dir, sentiment_dir)
    _check(result)
    # The 5-star scorer (expected stars rescaled to [0, 1]), not VADER: a random classifier scores near the middle.
    assert result.config.sentiment_model == str(sentiment_dir)
    assert 0.2 < result.history[0]["sentiment_mean"] < 0.8


def _full_size_standins(tmp_path):
    """GPT-2 small's architecture (124M) and a BERT-base-sized 5-label classifier, random weights, saved like the
    real ones; returns their directories."""
    from transformers import BertConfig, BertForSequenceClassification, GPT2Config, GPT2LMHeadModel

    from tests.support.tiny_models import train_bpe_tokenizer

    tokenizer = train_bpe_tokenizer()
    model_dir, sentiment_dir = tmp_path / "gpt2-small", tmp_path / "bert-base-5"
    GPT2LMHeadModel(
        GPT2Config(
            vocab_size=len(tokenizer),
            bos_token_id=tokenizer.eos_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
    ).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    from transformers import PreTrainedTokenizerFast

    bert_tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer.backend_tokenizer, pad_token="<|endoftext|>", unk_token="<|endoftext|>"
    )
    BertForSequenceClassification(
        BertConfig(
            vocab_size=len(bert_tokenizer),
            num_labels=5,
            pad_token_id=bert_tokenizer.pad_token_id,
            id2label={i: f"{i + 1} stars" for i in range(5)},
            label2id={f"{i + 1} stars": i for i in range(5)},
        )
    ).save_pretrained(sentiment_dir)
    bert_tokenizer.save_pretrained(sentiment_dir)
    return model_dir, sentiment_dir


def _needs_cuda():
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")


@pytest.mark.gpu
def test_gpt2_preset_with_full_size_standins_on_gpu(tmp_path):
    """GPT-2 small's architecture (124M) and a BERT-base-sized 5-label classifier, random weights, 2 steps."""
    _needs_cuda()
    model_dir, sentiment_dir = _full_size_standins(tmp_path)
    result = _run(
        tmp_path, model_dir, sentiment_dir, prompts_per_step=2, num_generations=8, max_completion_length=24
    )
    _check(result)
    assert result.timing["steps"] == 2  # its speed is the benchmarks' to measure, not a test's


# -- the grader's --model_name / --sentiment_model ---------------------------------------------------------------


@pytest.mark.parametrize(
    "option, make, expected",
    [
        ("--model_name", lambda tmp: tmp / "nowhere", "no such directory"),
        ("--model_name", lambda tmp: tmp, "has no config.json"),
        ("--sentiment_model", lambda tmp: tmp / "file.bin", "a file, not a model directory"),
    ],
)
def test_grader_rejects_a_model_it_cannot_load_in_one_line(tmp_path, option, make, expected):
    from tests.support.cli import run_grader

    (tmp_path / "file.bin").write_bytes(b"x")
    results = tmp_path / "out" / "results.json"
    code, data, output = run_grader(
        "--submission", "reference/rewards.py", "--results", results, option, make(tmp_path)
    )
    assert code == 2
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"python -m grader: error: {option} "), output
    assert expected in lines[0] and "save_pretrained" in lines[0]  # what is wrong, and what to pass
    assert "Traceback" not in output and data is not None and data["score"] == 0


def test_grader_refuses_other_models_with_a_shared_baseline(tmp_path, tiny_gpt2_dir):
    from tests.support.cli import run_grader

    results = tmp_path / "results.json"
    code, _, output = run_grader(
        "--submission",
        "reference/rewards.py",
        "--results",
        results,
        "--model_name",
        tiny_gpt2_dir,
        "--baseline-run",
        tmp_path / "baseline.json",
    )
    assert code == 2 and "--model_name and --baseline-run" in output and "Traceback" not in output


def test_model_options_reach_the_training_context_and_the_lanes(tmp_path, monkeypatch, tiny_gpt2_dir):
    """The chain up to the lanes, without a run: the request's models -> each training check's engine ->
    run_set -> execute (the lanes' config); the lane's run config is the last link (the slow test below)."""
    from grader.contract import CheckOutcome, TrainingContext
    from grader.grading.runner import GradeRequest, grade
    from grader.training import engine as engine_module
    from grader.training.engine import TrainingEngine, TrainingOptions
    from grader.training.settings import model_option_value
    from tests.support.fake_submission import FakeSubmission, reference_module

    seen = []

    def check(submission, context):
        seen.append(context)
        return CheckOutcome(1.0)

    ids = ["training.forward_kl", "kl_forward.value"]
    empty = tmp_path / "empty.py"
    empty.write_text("")
    models = TrainingOptions(model_name=model_option_value(str(tiny_gpt2_dir)), sentiment_model="vader")
    grade(GradeRequest(empty, only=ids, training_options=models), registry=dict.fromkeys(ids, check))
    # the rubric's order: the property check first
    assert not isinstance(seen[0], TrainingContext)  # the property checks are untouched
    options = seen[1].training.options
    assert options.model_name == str(tiny_gpt2_dir.resolve()) and options.sentiment_model == "vader"

    calls = []
    monkeypatch.setattr(engine_module, "execute", lambda jobs, **kwargs: calls.append(kwargs) or {})
    submission = tmp_path / "rewards.py"
    submission.write_text("# the functions come from the fake submission\n")
    engine = TrainingEngine(str(submission), str(tmp_path), options=options)
    engine.run_set(FakeSubmission(reference_module()), 0, 60)
    assert calls and calls[0]["model_name"] == options.model_name and calls[0]["sentiment_model"] == "vader"
    engine.run_set(FakeSubmission(reference_module()), 0, 60)
    assert len(calls) == 1  # made once per grade
    # a grade with other models is other runs: never served from the runs made with the preset's
    other = TrainingEngine(str(submission), str(tmp_path), options=TrainingOptions(), _made=engine._made)
    other.run_set(FakeSubmission(reference_module()), 0, 60)
    assert len(calls) == 2 and calls[1]["model_name"] == ""


@pytest.mark.slow
def test_lane_makes_a_gpt2_preset_run_with_the_given_local_models(tmp_path, tiny_gpt2_dir):
    """Slow: a real lane process (torch, TRL) makes one 1-step baseline run of the gpt2 preset with the small
    stand-ins given as --model_name / --sentiment_model would give them (20-60 s on 2 shared cores)."""
    from grader.training.runs import Job, execute
    from grader.training.settings import SETTINGS_PATH

    settings = SETTINGS_PATH.read_text()
    start = settings.index("[gpt2.runs]")
    end = settings.index("[gpt2.thresholds]")
    short = "[gpt2.runs]\nmax_steps = 1\neval_every = 1\nvalidation_prompts = 2\nforward_kl_coef = 0.3\n"
    short += "backward_kl_coef = 0.3\nrun_budget_s = 120\n\n"
    (tmp_path / "settings.toml").write_text(settings[:start] + short + settings[end:])
    sentiment_dir = make_tiny_five_star(tmp_path / "five-star")
    submission = tmp_path / "rewards.py"
    submission.write_text("")  # the baseline calls none of its functions
    records = execute(
        [Job("baseline", "baseline", str(submission), 0)],
        work_dir=tmp_path / "work",
        timeout_s=240,
        preset="gpt2",
        settings_path=tmp_path / "settings.toml",
        model_name=str(tiny_gpt2_dir),
        sentiment_model=str(sentiment_dir),
    )
    record = records["baseline"]
    assert record.ok, record.error
    assert record.preset == "gpt2" and [entry["step"] for entry in record.history] == [0, 1]
    assert record.config["model_name"] == str(tiny_gpt2_dir)
    assert record.config["sentiment_model"] == str(sentiment_dir)


@pytest.mark.gpu
def test_grader_gpt2_preset_with_full_size_standins_on_gpu(tmp_path):
    """``python -m grader --training-preset gpt2 --model_name DIR --sentiment_model DIR`` with full-size random
    stand-ins: every run finishes (random models need not pass the checks), none is cut short by its budget
    ([gpt2.runs] run_budget_s in thresholds.toml) or the grade's, and none is an internal error or not
    gradable."""
    _needs_cuda()
    from grader.grading.budget import TAG_NOT_RUN, TAG_UNFINISHED
    from grader.grading.results import GradingResults
    from tests.support.check_ids import TRAINING_IDS
    from tests.support.cli import run_grader

    model_dir, sentiment_dir = _full_size_standins(tmp_path)
    results = tmp_path / "results.json"
    code, data, output = run_grader(
        "--submission",
        "reference/rewards.py",
        "--results",
        results,
        "--training-preset",
        "gpt2",
        "--model_name",
        model_dir,
        "--sentiment_model",
        sentiment_dir,
        "--time-budget",
        "900",
        timeout=1000,
    )
    assert code in (0, 1), output[-3000:]
    graded = GradingResults.from_dict(data)  # the typed reader: internal_error lives in extra_data
    assert not graded.internal_error, graded.output
    assert not graded.not_gradable, graded.output  # e.g. a control run that failed on this machine
    training = [t for t in graded.tests if t.check_id in TRAINING_IDS]
    assert len(training) == 4, output[-3000:]
    for test in training:
        assert not test.internal_error, test.output
        assert not {TAG_NOT_RUN, TAG_UNFINISHED} & set(test.tags), test.output
        assert "time budget" not in test.output, test.output
