"""Text generation over megatron-core's `GPTModel`, with a KV cache, greedy decoding and HF-style sampling.

What runs
---------
`load_generator(...)` loads a model (HF directory, converted Megatron checkpoint, or a training output directory,
all through `qwen_sft.convert.load_any_checkpoint`), converts it to one TP=1 / PP=1 `GPTModel`
(`qwen_sft.model.build_gpt_model` + `qwen_sft.convert.hf_to_megatron`) and picks the tokenizer. Prompts are
rendered with `qwen_sft.tokenizer.render_prompt_ids`, the same function data conversion uses for training
samples, so a fine-tuned model sees exactly the prompt format it was trained on.

KV cache
--------
megatron-core 0.16.1's own static KV cache is used: a `StaticInferenceContext` passed as `inference_context` to
`GPTModel.forward`. Its attention code (`Attention._adjust_key_value_for_inference`, local layer spec) keeps one
key and one value buffer per layer, `[max_sequence_length, max_batch_size, num_query_groups, head_dim]`, writes
the new keys/values at `sequence_len_offset`, and applies RoPE of absolute positions `0..sequence_len_offset`.
On a CPU-only torch the buffers are allocated with `device=torch.cuda.current_device()`; that is served by
`qwen_sft.cpu_accelerator` (the CPU plays the accelerator), so no patch of megatron is needed. Measured with
`benchmarks/bench_generate.py` on the tiny model (2 shared CPU cores, ~40-token prompts, 32–64 new tokens): the
cache is 2–3.6x faster than recomputing at batch 1, and batch 8 gives 8–30x the tokens/s of batch 1; at this
size per-step Python and dispatch overhead, not arithmetic, dominates, so the gap grows with model and sequence.

Batching (static batching, as megatron's own `TextGenerationController` does it): all sequences of a batch share
one position counter. The batch is prefilled up to its *shortest* prompt in one forward pass with a causal mask;
after that every step feeds one token per sequence — the next prompt token for sequences whose prompt is not
finished yet, the token just chosen for the others. No sequence is ever padded inside the cache, so every
sequence sees exactly the RoPE positions and keys it would see alone: greedy output of a batch equals greedy
output of each prompt alone (up to floating-point summation order of batched matrix products). Finished
sequences are dropped from the cache rows (`key_value_memory_dict` is re-indexed), so they cost nothing.
`generate_ids` keeps the order of its input; `generate_batches` sorts prompts by length into batches (less
token-by-token prompt feeding) and restores the input order.

`use_kv_cache=False` is the baseline for the benchmark and a correctness oracle: each sequence is processed
alone, and every step re-runs the whole sequence through the model (plain forward with an explicit causal mask).

Token choice (HF `transformers` semantics, `generation/logits_process.py`)
--------------------------------------------------------------------
Per step, on the float32 logits of the real vocabulary (rows `[0, config.vocab_size)`; Megatron's padding rows
are never chosen): repetition penalty over every token of the sequence so far, prompt included (a logit `x` of
a seen token becomes `x / p` when `x > 0`, `x * p` otherwise); then greedy `argmax` when `temperature == 0`,
else temperature (`x / T`), top-k (keep logits >= the k-th largest), top-p (drop the lowest-probability tokens
whose cumulative probability is <= 1 - top_p, always keeping the most likely one) and one draw from the
softmax (inverse-CDF with a uniform draw). Each sequence draws from its own `torch.Generator`, seeded from
(`seed`, the sequence's index in the input), so sampled text is reproducible and does not depend on the batch
it ran in, or on megatron's RNG tracker (which shares the default CPU generator).

Stopping and the length budget
------------------------------
A sequence stops at the first of: a stop token (`<|im_end|>`, `<|endoftext|>` and the tokenizer's EOS; the stop
token is kept in `output_ids`, as HF `generate` keeps it, and is left out of the decoded text); `max_new_tokens`
new tokens; or a total length (prompt + new tokens) of `seq_length`, the model's context budget. A prompt of
`seq_length` tokens or more leaves no room for a new token and raises `PromptTooLongError` before anything runs;
a prompt shorter than that but with `prompt + max_new_tokens > seq_length` runs and stops at `seq_length` with
`stop_reason == "seq_length"` (the CLI warns before it starts). The KV cache of a batch holds
`min(seq_length, longest prompt + max_new_tokens)` positions.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence, Union

import numpy as np
import torch

__all__ = [
    "STOP_TOKENS",
    "PromptTooLongError",
    "SamplingParams",
    "GenerationOutput",
    "MegatronGenerator",
    "check_prompt_lengths",
    "process_logits",
    "choose_next_tokens",
    "sequence_generator",
    "stop_token_ids",
    "resolve_tokenizer_dir",
    "load_model_tp1",
    "load_generator",
    "read_prompt_file",
    "GenerateConfig",
    "GenerateSummary",
    "run_generate",
]

#: Tokens that end a generated answer (Qwen2.5's chat turn end and document end).
STOP_TOKENS: tuple[str, ...] = ("<|im_end|>", "<|endoftext|>")

#: dtype names accepted by `load_generator(dtype=...)`.
_DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
           "float16": torch.float16, "fp16": torch.float16}


class PromptTooLongError(ValueError):
    """A prompt does not fit the context budget (`seq_length`). `index` is the prompt's position in the input."""

    def __init__(self, message: str, index: int, prompt_tokens: int, seq_length: int):
        super().__init__(message)
        self.index = index
        self.prompt_tokens = prompt_tokens
        self.seq_length = seq_length


