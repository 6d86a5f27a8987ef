"""The patch ``torch_dist_strategies_without_dcp``: megatron-core's ``torch_dist`` v1 strategies over the facade's DCP
format code.

megatron-core 0.16.1 writes ``dist_checkpointing`` checkpoints in the ``torch_dist`` format through PyTorch's DCP
machinery (``megatron/core/dist_checkpointing/strategies/torch.py``: planners, ``ShardedTensor`` wrappers, the
``FileSystemWriterAsync`` writer), which the facade does not provide yet. The patch (registered in
megatron_patches/patches.py) serves megatron's default ``torch_dist`` v1 save/load strategies with the two classes
here. They hold only megatron's layer of the format; the files themselves (``__<rank>_0.distcp`` data files, the
pickled ``.metadata``, resharding on load) are written and read by the facade, ``shim/torch/distributed/checkpoint/``
(``filesystem`` documents the layout), so real torch (megatron's own loader) reads these checkpoints and these
strategies read real torch's.

Megatron's layer (learned from megatron-core 0.16.1's ``strategies/torch.py``):
- every ``ShardedTensor`` is one chunk item keyed ``ShardedTensor.key`` at ``global_offset``; its saved shape is
  ``(1,) * prepend_axis_num + local_shape``; only main replicas (``replica_id`` all zero) are written
  (megatron's ``keep_only_main_replica=True``);
- the ``ShardedObject``s of one ``unique_key`` on a rank are one byte item, the bytes of ``torch.save([obj.data,
  ...])`` (megatron's ``_mcore_to_torch_sharded_object``);
- ``.metadata`` carries megatron's extra attribute ``all_local_plans`` (each rank's ``SavePlan``).
``metadata.json`` and ``common.pt`` are written by megatron-core itself (``serialization.save``, common strategy).
``ShardedTensor``s with a ``flattened_range`` (megatron's legacy flattened optimizer layouts) raise
NotImplementedError naming them.

These strategies run under the shim only (megatron's tensors are facade tensors): the module imports the facade as
``shim.torch``, which is what ``import torch`` returns there.
"""
from __future__ import annotations

import io
import uuid
from pathlib import Path
from typing import Any, Dict, List, Union

from megatron.core.dist_checkpointing.core import CheckpointingException
from megatron.core.dist_checkpointing.dict_utils import dict_list_map_outplace, nested_values
from megatron.core.dist_checkpointing.mapping import ShardedBase, ShardedObject, ShardedTensor, is_main_replica
from megatron.core.dist_checkpointing.strategies import base as strategies_base
from megatron.core.dist_checkpointing.strategies.base import LoadShardedStrategy, SaveShardedStrategy

import shim.torch as torch
import shim.torch.distributed as dist
from shim.torch.distributed.checkpoint import default_planner, filesystem, metadata, planner, planner_helpers

__all__ = ["ShimTorchDistSaveStrategy", "ShimTorchDistLoadStrategy", "default_strategy_without_dcp", "DCP_VERSION"]

DCP_VERSION = "1.0.0"  # torch 2.13's CURRENT_DCP_VERSION, written into .metadata
BACKEND, VERSION = "torch_dist", 1


def _group_by_key(sharded_state_dict, main_replicas_only: bool) -> Dict[str, list]:
    """{storage key: [ShardedTensor | ShardedObject, ...]} in traversal order; the key is ``ShardedTensor.key`` or
    ``ShardedObject.unique_key`` (megatron's ``_replace_state_dict_keys_with_sharded_keys``)."""
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


def _check_plans_agree(plans: List[Any]) -> None:
    """Raise CheckpointingException when two ranks save one key inconsistently (a blob twice, a blob and a tensor,
    or a tensor with different global shapes or dtypes)."""
    seen: Dict[str, Any] = {}
    for rank, plan in enumerate(plans):
        for item in plan.items:
            key, prev = item.index.fqn, seen.get(item.index.fqn)
            if item.type == planner.WriteItemType.BYTE_IO:
                if prev is not None:
                    raise CheckpointingException(f"torch_dist save: object key {key!r} saved twice (rank {rank})")
                seen[key] = "bytes"
                continue
            desc = (tuple(item.tensor_data.size), item.tensor_data.properties.dtype)
            if prev is None:
                seen[key] = desc
            elif prev != desc:
                raise CheckpointingException(
                    f"torch_dist save: key {key!r}: rank {rank} saves global shape {desc[0]} {desc[1]}, another "
                    f"rank {'an object' if prev == 'bytes' else f'{prev[0]} {prev[1]}'}")


