"""Next-token choice with HF `transformers` semantics: repetition penalty, temperature, top-k, top-p, greedy.

Per step, on the float32 logits of the real vocabulary (rows `[0, config.vocab_size)`; Megatron's padding rows
are never chosen): repetition penalty over every token of the sequence so far, prompt included (a logit `x` of
a seen token becomes `x / p` when `x > 0`, `x * p` otherwise); then greedy `argmax` when `temperature == 0`,
else temperature (`x / T`), top-k (keep logits >= the k-th largest), top-p (drop the lowest-probability tokens
whose cumulative probability is <= 1 - top_p, always keeping the most likely one) and one draw from the
softmax (inverse-CDF with a uniform draw). Each sequence draws from its own `torch.Generator`, seeded from
(`seed`, the sequence's index in the input), so sampled text is reproducible and does not depend on the batch
it ran in, or on megatron's RNG tracker (which shares the default CPU generator).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Optional, Sequence

import numpy as np
import torch

__all__ = ["SamplingParams", "sequence_generator", "process_logits", "choose_next_tokens"]


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