@dataclasses.dataclass(frozen=True)
class SamplingParams:
    """How the next token is chosen (HF `transformers` semantics, see the module docstring).

    Attributes:
        temperature: 0 → greedy (argmax); > 0 → sampling with logits divided by it.
        top_k: keep the k most likely tokens before sampling; 0 = no limit. Ignored when greedy.
        top_p: nucleus sampling mass in (0, 1]; 1 = off. Ignored when greedy.
        repetition_penalty: > 0; 1 = off. Applied in greedy and sampling mode (as in HF).
        seed: seeds each sequence's generator together with the sequence's index.

    Raises:
        ValueError: a value outside the ranges above (the message names the field).
    """

    temperature: float = 0.0
    top_k: int = 0
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    seed: int = 1234

    def __post_init__(self):
        if not (isinstance(self.temperature, (int, float)) and math.isfinite(self.temperature)
                and self.temperature >= 0):
            raise ValueError(f"temperature must be a finite number >= 0 (0 = greedy), got {self.temperature!r}")
        if not isinstance(self.top_k, int) or isinstance(self.top_k, bool) or self.top_k < 0:
            raise ValueError(f"top_k must be an int >= 0 (0 = off), got {self.top_k!r}")
        if not (isinstance(self.top_p, (int, float)) and 0.0 < self.top_p <= 1.0):
            raise ValueError(f"top_p must be in (0, 1] (1 = off), got {self.top_p!r}")
        if not (isinstance(self.repetition_penalty, (int, float)) and math.isfinite(self.repetition_penalty)
                and self.repetition_penalty > 0):
            raise ValueError(f"repetition_penalty must be a finite number > 0 (1 = off), got "
                             f"{self.repetition_penalty!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise ValueError(f"seed must be an int >= 0, got {self.seed!r}")

    @property
    def greedy(self) -> bool:
        """True when tokens are chosen by argmax (temperature == 0)."""
        return self.temperature == 0


@dataclasses.dataclass
class GenerationOutput:
    """One generated sequence.

    Attributes:
        index: position of the prompt in the input of `generate_ids` / `generate_batches`.
        prompt_ids: the prompt's token ids.
        output_ids: the new token ids, the stop token included when one ended the sequence.
        stop_reason: "stop_token", "max_new_tokens" or "seq_length" (see the module docstring).
        stop_token: the stop token's text when stop_reason == "stop_token", else None.
        batch_index, batch_size: which batch it ran in and how many sequences that batch had.
        prefill_s: wall seconds of the batch's first forward pass (with KV cache) or of this sequence's first
            step (without); decode_s: wall seconds of the rest of the batch (or sequence); both include token
            choice.
    """

    index: int
    prompt_ids: list[int]
    output_ids: list[int]
    stop_reason: str
    stop_token: Optional[str] = None
    batch_index: int = 0
    batch_size: int = 1
    prefill_s: float = 0.0
    decode_s: float = 0.0


# ----------------------------------------------------------------------------------------------------------------
# Token choice
# ----------------------------------------------------------------------------------------------------------------

def sequence_generator(seed: int, index: int) -> torch.Generator:
    """A CPU `torch.Generator` for sequence `index` of a run seeded with `seed` (independent streams per index)."""
    state = np.random.SeedSequence([int(seed), int(index)]).generate_state(2, dtype=np.uint32)
    return torch.Generator(device="cpu").manual_seed(int(state[0]) << 32 | int(state[1]))


def process_logits(logits: torch.Tensor, histories: Sequence[Sequence[int]], params: SamplingParams) -> torch.Tensor:
    """Apply repetition penalty and (when sampling) temperature, top-k and top-p to next-token logits.

    Args:
        logits: `[batch, vocab]` next-token logits (any float dtype; computed in float32).
        histories: per row, every token id of the sequence so far (prompt + generated), used by the
            repetition penalty.
        params: the sampling parameters.

    Returns:
        `[batch, vocab]` float32 logits; removed tokens are `-inf`. Equal to HF's `RepetitionPenaltyLogitsProcessor`
        → `TemperatureLogitsWarper` → `TopKLogitsWarper` → `TopPLogitsWarper` chain (greedy: the first only).

    Raises:
        ValueError: `logits` is not 2-D, or `histories` does not have one entry per row.
    """
    if logits.dim() != 2:
        raise ValueError(f"process_logits: logits must be [batch, vocab], got shape {tuple(logits.shape)}")
    if len(histories) != logits.shape[0]:
        raise ValueError(f"process_logits: {len(histories)} histories for {logits.shape[0]} rows")
    scores = logits.float()  # every step below is out of place: the caller's tensor is never modified
    vocab = scores.shape[-1]
    if params.repetition_penalty != 1.0:
        seen = torch.zeros_like(scores, dtype=torch.bool)
        for row, history in enumerate(histories):
            ids = torch.as_tensor(list(history), dtype=torch.long)
            ids = ids[(ids >= 0) & (ids < vocab)]
            seen[row, ids] = True
        penalised = torch.where(scores < 0, scores * params.repetition_penalty, scores / params.repetition_penalty)
        scores = torch.where(seen, penalised, scores)
    if params.greedy:
        return scores
    if params.temperature != 1.0:
        scores = scores / params.temperature
    if params.top_k > 0:
        k = min(params.top_k, vocab)
        kth = torch.topk(scores, k, dim=-1).values[..., -1:]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    if params.top_p < 1.0:
        sorted_scores, sorted_idx = torch.sort(scores, descending=False, dim=-1)
        cumulative = sorted_scores.softmax(dim=-1).cumsum(dim=-1)
        remove_sorted = cumulative <= (1 - params.top_p)
        remove_sorted[..., -1:] = False  # keep at least the most likely token
        remove = remove_sorted.scatter(-1, sorted_idx, remove_sorted)
        scores = scores.masked_fill(remove, float("-inf"))
    return scores


def choose_next_tokens(logits: torch.Tensor, histories: Sequence[Sequence[int]], params: SamplingParams,
                       generators: Sequence[Optional[torch.Generator]]) -> list[int]:
    """Choose one next token per row.

    Args:
        logits: `[batch, vocab]` next-token logits of the real vocabulary.
        histories: per row, the sequence so far (for the repetition penalty).
        params: greedy when `params.temperature == 0`, else sampling.
        generators: per row, the generator to draw with (unused when greedy; may be None then).

    Returns:
        `batch` token ids (python ints).
    """
    scores = process_logits(logits, histories, params)
    if params.greedy:
        return scores.argmax(dim=-1).tolist()
    # One draw per row by inverting the cumulative distribution with a uniform number from the row's generator
    # (the same distribution as torch.multinomial, which is ~40x slower on a 152k-token CPU vocabulary).
    # Tokens of probability 0 (removed by top-k / top-p) can never be drawn: their CDF step is empty.
    cdf = scores.softmax(dim=-1).double().cumsum(dim=-1)
    chosen = []
    for row in range(cdf.shape[0]):
        u = torch.rand((), generator=generators[row], dtype=torch.float64) * cdf[row, -1]
        chosen.append(min(int(torch.searchsorted(cdf[row], u, right=True).item()), cdf.shape[1] - 1))
    return chosen


# ----------------------------------------------------------------------------------------------------------------
# The generator
# ----------------------------------------------------------------------------------------------------------------

def check_prompt_lengths(prompts: Sequence[Sequence[int]], seq_length: int,
                         indices: Optional[Sequence[int]] = None) -> None:
    """Raise for an empty prompt or one that leaves no room for a new token in `seq_length`.

    Raises:
        PromptTooLongError: a prompt of >= seq_length tokens (the message gives both numbers and the index).
        ValueError: an empty prompt.
    """
    for pos, ids in enumerate(prompts):
        index = indices[pos] if indices is not None else pos
        if len(ids) == 0:
            raise ValueError(f"prompt {index} is empty (no token ids)")
        if len(ids) >= seq_length:
            raise PromptTooLongError(
                f"prompt {index} has {len(ids)} tokens; --seq_length {seq_length} leaves room for no new "
                f"token (a prompt must be at most seq_length - 1 = {seq_length - 1} tokens). Shorten the "
                f"prompt or raise --seq_length.", index, len(ids), seq_length)


class MegatronGenerator:
    """Generate token ids with a TP=1, PP=1 megatron-core `GPTModel` (see the module docstring).

    Args:
        model: the `GPTModel` (pre_process and post_process True), already loaded and on `device`; it is put
            in eval mode.
        vocab_size: rows of the real vocabulary (HF `config.json` `vocab_size`); logits beyond it (Megatron's
            padding rows) are ignored.
        seq_length: context budget in tokens (prompt + new tokens), >= 2.
        stop_ids: token id → token text of the stop tokens (see `stop_token_ids`).
        device: where inputs are created (the model's device).

    Raises:
        ValueError: seq_length < 2 or vocab_size < 1.
    """

    def __init__(self, model: torch.nn.Module, *, vocab_size: int, seq_length: int, stop_ids: Mapping[int, str],
                 device: Union[str, torch.device] = "cpu"):
        if not isinstance(seq_length, int) or seq_length < 2:
            raise ValueError(f"seq_length must be an int >= 2 (a prompt token and a new token), got {seq_length!r}")
        if not isinstance(vocab_size, int) or vocab_size < 1:
            raise ValueError(f"vocab_size must be a positive int, got {vocab_size!r}")
        self.model = model.eval()
        self.vocab_size = vocab_size
        self.seq_length = seq_length
        self.stop_ids = dict(stop_ids)
        self.device = torch.device(device)

    # -- checks ---------------------------------------------------------------------------------------------------
    def check_prompts(self, prompts: Sequence[Sequence[int]], indices: Optional[Sequence[int]] = None) -> None:
        """Raise for an empty prompt, an id outside the vocabulary, or a prompt that leaves no room in seq_length.

        Raises:
            PromptTooLongError: a prompt of >= seq_length tokens (the message gives both numbers).
            ValueError: an empty prompt or a token id outside [0, vocab_size).
        """
        check_prompt_lengths(prompts, self.seq_length, indices)
        for pos, ids in enumerate(prompts):
            index = indices[pos] if indices is not None else pos
            bad = [t for t in ids if not (0 <= int(t) < self.vocab_size)]
            if bad:
                raise ValueError(f"prompt {index} has token id(s) {bad[:5]} outside the model's vocabulary "
                                 f"[0, {self.vocab_size}): tokenizer and model do not match")

    # -- forward --------------------------------------------------------------------------------------------------
    def _forward(self, tokens: torch.Tensor, start: int, attention_mask: Optional[torch.Tensor],
                 inference_context=None) -> torch.Tensor:
        """Logits `[b, s_out, vocab_size]` float32 for `tokens [b, s]` at absolute positions `start..start+s-1`.

        With an inference context megatron returns only the last position's logits (s_out = 1).
        """
        b, s = tokens.shape
        position_ids = torch.arange(start, start + s, dtype=torch.long, device=self.device).unsqueeze(0).expand(b, s)
        kwargs = {}
        if inference_context is not None:
            kwargs = dict(inference_context=inference_context, runtime_gather_output=True)
        logits = self.model(tokens, position_ids, attention_mask, **kwargs)
        return logits[..., : self.vocab_size].float()

    def _causal_mask(self, length: int, batch: int) -> torch.Tensor:
        from qwen_sft.model import causal_attention_mask

        return causal_attention_mask(length, batch, device=self.device)

    # -- public ---------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def generate_ids(self, prompts: Sequence[Sequence[int]], *, max_new_tokens: int,
                     sampling: SamplingParams = SamplingParams(), use_kv_cache: bool = True,
                     indices: Optional[Sequence[int]] = None, batch_index: int = 0) -> list[GenerationOutput]:
        """Generate for one batch of prompts (all run together with the KV cache; one by one without).

        Args:
            prompts: token ids per prompt (each 1 .. seq_length - 1 tokens).
            max_new_tokens: >= 1, the most new tokens per sequence.
            sampling: greedy by default.
            use_kv_cache: True → megatron's StaticInferenceContext; False → full recompute every step.
            indices: the prompts' indices in the caller's input (seed the per-sequence generators and name
                prompts in errors); default 0..len-1.
            batch_index: recorded in the outputs.

        Returns:
            One `GenerationOutput` per prompt, in input order.

        Raises:
            PromptTooLongError / ValueError: see `check_prompts`; ValueError for max_new_tokens < 1.
        """
        if not isinstance(max_new_tokens, int) or max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be an int >= 1, got {max_new_tokens!r}")
        prompts = [[int(t) for t in p] for p in prompts]
        if not prompts:
            return []
        indices = list(range(len(prompts))) if indices is None else list(indices)
        if len(indices) != len(prompts):
            raise ValueError(f"indices has {len(indices)} entries for {len(prompts)} prompts")
        self.check_prompts(prompts, indices)
        generators = [None if sampling.greedy else sequence_generator(sampling.seed, i) for i in indices]
        if use_kv_cache:
            return self._generate_kv(prompts, indices, generators, max_new_tokens, sampling, batch_index)
        return [self._generate_recompute(p, i, g, max_new_tokens, sampling, batch_index, len(prompts))
                for p, i, g in zip(prompts, indices, generators)]

    def _stop(self, token: int, n_new: int, total: int, max_new_tokens: int) -> Optional[tuple[str, Optional[str]]]:
        if token in self.stop_ids:
            return "stop_token", self.stop_ids[token]
        if n_new >= max_new_tokens:
            return "max_new_tokens", None
        if total >= self.seq_length:
            return "seq_length", None
        return None

    def _generate_kv(self, prompts, indices, generators, max_new_tokens, sampling, batch_index):
        from megatron.core.inference.contexts import StaticInferenceContext

        t0 = time.perf_counter()
        b = len(prompts)
        lengths = [len(p) for p in prompts]
        capacity = min(self.seq_length, max(lengths) + max_new_tokens)
        context = StaticInferenceContext(max_batch_size=b, max_sequence_length=capacity)
        sequences = [list(p) for p in prompts]
        results: list[Optional[GenerationOutput]] = [None] * b
        active = list(range(b))  # batch positions still generating; cache row r holds active[r]

        start = min(lengths)
        tokens = torch.tensor([p[:start] for p in prompts], dtype=torch.long, device=self.device)
        logits = self._forward(tokens, 0, self._causal_mask(start, b), context)[:, -1, :]
        context.sequence_len_offset = start
        context.enable_decode_mode()
        prefill_s = time.perf_counter() - t0
        position = start  # the position whose token is fed next; logits predict the token at `position`
        while True:
            # choose a token for every sequence whose prompt is complete up to `position`
            rows = [r for r, i in enumerate(active) if len(sequences[i]) == position]
            finished_rows = set()
            if rows:
                chosen = choose_next_tokens(logits[rows], [sequences[active[r]] for r in rows], sampling,
                                            [generators[active[r]] for r in rows])
                for r, token in zip(rows, chosen):
                    i = active[r]
                    sequences[i].append(token)
                    stop = self._stop(token, len(sequences[i]) - lengths[i], len(sequences[i]), max_new_tokens)
                    if stop is not None:
                        results[i] = GenerationOutput(index=indices[i], prompt_ids=prompts[i],
                                                      output_ids=sequences[i][lengths[i]:], stop_reason=stop[0],
                                                      stop_token=stop[1], batch_index=batch_index, batch_size=b)
                        finished_rows.add(r)
            if finished_rows:
                keep = [r for r in range(len(active)) if r not in finished_rows]
                active = [active[r] for r in keep]
                if not active:
                    break
                keep_t = torch.tensor(keep, dtype=torch.long, device=self.device)
                for layer, (k, v) in list(context.key_value_memory_dict.items()):
                    context.key_value_memory_dict[layer] = (k.index_select(1, keep_t), v.index_select(1, keep_t))
            step = torch.tensor([[sequences[i][position]] for i in active], dtype=torch.long, device=self.device)
            logits = self._forward(step, position, None, context)[:, -1, :]
            context.sequence_len_offset += 1
            position += 1
        total_s = time.perf_counter() - t0
        for out in results:
            out.prefill_s = prefill_s
            out.decode_s = total_s - prefill_s
        return results

    def _generate_recompute(self, prompt, index, generator, max_new_tokens, sampling, batch_index, batch_size):
        t0 = time.perf_counter()
        sequence = list(prompt)
        prefill_s = None
        while True:
            tokens = torch.tensor([sequence], dtype=torch.long, device=self.device)
            logits = self._forward(tokens, 0, self._causal_mask(len(sequence), 1))[:, -1, :]
            token = choose_next_tokens(logits, [sequence], sampling, [generator])[0]
            if prefill_s is None:
                prefill_s = time.perf_counter() - t0
            sequence.append(token)
            stop = self._stop(token, len(sequence) - len(prompt), len(sequence), max_new_tokens)
            if stop is not None:
                total_s = time.perf_counter() - t0
                return GenerationOutput(index=index, prompt_ids=list(prompt), output_ids=sequence[len(prompt):],
                                        stop_reason=stop[0], stop_token=stop[1], batch_index=batch_index,
                                        batch_size=batch_size, prefill_s=prefill_s, decode_s=total_s - prefill_s)

    def generate_batches(self, prompts: Sequence[Sequence[int]], *, max_new_tokens: int, batch_size: int = 8,
                         sampling: SamplingParams = SamplingParams(), use_kv_cache: bool = True,
                         progress: Optional[Callable[[int], None]] = None) -> list[GenerationOutput]:
        """Generate for any number of prompts in batches of up to `batch_size`, sorted by prompt length.

        All prompts are checked (`check_prompts`) before anything runs. Outputs come back in input order and
        carry the prompt's input index, so seeds and results do not depend on `batch_size`.

        Args:
            progress: called with the number of sequences finished after each batch.

        Raises:
            ValueError: batch_size < 1, plus everything `generate_ids` raises.
        """
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
        self.check_prompts(prompts)
        order = sorted(range(len(prompts)), key=lambda i: (len(prompts[i]), i))
        outputs: list[Optional[GenerationOutput]] = [None] * len(prompts)
        for batch_index, first in enumerate(range(0, len(order), batch_size)):
            chunk = order[first:first + batch_size]
            for out in self.generate_ids([prompts[i] for i in chunk], max_new_tokens=max_new_tokens,
                                         sampling=sampling, use_kv_cache=use_kv_cache, indices=chunk,
                                         batch_index=batch_index):
                outputs[out.index] = out
            if progress is not None:
                progress(len(chunk))
        return outputs


