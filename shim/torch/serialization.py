"""``torch.save`` / ``torch.load`` for the shim, in torch's own file format.

The format (what torch >= 1.6 writes by default and what real torch reads back):
a ZIP archive, entries stored uncompressed, every entry under one top-level folder (the file's stem, or
``archive`` for a buffer)::

    <archive>/data.pkl               pickle (protocol 2) of the object; tensors are reduced to
                                     torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride,
                                     requires_grad, backward_hooks) and storages to the persistent id
                                     ("storage", torch.<Type>Storage, key, location, numel)
    <archive>/.format_version        "1"
    <archive>/.storage_alignment     "64" (storage records start on 64-byte file offsets, so they can be mmapped)
    <archive>/byteorder              "little" | "big"
    <archive>/data/<key>             the raw bytes of storage <key> (numel * itemsize)
    <archive>/version                "3\\n"
    <archive>/.data/serialization_id a 40-digit identifier (torch's deterministic one)

The ZIP container is written by ``shim.torch._zip_writer.TorchZipWriter`` with real torch's exact layout (headers,
padding records, data descriptors, ZIP64 end records, serialization id), so the same object saved under the shim
and under real torch gives byte-identical files.

Storages are what tensors view: two tensors that view one storage write it once and, after loading, view one
storage again (their (storage, offset, size, stride) quadruples are kept). dtypes without a legacy storage class
(uint16/32/64) use ``torch._utils._rebuild_tensor_v3`` with ``torch.UntypedStorage`` and an explicit dtype, as torch
does. bfloat16 storages are carried as their raw 16-bit words (numpy has no bfloat16): bits are preserved.

The pickle is written by a subclass of Python's pure-Python pickler so that torch's globals
(``torch._utils._rebuild_tensor_v2``, ``torch.FloatStorage``, ``torch.float16``, ``torch.device``, ``torch.Size``)
are written by name without importing real torch. Loading resolves those names to the facade's own rebuild
functions (``weights_only=True`` through the allow-list unpickler in ``_weights_only_unpickler``).

Not supported (raise ``NotImplementedError`` naming the alternative): the legacy non-zip format
(``_use_new_zipfile_serialization=False`` and files written that way), ``mmap=True``, custom ``pickle_module``.
"""
from __future__ import annotations

import collections
import contextlib
import io
import os
import pickle
import sys
import zipfile
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import numpy as np

from shim.torch._weights_only_unpickler import WeightsOnlyUnpickler, user_safe_globals
from shim.torch._zip_writer import TorchZipWriter

__all__ = [
    "save",
    "load",
    "add_safe_globals",
    "get_safe_globals",
    "clear_safe_globals",
    "safe_globals",
    "DEFAULT_PROTOCOL",
    "STORAGE_DTYPES",
]

DEFAULT_PROTOCOL = 2
_STORAGE_ALIGNMENT = 64
_FILE_VERSION = b"3\n"


@dataclass(frozen=True)
class _DtypeRow:
    """One row of the storage dtype table."""

    name: str  # torch dtype name (``torch.<name>``)
    np_dtype: str  # numpy dtype that carries the bytes (bfloat16 -> uint16 words)
    legacy_storage: str | None  # ``torch.<X>Storage`` class name, None for dtypes saved with _rebuild_tensor_v3


# The dtypes a checkpoint may hold: torch dtype name -> how its bytes are carried. Source: torch's
# torch/storage.py `_dtype_to_storage_type_map` (legacy storage classes) and `_new_dtypes` (saved untyped).
STORAGE_DTYPES: dict[str, _DtypeRow] = {
    row.name: row
    for row in (
        _DtypeRow("float64", "<f8", "DoubleStorage"),
        _DtypeRow("float32", "<f4", "FloatStorage"),
        _DtypeRow("float16", "<f2", "HalfStorage"),
        _DtypeRow("bfloat16", "<u2", "BFloat16Storage"),
        _DtypeRow("int64", "<i8", "LongStorage"),
        _DtypeRow("int32", "<i4", "IntStorage"),
        _DtypeRow("int16", "<i2", "ShortStorage"),
        _DtypeRow("int8", "i1", "CharStorage"),
        _DtypeRow("uint8", "u1", "ByteStorage"),
        _DtypeRow("bool", "?", "BoolStorage"),
        _DtypeRow("complex64", "<c8", "ComplexFloatStorage"),
        _DtypeRow("complex128", "<c16", "ComplexDoubleStorage"),
        _DtypeRow("uint16", "<u2", None),
        _DtypeRow("uint32", "<u4", None),
        _DtypeRow("uint64", "<u8", None),
    )
}
_LEGACY_STORAGE_TO_DTYPE = {row.legacy_storage: row.name for row in STORAGE_DTYPES.values() if row.legacy_storage}

