"""The facade `Tensor`: a Python object holding a `mindspore.Tensor` plus torch's view semantics.

Contract for the other parts of the shim (see shim/README.md):

* ``wrap(ms_tensor, dtype=None, device=None) -> Tensor`` takes ownership of a MindSpore tensor (do not keep
  using or mutating the MindSpore object afterwards). ``unwrap(x) -> mindspore.Tensor`` returns the storage
  tensor behind a facade tensor, always up to date (views are refreshed from their base first). Treat the
  result as read-only; write through facade in-place methods (`copy_`, `add_`, ...) so that views stay correct.
* bfloat16 on CPU is *emulated*: the storage tensor is float32 holding bfloat16-rounded values (MindSpore 2.10
  lacks bfloat16 CPU kernels for almost everything). ``to_ms(x)`` returns a tensor of the true dtype
  (bfloat16), for serialization and collectives. On Ascend the storage is native bfloat16.

Where things live: this module is the `Tensor` class (metadata, conversion, autograd, views, a few in-place
basics) plus `Size`, `wrap`, `unwrap`, `to_ms`, `is_tensor`. The aliasing engine behind views and in-place
writes (`new`, `make_view`, `assign`, `write_back`, `cast_storage`, view geometry) is `_aliasing.py`; argument
normalisation is `_args.py`; both are re-exported here under `_`-prefixed names (`_new`, `_assign`, ...). Most
torch.Tensor methods (`add_`, `sum`, `gather`, ...) are the op families' functions in `_ops/`, attached by the
table `TENSOR_METHODS` in `_ops/__init__.py` (one row per method name). MindSpore kernel workarounds are
listed in `_workarounds.py`.
"""
from __future__ import annotations

import builtins
import weakref

import mindspore as ms
from mindspore import mint, ops
from mindspore.common._grad_function import _Function as _MsFunction

from . import _aliasing, _args
from . import _dtype as D
from ._device import CPU, device as _device_cls, normalize_device
from .autograd.grad_mode import _GRAD, grad_flag as _grad_flag, restore_grad_flag

__all__ = ["Tensor", "wrap", "unwrap", "to_ms", "is_tensor", "Size"]

_FROM_MS = D._FROM_MS
_BF16 = D.bfloat16
_cast = ops.cast
_stop_gradient = ops.stop_gradient


class Size(tuple):
    """torch.Size: a tuple of ints (shape) with `numel()` and a torch-like repr."""

    def numel(self) -> int:
        n = 1
        for s in self:
            n *= s
        return n

    def __repr__(self):
        return f"torch.Size([{', '.join(str(s) for s in self)}])"

    def __getitem__(self, item):
        r = tuple.__getitem__(self, item)
        return Size(r) if isinstance(item, slice) else r

    def __add__(self, other):
        return Size(tuple(self) + tuple(other))

    def __reduce__(self):
        return (Size, (tuple(self),))


# ----------------------------------------------------------------------------------------------------------
# the engine and helpers this class is built on, under the names the rest of the facade imports from here

_new = _aliasing.new
_make_view = _aliasing.make_view
_refresh = _aliasing.refresh
_is_host_alias = _aliasing.is_host_alias
_assign = _aliasing.assign
_write_back = _aliasing.write_back
_check_leaf_inplace = _aliasing.check_leaf_inplace
_cast_storage = _aliasing.cast_storage
_geom = _aliasing.geom
_index_map = _aliasing.index_map
_view_strides = _aliasing.view_strides
_contig_strides = _aliasing.contig_strides
_is_contig = _aliasing.is_contig
_clone = _aliasing.clone
_scatter = _aliasing.scatter
_round_bf16 = _aliasing.round_bf16
_FUNCTIONAL_WRITE_MAX = _aliasing.FUNCTIONAL_WRITE_MAX  # read-only copy; the engine reads its own
_reshape = _aliasing.step_reshape
_transpose = _aliasing.step_transpose
_permute = _aliasing.step_permute
_broadcast_to = _aliasing.step_broadcast_to
_gather_flat = _aliasing.step_gather_flat

_shape_arg = _args.shape_arg
_norm_dim = _args.norm_dim
_dtype_arg = _args.dtype_arg
_infer_shape = _args.infer_shape


def _sum_to(g, shape: tuple):
    """`g` (mindspore.Tensor) summed to `shape` by torch's rule for a gradient reaching a node recorded with
    another shape: equal shapes pass; when `shape` expands to `g`'s shape, the expanded dimensions are summed.
    RuntimeError naming both shapes otherwise (torch's engine message)."""
    have = tuple(g.shape)
    if have == shape:
        return g
    lead = len(have) - len(shape)
    if lead >= 0 and builtins.all(w in (1, h) for w, h in zip(shape, have[lead:])):
        dims = tuple(range(lead)) + tuple(lead + i for i, w in enumerate(shape) if w == 1 and have[lead + i] != 1)
        return (g.sum(axis=dims) if dims else g).reshape(shape)
    raise RuntimeError(f"invalid gradient at index 0 - got {list(have)} but expected "
                       f"shape compatible with {list(shape)}")


class _KeepHistory(_MsFunction):
    """`t.data = value` on a non-leaf `t`: torch changes t's storage but keeps its grad_fn, so backward from `t`
    (or from ops that used `t` afterwards) still reaches the graph that computed it. MindSpore's autograd lives
    on the storage tensor, so the new storage is the output of this node: forward(old, new) returns a copy of
    `new`; backward hands the incoming gradient to `old`'s graph, summed to old's shape (`_sum_to`) where the
    shapes differ, as torch's engine does for the root gradient megatron-core's `custom_backward` passes after
    `deallocate_output_tensor` shrank the output to one element."""

    @staticmethod
    def forward(ctx, old, new):
        ctx.old_shape = tuple(old.shape)
        return _clone(new)

    @staticmethod
    def backward(ctx, grad):
        return _sum_to(grad, ctx.old_shape), None


def _keep_history(old, new):
    """The storage for `t.data = new` when t's storage `old` carries autograd history (see `_KeepHistory`);
    recorded even under no_grad, as torch's `.data` assignment is not an op and keeps grad_fn in every mode."""
    from .autograd.grad_mode import _set, _sync
    was = _GRAD[0]
    if not was:
        _set(True)
    try:
        return _KeepHistory.apply(old, new)
    finally:
        # workaround "Function enable_grad" (shim/torch/_workarounds.py)
        _set(False) if not was else _sync()


# ----------------------------------------------------------------------------------------------------------
# the facade's contract: wrap / unwrap / to_ms