# ----------------------------------------------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------------------------------------------

def stop_token_ids(tokenizer) -> dict[int, str]:
    """Stop token id → text: those of `STOP_TOKENS` the tokenizer knows, plus its `eos_token`.

    Raises:
        ValueError: the tokenizer knows none of them (generation could never stop on a token).
    """
    vocab = tokenizer.get_vocab()
    stops = {int(vocab[t]): t for t in STOP_TOKENS if t in vocab}
    if tokenizer.eos_token_id is not None:
        stops.setdefault(int(tokenizer.eos_token_id), tokenizer.eos_token)
    if not stops:
        raise ValueError(f"tokenizer {getattr(tokenizer, 'name_or_path', '?')!r} has none of the stop tokens "
                         f"{STOP_TOKENS} and no eos_token")
    return stops


def _has_tokenizer(path: Path) -> bool:
    return path.is_dir() and ((path / "tokenizer_config.json").is_file() or (path / "tokenizer.json").is_file())


def _tokenizer_files_digest(path: Path) -> dict[str, str]:
    import hashlib

    from qwen_sft.tokenizer import STANDIN_LABEL_FILE, TOKENIZER_FILE_NAMES

    digest = {}
    for name in TOKENIZER_FILE_NAMES:
        f = path / name
        if name != STANDIN_LABEL_FILE and f.is_file():
            digest[name] = hashlib.sha256(f.read_bytes()).hexdigest()
    return digest


