"""``safetensors.torch`` for facade tensors: ``save``, ``save_file``, ``load``, ``load_file``.

Why: ``safetensors.torch`` reads tensor bytes through ``Tensor.data_ptr()`` + ctypes (save) and builds tensors
with ``torch.UntypedStorage.from_file`` / ``torch.asarray`` / ``Tensor.view(dtype)`` (load). The facade's tensors live
in MindSpore (``data_ptr`` is an identifier, not a host address; bfloat16 is float32-backed on the CPU), so those
paths cannot work — and reading a fake pointer would read arbitrary memory. These replacements move the bytes
through numpy and leave the file format to the safetensors library itself: ``safetensors.serialize`` /
``serialize_file`` (``TensorSpec`` over numpy buffers) to write, ``safe_open(framework="numpy")`` (memory-mapped,
one tensor at a time) and ``safetensors.deserialize`` to read. bfloat16 travels as its 16-bit words, so bits are
preserved both ways.

:func:`install` puts them into ``safetensors.torch`` (now, or when it is first imported). ``safetensors.safe_open``
is wrapped too (:class:`safe_open`): with ``framework="pt"``/``"torch"`` (as HF transformers calls it) it reads
through ``framework="numpy"`` and hands out facade tensors (``get_tensor``; ``get_slice(name)[idx]``); other
frameworks pass through unchanged.
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
from typing import Any

import numpy as np

__all__ = ["save", "save_file", "load", "load_file", "install", "SAFETENSORS_DTYPES"]

# safetensors dtype code (header "dtype") -> torch dtype name. Source: the safetensors format specification.
SAFETENSORS_DTYPES = {
    "F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16", "I64": "int64", "I32": "int32",
    "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool", "U16": "uint16", "U32": "uint32",
    "U64": "uint64", "C64": "complex64",
}


def _check_tensor_dict(tensors: Any, api: str) -> None:
    from shim.torch._tensor import Tensor

    if not isinstance(tensors, dict):
        raise ValueError(f"{api}: expected a dict of [str, torch.Tensor] but received {type(tensors)}")
    shared: dict[int, list[tuple[str, int, int]]] = {}
    for name, t in tensors.items():
        if not isinstance(name, str):
            raise ValueError(f"{api}: key {name!r} is not a str")
        if not isinstance(t, Tensor):
            raise ValueError(f"{api}: key `{name}` is invalid, expected torch.Tensor but received {type(t)}")
        if not t.is_contiguous():
            raise ValueError(f"{api}: you are trying to save a non contiguous tensor: `{name}`; call .contiguous() "
                             f"on it before saving")
        base = t._vbase if t._vbase is not None else t
        start = t.storage_offset()
        shared.setdefault(id(base), []).append((name, start, start + t.numel()))
    for spans in shared.values():
        spans.sort(key=lambda s: s[1])
        for (a, _, a_end), (b, b_start, _) in zip(spans, spans[1:]):
            if b_start < a_end:
                raise RuntimeError(f"{api}: tensors `{a}` and `{b}` share memory; save the full tensor once and "
                                   f"re-slice after loading (safetensors refuses shared tensors)")


def _specs(tensors: dict, keep_alive: list) -> dict:
    from safetensors import TensorSpec

    from shim.torch.serialization import _dtype_name, _tensor_to_numpy

    specs = {}
    for name, t in tensors.items():
        arr = _tensor_to_numpy(t)  # C-contiguous, bfloat16 as uint16 words
        if sys.byteorder == "big" and arr.dtype.itemsize > 1:
            arr = arr.byteswap()  # safetensors files are little-endian
        keep_alive.append(arr)
        specs[name] = TensorSpec(dtype=_dtype_name(t.dtype), shape=[int(d) for d in t.shape],
                                 data_ptr=int(arr.ctypes.data), data_len=int(arr.nbytes))
    return specs


def save(tensors: dict, metadata: dict | None = None) -> bytes:
    """The safetensors bytes of ``{name: tensor}`` (``safetensors.torch.save``'s contract).

    Raises ValueError for a non-dict, non-tensor values or non-contiguous tensors; RuntimeError for tensors that
    share memory (as safetensors does).
    """
    from safetensors import serialize

    _check_tensor_dict(tensors, "safetensors.torch.save")
    keep_alive: list = []
    return bytes(serialize(_specs(tensors, keep_alive), metadata=metadata))


def save_file(tensors: dict, filename: str | os.PathLike, metadata: dict | None = None) -> None:
    """Write ``{name: tensor}`` to ``filename`` in the safetensors format (``safetensors.torch.save_file``)."""
    from safetensors import serialize_file

    _check_tensor_dict(tensors, "safetensors.torch.save_file")
    keep_alive: list = []
    serialize_file(_specs(tensors, keep_alive), os.fspath(filename), metadata=metadata)


def _to_facade(arr: np.ndarray, code: str, shape, device: Any):
    from shim.torch.serialization import STORAGE_DTYPES, _numpy_to_tensor

    if code not in SAFETENSORS_DTYPES:
        raise NotImplementedError(f"safetensors dtype {code} is not supported by the shim "
                                  f"(supported: {', '.join(SAFETENSORS_DTYPES)})")
    name = SAFETENSORS_DTYPES[code]
    carrier = np.dtype(STORAGE_DTYPES[name].np_dtype)
    if arr.dtype != carrier:
        arr = arr.view(carrier)  # bfloat16 (MindSpore's numpy type) -> uint16 words
    if sys.byteorder == "big" and carrier.itemsize > 1:
        arr = arr.byteswap()
    return _numpy_to_tensor(arr.reshape([int(d) for d in shape]), name, _device_str(device))


def _device_str(device: Any) -> str:
    if isinstance(device, int):
        return f"cuda:{device}"
    return str(device)


def load(data: bytes) -> dict:
    """Tensors from safetensors bytes (``safetensors.torch.load``), on the CPU."""
    from safetensors import deserialize

    out = {}
    for name, info in deserialize(data):
        code = info["dtype"]
        if code not in SAFETENSORS_DTYPES:
            raise NotImplementedError(f"safetensors dtype {code} of `{name}` is not supported by the shim")
        from shim.torch.serialization import STORAGE_DTYPES

        carrier = np.dtype(STORAGE_DTYPES[SAFETENSORS_DTYPES[code]].np_dtype)
        arr = np.frombuffer(bytes(info["data"]), dtype=carrier)
        out[name] = _to_facade(arr, code, info["shape"], "cpu")
    return out


def load_file(filename: str | os.PathLike, device: Any = "cpu") -> dict:
    """Tensors of a safetensors file (``safetensors.torch.load_file``), placed on ``device`` (str, int = cuda index).

    Reads one tensor at a time from the memory-mapped file (``safe_open(framework="numpy")``).
    """
    from safetensors import safe_open

    import mindspore  # noqa: F401  (registers numpy's "bfloat16" dtype, which safetensors' numpy path needs)

    out = {}
    with safe_open(os.fspath(filename), framework="numpy") as handle:
        for name in handle.keys():
            tslice = handle.get_slice(name)
            out[name] = _to_facade(handle.get_tensor(name), tslice.get_dtype(), tslice.get_shape(), device)
    return out


class _FacadeSlice:
    """``safe_open(framework="pt").get_slice(name)``: shape/dtype, and ``[idx]`` reads that part as a tensor."""

    def __init__(self, np_slice, device):
        self._s = np_slice
        self._device = device

    def get_shape(self):
        return self._s.get_shape()

    def get_dtype(self):
        return self._s.get_dtype()

    def __getitem__(self, idx):
        arr = np.asarray(self._s[idx])
        return _to_facade(arr, self._s.get_dtype(), arr.shape, self._device)


class safe_open:
    """``safetensors.safe_open`` serving facade tensors for ``framework="pt"`` (see the module doc); ``device``
    places the tensors (str or cuda index); ``backend`` ("mmap"/"pread") is passed to the numpy reader."""

    def __init__(self, filename, framework, device="cpu", **kwargs):
        import mindspore  # noqa: F401  (registers numpy's "bfloat16" dtype, which safetensors' numpy path needs)

        self._pt = framework in ("pt", "torch")
        self._device = device
        if self._pt:
            self._h = _ORIGINAL_SAFE_OPEN[0](filename, framework="numpy", **kwargs)
        else:
            self._h = _ORIGINAL_SAFE_OPEN[0](filename, framework, device=device, **kwargs)

    def __enter__(self):
        self._h.__enter__()
        return self

    def __exit__(self, *exc):
        return self._h.__exit__(*exc)

    def keys(self):
        return self._h.keys()

    def offset_keys(self):
        return self._h.offset_keys()

    def metadata(self):
        return self._h.metadata()

    def get_slice(self, name):
        sl = self._h.get_slice(name)
        return _FacadeSlice(sl, self._device) if self._pt else sl

    def get_tensor(self, name):
        if not self._pt:
            return self._h.get_tensor(name)
        sl = self._h.get_slice(name)
        return _to_facade(self._h.get_tensor(name), sl.get_dtype(), sl.get_shape(), self._device)


_ORIGINAL_SAFE_OPEN: list = [None]


def _patch_top(module) -> None:
    """Wrap ``safetensors.safe_open`` (idempotent)."""
    if getattr(module, "safe_open", None) is safe_open:
        return
    _ORIGINAL_SAFE_OPEN[0] = module.safe_open
    module.safe_open = safe_open


_REPLACEMENTS = {"save": save, "save_file": save_file, "load": load, "load_file": load_file}


def _patch(module) -> None:
    for name, fn in _REPLACEMENTS.items():
        if not hasattr(module, name):
            raise RuntimeError(f"safetensors.torch has no {name}: this safetensors version is not supported")
        setattr(module, name, fn)
    module.__shim_patched__ = True


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Finds ``safetensors.torch`` through the other finders and patches it right after it executes."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in ("safetensors", "safetensors.torch"):
            return None
        patch = _patch if fullname == "safetensors.torch" else _patch_top
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                original = spec.loader

                class _Loader(importlib.abc.Loader):
                    def create_module(self, spec_):
                        return original.create_module(spec_)

                    def exec_module(self, module):
                        original.exec_module(module)
                        patch(module)

                spec.loader = _Loader()
                return spec
        return None


_installed = [False]


def install() -> None:
    """Serve ``safetensors.torch.{save,save_file,load,load_file}`` with the facade versions (idempotent)."""
    if "safetensors" in sys.modules:
        _patch_top(sys.modules["safetensors"])
    if "safetensors.torch" in sys.modules:
        _patch(sys.modules["safetensors.torch"])
    if not _installed[0]:
        sys.meta_path.insert(0, _PatchOnImport())
        _installed[0] = True