# torch's dtype aliases that may appear as globals in a pickle (``torch.float`` pickles as ``torch float32``,
# but hand-written pickles may use the alias)
_DTYPE_ALIASES = {
    "float": "float32", "double": "float64", "half": "float16", "long": "int64", "int": "int32",
    "short": "int16", "cfloat": "complex64", "cdouble": "complex128",
}


# --------------------------------------------------------------------------------------------------------------
# The facade adapter: the only place that touches the facade Tensor. Everything else works on numpy arrays.
# --------------------------------------------------------------------------------------------------------------

def _tensor_class():
    from shim.torch import _tensor

    return _tensor.Tensor


def _parameter_class():
    try:
        from shim.torch.nn.parameter import Parameter
    except ImportError:  # the nn namespace is not there (yet): no parameters can exist either
        return None
    return Parameter


def _dtype_name(dtype) -> str:
    """``torch.float32`` (facade dtype) -> ``"float32"``."""
    text = str(dtype)
    return text[len("torch."):] if text.startswith("torch.") else text


def _facade_dtype(name: str):
    from shim.torch._dtype import DTYPES

    try:
        return DTYPES[name]
    except KeyError:
        raise NotImplementedError(f"torch.load: dtype torch.{name} is not available in the shim") from None


def _tensor_to_numpy(t) -> np.ndarray:
    """A facade tensor's values as a C-contiguous numpy array in the carrier dtype of STORAGE_DTYPES.

    ``to_ms`` gives the true dtype (bfloat16 stays bfloat16 although the CPU facade stores it as float32); MindSpore
    hands bfloat16 to numpy as its own 2-byte bfloat16 type, reinterpreted here as the uint16 words.
    """
    from shim.torch._tensor import to_ms

    name = _dtype_name(t.dtype)
    if name not in STORAGE_DTYPES:
        raise NotImplementedError(f"torch.save: tensors of dtype torch.{name} cannot be saved by the shim")
    arr = to_ms(t).asnumpy()
    carrier = np.dtype(STORAGE_DTYPES[name].np_dtype)
    if arr.dtype != carrier:
        if arr.dtype.itemsize != carrier.itemsize:
            raise RuntimeError(f"torch.save: MindSpore returned {arr.dtype} for a torch.{name} tensor")
        arr = arr.view(carrier)  # bfloat16 -> its uint16 words, bit for bit
    return np.ascontiguousarray(arr)


def _numpy_to_tensor(arr: np.ndarray, dtype_name: str, device: str):
    """A numpy array in the carrier dtype -> facade tensor of ``torch.<dtype_name>`` reporting ``device``."""
    import mindspore as ms

    from shim.torch._tensor import wrap

    arr = np.ascontiguousarray(arr)
    if dtype_name == "bfloat16":
        ms_tensor = ms.Tensor(arr.view(np.uint16)).view(ms.bfloat16)  # bit-cast the words: exact
    else:
        ms_tensor = ms.Tensor(arr)
    return wrap(ms_tensor, dtype=_facade_dtype(dtype_name), device=device)


@dataclass
class _SaveView:
    """Where a facade tensor's elements live: ``storage_key`` identifies the storage (equal keys = one storage)."""

    storage_key: Any
    storage_numpy: Callable[[], np.ndarray]  # the whole storage, 1-D, carrier dtype
    storage_numel: int
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _contiguous_stride(size: Iterable[int]) -> tuple[int, ...]:
    stride, acc = [], 1
    for dim in reversed(tuple(size)):
        stride.append(acc)
        acc *= max(int(dim), 1)
    return tuple(reversed(stride))


def _save_view(t) -> _SaveView:
    """Describe facade tensor ``t`` as (storage, offset, size, stride).

    The facade's view model (shim/torch/_tensor.py): a view keeps its base tensor (``_vbase``, contiguous, owning
    the MindSpore tensor) and torch's geometry into it (``stride()``, ``storage_offset()``); a base is its own
    storage. So the storage of ``t`` is its base, and views of one base are written as one storage.
    """
    size = tuple(int(d) for d in t.shape)
    base = getattr(t, "_vbase", None)
    if base is None:
        base = t
    return _SaveView(
        storage_key=id(base),
        storage_numpy=lambda: _tensor_to_numpy(base).reshape(-1),
        storage_numel=int(base.numel()),
        offset=int(t.storage_offset()),
        size=size,
        stride=tuple(int(s) for s in t.stride()),
    )


def _tensor_location(t) -> str:
    dev = t.device
    text = str(dev)
    if getattr(dev, "type", text) != "cpu" and ":" not in text:
        text = f"{text}:0"
    return text


