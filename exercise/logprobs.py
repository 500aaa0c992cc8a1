"""Per-token log-probabilities of sampled completions under the policy pi and the frozen reference pi_ref.

The KL penalties of Exercise 1 need, for each completion, log pi(y_t | x, y_<t) and log pi_ref(y_t | x, y_<t) of
the tokens that were actually sampled. Getting these right is most of the work (docs/design.md, "Pipeline facts"):

* Use the token ids TRL sampled (``completion_ids``, EOS included), never re-tokenised text: re-tokenising
  "wasn't" can give different tokens than the ones the policy chose.
* Score at the sampling temperature (logits / T), otherwise the log-probs are not those of the policy that
  produced the samples, and no estimate built from them is its KL.
* Float32, dropout off (eval mode), no gradient: the penalty is a reward, a constant for the optimiser.
* One batched forward per model, then a gather. Prompts are left-padded and completions right-padded, so every
  completion starts at the same column; position ids follow the attention mask (as in ``generate``), so padding
  changes nothing.

The same holds for the forward pass TRL trains on, which passes no position ids: a GPT-2 then numbers the columns
0, 1, 2, ... including the left padding, and a prompt padded by k tokens is scored k positions further right than
it was sampled (on the tiny model 0.11 nats/token of difference on average, up to 1.6, so the policy gradient
would belong to a shifted model). :func:`positions_from_attention_mask` makes every forward without position ids
derive them from the attention mask, as ``generate`` does; the trainer applies it to the policy and the reference.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import types
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch


@dataclass
class CompletionBatch:
    """Prompts left-padded to ``prompt_width``, then completions right-padded; ``completion_mask`` marks real tokens."""

    input_ids: torch.Tensor  # (B, P + C)
    attention_mask: torch.Tensor  # (B, P + C)
    position_ids: torch.Tensor  # (B, P + C)
    completion_ids: torch.Tensor  # (B, C), pad where completion_mask is 0
    completion_mask: torch.Tensor  # (B, C) bool
    lengths: list[int]  # real completion lengths

    @property
    def completion_width(self) -> int:
        return self.completion_ids.shape[1]


def pad_batch(
    prompt_ids: Sequence[Sequence[int]],
    completion_ids: Sequence[Sequence[int]],
    *,
    pad_token_id: int,
    device: torch.device | str = "cpu",
) -> CompletionBatch:
    if len(prompt_ids) != len(completion_ids):
        raise ValueError(f"{len(prompt_ids)} prompts but {len(completion_ids)} completions")
    if any(len(p) == 0 for p in prompt_ids):
        raise ValueError("every prompt needs at least one token (it predicts the first completion token)")
    batch = len(prompt_ids)
    p_width = max((len(p) for p in prompt_ids), default=0)
    c_width = max((len(c) for c in completion_ids), default=0)
    input_ids = torch.full((batch, p_width + c_width), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((batch, p_width + c_width), dtype=torch.long)
    for row, (prompt, completion) in enumerate(zip(prompt_ids, completion_ids, strict=True)):
        start = p_width - len(prompt)
        input_ids[row, start:p_width] = torch.as_tensor(list(prompt), dtype=torch.long)
        input_ids[row, p_width : p_width + len(completion)] = torch.as_tensor(
            list(completion), dtype=torch.long
        )
        attention_mask[row, start : p_width + len(completion)] = 1
    # Positions count real tokens only, exactly as `generate` numbers them for a left-padded prompt.
    position_ids = (attention_mask.cumsum(dim=1) - 1).clamp(min=0)
    return CompletionBatch(
        input_ids=input_ids.to(device),
        attention_mask=attention_mask.to(device),
        position_ids=position_ids.to(device),
        completion_ids=input_ids[:, p_width:].to(device),
        completion_mask=attention_mask[:, p_width:].bool().to(device),
        lengths=[len(c) for c in completion_ids],
    )


def positions_from_mask(attention_mask: torch.Tensor, width: int) -> torch.Tensor:
    """Position ids that count real tokens only (``generate``'s numbering), for the last ``width`` columns.

    With a KV cache the mask covers past and new tokens while the input holds only the new ones, hence the slice.
    Padding columns get position 0; they are masked out of attention, so their value does not matter.
    """
    positions = (attention_mask.long().cumsum(dim=-1) - 1).clamp(min=0)
    return positions[:, -width:]


def positions_from_attention_mask(model: torch.nn.Module) -> torch.nn.Module:
    """Make ``model``'s forward derive position ids from the attention mask whenever none are passed.

    TRL's training and reference forwards (``GRPOTrainer._get_per_token_logps_and_entropies``) pass only
    ``input_ids`` and ``attention_mask``; ``generate`` and :func:`completion_logits` pass position ids and are
    unchanged. Patches the instance (idempotent), keeping the class's signature, which ``generate`` inspects, and
    whatever forward is installed already (TRL's fused log-prob head). Models whose forward takes no
    ``position_ids`` (or a 4-D mask, or positional arguments beyond ``input_ids``) are left as they are.
    """
    if getattr(model, "_positions_from_attention_mask", False):
        return model
    if "position_ids" not in inspect.signature(type(model).forward).parameters:
        return model
    inner = model.forward

    @functools.wraps(type(model).forward)
    def forward(self, *args, **kwargs):
        mask = kwargs.get("attention_mask")
        if kwargs.get("position_ids") is None and mask is not None and mask.dim() == 2 and len(args) <= 1:
            tokens = args[0] if args else kwargs.get("input_ids")
            if tokens is None:
                tokens = kwargs.get("inputs_embeds")
            if tokens is not None:
                kwargs["position_ids"] = positions_from_mask(mask, tokens.shape[1])
        return inner(*args, **kwargs)

    model.forward = types.MethodType(forward, model)
    model._positions_from_attention_mask = True
    return model


def model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


@contextlib.contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """Dropout off for the duration; the previous train/eval mode is restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


@contextlib.contextmanager
def reference_model(
    policy: torch.nn.Module, frozen_reference: torch.nn.Module | None
) -> Iterator[torch.nn.Module]:
    """pi_ref: the frozen copy if there is one, else (LoRA) the policy itself with its adapters switched off."""
    if frozen_reference is not None:
        yield frozen_reference
    else:
        with policy.disable_adapter():
            yield policy


def completion_logits(model: torch.nn.Module, batch: CompletionBatch, temperature: float) -> torch.Tensor:
    """Float32 logits / T at the positions that predict each completion token: shape (B, C, V). No gradient."""
    width = batch.completion_width
    device = batch.input_ids.device
    with torch.no_grad(), eval_mode(model), torch.autocast(device_type=device.type, enabled=False):
        # The logits at column j predict token j + 1, so the C completion tokens are predicted by the C columns
        # ending one before the last; `logits_to_keep` skips the LM head (the costly part) for the prompt.
        out = model(
            input_ids=batch.input_ids,
            attention_mask=batch.attention_mask,
            position_ids=batch.position_ids,
            use_cache=False,
            logits_to_keep=width + 1,
        )
    return out.logits[:, -(width + 1) : -1].float() / temperature


def completion_logprobs(
    model: torch.nn.Module,
    prompt_ids: Sequence[Sequence[int]],
    completion_ids: Sequence[Sequence[int]],
    *,
    temperature: float = 1.0,
    pad_token_id: int = 0,
) -> list[list[float]]:
    """log p(y_t | x, y_<t) at temperature T for each sampled completion token; one ragged row per completion."""
    batch = pad_batch(prompt_ids, completion_ids, pad_token_id=pad_token_id, device=model_device(model))
    if batch.completion_width == 0:
        return [[] for _ in completion_ids]
    logits = completion_logits(model, batch, temperature)
    # log_softmax(z)[y] = z[y] - logsumexp(z): no second (B, C, V) tensor is materialised.
    chosen = logits.gather(-1, batch.completion_ids.unsqueeze(-1)).squeeze(-1) - logits.logsumexp(dim=-1)
    rows = chosen.cpu().tolist()
    return [row[:length] for row, length in zip(rows, batch.lengths, strict=True)]
