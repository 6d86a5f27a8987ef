"""`torch.utils.data.distributed.DistributedSampler` for the facade (torch's index order, exactly)."""
from __future__ import annotations

import math
from typing import Iterator

from ._mt19937 import TorchMTStream
from .sampler import Sampler

__all__ = ["DistributedSampler"]


def _default_world() -> tuple[int, int]:
    from ... import distributed as dist
    if not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError("DistributedSampler: the default process group is not initialized; pass num_replicas "
                           "and rank, or call torch.distributed.init_process_group first")
    return dist.get_world_size(), dist.get_rank()


class DistributedSampler(Sampler):
    """Give rank ``rank`` of ``num_replicas`` its share of the dataset indices.

    Same algorithm and order as torch: with ``shuffle`` the permutation is ``torch.randperm(len, generator
    seeded
    with seed + epoch)`` (reproduced bit-exactly via torch's CPU MT19937, see `_mt19937`); the list is padded
    by
    wrapping around (or truncated with ``drop_last``) to ``num_samples * num_replicas`` and rank ``r`` takes
    positions ``r, r + num_replicas, …``. Call `set_epoch` each epoch to reshuffle.
    ``num_replicas``/``rank`` default to the initialized process group (RuntimeError if none); ValueError for
    a
    rank outside ``[0, num_replicas - 1]``.
    """

    def __init__(self, dataset, num_replicas: int | None = None, rank: int | None = None, shuffle: bool = True,
                 seed: int = 0, drop_last: bool = False) -> None:
        if num_replicas is None or rank is None:
            world, my_rank = _default_world()
            num_replicas = world if num_replicas is None else num_replicas
            rank = my_rank if rank is None else rank
        if rank >= num_replicas or rank < 0:
            raise ValueError(f"Invalid rank {rank}, rank should be in the interval [0, {num_replicas - 1}]")
        self.dataset = dataset
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self.drop_last = drop_last
        n = len(dataset)
        if drop_last and n % num_replicas != 0:
            self.num_samples = math.ceil((n - num_replicas) / num_replicas)
        else:
            self.num_samples = math.ceil(n / num_replicas)
        self.total_size = self.num_samples * num_replicas
        self.shuffle = shuffle
        self.seed = seed

    def __iter__(self) -> Iterator[int]:
        n = len(self.dataset)
        indices = TorchMTStream(self.seed + self.epoch).randperm(n) if self.shuffle else list(range(n))
        if not self.drop_last:
            pad = self.total_size - len(indices)
            if pad <= len(indices):
                indices += indices[:pad]
            else:
                indices += (indices * math.ceil(pad / len(indices)))[:pad]
        else:
            indices = indices[: self.total_size]
        if len(indices) != self.total_size:
            raise AssertionError(f"DistributedSampler built {len(indices)} indices, expected {self.total_size}")
        indices = indices[self.rank: self.total_size: self.num_replicas]
        if len(indices) != self.num_samples:
            raise AssertionError(f"DistributedSampler rank {self.rank} got {len(indices)} indices, "
                                 f"expected {self.num_samples}")
        return iter(indices)

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch used to seed the shuffle (seed + epoch)."""
        self.epoch = epoch
