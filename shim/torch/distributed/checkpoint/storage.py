"""``torch.distributed.checkpoint.storage``: the result record of writing one item.

Only :class:`WriteResult` exists (the file-system writer in ``filesystem`` returns one per item, and ``.metadata``'s
``storage_data`` is built from them); ``StorageWriter``/``StorageReader`` raise the facade's ``UnsupportedAPI``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..._unsupported import module_getattr as _module_getattr
from .metadata import MetadataIndex

__all__ = ["WriteResult"]


@dataclass(frozen=True)
class WriteResult:
    """One written item: its ``index``, ``size_in_bytes`` and ``storage_data`` (for the file system: the
    ``filesystem._StorageInfo`` saying where the bytes lie)."""

    index: MetadataIndex
    size_in_bytes: int
    storage_data: Any


__getattr__ = _module_getattr("torch.distributed.checkpoint.storage")
