"""Stand-in models for fast tests: random tiny GPT-2 and BERT classifiers with real byte-level BPE tokenizers.

They are built in seconds and saved with ``save_pretrained``, so the code under test loads them through the same
``from_pretrained`` path as GPT-2 and the 5-star model from the Hub.
"""

from __future__ import annotations

from pathlib import Path

_CORPUS = [
    "The acting in this movie was wonderful and the story was moving.",
    "I would describe this film as a boring mess with terrible dialogue.",
    "Overall, the movie was fine, although the ending felt rushed.",
    "The soundtrack was great and the camera work was beautiful.",
    "Honestly, I did not enjoy it; the plot wasn't good at all.",
    "My favorite part of the film was the final scene with the music.",
] * 20


def train_bpe_tokenizer(vocab_size: int = 300):
    """A byte-level BPE tokenizer (GPT-2 style) trained on a few review sentences, with ``<|endoftext|>``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(_CORPUS, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>", unk_token="<|endoftext|>"
    )


def make_tiny_gpt2(
    directory: Path, *, seed: int = 0, n_layer: int = 2, n_embd: int = 64, dropout: float = 0.1
) -> Path:
    """A randomly initialised GPT-2 (dropout on, so tests see whether eval mode is used) saved to ``directory``."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    tokenizer = train_bpe_tokenizer()
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=128,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=4,
        resid_pdrop=dropout,
        embd_pdrop=dropout,
        attn_pdrop=dropout,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(config)
    # Random init is nearly uniform over the vocabulary; sharpen it so log-probs span a realistic range.
    with torch.no_grad():
        model.transformer.wte.weight.mul_(5.0)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def make_tiny_five_star(directory: Path, *, seed: int = 0) -> Path:
    """A randomly initialised BERT sequence classifier with 5 labels (1-5 stars), saved to ``directory``."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    tokenizer = train_bpe_tokenizer()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer.backend_tokenizer, pad_token="<|endoftext|>", unk_token="<|endoftext|>"
    )
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=256,
        num_labels=5,
        pad_token_id=tokenizer.pad_token_id,
        id2label={i: f"{i + 1} stars" for i in range(5)},
        label2id={f"{i + 1} stars": i for i in range(5)},
    )
    torch.manual_seed(seed)
    model = BertForSequenceClassification(config)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
