"""A torch-compatible CPU random stream for data shuffling (private).

torch's CPU generator is an MT19937 engine seeded with the standard ``init_genrand`` from the low 32 bits of
the
seed; ``torch.randperm(n, generator=g)`` on CPU (for ``n < 2**32 / 20``) is a Fisher-Yates shuffle that draws
``z = random32() % (n - i)`` for ``i = 0 .. n-2`` and swaps ``r[i]`` with ``r[i + z]``; ``random_()`` on an
int64
scalar draws ``random64() = (hi << 32) | lo`` from two 32-bit outputs. NumPy's legacy ``RandomState(seed)``
uses
the same seeding and engine, so its raw 32-bit outputs equal torch's. This reproduces torch's shuffling order
(checked against real torch in tests/shim/test_data_loader.py) without touching MindSpore's RNG, whose streams
cannot reproduce torch's.

A stream is attached to each facade ``torch.Generator`` the data utilities see, restarted whenever the
generator's ``initial_seed()`` changes. Limits (documented in shim/README): draws that other ops make from the
same generator do not advance this stream, and re-seeding a generator with the *same* seed mid-stream is not
noticed.
"""
from __future__ import annotations

import weakref

import numpy as np

# torch switches to 64-bit draws from this size on (aten randperm_cpu).
RANDPERM_32BIT_LIMIT = (2**32 - 1) // 20


class TorchMTStream:
    """Raw 32-bit outputs of torch's CPU MT19937 engine seeded with ``seed``."""

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)
        self._rs = np.random.RandomState(self.seed & 0xFFFFFFFF)

    def random32(self, count: int) -> np.ndarray:
        """The next ``count`` 32-bit outputs as int64 values."""
        if count <= 0:
            return np.zeros(0, dtype=np.int64)
        return self._rs._bit_generator.random_raw(count).astype(np.int64)

    def random64(self) -> int:
        """torch's ``random64()``: two 32-bit outputs, the first in the high half."""
        hi, lo = (int(v) for v in self.random32(2))
        return (hi << 32) | lo

    def randperm(self, n: int) -> list[int]:
        """``torch.randperm(n, generator=g).tolist()`` for a generator in this state (advances the stream).

        Raises NotImplementedError for ``n >= 2**32 / 20`` (torch's 64-bit path, not reproduced here)."""
        if n >= RANDPERM_32BIT_LIMIT:
            raise NotImplementedError(
                f"torch.randperm order for n={n} >= {RANDPERM_32BIT_LIMIT} (torch's 64-bit path) is not reproduced")
        r = list(range(n))
        draws = self.random32(n - 1)
        for i in range(n - 1):
            j = i + int(draws[i]) % (n - i)
            r[i], r[j] = r[j], r[i]
        return r


_streams: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_streams_by_id: dict = {}


def stream_for(generator) -> TorchMTStream:
    """The torch-compatible stream attached to ``generator`` (a facade ``torch.Generator``), (re)started from
    ``generator.initial_seed()`` when that changed since the last use."""
    seed = int(generator.initial_seed())
    try:
        stream = _streams.get(generator)
    except TypeError:  # not weak-referenceable / not hashable
        stream = _streams_by_id.get(id(generator))
    if stream is None or stream.seed != seed:
        stream = TorchMTStream(seed)
        try:
            _streams[generator] = stream
        except TypeError:
            _streams_by_id[id(generator)] = stream
    return stream


def fresh_seed() -> int:
    """A seed drawn from the facade's global RNG (deterministic under ``torch.manual_seed``; not torch's
    value)."""
    from ... import randint
    return int(randint(0, 2**31 - 1, (1,)).item())