# --------------------------------------------------------------------------------------------------------------
# Saving
# --------------------------------------------------------------------------------------------------------------

class _GlobalRef:
    """A name written into the pickle as ``GLOBAL module name`` (resolved by whoever loads the file)."""

    __slots__ = ("module", "name")

    def __init__(self, module: str, name: str):
        self.module, self.name = module, name

    def __repr__(self) -> str:
        return f"{self.module}.{self.name}"

    def __call__(self, *args, **kwargs):  # pickle requires reduce functions to be callable; never called
        raise TypeError(f"{self!r} is a name written into a checkpoint, not a function of the shim")


_REFS: dict[tuple[str, str], _GlobalRef] = {}


def _ref(module: str, name: str) -> _GlobalRef:
    return _REFS.setdefault((module, name), _GlobalRef(module, name))


class _SavedStorage:
    """A storage met while pickling: the persistent id is ``("storage", <StorageType>, key, location, numel)``."""

    def __init__(self, key: str, view: _SaveView, dtype_name: str, location: str):
        self.key, self.view, self.dtype_name, self.location = key, view, dtype_name, location


def _stock_dispatch() -> dict:
    """The standard library pickler's own type dispatch. Built from its methods because ``pickle._Pickler.dispatch``
    may be patched by other libraries in the process (MindSpore imports ``dill``, which registers its savers
    there, e.g. for ``dict`` and functions)."""
    import types

    p = pickle._Pickler
    table = {type(None): p.save_none, bool: p.save_bool, int: p.save_long, float: p.save_float,
             bytes: p.save_bytes, bytearray: p.save_bytearray, str: p.save_str, tuple: p.save_tuple,
             list: p.save_list, dict: p.save_dict, set: p.save_set, frozenset: p.save_frozenset,
             types.FunctionType: lambda self, obj: self.save_global(obj), type: p.save_type}
    if hasattr(pickle, "PickleBuffer"):
        table[pickle.PickleBuffer] = p.save_picklebuffer
    return table


_STOCK_DISPATCH = _stock_dispatch()