def resolve_tokenizer_dir(model_path: Union[str, os.PathLike], tokenizer_path: Union[str, os.PathLike, None],
                          warn: Callable[[str], None] = lambda m: warnings.warn(m, stacklevel=3)) -> Path:
    """Pick the tokenizer directory: `tokenizer_path` when given, else the model directory's own tokenizer.

    The tokenizer travels with a fine-tuned model (training exports it next to the weights). When both are
    present and their tokenizer files differ (names or SHA-256 of tokenizer.json, tokenizer_config.json — which
    holds the chat template — vocab.json, merges.txt, ...), `warn` is called naming both and the differing files,
    and the explicit `tokenizer_path` is used.

    Raises:
        FileNotFoundError: no tokenizer_path and the model directory holds no tokenizer files.
    """
    model_dir = Path(model_path)
    if tokenizer_path is None:
        if not _has_tokenizer(model_dir):
            raise FileNotFoundError(f"no --tokenizer_path given and the model directory {str(model_path)!r} holds "
                                    f"no tokenizer files (tokenizer_config.json / tokenizer.json)")
        return model_dir
    tok_dir = Path(tokenizer_path)
    if _has_tokenizer(model_dir) and tok_dir.resolve() != model_dir.resolve():
        a, b = _tokenizer_files_digest(tok_dir), _tokenizer_files_digest(model_dir)
        if a != b:
            differing = sorted(n for n in set(a) | set(b) if a.get(n) != b.get(n))
            warn(f"--tokenizer_path {str(tok_dir)!r} differs from the tokenizer saved with the model in "
                 f"{str(model_dir)!r} (files: {', '.join(differing)}); using --tokenizer_path. The model was "
                 f"trained with its own copy; pass no --tokenizer_path to use it.")
    return tok_dir


