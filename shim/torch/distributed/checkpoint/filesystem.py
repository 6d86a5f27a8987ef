"""``torch.distributed.checkpoint.filesystem``: DCP's file-system layout, written and read by the facade.

The layout (learned from torch 2.13's ``FileSystemWriter``/``FileSystemReader`` with the default ``torch_save``
serialization, which megatron-core's ``FileSystemWriterAsync`` also writes; same files, so a checkpoint written
here loads on real torch and the reverse):

- ``<dir>/__<rank>_<n>.distcp`` (:data:`DEFAULT_SUFFIX`): data files, each the concatenation of items. A tensor
  item is a complete ``torch.save`` archive of the chunk (a compact tensor of the chunk's shape); a byte item is
  the raw blob. Real torch may spread one rank's items over several files (``_<n>``); the writer here puts each
  rank's items in one file, ``__<rank>_0.distcp``.
- ``<dir>/.metadata`` (:data:`METADATA_FILE`): one pickled ``metadata.Metadata`` whose ``storage_data`` maps every
  item's ``MetadataIndex`` (key + chunk offsets) to a :class:`_StorageInfo` (file, byte offset, byte length). The
  pickle names torch's classes (``torch.distributed.checkpoint.metadata.Metadata``, ``torch.Size``,
  ``torch.float32``, ``torch.serialization._get_layout``, ...): the facade's pickler writes its classes under
  torch's names and its unpickler maps torch's names back to the facade's classes.

What exists: the private building blocks the DCP API will be built on — :func:`_write_item` (one item into an
open data file), :func:`_write_data_file` (a rank's file), :func:`_write_metadata` (``.metadata`` from the global
metadata and every rank's write results), :func:`_read_metadata`, :class:`_ItemReader` (items by index) and
:func:`_read_box` (a box of a tensor assembled from the saved chunks that overlap it: resharding).
megatron-core's ``torch_dist`` checkpoints are saved and loaded with them by the megatron patch
``torch_dist_strategies_without_dcp`` (megatron_patches/torch_dist_strategy.py). ``FileSystemReader``,
``FileSystemWriter`` and every other torch name raise the facade's ``UnsupportedAPI`` (not implemented yet).
"""
from __future__ import annotations

import io
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence, Union

from ... import serialization as _serialization
from ..._unsupported import module_getattr as _module_getattr
from .metadata import ChunkStorageMetadata, Metadata, MetadataIndex, TensorStorageMetadata
from .planner import WriteItem, WriteItemType
from .planner_helpers import create_read_items_for_chunk_list
from .storage import WriteResult

__all__ = ["DEFAULT_SUFFIX"]

DEFAULT_SUFFIX = ".distcp"
METADATA_FILE = ".metadata"  # torch's name for it in FileSystemWriter/Reader
PICKLE_PROTOCOL = 2


@dataclass
class _StorageInfo:
    """Where one item lies: ``relative_path`` (file in the checkpoint directory), ``offset`` and ``length`` in bytes,
    ``transform_descriptors`` (None: no stream transforms). Pickled without its None fields, as torch does."""

    relative_path: str
    offset: int
    length: int
    transform_descriptors: Optional[Sequence[str]] = None

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if v is not None}


