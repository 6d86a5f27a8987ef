"""``torch.distributed.checkpoint.default_planner``: torch's default save and load planners and the global step
of save planning.

:class:`DefaultSavePlanner`/:class:`DefaultLoadPlanner`: see their docstrings (torch 2.13's constructors; what
differs from torch is said there). :func:`create_default_global_save_plan` (torch 2.13's name, arguments and
result) turns every rank's ``SavePlan`` into the checkpoint's ``Metadata``: one ``TensorStorageMetadata`` per tensor
key (properties and global size from its first write item, the chunks of all ranks in rank order) and one
``BytesStorageMetadata`` per byte-blob key. Like torch's it does not check that the ranks agree on a tensor's size
and dtype (a caller that can disagree checks, as megatron_patches' torch_dist strategy does).
"""
from __future__ import annotations

import dataclasses
import io
from typing import Optional

from ..._unsupported import module_getattr as _module_getattr
from . import _nested_dict, _traverse, planner_helpers, utils
from .metadata import BytesStorageMetadata, Metadata, MetadataIndex, TensorStorageMetadata
from .planner import LoadPlan, LoadPlanner, ReadItem, SavePlan, SavePlanner, WriteItem, WriteItemType

__all__ = ["DefaultSavePlanner", "DefaultLoadPlanner", "create_default_global_save_plan"]


def _torch():
    import shim.torch as torch  # the facade's namespace, looked up at call time as metadata.py does

    return torch


def _is_tensor(value) -> bool:
    return isinstance(value, _torch().Tensor)


class DefaultSavePlanner(SavePlanner):
    """torch's default save planner: every tensor of the (flattened) state dict is one TENSOR item, every other
    value one BYTE_IO item (``torch.save`` of it).

    ``flatten_state_dict`` (default True): nested dicts/lists are flattened to dotted keys (``_nested_dict``) and the
    mapping is stored in ``Metadata.planner_data`` as torch does. ``dedup_replicated_tensors`` (deprecated in torch)
    is accepted and ignored as in torch; replicated items (the same ``MetadataIndex`` planned by several ranks) are
    always written by one rank: the lowest (torch balances them by size unless ``dedup_save_to_lowest_rank``; the
    checkpoint reads the same either way). ``flatten_sharded_tensors`` is accepted; values may be tensors,
    ``torch.distributed._shard`` ShardedTensors (one SHARD item per local shard) or objects with torch's
    ``__create_write_items__``/``__get_tensor_shard__`` protocol (megatron-core's ``CheckpointableShardedTensor``);
    ShardedTensors nested in ShardedTensors (what torch's flattening handles) are not supported.
    ``enable_plan_caching`` True raises NotImplementedError.
    """

    def __init__(self, flatten_state_dict: bool = True, flatten_sharded_tensors: bool = True,
                 dedup_replicated_tensors: Optional[bool] = None, dedup_save_to_lowest_rank: bool = False,
                 enable_plan_caching: bool = False) -> None:
        if enable_plan_caching:
            raise NotImplementedError("torch.distributed.checkpoint.DefaultSavePlanner(enable_plan_caching=True) is "
                                      "not implemented by the shim")
        self.flatten_state_dict, self.flatten_sharded_tensors = flatten_state_dict, flatten_sharded_tensors
        self.dedup_save_to_lowest_rank = dedup_save_to_lowest_rank
        self.mappings: dict = {}

    def set_up_planner(self, state_dict: dict, storage_meta=None, is_coordinator: bool = False) -> None:
        if not isinstance(state_dict, dict):
            raise TypeError(f"DefaultSavePlanner: state_dict must be a dict, got {type(state_dict).__name__}")
        if self.flatten_state_dict:
            state_dict, self.mappings = _nested_dict.flatten_state_dict(state_dict)
        self.state_dict, self.storage_meta, self.is_coordinator = state_dict, storage_meta, is_coordinator

    def create_local_plan(self) -> SavePlan:
        items = [item for fqn, value in self.state_dict.items()
                 for item in planner_helpers._create_write_items(fqn, value)]
        plan = SavePlan(items, planner_data=self.mappings if self.flatten_state_dict else None)
        self.plan = plan
        return plan

    def create_global_plan(self, all_plans: list) -> tuple:
        seen: set = set()
        deduped = []
        for plan in all_plans:  # rank order: the lowest rank keeps a replicated item
            keep = []
            for item in plan.items:
                if item.index in seen:
                    continue
                seen.add(item.index)
                keep.append(item)
            deduped.append(dataclasses.replace(plan, items=keep))
        plans, metadata = create_default_global_save_plan(deduped)
        if self.flatten_state_dict:
            merged: dict = {}
            for plan in plans:
                merged.update(plan.planner_data or {})
            metadata = dataclasses.replace(metadata, planner_data=merged)
        self.global_plan, self.metadata = plans, metadata
        return plans, metadata

    def finish_plan(self, new_plan: SavePlan) -> SavePlan:
        self.plan = new_plan
        return new_plan

    def resolve_data(self, write_item: WriteItem):
        """The item's data: ``transform_object(write_item, lookup_object(index))`` (torch's extension points)."""
        return self.transform_object(write_item, self.lookup_object(write_item.index))

    def lookup_object(self, index: MetadataIndex):
        """The object item `index` names in the state dict (``utils.find_state_dict_object``: a ShardedTensor's
        local shard, an object's ``__get_tensor_shard__``, a tensor, a value). Raises ValueError naming the key."""
        return utils.find_state_dict_object(self.state_dict, index)

    def transform_object(self, write_item: WriteItem, obj):
        """A byte item's object becomes an ``io.BytesIO`` holding ``torch.save(obj)``; a tensor is detached."""
        if write_item.type == WriteItemType.BYTE_IO:
            buf = io.BytesIO()
            _torch().save(obj, buf)
            buf.seek(0)
            return buf
        return obj.detach()


