"""``torch.distributed.checkpoint.planner``: the plan data classes only (no planners).

Same names, fields and pickled state as torch 2.13's ``torch/distributed/checkpoint/planner.py``: megatron-core
stores every rank's :class:`SavePlan` in the ``.metadata`` file (``Metadata.all_local_plans``), so unpickling a
real-torch ``.metadata`` under the shim needs them, and the facade's writer (``filesystem``) writes them the same
way.
``SavePlanner``/``LoadPlanner`` and every other name raise the facade's ``UnsupportedAPI``.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, auto
from typing import Any, Optional

from ..._unsupported import module_getattr as _module_getattr
from .metadata import ChunkStorageMetadata, MetadataIndex, TensorProperties

__all__ = ["WriteItemType", "LoadItemType", "BytesIOWriteData", "TensorWriteData", "WriteItem", "ReadItem",
           "SavePlan", "LoadPlan"]


class WriteItemType(Enum):
    """What a WriteItem saves (values are part of the file format: 1, 2, 3)."""

    TENSOR = auto()
    SHARD = auto()
    BYTE_IO = auto()


class LoadItemType(Enum):
    """What a ReadItem loads (1, 2)."""

    TENSOR = auto()
    BYTE_IO = auto()


@dataclass(frozen=True)
class BytesIOWriteData:
    """Size in bytes of a byte blob to write."""

    nbytes: int


@dataclass(frozen=True)
class TensorWriteData:
    """A tensor chunk to write: its box, the tensor's properties and global size."""

    chunk: ChunkStorageMetadata
    properties: TensorProperties
    size: Any


@dataclass(frozen=True)
class WriteItem:
    """One item of a rank's save plan: where it goes (``index``), what it is, and its tensor description."""

    index: MetadataIndex
    type: WriteItemType
    bytes_io_data: Optional[BytesIOWriteData] = None
    tensor_data: Optional[TensorWriteData] = None


@dataclass(frozen=True)
class ReadItem:
    """One item of a load plan: copy ``lengths`` from ``storage_offsets`` of the stored chunk to ``dest_offsets``."""

    type: LoadItemType
    dest_index: MetadataIndex
    dest_offsets: Any
    storage_index: MetadataIndex
    storage_offsets: Any
    lengths: Any


@dataclass(frozen=True)
class SavePlan:
    """A rank's list of WriteItems (megatron-core keeps every rank's in ``Metadata.all_local_plans``)."""

    items: list
    storage_data: Any = None
    planner_data: Any = None
    usable: bool = True


@dataclass
class LoadPlan:
    """A rank's list of ReadItems."""

    items: list
    storage_data: Any = None
    planner_data: Any = None


__getattr__ = _module_getattr("torch.distributed.checkpoint.planner")