# ------------------------------------------------------------------------------------------------ writing
def _write_item(stream, data: Any, write_item: WriteItem, storage_key: str) -> WriteResult:
    """Append one item to the open binary `stream` (the data file named `storage_key`, relative to the checkpoint
    directory) and say where it went.

    Args:
        data: for a SHARD/TENSOR item a facade tensor, saved with ``torch.save`` as a compact copy (``torch.save``
            of a view would write the whole storage it views); for a BYTE_IO item ``bytes`` or an ``io.BytesIO``,
            written raw.
    Raises:
        TypeError: `data` does not fit the item's type.
    """
    offset = stream.tell()
    if write_item.type == WriteItemType.BYTE_IO:
        if isinstance(data, io.BytesIO):
            data = data.getvalue()
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"DCP write: byte item {write_item.index.fqn!r} needs bytes or io.BytesIO, got "
                            f"{type(data).__name__}")
        stream.write(data)
    else:
        if not hasattr(data, "shape"):
            raise TypeError(f"DCP write: tensor item {write_item.index.fqn!r} needs a tensor, got "
                            f"{type(data).__name__}")
        buf = io.BytesIO()
        _serialization.save(data.detach().clone(), buf)
        stream.write(buf.getvalue())
    length = stream.tell() - offset
    return WriteResult(index=write_item.index, size_in_bytes=length,
                       storage_data=_StorageInfo(storage_key, offset, length))


def _write_data_file(checkpoint_dir: Union[str, os.PathLike], file_name: str,
                     items: Iterable[tuple]) -> list:
    """Write ``<checkpoint_dir>/<file_name>`` from `items` (``(WriteItem, data)`` pairs, see :func:`_write_item`),
    flushed to disk; returns the ``WriteResult`` of every item in order. Raises OSError from the file system."""
    results = []
    with open(Path(checkpoint_dir) / file_name, "wb") as stream:
        for write_item, data in items:
            results.append(_write_item(stream, data, write_item, file_name))
        stream.flush()
        os.fsync(stream.fileno())
    return results


def _dump_metadata(metadata: Metadata, file) -> None:
    """Pickle `metadata` into the binary `file` under torch's global names (see the module docstring)."""
    _serialization._Pickler(file, protocol=PICKLE_PROTOCOL).dump(metadata)


