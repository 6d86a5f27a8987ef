"""``torch.distributed.checkpoint.filesystem``: DCP's file-system layout, written and read by the facade.

The layout (learned from torch 2.13's ``FileSystemWriter``/``FileSystemReader`` with the default ``torch_save``
serialization, which megatron-core's ``FileSystemWriterAsync`` also writes; same files, so a checkpoint written
here loads on real torch and the reverse):

- ``<dir>/__<rank>_<n>.distcp`` (:data:`DEFAULT_SUFFIX`): data files, each the concatenation of items. A tensor
  item is a complete ``torch.save`` archive of the chunk (a compact tensor of the chunk's shape); a byte item is
  the raw blob. Real torch may spread one rank's items over several files (``_<n>``); the writer here puts each
  rank's items in one file, ``__<rank>_0.distcp`` (megatron-core's ``FileSystemWriterAsync``, a subclass, writes
  ``thread_count`` files per rank, as on real torch).
- ``<dir>/.metadata`` (:data:`METADATA_FILE`): one pickled ``metadata.Metadata`` whose ``storage_data`` maps every
  item's ``MetadataIndex`` (key + chunk offsets) to a :class:`_StorageInfo` (file, byte offset, byte length). The
  pickle names torch's classes (``torch.distributed.checkpoint.metadata.Metadata``, ``torch.Size``,
  ``torch.float32``, ``torch.serialization._get_layout``, ...): the facade's pickler writes its classes under
  torch's names and its unpickler maps torch's names back to the facade's classes.

The API: :class:`FileSystemWriter`/:class:`FileSystemReader` (torch's ``StorageWriter``/``StorageReader`` for a
local directory, torch 2.13's constructors; subclassable as megatron-core's ``FileSystemWriterAsync`` does) and
:func:`_write_item` (torch 2.13's signature). Private building blocks: :func:`_write_data_file` (a rank's file),
:func:`_write_metadata` (``.metadata`` from the global metadata and every rank's write results),
:func:`_read_metadata`, :class:`_ItemReader` (items by index) and :func:`_read_box` (a box of a tensor assembled
from the saved chunks that overlap it: resharding; the parity tool reads checkpoints with them);
:func:`_split_by_size_and_type` and :func:`_item_size` (torch's spreading of a rank's items over its files).
DCP stream transforms (``_extensions``) and the SAFETENSORS serialization format are not implemented
(NotImplementedError); every other torch name raises the facade's ``UnsupportedAPI``.
"""
from __future__ import annotations

import dataclasses
import io
import os
import pickle
import uuid
import warnings
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence, Union

from ... import serialization as _serialization
from ..._unsupported import module_getattr as _module_getattr
from .metadata import ChunkStorageMetadata, Metadata, MetadataIndex, StorageMeta, TensorStorageMetadata
from .planner import LoadItemType, LoadPlan, LoadPlanner, SavePlan, SavePlanner, WriteItem, WriteItemType
from .planner_helpers import create_read_items_for_chunk_list
from .storage import StorageReader, StorageWriter, WriteResult

__all__ = ["FileSystemWriter", "FileSystemReader", "SerializationFormat"]

DEFAULT_SUFFIX = ".distcp"
METADATA_FILE = ".metadata"  # torch's name for it in FileSystemWriter/Reader
PICKLE_PROTOCOL = 2
CURRENT_DCP_VERSION = "1.0.0"  # what torch 2.13's FileSystemWriter.finish stamps into Metadata.version


@dataclass
class _StoragePrefix:
    """A rank's data-file name prefix (``__<rank>_``), set by ``FileSystemWriter.prepare_global_plan`` as the
    rank's ``SavePlan.storage_data``."""

    prefix: str


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
class SerializationFormat(Enum):
    """How a tensor item is encoded in a data file (torch's names and values). Only ``TORCH_SAVE`` (a
    ``torch.save`` archive per item, the default) is implemented."""

    TORCH_SAVE = "torch_save"
    SAFETENSORS = "safetensors"


class _NonClosingStream(io.RawIOBase):
    """Writes through to the data file; ``close()`` ends this item only (the file stays open)."""

    def __init__(self, raw) -> None:
        super().__init__()
        self._raw = raw

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        return self._raw.write(b)


