"""``torch.distributed._shard.sharded_tensor.api``: :class:`ShardedTensorBase` and :class:`ShardedTensor`.

A ShardedTensor is a tensor subclass without storage of its own (``Tensor._make_wrapper_subclass``: it reports the
global size, dtype and ``requires_grad``) that holds this rank's :class:`~.shard.Shard` list and the global
:class:`~.metadata.ShardedTensorMetadata` (every rank's shards). What is implemented is what checkpointing uses
(DCP's planners, megatron-core's ``torch_dist`` strategy; semantics learned from torch 2.13):
``ShardedTensor._init_from_local_shards_and_global_metadata`` (built on each rank without communication, checked
as torch checks: the local shards are exactly the shards the metadata places on this rank, each with the
metadata's size, dtype, layout, device, pin_memory and requires_grad and contiguous; shards do not overlap and
cover the tensor), ``metadata()``, ``local_shards()``, ``local_tensor()``, ``is_pinned()``.

Not implemented (NotImplementedError naming the API): constructing from a sharding spec (``ShardedTensor(spec,
*size)``, ``sharded_tensor.empty``/...), ``_init_from_local_shards`` (needs an all-gather of metadata),
``sharding_spec()``, ``gather``, ``reshard``, ``cpu``/``cuda``/``to``, remote shards, and tensor operations on a
ShardedTensor (torch routes them through sharded-op registries and ``__torch_dispatch__``).
"""
from __future__ import annotations

from typing import Any, List, Optional

from ...._unsupported import module_getattr as _module_getattr
from ..sharding_spec._internals import check_tensor, validate_non_overlapping_shards_metadata
from .metadata import ShardedTensorMetadata
from .shard import Shard

__all__ = ["ShardedTensorBase", "ShardedTensor"]


def _torch():
    import shim.torch as torch  # the facade (imported lazily: this module loads while shim.torch initialises)

    return torch


def _not_implemented(api: str):
    raise NotImplementedError(f"torch.distributed._shard.sharded_tensor.{api} is not implemented by the shim (only "
                              f"what checkpointing uses: see shim/torch/distributed/_shard/sharded_tensor/api.py)")


class ShardedTensorBase(_torch().Tensor):
    """Storage-less tensor subclass holding local shards and global metadata (see the module docstring)."""

    _metadata: ShardedTensorMetadata
    _local_shards: List[Shard]

    def __new__(cls, sharding_spec=None, *size, **kwargs):
        _not_implemented(f"{cls.__name__}(sharding_spec, *size) (sharding specs)")

    def __init__(self, *args, **kwargs):
        pass

    @classmethod
    def _from_metadata(cls, sharded_tensor_metadata: ShardedTensorMetadata, local_shards: List[Shard]):
        props = sharded_tensor_metadata.tensor_properties
        r = _torch().Tensor._make_wrapper_subclass(cls, sharded_tensor_metadata.size, dtype=props.dtype,
                                                   layout=props.layout, pin_memory=props.pin_memory,
                                                   requires_grad=props.requires_grad)
        r._metadata = sharded_tensor_metadata
        r._local_shards = local_shards
        r._sharding_spec = None
        return r

    def metadata(self) -> ShardedTensorMetadata:
        """The global :class:`ShardedTensorMetadata`."""
        return self._metadata

    def local_shards(self) -> List[Shard]:
        """This rank's shards (possibly empty)."""
        return self._local_shards

    def sharding_spec(self):
        _not_implemented("ShardedTensor.sharding_spec")

    def is_pinned(self) -> bool:
        """``pin_memory`` of the tensor properties."""
        return bool(self._metadata.tensor_properties.pin_memory)

    def local_tensor(self):
        """The tensor of this rank's only shard. NotImplementedError with more or fewer than one local shard (as
        torch)."""
        if len(self._local_shards) != 1:
            raise NotImplementedError("Only single local shard is supported.")
        return self._local_shards[0].tensor

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        raise RuntimeError(f"A {cls.__name__} object is being used while calling {func}, but there is no custom "
                           f"__torch_dispatch__ implementation for it")

    def __hash__(self) -> int:
        return id(self)

    def __repr__(self) -> str:
        return f"ShardedTensor({self._metadata})"

    def gather(self, *args, **kwargs):
        _not_implemented("ShardedTensor.gather")

    def reshard(self, *args, **kwargs):
        _not_implemented("ShardedTensor.reshard")

    def cpu(self, *args, **kwargs):
        _not_implemented("ShardedTensor.cpu")

    def cuda(self, *args, **kwargs):
        _not_implemented("ShardedTensor.cuda")

    def to(self, *args, **kwargs):
        _not_implemented("ShardedTensor.to")

    def remote_shards(self):
        _not_implemented("ShardedTensor.remote_shards")

    def __reduce_ex__(self, proto):
        _not_implemented("ShardedTensor pickling (torch.save of a ShardedTensor)")