class _Pickler(pickle._Pickler):  # the pure-Python pickler: lets us write torch's global names by hand
    dispatch = _STOCK_DISPATCH

    def __init__(self, file, protocol: int):
        super().__init__(file, protocol=protocol)
        self.storages: dict[str, _SavedStorage] = {}
        self._keys: dict[Any, _SavedStorage] = {}
        self._tensor_cls = _tensor_class()
        self._param_cls = _parameter_class()
        from shim.torch import layout
        from shim.torch._device import device
        from shim.torch._dtype import dtype
        from shim.torch._tensor import Size

        self._dtype_cls, self._device_cls, self._size_cls, self._layout_cls = dtype, device, Size, layout

    # -- storages ------------------------------------------------------------------------------------------
    def persistent_id(self, obj):
        if isinstance(obj, _SavedStorage):
            row = STORAGE_DTYPES[obj.dtype_name]
            if row.legacy_storage is None:
                nbytes = obj.view.storage_numel * np.dtype(row.np_dtype).itemsize
                return ("storage", _ref("torch.storage", "UntypedStorage"), obj.key, obj.location, nbytes)
            return ("storage", _ref("torch", row.legacy_storage), obj.key, obj.location, obj.view.storage_numel)
        return None

    def _storage_for(self, t) -> tuple[_SavedStorage, _SaveView]:
        view = _save_view(t)
        dtype_name = _dtype_name(t.dtype)
        if dtype_name not in STORAGE_DTYPES:
            raise NotImplementedError(f"torch.save: tensors of dtype torch.{dtype_name} cannot be saved by the shim")
        saved = self._keys.get(view.storage_key)
        if saved is None:
            saved = _SavedStorage(str(len(self.storages)), view, dtype_name, _tensor_location(t))
            self._keys[view.storage_key] = saved
            self.storages[saved.key] = saved
        elif saved.dtype_name != dtype_name:
            raise RuntimeError("torch.save: cannot save multiple tensors that view the same storage as different dtypes")
        return saved, view

    def _tensor_reduce(self, t, requires_grad: bool | None = None):
        saved, view = self._storage_for(t)
        requires_grad = bool(t.requires_grad) if requires_grad is None else requires_grad
        args = (saved, view.offset, view.size, view.stride, requires_grad, collections.OrderedDict())
        if STORAGE_DTYPES[saved.dtype_name].legacy_storage is None:
            return (_ref("torch._utils", "_rebuild_tensor_v3"), args + (_dtype_ref(saved.dtype_name),))
        return (_ref("torch._utils", "_rebuild_tensor_v2"), args)

    # -- dispatch ------------------------------------------------------------------------------------------
    def reducer_override(self, obj):
        if self._param_cls is not None and issubclass(type(obj), self._param_cls):
            plain = _PlainTensor(obj)
            state = _python_state(obj)
            if state:
                return (_ref("torch._utils", "_rebuild_parameter_with_state"),
                        (plain, bool(obj.requires_grad), collections.OrderedDict(), state))
            return (_ref("torch._utils", "_rebuild_parameter"),
                    (plain, bool(obj.requires_grad), collections.OrderedDict()))
        if isinstance(obj, _PlainTensor):
            return self._tensor_reduce(obj.tensor, requires_grad=False)  # torch pickles `param.data` (detached)
        if isinstance(obj, self._tensor_cls):
            state = _python_state(obj)
            if state:  # torch: a tensor with Python attributes goes through _rebuild_from_type_v2
                func, args = self._tensor_reduce(obj)
                return (_ref("torch._tensor", "_rebuild_from_type_v2"), (func, _ref("torch", "Tensor"), args, state))
            return self._tensor_reduce(obj)
        if self._device_cls is not None and isinstance(obj, self._device_cls):
            args = (obj.type,) if obj.index is None else (obj.type, int(obj.index))
            return (_ref("torch", "device"), args)
        if self._size_cls is not None and type(obj) is self._size_cls:
            return (_ref("torch", "Size"), (tuple(int(d) for d in obj),))
        if isinstance(obj, self._layout_cls):  # torch registers this reduction for torch.layout with copyreg
            return (_ref("torch.serialization", "_get_layout"), (f"torch.{obj.name}",))
        return NotImplemented

    def save(self, obj, save_persistent_id=True):
        if isinstance(obj, _GlobalRef) or isinstance(obj, self._dtype_cls):
            self._save_global_ref(obj)
            return
        super().save(obj, save_persistent_id)

    def save_global(self, obj, name=None):
        """Classes and functions of the facade are written under torch's names (``shim.torch.nn.X`` ->
        ``torch.nn.X``: the facade mirrors torch's module paths), so a pickled facade object names what real
        torch would; loading under the shim maps ``torch.*`` back to ``shim.torch.*``."""
        module = getattr(obj, "__module__", None) or ""
        if module == "shim.torch" or module.startswith("shim.torch."):
            memo = self.memo.get(id(obj))
            if memo is not None:
                self.write(self.get(memo[0]))
                return
            qual = name or getattr(obj, "__qualname__", None) or obj.__name__
            self.write(pickle.GLOBAL + f"torch{module[len('shim.torch'):]}\n{qual}\n".encode("utf-8"))
            self.memoize(obj)
            return
        super().save_global(obj, name)

    def _save_global_ref(self, obj):
        memo = self.memo.get(id(obj))
        if memo is not None:
            self.write(self.get(memo[0]))
            return
        ref = obj if isinstance(obj, _GlobalRef) else _dtype_ref(_dtype_name(obj))
        self.write(pickle.GLOBAL + f"{ref.module}\n{ref.name}\n".encode("utf-8"))
        self.memoize(obj)


def _python_state(t) -> dict:
    """The Python attributes set on a facade tensor (torch pickles ``__dict__``; attribute names starting with an
    underscore are the facade's own caches and are not written)."""
    attrs = getattr(t, "__dict__", None) or {}
    return {k: v for k, v in attrs.items() if not k.startswith("_")}


class _PlainTensor:
    """Marks the data of a Parameter so it pickles as a plain tensor inside ``_rebuild_parameter``."""

    __slots__ = ("tensor",)

    def __init__(self, tensor):
        self.tensor = tensor


def _dtype_ref(name: str) -> _GlobalRef:
    return _ref("torch", name)


def _archive_name(f) -> str:
    if isinstance(f, (str, os.PathLike)):
        stem = os.path.splitext(os.path.basename(os.fspath(f)))[0]
        return stem or "archive"
    return "archive"


