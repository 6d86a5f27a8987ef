"""megatron-core's ``torch_dist`` checkpoint format, saved and loaded without ``torch.distributed.checkpoint``.

megatron-core 0.16.1 writes ``dist_checkpointing`` checkpoints in the ``torch_dist`` format through PyTorch's DCP
machinery (``megatron/core/dist_checkpointing/strategies/torch.py``: planners, ``ShardedTensor`` wrappers, the
``FileSystemWriterAsync`` writer). The shim has no DCP, so the patch ``torch_dist_strategies_without_dcp``
(megatron_patches/patches.py) serves megatron's default ``torch_dist`` v1 save/load strategies with the two classes
here, which write and read the same files directly:

- ``<dir>/__<rank>_0.distcp``: one file per rank, the concatenation of that rank's items. A tensor item is a
  complete ``torch.save`` archive of one chunk (its shape is ``(1,) * prepend_axis_num + local_shape``, exactly as
  megatron's DCP path saves it); a ShardedObject item is the raw bytes of ``torch.save([obj.data, ...])`` (the
  objects of that ``unique_key`` on the rank, megatron's ``_mcore_to_torch_sharded_object``). Only main replicas
  (``replica_id`` all zero) are written (megatron's ``keep_only_main_replica=True``).
- ``<dir>/.metadata``: a pickled ``torch.distributed.checkpoint.metadata.Metadata`` (DCP version "1.0.0"):
  ``state_dict_metadata`` (per key: ``TensorStorageMetadata`` with the global size and the list of chunk boxes of
  every rank, or ``BytesStorageMetadata``), ``storage_data`` (``MetadataIndex(key, chunk offsets)`` ->
  ``_StorageInfo(file, byte offset, byte length)``), ``storage_meta``, and megatron's extra attribute
  ``all_local_plans`` (each rank's ``SavePlan``). The classes are the facade's copies under torch's module paths
  (shim/torch/distributed/checkpoint/{metadata,planner,filesystem}.py), pickled under torch's names, so real torch
  (megatron's own loader) reads these checkpoints and this module reads real torch's (which may spread a rank's
  items over several ``__<rank>_<n>.distcp`` files: the reader follows ``storage_data``).
``metadata.json`` and ``common.pt`` are written by megatron-core itself (``serialization.save``, common strategy).

Loading reads, for every requested ShardedTensor, the parts of every saved chunk that overlap its box, so a
checkpoint saved with another tensor-parallel layout loads too (resharding); ShardedTensors with a
``flattened_range`` (megatron's legacy flattened optimizer layouts) raise NotImplementedError naming them.

``load_tensors(dir)`` returns every saved tensor of a ``torch_dist`` checkpoint as a global numpy array (any
backend); ``parity_checkpoint(dir)`` wraps them for ``parity.compare_checkpoints`` (tensor by tensor).
"""
from __future__ import annotations

import io
import os
import pickle
import sys
import uuid
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import numpy as np

__all__ = ["ShimTorchDistSaveStrategy", "ShimTorchDistLoadStrategy", "default_strategy_without_dcp",
           "read_metadata", "load_tensors", "parity_checkpoint", "METADATA_FILE", "DCP_VERSION"]

METADATA_FILE = ".metadata"
DCP_VERSION = "1.0.0"  # torch 2.13's CURRENT_DCP_VERSION
BACKEND, VERSION = "torch_dist", 1


# ------------------------------------------------------------------------------------------------ helpers
def _is_facade(torch) -> bool:
    return getattr(torch, "__name__", "") == "shim.torch" or str(getattr(torch, "__version__", "")).endswith(
        "+mindspore")


def _dcp_classes():
    """(metadata module, planner module, filesystem module) of whichever torch is `torch` in this process."""
    import torch
    if _is_facade(torch):
        from shim.torch.distributed.checkpoint import filesystem, metadata, planner
    else:
        from torch.distributed.checkpoint import filesystem, metadata, planner
    return metadata, planner, filesystem