class _StorageWriterTransforms:
    """The stream transforms applied to each written item (torch's experimental ``_extensions``). None are
    implemented: with no extensions an item is written as is (no transform descriptors in the metadata)."""

    def __init__(self, extensions: Optional[Sequence] = None) -> None:
        if extensions:
            raise NotImplementedError("torch.distributed.checkpoint.filesystem.FileSystemWriter(_extensions=...) "
                                      "(DCP stream transforms) is not implemented by the shim")
        self.extensions = []

    def transform_save_stream(self, write_item: WriteItem, raw_stream) -> tuple:
        """``(stream to write the item into, transform descriptors)``: the data file itself, no descriptors."""
        return _NonClosingStream(raw_stream), []


def _item_size(item: WriteItem) -> int:
    """Bytes of a tensor item as torch 2.13 counts them for balancing: the *global* size (``tensor_data.size``)
    times the element size (megatron-core's copy counts the chunk instead). ValueError for an item without
    ``tensor_data``."""
    from ... import _utils  # the facade's torch._utils, at call time (this package loads before it)

    if item.tensor_data is None:
        raise ValueError(f"DCP write item {item.index.fqn!r} has no tensor_data")
    n = 1
    for s in item.tensor_data.size:
        n *= int(s)
    return n * _utils._element_size(item.tensor_data.properties.dtype)


def _split_by_size_and_type(bins: int, items: Sequence[WriteItem]) -> list:
    """`items` split into `bins` lists (torch 2.13's rule, used to spread a rank's items over its data files):
    byte items round-robin, then tensor items from the largest (:func:`_item_size`; ties keep their order) each
    into the currently smallest bin (the first of equal bins). ``bins == 1`` returns ``[items]``."""
    if bins == 1:
        return [list(items)]
    buckets: list = [[] for _ in range(bins)]
    sizes = [0] * bins
    byte_items = [wi for wi in items if wi.type == WriteItemType.BYTE_IO]
    tensor_items = sorted((wi for wi in items if wi.type != WriteItemType.BYTE_IO), key=_item_size, reverse=True)
    for i, wi in enumerate(byte_items):
        buckets[i % bins].append(wi)
    for wi in tensor_items:
        idx = min(range(bins), key=sizes.__getitem__)
        buckets[idx].append(wi)
        sizes[idx] += _item_size(wi)
    return buckets


def _write_item(transforms: _StorageWriterTransforms, stream, data: Any, write_item: WriteItem, storage_key: str,
                serialization_format: SerializationFormat = SerializationFormat.TORCH_SAVE) -> WriteResult:
    """Append one item to the open binary `stream` (the data file named `storage_key`, relative to the checkpoint
    directory) and say where it went (torch 2.13's signature; megatron-core's ``FileSystemWriterAsync`` calls it).

    Args:
        transforms: the writer's stream transforms (none implemented, see :class:`_StorageWriterTransforms`).
        data: for a SHARD/TENSOR item a facade tensor, saved with ``torch.save`` as a compact copy (``torch.save``
            of a view would write the whole storage it views); for a BYTE_IO item an ``io.BytesIO`` (or ``bytes``),
            written raw.
        serialization_format: only ``SerializationFormat.TORCH_SAVE``.
    Raises:
        TypeError: `data` does not fit the item's type. NotImplementedError: another serialization format.
    """
    if serialization_format != SerializationFormat.TORCH_SAVE:
        raise NotImplementedError(f"torch.distributed.checkpoint.filesystem: serialization_format="
                                  f"{serialization_format} is not implemented by the shim (only TORCH_SAVE)")
    offset = stream.tell()
    out, descriptors = transforms.transform_save_stream(write_item, stream)
    if write_item.type == WriteItemType.BYTE_IO:
        if isinstance(data, io.BytesIO):
            data = data.getbuffer()
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"DCP write: byte item {write_item.index.fqn!r} needs bytes or io.BytesIO, got "
                            f"{type(data).__name__}")
        out.write(data)
    else:
        if not hasattr(data, "shape"):
            raise TypeError(f"DCP write: tensor item {write_item.index.fqn!r} needs a tensor, got "
                            f"{type(data).__name__}")
        buf = io.BytesIO()
        _serialization.save(data.detach().clone(), buf)
        out.write(buf.getbuffer())
    out.close()
    length = stream.tell() - offset
    return WriteResult(index=write_item.index, size_in_bytes=length,
                       storage_data=_StorageInfo(storage_key, offset, length, descriptors or None))