def _resolve_dtype(dtype: Union[str, torch.dtype, None], hf_config: Mapping[str, Any]) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype in (None, "auto"):
        name = hf_config.get("torch_dtype") or hf_config.get("dtype") or "float32"
        if name not in _DTYPES:
            raise ValueError(f"config.json torch_dtype {name!r}: expected one of {sorted(set(_DTYPES))}")
        return _DTYPES[name]
    if dtype not in _DTYPES:
        raise ValueError(f"dtype {dtype!r}: expected 'auto' or one of {sorted(set(_DTYPES))}")
    return _DTYPES[dtype]


def load_model_tp1(model_path: Union[str, os.PathLike], *, seq_length: int,
                   dtype: Union[str, torch.dtype, None] = "auto", make_vocab_size_divisible_by: int = 128,
                   seed: int = 1234):
    """Load any checkpoint form into one TP=1, PP=1 megatron-core `GPTModel` in this process (eval mode).

    Steps: `torch.distributed` + megatron `parallel_state` with TP = PP = 1 (`qwen_sft.parallel.init_distributed`
    creates a one-process gloo group when none exists; an existing one must have TP = PP = 1 and world size 1);
    `load_any_checkpoint(model_path)` → HF config + state; `hf_to_megatron` at TP = PP = 1; `build_gpt_model` with
    `params_dtype` = `dtype` and `parallel_output=False`; `load_state_dict(strict=True)`; the model goes to the
    process's device (CUDA when available, else the CPU through `qwen_sft.cpu_accelerator`).

    Args:
        model_path: HF directory, converted Megatron checkpoint directory, or training output directory.
        seq_length: the model's `max_sequence_length` (>= 1).
        dtype: "auto" (config.json `torch_dtype`, else float32), "float32"/"fp32", "bfloat16"/"bf16",
            "float16"/"fp16", or a torch.dtype.
        make_vocab_size_divisible_by: Megatron's vocabulary padding multiple (padding rows are never used).
        seed: seeds torch / megatron RNGs (weights are loaded, so it only matters for reproducibility of set-up).

    Returns:
        `(model, hf_config, info)`; info holds model_path, vocab_size (HF rows), padded_vocab_size, dtype, device
        (a torch.device), num_parameters, load_s.

    Raises:
        FileNotFoundError / ValueError: from `load_any_checkpoint` or bad arguments.
        RuntimeError: an existing process group / parallel state with TP, PP or world size != 1.
    """
    import torch.distributed as dist
    from megatron.core import parallel_state

    from qwen_sft.convert import hf_to_megatron, load_any_checkpoint
    from qwen_sft.model import build_gpt_model, padded_vocab_size, transformer_config_from_hf
    from qwen_sft.parallel import init_distributed

    t0 = time.perf_counter()
    if not isinstance(seq_length, int) or seq_length < 1:
        raise ValueError(f"seq_length must be an int >= 1, got {seq_length!r}")
    if dist.is_initialized() and dist.get_world_size() != 1:
        raise RuntimeError(f"generation and evaluation run in one process (TP=1, PP=1); this process group has "
                           f"world size {dist.get_world_size()}. Run the tool without a launcher.")
    if parallel_state.model_parallel_is_initialized() and (
            parallel_state.get_tensor_model_parallel_world_size() != 1
            or parallel_state.get_pipeline_model_parallel_world_size() != 1):
        raise RuntimeError("generation and evaluation need megatron parallel_state with TP=1 and PP=1; it is "
                           f"initialised with TP={parallel_state.get_tensor_model_parallel_world_size()}, "
                           f"PP={parallel_state.get_pipeline_model_parallel_world_size()}")
    layout = init_distributed(1, 1, seed=seed)
    hf_config, hf_state = load_any_checkpoint(model_path)
    params_dtype = _resolve_dtype(dtype, hf_config)
    vocab_size = int(hf_config["vocab_size"])
    padded = padded_vocab_size(vocab_size, 1, make_vocab_size_divisible_by)
    shards = hf_to_megatron(hf_state, hf_config, 1, 1, make_vocab_size_divisible_by)
    state = shards[(0, 0)]
    del hf_state, shards
    config = transformer_config_from_hf(hf_config, params_dtype=params_dtype,
                                        bf16=params_dtype == torch.bfloat16, fp16=params_dtype == torch.float16)
    model = build_gpt_model(hf_config, config, padded_vocab_size=padded, seq_length=seq_length,
                            pre_process=True, post_process=True, parallel_output=False)
    model.load_state_dict({k: (v.to(params_dtype) if torch.is_tensor(v) and v.is_floating_point() else v)
                           for k, v in state.items()}, strict=True)
    del state
    model.to(layout.device).eval()
    info = {
        "model_path": str(model_path),
        "vocab_size": vocab_size,
        "padded_vocab_size": padded,
        "dtype": str(params_dtype).replace("torch.", ""),
        "device": layout.device,
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "load_s": time.perf_counter() - t0,
    }
    return model, hf_config, info