class _MetadataUnpickler(pickle.Unpickler):
    """Unpickles a ``.metadata`` file: under the shim, torch's module names resolve to the facade's modules and
    ``torch.serialization._get_layout`` (how real torch pickles ``torch.strided``) to the facade's layout."""

    def __init__(self, file, facade: bool):
        super().__init__(file)
        self._facade = facade

    def find_class(self, module, name):
        if self._facade and (module == "torch" or module.startswith("torch.")):
            if (module, name) == ("torch.serialization", "_get_layout"):
                return _facade_layout
            module = "shim." + module
        return super().find_class(module, name)


def _facade_layout(name: str):
    import shim.torch as torch
    short = name.rpartition(".")[2]
    value = getattr(torch, short, None)
    if not isinstance(value, torch.layout):
        raise pickle.UnpicklingError(f".metadata names layout {name!r}, which the shim does not have")
    return value


def read_metadata(checkpoint_dir: Union[str, Path]):
    """The ``Metadata`` object of a ``torch_dist`` checkpoint directory (real torch's classes under real torch, the
    facade's under the shim).

    Raises:
        FileNotFoundError: no ``.metadata`` file in `checkpoint_dir`.
        pickle.UnpicklingError: the file is not a DCP metadata pickle this backend can read.
    """
    import torch
    path = Path(checkpoint_dir) / METADATA_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{checkpoint_dir}: no {METADATA_FILE} file (not a torch_dist checkpoint)")
    with open(path, "rb") as f:
        return _MetadataUnpickler(f, _is_facade(torch)).load()


