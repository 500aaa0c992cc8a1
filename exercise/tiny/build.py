"""Build the tiny offline model: train a tokenizer and pre-train a small GPT-2 on the generated review corpus.

    python -m exercise.tiny.build --out exercise/assets/tiny-gpt2 --seconds 420 --max-steps 1000 --seed 0

One readable script, in the spirit of nanoGPT: generate the corpus, train a byte-level BPE tokenizer (the same
kind GPT-2 uses, with 1024 tokens instead of 50257), pre-train a ``GPT2LMHeadModel`` for a wall-clock budget
with a plain PyTorch loop, and save everything with ``save_pretrained``. The result loads with
``AutoModelForCausalLM.from_pretrained(dir)`` and ``AutoTokenizer.from_pretrained(dir)``, the very code path the
exercise uses for real GPT-2, so the CPU preset tests the real pipeline rather than a special case.

It also writes ``build_log.json`` (losses, timings, measured sentiment), ``MODEL_CARD.md`` and
``corpus_words.txt`` (the corpus's words: :mod:`exercise.tiny.vocabulary`); the card's text is in
:mod:`exercise.tiny.model_card`.
Training length is a wall-clock budget (a predictable build time on any laptop), optionally capped by a step
count: on a machine fast enough to reach the cap first, the build is reproducible; on a slower or busy one it
stops early on the clock with a somewhat weaker model. The shipped weights are the reference (see MODEL_CARD.md).
"""

from __future__ import annotations

import json
import math
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GenerationConfig, GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast, HfArgumentParser

from exercise.prompts import VALIDATION_PROMPTS
from exercise.tiny.corpus import generate_corpus
from exercise.tiny.model_card import MODEL_CARD, render_model_card  # noqa: F401 (MODEL_CARD: re-exported)
from exercise.tiny.vocabulary import write_corpus_words

EOS = "<|endoftext|>"  # GPT-2's single special token: separates documents; doubles as bos and pad


@dataclass
class BuildConfig:
    """What to build and for how long; the command line is generated from these fields."""

    out: Path = field(metadata={"help": "output directory (created)"})
    seconds: float = field(default=150.0, metadata={"help": "wall-clock budget for pre-training"})
    max_steps: int | None = field(
        default=None,
        metadata={
            "help": "also stop after this many steps (the schedule follows whichever budget is nearer)"
        },
    )
    seed: int = field(default=0, metadata={"help": "seed of the corpus, the initialisation and the batches"})
    num_sentences: int = field(default=60_000, metadata={"help": "sentences in the generated corpus"})
    vocab_size: int = field(default=1024, metadata={"help": "byte-level BPE vocabulary size"})
    n_layer: int = field(default=4, metadata={"help": "transformer blocks"})
    n_embd: int = field(default=128, metadata={"help": "model width"})
    n_head: int = field(default=4, metadata={"help": "attention heads"})
    block_size: int = field(default=128, metadata={"help": "context length (n_positions)"})
    batch_size: int = field(default=16, metadata={"help": "sequences per optimiser step"})
    lr: float = field(default=3e-3, metadata={"help": "peak AdamW learning rate"})
    eval_samples: int = field(default=8, metadata={"help": "sampled continuations per validation prompt"})


def parse_args(argv: list[str] | None = None) -> BuildConfig:
    parser = HfArgumentParser(BuildConfig)
    parser.prog = "python -m exercise.tiny.build"
    parser.description = __doc__.split("\n\n")[0]
    (config,) = parser.parse_args_into_dataclasses(args=argv)
    return config