def save(obj: Any, f, pickle_module: Any = None, pickle_protocol: int = DEFAULT_PROTOCOL,
         _use_new_zipfile_serialization: bool = True, _disable_byteorder_record: bool = False) -> None:
    """Save ``obj`` to ``f`` in torch's zip format (loadable by real torch, ``weights_only=True`` included).

    Args:
        obj: tensors, parameters, dtypes, devices, ``torch.Size`` and any picklable Python data around them
            (dicts, ``OrderedDict`` with attributes such as a state dict's ``_metadata``, lists, tuples, numbers).
        f: a path (``str``/``os.PathLike``) or a binary file-like object opened for writing (seekable or not).
        pickle_module: must be ``None`` or the standard :mod:`pickle`.
        pickle_protocol: pickle protocol of ``data.pkl`` (torch's default 2).
        _use_new_zipfile_serialization: must be True; the legacy format is not written by the shim.
        _disable_byteorder_record: omit the ``byteorder`` record (as torch's flag does).

    Raises:
        NotImplementedError: legacy format, another pickle module, or a dtype outside :data:`STORAGE_DTYPES`.
        RuntimeError: two tensors view one storage with different dtypes (torch refuses this too).

    Mapping: tensor values are read from MindSpore (``Tensor.asnumpy``) on the host; views that the facade
    reports as sharing a storage are written once.
    """
    if not _use_new_zipfile_serialization:
        raise NotImplementedError("torch.save(_use_new_zipfile_serialization=False): the legacy format is not "
                                  "written by the shim; use the default zip format")
    if pickle_module is not None and pickle_module is not pickle:
        raise NotImplementedError("torch.save(pickle_module=...): only the standard pickle module is supported")
    buf = io.BytesIO()
    pickler = _Pickler(buf, protocol=pickle_protocol)
    pickler.dump(obj)
    prefix = _archive_name(f) + "/"

    with contextlib.ExitStack() as stack:
        if isinstance(f, (str, os.PathLike)):
            fh = stack.enter_context(open(os.fspath(f), "wb"))
        else:
            if not hasattr(f, "write"):
                raise TypeError(f"torch.save: f must be a path or a writable binary file object, got {type(f).__name__}")
            fh = f
        zw = TorchZipWriter(fh, prefix[:-1], _STORAGE_ALIGNMENT)  # torch's exact bytes (shim/torch/_zip_writer.py)
        zw.write_record("data.pkl", buf.getvalue())
        zw.write_record(".format_version", b"1")
        zw.write_record(".storage_alignment", str(_STORAGE_ALIGNMENT).encode())
        if not _disable_byteorder_record:
            zw.write_record("byteorder", sys.byteorder.encode())
        for key, saved in pickler.storages.items():
            data = saved.view.storage_numpy()
            if sys.byteorder == "big" and data.dtype.itemsize > 1:
                data = data.astype(data.dtype.newbyteorder(">"))  # records follow the byteorder record
            zw.write_record(f"data/{key}", np.ascontiguousarray(data))
        zw.write_record("version", _FILE_VERSION)
        if _disable_byteorder_record:  # torch's writer adds the record at the end of the file anyway
            zw.write_record("byteorder", sys.byteorder.encode())
        zw.finish()


# --------------------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------------------

class _StorageType:
    """What ``torch.FloatStorage`` … / ``torch.UntypedStorage`` resolve to while loading."""

    def __init__(self, dtype_name: str, untyped: bool):
        self.dtype_name, self.untyped = dtype_name, untyped

    def __repr__(self) -> str:
        return "torch.UntypedStorage" if self.untyped else f"torch.{STORAGE_DTYPES[self.dtype_name].legacy_storage}"


class LoadedStorage:
    """A storage read from a checkpoint: a flat numpy array (carrier dtype) plus its target device.

    This is what a ``map_location`` callable receives as ``storage`` (torch passes a CPU storage); it supports
    the usual idioms ``storage`` (keep on CPU), ``storage.cuda(i)``, ``storage.cpu()``, ``storage.to(device)``.
    """

    def __init__(self, data: np.ndarray, dtype_name: str, location: str):
        self.data = data
        self.dtype_name = dtype_name
        self.device = "cpu"
        self.location = location
        self._facade_base = None  # the flat facade tensor all views of this storage are made from

    def nbytes(self) -> int:
        """Size of the storage in bytes."""
        return int(self.data.nbytes)

    def size(self) -> int:
        """Number of elements."""
        return int(self.data.size)

    def cpu(self) -> "LoadedStorage":
        """Place tensors of this storage on the CPU."""
        self.device = "cpu"
        return self

    def cuda(self, device: Any = None) -> "LoadedStorage":
        """Place tensors of this storage on the accelerator (``cuda:<device>``; the current device when None)."""
        if device is None:
            self.device = "cuda"
        else:
            self.device = str(device) if not isinstance(device, int) else f"cuda:{device}"
        return self

    def to(self, device: Any) -> "LoadedStorage":
        """Place tensors of this storage on ``device`` (str, int or torch.device)."""
        self.device = f"cuda:{device}" if isinstance(device, int) else str(device)
        return self