def wrap(m, dtype=None, device=None) -> "Tensor":
    """Wrap a `mindspore.Tensor` as a facade Tensor, taking ownership of it.

    dtype: the torch dtype to report; None infers it from ``m.dtype``. A MindSpore bfloat16 tensor on CPU is
    converted to the emulated storage (float32). device: the torch device to report (default cpu).
    Raises TypeError when `m` is not a MindSpore tensor.
    """
    if not isinstance(m, ms.Tensor):
        raise TypeError(f"wrap() expects a mindspore.Tensor, got {type(m).__name__}")
    if dtype is None:
        dtype = _FROM_MS[m.dtype]
    if dtype.emulated:
        if m.dtype != ms.float32:
            m = _cast(m, ms.float32) if m.dtype == ms.bfloat16 else _round_bf16(_cast(m, ms.float32))
    elif m.dtype != dtype.ms:
        m = _cast(m, dtype.ms)
    return _new(m, dtype, CPU if device is None else normalize_device(device))


def unwrap(x):
    """The MindSpore storage tensor behind facade tensor `x`, refreshed if `x` is a stale view.

    Non-tensors are returned unchanged (so it can be mapped over argument lists). Emulated bfloat16 gives the
    float32 storage; use `to_ms` for the true dtype.
    """
    if x.__class__ is Tensor or isinstance(x, Tensor):
        if not _grad_flag():  # cleared by MindSpore when an earlier op raised (see autograd.grad_mode)
            restore_grad_flag()
        b = x._vbase
        if b is not None and x._vver != b._ver:
            _refresh(x)
        return x._m
    return x


def to_ms(x):
    """A MindSpore tensor with the facade tensor's true dtype (bfloat16 stays bfloat16 even when emulated)."""
    m = unwrap(x)
    if x._dt.emulated:
        return _cast(m, ms.bfloat16)
    return m


def is_tensor(obj) -> bool:
    """torch.is_tensor: True for facade tensors (and Parameters)."""
    return isinstance(obj, Tensor)


_LEGACY_TYPES = {
    "torch.FloatTensor": D.float32, "torch.DoubleTensor": D.float64, "torch.HalfTensor": D.float16,
    "torch.BFloat16Tensor": D.bfloat16, "torch.LongTensor": D.int64, "torch.IntTensor": D.int32,
    "torch.ShortTensor": D.int16, "torch.CharTensor": D.int8, "torch.ByteTensor": D.uint8,
    "torch.BoolTensor": D.bool,
}
_TYPE_NAMES = {v: k for k, v in _LEGACY_TYPES.items()}


# ----------------------------------------------------------------------------------------------------------
# the Tensor class


class _TensorType(type):
    """Tensor's metaclass: an unknown public `torch.Tensor.X` read on the class (`torch.Tensor.cauchy_(t)`) raises
    UnsupportedAPI naming it, as the instance lookup does (still an AttributeError, so hasattr answers False)."""

    def __getattr__(cls, name):
        if name.startswith("_"):
            raise AttributeError(f"type object '{cls.__name__}' has no attribute '{name}'")
        from ._unsupported import UnsupportedAPI
        raise UnsupportedAPI(f"torch.Tensor.{name} is not implemented by the shim")



class _StorageHandle:
    """What ``Tensor.untyped_storage()`` returns under the shim (see there): identity and size only."""

    __slots__ = ("_base",)

    def __init__(self, base):
        self._base = base

    def data_ptr(self) -> int:
        return id(self._base) * 16

    def nbytes(self) -> int:
        return self._base.numel() * self._base._dt.itemsize

    def size(self) -> int:
        return self.nbytes()

    def __len__(self) -> int:
        return self.nbytes()

    def element_size(self) -> int:
        return 1

    @property
    def device(self):
        return self._base.device

    def __getattr__(self, name):
        raise NotImplementedError(f"torch.UntypedStorage.{name} is not supported by the shim (storage bytes are "
                                  "owned by MindSpore; the handle gives data_ptr/nbytes/size only)")

class _NoStorage:
    """The storage slot of a wrapper-subclass tensor (``Tensor._make_wrapper_subclass``): there is none. It answers
    the autograd flags the facade reads from a storage (``_requires_grad`` as given, a leaf without a graph) and
    raises NotImplementedError naming the class for anything else: torch sends every operation on such a tensor
    to its class's ``__torch_dispatch__``, and the shim has no dispatch of that kind."""

    __slots__ = ("_cls_name", "_requires_grad")
    _is_leaf = True
    _grad_node = None
    _grad = None

    def __init__(self, cls_name: str, requires_grad: bool):
        self._cls_name, self._requires_grad = cls_name, requires_grad

    def __getattr__(self, name):
        raise NotImplementedError(
            f"{self._cls_name} is a wrapper tensor subclass (torch.Tensor._make_wrapper_subclass) without storage: "
            f"tensor operations on it go through its __torch_dispatch__ in torch, which the shim does not run")


