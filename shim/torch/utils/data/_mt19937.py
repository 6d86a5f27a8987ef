"""torch's CPU random stream for the data utilities (private): a thin view of a facade ``torch.Generator``.

The engine is the facade's one implementation of torch's CPU generator (``shim/torch/_cpu_rng.py``: MT19937 with
torch's seeding, ``random()``/``random64()`` draws, ``randperm``), so shuffling orders, ``random_split`` and the
DataLoader's per-iterator base-seed draw are torch's, and they advance the very generator they are given (or the
default generator), exactly as in torch: draws that other ops make from the same generator interleave as they do
there. ``TorchMTStream(seed)`` is a fresh generator seeded with ``seed`` (torch's ``Generator().manual_seed``).
"""
from __future__ import annotations

import numpy as np

from ... import _cpu_rng

RANDPERM_32BIT_LIMIT = _cpu_rng.RANDPERM_32BIT_LIMIT


class TorchMTStream:
    """Draws from a facade generator's engine (or from a fresh one seeded with ``seed``)."""

    def __init__(self, seed: int | None = None, generator=None) -> None:
        if generator is None:
            from ...random import Generator
            generator = Generator().manual_seed(int(seed))
        self.generator = generator

    @property
    def seed(self) -> int:
        return self.generator.initial_seed()

    def random32(self, count: int) -> np.ndarray:
        """The next ``count`` outputs of torch's ``random()`` as int64 values."""
        return self.generator._eng.random32(count).astype(np.int64)

    def random64(self) -> int:
        """torch's ``random64()``: two 32-bit outputs, the first in the high half."""
        return int(self.generator._eng.random64(1)[0])

    def randperm(self, n: int) -> list[int]:
        """``torch.randperm(n, generator=g).tolist()`` (advances the generator)."""
        return _cpu_rng.randperm(self.generator._eng, n).tolist()


def stream_for(generator) -> TorchMTStream:
    """The stream of ``generator`` (a facade ``torch.Generator``; None: the default generator)."""
    if generator is None:
        from ...random import default_generator
        generator = default_generator
    return TorchMTStream(generator=generator)


def fresh_seed() -> int:
    """torch's ``int(torch.empty((), dtype=torch.int64).random_().item())``: one ``random64()`` from the default
    generator, modulo 2**63 (RandomSampler's seed when it has no generator)."""
    from ...random import default_generator
    return int(_cpu_rng.random_full(default_generator._eng, 1, "int64")[0])