def _resolve_location(map_location, storage: LoadedStorage, location: str) -> None:
    """Apply torch's ``map_location`` rules to one storage (sets ``storage.device``)."""
    if map_location is None:
        storage.device = location
    elif isinstance(map_location, dict):
        storage.device = str(map_location.get(location, location))
    elif isinstance(map_location, (str, bytes)):
        storage.device = map_location.decode() if isinstance(map_location, bytes) else map_location
    elif isinstance(map_location, int):
        storage.device = f"cuda:{map_location}"
    elif callable(map_location):
        result = map_location(storage, location)
        if result is None:
            storage.device = location
        elif isinstance(result, LoadedStorage):
            if result is not storage:
                storage.device = result.device
        else:
            raise TypeError(f"torch.load: map_location callable returned {type(result).__name__}; expected the "
                            f"storage it was given (optionally moved with .cuda()/.cpu()/.to()) or None")
    elif hasattr(map_location, "type"):  # torch.device
        storage.device = str(map_location)
    else:
        raise TypeError(f"torch.load: map_location must be None, a str, an int, a torch.device, a dict or a "
                        f"callable; got {type(map_location).__name__}")


def _view_of_storage(storage: LoadedStorage, dtype_name: str, offset: int, size, stride, requires_grad: bool):
    """Build the facade tensor ``(storage, offset, size, stride)`` — a view of the storage's flat tensor."""
    size = tuple(int(d) for d in size)
    stride = tuple(int(s) for s in stride)
    numel = int(np.prod(size, dtype=np.int64))
    data = storage.data
    if data.dtype != np.dtype(STORAGE_DTYPES[dtype_name].np_dtype):  # an untyped (v3) storage
        data = data.view(np.dtype(STORAGE_DTYPES[dtype_name].np_dtype))
    if numel > 0:
        last = offset + sum((d - 1) * s for d, s in zip(size, stride))
        if offset < 0 or last >= data.size or any(s < 0 for s in stride):
            raise RuntimeError(f"torch.load: tensor (offset={offset}, size={size}, stride={stride}) lies outside "
                               f"its storage of {data.size} elements: the file is corrupt")
    if storage._facade_base is None:
        storage._facade_base = _numpy_to_tensor(data, dtype_name, storage.device)
    base = storage._facade_base
    if offset == 0 and numel == data.size and stride == _contiguous_stride(size):
        t = base.view(size)
    else:
        as_strided = getattr(base, "as_strided", None)
        if as_strided is not None:
            t = as_strided(size, stride, offset)
        else:  # the facade has no aliasing views: a copy of the elements (sharing is lost)
            picked = np.lib.stride_tricks.as_strided(
                data[offset:], shape=size, strides=tuple(s * data.itemsize for s in stride)) if numel else \
                np.empty(size, dtype=data.dtype)
            t = _numpy_to_tensor(np.array(picked), dtype_name, storage.device)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks, metadata=None):
    """torch._utils._rebuild_tensor_v2 for the facade (legacy-typed storages)."""
    return _view_of_storage(storage, storage.dtype_name, storage_offset, size, stride, requires_grad)


def _rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad, backward_hooks, dtype, metadata=None):
    """torch._utils._rebuild_tensor_v3 for the facade (untyped storage + explicit dtype)."""
    return _view_of_storage(storage, _dtype_name(dtype), storage_offset, size, stride, requires_grad)


def _rebuild_parameter(data, requires_grad, backward_hooks):
    """torch._utils._rebuild_parameter for the facade."""
    param_cls = _parameter_class()
    if param_cls is None:
        raise NotImplementedError("torch.load: the checkpoint holds an nn.Parameter but shim.torch.nn.Parameter "
                                  "is not available")
    return param_cls(data, requires_grad)


def _rebuild_parameter_with_state(data, requires_grad, backward_hooks, state):
    """torch._utils._rebuild_parameter_with_state: a parameter plus its Python attributes."""
    param = _rebuild_parameter(data, requires_grad, backward_hooks)
    _set_state(param, state)
    return param


def _set_state(obj, state):
    if not state:
        return obj
    if isinstance(state, tuple):  # (dict, slots)
        dict_state, slots = state
    else:
        dict_state, slots = state, None
    for table in (dict_state, slots):
        for k, v in (table or {}).items():
            setattr(obj, k, v)
    return obj


def _rebuild_from_type_v2(func, new_type, args, state):
    """torch._tensor._rebuild_from_type_v2: a tensor (or Parameter) with Python attributes."""
    ret = func(*args)
    if new_type is _SUBCLASS_PARAMETER:
        ret = _rebuild_parameter(ret, bool(ret.requires_grad), None)
    elif new_type is not _SUBCLASS_TENSOR:
        raise pickle.UnpicklingError(f"torch.load: tensor subclass {new_type!r} is not supported by the shim")
    return _set_state(ret, state)


class _TypeMarker:
    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return self.name


_SUBCLASS_TENSOR = _TypeMarker("torch.Tensor")
_SUBCLASS_PARAMETER = _TypeMarker("torch.nn.Parameter")