class ShimTorchDistSaveStrategy(SaveShardedStrategy):
    """Save strategy for megatron's ``torch_dist`` v1 format over the facade's DCP writer (format: module docstring).

    ``save(sharded_state_dict, checkpoint_dir)`` is collective: every rank writes ``__<rank>_0.distcp``, the ranks
    exchange their plans and write results (``torch.distributed.all_gather_object``) and rank 0 writes
    ``.metadata``. Raises CheckpointingException for a ShardedTensor without data or inconsistent global shapes/
    dtypes of one key across ranks, NotImplementedError for flattened ShardedTensors.
    """

    def __init__(self, backend: str = BACKEND, version: int = VERSION):
        super().__init__(backend, version)

    @property
    def can_handle_sharded_objects(self):
        return True

    def save(self, sharded_state_dict, checkpoint_dir: Union[str, Path]) -> None:
        checkpoint_dir = Path(checkpoint_dir)
        rank = dist.get_rank() if dist.is_initialized() else 0
        items: List[tuple] = []  # (WriteItem, data) in traversal order
        for key, shards in _group_by_key(sharded_state_dict, main_replicas_only=True).items():
            if isinstance(shards[0], ShardedObject):
                buf = io.BytesIO()
                torch.save([s.data for s in shards], buf)
                items.append((planner_helpers._create_write_item_for_bytesio(key), buf.getvalue()))
                continue
            for i, sh in enumerate(shards):
                _reject_flattened(sh)
                if sh.data is None:
                    raise CheckpointingException(f"`data` attr is None for {sh}")
                data = sh.data.detach().reshape(_chunk_shape(sh))
                items.append((planner_helpers._create_write_item_for_chunk(
                    key, data, sh.global_offset, sh.global_shape, i if len(shards) > 1 else None), data))
        results = filesystem._write_data_file(checkpoint_dir, f"__{rank}_0{filesystem.DEFAULT_SUFFIX}", items)
        local = (planner.SavePlan(items=[item for item, _ in items], storage_data=None, planner_data={},
                                  usable=True), results)
        if dist.is_initialized() and dist.get_world_size() > 1:
            gathered: List[Any] = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, local)
        else:
            gathered = [local]
        if rank == 0:
            plans = [plan for plan, _ in gathered]
            _check_plans_agree(plans)
            _, md = default_planner.create_default_global_save_plan(plans, rewrite_index_hints=False)
            md.storage_meta = metadata.StorageMeta(checkpoint_id=str(checkpoint_dir), save_id=str(uuid.uuid4()),
                                                   load_id=None, modules=[])
            md.version = DCP_VERSION
            md.all_local_plans = plans  # megatron-core's addition (state_dict_saver.save_state_dict_async_plan)
            filesystem._write_metadata(checkpoint_dir, md, [rank_results for _, rank_results in gathered])