class Tensor(metaclass=_TensorType):
    """torch.Tensor over a MindSpore tensor (see module docstring for the storage/view model).

    Constructors follow torch's legacy forms: ``Tensor()`` (empty float), ``Tensor(2, 3)`` (uninitialised
    float [2, 3]), ``Tensor([1, 2])`` / ``Tensor(ndarray)`` (data, default dtype). Subclasses (nn.Parameter) use
    ``Tensor._make_subclass(cls, data, requires_grad)``.
    """

    __slots__ = ("_m", "_dt", "_vbase", "_steps", "_vver", "_geom", "_ver", "_dev", "_pinned", "_gw",
                 "__dict__", "__weakref__")

    def __new__(cls, *args, **kwargs):
        from ._ops import creation
        if kwargs.keys() - {"device", "dtype"}:
            raise TypeError(f"Tensor() got unexpected keyword arguments {sorted(kwargs)}")
        dt = _dtype_arg(kwargs.get("dtype")) or D.get_default_dtype()
        dev = kwargs.get("device")
        if not args:
            src = creation.empty(0, dtype=dt, device=dev)
        elif builtins.all(isinstance(a, int) and not isinstance(a, bool) for a in args) or (
                len(args) == 1 and isinstance(args[0], Size)):
            src = creation.empty(*args, dtype=dt, device=dev)
        elif len(args) == 1:
            src = creation.tensor(args[0], dtype=dt, device=dev)
        else:
            raise TypeError(f"Tensor() got an invalid combination of arguments: {args!r}")
        if cls is Tensor:
            return src
        return Tensor._make_subclass(cls, src)

    def __init__(self, *args, **kwargs):
        pass

    @staticmethod
    def _make_subclass(cls, data, require_grad=False):
        """torch.Tensor._make_subclass: a `cls` instance over `data`'s storage value (torch shares storage;
        here the new tensor takes over `data`'s MindSpore tensor). require_grad makes it a leaf requiring grad."""
        if not isinstance(data, Tensor):
            raise TypeError(f"_make_subclass expects a Tensor as data, got {type(data).__name__}")
        m = unwrap(data)
        if data._vbase is not None:
            data._vver = -1  # the view must not share its cache with the new owner
        if m._requires_grad or m._grad_node is not None:
            m = _stop_gradient(m)
            if m is unwrap(data):
                m = _clone(m)
        t = _new(m, data._dt, data._dev, cls)
        if require_grad:
            t.requires_grad_(True)
        return t

    @staticmethod
    def _make_wrapper_subclass(cls, size, *, strides=None, storage_offset=None, memory_format=None, dtype=None,
                               layout=None, device=None, pin_memory=False, requires_grad=False, **kwargs):
        """torch.Tensor._make_wrapper_subclass: a `cls` instance with the given metadata and no storage (torch's
        base for tensor subclasses that hold their data elsewhere, e.g. ShardedTensor or megatron-core's
        ``CheckpointableShardedTensor``).

        size: the reported shape (a sequence of ints); strides: reported strides in elements (default row-major);
        storage_offset: reported offset (default 0); dtype: default ``torch.get_default_dtype()``; device: the
        reported device (default cpu); pin_memory: what ``is_pinned()`` answers; requires_grad: the reported flag
        (a leaf). Metadata reads (shape, size(), dim(), numel(), stride(), dtype, device, requires_grad,
        is_contiguous()) work; any tensor operation raises NotImplementedError naming `cls` (torch would call
        ``cls.__torch_dispatch__``; the shim has no such dispatch). Raises TypeError when `cls` is not a subclass
        of Tensor or does not define ``__torch_dispatch__`` (torch's rule), RuntimeError when requires_grad is set
        for a non-floating dtype. Other keywords of torch (``dispatch_sizes_strides_policy``, ...) are accepted.
        """
        if not (isinstance(cls, type) and issubclass(cls, Tensor)):
            raise TypeError(f"_make_wrapper_subclass: cls must be a subclass of torch.Tensor, got {cls!r}")
        if getattr(cls, "__torch_dispatch__", None) is None:
            raise TypeError(f"{cls.__name__} must define __torch_dispatch__")
        shape = tuple(builtins.int(s) for s in size)
        dt = _dtype_arg(dtype) or D.get_default_dtype()
        if requires_grad and not dt.is_floating_point and not dt.is_complex:
            raise RuntimeError("Only Tensors of floating point and complex dtype can require gradients")
        st = _contig_strides(shape) if strides is None else tuple(builtins.int(s) for s in strides)
        if len(st) != len(shape):
            raise RuntimeError(f"_make_wrapper_subclass: {len(st)} strides for a {len(shape)}-d size")
        t = _new(_NoStorage(cls.__name__, builtins.bool(requires_grad)), dt,
                 CPU if device is None else normalize_device(device), cls)
        t._geom = (shape, st, 0 if storage_offset is None else builtins.int(storage_offset))
        t._pinned = builtins.bool(pin_memory)
        return t

    # ---- metadata -------------------------------------------------------------------------------------
    @property
    def dtype(self):
        """The torch dtype (for emulated bfloat16 still torch.bfloat16)."""
        return self._dt

    @property
    def device(self):
        """The reported torch.device (cpu, or cuda:i for accelerator tensors; storage is MindSpore's)."""
        return self._dev

    # Shapes come from the facade's geometry record (computed once per base): reading a MindSpore result's
    # .shape waits for MindSpore's asynchronous inference stage.
    @property
    def shape(self) -> Size:
        """torch.Size of the tensor (from the facade's geometry record)."""
        g = self._geom
        return Size((g if g is not None else _geom(self))[0])

    def size(self, dim=None):
        """Shape as torch.Size, or the size of one dimension (negative dims count from the end)."""
        g = self._geom
        shape = (g if g is not None else _geom(self))[0]
        if dim is None:
            return Size(shape)
        return shape[_norm_dim(dim, len(shape))]

    def dim(self) -> int:
        """Number of dimensions."""
        g = self._geom
        return len((g if g is not None else _geom(self))[0])

    ndimension = dim

    @property
    def ndim(self) -> int:
        """Number of dimensions."""
        return self.dim()

    def numel(self) -> int:
        """Number of elements."""
        g = self._geom
        n = 1
        for s in (g if g is not None else _geom(self))[0]:
            n *= s
        return n

    nelement = numel

    def element_size(self) -> int:
        """Bytes per element of the torch dtype (bfloat16: 2, even when emulated in float32 storage)."""
        return self._dt.itemsize

    @property
    def itemsize(self) -> int:
        """Bytes per element of the torch dtype."""
        return self._dt.itemsize

    @property
    def nbytes(self) -> int:
        """numel() * itemsize."""
        return self.numel() * self._dt.itemsize

    def stride(self, dim=None):
        """torch strides in elements (views report their true strides into the base)."""
        g = _geom(self) if self._vbase is None else self._geom
        if dim is None:
            return tuple(g[1])
        return g[1][_norm_dim(dim, len(g[0]))]

    def storage_offset(self) -> int:
        """Offset in elements of this view's first element in its base storage (0 for bases)."""
        return 0 if self._vbase is None else self._geom[2]

    def is_contiguous(self, memory_format=None) -> bool:
        """True when the strides are row-major for the shape (bases always; views by geometry)."""
        if self._vbase is None:
            return True
        shape, strides, _ = self._geom
        return _is_contig(shape, strides)

    def data_ptr(self) -> int:
        """A stable fake address: id of the base's MindSpore tensor plus the byte offset of this view."""
        base = self._vbase if self._vbase is not None else self
        return id(base) * 16 + self.storage_offset() * self._dt.itemsize

    def untyped_storage(self):
        """An identity-and-size handle on this tensor's storage (:class:`_StorageHandle`): ``data_ptr()`` (the
        same fake address scheme as ``Tensor.data_ptr``; equal for a tensor and its views), ``nbytes()``,
        ``size()``, ``element_size()``. That is what libraries use it for (safetensors' and HF transformers'
        shared-tensor detection); the bytes themselves belong to MindSpore, so reading or resizing them through
        the handle raises NotImplementedError."""
        base = self._vbase if self._vbase is not None else self
        return _StorageHandle(base)

    @property
    def is_cuda(self) -> bool:
        """True for tensors reporting an accelerator ('cuda') device."""
        return self._dev.type == "cuda"

    @property
    def is_cpu(self) -> bool:
        """True for tensors reporting the cpu device."""
        return self._dev.type == "cpu"

    @property
    def is_meta(self) -> bool:
        """Always False (no meta tensors in the shim)."""
        return False

    @property
    def is_sparse(self) -> bool:
        """Always False (dense tensors only)."""
        return False

    @property
    def is_quantized(self) -> bool:
        """Always False."""
        return False

    @property
    def layout(self):
        """torch.strided."""
        from . import strided
        return strided

    def get_device(self) -> int:
        """-1 for cpu tensors, else the accelerator index."""
        return -1 if self._dev.type == "cpu" else (self._dev.index or 0)

    def is_floating_point(self) -> bool:
        """True for floating dtypes."""
        return self._dt.is_floating_point

    def is_complex(self) -> bool:
        """True for complex dtypes."""
        return self._dt.is_complex

    def is_signed(self) -> bool:
        """True for signed dtypes."""
        return self._dt.is_signed

    @property
    def _version(self) -> int:
        return (self._vbase if self._vbase is not None else self)._ver

    @property
    def _base_tensor(self):
        return self._vbase

    @property
    def _base(self):
        """torch's `Tensor._base`: the tensor this one is a view of, or None.

        As in torch, `.detach()` and `.data` give tensors that share storage but are not views (`_base` None),
        so code asserting `p.data._base is None` (megatron-core's grad buffers) holds. The facade's own storage
        base of every alias is `_vbase`; for a view taken of a detached alias this returns that storage base
        (torch would return the detached alias itself; both are not None)."""
        b = self._vbase
        if b is None or self._steps[-1][0] is _stop_gradient:
            return None
        return b

    # ---- conversion -------------------------------------------------------------------------------------
    def type(self, dtype=None, non_blocking=False, **kwargs):
        """Without argument: the legacy type string ('torch.FloatTensor', 'torch.cuda.FloatTensor' on
        accelerator tensors). With a dtype or type string: a converted tensor."""
        if dtype is None:
            name = _TYPE_NAMES.get(self._dt, "torch.Tensor")
            if self._dev.type == "cuda":
                name = "torch.cuda." + name[len("torch."):]
            return name
        if isinstance(dtype, str):
            key = dtype.replace("torch.cuda.", "torch.")
            if key not in _LEGACY_TYPES:
                raise ValueError(f"invalid type: '{dtype}'")
            out = self.to(_LEGACY_TYPES[key])
            if dtype.startswith("torch.cuda."):
                out = out.cuda()
            return out
        return self.to(_dtype_arg(dtype))

    def to(self, *args, **kwargs):
        """torch.Tensor.to(dtype) / to(device) / to(device, dtype) / to(other) with copy=, non_blocking=.

        Returns `self` when nothing changes and copy is False (torch's rule)."""
        dt = kwargs.pop("dtype", None)
        dev = kwargs.pop("device", None)
        copy = kwargs.pop("copy", False)
        kwargs.pop("non_blocking", None)
        kwargs.pop("memory_format", None)
        if kwargs:
            raise TypeError(f"to() got unexpected keyword arguments {sorted(kwargs)}")
        for a in args:
            if isinstance(a, D.dtype):
                dt = a
            elif isinstance(a, Tensor):
                dt, dev = a._dt, a._dev
            elif isinstance(a, (str, _device_cls, int)) and not isinstance(a, bool):
                dev = a
            elif a is None:
                continue
            elif isinstance(a, builtins.bool):
                continue  # positional non_blocking
            else:
                raise TypeError(f"to() received an invalid argument {a!r}")
        dt = _dtype_arg(dt) or self._dt
        new_dev = self._dev if dev is None else normalize_device(dev)
        if dt is self._dt and new_dev == self._dev and not copy:
            return self
        if dt is self._dt:
            m = _clone(unwrap(self))
        else:
            m = _cast_storage(unwrap(self), self._dt, dt)
        return _new(m, dt, new_dev)

    def cuda(self, device=None, non_blocking=False, **kwargs):
        """A copy reporting device cuda:<device> (self when already there), as torch.Tensor.cuda."""
        dev = normalize_device("cuda" if device is None else (device if not isinstance(device, int)
                                                                else f"cuda:{device}"))
        return self.to(dev)

    def npu(self, device=None, non_blocking=False, **kwargs):
        """Alias of cuda() (Ascend's name for the accelerator)."""
        return self.cuda(device)

    def cpu(self, **kwargs):
        """A copy reporting the cpu device (self when already there)."""
        return self.to(CPU)

    def float(self, memory_format=None):
        """self.to(torch.float32)."""
        return self.to(D.float32)

    def double(self, memory_format=None):
        """self.to(torch.float64)."""
        return self.to(D.float64)

    def half(self, memory_format=None):
        """self.to(torch.float16)."""
        return self.to(D.float16)

    def bfloat16(self, memory_format=None):
        """self.to(torch.bfloat16) (round to nearest even)."""
        return self.to(D.bfloat16)

    def long(self, memory_format=None):
        """self.to(torch.int64)."""
        return self.to(D.int64)

    def int(self, memory_format=None):
        """self.to(torch.int32)."""
        return self.to(D.int32)

    def short(self, memory_format=None):
        """self.to(torch.int16)."""
        return self.to(D.int16)

    def char(self, memory_format=None):
        """self.to(torch.int8)."""
        return self.to(D.int8)

    def byte(self, memory_format=None):
        """self.to(torch.uint8)."""
        return self.to(D.uint8)

    def bool(self, memory_format=None):
        """self.to(torch.bool)."""
        return self.to(D.bool)

    def type_as(self, other):
        """self.to(other.dtype)."""
        return self.to(other._dt)

    def numpy(self, *, force=False):
        """A NumPy array sharing memory with the tensor when possible (MindSpore's asnumpy shares for base
        tensors). Raises RuntimeError for tensors that require grad, TypeError for bfloat16 (as torch)."""
        if not force and self.requires_grad:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() "
                               "instead.")
        if self._dt is _BF16:
            raise TypeError("Got unsupported ScalarType BFloat16")
        return unwrap(self).asnumpy()

    def _host(self):
        """Host copy as NumPy (bfloat16 -> float32 values)."""
        m = unwrap(self)
        if m.dtype == ms.bfloat16:
            m = _cast(m, ms.float32)
        return m.asnumpy()

    def item(self):
        """The single value as a Python number; RuntimeError if numel != 1 (torch's message)."""
        if self.numel() != 1:
            raise RuntimeError(f"a Tensor with {self.numel()} elements cannot be converted to Scalar")
        return self._host().reshape(()).item()

    def tolist(self):
        """Nested Python lists of numbers (bfloat16 values as floats)."""
        return self._host().tolist()

    def __int__(self):
        return builtins.int(self.item())

    def __float__(self):
        return builtins.float(self.item())

    def __bool__(self):
        if self.numel() != 1:
            raise RuntimeError(f"Boolean value of Tensor with more than one value is ambiguous")
        return builtins.bool(self.item())

    def __index__(self):
        if self._dt._cat > D._INT or self.numel() != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return builtins.int(self.item())

    def __complex__(self):
        return complex(self.item())

    def __len__(self):
        shape = self.shape
        if not shape:
            raise TypeError("len() of a 0-d tensor")
        return shape[0]

    def __iter__(self):
        shape = self.shape
        if not shape:
            raise TypeError("iteration over a 0-d tensor")
        return iter(self.unbind(0))

    def __hash__(self):
        return id(self)

    def __array__(self, dtype=None, copy=None):
        a = self._host()
        return a.astype(dtype) if dtype is not None else a

    def __reduce_ex__(self, proto):
        return (_rebuild, (self._host(), self._dt.name, str(self._dev), self.requires_grad))

    def __deepcopy__(self, memo):
        if id(self) in memo:
            return memo[id(self)]
        out = self.clone().detach() if self._m._grad_node is not None and not self._m._is_leaf else None
        if out is None:
            out = _new(_clone(_stop_gradient(unwrap(self))), self._dt, self._dev, type(self))
            if self.requires_grad:
                out.requires_grad_(True)
        out.__dict__.update({k: v for k, v in self.__dict__.items() if k != "_idx_cache"})
        memo[id(self)] = out
        return out

    def __repr__(self, *, tensor_contents=None):
        from ._ops.formatting import tensor_repr
        return tensor_repr(self)

    __str__ = __repr__

    def __format__(self, spec):
        if self.dim() == 0:
            return self.item().__format__(spec)
        return object.__format__(self, spec)

    # ---- autograd ---------------------------------------------------------------------------------------
    @property
    def requires_grad(self) -> bool:
        # MindSpore also flags integer/bool results of recorded ops; torch never lets those require grad.
        return unwrap(self)._requires_grad and self._dt._cat >= D._FLOAT

    @requires_grad.setter
    def requires_grad(self, value):
        self.requires_grad_(value)

    def requires_grad_(self, requires_grad=True):
        """Mark a leaf as requiring grad (pins its MindSpore tensor). RuntimeError on non-leaf tensors when
        turning it off, like torch."""
        m = unwrap(self)
        if not m._is_leaf:
            if not requires_grad:
                raise RuntimeError("you can only change requires_grad flags of leaf variables. If you want to "
                                   "use a computed variable in a subgraph that doesn't require differentiation "
                                   "use var_no_grad = var.detach().")
            return self
        if requires_grad and not self._dt.is_floating_point and not self._dt.is_complex:
            raise RuntimeError("only Tensors of floating point and complex dtype can require gradients")
        if self._vbase is not None:
            # A leaf view (e.g. of detach()): becomes its own base so that the leaf identity is stable.
            m = self._m = _clone(m) if m is not None else m
            self._vbase, self._steps, self._geom = None, None, None
        m.requires_grad_(builtins.bool(requires_grad))
        if requires_grad:
            self._pinned = True
        return self

    @property
    def is_leaf(self) -> bool:
        """True for tensors not produced by a recorded op (user-created, or requires_grad False)."""
        return unwrap(self)._is_leaf

    @property
    def grad_fn(self):
        """The backward node (shim.torch.autograd.graph.Node) of a non-leaf, else None."""
        m = unwrap(self)
        if m._is_leaf:
            return None
        node = m._grad_node
        if node is None:
            return None
        from .autograd.graph import _node
        return _node(node)

    @property
    def grad(self):
        """The accumulated gradient (a facade Tensor over MindSpore's leaf `_grad`) or None."""
        rg = self.__dict__.get("_retained_grad")
        if rg is not None:
            return rg
        if self._vbase is not None:
            return None
        g = self._m._grad
        if g is None:
            self._gw = None
            return None
        w = self._gw
        # workaround "_grad wrapper" (shim/torch/_workarounds.py)
        # MindSpore hands out a new Python wrapper of the same gradient on every `_grad` read: compare storage.
        if w is None or (w._m is not g and w._m.data_ptr() != g.data_ptr()):
            w = self._gw = _new(g, self._dt, self._dev)
            w._pinned = True
        return w

    @grad.setter
    def grad(self, value):
        if self._vbase is not None:
            # A view is a non-leaf: autograd never fills its .grad, but torch lets code assign one (megatron-core's
            # distributed optimizer gives its parameter-shard views their gradient shards). Held as given.
            if value is None:
                self.__dict__.pop("_retained_grad", None)
                return
            if not isinstance(value, Tensor):
                raise TypeError(f"assigned grad expected to be a Tensor or None but got grad of type "
                                f"{type(value).__name__}")
            if tuple(value.shape) != tuple(self.shape):
                raise RuntimeError(f"assigned grad has data of a different size: expected {tuple(self.shape)}, "
                                   f"got {tuple(value.shape)}")
            if value._dt is not self._dt:
                raise RuntimeError("assigned grad has data of a different type")
            self.__dict__["_retained_grad"] = value
            return
        if value is None:
            self._m._grad = None
            self._gw = None
            return
        if not isinstance(value, Tensor):
            raise TypeError(f"assigned grad expected to be a Tensor or None but got grad of type "
                            f"{type(value).__name__}")
        if tuple(value.shape) != tuple(self._m.shape):
            raise RuntimeError(f"assigned grad has data of a different size: expected {tuple(self._m.shape)}, "
                               f"got {tuple(value.shape)}")
        if value._dt is not self._dt:
            raise RuntimeError("assigned grad has data of a different type")
        g = unwrap(value)
        if value._vbase is not None:
            # torch would alias the view; MindSpore accumulates into the object itself, so hand it a copy.
            g = _clone(g)
            value = _new(g, value._dt, value._dev)
        value._pinned = True
        self._m._grad = g
        self._gw = value

    @property
    def _grad(self):
        return self.grad

    # workaround "Clone" (shim/torch/_workarounds.py)
    def retain_grad(self):
        """Keep the gradient of a non-leaf in .grad after backward (accumulating like torch). Implemented with
        a tensor hook: MindSpore's own retain_grad needs a Clone kernel that CPU lacks."""
        m = unwrap(self)
        if not self.requires_grad:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        if m._is_leaf or self.__dict__.get("_retains"):
            return
        self.__dict__["_retains"] = True
        ref = weakref.ref(self)

        def hook(g):
            t = ref()
            if t is not None:
                prev = t.__dict__.get("_retained_grad")
                t.__dict__["_retained_grad"] = _new(g if prev is None else prev._m + g, t._dt, t._dev)
            return None
        m.register_hook(hook)

    @property
    def retains_grad(self) -> bool:
        """Whether retain_grad() was called on this non-leaf."""
        return builtins.bool(self.__dict__.get("_retains", False))

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Accumulate d(self)/d(leaf) into each leaf's .grad (see torch.autograd.backward)."""
        from .autograd import backward
        backward(self, gradient, retain_graph, create_graph, inputs=inputs)

    def register_hook(self, hook):
        """Hook `hook(grad) -> Tensor or None` run on the gradient w.r.t. this tensor before accumulation."""
        from .autograd.graph import _tensor_hook
        return _tensor_hook(self, hook)

    def register_post_accumulate_grad_hook(self, hook):
        """Hook `hook(tensor)` run after the gradient has been accumulated into this leaf's .grad."""
        from .autograd.graph import _post_accumulate_hook
        return _post_accumulate_hook(self, hook)

    def detach(self):
        """A view sharing this tensor's values, cut from the graph (in-place writes reach the original)."""
        v = _make_view(self, _stop_gradient, (), _geom(self) if self._vbase is None else self._geom)
        b = v._vbase
        if b._pinned:
            # Remembered so that `b.data = x` can leave them holding b's old values, as torch's `.data`
            # assignment leaves earlier `.data`/`.detach()` results on the old storage.
            aliases = b.__dict__.get("_detached_aliases")
            if aliases is None:
                aliases = b.__dict__["_detached_aliases"] = weakref.WeakSet()
            aliases.add(v)
        return v

    def detach_(self):
        """Detach in place (a leaf stops requiring grad; a non-leaf is cut from its graph)."""
        if self._vbase is not None:
            raise RuntimeError("detach_() on a view is not supported by the shim")
        m = self._m
        if m._is_leaf:
            if m._requires_grad:
                m.requires_grad_(False)
            return self
        self._m = _stop_gradient(m)
        return self

    @property
    def data(self):
        """A detached alias (torch's `.data`): reads follow the tensor, in-place writes reach it."""
        return self.detach()

    @data.setter
    def data(self, value):
        """`t.data = value`: `t` takes `value`'s values, dtype and device, keeping its identity (and autograd leaf).

        A non-leaf keeps its autograd history, as in torch: backward from `t`, or from what was computed from `t`
        afterwards, reaches the graph that computed it, the gradient summed to t's earlier shape where the shape
        changed (torch's engine rule; megatron-core's `deallocate_output_tensor` + `custom_backward`). Its
        `grad_fn` is then that bridging node, not torch's original node object.

        Unlike torch, `t` does not come to share `value`'s storage: a later in-place write to `value` (or to the
        buffer it views) is not seen through `t`, and vice versa. Raises TypeError for a non-tensor value and
        NotImplementedError when `t` itself is a view."""
        if not isinstance(value, Tensor):
            raise TypeError(f"data must be a Tensor, got {type(value).__name__}")
        if self._vbase is not None:
            raise NotImplementedError("assigning .data of a view is not supported by the shim")
        m = _stop_gradient(unwrap(value))
        if value._dt is not self._dt:
            self._dt = value._dt
        # torch: `p.data = t` also moves `p` to t's device (Module.cuda()/.to() rely on it).
        self._dev = value._dev
        aliases = self.__dict__.pop("_detached_aliases", None)
        if aliases:
            # torch: `old = t.data; t.data = x` leaves `old` on the old storage. Detached aliases taken earlier
            # become independent tensors holding t's current values (views derived from them still follow t).
            for a in list(aliases):
                if a is value:
                    continue
                cur = _clone(unwrap(a))
                a._m, a._vbase, a._steps, a._geom, a._vver, a._ver = cur, None, None, None, 0, 0
        if self._pinned and tuple(m.shape) == tuple(self._m.shape) and m.dtype == self._m.dtype:
            if value._vbase is not None:
                # workaround "InplaceCopy view source" (shim/torch/_workarounds.py)
                # MindSpore 2.10 CPU InplaceCopy rejects a source that is a view into a larger storage
                # (it compares whole-storage sizes); copy the view out first.
                m = _clone(m)
            with_grad = _GRAD[0]
            if with_grad:
                from .autograd.grad_mode import _set
                _set(False)
            try:
                self._m.copy_(m)
            finally:
                if with_grad:
                    _set(True)
        else:
            rg = self._m._requires_grad
            new = _clone(m) if m is unwrap(value) else m
            # a non-leaf keeps its autograd history, as torch keeps grad_fn (`_KeepHistory`)
            if self._m._is_leaf:
                self._m = new
            else:
                # A second `.data` assignment with no op in between (megatron-core's interleaved schedule
                # deallocates a chunk's last output twice) keeps the same grad_fn in torch: the gradient is still
                # checked against the shape the graph produced, so attach to that storage again, not to the
                # one-element storage of the first assignment.
                kept = self.__dict__.get("_data_kept")
                source = kept[1] if kept is not None and kept[0] is self._m else self._m
                self._m = _keep_history(source, new)
                self.__dict__["_data_kept"] = (self._m, source)
            if rg and self._m._is_leaf:
                self._m.requires_grad_(True)
        self._geom = None
        self._ver += 1

    # ---- views ------------------------------------------------------------------------------------------
    def view(self, *shape):
        """A view with a new shape; RuntimeError when the strides do not allow it (use reshape)."""
        if len(shape) == 1 and isinstance(shape[0], D.dtype):
            if shape[0] is self._dt:
                return self
            raise NotImplementedError("torch.Tensor.view(dtype) (bit reinterpretation) is not supported by "
                                      "the shim; use .to(dtype)")
        shape = _infer_shape(_shape_arg(shape), self.numel())
        g = _geom(self) if self._vbase is None else self._geom
        strides = _view_strides(g[0], g[1], shape)
        if strides is None:
            raise RuntimeError("view size is not compatible with input tensor's size and stride (at least one "
                               "dimension spans across two contiguous subspaces). Use .reshape(...) instead.")
        return _make_view(self, _reshape, (shape,), (shape, strides, g[2]))

    def view_as(self, other):
        """self.view(other.shape)."""
        return self.view(other.shape)

    def reshape(self, *shape):
        """A view when the strides allow it (torch's rule), otherwise a copy."""
        shape = _infer_shape(_shape_arg(shape), self.numel())
        g = _geom(self) if self._vbase is None else self._geom
        strides = _view_strides(g[0], g[1], shape)
        if strides is not None:
            return _make_view(self, _reshape, (shape,), (shape, strides, g[2]))
        return _new(unwrap(self).reshape(shape), self._dt, self._dev)

    def reshape_as(self, other):
        """self.reshape(other.shape)."""
        return self.reshape(other.shape)

    def contiguous(self, memory_format=None):
        """self when row-major, else a copy with its own storage."""
        if self.is_contiguous():
            return self
        m = unwrap(self)
        self._vver = -1  # hand the cache over; this view re-derives on next use
        return _new(m, self._dt, self._dev)

    def transpose(self, dim0, dim1):
        """A view with dims dim0 and dim1 swapped."""
        g = _geom(self) if self._vbase is None else self._geom
        n = len(g[0])
        d0, d1 = _norm_dim(dim0, n), _norm_dim(dim1, n)
        if d0 == d1 or n < 2:
            return _make_view(self, _reshape, (g[0],), g)
        shape, strides = list(g[0]), list(g[1])
        shape[d0], shape[d1] = shape[d1], shape[d0]
        strides[d0], strides[d1] = strides[d1], strides[d0]
        return _make_view(self, _transpose, (d0, d1), (tuple(shape), tuple(strides), g[2]))

    swapaxes = transpose
    swapdims = transpose

    def t(self):
        """transpose(0, 1) for 2-D tensors; self for 0-D/1-D (RuntimeError above 2-D)."""
        n = self.dim()
        if n > 2:
            raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {n}D")
        return self.transpose(0, 1) if n == 2 else self

    @property
    def T(self):
        """A view with all dims reversed."""
        n = self.dim()
        return self.permute(*range(n - 1, -1, -1)) if n > 1 else self

    @property
    def mT(self):
        """A view with the last two dims swapped."""
        return self.transpose(-2, -1)

    def permute(self, *dims):
        """A view with dims reordered by `dims` (RuntimeError unless a permutation)."""
        g = _geom(self) if self._vbase is None else self._geom
        n = len(g[0])
        dims = tuple(_norm_dim(d, n) for d in _shape_arg(dims, "dims"))
        if sorted(dims) != list(range(n)):
            raise RuntimeError(f"permute(): dims {dims} are not a permutation of {n} dimensions")
        geom = (tuple(g[0][d] for d in dims), tuple(g[1][d] for d in dims), g[2])
        return _make_view(self, _permute, (dims,), geom)

    def expand(self, *sizes):
        """A view broadcasting size-1 dims to `sizes` (-1 keeps a size; new leading dims allowed)."""
        sizes = _shape_arg(sizes)
        g = _geom(self) if self._vbase is None else self._geom
        shape, strides = g[0], g[1]
        extra = len(sizes) - len(shape)
        if extra < 0:
            raise RuntimeError(f"expand: the number of sizes provided ({len(sizes)}) must be greater or equal "
                               f"to the number of dimensions in the tensor ({len(shape)})")
        new_shape, new_strides = [], []
        for i, s in enumerate(sizes):
            if i < extra:
                if s < 0:
                    raise RuntimeError("expand: -1 is not allowed in a leading, non-existing dimension")
                new_shape.append(s)
                new_strides.append(0)
                continue
            old = shape[i - extra]
            if s == -1 or s == old:
                new_shape.append(old)
                new_strides.append(strides[i - extra])
            elif old == 1:
                new_shape.append(s)
                new_strides.append(0)
            else:
                raise RuntimeError(f"The expanded size of the tensor ({s}) must match the existing size ({old}) "
                                   f"at non-singleton dimension {i}.  Target sizes: {list(sizes)}.  Tensor "
                                   f"sizes: {list(shape)}")
        new_shape = tuple(new_shape)
        # always a BroadcastTo node, even for the same shape: megatron-core reaches a leaf's grad accumulator
        # through param.expand_as(param).grad_fn.next_functions[0][0]
        return _make_view(self, _broadcast_to, (new_shape,), (new_shape, tuple(new_strides), g[2]))

    def expand_as(self, other):
        """self.expand(other.shape)."""
        return self.expand(other.shape)

    def squeeze(self, dim=None):
        """A view without size-1 dims (all, or the given dim/dims)."""
        g = _geom(self) if self._vbase is None else self._geom
        shape, strides = g[0], g[1]
        if dim is None:
            dims = {i for i, s in enumerate(shape) if s == 1}
        else:
            dims = dim if isinstance(dim, (tuple, list)) else (dim,)
            dims = {_norm_dim(d, len(shape)) for d in dims}
            dims = {d for d in dims if len(shape) and shape[d] == 1}
        ns = tuple(s for i, s in enumerate(shape) if i not in dims)
        nst = tuple(s for i, s in enumerate(strides) if i not in dims)
        return _make_view(self, _reshape, (ns,), (ns, nst, g[2]))

    def unsqueeze(self, dim):
        """A view with a size-1 dim inserted at `dim`."""
        g = _geom(self) if self._vbase is None else self._geom
        shape, strides = list(g[0]), list(g[1])
        d = _norm_dim(dim, len(shape) + 1)
        st = strides[d] * shape[d] if d < len(shape) else 1
        shape.insert(d, 1)
        strides.insert(d, st)
        ns = tuple(shape)
        return _make_view(self, _reshape, (ns,), (ns, tuple(strides), g[2]))

    def flatten(self, start_dim=0, end_dim=-1):
        """dims start_dim..end_dim merged into one (a view when the strides allow, like reshape)."""
        shape = tuple(self.shape)
        if not shape:
            return self.reshape(1)
        s, e = _norm_dim(start_dim, len(shape)), _norm_dim(end_dim, len(shape))
        if s > e:
            raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
        if s == e:
            return self
        n = 1
        for x in shape[s:e + 1]:
            n *= x
        return self.reshape(shape[:s] + (n,) + shape[e + 1:])

    def unflatten(self, dim, sizes):
        """A view splitting dim `dim` into `sizes` (-1 inferred)."""
        shape = tuple(self.shape)
        d = _norm_dim(dim, len(shape))
        sizes = tuple(sizes)
        if -1 in sizes:
            known = 1
            for x in sizes:
                if x != -1:
                    known *= x
            sizes = tuple(shape[d] // known if x == -1 else x for x in sizes)
        return self.view(shape[:d] + sizes + shape[d + 1:])

    def narrow(self, dim, start, length):
        """A view of `length` elements from `start` along `dim`."""
        g = _geom(self) if self._vbase is None else self._geom
        shape = g[0]
        d = _norm_dim(dim, len(shape))
        start = builtins.int(start)
        if start < 0:
            start += shape[d]
        if not (0 <= start and start + length <= shape[d]):
            raise RuntimeError(f"start ({start}) + length ({length}) exceeds dimension size ({shape[d]}).")
        key = (slice(None),) * d + (slice(start, start + length),)
        return self[key]

    def as_strided(self, size, stride, storage_offset=None):
        """A view with explicit geometry over the base storage (torch semantics, offsets in elements)."""
        base = self._vbase if self._vbase is not None else self
        size, stride = tuple(size), tuple(stride)
        off = self.storage_offset() if storage_offset is None else builtins.int(storage_offset)
        geom = (size, stride, off)
        probe = _new(None, self._dt, self._dev)
        probe._geom = geom
        idx = _index_map(probe)
        total = base.numel()
        if size and builtins.max((s - 1) * st for s, st in zip(size, stride)) + off >= total:
            raise RuntimeError(f"setStorage: sizes {list(size)}, strides {list(stride)}, storage offset {off} "
                               f"require more storage than the base holds ({total} elements)")
        v = _make_view(base, _gather_flat, (idx, size), geom)
        v.__dict__["_idx_cache"] = idx
        return v

    def unbind(self, dim=0):
        """Tuple of views, one per index along `dim`, with that dim removed."""
        n = self.dim()
        d = _norm_dim(dim, n)
        return tuple(self.select(d, i) for i in range(self.size(d)))

    def select(self, dim, index):
        """A view at `index` along `dim` (the dim removed)."""
        d = _norm_dim(dim, self.dim())
        return self[(slice(None),) * d + (builtins.int(index),)]

    def split(self, split_size, dim=0):
        """Tuple of views of `split_size` (int) or the given sizes (list) along `dim`."""
        d = _norm_dim(dim, self.dim())
        n = self.size(d)
        if isinstance(split_size, (list, tuple)):
            if sum(split_size) != n:
                raise RuntimeError(f"split_with_sizes expects split_sizes to sum exactly to {n} (input tensor's "
                                   f"size at dimension {d}), but got split_sizes={list(split_size)}")
            sizes = list(split_size)
        else:
            split_size = builtins.int(split_size)
            sizes = [split_size] * (n // split_size) + ([n % split_size] if n % split_size else [])
            if not sizes:
                sizes = [0]
        out, start = [], 0
        for s in sizes:
            out.append(self.narrow(d, start, s))
            start += s
        return tuple(out)

    def split_with_sizes(self, split_sizes, dim=0):
        """split with an explicit list of sizes."""
        return self.split(list(split_sizes), dim)

    def chunk(self, chunks, dim=0):
        """Tuple of up to `chunks` views of equal size (the last may be smaller) along `dim`."""
        d = _norm_dim(dim, self.dim())
        n = self.size(d)
        size = -(-n // chunks) if chunks > 0 else n
        return self.split(builtins.max(size, 1), d) if n else (self,)

    def tensor_split(self, indices_or_sections, dim=0):
        """Tuple of views split into `sections` (int) or at the given indices along `dim`."""
        d = _norm_dim(dim, self.dim())
        n = self.size(d)
        if isinstance(indices_or_sections, Tensor):  # 0-d: a section count; 1-d: split indices
            x = indices_or_sections
            indices_or_sections = builtins.int(x.item()) if x.dim() == 0 else [builtins.int(i) for i in x.tolist()]
        if isinstance(indices_or_sections, int):
            k = indices_or_sections
            sizes = [n // k + (1 if i < n % k else 0) for i in range(k)]
        else:
            bounds = [0] + [builtins.min(builtins.int(i), n) for i in indices_or_sections] + [n]
            sizes = [builtins.max(b - a, 0) for a, b in zip(bounds, bounds[1:])]
        out, start = [], 0
        for s in sizes:
            out.append(self.narrow(d, start, s))
            start += s
        return tuple(out)

    def __getitem__(self, key):
        from ._ops.indexing import getitem
        return getitem(self, key)

    def __setitem__(self, key, value):
        from ._ops.indexing import setitem
        setitem(self, key, value)

    # ---- in-place basics (more are attached by shim.torch._ops) ------------------------------------------
    def copy_(self, src, non_blocking=False):
        """Copy `src` (broadcast to self's shape, cast to self's dtype) into self, in place (views write through
        to their base). Gradients flow from self to src as in torch."""
        if isinstance(src, Tensor):
            m = unwrap(src)
            if src._dt is not self._dt:
                m = _cast_storage(m, src._dt, self._dt)
        else:
            from ._ops.creation import tensor as _tensor_fn
            m = unwrap(_tensor_fn(src, dtype=self._dt))
        shape = tuple(self.shape)
        if not isinstance(src, Tensor) or tuple(src.shape) != shape:
            m = mint.broadcast_to(m, shape)
        if m is self._m or (self._vbase is not None and m is unwrap(self)):
            return self
        if self._vbase is None and not self._pinned or (
                self._vbase is not None and not self._vbase._pinned and _aliasing.covers_base(self)):
            # the MindSpore tensor of src must not be shared by two owners (a view that is its whole base hands
            # the value to the base as its storage)
            m = _clone(m) if isinstance(src, Tensor) and (m is unwrap(src)) else m
        elif isinstance(src, Tensor) and src._vbase is not None and not _is_host_alias(src) and (
                self._vbase if self._vbase is not None else self)._pinned:
            # workaround "InplaceCopy view source" (shim/torch/_workarounds.py)
            # A pinned base is written with MindSpore's InplaceCopy, which (2.10 CPU) rejects a source that is a
            # view into a larger storage (it compares whole-storage sizes): copy the view out first. (A host
            # alias, workaround "view input copy" in _aliasing.py, is not a MindSpore view.)
            m = _clone(m)
        return _assign(self, m)

    def zero_(self):
        """Fill with zeros in place (views write through). While recording, a tensor that requires grad keeps
        its autograd history with a zero gradient (torch's ZeroBackward)."""
        if _GRAD[0] and self.requires_grad:
            return self.fill_(0)
        return _assign(self, mint.zeros(tuple(self.shape), dtype=self._dt.sms))

    def fill_(self, value):
        """Fill with `value` (a number or a 0-d tensor) in place (views write through). While recording, a tensor
        that requires grad keeps its autograd history with a zero gradient, and a 0-d `value` requiring grad gets
        the sum of the upstream gradient (torch's FillBackward)."""
        if _GRAD[0] and (self.requires_grad or (isinstance(value, Tensor) and value.requires_grad)):
            if isinstance(value, Tensor):
                if value.dim() != 0:
                    raise RuntimeError(f"fill_ only supports 0-dimension value tensor but got tensor with "
                                       f"{value.dim()} dimensions.")
                v = unwrap(value) if value._dt is self._dt else _cast_storage(unwrap(value), value._dt, self._dt)
            else:
                v = ms.Tensor(value, dtype=self._dt.sms)
            if self._dt.emulated:
                v = _round_bf16(v)
            # a where with a constant True condition: the value everywhere, no gradient to the old contents
            return _assign(self, mint.where(ms.Tensor(True), v, unwrap(self)))
        if isinstance(value, Tensor):
            value = value.item()
        # workaround "FillScalar" (shim/torch/_workarounds.py)
        m = ops.full(tuple(self.shape), value, dtype=self._dt.sms)
        if self._dt.emulated:
            m = _round_bf16(m)
        return _assign(self, m)

    def set_(self, source=None, *args, **kwargs):
        """Not supported: raises NotImplementedError."""
        raise NotImplementedError("torch.Tensor.set_ is not supported by the shim; assign .data instead")

    def resize_(self, *sizes, **kwargs):
        """Not supported: raises NotImplementedError."""
        raise NotImplementedError("torch.Tensor.resize_ is not supported by the shim; create a new tensor")

    def record_stream(self, stream):
        """No-op by design: MindSpore manages the lifetime of device memory across streams itself."""
        return None

    def pin_memory(self, device=None):
        """self (host memory pinning is MindSpore's concern)."""
        return self

    def is_pinned(self, device=None) -> bool:
        """Always False."""
        return False

    def to_dense(self, dtype=None, *, masked_grad=None):
        """self for a dense (strided) tensor, as torch; `dtype` converts. The facade has no sparse layouts."""
        return self if dtype is None else self.to(dtype)

    def share_memory_(self):
        """self (documented: tensors cross processes by pickling in the shim)."""
        return self

    def __getattr__(self, name):
        # Only reached when normal lookup fails: unknown torch.Tensor API.
        if name.startswith("__") and name.endswith("__") or name.startswith("_"):
            raise AttributeError(f"'Tensor' object has no attribute '{name}'")
        from ._unsupported import UnsupportedAPI
        raise UnsupportedAPI(f"torch.Tensor.{name} is not implemented by the shim")


def _rebuild(array, dtype_name, dev, requires_grad):
    from ._ops.creation import tensor as _tensor_fn
    t = _tensor_fn(array, dtype=D.DTYPES[dtype_name], device=dev)
    if requires_grad:
        t.requires_grad_(True)
    return t


_aliasing.bind_tensor_class(Tensor)