def _device_ctor(*args):
    from shim.torch._device import device

    return device(*args)


def _size_ctor(dims=()):
    from shim.torch._tensor import Size

    return Size(dims)


def _get_layout(name: str):
    """``torch.serialization._get_layout``: the layout named `name` (``"torch.strided"``). Real torch pickles every
    ``torch.layout`` as a call of this function (a DCP ``.metadata`` file holds one per saved tensor); so does the
    facade's pickler. Raises pickle.UnpicklingError for a layout the shim does not have."""
    import shim.torch as torch

    value = getattr(torch, str(name).rpartition(".")[2], None)
    if not isinstance(value, torch.layout):
        raise pickle.UnpicklingError(f"torch.serialization._get_layout: the shim has no layout {name!r}")
    return value


def _torch_globals() -> dict[tuple[str, str], Any]:
    """``(module, name)`` -> facade object for every torch global a checkpoint may name."""
    table: dict[tuple[str, str], Any] = {
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
        ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter_with_state,
        ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
        ("torch", "Tensor"): _SUBCLASS_TENSOR,
        ("torch._tensor", "Tensor"): _SUBCLASS_TENSOR,
        ("torch.nn.parameter", "Parameter"): _SUBCLASS_PARAMETER,
        ("torch", "device"): _device_ctor,
        ("torch", "Size"): _size_ctor,
        ("torch", "UntypedStorage"): _StorageType("uint8", untyped=True),
        ("torch.storage", "UntypedStorage"): _StorageType("uint8", untyped=True),
    }
    for storage_name, dtype_name in _LEGACY_STORAGE_TO_DTYPE.items():
        table[("torch", storage_name)] = _StorageType(dtype_name, untyped=False)
    from shim.torch._dtype import DTYPES

    for dtype_name, dt in DTYPES.items():
        table[("torch", dtype_name)] = dt
    for alias, dtype_name in _DTYPE_ALIASES.items():
        table[("torch", alias)] = DTYPES[dtype_name]
    return table


class _FullUnpickler(pickle.Unpickler):
    """``weights_only=False``: any global, with torch's names served by the facade."""

    def __init__(self, file, table, persistent_load):
        super().__init__(file)
        self._table = table
        self._persistent_load_fn = persistent_load

    def persistent_load(self, pid):
        return self._persistent_load_fn(pid)

    def find_class(self, module, name):
        if (module, name) in self._table:
            return self._table[(module, name)]
        if module == "torch" or module.startswith("torch."):
            import importlib

            target = importlib.import_module("shim." + module)
            obj = target
            for part in name.split("."):
                obj = getattr(obj, part)
            return obj
        return super().find_class(module, name)


def _is_legacy_file(fh) -> bool:
    pos = fh.tell()
    head = fh.read(8)
    fh.seek(pos)
    return head[:2] == b"\x80\x02" or head[:1] == b"\x80"