def load_generator(model_path: Union[str, os.PathLike], *, tokenizer_path: Union[str, os.PathLike, None] = None,
                   seq_length: int = 4096, dtype: Union[str, torch.dtype, None] = "auto",
                   make_vocab_size_divisible_by: int = 128, seed: int = 1234,
                   warn: Callable[[str], None] = lambda m: warnings.warn(m, stacklevel=3)):
    """Load model (`load_model_tp1`) and tokenizer (`resolve_tokenizer_dir`) for generation in this process.

    Args:
        model_path, seq_length (the context budget, >= 2), dtype, make_vocab_size_divisible_by, seed: see
            `load_model_tp1`.
        tokenizer_path: tokenizer directory; default the model directory's own.
        warn: receives warnings (tokenizer mismatch).

    Returns:
        `(generator: MegatronGenerator, tokenizer, info: dict)`; info as `load_model_tp1`'s (device as a string)
        plus tokenizer_path.

    Raises:
        everything `load_model_tp1`, `resolve_tokenizer_dir` and `load_tokenizer` raise; ValueError for
        seq_length < 2; ConnectionError for a ModelScope id that is not cached while offline
        (`qwen_sft.hf_io.resolve_model_path`).
    """
    from qwen_sft.hf_io import resolve_model_path
    from qwen_sft.tokenizer import load_tokenizer

    if not isinstance(seq_length, int) or seq_length < 2:
        raise ValueError(f"seq_length must be an int >= 2 (a prompt token and a new token), got {seq_length!r}")
    model_dir = resolve_model_path(model_path)  # a ModelScope id becomes its local folder
    tok_dir = resolve_tokenizer_dir(model_dir, tokenizer_path, warn=warn)
    tokenizer = load_tokenizer(tok_dir)
    model, hf_config, info = load_model_tp1(model_dir, seq_length=seq_length, dtype=dtype,
                                            make_vocab_size_divisible_by=make_vocab_size_divisible_by, seed=seed)
    generator = MegatronGenerator(model, vocab_size=info["vocab_size"], seq_length=seq_length,
                                  stop_ids=stop_token_ids(tokenizer), device=info["device"])
    info = {**info, "device": str(info["device"]), "tokenizer_path": str(tok_dir)}
    return generator, tokenizer, info


# ----------------------------------------------------------------------------------------------------------------
# Prompt files
# ----------------------------------------------------------------------------------------------------------------

def _as_prompt(item: Any, where: str) -> Union[str, dict]:
    if isinstance(item, str):
        if not item.strip():
            raise ValueError(f"{where}: empty prompt")
        return item
    if isinstance(item, Mapping):
        if "instruction" in item:
            return dict(item)
        if "prompt" in item and isinstance(item["prompt"], str):
            return {**{k: v for k, v in item.items() if k != "prompt"}, "instruction": item["prompt"]}
        raise ValueError(f"{where}: a prompt object needs an 'instruction' (Alpaca record) or a 'prompt' string "
                         f"field; got keys {sorted(item)[:8]}")
    raise ValueError(f"{where}: expected a string or an object, got {type(item).__name__}")


