"""`torch.utils.data` for the MindSpore facade: datasets, samplers, DataLoader, collation, DistributedSampler.

Pure Python; tensors are built with the facade's own ``torch.tensor`` / ``torch.stack``. Shuffling with a
seeded
generator reproduces real torch's order (see `_mt19937`).
"""
from .dataset import (ChainDataset, ConcatDataset, Dataset, IterableDataset, Subset, TensorDataset,
                      random_split)
from .sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler, SubsetRandomSampler
from .distributed import DistributedSampler
from ._collate import default_collate, default_convert
from .dataloader import DataLoader, get_worker_info
from . import distributed

__all__ = ["Dataset", "IterableDataset", "TensorDataset", "Subset", "ConcatDataset", "ChainDataset",
           "random_split", "Sampler", "SequentialSampler", "RandomSampler", "SubsetRandomSampler",
           "BatchSampler", "DistributedSampler", "DataLoader", "default_collate", "default_convert",
           "get_worker_info"]


from ..._unsupported import module_getattr as _module_getattr  # noqa: E402

__getattr__ = _module_getattr("torch.utils.data")