def _write_metadata(checkpoint_dir: Union[str, os.PathLike], metadata: Metadata, results: Iterable) -> None:
    """Finish a save (torch's ``FileSystemWriter.finish``): set ``metadata.storage_data`` from every rank's write
    results (`results`: a list per rank of ``WriteResult``) and write ``<checkpoint_dir>/.metadata`` atomically
    (a temporary file, fsync, rename). Raises OSError from the file system."""
    metadata.storage_data = {r.index: r.storage_data for rank_results in results for r in rank_results}
    path = Path(checkpoint_dir) / METADATA_FILE
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        _dump_metadata(metadata, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


# ------------------------------------------------------------------------------------------------ reading
def _not_a_storage(pid):
    raise pickle.UnpicklingError(f"{METADATA_FILE}: unexpected persistent id {pid!r} (not a DCP metadata pickle)")


def _load_metadata(file) -> Metadata:
    """Unpickle a ``.metadata`` file object into the facade's classes (torch's names map to the facade's modules;
    any other global is resolved as plain pickle does: only read checkpoints you trust, as with torch)."""
    return _serialization._FullUnpickler(file, _serialization._torch_globals(), _not_a_storage).load()


def _read_metadata(checkpoint_dir: Union[str, os.PathLike]) -> Metadata:
    """The ``Metadata`` of a DCP checkpoint directory (written by real torch, megatron-core or the facade).

    Raises:
        FileNotFoundError: no ``.metadata`` file in `checkpoint_dir`.
        pickle.UnpicklingError: the file is not a DCP metadata pickle the facade can read.
    """
    path = Path(checkpoint_dir) / METADATA_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{checkpoint_dir}: no {METADATA_FILE} file (not a DCP / torch_dist checkpoint)")
    with open(path, "rb") as f:
        return _load_metadata(f)


class _ItemReader:
    """Reads the items of a checkpoint by ``MetadataIndex`` through ``metadata.storage_data`` (data files opened on
    first use and kept open until :meth:`close`; usable as a context manager)."""

    def __init__(self, checkpoint_dir: Union[str, os.PathLike], metadata: Metadata):
        self.dir, self.metadata, self._files = Path(checkpoint_dir), metadata, {}

    def __enter__(self) -> "_ItemReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def read_bytes(self, index: MetadataIndex) -> bytes:
        """The stored bytes of one item. Raises KeyError (no such item), NotImplementedError (the item was written
        with DCP stream transforms), OSError (a data file is missing or truncated)."""
        info = (self.metadata.storage_data or {}).get(index)
        if info is None:
            raise KeyError(f"{self.dir}: no stored item {index.fqn!r} at offsets {index.offset}")
        if getattr(info, "transform_descriptors", None):
            raise NotImplementedError(f"{self.dir}: item {index.fqn!r} uses DCP stream transforms "
                                      f"{list(info.transform_descriptors)}; not implemented by the shim")
        f = self._files.get(info.relative_path)
        if f is None:
            f = self._files[info.relative_path] = open(self.dir / info.relative_path, "rb")
        f.seek(info.offset)
        data = f.read(info.length)
        if len(data) != info.length:
            raise OSError(f"{self.dir / info.relative_path}: truncated (item {index.fqn!r} needs bytes "
                          f"{info.offset}..{info.offset + info.length})")
        return data

    def read_tensor(self, index: MetadataIndex):
        """The saved chunk `index` as a facade tensor (``torch.load`` with ``weights_only=True``)."""
        return _serialization.load(io.BytesIO(self.read_bytes(index)), map_location="cpu", weights_only=True)

    def read_object(self, index: MetadataIndex):
        """A byte item holding a ``torch.save`` archive, loaded with ``weights_only=False`` (arbitrary pickles:
        only for checkpoints you trust, as torch's ``load_bytes`` callers do)."""
        return _serialization.load(io.BytesIO(self.read_bytes(index)), map_location="cpu", weights_only=False)

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()


def _read_box(reader: _ItemReader, fqn: str, storage_md: TensorStorageMetadata, offsets: Sequence[int], out) -> int:
    """Fill `out`, the box of tensor `fqn` that starts at `offsets` (its sizes are ``out.shape``), with every saved
    element in it, read from the saved chunks that overlap the box (``create_read_items_for_chunk_list``) and cast
    to ``out.dtype``. Returns how many elements of the box the checkpoint covered (``out.numel()`` when complete;
    elements not covered keep their value). Raises what :class:`_ItemReader` raises."""
    if not isinstance(storage_md, TensorStorageMetadata):
        raise TypeError(f"{reader.dir}: {fqn!r} is not a saved tensor ({type(storage_md).__name__})")
    import shim.torch as torch  # the facade's namespace, looked up at call time as metadata.py does

    wanted = ChunkStorageMetadata(offsets=torch.Size([int(o) for o in offsets]), sizes=torch.Size(out.shape))
    covered = 0
    for item in create_read_items_for_chunk_list(fqn, storage_md, [wanted]):
        src = reader.read_tensor(item.storage_index)
        src_idx = tuple(slice(o, o + n) for o, n in zip(item.storage_offsets, item.lengths))
        dst_idx = tuple(slice(o, o + n) for o, n in zip(item.dest_offsets, item.lengths))
        with torch.no_grad():
            out[dst_idx] = src[src_idx].to(out.dtype)
        n = 1
        for length in item.lengths:
            n *= int(length)
        covered += n
    return covered


def _read_global_tensor(reader: _ItemReader, fqn: str, storage_md: TensorStorageMetadata):
    """The whole saved tensor `fqn` (global size, saved dtype) as one facade tensor. Raises ValueError when the
    saved chunks do not cover it."""
    import shim.torch as torch  # the facade's namespace, looked up at call time as metadata.py does

    out = torch.zeros(tuple(storage_md.size), dtype=storage_md.properties.dtype)
    covered = _read_box(reader, fqn, storage_md, [0] * len(storage_md.size), out)
    if covered != out.numel():
        raise ValueError(f"{reader.dir}: the chunks of {fqn!r} cover {covered} of {out.numel()} elements")
    return out


__getattr__ = _module_getattr("torch.distributed.checkpoint.filesystem")