class DefaultLoadPlanner(LoadPlanner):
    """torch's default load planner: fills the tensors of the (flattened) state dict in place from the
    checkpoint's chunks (resharding: each tensor's whole box is assembled from every saved chunk overlapping it,
    ``planner_helpers.create_read_items_for_chunk_list``) and replaces every other value with the saved object.

    ``allow_partial_load`` False (default): a state-dict key missing from the checkpoint raises RuntimeError
    (torch's text); True: such keys keep their value. A tensor whose shape differs from the saved size raises
    ValueError. Each value is filled in the chunks it holds (``planner_helpers._create_read_items``): a tensor its
    whole box, a ShardedTensor its local shards, an object with ``__create_chunk_list__``/``__get_tensor_shard__``
    (megatron-core's ``CheckpointableShardedTensor``) its chunks. ``flatten_sharded_tensors`` is accepted.

    Emulated: torch's ``resolve_tensor`` returns a view of the destination that the reader fills in place; here it
    returns a detached copy of the box and ``commit_tensor`` writes it back into the destination (the facade's
    slices are not guaranteed to share storage).
    """

    def __init__(self, flatten_state_dict: bool = True, flatten_sharded_tensors: bool = True,
                 allow_partial_load: bool = False) -> None:
        self.flatten_state_dict, self.flatten_sharded_tensors = flatten_state_dict, flatten_sharded_tensors
        self.allow_partial_load = allow_partial_load
        self.original_state_dict: dict = {}
        self.mappings: dict = {}

    def set_up_planner(self, state_dict: dict, metadata: Optional[Metadata] = None,
                       is_coordinator: bool = False) -> None:
        if not isinstance(state_dict, dict):
            raise TypeError(f"DefaultLoadPlanner: state_dict must be a dict, got {type(state_dict).__name__}")
        if metadata is None:
            raise ValueError("DefaultLoadPlanner.set_up_planner: metadata (the checkpoint's Metadata) is required")
        self.original_state_dict = state_dict
        if self.flatten_state_dict:
            state_dict, self.mappings = _nested_dict.flatten_state_dict(state_dict)
        self.state_dict, self.metadata, self.is_coordinator = state_dict, metadata, is_coordinator

    def create_local_plan(self) -> LoadPlan:
        items = []
        for fqn, value in self.state_dict.items():
            md = self.metadata.state_dict_metadata.get(fqn)
            if md is None:
                if self.allow_partial_load:
                    continue
                raise RuntimeError(f"Missing key in checkpoint state_dict: {fqn}.")
            if isinstance(md, TensorStorageMetadata):
                if not _is_tensor(value):
                    raise TypeError(f"DefaultLoadPlanner: {fqn!r} is a saved tensor but the state dict holds "
                                    f"{type(value).__name__}")
                if tuple(md.size) != tuple(value.size()):
                    raise ValueError(f"Size mismatch between saved {tuple(md.size)} and current: "
                                     f"{tuple(value.size())} for {fqn}")
            items.extend(planner_helpers._create_read_items(fqn, md, value))
        self.plan = LoadPlan(items)
        return self.plan

    def create_global_plan(self, global_plan: list) -> list:
        return global_plan

    def finish_plan(self, central_plan: LoadPlan) -> LoadPlan:
        return central_plan

    def _set(self, fqn: str, value) -> None:
        self.state_dict[fqn] = value
        if self.flatten_state_dict:
            _traverse.set_element(self.original_state_dict, self.mappings[fqn], value)
        else:
            self.original_state_dict[fqn] = value

    def load_bytes(self, read_item: ReadItem, value: io.BytesIO) -> None:
        """The saved object (``torch.load(weights_only=False)``: only load checkpoints you trust, as in torch)
        replaces the state dict's value."""
        self._set(read_item.dest_index.fqn, _torch().load(value, weights_only=False))

    def _box(self, read_item: ReadItem) -> tuple:
        return tuple(slice(int(o), int(o) + int(n)) for o, n in zip(read_item.dest_offsets, read_item.lengths))

    def resolve_tensor(self, read_item: ReadItem):
        """``transform_tensor(read_item, lookup_tensor(dest_index))``: a copy of the destination's box."""
        return self.transform_tensor(read_item, self.lookup_tensor(read_item.dest_index))

    def lookup_tensor(self, index: MetadataIndex):
        """The tensor item `index` names in the state dict (``utils.find_state_dict_object``: a plain tensor, a
        ShardedTensor's local shard, an object's ``__get_tensor_shard__``). Raises ValueError naming the key."""
        return utils.find_state_dict_object(self.state_dict, index)

    def transform_tensor(self, read_item: ReadItem, tensor):
        """The box ``dest_offsets``/``lengths`` of `tensor`, detached and copied (see the class docstring)."""
        return tensor.detach()[self._box(read_item)].clone()

    def commit_tensor(self, read_item: ReadItem, tensor) -> None:
        """Writes the filled box back into the destination tensor (cast to its dtype)."""
        dest = self.lookup_tensor(read_item.dest_index)
        with _torch().no_grad():
            if dest.dim() == 0:
                dest.copy_(tensor.to(dest.dtype))
            else:
                dest[self._box(read_item)] = tensor.to(dest.dtype)


