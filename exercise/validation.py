"""Validation on held-out prompts: is the policy more positive, and what did that cost in fluency and drift?

At step 0 and every ``eval_every`` steps, one completion per validation prompt (64 of them,
``exercise/prompts.py``; ``--validation_prompts N`` takes the first N) is sampled, with the same seed every time, so differences between
steps come from the policy, not the dice. The first ``samples_to_keep`` (16) completions are kept in the record.
Measured:

* ``sentiment_mean`` / ``sentiment_std`` / ``positive_ratio``: the run's sentiment model (5-star or VADER);
  ``positive_ratio`` is the share of completions scored above the neutral midpoint 0.5 (3 stars for the 5-star
  model, a VADER compound of 0). It says which side of neutral, not how positive: a completion scored 0.51 counts
  as fully as one scored 0.99, so read it next to the mean. With ``--hackable_reward`` the policy is trained on
  the word counter, and ``hackable_mean`` reports that reward, so the two can be compared.
* ``distinct_1`` / ``distinct_2``: distinct word uni-/bigrams divided by all uni-/bigrams, pooled over the
  completions. Falls when the policy says the same thing to every prompt.
* ``repetition``: per completion, the fraction of its words that already occurred earlier in that completion,
  averaged over completions ("great great great great" -> 0.75). Rises when the policy loops on a phrase.
* ``kl_forward`` = KL(pi || pi_ref) and ``kl_backward`` = KL(pi_ref || pi): exact over the vocabulary, from the
  full next-token distributions at the sampling temperature, at every prefix the policy sampled, averaged over
  those positions (nats per token). The prefixes come from pi, so this is a per-token measure along the
  policy's own text, not the KL between the two models' distributions over whole sequences (whose backward
  direction would need text sampled from pi_ref).
* ``ref_perplexity``: exp of the mean negative log-likelihood of the sampled tokens under the reference model
  (temperature 1): how unnatural the samples look to the model we started from.
* ``completion_length``: mean sampled tokens per completion (EOS included); ``completion_words``: mean words
  per completion (:func:`exercise.sentiment.words`: letters and apostrophes), the unit a length shaping counts in.
* ``sentiment_contrast``: mean distance of the scores from the neutral midpoint 0.5 (0 when all are neutral,
  0.5 when all are 0 or 1): how far from neutral the completions are, whichever side.
* ``rhyme_rate``: the share of completions that rhyme (:func:`rhymes`: two consecutive sentences end in different
  words with the same last three letters).
* ``oov_share`` (models that ship the words of their pre-training corpus: the tiny one): the share of the
  completions' words that never occur in that corpus, i.e. made-up words glued from sub-word pieces
  (:mod:`exercise.tiny.vocabulary` defines it). Rises when the policy drifts into sub-word soup.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from .logprobs import completion_logits, eval_mode, model_device, pad_batch, reference_model
from .sentiment import words
from .tiny.vocabulary import oov_share


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Distinct word n-grams / all word n-grams over ``texts`` (0 when there are none)."""
    grams = [tuple(ws[i : i + n]) for ws in map(words, texts) for i in range(len(ws) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def repetition_rate(texts: Sequence[str]) -> float:
    """Mean over completions with words of: fraction of words already seen earlier in the same completion."""
    rates = []
    for ws in map(words, texts):
        if ws:
            rates.append(1.0 - len(set(ws)) / len(ws))
    return sum(rates) / len(rates) if rates else 0.0


#: Two different words rhyme when their last this many letters are the same (a shorter word rhymes with none).
RHYME_LETTERS = 3
_SENTENCE_END = re.compile(r"[.!?]+")


def sentence_end_words(text: str) -> list[str]:
    """The last word of each sentence of ``text`` (split at . ! ?; the text after the last end counts as one)."""
    ends = []
    for sentence in _SENTENCE_END.split(text):
        ws = words(sentence)
        if ws:
            ends.append(ws[-1])
    return ends


def rhymes(text: str) -> bool:
    """Whether two consecutive sentences of ``text`` end in different words with the same last
    :data:`RHYME_LETTERS` letters (the rule of the grader's rhyme goal). The same word twice is repetition, not a
    rhyme: counted, it is the cheapest rhyme a policy finds ("... in every way. ... in every way.")."""
    ends = sentence_end_words(text)  # lower-cased (exercise.sentiment.words)
    return any(
        a != b and a[-RHYME_LETTERS:] == b[-RHYME_LETTERS:] for a, b in zip(ends, ends[1:], strict=False)
    )


def rhyme_rate(texts: Sequence[str]) -> float:
    """The share of ``texts`` that rhyme (:func:`rhymes`); 0 for none."""
    return sum(map(rhymes, texts)) / len(texts) if texts else 0.0


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


class Validator:
    """Samples completions for the validation prompts and computes the metrics of the module docstring."""

    def __init__(
        self,
        tokenizer,
        scorer: Callable[[Sequence[str]], list[float]],
        prompts: Sequence[str],
        *,
        max_new_tokens: int,
        temperature: float,
        seed: int,
        # One batch for the 64 validation prompts: sampling is a loop of small forwards, so fewer, wider ones
        # are cheaper (on the tiny model, 64 prompts in one batch cost 2.3x the CPU time of 24, not 2.7x).
        batch_size: int = 64,
        samples_to_keep: int = 16,
        reward_scorer: Callable[[Sequence[str]], list[float]] | None = None,
        vocabulary: frozenset[str] | None = None,
    ):
        self.tokenizer = tokenizer
        self.scorer = scorer
        self.reward_scorer = reward_scorer
        self.vocabulary = vocabulary  # the pre-training corpus's words, for oov_share (None: not measured)
        self.prompts = list(prompts)
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.seed = seed
        self.batch_size = batch_size
        self.samples_to_keep = samples_to_keep
        self.eos_token_id = tokenizer.eos_token_id
        self.pad_token_id = (
            tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        )

    def sample(self, policy) -> tuple[list[list[int]], list[list[int]]]:
        """Prompt ids and sampled completion ids (cut after the first EOS, which is kept), like TRL's rollouts."""
        prompt_ids = self.tokenizer(text=self.prompts)["input_ids"]
        device = model_device(policy)
        completions: list[list[int]] = []
        # A private RNG stream: the same samples for the same policy at every evaluation, and the training
        # run's own random state is left exactly as it was.
        devices = [device] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), torch.no_grad(), eval_mode(policy):
            torch.manual_seed(self.seed)
            for start in range(0, len(prompt_ids), self.batch_size):
                chunk = prompt_ids[start : start + self.batch_size]
                batch = pad_batch(chunk, [[] for _ in chunk], pad_token_id=self.pad_token_id, device=device)
                output = policy.generate(
                    input_ids=batch.input_ids,
                    attention_mask=batch.attention_mask,
                    do_sample=True,
                    temperature=self.temperature,
                    top_k=0,
                    top_p=1.0,
                    max_new_tokens=self.max_new_tokens,
                    pad_token_id=self.pad_token_id,
                    eos_token_id=self.eos_token_id,
                )
                for row in output[:, batch.input_ids.shape[1] :].tolist():
                    if self.eos_token_id in row:
                        row = row[: row.index(self.eos_token_id) + 1]
                    completions.append(row)
        return prompt_ids, completions

    def divergences(self, policy, frozen_reference, prompt_ids, completion_ids) -> dict[str, float]:
        """Exact per-token KL both ways and the reference perplexity, over all sampled completion positions."""
        totals = {"kl_forward": 0.0, "kl_backward": 0.0, "nll_ref": 0.0}
        count = 0
        device = model_device(policy)
        for start in range(0, len(prompt_ids), self.batch_size):
            batch = pad_batch(
                prompt_ids[start : start + self.batch_size],
                completion_ids[start : start + self.batch_size],
                pad_token_id=self.pad_token_id,
                device=device,
            )
            if batch.completion_width == 0:
                continue
            log_pi = completion_logits(policy, batch, self.temperature).log_softmax(-1)
            with reference_model(policy, frozen_reference) as reference:
                ref_logits = completion_logits(reference, batch, 1.0)
            log_ref = (ref_logits / self.temperature).log_softmax(-1)
            mask = batch.completion_mask
            # Exact KLs over the vocabulary at each position: kl_div(input, target) = KL(target || input).
            kl_fwd = F.kl_div(log_ref, log_pi, reduction="none", log_target=True).sum(-1)  # KL(pi || pi_ref)
            kl_bwd = F.kl_div(log_pi, log_ref, reduction="none", log_target=True).sum(-1)  # KL(pi_ref || pi)
            nll = -ref_logits.log_softmax(-1).gather(-1, batch.completion_ids.unsqueeze(-1)).squeeze(-1)
            totals["kl_forward"] += kl_fwd[mask].sum().item()
            totals["kl_backward"] += kl_bwd[mask].sum().item()
            totals["nll_ref"] += nll[mask].sum().item()
            count += int(mask.sum().item())
        if count == 0:
            return {"kl_forward": 0.0, "kl_backward": 0.0, "ref_perplexity": float("nan")}
        return {
            "kl_forward": totals["kl_forward"] / count,
            "kl_backward": totals["kl_backward"] / count,
            "ref_perplexity": math.exp(totals["nll_ref"] / count),
        }

    def evaluate(self, policy, frozen_reference, step: int) -> dict:
        """One row of the validation history (floats, plus a few samples)."""
        started = time.perf_counter()
        prompt_ids, completion_ids = self.sample(policy)
        texts = self.tokenizer.batch_decode(completion_ids, skip_special_tokens=True)
        scores = [float(s) for s in self.scorer(texts)]
        mean, std = _mean_std(scores)
        record = {
            "step": step,
            "sentiment_mean": mean,
            "sentiment_std": std,
            "positive_ratio": sum(s > 0.5 for s in scores) / len(scores),
            "distinct_1": distinct_n(texts, 1),
            "distinct_2": distinct_n(texts, 2),
            "repetition": repetition_rate(texts),
            **self.divergences(policy, frozen_reference, prompt_ids, completion_ids),
            "completion_length": sum(map(len, completion_ids)) / len(completion_ids),
            # from the texts and scores above: no sampling, so every other value stays as it was
            "completion_words": sum(len(words(t)) for t in texts) / len(texts),
            "sentiment_contrast": sum(abs(s - 0.5) for s in scores) / len(scores),
            "rhyme_rate": rhyme_rate(texts),
        }
        if self.vocabulary is not None:
            record["oov_share"] = oov_share(texts, self.vocabulary)
        if self.reward_scorer is not None:
            record["hackable_mean"] = sum(self.reward_scorer(texts)) / len(texts)
        record["samples"] = [
            {"prompt": p, "completion": t, "sentiment": s}
            for p, t, s in list(zip(self.prompts, texts, scores, strict=True))[: self.samples_to_keep]
        ]
        record["seconds"] = time.perf_counter() - started
        return record
