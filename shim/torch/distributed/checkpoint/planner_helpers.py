"""``torch.distributed.checkpoint.planner_helpers``: building write items and resharding read items.

Resharding (what makes a checkpoint saved with one parallel layout load into another): a tensor is saved as chunks,
boxes of the global tensor (``ChunkStorageMetadata``: ``offsets`` and ``sizes`` per dimension). To fill a box the
loader wants, every saved chunk that intersects it is read and the intersection copied. The intersection of two
boxes is, per dimension, ``[max(start), min(end))``; empty in any dimension means no overlap. A 0-d tensor has one
chunk with no dimensions, which always overlaps. :func:`create_read_items_for_chunk_list` has torch 2.13's name,
arguments and result (one ``ReadItem`` per (wanted chunk, saved chunk) pair that overlaps, offsets relative to each
chunk; the order of the list may differ from torch's). The write/read items of a state-dict value follow torch's
rule (:func:`_create_write_items`, :func:`_create_read_items`): plain tensors, ``torch.distributed._shard``
ShardedTensors (one chunk per local shard) and objects with torch's ``__create_write_items__`` /
``__create_chunk_list__`` protocol (megatron-core's ``CheckpointableShardedTensor``).
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

from ..._unsupported import module_getattr as _module_getattr
from .metadata import (BytesStorageMetadata, ChunkStorageMetadata, MetadataIndex, TensorProperties,
                       TensorStorageMetadata)
from .planner import LoadItemType, ReadItem, TensorWriteData, WriteItem, WriteItemType

__all__ = ["create_read_items_for_chunk_list"]


def _size(values):
    import shim.torch as torch  # the facade's namespace, looked up at call time as metadata.py does

    return torch.Size(tuple(int(v) for v in values))


def _overlap(saved: ChunkStorageMetadata, wanted: ChunkStorageMetadata) -> Optional[list]:
    """The intersection of two chunks as ``[(saved-relative offset, wanted-relative offset, length), ...]`` (one per
    dimension), or None when they do not intersect."""
    out = []
    for s_off, s_len, w_off, w_len in zip(saved.offsets, saved.sizes, wanted.offsets, wanted.sizes):
        lo, hi = max(int(s_off), int(w_off)), min(int(s_off) + int(s_len), int(w_off) + int(w_len))
        if hi <= lo:
            return None
        out.append((lo - int(s_off), lo - int(w_off), hi - lo))
    return out


def create_read_items_for_chunk_list(fqn: str, checkpoint_md: TensorStorageMetadata,
                                     local_chunks: Sequence[ChunkStorageMetadata]) -> list:
    """The reads that fill `local_chunks` (the boxes this rank wants of tensor `fqn`) from the saved chunks listed
    in `checkpoint_md`: one ``ReadItem`` (type TENSOR) per intersecting pair, with ``dest_index`` =
    ``MetadataIndex(fqn, local chunk offsets, local chunk position)``, ``storage_index`` =
    ``MetadataIndex(fqn, saved chunk offsets, saved chunk position)``, and ``dest_offsets``/``storage_offsets``/
    ``lengths`` (``torch.Size``) relative to each chunk. Parts of a local chunk no saved chunk covers get no read."""
    items = []
    for local_pos, local in enumerate(local_chunks):
        for saved_pos, saved in enumerate(checkpoint_md.chunks):
            region = _overlap(saved, local)
            if region is None:
                continue
            items.append(ReadItem(
                type=LoadItemType.TENSOR,
                dest_index=MetadataIndex(fqn, local.offsets, local_pos),
                dest_offsets=_size(r[1] for r in region),
                storage_index=MetadataIndex(fqn, saved.offsets, saved_pos),
                storage_offsets=_size(r[0] for r in region),
                lengths=_size(r[2] for r in region)))
    return items


def _is_sharded_tensor(obj) -> bool:
    from .._shard.sharded_tensor import ShardedTensor  # loaded on use: _shard subclasses the facade's Tensor

    return isinstance(obj, ShardedTensor)


def _create_write_item_for_chunk(fqn: str, tensor, offsets: Sequence[int], global_size: Sequence[int],
                                 index_hint: Optional[int] = None) -> WriteItem:
    """A SHARD write item for `tensor`, the box of the global tensor `fqn` (shape `global_size`) that starts at
    `offsets` (one int per dimension; the box's sizes are ``tensor.shape``)."""
    offsets = _size(offsets)
    chunk = ChunkStorageMetadata(offsets=offsets, sizes=_size(tensor.shape))
    return WriteItem(index=MetadataIndex(fqn, offsets, index_hint), type=WriteItemType.SHARD,
                     tensor_data=TensorWriteData(chunk=chunk, properties=TensorProperties.create_from_tensor(tensor),
                                                 size=_size(global_size)))


def _create_write_item_for_tensor(fqn: str, tensor) -> WriteItem:
    """The TENSOR item of a whole tensor (its box at offsets 0)."""
    item = _create_write_item_for_chunk(fqn, tensor, [0] * tensor.dim(), tensor.shape)
    return WriteItem(index=item.index, type=WriteItemType.TENSOR, tensor_data=item.tensor_data)


def _create_write_item_for_bytesio(fqn: str, bytes: Any = None) -> WriteItem:
    """A BYTE_IO write item: `fqn` is saved as one opaque byte blob."""
    return WriteItem(index=MetadataIndex(fqn), type=WriteItemType.BYTE_IO)


def _chunk_for_shard(shard_md) -> ChunkStorageMetadata:
    """The DCP chunk of a ``ShardMetadata`` (its offsets and sizes as ``torch.Size``)."""
    return ChunkStorageMetadata(offsets=_size(shard_md.shard_offsets), sizes=_size(shard_md.shard_sizes))


def _sharded_tensor_metadata(sharded_tensor, shard_md) -> TensorWriteData:
    """The ``TensorWriteData`` of one shard: its chunk, the ShardedTensor's properties (as DCP's
    ``TensorProperties``) and global size."""
    props = sharded_tensor.metadata().tensor_properties
    return TensorWriteData(chunk=_chunk_for_shard(shard_md),
                           properties=TensorProperties(dtype=props.dtype, layout=props.layout,
                                                       requires_grad=props.requires_grad,
                                                       memory_format=props.memory_format,
                                                       pin_memory=props.pin_memory),
                           size=_size(sharded_tensor.metadata().size))


def _create_write_item_for_shard(fqn: str, sharded_tensor, shard_md) -> WriteItem:
    """The SHARD item of one local shard of a ShardedTensor (index: `fqn` at the shard's offsets)."""
    return WriteItem(index=MetadataIndex(fqn, shard_md.shard_offsets), type=WriteItemType.SHARD,
                     tensor_data=_sharded_tensor_metadata(sharded_tensor, shard_md))


def _create_write_items(fqn: str, obj) -> list:
    """The write items of one flattened state-dict entry (torch 2.13's rule; megatron-core's save planner calls
    it): an object with ``__create_write_items__`` makes its own (megatron-core's ``CheckpointableShardedTensor``);
    a ``ShardedTensor`` one SHARD item per local shard; a tensor one TENSOR item (its whole box); anything else one
    BYTE_IO item."""
    import shim.torch as torch  # the facade's namespace, looked up at call time as metadata.py does

    if hasattr(obj, "__create_write_items__"):
        return list(obj.__create_write_items__(fqn, obj))
    if _is_sharded_tensor(obj):
        return [_create_write_item_for_shard(fqn, obj, shard.metadata) for shard in obj.local_shards()]
    if isinstance(obj, torch.Tensor):
        return [_create_write_item_for_tensor(fqn, obj)]
    return [_create_write_item_for_bytesio(fqn, obj)]


def _create_chunk_from_tensor(tensor) -> ChunkStorageMetadata:
    """The chunk of a whole tensor (offsets 0, its size)."""
    return ChunkStorageMetadata(offsets=_size([0] * len(tensor.size())), sizes=_size(tensor.size()))


def _create_chunk_list(tensor) -> list:
    """The chunks a state-dict value holds: ``__create_chunk_list__()`` when it has one, a ShardedTensor's local
    shards, a tensor's whole box. ValueError for anything else (torch's message)."""
    import shim.torch as torch  # the facade's namespace, looked up at call time as metadata.py does

    if hasattr(tensor, "__create_chunk_list__"):
        return list(tensor.__create_chunk_list__())
    if _is_sharded_tensor(tensor):
        return [_chunk_for_shard(shard.metadata) for shard in tensor.local_shards()]
    if isinstance(tensor, torch.Tensor):
        return [_create_chunk_from_tensor(tensor)]
    raise ValueError(f"Unsupported Type, expecting one of [Tensor, DTensor, ShardedTensor] ,but got {type(tensor)}")


def _create_read_item_for_byteio(dest_index, dest_offset, storage_index, storage_offset, length) -> ReadItem:
    """A BYTE_IO read item (offsets and length as one-element ``torch.Size``)."""
    return ReadItem(type=LoadItemType.BYTE_IO, dest_index=dest_index, dest_offsets=_size((dest_offset,)),
                    storage_index=storage_index, storage_offsets=_size((storage_offset,)), lengths=_size((length,)))


def _create_read_item_for_tensor(dest_index, dest_offsets, storage_index, storage_offsets, lengths) -> ReadItem:
    """A TENSOR read item (offsets and lengths as ``torch.Size``)."""
    return ReadItem(type=LoadItemType.TENSOR, dest_index=dest_index, dest_offsets=_size(dest_offsets),
                    storage_index=storage_index, storage_offsets=_size(storage_offsets), lengths=_size(lengths))


def _create_read_items(fqn: str, md, obj) -> list:
    """The reads that fill state-dict value `obj` of key `fqn` from its saved metadata `md`: one BYTE_IO read for
    a byte blob, else :func:`create_read_items_for_chunk_list` over the chunks `obj` holds
    (:func:`_create_chunk_list`). ValueError when a saved tensor meets a value that holds no chunks."""
    if isinstance(md, BytesStorageMetadata):
        return [_create_read_item_for_byteio(MetadataIndex(fqn), 0, MetadataIndex(fqn), 0, 0)]
    try:
        chunks = _create_chunk_list(obj)
    except ValueError as ex:
        raise ValueError(f"Invalid checkpoint metadata for {fqn}, expected BytesStorageMetadata but found "
                         f"{type(md)}") from ex
    return create_read_items_for_chunk_list(fqn, md, chunks)


__getattr__ = _module_getattr("torch.distributed.checkpoint.planner_helpers")
