"""``torch.distributed.checkpoint.utils``: the rank-collective steps of a DCP save/load.

:class:`_DistWrapper` (torch 2.13's private name, constructor and methods; megatron-core's async
``state_dict_saver`` builds on it) runs a step on every rank and gathers the results on a coordinator rank over the
facade's object collectives (``torch.distributed.gather_object``, ``broadcast_object_list``,
``scatter_object_list``, ``all_gather_object``, ``barrier``). Without a process group (``use_dist=False``) it is the
one-rank case: collectives return the local value. Failures are exception-robust as in torch: an exception on any
rank is wrapped (``api._wrap_exception``), gathered, and raised on every rank as one ``CheckpointException``
naming the step.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

from ..._unsupported import module_getattr as _module_getattr
from .api import CheckpointException, _is_wrapped_exception, _wrap_exception

__all__ = ["find_tensor_shard", "find_state_dict_object"]


def _get_failure_dict(results: list) -> dict:
    """``{rank: wrapped exception}`` for the entries of `results` (one per rank) that are wrapped exceptions."""
    return {rank: r for rank, r in enumerate(results) if _is_wrapped_exception(r)}


def _dist():
    from ... import distributed  # the facade's torch.distributed, at call time

    return distributed


class _DistWrapper:
    """Object collectives over `group` (None: the default group) with `coordinator_rank` (a rank of `group`)
    gathering; with ``use_dist=False`` every collective is the one-rank identity and this process is the
    coordinator."""

    def __init__(self, group, use_dist: bool, coordinator_rank: int):
        self.group, self.use_dist, self.coordinator_rank = group, use_dist, coordinator_rank
        if use_dist:
            dist = _dist()
            self.global_coordinator_rank = (dist.get_global_rank(group, coordinator_rank) if group is not None
                                            else coordinator_rank)
            self.rank = dist.get_rank(group)
            self.is_coordinator = self.rank == coordinator_rank
        else:
            self.global_coordinator_rank, self.rank, self.is_coordinator = 0, 0, True

    def get_rank(self) -> int:
        return self.rank

    def get_world_size(self) -> int:
        return _dist().get_world_size(self.group) if self.use_dist else 1

    def broadcast_object(self, obj: Any) -> Any:
        """The coordinator's `obj` on every rank."""
        if not self.use_dist:
            return obj
        box = [obj]
        _dist().broadcast_object_list(box, src=self.global_coordinator_rank, group=self.group)
        return box[0]

    def gather_object(self, obj: Any) -> Optional[list]:
        """Every rank's `obj` in rank order on the coordinator; None elsewhere."""
        if not self.use_dist:
            return [obj]
        out = [None] * self.get_world_size() if self.is_coordinator else None
        _dist().gather_object(obj, out, dst=self.global_coordinator_rank, group=self.group)
        return out

    def all_gather_object(self, obj: Any) -> list:
        """Every rank's `obj` in rank order, on every rank."""
        if not self.use_dist:
            return [obj]
        out = [None] * self.get_world_size()
        _dist().all_gather_object(out, obj, group=self.group)
        return out

    def scatter_object(self, object_list: Optional[list]) -> Any:
        """Entry ``rank`` of the coordinator's `object_list` on each rank."""
        if not self.use_dist:
            if object_list is None:
                raise ValueError("_DistWrapper.scatter_object: object_list is None on the coordinator")
            return object_list[0]
        out = [None]
        _dist().scatter_object_list(out, object_list if self.is_coordinator else None,
                                    src=self.global_coordinator_rank, group=self.group)
        return out[0]

    def _gather_local(self, map_fun: Callable[[], Any]) -> Optional[list]:
        try:
            local = map_fun()
        except BaseException as e:  # noqa: B036 - every rank must reach the collective, as in torch
            local = _wrap_exception(e)
        return self.gather_object(local)

    def reduce_scatter(self, step: str, map_fun: Callable[[], Any], reduce_fun: Callable[[list], list]) -> Any:
        """`map_fun` on every rank, `reduce_fun` (one result per rank) on the coordinator, each rank its result.
        Raises CheckpointException(`step`) on every rank if any rank's `map_fun` or the reduce raised."""
        gathered = self._gather_local(map_fun)
        results = None
        if self.is_coordinator:
            failures = _get_failure_dict(gathered)
            if not failures:
                try:
                    results = reduce_fun(gathered)
                except BaseException as e:  # noqa: B036
                    failures[self.rank] = _wrap_exception(e)
            if failures:
                results = [CheckpointException(step, failures)] * self.get_world_size()
        mine = self.scatter_object(results)
        if isinstance(mine, CheckpointException):
            raise mine
        return mine

    def all_reduce(self, step: str, map_fun: Callable[[], Any], reduce_fun: Callable[[list], Any]) -> Any:
        """`map_fun` on every rank, `reduce_fun` on the coordinator, its result on every rank. Raises
        CheckpointException(`step`) on every rank if any rank failed."""
        gathered = self._gather_local(map_fun)
        result = None
        if self.is_coordinator:
            failures = _get_failure_dict(gathered)
            if not failures:
                try:
                    result = reduce_fun(gathered)
                except BaseException as e:  # noqa: B036
                    failures[self.rank] = _wrap_exception(e)
            if failures:
                result = CheckpointException(step, failures)
        result = self.broadcast_object(result)
        if isinstance(result, CheckpointException):
            raise result
        return result

    def all_gather(self, step: str, map_fun: Callable[[], Any]) -> list:
        """`map_fun` on every rank, every rank's result on every rank. Raises CheckpointException(`step`)."""
        try:
            local = map_fun()
        except BaseException as e:  # noqa: B036
            local = _wrap_exception(e)
        gathered = self.all_gather_object(local)
        failures = _get_failure_dict(gathered)
        if failures:
            raise CheckpointException(step, failures)
        return gathered

    def broadcast(self, step: str, map_fun: Callable[[], Any]) -> Any:
        """`map_fun` on the coordinator only, its result on every rank. Raises CheckpointException(`step`)."""
        result = None
        if self.is_coordinator:
            try:
                result = map_fun()
            except BaseException as e:  # noqa: B036
                result = CheckpointException(step, {self.rank: _wrap_exception(e)})
        result = self.broadcast_object(result)
        if isinstance(result, CheckpointException):
            raise result
        return result

    def barrier(self) -> None:
        """Wait for every rank (nothing to wait for without a process group)."""
        if self.use_dist:
            _dist().barrier(group=self.group)