class ShimTorchDistLoadStrategy(LoadShardedStrategy):
    """Load strategy for megatron's ``torch_dist`` v1 format over the facade's DCP reader (format: module docstring).

    ``load(sharded_state_dict, checkpoint_dir)`` fills every ShardedTensor's box from the overlapping saved chunks
    (in place into ``data`` when given, else a new tensor; another tensor-parallel layout loads too: resharding) and
    every ShardedObject from its blob, and returns the state dict with the Sharded* values replaced. Raises
    CheckpointingException for a key missing from the checkpoint, a global shape mismatch (unless
    ``allow_shape_mismatch``) or a box the saved chunks do not cover; NotImplementedError for flattened
    ShardedTensors.
    """

    @property
    def can_handle_sharded_objects(self):
        return True

    def check_backend_compatibility(self, loaded_backend):
        if loaded_backend != BACKEND:
            raise CheckpointingException(f"the shim's torch_dist strategy cannot load backend {loaded_backend!r}")

    def check_version_compatibility(self, loaded_version):
        if loaded_version != VERSION:
            raise CheckpointingException(f"the shim's torch_dist strategy reads version {VERSION}, not "
                                         f"{loaded_version!r}")

    def load(self, sharded_state_dict, checkpoint_dir: Union[str, Path]):
        md = filesystem._read_metadata(checkpoint_dir)
        loaded: Dict[int, Any] = {}
        with filesystem._ItemReader(checkpoint_dir, md) as reader:
            for key, shards in _group_by_key(sharded_state_dict, main_replicas_only=False).items():
                saved = md.state_dict_metadata.get(key)
                if saved is None:
                    raise CheckpointingException(f"{key!r} from the model is not in checkpoint {checkpoint_dir}")
                if isinstance(shards[0], ShardedObject):
                    if not isinstance(saved, metadata.BytesStorageMetadata):
                        raise CheckpointingException(f"{key!r}: a tensor in {checkpoint_dir}, an object requested")
                    objs = reader.read_object(metadata.MetadataIndex(key))
                    if len(objs) != len(shards):
                        raise CheckpointingException(f"{key!r}: {len(objs)} object(s) saved, {len(shards)} requested")
                    for sh, obj in zip(shards, objs):
                        loaded[id(sh)] = obj
                    continue
                if not isinstance(saved, metadata.TensorStorageMetadata):
                    raise CheckpointingException(f"{key!r}: an object in {checkpoint_dir}, a tensor requested")
                for sh in shards:
                    loaded[id(sh)] = self._load_tensor(reader, key, saved, sh)

        def replace(x):
            return loaded[id(x)] if isinstance(x, ShardedBase) else x

        return dict_list_map_outplace(replace, sharded_state_dict)

    @staticmethod
    def _load_tensor(reader, key, saved, sh):
        _reject_flattened(sh)
        if not sh.allow_shape_mismatch and tuple(saved.size) != tuple(sh.global_shape):
            raise CheckpointingException(f"Global shape mismatch for loaded ({tuple(saved.size)}) and expected "
                                         f"({tuple(sh.global_shape)}) tensor for key {key}")
        box_off, box_size = tuple(sh.global_offset), _chunk_shape(sh)
        dtype = sh.dtype if sh.data is None else sh.data.dtype
        out = (torch.zeros if sh.allow_shape_mismatch else torch.empty)(box_size, dtype=dtype)
        covered = filesystem._read_box(reader, key, saved, box_off, out)
        if covered != out.numel() and not sh.allow_shape_mismatch:
            raise CheckpointingException(f"{key!r}: the checkpoint's chunks cover {covered} of the "
                                         f"{out.numel()} elements at offsets {box_off}")
        out = out.reshape(tuple(sh.local_shape))
        if sh.data is None:
            sh.data = out
            return out
        with torch.no_grad():
            sh.data.detach().copy_(out.reshape(sh.data.shape))
        return sh.data

    def load_tensors_metadata(self, checkpoint_dir: Union[str, Path]):
        """{key: ShardedTensor without data} of every saved tensor (global shape and dtype)."""
        out = {}
        for key, saved in filesystem._read_metadata(checkpoint_dir).state_dict_metadata.items():
            if isinstance(saved, metadata.TensorStorageMetadata):
                out[key] = ShardedTensor.from_rank_offsets(
                    key, torch.empty(tuple(saved.size), dtype=saved.properties.dtype)).without_data()
        return out

    def load_sharded_metadata(self, checkpoint_dir: Union[str, Path]):
        """Tensors (as load_tensors_metadata) and objects (empty ShardedObjects) of the checkpoint."""
        out = {}
        for key, saved in filesystem._read_metadata(checkpoint_dir).state_dict_metadata.items():
            if isinstance(saved, metadata.BytesStorageMetadata):
                obj = ShardedObject.empty_from_unique_key(key)
                out[obj.unique_key] = obj
        out.update(self.load_tensors_metadata(checkpoint_dir))
        return out

    def remove_sharded_tensors(self, checkpoint_dir, key_prefix):
        raise NotImplementedError("megatron dist_checkpointing.remove_sharded_tensors is not implemented for "
                                  "torch_dist under the shim (megatron_patches.torch_dist_strategy)")


def default_strategy_without_dcp(original):
    """Replacement factory for ``dist_checkpointing.strategies.base.get_default_strategy``.

    ``(SAVE_SHARDED | LOAD_SHARDED, 'torch_dist', 1)`` -> this module's strategies; every other request is looked up
    in megatron's ``default_strategies`` registry (the common ``torch`` strategies register themselves there) without
    the original's first step, importing ``strategies/torch.py``, which needs DCP. Raises megatron's
    CheckpointingException for an unknown (action, backend, version), as the original does.
    """
    def get_default_strategy(action, backend, version):
        if (backend, version) == (BACKEND, VERSION):
            if action == strategies_base.StrategyAction.SAVE_SHARDED:
                return ShimTorchDistSaveStrategy()
            if action == strategies_base.StrategyAction.LOAD_SHARDED:
                return ShimTorchDistLoadStrategy()
        try:
            return strategies_base.default_strategies[action.value][(backend, version)]
        except KeyError:
            raise CheckpointingException(
                f"Cannot find a default strategy for: {(action.value, backend, version)} (under the shim only "
                f"'torch_dist' v1 sharded strategies are provided, by megatron_patches.torch_dist_strategy)") from None

    get_default_strategy.__doc__ = original.__doc__
    return get_default_strategy