def _check_properties(shard: Shard, props, rank: int) -> None:
    """torch's per-shard checks of `_init_from_local_shards_and_global_metadata` (ValueError on a mismatch)."""
    tensor, placement = shard.tensor, shard.metadata.placement
    if placement is None:
        raise AssertionError("Must specify placement for `Shard`!")

    def same(expected, actual, name, is_property):
        if expected != actual:
            what = "tensor property" if is_property else "local ShardMetadata"
            raise ValueError(f"Local shards' tensor {name} property is incompatible with {what} on rank "
                             f"{placement.rank()}: {what} {name}={expected}, local shard tensor {name}={actual}.")

    same(props.layout, tensor.layout, "layout", True)
    if not tensor.is_contiguous():
        raise ValueError("Only torch.contiguous_format memory_format is currently supported")
    same(list(shard.metadata.shard_sizes), list(tensor.size()), "size", False)
    same(bool(props.pin_memory), bool(tensor.is_pinned()), "pin_memory", True)
    same(placement.device(), tensor.device, "device", False)
    same(props.dtype, tensor.dtype, "dtype", True)
    same(bool(props.requires_grad), bool(tensor.requires_grad), "requires_grad", True)


class ShardedTensor(ShardedTensorBase):
    """torch's ShardedTensor, built with :meth:`_init_from_local_shards_and_global_metadata` (module docstring)."""

    @classmethod
    def _init_from_local_shards_and_global_metadata(cls, local_shards: List[Shard],
                                                    sharded_tensor_metadata: ShardedTensorMetadata,
                                                    process_group: Any = None, init_rrefs: bool = False,
                                                    sharding_spec: Optional[Any] = None) -> "ShardedTensor":
        """A ShardedTensor from this rank's `local_shards` and the global `sharded_tensor_metadata`, without
        communication (every rank passes the same metadata; not checked across ranks, as in torch).

        process_group: the group whose ranks the placements name (None: the default group; the placements' ranks
        are global ranks). Raises RuntimeError when the number of local shards differs from the shards the
        metadata places on this rank, ValueError for an empty metadata, a non-strided layout, a local shard that
        does not match the metadata (size, dtype, layout, device, pin_memory, requires_grad, non-contiguous),
        overlapping shards, or shards that do not cover the global size; ValueError when a placement's rank is
        outside the group. ``init_rrefs`` True, a `sharding_spec` and placements by worker name (RPC) raise
        NotImplementedError.
        """
        if init_rrefs:
            _not_implemented("ShardedTensor(init_rrefs=True) (RPC)")
        if sharding_spec is not None:
            _not_implemented("ShardedTensor._init_from_local_shards_and_global_metadata(sharding_spec=...)")
        dist = _torch().distributed
        rank = dist.get_rank()  # the global rank, as torch compares it with the placements
        shards_md = sharded_tensor_metadata.shards_metadata
        props = sharded_tensor_metadata.tensor_properties
        group_ranks = dist.get_process_group_ranks(process_group)
        mine = 0
        for md in shards_md:
            placement = md.placement
            if placement is None:
                raise ValueError("remote device is None")
            if placement.rank() is None:
                _not_implemented(f"ShardedTensor placement {placement!r} by worker name (RPC)")
            if placement.rank() not in group_ranks:
                raise ValueError(f"Global rank {placement.rank()} does not exist in input process group: "
                                 f"{group_ranks}")
            mine += placement.rank() == rank
        if len(local_shards) != mine:
            raise RuntimeError(f"Number of local shards ({len(local_shards)}) does not match number of local shards "
                               f"metadata in sharded_tensor_metadata ({mine}) on rank ({rank}) ")
        if not shards_md:
            raise ValueError("shards_metadata must not be empty!")
        if props.layout != _torch().strided:
            raise ValueError("Only torch.strided layout is currently supported")
        for shard in local_shards:
            _check_properties(shard, props, rank)
        validate_non_overlapping_shards_metadata(shards_md)
        check_tensor(shards_md, list(sharded_tensor_metadata.size))
        return cls._from_metadata(sharded_tensor_metadata, local_shards)

    @classmethod
    def _init_from_local_shards(cls, *args, **kwargs):
        _not_implemented("ShardedTensor._init_from_local_shards (gathers metadata over the group)")


__getattr__ = _module_getattr("torch.distributed._shard.sharded_tensor.api")
