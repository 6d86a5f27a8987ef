"""Text generation over megatron-core's `GPTModel`, with a KV cache, greedy decoding and HF-style sampling.

What runs
---------
`load_generator(...)` loads a model (HF directory, converted Megatron checkpoint, or a training output directory)
as this rank's part of a TP × PP `GPTModel` (one process by default) with the project's one loader
(`qwen_sft.loading.load_model_for_inference`) and picks the tokenizer (`qwen_sft.tokenizer.resolve_tokenizer_dir`). Prompts are
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

Tensor and pipeline parallelism
-------------------------------
Launched as TP × PP processes (torchrun or `python -m torch.distributed.launch`; the world size must be TP × PP),
every rank runs the same loop over the same prompts. At TP > 1 the model is loaded with `parallel_output=False`
and called with `runtime_gather_output=True`, so every tensor-parallel rank holds the same full-vocabulary logits
and makes the same choice (sampling generators are seeded per prompt, not per rank). At PP > 1 each forward pass
(prefill and every decode step) goes stage by stage: a stage after the first receives the previous stage's hidden
states `[s, b, hidden]` point to point and gives them to megatron with `set_input_tensor`; the last stage chooses
the next tokens, which are broadcast over the pipeline group so every stage appends the same ones. Each stage
keeps megatron's `StaticInferenceContext` KV cache for its own layers (the cache is keyed by layer number), and
finished sequences are dropped from every stage's cache rows alike. Greedy tokens equal TP = PP = 1's (tested at
TP = 2 and PP = 2: `tests/reference/test_generate.py`).

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
import os
import time
import warnings
from typing import Callable, Mapping, Optional, Sequence, Union

import torch
import torch.distributed as dist
from megatron.core import parallel_state
from megatron.core.inference.contexts import StaticInferenceContext

from qwen_sft.hf_io import resolve_model_path
from qwen_sft.loading import load_model_for_inference
from qwen_sft.model import causal_attention_mask
from qwen_sft.sampling import SamplingParams, choose_next_tokens, sequence_generator
from qwen_sft.tokenizer import load_tokenizer, resolve_tokenizer_dir

__all__ = [
    "STOP_TOKENS",
    "PromptTooLongError",
    "GenerationOutput",
    "MegatronGenerator",
    "check_prompt_lengths",
    "stop_token_ids",
    "load_generator",
]

#: Tokens that end a generated answer (Qwen2.5's chat turn end and document end).
STOP_TOKENS: tuple[str, ...] = ("<|im_end|>", "<|endoftext|>")


class PromptTooLongError(ValueError):
    """A prompt does not fit the context budget (`seq_length`). `index` is the prompt's position in the input."""

    def __init__(self, message: str, index: int, prompt_tokens: int, seq_length: int):
        super().__init__(message)
        self.index = index
        self.prompt_tokens = prompt_tokens
        self.seq_length = seq_length


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
    """Generate token ids with this rank's part of a megatron-core `GPTModel` (see the module docstring).

    Every rank of a TP × PP launch runs the same calls with the same prompts (see "Tensor and pipeline
    parallelism" in the module docstring); the outputs are the same on every rank.

    Args:
        model: this rank's `GPTModel` stage (loaded with `parallel_output=False`), already on `device`; it is put
            in eval mode. With megatron's parallel_state initialised at PP > 1, hidden states go stage to stage
            over its pipeline group.
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
        pp = (parallel_state.get_pipeline_model_parallel_world_size()
              if parallel_state.model_parallel_is_initialized() else 1)
        self.pipeline_stages = pp
        self.is_first_stage = pp == 1 or parallel_state.is_pipeline_first_stage()
        self.is_last_stage = pp == 1 or parallel_state.is_pipeline_last_stage()
        config = getattr(model, "config", None)
        self._hidden = (getattr(config, "hidden_size", None), getattr(config, "params_dtype", torch.float32))
        if pp > 1 and self._hidden[0] is None:
            raise ValueError("a pipeline-parallel generator needs the model's megatron config (model.config)")

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
                 inference_context=None) -> Optional[torch.Tensor]:
        """Logits `[b, s_out, vocab_size]` float32 for `tokens [b, s]` at absolute positions `start..start+s-1`, on
        the last pipeline stage; None on the other stages.

        With an inference context megatron returns only the last position's logits (s_out = 1). At PP > 1 a stage
        after the first receives its input hidden states `[s, b, hidden_size]` (parameter dtype) from the previous
        stage, and a stage before the last sends its output to the next one (point-to-point, megatron's pipeline
        neighbours; every rank knows `s` and `b`, so no shape exchange is needed).
        """
        b, s = tokens.shape
        position_ids = torch.arange(start, start + s, dtype=torch.long, device=self.device).unsqueeze(0).expand(b, s)
        kwargs = {}
        if inference_context is not None:
            kwargs = dict(inference_context=inference_context, runtime_gather_output=True)
        if not self.is_first_stage:
            hidden = torch.empty(s, b, self._hidden[0], dtype=self._hidden[1], device=self.device)
            dist.recv(hidden, src=parallel_state.get_pipeline_model_parallel_prev_rank())
            self.model.set_input_tensor(hidden)
        out = self.model(tokens, position_ids, attention_mask, **kwargs)
        if not self.is_last_stage:
            dist.send(out.contiguous(), dst=parallel_state.get_pipeline_model_parallel_next_rank())
            return None
        return out[..., : self.vocab_size].float()

    def _choose(self, logits: Optional[torch.Tensor], sequences, sampling: SamplingParams, generators) -> list[int]:
        """The next token of each sequence: chosen on the last pipeline stage from `logits [n, vocab]`, then
        broadcast over the pipeline group so every stage appends the same tokens (PP = 1: chosen here)."""
        if self.is_last_stage:
            chosen = choose_next_tokens(logits, sequences, sampling, generators)
        if self.pipeline_stages == 1:
            return chosen
        t = (torch.tensor(chosen, dtype=torch.long, device=self.device) if self.is_last_stage
             else torch.empty(len(sequences), dtype=torch.long, device=self.device))
        dist.broadcast(t, src=parallel_state.get_pipeline_model_parallel_last_rank(),
                       group=parallel_state.get_pipeline_model_parallel_group())
        return [int(x) for x in t.tolist()]

    @staticmethod
    def _last(logits: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
        return logits[:, -1, :] if logits is not None else None

    def _causal_mask(self, length: int, batch: int) -> torch.Tensor:
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
        logits = self._last(self._forward(tokens, 0, self._causal_mask(start, b), context))
        context.sequence_len_offset = start
        context.enable_decode_mode()
        prefill_s = time.perf_counter() - t0
        position = start  # the position whose token is fed next; logits predict the token at `position`
        while True:
            # choose a token for every sequence whose prompt is complete up to `position`
            rows = [r for r, i in enumerate(active) if len(sequences[i]) == position]
            finished_rows = set()
            if rows:
                chosen = self._choose(logits[rows] if logits is not None else None,
                                      [sequences[active[r]] for r in rows], sampling,
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
            logits = self._last(self._forward(step, position, None, context))
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
            logits = self._last(self._forward(tokens, 0, self._causal_mask(len(sequence), 1)))
            token = self._choose(logits, [sequence], sampling, [generator])[0]
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


def load_generator(model_path: Union[str, os.PathLike], *, tokenizer_path: Union[str, os.PathLike, None] = None,
                   seq_length: int = 4096, dtype: Union[str, torch.dtype, None] = "auto",
                   make_vocab_size_divisible_by: int = 128, seed: int = 1234,
                   warn: Callable[[str], None] = lambda m: warnings.warn(m, stacklevel=3),
                   tensor_model_parallel_size: int = 1, pipeline_model_parallel_size: int = 1):
    """Load model (`load_model_for_inference`) and tokenizer (`resolve_tokenizer_dir`) for generation on this rank.

    Args:
        model_path, seq_length (the context budget, >= 2), dtype, make_vocab_size_divisible_by, seed,
            tensor_model_parallel_size, pipeline_model_parallel_size: see `load_model_for_inference`.
        tokenizer_path: tokenizer directory; default the model directory's own.
        warn: receives warnings (tokenizer mismatch).

    Returns:
        `(generator: MegatronGenerator, tokenizer, info: dict)`; info as `load_model_for_inference`'s (device as a
        string) plus tokenizer_path.

    Raises:
        everything `load_model_for_inference`, `resolve_tokenizer_dir` and `load_tokenizer` raise; ValueError for
        seq_length < 2; ConnectionError for a ModelScope id that is not cached while offline
        (`qwen_sft.hf_io.resolve_model_path`).
    """
    if not isinstance(seq_length, int) or seq_length < 2:
        raise ValueError(f"seq_length must be an int >= 2 (a prompt token and a new token), got {seq_length!r}")
    model_dir = resolve_model_path(model_path)  # a ModelScope id becomes its local folder
    tok_dir = resolve_tokenizer_dir(model_dir, tokenizer_path, warn=warn)
    tokenizer = load_tokenizer(tok_dir)
    model, hf_config, info = load_model_for_inference(
        model_dir, seq_length=seq_length, dtype=dtype, make_vocab_size_divisible_by=make_vocab_size_divisible_by,
        seed=seed, tensor_model_parallel_size=tensor_model_parallel_size,
        pipeline_model_parallel_size=pipeline_model_parallel_size)
    generator = MegatronGenerator(model, vocab_size=info["vocab_size"], seq_length=seq_length,
                                  stop_ids=stop_token_ids(tokenizer), device=info["device"])
    layout = info.pop("layout")
    info = {**info, "device": str(info["device"]), "tokenizer_path": str(tok_dir), "rank": layout.rank}
    return generator, tokenizer, info
