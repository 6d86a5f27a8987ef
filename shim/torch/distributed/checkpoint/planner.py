"""``torch.distributed.checkpoint.planner``: the plan data classes only (no planners).

Same names, fields and pickled state as torch 2.13's ``torch/distributed/checkpoint/planner.py``: megatron-core
stores every rank's :class:`SavePlan` in the ``.metadata`` file (``Metadata.all_local_plans``), so unpickling a
real-torch ``.metadata`` under the shim needs them, and the facade's writer (``filesystem``) writes them the same
way.
:class:`SavePlanner`/:class:`LoadPlanner` are torch's abstract planner interfaces (same abstract methods and
arguments; ``resolve_bytes`` as torch: the load planner's default is to refuse); the default implementations are in
``default_planner``.
"""
from __future__ import annotations

import abc
import io
from dataclasses import dataclass
from enum import Enum, auto
from typing import Any, Optional

from ..._unsupported import module_getattr as _module_getattr
from .metadata import ChunkStorageMetadata, MetadataIndex, TensorProperties

__all__ = ["SavePlanner", "LoadPlanner", "WriteItemType", "LoadItemType", "BytesIOWriteData", "TensorWriteData",
           "WriteItem", "ReadItem", "SavePlan", "LoadPlan"]


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


class SavePlanner(abc.ABC):
    """How a state dict becomes write items (torch's interface). A save calls, on every rank,
    ``set_up_planner`` -> ``create_local_plan``; on the coordinator ``create_global_plan`` (all ranks' plans ->
    plans and the checkpoint ``Metadata``); on every rank ``finish_plan`` with its part of the global plan; then the
    storage writer asks ``resolve_data`` for each item's tensor (CPU, the item's box) or ``io.BytesIO``."""

    @abc.abstractmethod
    def set_up_planner(self, state_dict: dict, storage_meta: Any = None, is_coordinator: bool = False) -> None:
        """Start planning the save of `state_dict` (``storage_meta``: the writer's ``StorageMeta`` or None)."""

    @abc.abstractmethod
    def create_local_plan(self) -> SavePlan:
        """This rank's :class:`SavePlan`."""

    @abc.abstractmethod
    def create_global_plan(self, all_plans: list) -> tuple:
        """``(plans, Metadata)`` from every rank's plan (coordinator only)."""

    @abc.abstractmethod
    def finish_plan(self, new_plan: SavePlan) -> SavePlan:
        """This rank's final plan, given its part of the global plan."""

    @abc.abstractmethod
    def resolve_data(self, write_item: WriteItem) -> Any:
        """The tensor or ``io.BytesIO`` to write for `write_item`."""


class LoadPlanner:
    """How saved items land in a state dict (torch's interface). A load calls ``set_up_planner`` (with the
    checkpoint's ``Metadata``) -> ``create_local_plan``; on the coordinator ``create_global_plan``; ``finish_plan``;
    then for each read item the storage reader calls ``load_bytes`` (byte items) or ``resolve_tensor`` (the
    destination tensor of the item's box) and ``commit_tensor`` once it is filled."""

    @abc.abstractmethod
    def set_up_planner(self, state_dict: dict, metadata: Any = None, is_coordinator: bool = False) -> None:
        """Start planning the load into `state_dict` from a checkpoint described by `metadata`."""

    @abc.abstractmethod
    def create_local_plan(self) -> LoadPlan:
        """This rank's :class:`LoadPlan`."""

    @abc.abstractmethod
    def create_global_plan(self, global_plan: list) -> list:
        """Every rank's final plan (coordinator only)."""

    @abc.abstractmethod
    def finish_plan(self, central_plan: LoadPlan) -> LoadPlan:
        """This rank's final plan."""

    @abc.abstractmethod
    def load_bytes(self, read_item: ReadItem, value: io.BytesIO) -> None:
        """Take the stored bytes of a BYTE_IO item."""

    def resolve_bytes(self, read_item: ReadItem) -> io.BytesIO:
        """A buffer to read a byte item into in place; like torch's default, not supported by this planner."""
        raise NotImplementedError(f"torch.distributed.checkpoint.planner.LoadPlanner.resolve_bytes is not "
                                  f"implemented by {type(self).__name__} (as in torch's default)")

    @abc.abstractmethod
    def resolve_tensor(self, read_item: ReadItem) -> Any:
        """The tensor (shape ``read_item.lengths``) the stored box is copied into."""

    @abc.abstractmethod
    def commit_tensor(self, read_item: ReadItem, tensor: Any) -> None:
        """Called once the tensor from ``resolve_tensor`` is filled."""


__getattr__ = _module_getattr("torch.distributed.checkpoint.planner")