def _write_data_file(checkpoint_dir: Union[str, os.PathLike], file_name: str,
                     items: Iterable[tuple]) -> list:
    """Write ``<checkpoint_dir>/<file_name>`` from `items` (``(WriteItem, data)`` pairs, see :func:`_write_item`),
    flushed to disk; returns the ``WriteResult`` of every item in order. Raises OSError from the file system."""
    results, transforms = [], _StorageWriterTransforms()
    with open(Path(checkpoint_dir) / file_name, "wb") as stream:
        for write_item, data in items:
            results.append(_write_item(transforms, stream, data, write_item, file_name))
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


# ------------------------------------------------------------------------------------------------ the API
def _future(value):
    from ...futures import Future  # the facade's torch.futures, at call time

    fut = Future()
    fut.set_result(value)
    return fut


def _validate_path(checkpoint_id) -> bool:
    """torch's rule: a Path, or a str with no ``://`` whose existing parent is writable."""
    if isinstance(checkpoint_id, Path):
        return True
    if "://" in str(checkpoint_id):
        return False
    return any(p.exists() and os.access(p, os.W_OK) for p in Path(checkpoint_id).parents)


class FileSystemWriter(StorageWriter):
    """torch's ``FileSystemWriter``: writes a DCP checkpoint into the directory `path` (created if missing) in the
    layout of the module docstring. Constructor arguments as torch 2.13's.

    ``single_file_per_rank`` (default True): each rank's items go to ``__<rank>_0.distcp``; False: one file per item
    (``__<rank>_<n>.distcp``). ``sync_files``: fsync every data file and ``.metadata``. ``thread_count`` and
    ``per_thread_copy_ahead`` are kept as attributes (megatron-core's async writer reads ``thread_count``); this
    writer writes in the calling thread. ``overwrite`` False: refuse a directory that already has ``.metadata``
    (RuntimeError); True warns as torch does. ``cache_staged_state_dict`` True, ``_extensions`` and a
    ``serialization_format`` other than TORCH_SAVE raise NotImplementedError.
    """

    def __init__(self, path: Union[str, os.PathLike], single_file_per_rank: bool = True, sync_files: bool = True,
                 thread_count: int = 1, per_thread_copy_ahead: int = 10_000_000,
                 cache_staged_state_dict: bool = False, overwrite: bool = True, _extensions: Optional[Sequence] = None,
                 serialization_format: SerializationFormat = SerializationFormat.TORCH_SAVE) -> None:
        if cache_staged_state_dict:
            raise NotImplementedError("torch.distributed.checkpoint.FileSystemWriter(cache_staged_state_dict=True) "
                                      "is not implemented by the shim")
        if serialization_format != SerializationFormat.TORCH_SAVE:
            raise NotImplementedError(f"torch.distributed.checkpoint.FileSystemWriter(serialization_format="
                                      f"{serialization_format}) is not implemented by the shim (only TORCH_SAVE)")
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"FileSystemWriter: path must be a str or os.PathLike, got {type(path).__name__}")
        self.path = Path(path)
        self.single_file_per_rank, self.sync_files = single_file_per_rank, sync_files
        self.thread_count, self.per_thread_copy_ahead = thread_count, per_thread_copy_ahead
        self.overwrite, self.serialization_format = overwrite, serialization_format
        self.transforms = _StorageWriterTransforms(_extensions)
        self.save_id = uuid.uuid4().hex
        self.rank, self.use_collectives = None, True

    def reset(self, checkpoint_id: Optional[Union[str, os.PathLike]] = None) -> None:
        """A new save (new ``save_id``), into `checkpoint_id` when given."""
        if checkpoint_id:
            self.path = Path(checkpoint_id)
        self.save_id = uuid.uuid4().hex

    def set_up_storage_writer(self, is_coordinator: bool, *args: Any, **kwargs: Any) -> None:
        """Keeps ``rank`` and ``use_collectives`` (False: every rank writes ``__<rank>.metadata`` itself) from
        `kwargs`, as torch does."""
        self.rank = kwargs.get("rank")
        self.use_collectives = kwargs.get("use_collectives", True)

    def _metadata_path(self) -> Path:
        if not self.use_collectives and self.rank is not None:
            return self.path / f"__{self.rank}{METADATA_FILE}"
        return self.path / METADATA_FILE

    def prepare_local_plan(self, plan: SavePlan) -> SavePlan:
        """Creates the checkpoint directory; refuses (RuntimeError) or warns about an existing checkpoint there
        (see ``overwrite``). Returns `plan` unchanged."""
        self.path.mkdir(parents=True, exist_ok=True)
        if (self.path / METADATA_FILE).exists() or (self.path / f"__0{METADATA_FILE}").exists():
            if not self.overwrite:
                raise RuntimeError(f"Checkpoint already exists and self.overwrite={self.overwrite}.")
            warnings.warn(f"Detected an existing checkpoint in {self.path}, overwriting since "
                          f"self.overwrite={self.overwrite}.", stacklevel=2)
        return plan

    def prepare_global_plan(self, plans: list) -> list:
        """Gives rank ``i``'s plan the file prefix ``_StoragePrefix("__<i>_")`` (plans that already carry storage
        data are kept)."""
        return [dataclasses.replace(plan, storage_data=_StoragePrefix(f"__{i}_")) if plan.storage_data is None
                else plan for i, plan in enumerate(plans)]

    def write_data(self, plan: SavePlan, planner: SavePlanner):
        """Writes this rank's items (data from ``planner.resolve_data``) and returns a completed
        ``torch.futures.Future`` of their ``WriteResult`` list. Raises OSError from the file system."""
        prefix = plan.storage_data.prefix if isinstance(plan.storage_data, _StoragePrefix) else ""
        if self.single_file_per_rank:
            groups = [plan.items] if plan.items else []
        else:
            groups = [[item] for item in plan.items]
        results = []
        for n, items in enumerate(groups):
            name = f"{prefix}{n}{DEFAULT_SUFFIX}"
            with open(self.path / name, "wb") as stream:
                for item in items:
                    data = planner.resolve_data(item)
                    if item.type != WriteItemType.BYTE_IO:
                        data = data.detach().cpu()
                    results.append(_write_item(self.transforms, stream, data, item, name,
                                               serialization_format=self.serialization_format))
                if self.sync_files:
                    stream.flush()
                    os.fsync(stream.fileno())
        return _future(results)

    def finish(self, metadata: Metadata, results: list) -> None:
        """Completes `metadata` (``storage_data`` from every rank's results, ``storage_meta``, ``version``) and
        writes it to ``.metadata`` through a temporary file and a rename."""
        metadata.version = CURRENT_DCP_VERSION
        metadata.storage_data = {r.index: r.storage_data for rank_results in results for r in rank_results}
        metadata.storage_meta = self.storage_meta()
        path = self._metadata_path()
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as f:
            _dump_metadata(metadata, f)
            if self.sync_files:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)

    def storage_meta(self) -> StorageMeta:
        """``StorageMeta(checkpoint_id=path, save_id=<this save's id>)``."""
        return StorageMeta(checkpoint_id=self.checkpoint_id, save_id=self.save_id)

    @property
    def checkpoint_id(self) -> Union[str, os.PathLike]:
        """The directory the checkpoint is written to."""
        return self.path

    @classmethod
    def validate_checkpoint_id(cls, checkpoint_id: Union[str, os.PathLike]) -> bool:
        """True for a Path, or a local path string whose existing parent is writable."""
        return _validate_path(checkpoint_id)

    def stage(self, state_dict: dict) -> dict:
        """torch's staging for async save (``AsyncStager.stage``): not implemented."""
        raise NotImplementedError("torch.distributed.checkpoint.FileSystemWriter.stage (async staging) is not "
                                  "implemented by the shim")