def _pickle_metadata(metadata, path: Path) -> None:
    """Write `metadata` to `path` (atomically) under torch's global names (see module docstring)."""
    import torch
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        if _is_facade(torch):
            _facade_pickler_class()(f).dump(metadata)
        else:  # not reached by the strategies (they run under the shim only); kept for symmetry
            pickle.dump(metadata, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _facade_pickler_class():
    from shim.torch import layout
    from shim.torch.serialization import _Pickler, _ref

    class Pickler(_Pickler):
        """The facade's torch.save pickler (facade classes, dtypes and torch.Size written under torch's names),
        plus ``torch.strided`` written as real torch does: ``torch.serialization._get_layout("torch.strided")``."""

        def __init__(self, file):
            super().__init__(file, protocol=2)

        def reducer_override(self, obj):
            if isinstance(obj, layout):
                return (_ref("torch.serialization", "_get_layout"), (f"torch.{obj.name}",))
            return super().reducer_override(obj)

    return Pickler


def _group_by_key(sharded_state_dict, main_replicas_only: bool) -> Dict[str, list]:
    """{storage key: [ShardedTensor | ShardedObject, ...]} in traversal order; the key is ``ShardedTensor.key`` or
    ``ShardedObject.unique_key`` (megatron's ``_replace_state_dict_keys_with_sharded_keys``)."""
    from megatron.core.dist_checkpointing.dict_utils import nested_values
    from megatron.core.dist_checkpointing.mapping import ShardedBase, ShardedObject, is_main_replica

    groups: Dict[str, list] = {}
    for value in nested_values(sharded_state_dict):
        if not isinstance(value, ShardedBase):
            raise TypeError(f"torch_dist strategy: expected only ShardedTensor/ShardedObject values in the sharded "
                            f"state dict, got {type(value).__name__}")
        if main_replicas_only and not is_main_replica(value.replica_id):
            continue
        key = value.unique_key if isinstance(value, ShardedObject) else value.key
        groups.setdefault(key, []).append(value)
    return groups


def _chunk_shape(sh_ten) -> tuple:
    return (1,) * sh_ten.prepend_axis_num + tuple(sh_ten.local_shape)


def _reject_flattened(sh_ten) -> None:
    if sh_ten.flattened_range is not None:
        raise NotImplementedError(
            f"torch_dist under the shim: ShardedTensor {sh_ten.key!r} has a flattened_range (megatron's legacy "
            f"flattened layout); not implemented by megatron_patches.torch_dist_strategy — use "
            f"distrib_optim_sharding_type='dp_reshardable'")


# ------------------------------------------------------------------------------------------------ saving
def _base_classes():
    from megatron.core.dist_checkpointing.strategies.base import LoadShardedStrategy, SaveShardedStrategy
    return SaveShardedStrategy, LoadShardedStrategy


def _make_save_class():
    SaveShardedStrategy, _ = _base_classes()

    class ShimTorchDistSaveStrategy(SaveShardedStrategy):
        """Save strategy for megatron's ``torch_dist`` v1 format without DCP (format: module docstring).

        ``save(sharded_state_dict, checkpoint_dir)`` is collective: every rank writes ``__<rank>_0.distcp``, the
        ranks exchange their item lists (``torch.distributed.all_gather_object``) and rank 0 writes ``.metadata``.
        Raises CheckpointingException for inconsistent global shapes/dtypes of one key across ranks,
        NotImplementedError for flattened ShardedTensors.
        """

        def __init__(self, backend: str = BACKEND, version: int = VERSION):
            super().__init__(backend, version)

        @property
        def can_handle_sharded_objects(self):
            return True

        def save(self, sharded_state_dict, checkpoint_dir: Union[str, Path]) -> None:
            import torch
            import torch.distributed as dist

            md_mod, plan_mod, fs_mod = _dcp_classes()
            checkpoint_dir = Path(checkpoint_dir)
            rank = dist.get_rank() if dist.is_initialized() else 0
            file_name = f"__{rank}_0{fs_mod.DEFAULT_SUFFIX}"
            from megatron.core.dist_checkpointing.mapping import ShardedObject

            entries: Dict[str, Any] = {}       # key -> ("bytes",) | ("tensor", props, size, [chunks])
            storage: Dict[Any, Any] = {}
            items: List[Any] = []
            with open(checkpoint_dir / file_name, "wb") as stream:
                for key, shards in _group_by_key(sharded_state_dict, main_replicas_only=True).items():
                    if isinstance(shards[0], ShardedObject):
                        buf = io.BytesIO()
                        torch.save([s.data for s in shards], buf)
                        offset = stream.tell()
                        stream.write(buf.getvalue())
                        index = md_mod.MetadataIndex(key)
                        storage[index] = fs_mod._StorageInfo(file_name, offset, stream.tell() - offset)
                        entries[key] = ("bytes",)
                        items.append(plan_mod.WriteItem(index=index, type=plan_mod.WriteItemType.BYTE_IO))
                        continue
                    for i, sh in enumerate(shards):
                        _reject_flattened(sh)
                        if sh.data is None:
                            from megatron.core.dist_checkpointing.core import CheckpointingException
                            raise CheckpointingException(f"`data` attr is None for {sh}")
                        # a compact copy: torch.save writes a view's whole storage
                        data = sh.data.detach().reshape(_chunk_shape(sh)).clone()
                        offsets = torch.Size(sh.global_offset)
                        index = md_mod.MetadataIndex(key, offsets, i if len(shards) > 1 else None)
                        offset = stream.tell()
                        buf = io.BytesIO()
                        torch.save(data, buf)
                        stream.write(buf.getvalue())
                        storage[index] = fs_mod._StorageInfo(file_name, offset, stream.tell() - offset)
                        props = md_mod.TensorProperties.create_from_tensor(data)
                        chunk = md_mod.ChunkStorageMetadata(offsets=offsets, sizes=torch.Size(data.shape))
                        size = torch.Size(sh.global_shape)
                        entry = entries.setdefault(key, ("tensor", props, size, []))
                        entry[3].append(chunk)
                        items.append(plan_mod.WriteItem(
                            index=index, type=plan_mod.WriteItemType.SHARD,
                            tensor_data=plan_mod.TensorWriteData(chunk=chunk, properties=props, size=size)))
                stream.flush()
                os.fsync(stream.fileno())
            local = (entries, storage, items)
            if dist.is_initialized() and dist.get_world_size() > 1:
                gathered: List[Any] = [None] * dist.get_world_size()
                dist.all_gather_object(gathered, local)
            else:
                gathered = [local]
            if rank == 0:
                metadata = _merge_metadata(gathered, checkpoint_dir, md_mod, plan_mod)
                _pickle_metadata(metadata, checkpoint_dir / METADATA_FILE)

    return ShimTorchDistSaveStrategy


def _merge_metadata(gathered, checkpoint_dir: Path, md_mod, plan_mod):
    """One ``Metadata`` from every rank's (entries, storage_data, write items)."""
    from megatron.core.dist_checkpointing.core import CheckpointingException

    state_dict_metadata: Dict[str, Any] = {}
    storage_data: Dict[Any, Any] = {}
    for rank, (entries, storage, _items) in enumerate(gathered):
        for key, entry in entries.items():
            prev = state_dict_metadata.get(key)
            if entry[0] == "bytes":
                if prev is not None:
                    raise CheckpointingException(f"torch_dist save: object key {key!r} saved by two ranks")
                state_dict_metadata[key] = md_mod.BytesStorageMetadata()
                continue
            _, props, size, chunks = entry
            if prev is None:
                state_dict_metadata[key] = md_mod.TensorStorageMetadata(properties=props, size=size,
                                                                        chunks=list(chunks))
            elif not isinstance(prev, md_mod.TensorStorageMetadata) or prev.size != size \
                    or prev.properties.dtype != props.dtype:
                raise CheckpointingException(
                    f"torch_dist save: key {key!r}: rank {rank} saves global shape {tuple(size)} {props.dtype}, "
                    f"another rank {getattr(prev, 'size', 'an object')}")
            else:
                prev.chunks.extend(chunks)
        storage_data.update(storage)
    metadata = md_mod.Metadata(
        state_dict_metadata=state_dict_metadata, planner_data=None, storage_data=storage_data,
        storage_meta=md_mod.StorageMeta(checkpoint_id=str(checkpoint_dir), save_id=str(uuid.uuid4()),
                                        load_id=None, modules=[]),
        version=DCP_VERSION)
    # megatron-core's addition (state_dict_saver.save_state_dict_async_plan): every rank's plan
    metadata.all_local_plans = [plan_mod.SavePlan(items=list(items), storage_data=None, planner_data={}, usable=True)
                                for _entries, _storage, items in gathered]
    return metadata


# ------------------------------------------------------------------------------------------------ loading
class _ItemReader:
    """Reads items of a checkpoint by MetadataIndex (files opened lazily, kept open until close())."""

    def __init__(self, checkpoint_dir: Path, metadata):
        self.dir, self.metadata, self._files = Path(checkpoint_dir), metadata, {}

    def raw(self, index) -> bytes:
        info = self.metadata.storage_data.get(index)
        if info is None:
            raise KeyError(f"{self.dir}: no storage entry for {index}")
        if getattr(info, "transform_descriptors", None):
            raise NotImplementedError(f"{self.dir}: item {index.fqn!r} uses DCP stream transforms "
                                      f"{list(info.transform_descriptors)}; not implemented")
        f = self._files.get(info.relative_path)
        if f is None:
            f = self._files[info.relative_path] = open(self.dir / info.relative_path, "rb")
        f.seek(info.offset)
        data = f.read(info.length)
        if len(data) != info.length:
            raise OSError(f"{self.dir / info.relative_path}: truncated (item {index.fqn!r} needs bytes "
                          f"{info.offset}..{info.offset + info.length})")
        return data

    def tensor(self, key: str, chunk):
        import torch
        md_mod, _, _ = _dcp_classes()
        return torch.load(io.BytesIO(self.raw(md_mod.MetadataIndex(key, chunk.offsets))), map_location="cpu",
                          weights_only=True)

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()


def _overlap(a_off, a_size, b_off, b_size):
    """Intersection of two boxes as (start, length) per dimension, or None when empty."""
    out = []
    for ao, asz, bo, bsz in zip(a_off, a_size, b_off, b_size):
        lo, hi = max(ao, bo), min(ao + asz, bo + bsz)
        if hi <= lo:
            return None
        out.append((lo, hi - lo))
    return out


def _make_load_class():
    _, LoadShardedStrategy = _base_classes()

    class ShimTorchDistLoadStrategy(LoadShardedStrategy):
        """Load strategy for megatron's ``torch_dist`` v1 format without DCP (format: module docstring).

        ``load(sharded_state_dict, checkpoint_dir)`` fills every ShardedTensor's box from the overlapping saved
        chunks (in place into ``data`` when given, else a new tensor) and every ShardedObject from its blob, and
        returns the state dict with the Sharded* values replaced. Raises CheckpointingException for a key missing
        from the checkpoint, a global shape mismatch (unless ``allow_shape_mismatch``) or a box the saved chunks do
        not cover; NotImplementedError for flattened ShardedTensors.
        """

        @property
        def can_handle_sharded_objects(self):
            return True

        def check_backend_compatibility(self, loaded_backend):
            from megatron.core.dist_checkpointing.core import CheckpointingException
            if loaded_backend != BACKEND:
                raise CheckpointingException(f"the shim's torch_dist strategy cannot load backend {loaded_backend!r}")

        def check_version_compatibility(self, loaded_version):
            from megatron.core.dist_checkpointing.core import CheckpointingException
            if loaded_version != VERSION:
                raise CheckpointingException(f"the shim's torch_dist strategy reads version {VERSION}, not "
                                             f"{loaded_version!r}")

        def load(self, sharded_state_dict, checkpoint_dir: Union[str, Path]):
            import torch
            from megatron.core.dist_checkpointing.core import CheckpointingException
            from megatron.core.dist_checkpointing.dict_utils import dict_list_map_outplace
            from megatron.core.dist_checkpointing.mapping import ShardedBase, ShardedObject

            md_mod, _, _ = _dcp_classes()
            metadata = read_metadata(checkpoint_dir)
            reader = _ItemReader(Path(checkpoint_dir), metadata)
            loaded: Dict[int, Any] = {}
            try:
                for key, shards in _group_by_key(sharded_state_dict, main_replicas_only=False).items():
                    saved = metadata.state_dict_metadata.get(key)
                    if saved is None:
                        raise CheckpointingException(f"{key!r} from the model is not in checkpoint {checkpoint_dir}")
                    if isinstance(shards[0], ShardedObject):
                        if not isinstance(saved, md_mod.BytesStorageMetadata):
                            raise CheckpointingException(f"{key!r}: a tensor in {checkpoint_dir}, an object requested")
                        objs = torch.load(io.BytesIO(reader.raw(md_mod.MetadataIndex(key))), map_location="cpu",
                                          weights_only=False)
                        if len(objs) != len(shards):
                            raise CheckpointingException(f"{key!r}: {len(objs)} object(s) saved, {len(shards)} "
                                                         f"requested")
                        for sh, obj in zip(shards, objs):
                            loaded[id(sh)] = obj
                        continue
                    if not isinstance(saved, md_mod.TensorStorageMetadata):
                        raise CheckpointingException(f"{key!r}: an object in {checkpoint_dir}, a tensor requested")
                    for sh in shards:
                        loaded[id(sh)] = self._load_tensor(reader, key, saved, sh, torch, CheckpointingException)
            finally:
                reader.close()

            def replace(x):
                return loaded[id(x)] if isinstance(x, ShardedBase) else x

            return dict_list_map_outplace(replace, sharded_state_dict)

        @staticmethod
        def _load_tensor(reader, key, saved, sh, torch, CheckpointingException):
            _reject_flattened(sh)
            if not sh.allow_shape_mismatch and tuple(saved.size) != tuple(sh.global_shape):
                raise CheckpointingException(f"Global shape mismatch for loaded ({tuple(saved.size)}) and expected "
                                             f"({tuple(sh.global_shape)}) tensor for key {key}")
            box_off, box_size = tuple(sh.global_offset), _chunk_shape(sh)
            dtype = sh.dtype if sh.data is None else sh.data.dtype
            init = torch.zeros if sh.allow_shape_mismatch else torch.empty
            out = init(box_size, dtype=dtype)
            covered = 0
            for chunk in saved.chunks:
                ov = _overlap(box_off, box_size, tuple(chunk.offsets), tuple(chunk.sizes))
                if ov is None:
                    continue
                src = reader.tensor(key, chunk)
                src_idx = tuple(slice(s - o, s - o + n) for (s, n), o in zip(ov, chunk.offsets))
                dst_idx = tuple(slice(s - o, s - o + n) for (s, n), o in zip(ov, box_off))
                out[dst_idx] = src[src_idx].to(dtype)
                covered += int(np.prod([n for _, n in ov]))
            if covered != int(np.prod(box_size)) and not sh.allow_shape_mismatch:
                raise CheckpointingException(f"{key!r}: the checkpoint's chunks cover {covered} of the "
                                             f"{int(np.prod(box_size))} elements at offsets {box_off}")
            out = out.reshape(tuple(sh.local_shape))
            if sh.data is None:
                sh.data = out
                return out
            with torch.no_grad():
                sh.data.detach().copy_(out.reshape(sh.data.shape))
            return sh.data

        def load_tensors_metadata(self, checkpoint_dir: Union[str, Path]):
            """{key: ShardedTensor without data} of every saved tensor (global shape and dtype)."""
            import torch
            from megatron.core.dist_checkpointing.mapping import ShardedTensor

            md_mod, _, _ = _dcp_classes()
            out = {}
            for key, saved in read_metadata(checkpoint_dir).state_dict_metadata.items():
                if isinstance(saved, md_mod.TensorStorageMetadata):
                    out[key] = ShardedTensor.from_rank_offsets(
                        key, torch.empty(tuple(saved.size), dtype=saved.properties.dtype)).without_data()
            return out

        def load_sharded_metadata(self, checkpoint_dir: Union[str, Path]):
            """Tensors (as load_tensors_metadata) and objects (empty ShardedObjects) of the checkpoint."""
            from megatron.core.dist_checkpointing.mapping import ShardedObject

            md_mod, _, _ = _dcp_classes()
            out = {}
            for key, saved in read_metadata(checkpoint_dir).state_dict_metadata.items():
                if isinstance(saved, md_mod.BytesStorageMetadata):
                    obj = ShardedObject.empty_from_unique_key(key)
                    out[obj.unique_key] = obj
            out.update(self.load_tensors_metadata(checkpoint_dir))
            return out

        def remove_sharded_tensors(self, checkpoint_dir, key_prefix):
            raise NotImplementedError("megatron dist_checkpointing.remove_sharded_tensors is not implemented for "
                                      "torch_dist under the shim (megatron_patches.torch_dist_strategy)")

    return ShimTorchDistLoadStrategy


_CLASSES: Dict[str, type] = {}


def __getattr__(name):  # the strategy classes subclass megatron's bases: built on first use
    if name == "ShimTorchDistSaveStrategy":
        return _CLASSES.setdefault(name, _make_save_class())
    if name == "ShimTorchDistLoadStrategy":
        return _CLASSES.setdefault(name, _make_load_class())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ------------------------------------------------------------------------------------------------ the patch
def default_strategy_without_dcp(original):
    """Replacement factory for ``dist_checkpointing.strategies.base.get_default_strategy``.

    ``(SAVE_SHARDED | LOAD_SHARDED, 'torch_dist', 1)`` -> this module's strategies; every other request is looked up
    in megatron's ``default_strategies`` registry (the common ``torch`` strategies register themselves there) without
    the original's first step, importing ``strategies/torch.py``, which needs DCP. Raises megatron's
    CheckpointingException for an unknown (action, backend, version), as the original does.
    """
    def get_default_strategy(action, backend, version):
        from megatron.core.dist_checkpointing.core import CheckpointingException
        from megatron.core.dist_checkpointing.strategies import base

        if (backend, version) == (BACKEND, VERSION):
            if action == base.StrategyAction.SAVE_SHARDED:
                return sys.modules[__name__].ShimTorchDistSaveStrategy()
            if action == base.StrategyAction.LOAD_SHARDED:
                return sys.modules[__name__].ShimTorchDistLoadStrategy()
        try:
            return base.default_strategies[action.value][(backend, version)]
        except KeyError:
            raise CheckpointingException(
                f"Cannot find a default strategy for: {(action.value, backend, version)} (under the shim only "
                f"'torch_dist' v1 sharded strategies are provided, by megatron_patches.torch_dist_strategy)") from None

    get_default_strategy.__doc__ = original.__doc__
    return get_default_strategy


# ------------------------------------------------------------------------------------------------ reading
def load_tensors(checkpoint_dir: Union[str, Path], keys: Optional[List[str]] = None,
                 metadata: Any = None) -> Dict[str, np.ndarray]:
    """Every saved tensor of a ``torch_dist`` checkpoint (or those in `keys`), assembled from its chunks into one
    global numpy array ([global shape], the saved dtype; bfloat16 as float32), under real torch or the shim.
    `metadata`: the directory's ``read_metadata`` result, when already read.

    Raises FileNotFoundError (no ``.metadata``), KeyError (a requested key is absent or not a tensor),
    ValueError (the chunks do not cover a tensor).
    """
    import torch
    md_mod, _, _ = _dcp_classes()
    metadata = read_metadata(checkpoint_dir) if metadata is None else metadata
    tensors = {k: v for k, v in metadata.state_dict_metadata.items() if isinstance(v, md_mod.TensorStorageMetadata)}
    wanted = sorted(tensors) if keys is None else list(keys)
    reader = _ItemReader(Path(checkpoint_dir), metadata)
    out: Dict[str, np.ndarray] = {}
    try:
        for key in wanted:
            if key not in tensors:
                raise KeyError(f"{checkpoint_dir}: no tensor {key!r}")
            saved = tensors[key]
            arr = None
            covered = 0
            for chunk in saved.chunks:
                t = reader.tensor(key, chunk)
                if t.dtype == torch.bfloat16:
                    t = t.float()
                a = t.detach().cpu().numpy()
                if arr is None:
                    arr = np.zeros(tuple(saved.size), dtype=a.dtype)
                arr[tuple(slice(o, o + s) for o, s in zip(chunk.offsets, chunk.sizes))] = a
                covered += a.size
            if arr is None or covered != arr.size:
                raise ValueError(f"{checkpoint_dir}: the chunks of {key!r} cover {covered} of "
                                 f"{int(np.prod(tuple(saved.size)))} elements")
            out[key] = arr
    finally:
        reader.close()
    return out


def parity_checkpoint(checkpoint_dir: Union[str, Path]):
    """A ``torch_dist`` checkpoint directory as a ``parity.checkpoints.Checkpoint`` (format "torch_dist"), for
    ``parity.compare_checkpoints``: one lazily loaded entry per saved tensor (global arrays, see
    ``load_tensors``); ShardedObject blobs are listed as non-tensors ("bytes"). Raises FileNotFoundError when
    `checkpoint_dir` has no ``.metadata``."""
    from parity.checkpoints import Checkpoint, TensorEntry

    md_mod, _, _ = _dcp_classes()
    metadata = read_metadata(checkpoint_dir)
    files = sorted({str(Path(checkpoint_dir) / i.relative_path) for i in metadata.storage_data.values()})
    ckpt = Checkpoint(str(checkpoint_dir), "torch_dist", [str(Path(checkpoint_dir) / METADATA_FILE), *files], {})
    for key, saved in sorted(metadata.state_dict_metadata.items()):
        if not isinstance(saved, md_mod.TensorStorageMetadata):
            ckpt.non_tensors[key] = "bytes"
            continue
        dtype = str(saved.properties.dtype).rpartition(".")[2]
        ckpt.tensors[key] = TensorEntry(
            name=key, dtype=dtype, shape=tuple(int(d) for d in saved.size), source=str(checkpoint_dir),
            load=lambda key=key: load_tensors(checkpoint_dir, [key], metadata)[key])
    return ckpt
