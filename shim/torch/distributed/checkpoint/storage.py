"""``torch.distributed.checkpoint.storage``: the result record of writing one item.

and torch's abstract storage interfaces :class:`StorageWriter`/:class:`StorageReader` (same abstract methods and
arguments as torch 2.13; the file-system implementations are ``filesystem.FileSystemWriter``/``FileSystemReader``).
A writer returns one :class:`WriteResult` per item, and ``.metadata``'s ``storage_data`` is built from them.
"""
from __future__ import annotations

import abc
import os
from dataclasses import dataclass
from typing import Any, Optional, Union

from ..._unsupported import module_getattr as _module_getattr
from .metadata import MetadataIndex

__all__ = ["WriteResult", "StorageWriter", "StorageReader"]


@dataclass(frozen=True)
class WriteResult:
    """One written item: its ``index``, ``size_in_bytes`` and ``storage_data`` (for the file system: the
    ``filesystem._StorageInfo`` saying where the bytes lie)."""

    index: MetadataIndex
    size_in_bytes: int
    storage_data: Any


class StorageWriter(abc.ABC):
    """Where a save's items go (torch's interface). Order of calls in a save: ``reset(checkpoint_id)``,
    ``set_up_storage_writer``, ``prepare_local_plan`` (every rank), ``prepare_global_plan`` (coordinator),
    ``write_data`` (every rank; a ``torch.futures.Future`` of its ``WriteResult`` list), ``finish`` (coordinator,
    with every rank's results)."""

    @abc.abstractmethod
    def reset(self, checkpoint_id: Optional[Union[str, os.PathLike]] = None) -> None:
        """Prepare for a new save, to `checkpoint_id` when given."""

    @abc.abstractmethod
    def set_up_storage_writer(self, is_coordinator: bool, *args: Any, **kwargs: Any) -> None:
        """Initialize for this rank."""

    @abc.abstractmethod
    def prepare_local_plan(self, plan: Any) -> Any:
        """This rank's plan with storage details added."""

    @abc.abstractmethod
    def prepare_global_plan(self, plans: list) -> list:
        """Every rank's plan with storage details added (coordinator only)."""

    @abc.abstractmethod
    def write_data(self, plan: Any, planner: Any) -> Any:
        """Write the items of `plan` (data from ``planner.resolve_data``); a Future of the ``WriteResult`` list."""

    @abc.abstractmethod
    def finish(self, metadata: Any, results: list) -> None:
        """Commit the checkpoint: `metadata` and every rank's write results (coordinator only)."""

    @classmethod
    @abc.abstractmethod
    def validate_checkpoint_id(cls, checkpoint_id: Union[str, os.PathLike]) -> bool:
        """Whether `checkpoint_id` is something this storage can write to."""

    def storage_meta(self) -> Any:
        """The ``StorageMeta`` of this checkpoint, or None (the default)."""
        return None


class StorageReader(abc.ABC):
    """Where a load's items come from (torch's interface). Order of calls: ``reset(checkpoint_id)``,
    ``read_metadata``, ``set_up_storage_reader``, ``prepare_local_plan`` (every rank), ``prepare_global_plan``
    (coordinator), ``read_data`` (every rank; a Future of None)."""

    @abc.abstractmethod
    def reset(self, checkpoint_id: Optional[Union[str, os.PathLike]] = None) -> None:
        """Prepare for a new load, from `checkpoint_id` when given."""

    @abc.abstractmethod
    def read_metadata(self, *args: Any, **kwargs: Any) -> Any:
        """The checkpoint's ``Metadata``."""

    @abc.abstractmethod
    def set_up_storage_reader(self, metadata: Any, is_coordinator: bool, *args: Any, **kwargs: Any) -> None:
        """Initialize for this rank with the checkpoint's `metadata`."""

    @abc.abstractmethod
    def prepare_local_plan(self, plan: Any) -> Any:
        """This rank's load plan with storage details added."""

    @abc.abstractmethod
    def prepare_global_plan(self, plans: list) -> list:
        """Every rank's load plan with storage details added (coordinator only)."""

    @abc.abstractmethod
    def read_data(self, plan: Any, planner: Any) -> Any:
        """Read the items of `plan` into the planner (``load_bytes``/``resolve_tensor``/``commit_tensor``)."""

    @classmethod
    @abc.abstractmethod
    def validate_checkpoint_id(cls, checkpoint_id: Union[str, os.PathLike]) -> bool:
        """Whether `checkpoint_id` is something this storage can read."""


__getattr__ = _module_getattr("torch.distributed.checkpoint.storage")