# ---------------------------------------------------------------------------------------------------------------
# Tokenizer
# ---------------------------------------------------------------------------------------------------------------
def train_tokenizer(texts: list[str], vocab_size: int) -> GPT2TokenizerFast:
    """Byte-level BPE like GPT-2's: any string is encodable (no unknown tokens), spaces belong to the next word."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)  # GPT-2 adds no prefix space
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS],  # id 0
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # all 256 bytes, so nothing is out of vocabulary
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer)
    # Wrapping it in the GPT-2 tokenizer class makes AutoTokenizer load it exactly like GPT-2's tokenizer.
    return GPT2TokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=EOS,
        eos_token=EOS,
        unk_token=EOS,
        pad_token=EOS,
    )


# ---------------------------------------------------------------------------------------------------------------
# Data: one long stream of token ids, documents separated by EOS
# ---------------------------------------------------------------------------------------------------------------
def encode_stream(texts: list[str], tokenizer: GPT2TokenizerFast) -> tuple[torch.Tensor, torch.Tensor]:
    """Returns (ids, starts): the concatenated ids (each document followed by EOS) and each document's offset.

    Training windows begin at a document start, so position 0 is always the first word of a review. That is
    how the model is used: a prompt is fed with no context before it (GPT-2's tokenizer adds no BOS either).
    """
    ids: list[int] = []
    starts: list[int] = []
    for encoded in tokenizer(texts)["input_ids"]:
        starts.append(len(ids))
        ids.extend(encoded)
        ids.append(tokenizer.eos_token_id)
    return torch.tensor(ids, dtype=torch.long), torch.tensor(starts, dtype=torch.long)


def get_batch(
    ids: torch.Tensor, starts: torch.Tensor, batch_size: int, block_size: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random windows of ``block_size + 1`` tokens from document starts: inputs and next-token targets."""
    valid = starts[starts < len(ids) - block_size - 1]
    picks = valid[torch.randint(len(valid), (batch_size,), generator=generator)]
    windows = torch.stack([ids[s : s + block_size + 1] for s in picks.tolist()])
    return windows[:, :-1], windows[:, 1:]


@torch.no_grad()
def evaluate_loss(model: GPT2LMHeadModel, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
    """Mean next-token cross-entropy on fixed held-out batches (so initial and final losses are comparable)."""
    model.eval()
    losses = [model(input_ids=x, labels=x).loss.item() for x, _ in batches]
    model.train()
    return statistics.mean(losses)


# ---------------------------------------------------------------------------------------------------------------
# Model and training
# ---------------------------------------------------------------------------------------------------------------
def make_model(args: BuildConfig, tokenizer: GPT2TokenizerFast) -> GPT2LMHeadModel:
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=args.block_size,
        n_embd=args.n_embd,
        n_layer=args.n_layer,
        n_head=args.n_head,
        # No dropout: the corpus is effectively unlimited (no overfitting to fight), and a dropout-free model
        # makes log-probabilities deterministic in train mode too, which the KL penalties rely on.
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,  # as GPT-2: the output layer reuses the token embeddings (a third fewer weights)
    )
    return GPT2LMHeadModel(config)


def learning_rate(progress: float, base_lr: float, warmup: float = 0.03, floor: float = 0.1) -> float:
    """Linear warm-up, then cosine decay to ``floor * base_lr``, as a function of the budget used (0..1)."""
    if progress < warmup:
        return base_lr * progress / warmup
    decay = 0.5 * (1 + math.cos(math.pi * min(1.0, (progress - warmup) / (1 - warmup))))
    return base_lr * (floor + (1 - floor) * decay)


def budget_used(elapsed: float, step: int, args: BuildConfig) -> float:
    """Fraction of the training budget used: wall-clock, or steps when ``--max-steps`` is the nearer limit.

    A step cap makes a build reproducible on machines fast enough to reach it; the clock caps the build time.
    """
    by_steps = step / args.max_steps if args.max_steps else 0.0
    return max(elapsed / args.seconds, by_steps)


def train(
    model: GPT2LMHeadModel,
    ids: torch.Tensor,
    starts: torch.Tensor,
    args: BuildConfig,
    eval_batches: list[tuple[torch.Tensor, torch.Tensor]],
) -> dict:
    # Weight decay on matrices only; biases and LayerNorm gains are left alone (standard GPT practice).
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr,
        betas=(0.9, 0.95),
    )
    generator = torch.Generator().manual_seed(args.seed)
    initial_loss = evaluate_loss(model, eval_batches)
    print(f"initial held-out loss {initial_loss:.3f} (ln vocab = {math.log(model.config.vocab_size):.3f})")

    model.train()
    start = time.perf_counter()
    step, tokens, last_log = 0, 0, start
    recent: list[float] = []
    while (progress := budget_used(time.perf_counter() - start, step, args)) < 1.0:
        elapsed = time.perf_counter() - start
        lr = learning_rate(progress, args.lr)
        for group in optimizer.param_groups:
            group["lr"] = lr
        x, y = get_batch(ids, starts, args.batch_size, args.block_size, generator)
        logits = model(input_ids=x).logits
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)  # guards the high learning rate early on
        optimizer.step()
        step, tokens = step + 1, tokens + x.numel()
        recent.append(loss.item())
        if time.perf_counter() - last_log > max(2.0, args.seconds / 30):
            last_log = time.perf_counter()
            print(
                f"step {step:5d}  {elapsed:6.1f}s  loss {statistics.mean(recent):.3f}  lr {lr:.2e}  "
                f"{tokens / max(elapsed, 1e-9):,.0f} tok/s",
                flush=True,
            )
            recent = []
    train_seconds = time.perf_counter() - start
    final_loss = evaluate_loss(model, eval_batches)
    print(f"final held-out loss {final_loss:.3f} after {step} steps, {tokens:,} tokens, {train_seconds:.0f}s")
    return {
        "initial_loss": initial_loss,
        "final_loss": final_loss,
        "steps": step,
        "tokens": tokens,
        "train_seconds": round(train_seconds, 1),
    }


