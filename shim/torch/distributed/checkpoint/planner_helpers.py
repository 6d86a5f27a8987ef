"""``torch.distributed.checkpoint.planner_helpers``: building write items and resharding read items.

Resharding (what makes a checkpoint saved with one parallel layout load into another): a tensor is saved as chunks,
boxes of the global tensor (``ChunkStorageMetadata``: ``offsets`` and ``sizes`` per dimension). To fill a box the
loader wants, every saved chunk that intersects it is read and the intersection copied. The intersection of two
boxes is, per dimension, ``[max(start), min(end))``; empty in any dimension means no overlap. A 0-d tensor has one
chunk with no dimensions, which always overlaps. :func:`create_read_items_for_chunk_list` has torch 2.13's name,
arguments and result (one ``ReadItem`` per (wanted chunk, saved chunk) pair that overlaps, offsets relative to each
chunk; the order of the list may differ from torch's).
"""
from __future__ import annotations

from typing import Optional, Sequence

from ..._unsupported import module_getattr as _module_getattr
from .metadata import ChunkStorageMetadata, MetadataIndex, TensorProperties, TensorStorageMetadata
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


def _create_write_item_for_chunk(fqn: str, tensor, offsets: Sequence[int], global_size: Sequence[int],
                                 index_hint: Optional[int] = None) -> WriteItem:
    """A SHARD write item for `tensor`, the box of the global tensor `fqn` (shape `global_size`) that starts at
    `offsets` (one int per dimension; the box's sizes are ``tensor.shape``)."""
    offsets = _size(offsets)
    chunk = ChunkStorageMetadata(offsets=offsets, sizes=_size(tensor.shape))
    return WriteItem(index=MetadataIndex(fqn, offsets, index_hint), type=WriteItemType.SHARD,
                     tensor_data=TensorWriteData(chunk=chunk, properties=TensorProperties.create_from_tensor(tensor),
                                                 size=_size(global_size)))


def _create_write_item_for_bytesio(fqn: str) -> WriteItem:
    """A BYTE_IO write item: `fqn` is saved as one opaque byte blob."""
    return WriteItem(index=MetadataIndex(fqn), type=WriteItemType.BYTE_IO)


def _create_write_items(fqn: str, obj) -> list:
    """The write items of one flattened state-dict entry (torch's rule; megatron-core's save planner calls it): an
    object with ``__create_write_items__`` makes its own; a tensor is one TENSOR item (its whole box, offsets 0);
    anything else one BYTE_IO item. torch's legacy ``ShardedTensor`` (``torch.distributed._shard``) does not exist
    in the facade."""
    import shim.torch as torch  # the facade's namespace, looked up at call time as metadata.py does

    if hasattr(obj, "__create_write_items__"):
        return list(obj.__create_write_items__(fqn, obj))
    if isinstance(obj, torch.Tensor):
        item = _create_write_item_for_chunk(fqn, obj, [0] * obj.dim(), obj.shape)
        return [WriteItem(index=item.index, type=WriteItemType.TENSOR, tensor_data=item.tensor_data)]
    return [_create_write_item_for_bytesio(fqn)]


__getattr__ = _module_getattr("torch.distributed.checkpoint.planner_helpers")
