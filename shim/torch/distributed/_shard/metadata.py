"""``torch.distributed._shard.metadata``: :class:`ShardMetadata`, one shard of a sharded tensor."""
from __future__ import annotations

from typing import Optional, Sequence, Union

from ..._unsupported import module_getattr as _module_getattr
from ..remote_device import _remote_device

__all__ = ["ShardMetadata"]


class ShardMetadata:
    """Where one shard lies in the global tensor and which device holds it (torch 2.13's class).

    shard_offsets: start of the shard per dimension; shard_sizes: its extent per dimension (both lists of ints, the
    global tensor's rank); placement: a ``_remote_device``, its string form (``"rank:0/cuda"``) or None.
    Raises ValueError when the two lists differ in length or hold a negative value. Equality compares the three
    fields (dataclass semantics, as torch's); hashing follows torch's fold of offsets, sizes and placement.
    """

    __slots__ = ("shard_offsets", "shard_sizes", "placement")

    def __init__(self, shard_offsets: Sequence[int], shard_sizes: Sequence[int],
                 placement: Union[str, _remote_device, None] = None):
        self.shard_offsets = shard_offsets
        self.shard_sizes = shard_sizes
        self.placement = _remote_device(placement) if isinstance(placement, str) else placement
        if len(shard_offsets) != len(shard_sizes):
            raise ValueError(f"shard_offsets and shard_sizes should have the same number of elements, found "
                             f"{len(shard_offsets)} and {shard_sizes} respectively")
        if any(o < 0 for o in shard_offsets):
            raise ValueError("shard_offsets should be >=0")
        if any(s < 0 for s in shard_sizes):
            raise ValueError("shard_sizes should be >= 0")

    def __eq__(self, other) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return (self.shard_offsets, self.shard_sizes, self.placement) == (
            other.shard_offsets, other.shard_sizes, other.placement)

    def __hash__(self) -> int:
        h = 37
        for v in (*self.shard_offsets, *self.shard_sizes, self.placement):
            h = (h << 8) + hash(v)
        return h

    def __repr__(self) -> str:
        return (f"ShardMetadata(shard_offsets={self.shard_offsets!r}, shard_sizes={self.shard_sizes!r}, "
                f"placement={self.placement!r})")

    def __getstate__(self):
        return (None, {k: getattr(self, k) for k in self.__slots__})

    def __setstate__(self, state):
        for k, v in state[1].items():
            setattr(self, k, v)


__getattr__ = _module_getattr("torch.distributed._shard.metadata")
