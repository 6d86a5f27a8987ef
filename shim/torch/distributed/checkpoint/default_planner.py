"""``torch.distributed.checkpoint.default_planner``: the global step of save planning; the planner classes are names
only.

:func:`create_default_global_save_plan` (torch 2.13's name, arguments and result) turns every rank's ``SavePlan``
into the checkpoint's ``Metadata``: one ``TensorStorageMetadata`` per tensor key (properties and global size from
its first write item, the chunks of all ranks in rank order) and one ``BytesStorageMetadata`` per byte-blob key.
Like torch's it does not check that the ranks agree on a tensor's size and dtype (a caller that can disagree
checks, as megatron_patches' torch_dist strategy does).

``DefaultSavePlanner``/``DefaultLoadPlanner`` exist as names (``import megatron.core.optimizer`` needs them at
module level); constructing one raises ``NotImplementedError`` naming it.
"""
from __future__ import annotations

import dataclasses

from ..._unsupported import module_getattr as _module_getattr
from .metadata import BytesStorageMetadata, Metadata, TensorStorageMetadata
from .planner import WriteItemType

__all__ = ["DefaultSavePlanner", "DefaultLoadPlanner", "create_default_global_save_plan"]


class _NotImplementedPlanner:
    def __init__(self, *args, **kwargs) -> None:
        raise NotImplementedError(f"torch.distributed.checkpoint.default_planner.{type(self).__name__} is not "
                                  f"implemented by the shim (no torch.distributed.checkpoint support)")


class DefaultSavePlanner(_NotImplementedPlanner):
    """torch's default DCP save planner: constructing it raises ``NotImplementedError``."""


class DefaultLoadPlanner(_NotImplementedPlanner):
    """torch's default DCP load planner: constructing it raises ``NotImplementedError``."""


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