# ---------------------------------------------------------------------------------------------------------------
# Evaluation: what the exercise will see at step 0
# ---------------------------------------------------------------------------------------------------------------
def vader_score(texts: list[str]) -> list[float]:
    """The project's sentiment score: VADER's compound in [-1, 1] mapped to [0, 1]."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    return [(analyzer.polarity_scores(t)["compound"] + 1) / 2 for t in texts]


@torch.no_grad()
def sample_continuations(
    model: GPT2LMHeadModel,
    tokenizer: GPT2TokenizerFast,
    prompts: list[str],
    samples_per_prompt: int,
    max_new_tokens: int = 24,
    seed: int = 0,
) -> list[str]:
    """Sampled (temperature 1, no top-k) continuations of each prompt, decoded without the prompt."""
    torch.manual_seed(seed)
    model.eval()
    texts = []
    for prompt in prompts:
        inputs = tokenizer([prompt] * samples_per_prompt, return_tensors="pt")
        out = model.generate(
            **inputs,
            do_sample=True,
            top_k=0,
            top_p=1.0,
            temperature=1.0,
            max_new_tokens=max_new_tokens,
            pad_token_id=tokenizer.pad_token_id,
        )
        texts += tokenizer.batch_decode(out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    return texts


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    build_start = time.perf_counter()

    texts = generate_corpus(args.num_sentences, args.seed)
    tokenizer = train_tokenizer(texts, args.vocab_size)
    tokenizer.model_max_length = args.block_size
    ids, starts = encode_stream(texts, tokenizer)
    # Hold out the last 5% of the stream for the before/after loss; train on the rest.
    cut = int(0.95 * len(ids))
    train_starts = starts[starts < cut]
    held_starts = starts[starts >= cut] - cut
    print(f"corpus: {len(texts):,} reviews, {len(ids):,} tokens; e.g. {texts[0]!r}")

    eval_generator = torch.Generator().manual_seed(args.seed + 1)
    eval_batches = [
        get_batch(ids[cut:], held_starts, args.batch_size, args.block_size, eval_generator) for _ in range(4)
    ]
    model = make_model(args, tokenizer)
    params = sum(p.numel() for p in model.parameters())
    print(f"model: {params:,} parameters")
    log = train(model, ids[:cut], train_starts, args, eval_batches)

    model.generation_config = GenerationConfig(
        do_sample=True,
        temperature=1.0,
        top_k=0,
        top_p=1.0,
        max_new_tokens=32,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model.save_pretrained(args.out, safe_serialization=True)
    tokenizer.save_pretrained(args.out)
    tokenizer.backend_tokenizer.model.save(str(args.out))  # vocab.json + merges.txt, as GPT-2 ships them too
    write_corpus_words(
        args.out, texts
    )  # what "out of vocabulary" means for this model (exercise.tiny.vocabulary)

    max_new_tokens = 24
    continuations = sample_continuations(
        model, tokenizer, list(VALIDATION_PROMPTS), args.eval_samples, max_new_tokens, seed=args.seed
    )
    scores = vader_score(continuations)
    val_mean, val_std = statistics.mean(scores), statistics.pstdev(scores)
    print(
        f"validation sentiment (VADER, 0..1): mean {val_mean:.3f} std {val_std:.3f} over {len(scores)} samples"
    )
    # first sample of the first 8 prompts (continuations are grouped by prompt)
    shown = [
        f"- *{prompt}*{continuations[i * args.eval_samples]}"
        for i, prompt in enumerate(VALIDATION_PROMPTS[:8])
    ]
    print("\n".join(shown))

    command = "python -m exercise.tiny.build " + " ".join(
        f"--{k.replace('_', '-')} {v}"
        for k, v in [
            ("out", args.out),
            ("seconds", f"{args.seconds:g}"),
            ("max_steps", args.max_steps),
            ("seed", args.seed),
            ("num_sentences", args.num_sentences),
        ]
        if v is not None
    )
    log.update(
        {
            "command": command,
            "seed": args.seed,
            "num_sentences": args.num_sentences,
            "parameters": params,
            "hyperparameters": {
                "n_layer": args.n_layer,
                "n_embd": args.n_embd,
                "n_head": args.n_head,
                "block_size": args.block_size,
                "vocab_size": len(tokenizer),
                "eos_token_id": tokenizer.eos_token_id,
                "batch_size": args.batch_size,
                "lr": args.lr,
                "seconds": args.seconds,
                "max_steps": args.max_steps,
            },
            "val_sentiment_mean": round(val_mean, 4),
            "val_sentiment_std": round(val_std, 4),
            "val_samples": len(scores),
            "eval_samples_per_prompt": args.eval_samples,
            "max_new_tokens": max_new_tokens,
            "samples": shown,
            "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}",
            "build_seconds": round(time.perf_counter() - build_start, 1),
        }
    )
    (args.out / "build_log.json").write_text(json.dumps(log, indent=2) + "\n")
    (args.out / "MODEL_CARD.md").write_text(render_model_card(log))
    print(f"saved to {args.out} in {log['build_seconds']:.0f}s")


if __name__ == "__main__":
    main(sys.argv[1:])