def load(f, map_location: Any = None, pickle_module: Any = None, *, weights_only: bool | None = None,
         mmap: bool | None = None, **pickle_load_args) -> Any:
    """Load an object saved with ``torch.save`` (by real torch or by the shim).

    Args:
        f: a path or a readable, seekable binary file object holding a torch zip checkpoint.
        map_location: where storages go (torch's rules): None keeps each storage's saved location (``cpu``,
            ``cuda:N`` -> the facade's devices); a str / ``torch.device`` / int sends all there; a dict maps saved
            location strings to new ones; a callable ``fn(storage, location)`` returns the storage (moved with
            ``.cuda()``/``.cpu()``/``.to()``) or None for the default.
        pickle_module: must be None or :mod:`pickle`.
        weights_only: True (torch >= 2.6's default, also when None) loads through the allow-list unpickler;
            False allows arbitrary globals — only for trusted files.
        mmap: must be falsy (memory-mapped loading is not provided by the shim).
        **pickle_load_args: only ``encoding`` is accepted (as torch; it matters only for Python 2 pickles).

    Returns:
        the saved object with facade tensors; views of one storage share one facade storage again.

    Raises:
        pickle.UnpicklingError: ``weights_only`` and the file names a global outside the allow-list.
        NotImplementedError: legacy (non-zip) files, ``mmap=True``, another pickle module.
        RuntimeError: a file that is neither a torch zip checkpoint nor intact.
    """
    if mmap:
        raise NotImplementedError("torch.load(mmap=True) is not supported by the shim; load without mmap")
    if pickle_module is not None and pickle_module is not pickle:
        raise NotImplementedError("torch.load(pickle_module=...): only the standard pickle module is supported")
    unknown = set(pickle_load_args) - {"encoding"}
    if unknown:
        raise TypeError(f"torch.load: unexpected arguments {sorted(unknown)}")
    if weights_only is None:
        weights_only = os.environ.get("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "0") not in ("1", "true", "True")

    with contextlib.ExitStack() as stack:
        if isinstance(f, (str, os.PathLike)):
            fh = stack.enter_context(open(os.fspath(f), "rb"))
        else:
            if not hasattr(f, "read"):
                raise TypeError(f"torch.load: f must be a path or a readable binary file object, got {type(f).__name__}")
            fh = f
        if not zipfile.is_zipfile(fh):
            fh.seek(0)
            if _is_legacy_file(fh):
                raise NotImplementedError("torch.load: this file is in torch's legacy (non-zip, pre-1.6) format, "
                                          "which the shim does not read; re-save it with real torch's default format")
            raise RuntimeError("torch.load: not a torch checkpoint (expected a zip archive with data.pkl)")
        fh.seek(0)
        zf = stack.enter_context(zipfile.ZipFile(fh))
        names = zf.namelist()
        pkl_names = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
        if not pkl_names:
            raise RuntimeError(f"torch.load: no <archive>/data.pkl record in the zip archive (records: {names[:5]})")
        prefix = pkl_names[0][: -len("data.pkl")]
        byteorder = "little"
        if prefix + "byteorder" in names:
            byteorder = zf.read(prefix + "byteorder").decode()
        storages: dict[str, LoadedStorage] = {}

        def persistent_load(pid):
            if not isinstance(pid, tuple) or len(pid) != 5 or pid[0] != "storage":
                raise pickle.UnpicklingError(f"torch.load: unknown persistent id {pid!r}")
            _, storage_type, key, location, numel = pid
            if not isinstance(storage_type, _StorageType):
                raise pickle.UnpicklingError(f"torch.load: {storage_type!r} is not a storage type")
            key = str(key)
            if key in storages:
                return storages[key]
            carrier = np.dtype(STORAGE_DTYPES[storage_type.dtype_name].np_dtype)
            raw = zf.read(f"{prefix}data/{key}")
            if byteorder != sys.byteorder and carrier.itemsize > 1:
                data = np.frombuffer(raw, dtype=carrier.newbyteorder(">" if byteorder == "big" else "<"))
                data = data.astype(carrier.newbyteorder("="))
            else:
                data = np.frombuffer(raw, dtype=carrier)
            if data.size != int(numel):
                raise RuntimeError(f"torch.load: storage {key} holds {data.size} elements, the pickle says {numel}")
            storage = LoadedStorage(data, storage_type.dtype_name, str(location))
            _resolve_location(map_location, storage, str(location))
            storages[key] = storage
            return storage

        table = _torch_globals()
        pkl = io.BytesIO(zf.read(prefix + "data.pkl"))
        if weights_only:
            unpickler = WeightsOnlyUnpickler(pkl, table, persistent_load)
        else:
            unpickler = _FullUnpickler(pkl, table, persistent_load)
        return unpickler.load()


# --------------------------------------------------------------------------------------------------------------
# torch.serialization's safe-globals registry (used by weights_only loading)
# --------------------------------------------------------------------------------------------------------------

def _global_key(obj) -> tuple[str, str]:
    if isinstance(obj, tuple) and len(obj) == 2 and isinstance(obj[1], str):
        obj, name = obj
        module, _, qual = name.rpartition(".")
        return module, qual
    return obj.__module__, obj.__qualname__


def add_safe_globals(safe_globals: list) -> None:
    """Allow these classes/functions in ``weights_only`` loads (torch's API).

    Entries are objects (found by ``__module__``/``__qualname__``) or ``(obj, "module.name")`` pairs.
    """
    for entry in safe_globals:
        key = _global_key(entry)
        user_safe_globals[key] = entry[0] if isinstance(entry, tuple) else entry


def get_safe_globals() -> list:
    """The objects registered with :func:`add_safe_globals`."""
    return list(user_safe_globals.values())


def clear_safe_globals() -> None:
    """Forget every object registered with :func:`add_safe_globals`."""
    user_safe_globals.clear()


@contextlib.contextmanager
def safe_globals(globals_list: list):
    """Context manager: :func:`add_safe_globals` for the duration of the block only."""
    before = dict(user_safe_globals)
    add_safe_globals(globals_list)
    try:
        yield
    finally:
        user_safe_globals.clear()
        user_safe_globals.update(before)


def __getattr__(name: str):
    if name.startswith("__") and name.endswith("__"):
        raise AttributeError(f"module 'torch.serialization' has no attribute '{name}'")
    from shim.torch._unsupported import UnsupportedAPI

    raise UnsupportedAPI(f"torch.serialization.{name} is not implemented by the shim (provided: {', '.join(__all__)})")
