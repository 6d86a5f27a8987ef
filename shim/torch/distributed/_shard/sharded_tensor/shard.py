"""``torch.distributed._shard.sharded_tensor.shard``: :class:`Shard`, a local tensor with its ``ShardMetadata``."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from ...._unsupported import module_getattr as _module_getattr
from ...remote_device import _remote_device
from ..metadata import ShardMetadata

__all__ = ["Shard"]


@dataclass
class Shard:
    """``tensor`` (this rank's data of the shard) and ``metadata`` (its ``ShardMetadata``). torch 2.13's checks:
    ValueError when the tensor's size is not ``metadata.shard_sizes`` or its device is not the placement's."""

    __slots__ = ["tensor", "metadata"]
    tensor: Any
    metadata: ShardMetadata

    def __post_init__(self) -> None:
        if list(self.tensor.size()) != list(self.metadata.shard_sizes):
            raise ValueError(f"Shard tensor size does not match with metadata.shard_lengths! Found shard tensor "
                             f"size: {list(self.tensor.size())}, metadata.shard_lengths: "
                             f"{self.metadata.shard_sizes}, ")
        placement = self.metadata.placement
        if placement is not None and placement.device() != self.tensor.device:
            raise ValueError(f"Local shard tensor device does not match with local Shard's placement! Found local "
                             f"shard tensor device: {self.tensor.device}, local shard metadata placement device: "
                             f"{placement.device()}")

    @classmethod
    def from_tensor_and_offsets(cls, tensor, shard_offsets: Sequence[int], rank: int) -> "Shard":
        """The shard of `tensor` starting at `shard_offsets` in the global tensor, placed on ``rank:<rank>/<the
        tensor's device>``."""
        placement = _remote_device(f"rank:{rank}/{tensor.device}")
        return Shard(tensor, ShardMetadata(shard_offsets=shard_offsets, shard_sizes=list(tensor.size()),
                                           placement=placement))


__getattr__ = _module_getattr("torch.distributed._shard.sharded_tensor.shard")
