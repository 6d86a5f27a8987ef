"""``torch.distributed.checkpoint.metadata``: the data classes of DCP's ``.metadata`` file.

Format (learned from torch 2.13's ``torch/distributed/checkpoint/metadata.py``; same class names, same fields, same
pickled state, so a ``.metadata`` pickled under the shim unpickles on real torch and the reverse): a checkpoint
directory holds one pickled :class:`Metadata` whose ``state_dict_metadata`` maps each key to a
:class:`TensorStorageMetadata` (global properties and size, plus the list of saved chunks as
:class:`ChunkStorageMetadata` boxes: ``offsets`` and ``sizes``, one entry per dimension) or a
:class:`BytesStorageMetadata` (an opaque byte blob), and whose ``storage_data`` maps a :class:`MetadataIndex`
(key + chunk offsets) to ``torch.distributed.checkpoint.filesystem._StorageInfo`` (file, byte offset, length).

These are plain data holders; ``filesystem`` writes and reads them (the file layout is documented there).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Optional, Sequence, Union

from ..._unsupported import module_getattr as _module_getattr

__all__ = ["ChunkStorageMetadata", "TensorStorageMetadata", "BytesStorageMetadata", "Metadata", "MetadataIndex",
           "TensorProperties", "StorageMeta"]


def _torch():
    import shim.torch as torch  # the facade (imported lazily: this module loads while shim.torch initialises)

    return torch


def _size(values):
    return _torch().Size(tuple(int(v) for v in values))


STATE_DICT_TYPE = dict  # torch's alias: a state dict maps str keys to tensors, objects and nested dicts


@dataclass
class ChunkStorageMetadata:
    """One saved box of a tensor: ``offsets`` (its start in the global tensor, one int per dimension) and ``sizes``
    (its extent per dimension), both ``torch.Size``."""

    offsets: Any
    sizes: Any


class _MEM_FORMAT_ENCODING(Enum):
    """How TensorProperties pickles ``memory_format`` (the values are part of the file format)."""

    TORCH_CONTIGUOUS_FORMAT = 0
    TORCH_CHANNELS_LAST = 1
    TORCH_PRESERVE_FORMAT = 2


# torch's pickled encoding member name -> torch.memory_format name; shared with `_shard`'s TensorProperties, whose
# enum (torch's MEM_FORMAT_ENCODING) has the same members under another pickled class name
_MEM_FORMAT_NAMES = {"TORCH_CONTIGUOUS_FORMAT": "contiguous_format", "TORCH_CHANNELS_LAST": "channels_last",
                     "TORCH_PRESERVE_FORMAT": "preserve_format"}


def _encode_memory_format(memory_format, encoding):
    """The member of `encoding` (an Enum with torch's three TORCH_* members) naming `memory_format`.
    Raises RuntimeError for a memory format outside the three torch encodes."""
    name = getattr(memory_format, "name", None)
    for member in encoding:
        if _MEM_FORMAT_NAMES[member.name] == name:
            return member
    raise RuntimeError(f"Invalid torch.memory_format: {memory_format}")


def _decode_memory_format(member, encoding):
    """The torch.memory_format a pickled `encoding` member stands for; RuntimeError for anything else."""
    if not isinstance(member, encoding):
        raise RuntimeError(f"Invalid torch.memory_format encoding: {member}")
    return getattr(_torch(), _MEM_FORMAT_NAMES[member.name])


@dataclass
class TensorProperties:
    """dtype, layout, requires_grad, memory_format and pin_memory of a saved tensor.

    Pickled state (torch's): the tuple ``(dtype, layout, requires_grad, _MEM_FORMAT_ENCODING member, pin_memory)``.
    Raises RuntimeError for a memory format outside the three torch encodes."""

    dtype: Any = field(default_factory=lambda: _torch().get_default_dtype())
    layout: Any = field(default_factory=lambda: _torch().strided)
    requires_grad: bool = False
    memory_format: Any = field(default_factory=lambda: _torch().contiguous_format)
    pin_memory: bool = False

    def __getstate__(self):
        enc = _encode_memory_format(self.memory_format, _MEM_FORMAT_ENCODING)
        return (self.dtype, self.layout, self.requires_grad, enc, self.pin_memory)

    def __setstate__(self, state):
        self.dtype, self.layout, self.requires_grad, enc, self.pin_memory = state
        self.memory_format = _decode_memory_format(enc, _MEM_FORMAT_ENCODING)

    @staticmethod
    def create_from_tensor(tensor) -> "TensorProperties":
        """The properties of `tensor` (contiguous memory format, as torch records it)."""
        torch = _torch()
        return TensorProperties(dtype=tensor.dtype, layout=torch.strided, requires_grad=bool(tensor.requires_grad),
                                memory_format=torch.contiguous_format, pin_memory=False)


@dataclass
class TensorStorageMetadata:
    """A saved tensor: its properties, its global ``size`` (torch.Size) and the chunks saved of it."""

    properties: TensorProperties
    size: Any
    chunks: list


@dataclass
class BytesStorageMetadata:
    """A saved byte blob (megatron-core stores each ShardedObject as one: a ``torch.save`` of a list)."""


@dataclass
class StorageMeta:
    """Where and when a checkpoint was written: ``checkpoint_id`` (the directory), ``save_id``/``load_id``
    (uuid4 strings), ``modules``."""

    checkpoint_id: Union[str, os.PathLike, None] = None
    save_id: Optional[str] = None
    load_id: Optional[str] = None
    modules: list = field(default_factory=list)


@dataclass
class Metadata:
    """The content of a DCP ``.metadata`` file (see the module docstring)."""

    state_dict_metadata: dict
    planner_data: Any = None
    storage_data: Any = None
    storage_meta: Optional[StorageMeta] = None
    version: Optional[str] = None


@dataclass(frozen=True)
class MetadataIndex:
    """Names one saved item: ``fqn`` (the key), ``offset`` (chunk offsets as torch.Size; None for byte blobs) and
    ``index`` (a lookup hint into the chunk list; ignored by equality and hashing, as in torch)."""

    fqn: str
    offset: Any = None
    index: Optional[int] = field(hash=False, compare=False, default=None)

    def __init__(self, fqn: str, offset: Optional[Sequence[int]] = None, index: Optional[int] = None):
        object.__setattr__(self, "fqn", fqn)
        object.__setattr__(self, "index", index)
        object.__setattr__(self, "offset", None if offset is None else _size(offset))


__getattr__ = _module_getattr("torch.distributed.checkpoint.metadata")
