"""``torch.distributed.checkpoint`` (DCP): torch's API over the on-disk format the facade writes and reads.

Modules at torch's names:
- ``metadata`` (``Metadata``, ``TensorStorageMetadata``, ``BytesStorageMetadata``, ``ChunkStorageMetadata``,
  ``MetadataIndex``, ``TensorProperties``, ``StorageMeta``), ``planner`` (``SavePlan``, ``WriteItem``,
  ``WriteItemType``, ``TensorWriteData``, ``ReadItem``, ``LoadPlan``, ...), ``storage.WriteResult`` and
  ``filesystem._StorageInfo``: the classes pickled in a ``.metadata`` file, with torch 2.13's names, fields and
  pickled state, so a ``.metadata`` written under the shim unpickles on real torch and real torch's unpickles here.
- ``planner.SavePlanner``/``LoadPlanner`` and ``storage.StorageWriter``/``StorageReader``: torch's abstract
  interfaces; ``filesystem.FileSystemWriter``/``FileSystemReader``: their file-system implementations (the file
  layout: ``__<rank>_<n>.distcp`` data files and ``.metadata``; see ``filesystem``), subclassable as megatron-core's
  ``FileSystemWriterAsync`` does; ``filesystem._write_item`` with torch 2.13's signature.
- ``api`` (``CheckpointException``, ``_wrap_exception``) and ``utils._DistWrapper``: failures on any rank raised
  on every rank; ``planner_helpers`` (write items, resharding read items ``create_read_items_for_chunk_list``);
  ``default_planner.create_default_global_save_plan``.
- ``save``/``load`` (``state_dict_saver``/``state_dict_loader``; and torch's deprecated ``save_state_dict``/
  ``load_state_dict``) with ``DefaultSavePlanner``/``DefaultLoadPlanner``,
  in one process (``no_dist``, or no process group) or over a process group (each rank its items, the coordinator
  ``.metadata``). megatron-core's own ``torch_dist`` strategy (``strategies/torch.py``, ``filesystem_async``,
``state_dict_saver``) runs on this package and on ``torch.distributed._shard`` (its ShardedTensors), and the parity
tool reads ``torch_dist`` checkpoints through it under the shim. Any other attribute raises the facade's ``UnsupportedAPI`` (a NotImplementedError
that is also an AttributeError, so ``from torch.distributed.checkpoint import X`` inside ``try/except ImportError``
falls back as it does when torch lacks X).
"""
from ..._unsupported import module_getattr as _module_getattr
from . import (_nested_dict, _traverse, api, default_planner, filesystem, metadata, planner,  # noqa: F401
               planner_helpers, state_dict_loader, state_dict_saver, storage, utils)
from .api import CheckpointException
from .default_planner import DefaultLoadPlanner, DefaultSavePlanner
from .filesystem import FileSystemReader, FileSystemWriter
from .metadata import (BytesStorageMetadata, ChunkStorageMetadata, Metadata, MetadataIndex, StorageMeta,
                       TensorProperties, TensorStorageMetadata)
from .planner import LoadPlan, LoadPlanner, ReadItem, SavePlan, SavePlanner, WriteItem, WriteItemType
from .state_dict_loader import load, load_state_dict
from .state_dict_saver import save, save_state_dict
from .storage import StorageReader, StorageWriter

__all__ = ["default_planner", "metadata", "planner", "planner_helpers", "filesystem", "storage", "Metadata",
           "TensorStorageMetadata", "BytesStorageMetadata", "ChunkStorageMetadata", "MetadataIndex",
           "TensorProperties", "StorageMeta", "SavePlan", "LoadPlan", "WriteItem", "ReadItem", "WriteItemType",
           "SavePlanner", "LoadPlanner", "StorageWriter", "StorageReader", "FileSystemWriter", "FileSystemReader",
           "DefaultSavePlanner", "DefaultLoadPlanner", "CheckpointException", "save", "load",
           "save_state_dict", "load_state_dict"]
__getattr__ = _module_getattr("torch.distributed.checkpoint")