class FileSystemReader(StorageReader):
    """torch's ``FileSystemReader``: reads a DCP checkpoint directory (written by real torch, megatron-core or the
    facade). ``_extension_registry`` (stream transforms) is not implemented (NotImplementedError when given)."""

    def __init__(self, path: Union[str, os.PathLike], _extension_registry: Any = None) -> None:
        if _extension_registry is not None:
            raise NotImplementedError("torch.distributed.checkpoint.FileSystemReader(_extension_registry=...) (DCP "
                                      "stream transforms) is not implemented by the shim")
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"FileSystemReader: path must be a str or os.PathLike, got {type(path).__name__}")
        self.path = Path(path)
        self.storage_data: dict = {}
        self.load_id = uuid.uuid4().hex

    def reset(self, checkpoint_id: Optional[Union[str, os.PathLike]] = None) -> None:
        """A new load (new ``load_id``), from `checkpoint_id` when given."""
        self.storage_data = {}
        if checkpoint_id:
            self.path = Path(checkpoint_id)
        self.load_id = uuid.uuid4().hex

    def read_metadata(self, *args: Any, **kwargs: Any) -> Metadata:
        """The checkpoint's ``Metadata`` (``storage_meta.load_id`` set to this load's id). Raises
        FileNotFoundError (no ``.metadata``) and pickle.UnpicklingError as :func:`_read_metadata`."""
        metadata = _read_metadata(self.path)
        if getattr(metadata, "storage_meta", None) is None:
            metadata.storage_meta = StorageMeta()
        metadata.storage_meta.load_id = self.load_id
        return metadata

    def set_up_storage_reader(self, metadata: Metadata, is_coordinator: bool, *args: Any, **kwargs: Any) -> None:
        """Keeps the item locations (``metadata.storage_data``). Raises ValueError when it is missing."""
        if metadata.storage_data is None:
            raise ValueError(f"{self.path}: the checkpoint metadata has no storage_data")
        self.storage_data = metadata.storage_data

    def prepare_local_plan(self, plan: LoadPlan) -> LoadPlan:
        return plan

    def prepare_global_plan(self, plans: list) -> list:
        return plans

    def read_data(self, plan: LoadPlan, planner: LoadPlanner):
        """Reads every item of `plan`: byte items go to ``planner.load_bytes``; for a tensor item the stored chunk
        is loaded, the box ``storage_offsets``/``lengths`` cut from it and copied into
        ``planner.resolve_tensor(item)`` (shape ``lengths``), then ``planner.commit_tensor``. Returns a completed
        Future of None. Raises KeyError/OSError/NotImplementedError as :class:`_ItemReader`, ValueError when the
        destination's shape is not ``lengths``."""
        metadata = Metadata(state_dict_metadata={}, storage_data=self.storage_data)
        with _ItemReader(self.path, metadata) as reader:
            for item in plan.items:
                if item.type == LoadItemType.BYTE_IO:
                    planner.load_bytes(item, io.BytesIO(reader.read_bytes(item.storage_index)))
                    continue
                src = reader.read_tensor(item.storage_index)
                box = tuple(slice(int(o), int(o) + int(n)) for o, n in zip(item.storage_offsets, item.lengths))
                src = src[box]
                target = planner.resolve_tensor(item).detach()
                if tuple(target.shape) != tuple(src.shape):
                    raise ValueError(f"{self.path}: item {item.dest_index.fqn!r}: the destination has shape "
                                     f"{tuple(target.shape)}, the read box {tuple(src.shape)}")
                target.copy_(src)
                planner.commit_tensor(item, target)
        return _future(None)

    @property
    def checkpoint_id(self) -> Union[str, os.PathLike]:
        """The directory the checkpoint is read from."""
        return self.path

    @classmethod
    def validate_checkpoint_id(cls, checkpoint_id: Union[str, os.PathLike]) -> bool:
        """True for a Path, or a local path string whose existing parent is writable (torch's rule)."""
        return _validate_path(checkpoint_id)


__getattr__ = _module_getattr("torch.distributed.checkpoint.filesystem")
