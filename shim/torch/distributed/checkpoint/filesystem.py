"""``torch.distributed.checkpoint.filesystem``: the per-item storage record of the file-system layout only.

Layout (torch 2.13's ``FileSystemWriter`` with the default ``torch_save`` serialization, which megatron-core's
``FileSystemWriterAsync`` also writes): ``__<rank>_<n>.distcp`` files, each the concatenation of items; a tensor
item is a complete ``torch.save`` archive of the chunk, a byte item is the raw blob; ``.metadata`` maps each
``MetadataIndex`` to a :class:`_StorageInfo` (relative file name, byte offset, byte length). The shim has no
``FileSystemReader``/``FileSystemWriter`` (they raise ``UnsupportedAPI``); megatron-core's ``torch_dist``
checkpoints are read and written by megatron_patches/torch_dist_strategy.py.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

from ..._unsupported import module_getattr as _module_getattr

__all__ = ["DEFAULT_SUFFIX"]

DEFAULT_SUFFIX = ".distcp"


@dataclass
class _StorageInfo:
    """Where one item lies: ``relative_path`` (file in the checkpoint directory), ``offset`` and ``length`` in bytes,
    ``transform_descriptors`` (None: no stream transforms). Pickled without its None fields, as torch does."""

    relative_path: str
    offset: int
    length: int
    transform_descriptors: Optional[Sequence[str]] = None

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if v is not None}


__getattr__ = _module_getattr("torch.distributed.checkpoint.filesystem")
