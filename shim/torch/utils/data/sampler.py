"""`torch.utils.data` samplers: Sequential, Random (torch's shuffling order for a seeded generator),
SubsetRandom,
Batch. Pure Python over `_mt19937`."""
from __future__ import annotations

import itertools
from typing import Iterator, Sized

from ._mt19937 import TorchMTStream, fresh_seed, stream_for

__all__ = ["Sampler", "SequentialSampler", "RandomSampler", "SubsetRandomSampler", "BatchSampler"]


class Sampler:
    """Base class: ``__iter__`` yields dataset indices (or lists of them for batch samplers)."""

    def __init__(self, data_source=None) -> None:
        pass

    def __iter__(self):
        raise NotImplementedError(f"{type(self).__name__} must implement __iter__")


class SequentialSampler(Sampler):
    """Indices ``0 .. len(data_source) - 1`` in order."""

    def __init__(self, data_source: Sized) -> None:
        self.data_source = data_source

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


class RandomSampler(Sampler):
    """A random permutation of the indices (repeated / truncated to ``num_samples``).

    With a seeded facade ``generator`` the order equals real torch's for the same seed (torch's CPU MT19937
    and
    randperm are reproduced in `_mt19937`). Without one, a seed is drawn from the facade's global RNG: the
    order is
    deterministic under ``torch.manual_seed`` but not torch's. ``replacement=True`` raises
    NotImplementedError.
    Raises ValueError when ``num_samples`` is not a positive int.
    """

    def __init__(self, data_source: Sized, replacement: bool = False, num_samples: int | None = None,
                 generator=None) -> None:
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = num_samples
        self.generator = generator
        if not isinstance(replacement, bool):
            raise TypeError(f"replacement should be a boolean value, but got replacement={replacement}")
        if replacement:
            raise NotImplementedError("torch.utils.data.RandomSampler(replacement=True) is not supported by the "
                                      "MindSpore facade; use replacement=False")
        if not isinstance(self.num_samples, int) or self.num_samples <= 0:
            raise ValueError(f"num_samples should be a positive integer value, but got num_samples={self.num_samples}")

    @property
    def num_samples(self) -> int:
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self) -> Iterator[int]:
        n = len(self.data_source)
        stream = stream_for(self.generator) if self.generator is not None else TorchMTStream(fresh_seed())
        for _ in range(self.num_samples // n):
            yield from stream.randperm(n)
        yield from stream.randperm(n)[: self.num_samples % n]

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """The given ``indices`` in a random order (torch's order for a seeded generator)."""

    def __init__(self, indices, generator=None) -> None:
        self.indices = indices
        self.generator = generator

    def __iter__(self) -> Iterator[int]:
        stream = stream_for(self.generator)  # None: the default generator, as torch's randperm(generator=None)
        for i in stream.randperm(len(self.indices)):
            yield self.indices[i]

    def __len__(self) -> int:
        return len(self.indices)


class BatchSampler(Sampler):
    """Group the indices of ``sampler`` into lists of ``batch_size`` (the last one shorter unless
    ``drop_last``).

    Raises ValueError when ``batch_size`` is not a positive int or ``drop_last`` not a bool.
    """

    def __init__(self, sampler, batch_size: int, drop_last: bool) -> None:
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
            raise ValueError(f"batch_size should be a positive integer value, but got batch_size={batch_size}")
        if not isinstance(drop_last, bool):
            raise ValueError(f"drop_last should be a boolean value, but got drop_last={drop_last}")
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = drop_last

    def __iter__(self) -> Iterator[list]:
        it = iter(self.sampler)
        while True:
            batch = list(itertools.islice(it, self.batch_size))
            if not batch or (self.drop_last and len(batch) < self.batch_size):
                return
            yield batch

    def __len__(self) -> int:
        if self.drop_last:
            return len(self.sampler) // self.batch_size
        return (len(self.sampler) + self.batch_size - 1) // self.batch_size
