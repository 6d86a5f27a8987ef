"""``torch.distributed.checkpoint`` (DCP): the format's data classes only; DCP's save/load machinery is **not
implemented** by the shim.

What exists:
- ``metadata`` (``Metadata``, ``TensorStorageMetadata``, ``BytesStorageMetadata``, ``ChunkStorageMetadata``,
  ``MetadataIndex``, ``TensorProperties``, ``StorageMeta``), ``planner`` (``SavePlan``, ``WriteItem``,
  ``WriteItemType``, ``TensorWriteData``, ``ReadItem``, ``LoadPlan``, ...) and ``filesystem._StorageInfo``: the
  classes pickled in a ``.metadata`` file, with torch 2.13's names, fields and pickled state, so a ``.metadata``
  written under the shim unpickles on real torch and real torch's unpickles here. megatron-core's ``torch_dist``
  checkpoints (``dist_checkpointing.save``/``load``) are written and read with them by the megatron patch
  ``torch_dist_strategies_without_dcp`` (megatron_patches/torch_dist_strategy.py documents the on-disk format).
- ``default_planner`` names (``import megatron.core.optimizer`` needs them at module level); constructing a
  planner raises ``NotImplementedError`` naming it.
Every other attribute (``save``, ``load``, ``FileSystemReader``, ``FileSystemWriter``, planners, ...) raises the
facade's ``UnsupportedAPI`` (a NotImplementedError that is also an AttributeError, so ``from
torch.distributed.checkpoint import X`` inside ``try/except ImportError`` falls back as it does when torch lacks X).
"""
from ..._unsupported import module_getattr as _module_getattr
from . import default_planner, filesystem, metadata, planner  # noqa: F401
from .metadata import (BytesStorageMetadata, ChunkStorageMetadata, Metadata, MetadataIndex, StorageMeta,
                       TensorProperties, TensorStorageMetadata)
from .planner import LoadPlan, ReadItem, SavePlan, WriteItem, WriteItemType

__all__ = ["default_planner", "metadata", "planner", "filesystem", "Metadata", "TensorStorageMetadata",
           "BytesStorageMetadata", "ChunkStorageMetadata", "MetadataIndex", "TensorProperties", "StorageMeta",
           "SavePlan", "LoadPlan", "WriteItem", "ReadItem", "WriteItemType"]
__getattr__ = _module_getattr("torch.distributed.checkpoint")
