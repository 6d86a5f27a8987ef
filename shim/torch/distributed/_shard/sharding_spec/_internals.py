"""``torch.distributed._shard.sharding_spec._internals``: checks of a sharded tensor's shard layout.

:func:`validate_non_overlapping_shards_metadata` (no two shards share an element) and :func:`check_tensor` (the
shards fit inside the tensor and together have its volume), with torch 2.13's names, arguments and ValueError
messages. Overlaps are found by a sweep along the first dimension in which the shards differ (shards sorted by
their start there; only shards whose extents in that dimension intersect are compared in full).
"""
from __future__ import annotations

from typing import Optional, Sequence

from ...._unsupported import module_getattr as _module_getattr

__all__ = ["validate_non_overlapping_shards_metadata", "check_tensor"]


def _check_shard_metadata_pair_overlap(shard1, shard2) -> bool:
    """True when the boxes of two ``ShardMetadata`` intersect (every dimension's ranges do)."""
    for o1, s1, o2, s2 in zip(shard1.shard_offsets, shard1.shard_sizes, shard2.shard_offsets, shard2.shard_sizes):
        if o1 >= o2 + s2 or o2 >= o1 + s1:
            return False
    return True


def _find_overlap(shards: Sequence, dim: int) -> Optional[tuple]:
    order = sorted(range(len(shards)), key=lambda i: shards[i].shard_offsets[dim])
    active: list = []  # indices whose range in `dim` may still reach later shards
    for i in order:
        start = shards[i].shard_offsets[dim]
        active = [j for j in active if shards[j].shard_offsets[dim] + shards[j].shard_sizes[dim] > start]
        for j in active:
            if _check_shard_metadata_pair_overlap(shards[i], shards[j]):
                return (j, i)
        active.append(i)
    return None


def validate_non_overlapping_shards_metadata(shards: Sequence) -> None:
    """Raise ValueError naming two shards (``ShardMetadata``) of `shards` that overlap."""
    if len(shards) <= 1:
        return
    first = shards[0]
    sharded = [d for d in range(len(first.shard_offsets))
               if any(s.shard_offsets[d] != first.shard_offsets[d] or s.shard_sizes[d] != first.shard_sizes[d]
                      for s in shards[1:])]
    if not sharded:
        # every shard is the same box: only empty shards at the origin may repeat
        if all(list(s.shard_offsets) == [0] * len(first.shard_offsets) and 0 in list(s.shard_sizes)
               for s in shards):
            return
        pair: Optional[tuple] = (0, 1)
    else:
        pair = _find_overlap(shards, sharded[0])
    if pair is not None:
        raise ValueError(f"Shards {shards[pair[0]]} and {shards[pair[1]]} overlap")


def check_tensor(shards_metadata: Sequence, tensor_dims: Sequence[int]) -> None:
    """Raise ValueError when `shards_metadata` does not describe a tensor of shape `tensor_dims`: a different
    rank, a shard reaching past a dimension, or a total shard volume other than the tensor's."""
    if len(tensor_dims) != len(shards_metadata[0].shard_offsets):
        raise ValueError(f"Rank of tensor is {len(tensor_dims)}, but shards rank is "
                         f"{len(shards_metadata[0].shard_offsets)}")
    total = 0
    for shard in shards_metadata:
        volume = 1
        for i, length in enumerate(shard.shard_sizes):
            volume *= length
            if shard.shard_offsets[i] + length > tensor_dims[i]:
                raise ValueError(f"Shard offset {shard.shard_offsets[i]} and length {length} exceeds tensor dim: "
                                 f"{tensor_dims[i]} for shard {shard}")
        total += volume
    expected = 1
    for size in tensor_dims:
        expected *= size
    if total != expected:
        raise ValueError(f"Total volume of shards: {total} does not match tensor volume: {expected}, in other "
                         f"words all the individual shards do not cover the entire tensor")


__getattr__ = _module_getattr("torch.distributed._shard.sharding_spec._internals")