def read_prompt_file(path: Union[str, os.PathLike]) -> list[Union[str, dict]]:
    """Read prompts from a file.

    Formats (by content, not by name): a JSON list (Alpaca JSON: objects with `instruction`, optional `input`,
    `system`, `history`; or strings); JSON Lines (one object or JSON string per line; an object may carry a
    `prompt` string instead of `instruction`); otherwise plain text, one prompt per non-empty line. An Alpaca
    record's `output`, when present, is not part of the prompt (it is kept as the reference answer).

    Returns:
        A list of prompts: strings or Alpaca-record dicts (with `instruction`).

    Raises:
        FileNotFoundError: no such file. ValueError: no prompt in the file, or a bad entry (the message gives
        the file, the line or record index and what was expected).
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"--input_file {str(path)!r} does not exist")
    text = p.read_text(encoding="utf-8-sig")  # tolerate a byte-order mark
    stripped = text.lstrip()
    prompts: list[Union[str, dict]] = []
    if stripped.startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{p}: starts with '[' but is not valid JSON: {exc}") from exc
        for i, item in enumerate(data):
            prompts.append(_as_prompt(item, f"{p} record {i}"))
    elif stripped.startswith("{") or stripped.startswith('"'):
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{p} line {lineno}: not valid JSON (JSON Lines file): {exc}") from exc
            prompts.append(_as_prompt(item, f"{p} line {lineno}"))
    else:
        prompts = [line.strip() for line in text.splitlines() if line.strip()]
    if not prompts:
        raise ValueError(f"{p}: no prompts found")
    return prompts


# ----------------------------------------------------------------------------------------------------------------
# The generate job (what tools/generate.py runs)
# ----------------------------------------------------------------------------------------------------------------

@dataclasses.dataclass
class GenerateConfig:
    """Arguments of `run_generate` (the flags of tools/generate.py).

    Attributes:
        model_path: HF directory, converted Megatron checkpoint, or training output directory.
        model_name: a label recorded in the output (the original scripts' `--model_name`, e.g. "qwen2.5-7b").
        tokenizer_path: tokenizer directory; None → the model directory's own.
        seq_length: context budget in tokens (prompt + new tokens).
        max_new_tokens: the most new tokens per prompt.
        prompts: prompts given on the command line (`--prompt`, repeatable).
        input_file: more prompts (see `read_prompt_file`).
        output_file: JSON Lines output, one object per prompt (see `run_generate`); None → not written.
        system_prompt: system prompt for prompts without their own `system`; None → the chat template's default.
        sampling: greedy by default.
        batch_size: prompts per batch (KV-cache mode).
        use_kv_cache: False → recompute the whole sequence each step (benchmark baseline).
        dtype: "auto" or a dtype name (see `load_generator`).
        make_vocab_size_divisible_by: Megatron vocabulary padding multiple.
        progress: show a tqdm progress bar on stderr.
    """

    model_path: str
    model_name: Optional[str] = None
    tokenizer_path: Optional[str] = None
    seq_length: int = 4096
    max_new_tokens: int = 512
    prompts: list = dataclasses.field(default_factory=list)
    input_file: Optional[str] = None
    output_file: Optional[str] = None
    system_prompt: Optional[str] = None
    sampling: SamplingParams = dataclasses.field(default_factory=SamplingParams)
    batch_size: int = 8
    use_kv_cache: bool = True
    dtype: str = "auto"
    make_vocab_size_divisible_by: int = 128
    progress: bool = True

    def validate(self) -> None:
        """Raise ValueError naming the first bad argument."""
        if not self.prompts and not self.input_file:
            raise ValueError("no prompt: give --prompt and/or --input_file")
        if not isinstance(self.seq_length, int) or self.seq_length < 2:
            raise ValueError(f"seq_length must be an int >= 2, got {self.seq_length!r}")
        if not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be an int >= 1, got {self.max_new_tokens!r}")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {self.batch_size!r}")
        if self.dtype != "auto" and self.dtype not in _DTYPES:
            raise ValueError(f"dtype must be 'auto' or one of {sorted(set(_DTYPES))}, got {self.dtype!r}")
        for i, p in enumerate(self.prompts):
            if not isinstance(p, str) or not p.strip():
                raise ValueError(f"--prompt {i}: expected a non-empty string, got {p!r}")


@dataclasses.dataclass
class GenerateSummary:
    """Totals of one `run_generate` call.

    Attributes:
        records: one dict per prompt, in input order (the JSONL objects; see `run_generate`).
        prompts, prompt_tokens, new_tokens: counts.
        generate_s: wall seconds spent generating (model loading excluded).
        tokens_per_s: new tokens / generate_s (decode throughput as a user sees it, prefill included).
        stop_reasons: count per stop reason.
        info: `load_generator`'s info dict.
    """

    records: list
    prompts: int
    prompt_tokens: int
    new_tokens: int
    generate_s: float
    tokens_per_s: float
    stop_reasons: dict
    info: dict


def _prompt_fields(prompt: Union[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The user-visible parts of a prompt for the output record."""
    if isinstance(prompt, str):
        return {"prompt": prompt}
    inp = prompt.get("input") or ""
    fields: dict[str, Any] = {"prompt": f"{prompt['instruction']}\n{inp}" if inp else prompt["instruction"]}
    for key in ("system", "history", "id"):
        if prompt.get(key):
            fields[key] = prompt[key]
    if isinstance(prompt.get("output"), str):
        fields["reference"] = prompt["output"]
    return fields


def run_generate(cfg: GenerateConfig, log: Callable[[str], None] = print,
                 warn: Optional[Callable[[str], None]] = None) -> GenerateSummary:
    """Load the model, render every prompt with the chat template, generate, and write `cfg.output_file`.

    Prompts: `cfg.prompts` first, then those of `cfg.input_file`; all are rendered and checked against
    `seq_length` before the first forward pass (a too-long prompt raises `PromptTooLongError` naming it).
    When `prompt + max_new_tokens > seq_length` for some prompt, `warn` says how many will be cut at
    seq_length.

    Output (JSON Lines, one object per prompt, input order): `index`, `model_name`, `prompt` (the user text:
    instruction, plus "\\n" + input when non-empty), optional `system` / `history` / `reference` (an Alpaca
    record's `output`), `prompt_token_ids`, `output` (decoded new tokens, special tokens removed),
    `output_token_ids` (stop token included), `stop_reason`, `stop_token`, `num_prompt_tokens`,
    `num_output_tokens`, `timings` {`batch_index`, `batch_size`, `prefill_s`, `decode_s`, `tokens_per_s` of the
    batch}, `sampling` (the parameters used).

    Order: prompts are read, rendered and length-checked with the tokenizer before the model is loaded, so
    input errors surface at once.

    Raises:
        ValueError (bad config, bad prompt file entry, `BadRecordError`), PromptTooLongError, FileNotFoundError,
        ConnectionError (ModelScope id offline), and whatever `load_model_tp1` raises.
    """
    from qwen_sft.hf_io import resolve_model_path
    from qwen_sft.tokenizer import load_tokenizer, render_prompt_ids

    warn = warn or (lambda m: log(f"warning: {m}"))
    cfg.validate()
    prompts: list[Union[str, dict]] = list(cfg.prompts)
    if cfg.input_file:
        prompts += read_prompt_file(cfg.input_file)
    # Tokenizer and prompts first: a bad or too-long prompt fails before minutes of loading a large model.
    model_dir = resolve_model_path(cfg.model_path)
    tok_dir = resolve_tokenizer_dir(model_dir, cfg.tokenizer_path, warn=warn)
    tokenizer = load_tokenizer(tok_dir)
    prompt_ids = []
    for i, prompt in enumerate(prompts):
        try:
            prompt_ids.append(render_prompt_ids(tokenizer, prompt, cfg.system_prompt))
        except ValueError as exc:
            raise ValueError(f"prompt {i}: {exc}") from exc
    check_prompt_lengths(prompt_ids, cfg.seq_length)
    over = [i for i, ids in enumerate(prompt_ids) if len(ids) + cfg.max_new_tokens > cfg.seq_length]
    if over:
        warn(f"{len(over)} prompt(s) (first: {over[0]}, {len(prompt_ids[over[0]])} tokens) + max_new_tokens "
             f"{cfg.max_new_tokens} exceed seq_length {cfg.seq_length}; they stop at seq_length "
             f"(stop_reason 'seq_length')")

    model, _, info = load_model_tp1(model_dir, seq_length=cfg.seq_length, dtype=cfg.dtype,
                                    make_vocab_size_divisible_by=cfg.make_vocab_size_divisible_by,
                                    seed=cfg.sampling.seed)
    generator = MegatronGenerator(model, vocab_size=info["vocab_size"], seq_length=cfg.seq_length,
                                  stop_ids=stop_token_ids(tokenizer), device=info["device"])
    info = {**info, "device": str(info["device"]), "tokenizer_path": str(tok_dir)}
    log(f"generate: model {info['model_path']} ({info['num_parameters']:,} parameters, {info['dtype']}, "
        f"{info['device']}, loaded in {info['load_s']:.1f} s), tokenizer {info['tokenizer_path']}")
    generator.check_prompts(prompt_ids)  # token ids within the model's vocabulary

    bar = None
    if cfg.progress and len(prompt_ids) > 1:
        from tqdm import tqdm

        bar = tqdm(total=len(prompt_ids), desc="generate", unit="prompt")
    t0 = time.perf_counter()
    try:
        outputs = generator.generate_batches(prompt_ids, max_new_tokens=cfg.max_new_tokens,
                                             batch_size=cfg.batch_size, sampling=cfg.sampling,
                                             use_kv_cache=cfg.use_kv_cache,
                                             progress=bar.update if bar is not None else None)
    finally:
        if bar is not None:
            bar.close()
    generate_s = time.perf_counter() - t0

    batch_tokens: dict[int, int] = {}
    for out in outputs:
        batch_tokens[out.batch_index] = batch_tokens.get(out.batch_index, 0) + len(out.output_ids)
    records = []
    stop_reasons: dict[str, int] = {}
    for prompt, out in zip(prompts, outputs):
        stop_reasons[out.stop_reason] = stop_reasons.get(out.stop_reason, 0) + 1
        batch_s = out.prefill_s + out.decode_s
        records.append({
            "index": out.index,
            "model_name": cfg.model_name,
            **_prompt_fields(prompt),
            "prompt_token_ids": out.prompt_ids,
            "output": tokenizer.decode(out.output_ids, skip_special_tokens=True),
            "output_token_ids": out.output_ids,
            "stop_reason": out.stop_reason,
            "stop_token": out.stop_token,
            "num_prompt_tokens": len(out.prompt_ids),
            "num_output_tokens": len(out.output_ids),
            "timings": {
                "batch_index": out.batch_index,
                "batch_size": out.batch_size,
                "prefill_s": out.prefill_s,
                "decode_s": out.decode_s,
                "tokens_per_s": (batch_tokens[out.batch_index] / batch_s if cfg.use_kv_cache and batch_s > 0
                                 else (len(out.output_ids) / batch_s if batch_s > 0 else None)),
            },
            "sampling": dataclasses.asdict(cfg.sampling),
        })
    if cfg.output_file:
        out_path = Path(cfg.output_file)
        if out_path.parent and not out_path.parent.exists():
            out_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = out_path.with_name(out_path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            for rec in records:
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
        os.replace(tmp, out_path)
    new_tokens = sum(len(o.output_ids) for o in outputs)
    return GenerateSummary(
        records=records, prompts=len(records), prompt_tokens=sum(len(o.prompt_ids) for o in outputs),
        new_tokens=new_tokens, generate_s=generate_s,
        tokens_per_s=new_tokens / generate_s if generate_s > 0 else float("nan"),
        stop_reasons=stop_reasons, info=info)
