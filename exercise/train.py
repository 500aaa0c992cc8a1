"""GRPO fine-tuning toward positive sentiment: ``python -m exercise.train [--flags]`` (``--help`` lists them).

The whole run, top to bottom:

1. resolve the configuration (``exercise/presets.py`` fills in whatever the flags leave open);
2. load policy, tokenizer and sentiment scorer from a Hub name or a local directory (``from_pretrained``);
3. build the reward (``exercise/reward_pipeline.py``: sentiment -> your shaping -> negation -> minus your KL
   penalty) and hand it to TRL's ``GRPOTrainer``;
4. validate on held-out prompts at step 0 and every ``eval_every`` steps (``exercise/validation.py``);
5. write ``summary.json``, ``curves.png``, ``samples.jsonl`` and the model to ``output_dir``.

The grader calls :func:`run` directly with its own :class:`~exercise.functions.RewardFunctions`.
Multi-process / multi-GPU: ``accelerate launch --num_processes N -m exercise.train ...``; validation and files
are done by the main process only.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from .config import TrainConfig, parse_args
from .errors import PipelineError
from .functions import RewardFunctions, load_reward_functions
from .presets import model_unavailable, resolve_config


@dataclass
class RunResult:
    """What a run produced. ``history`` has one dict per validation (``step``, ``sentiment_mean``, ``kl_forward``,
    ``kl_backward``, ``distinct_2``, ``repetition``, ... see ``exercise/validation.py``)."""

    config: TrainConfig
    history: list[dict] = field(default_factory=list)
    error: str | None = None  # one line, e.g. "kl_penalty_forward returned nan for completion 3"
    error_component: str | None = None  # e.g. "kl_penalty_forward" when a reward function was at fault
    wall_time_s: float = 0.0
    timing: dict = field(default_factory=dict)
    train_log: list[dict] = field(default_factory=list)  # TRL's logged metrics (loss, reward, ...)
    output_dir: Path | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def final(self) -> dict | None:
        """The last validation (after the last step when the run completed)."""
        return self.history[-1] if self.history else None


def _load(loader: Callable, name: str, role: str, preset: str):
    """Load a model; a missing model becomes one readable line (and a pointer to ``--preset tiny``)."""
    try:
        return loader()
    except OSError as error:
        raise model_unavailable(name, role, preset, error) from None


def run(
    config: TrainConfig,
    functions: RewardFunctions | None = None,
    *,
    console: Console | None = None,
    on_step: Callable[[int, int], None] | None = None,
) -> RunResult:
    """Train with GRPO as ``config`` says. ``functions`` defaults to ``exercise/rewards.py`` (or the reference
    with ``use_solution``). Errors the user can act on are returned in ``RunResult.error``, not raised.
    ``on_step(step, max_steps)`` is called after every optimisation step (the grader's progress line)."""
    # torch, transformers and TRL are imported where they are used, so that `--help` answers at once.
    import torch

    from .reward_pipeline import preflight

    started = time.perf_counter()
    # The launchers (torchrun, accelerate launch) set RANK; only rank 0 prints and writes files.
    is_main = int(os.environ.get("RANK", "0")) == 0
    console = console or Console()
    if not is_main:
        console = Console(quiet=True)
    result = RunResult(config=config)
    threads_before = torch.get_num_threads()
    try:
        result.config = resolve_config(config)
        if functions is None:
            functions = load_reward_functions(result.config.use_solution)
        preflight(
            functions,
            reward_shaping=result.config.reward_shaping,
            kl_type=result.config.kl_type,
            kl_coef=result.config.kl_coef,
        )
        if result.config.num_threads and not torch.cuda.is_available():
            torch.set_num_threads(result.config.num_threads)
        _train(result.config, functions, console, result, on_step)
    except PipelineError as error:
        result.error = str(error)
        result.error_component = getattr(error, "component", None)
    finally:
        torch.set_num_threads(threads_before)
        result.wall_time_s = time.perf_counter() - started
        result.timing["wall_seconds"] = result.wall_time_s
        if is_main and result.history and result.config.write_files:
            _write(result, console)
    return result


def _train(
    config: TrainConfig,
    functions: RewardFunctions,
    console: Console,
    result: RunResult,
    on_step: Callable[[int, int], None] | None = None,
) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback, ProgressCallback, set_seed

    from .callbacks import LogLineCallback, StepCallback, ValidationCallback
    from .logprobs import positions_from_attention_mask
    from .prompts import VALIDATION_PROMPTS
    from .report import print_validation
    from .reward_pipeline import SentimentReward
    from .sentiment import build_scorer
    from .tiny.vocabulary import load_corpus_words
    from .validation import Validator

    if config.wandb and importlib.util.find_spec("wandb") is None:
        raise PipelineError("--wandb needs the wandb package: pip install wandb (then `wandb login` once)")
    set_seed(config.seed)
    name, preset = config.model_name, config.preset

    # --- models: always from a name or directory, so TRL can reload the reference itself when --beta > 0 ------
    tokenizer = _load(lambda: AutoTokenizer.from_pretrained(name, padding_side="left"), name, "Model", preset)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    policy = _load(
        lambda: AutoModelForCausalLM.from_pretrained(name, dtype=torch.float32), name, "Model", preset
    )
    # Validation always measures real sentiment; with --hackable_reward only the training reward is the word counter.
    sentiment = _load(
        lambda: build_scorer(config.sentiment_model), config.sentiment_model, "Sentiment model", preset
    )
    scorer = build_scorer(config.sentiment_model, hackable=True) if config.hackable_reward else sentiment

    reward = SentimentReward(
        scorer,
        functions,
        tokenizer,
        reward_shaping=config.reward_shaping,
        negate_reward=config.negate_reward,
        kl_type=config.kl_type,
        kl_coef=config.kl_coef,
        temperature=config.temperature,
    )

    trainer = build_trainer(config, reward, tokenizer, policy)
    device = trainer.accelerator.device

    # --- the frozen reference pi_ref ------------------------------------------------------------------------------
    if config.use_peft:
        frozen_reference = None  # the policy with its LoRA adapters disabled
    elif trainer.ref_model is not None:
        frozen_reference = trainer.ref_model  # --beta > 0: TRL already holds a frozen copy
    else:
        frozen_reference = AutoModelForCausalLM.from_pretrained(name, dtype=torch.float32)
        frozen_reference.to(device).eval().requires_grad_(False)
        positions_from_attention_mask(frozen_reference)  # our scoring passes position ids; this keeps it safe
    if hasattr(sentiment, "to"):
        sentiment.to(device)
    reward.bind(trainer.model, frozen_reference)

    # --- validation and terminal output ---------------------------------------------------------------------------
    validation_prompts = list(VALIDATION_PROMPTS)[: config.validation_prompts or None]
    validator = Validator(
        tokenizer,
        sentiment,
        validation_prompts,
        max_new_tokens=config.max_completion_length,
        temperature=config.temperature,
        seed=config.seed,
        reward_scorer=scorer if config.hackable_reward else None,
        vocabulary=load_corpus_words(name),  # the tiny model's corpus words; None for GPT-2
    )

    def on_validation(record: dict) -> None:
        result.history.append(record)
        if not config.quiet:
            print_validation(console, record, result.history[0])

    validation = ValidationCallback(
        validator,
        lambda: (trainer.model, frozen_reference),
        config.eval_every,
        on_result=on_validation,
        enabled=trainer.accelerator.is_main_process,
    )
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(validation)
    trainer.add_callback(LogLineCallback(console, config.max_steps, quiet=config.quiet))
    if on_step is not None:
        trainer.add_callback(StepCallback(on_step))

    console.print(
        f"[bold]GRPO[/] {config.run_name}: model {name}, scorer {getattr(scorer, 'name', type(scorer).__name__)}, "
        f"{config.max_steps} steps x {config.prompts_per_step} prompts x {config.num_generations} completions "
        f"of {config.max_completion_length} tokens, on {device} ({trainer.accelerator.num_processes} process(es))"
    )
    train_started = time.perf_counter()
    try:
        trainer.train()
    finally:
        train_seconds = time.perf_counter() - train_started - validation.seconds
        steps = trainer.state.global_step
        result.timing.update(
            steps=steps,
            train_seconds=train_seconds,
            validation_seconds=validation.seconds,
            seconds_per_step=train_seconds / steps if steps else None,
            num_processes=trainer.accelerator.num_processes,
        )
        result.train_log = [dict(entry) for entry in trainer.state.log_history]
    if config.save_model:
        trainer.save_model(config.output_dir)


def build_trainer(config: TrainConfig, reward, tokenizer, policy):
    """TRL's ``GRPOTrainer`` for a resolved ``config``, with the position-id fix applied (see below)."""
    import torch
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from .logprobs import positions_from_attention_mask
    from .prompts import TRAIN_PROMPTS

    on_cuda = torch.cuda.is_available()
    peft_config = None
    if config.use_peft:
        from peft import LoraConfig

        # target_modules=None lets peft pick the attention projections it knows for the architecture. GPT-2's are
        # transformers' Conv1D, whose weight is stored transposed: fan_in_fan_out says so (peft would otherwise
        # correct it itself, with a warning on every run).
        conv1d = any(type(module).__name__ == "Conv1D" for module in policy.modules())
        peft_config = LoraConfig(
            r=16, lora_alpha=32, lora_dropout=0.0, task_type="CAUSAL_LM", fan_in_fan_out=conv1d
        )

    args = GRPOConfig(
        output_dir=config.output_dir,
        seed=config.seed,
        max_steps=config.max_steps,
        learning_rate=config.learning_rate,
        per_device_train_batch_size=config.prompts_per_step * config.num_generations,
        num_generations=config.num_generations,
        max_completion_length=config.max_completion_length,
        temperature=config.temperature,
        beta=config.beta,
        scale_rewards=config.scale_rewards,
        # Dropout off everywhere: the policy that samples, the one that is scored for the KL penalty and the one
        # that is trained must be the same distribution.
        disable_dropout=True,
        # fp32 on CPU: TRL keeps bf16 on with use_cpu=True, which is 1.5-2x slower there.
        use_cpu=not on_cuda,
        bf16=on_cuda and torch.cuda.is_bf16_supported(),
        # TRL turns activation checkpointing on by default; for these models speed matters, not memory.
        **_no_activation_checkpointing(GRPOConfig),
        save_strategy="no",  # the final model is saved once, at the end
        logging_steps=max(1, min(config.eval_every, 10)),
        report_to=["wandb"] if config.wandb else "none",
        run_name=config.run_name,
        dataloader_num_workers=0,
        ddp_find_unused_parameters=False,  # every parameter gets a gradient; the search costs a graph traversal
        disable_tqdm=True,  # our own one-line-per-log progress instead
    )
    trainer = GRPOTrainer(
        model=policy,
        reward_funcs=[reward],
        args=args,
        train_dataset=Dataset.from_dict({"prompt": list(TRAIN_PROMPTS)}),
        processing_class=tokenizer,
        peft_config=peft_config,
    )
    # TRL samples with `generate` (position ids from the attention mask) but trains and scores its reference with
    # forwards that pass none, so a left-padded prompt would be trained at shifted positions. No TRL 1.16 setting
    # changes that; the models derive them themselves instead (exercise/logprobs.py). With LoRA the wrapped base
    # model is the one every forward ends in.
    base = trainer.model.get_base_model() if hasattr(trainer.model, "get_base_model") else trainer.model
    positions_from_attention_mask(base)
    if trainer.ref_model is not None:
        positions_from_attention_mask(trainer.ref_model)
    return trainer


def _no_activation_checkpointing(config_class) -> dict:
    # transformers 5 renamed `gradient_checkpointing` to `activation_checkpointing` (the old name warns).
    names = {f.name for f in dataclasses.fields(config_class)}
    return {
        "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing": False
    }


def _write(result: RunResult, console: Console) -> None:
    from .report import print_summary, write_outputs

    config = result.config
    output_dir = Path(config.output_dir) if config.output_dir else Path("outputs") / config.run_name
    summary = {
        "config": {**dataclasses.asdict(config), "run_name": config.run_name},
        "history": result.history,
        "final": result.final,
        "timing": result.timing,
        "error": result.error,
        "train_log": result.train_log,
    }
    paths = write_outputs(output_dir, summary, result.history)
    result.output_dir = output_dir
    print_summary(console, result.history, result.timing)
    console.print(f"Wrote {', '.join(p.name for p in paths.values())} to {output_dir}/")


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_args(argv)
    # Library deprecation notices and per-file loading bars are noise for someone running the exercise.
    warnings.filterwarnings("ignore", category=FutureWarning)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    console = Console()
    result = run(config, console=console)
    _close_process_group()
    if result.error is not None:
        Console(stderr=True).print(f"[bold red]error:[/] {result.error}", highlight=False, soft_wrap=True)
        return 1
    return 0


def _close_process_group() -> None:
    # Under torchrun / accelerate launch the trainer opened a process group. The ranks finish at different times
    # (the main one still validates and writes the outputs); one that exited meanwhile could abort on its way out
    # ("terminate called without an active exception", SIGABRT: the launcher then failed the whole run). So every
    # rank waits for the others (a bounded wait: a rank that is gone does not hang the rest), then closes the group.
    if "torch" not in sys.modules:
        return
    import datetime

    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return
    try:
        if dist.get_backend() == "gloo":
            dist.monitored_barrier(timeout=datetime.timedelta(seconds=120))
        else:
            dist.barrier()
    except RuntimeError:  # a rank that never came (it failed): this one still reports its own result
        pass
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
