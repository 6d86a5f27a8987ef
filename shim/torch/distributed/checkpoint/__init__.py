"""``torch.distributed.checkpoint`` (DCP): the on-disk format, written and read by the facade; DCP's public
save/load API is **not implemented yet**.

The format has one home, this package, at torch's module names:
- ``metadata`` (``Metadata``, ``TensorStorageMetadata``, ``BytesStorageMetadata``, ``ChunkStorageMetadata``,
  ``MetadataIndex``, ``TensorProperties``, ``StorageMeta``), ``planner`` (``SavePlan``, ``WriteItem``,
  ``WriteItemType``, ``TensorWriteData``, ``ReadItem``, ``LoadPlan``, ...), ``storage.WriteResult`` and
  ``filesystem._StorageInfo``: the classes pickled in a ``.metadata`` file, with torch 2.13's names, fields and
  pickled state, so a ``.metadata`` written under the shim unpickles on real torch and real torch's unpickles here.
- ``filesystem``: the file layout (``__<rank>_<n>.distcp`` data files, ``.metadata``) and the private writer and
  reader the public API will be built on; ``planner_helpers``: write items and resharding read items
  (``create_read_items_for_chunk_list``); ``default_planner.create_default_global_save_plan``: every rank's plan
  into the checkpoint's ``Metadata``.
- ``default_planner.DefaultSavePlanner``/``DefaultLoadPlanner`` names (``import megatron.core.optimizer`` needs them
  at module level); constructing a planner raises ``NotImplementedError`` naming it.
megatron-core's ``torch_dist`` checkpoints (``dist_checkpointing.save``/``load``) are written and read through this
package by the megatron patch ``torch_dist_strategies_without_dcp`` (megatron_patches/torch_dist_strategy.py), and
the parity tool reads them through it under the shim. Every other attribute (``save``, ``load``,
``FileSystemReader``, ``FileSystemWriter``, planners, ...) raises the facade's ``UnsupportedAPI`` (a
NotImplementedError that is also an AttributeError, so ``from torch.distributed.checkpoint import X`` inside
``try/except ImportError`` falls back as it does when torch lacks X).
"""
from ..._unsupported import module_getattr as _module_getattr
from . import default_planner, filesystem, metadata, planner, planner_helpers, storage  # noqa: F401
from .metadata import (BytesStorageMetadata, ChunkStorageMetadata, Metadata, MetadataIndex, StorageMeta,
                       TensorProperties, TensorStorageMetadata)
from .planner import LoadPlan, ReadItem, SavePlan, WriteItem, WriteItemType

__all__ = ["default_planner", "metadata", "planner", "planner_helpers", "filesystem", "storage", "Metadata",
           "TensorStorageMetadata", "BytesStorageMetadata", "ChunkStorageMetadata", "MetadataIndex",
           "TensorProperties", "StorageMeta", "SavePlan", "LoadPlan", "WriteItem", "ReadItem", "WriteItemType"]
__getattr__ = _module_getattr("torch.distributed.checkpoint")