def _find_shard(tensor, index):
    """The local ``Shard`` of ShardedTensor `tensor` that starts at ``index.offset`` (``index.index`` is tried
    first as a position hint). ValueError when `index` has no offset or no local shard starts there."""
    from ... import Size  # the facade's torch.Size, at call time (this package loads before it)

    if index.offset is None:
        raise ValueError(f"Cannot lookup {index.fqn} since its a ShardedTensor and no offset was provided")
    shards = tensor.local_shards()
    if index.index is not None and len(shards) > index.index and \
            Size(shards[index.index].metadata.shard_offsets) == index.offset:
        return shards[index.index]
    for shard in shards:
        if Size(shard.metadata.shard_offsets) == index.offset:
            return shard
    raise ValueError(f"Could not find shard at '{index.offset}' for FQN: '{index.fqn}'")


def find_tensor_shard(tensor, index):
    """The tensor that item `index` names inside state-dict tensor `tensor` (torch 2.13's rule):
    ``__get_tensor_shard__(index)`` when the object has it, a ShardedTensor's local shard at ``index.offset``, or
    the tensor itself (whose only chunk starts at the origin). ValueError for another offset of a plain tensor."""
    from ... import Size  # the facade's torch.Size, at call time (this package loads before it)
    from .._shard.sharded_tensor import ShardedTensor  # loaded on use: _shard subclasses the facade's Tensor

    if hasattr(tensor, "__get_tensor_shard__"):
        return tensor.__get_tensor_shard__(index)
    if isinstance(tensor, ShardedTensor):
        return _find_shard(tensor, index).tensor
    if index.offset is not None:
        if index.offset == Size([0] * len(tensor.size())):
            return tensor
        raise ValueError(f"FQN: '{index.fqn}' is not a ShardedTensor, can't find by offset: '{index.offset}'")
    return tensor


def find_state_dict_object(state_dict: dict, index):
    """The object item `index` names in the flat `state_dict`: for a tensor value :func:`find_tensor_shard`, else
    the value itself. ValueError when the key is missing or a non-tensor is asked for by offset (torch's
    messages)."""
    from ... import Tensor  # the facade's torch.Tensor, at call time (this package loads before it)

    if index.fqn not in state_dict:
        raise ValueError(f"Could not find FQN: '{index.fqn}'")
    obj = state_dict[index.fqn]
    if isinstance(obj, Tensor):
        return find_tensor_shard(obj, index)
    if index.offset is not None:
        raise ValueError(f"FQN: '{index.fqn}' is not a ShardedTensor, can't find by offset: '{index.offset}'")
    return obj


__getattr__ = _module_getattr("torch.distributed.checkpoint.utils")