def create_default_global_save_plan(all_plans: list, rewrite_index_hints: bool = True) -> tuple:
    """``(plans, Metadata)`` from every rank's ``SavePlan`` (see the module docstring). With `rewrite_index_hints`
    each SHARD item's ``MetadataIndex.index`` becomes the position of its chunk in the key's chunk list (returned
    in new plans; the inputs are not modified). ``Metadata.storage_data`` is left None (the storage writer fills it
    from the write results).

    Raises:
        ValueError: a byte-blob key written twice, or a key written both as a blob and as a tensor; a SHARD item
            without ``tensor_data``.
    """
    state_dict_metadata: dict = {}
    new_plans = []
    for plan in all_plans:
        new_items = []
        for item in plan.items:
            fqn = item.index.fqn
            known = state_dict_metadata.get(fqn)
            if item.type == WriteItemType.BYTE_IO:
                if known is not None:
                    raise ValueError(f"create_default_global_save_plan: {fqn!r} is written twice (once as bytes)")
                state_dict_metadata[fqn] = BytesStorageMetadata()
                new_items.append(item)
                continue
            if item.tensor_data is None:
                raise ValueError(f"create_default_global_save_plan: tensor item {fqn!r} has no tensor_data")
            if known is None:
                known = state_dict_metadata[fqn] = TensorStorageMetadata(
                    properties=item.tensor_data.properties, size=item.tensor_data.size, chunks=[])
            elif not isinstance(known, TensorStorageMetadata):
                raise ValueError(f"create_default_global_save_plan: {fqn!r} is written as bytes and as a tensor")
            if rewrite_index_hints:
                item = dataclasses.replace(item, index=dataclasses.replace(item.index, index=len(known.chunks)))
            known.chunks.append(item.tensor_data.chunk)
            new_items.append(item)
        new_plans.append(dataclasses.replace(plan, items=new_items))
    return new_plans, Metadata(state_dict_metadata=state_dict_metadata)


__getattr__ = _module_getattr("torch.distributed.checkpoint.default_planner")
