"""`torch.utils.data.DataLoader` for the facade.

Map-style datasets are read through a (batch) sampler and collated; iterable datasets are read in order and
batched. Shuffling with a seeded ``generator`` reproduces torch's order exactly: like torch, each epoch's
iterator first draws a 64-bit base seed from the generator, then the sampler draws its permutation (see
`_mt19937`). Loading always happens in the calling process: ``num_workers > 0`` is accepted and served
in-process (a one-time warning says so; the batches are the same as torch's with workers for map-style
datasets,
and ``get_worker_info()`` returns None). ``pin_memory`` is accepted and ignored on this backend (warning
once).
"""
from __future__ import annotations

import warnings
from typing import Any, Callable

from ._collate import default_collate, default_convert
from ._mt19937 import stream_for
from .dataset import IterableDataset
from .sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler

__all__ = ["DataLoader", "get_worker_info"]

_warned = set()


def _warn_once(key: str, msg: str) -> None:
    if key not in _warned:
        _warned.add(key)
        warnings.warn(msg, UserWarning, stacklevel=3)


def get_worker_info():
    """None: the facade loads data in the calling process (there are no worker processes)."""
    return None


class DataLoader:
    """Batches of ``dataset`` (torch's DataLoader arguments and validation rules).

    Args: ``batch_size`` (None disables batching), ``shuffle``, ``sampler``, ``batch_sampler``,
    ``num_workers``,
    ``collate_fn`` (default `default_collate`, or `default_convert` when ``batch_size is None``),
    ``drop_last``,
    ``generator`` (a facade ``torch.Generator``), ``worker_init_fn`` (called once with worker id 0 when
    ``num_workers > 0``), other torch arguments accepted for compatibility.
    Raises ValueError for the combinations torch rejects (sampler with shuffle, batch_sampler with batch_size
    /
    shuffle / sampler / drop_last, shuffle or sampler with an IterableDataset, negative num_workers).
    """

    def __init__(self, dataset, batch_size: int | None = 1, shuffle: bool | None = None, sampler=None,
                 batch_sampler=None, num_workers: int = 0, collate_fn: Callable | None = None,
                 pin_memory: bool = False, drop_last: bool = False, timeout: float = 0,
                 worker_init_fn: Callable | None = None, multiprocessing_context=None, generator=None, *,
                 prefetch_factor: int | None = None, persistent_workers: bool = False,
                 pin_memory_device: str = "", in_order: bool = True) -> None:
        if num_workers < 0:
            raise ValueError("num_workers option should be non-negative; use num_workers=0 to disable "
                             "multiprocessing.")
        if timeout < 0:
            raise ValueError("timeout option should be non-negative")
        if num_workers > 0:
            _warn_once("workers", f"DataLoader(num_workers={num_workers}): the MindSpore facade loads data in the "
                                  "calling process; batches are identical, there is no parallel prefetch")
        if pin_memory:
            _warn_once("pin", "DataLoader(pin_memory=True) has no effect on the MindSpore facade")
        self.dataset = dataset
        self.num_workers = num_workers
        self.prefetch_factor = prefetch_factor
        self.pin_memory = pin_memory
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.persistent_workers = persistent_workers
        self.generator = generator
        self._is_iterable = isinstance(dataset, IterableDataset)
        if self._is_iterable:
            if shuffle not in (None, False):
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified shuffle option, "
                                 f"but got shuffle={shuffle}")
            if sampler is not None:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified sampler option, "
                                 f"but got sampler={sampler}")
            if batch_sampler is not None:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified batch_sampler option, "
                                 f"but got batch_sampler={batch_sampler}")
        else:
            shuffle = bool(shuffle)
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("batch_sampler option is mutually exclusive with batch_size, shuffle, sampler, "
                                 "and drop_last")
            batch_size = None
            drop_last = False
        elif batch_size is None and drop_last:
            raise ValueError("batch_size=None option disables auto-batching and is mutually exclusive with "
                             "drop_last")
        if sampler is None and not self._is_iterable:
            sampler = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None and not self._is_iterable:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        if collate_fn is None:
            collate_fn = default_collate if self._auto_collation else default_convert
        self.collate_fn = collate_fn

    @property
    def _auto_collation(self) -> bool:
        return self.batch_sampler is not None or (self._is_iterable and self.batch_size is not None)

    def __iter__(self):
        stream_for(self.generator).random64()  # torch's per-iterator base seed draw (its generator or the default)
        if self.num_workers > 0 and self.worker_init_fn is not None:
            self.worker_init_fn(0)
        if self._is_iterable:
            return self._iter_iterable()
        return self._iter_map()

    def _iter_map(self):
        if self.batch_sampler is not None:
            for indices in self.batch_sampler:
                yield self.collate_fn([self.dataset[i] for i in indices])
        else:
            for index in self.sampler:
                yield self.collate_fn(self.dataset[index])

    def _iter_iterable(self):
        it = iter(self.dataset)
        if self.batch_size is None:
            for sample in it:
                yield self.collate_fn(sample)
            return
        while True:
            batch = []
            for sample in it:
                batch.append(sample)
                if len(batch) == self.batch_size:
                    break
            if not batch or (self.drop_last and len(batch) < self.batch_size):
                return
            yield self.collate_fn(batch)
            if len(batch) < self.batch_size:
                return

    def __len__(self) -> int:
        if self._is_iterable:
            n = len(self.dataset)  # TypeError when the iterable dataset has no length, as in torch
            if self.batch_size is None:
                return n
            return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
        if self.batch_sampler is not None:
            return len(self.batch_sampler)
        return len(self.sampler)
