"""Creation ops: tensor, as_tensor, from_numpy, zeros/ones/empty/full (+ _like, new_*), arange, linspace, eye,
and the random creators (rand, randn, randint, randperm, normal_, uniform_ …) drawing from shim.torch.random.

Differences from torch (documented): `from_numpy` shares memory only as far as MindSpore's `from_numpy` does on
the host; `empty` returns zero-filled memory. Random draws are torch's CPU streams bit for bit (generator state in
shim.torch.random, algorithms in shim/torch/_cpu_rng.py), produced in NumPy and handed to MindSpore.
"""
from __future__ import annotations

import builtins
import functools
import numbers

import numpy as np
import mindspore as ms
from mindspore import mint, ops

from .. import _dtype as D
from .._device import normalize_device
from .._tensor import Tensor, _new, _round_bf16, _shape_arg, _dtype_arg

__all__ = ["tensor", "as_tensor", "from_numpy", "zeros", "ones", "empty", "full", "zeros_like", "ones_like",
           "empty_like", "full_like", "arange", "linspace", "eye", "rand", "randn", "randint", "randperm",
           "rand_like", "randn_like", "randint_like", "scalar_tensor", "empty_strided"]


def _infer_dtype(data):
    """torch.tensor's dtype inference over nested Python data: bool < int64 < default float < complex."""
    if isinstance(data, np.ndarray):
        return D.from_np(data.dtype)
    if isinstance(data, np.generic):
        return D.from_np(data.dtype)
    cat = -1
    stack = [data]
    dt_seen = None
    while stack:
        x = stack.pop()
        if isinstance(x, (list, tuple)):
            stack.extend(x)
        elif isinstance(x, Tensor):
            dt_seen = x._dt if dt_seen is None else D.promote_types(dt_seen, x._dt)
        elif isinstance(x, builtins.bool):
            cat = builtins.max(cat, 0)
        elif isinstance(x, numbers.Integral):
            cat = builtins.max(cat, 1)
        elif isinstance(x, numbers.Real):
            cat = builtins.max(cat, 2)
        elif isinstance(x, numbers.Complex):
            cat = builtins.max(cat, 3)
        else:
            raise TypeError(f"Could not infer dtype of {type(x).__name__}")
    if dt_seen is not None:
        return dt_seen
    return D._default_for_cat(cat if cat >= 0 else 2)


def _to_host(data):
    if isinstance(data, Tensor):
        return data._host()
    if isinstance(data, (list, tuple)) and any(isinstance(x, Tensor) for x in data):
        return np.stack([_to_host(x) for x in data]) if data else np.zeros(0, np.float32)
    if isinstance(data, (list, tuple)):
        return np.array([_to_host(x) if isinstance(x, (list, tuple, Tensor)) else x for x in data]
                        if any(isinstance(x, (list, tuple, Tensor)) for x in data) else data)
    return np.asarray(data)


def _from_host(arr: np.ndarray, dt: D.dtype, dev, requires_grad=False):
    if dt.emulated:
        m = _round_bf16(ms.Tensor(np.asarray(arr, dtype=np.float32, order='C')))
    elif dt is D.bfloat16:
        m = ms.Tensor(np.asarray(arr, dtype=np.float32, order='C')).astype(ms.bfloat16)
    else:
        m = ms.Tensor(np.asarray(arr, dtype=dt.np, order='C'))
    t = _new(m, dt, normalize_device(dev))
    if requires_grad:
        t.requires_grad_(True)
    return t


def tensor(data, dtype=None, device=None, requires_grad=False, pin_memory=False) -> Tensor:
    """torch.tensor: a new tensor copying `data` (nested lists/tuples of numbers or tensors, NumPy arrays,
    scalars, tensors). dtype inferred like torch (Python floats -> default dtype, ints -> int64)."""
    dt = _dtype_arg(dtype)
    if isinstance(data, Tensor):
        src = data.detach()
        out = src.to(dtype=dt or data._dt, device=device if device is not None else data._dev, copy=True)
        if requires_grad:
            out.requires_grad_(True)
        return out
    if dt is None:
        dt = _infer_dtype(data)
    arr = _to_host(data)
    if arr.dtype == object:
        raise TypeError("torch.tensor: ragged nested sequences cannot be converted to a tensor")
    return _from_host(arr, dt, device, requires_grad)


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """torch.as_tensor: returns `data` itself when it is a tensor of that dtype/device, else converts."""
    dt = _dtype_arg(dtype)
    if isinstance(data, Tensor):
        return data.to(dtype=dt or data._dt, device=device if device is not None else data._dev)
    if isinstance(data, np.ndarray) and (dt is None or dt.np == data.dtype) and not (dt and dt.emulated):
        return from_numpy(data) if device is None else tensor(data, dtype=dt, device=device)
    return tensor(data, dtype=dt, device=device)


def from_numpy(arr) -> Tensor:
    """torch.from_numpy: a tensor over a NumPy array (MindSpore's from_numpy shares host memory)."""
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(arr).__name__})")
    dt = D.from_np(arr.dtype)
    if not arr.flags.c_contiguous:
        arr = np.array(arr, order='C')
    return _new(ms.from_numpy(arr), dt)


def scalar_tensor(s, dtype=None, device=None, **kw) -> Tensor:
    """torch.scalar_tensor: a 0-d tensor holding `s` (default float dtype)."""
    return tensor(s, dtype=_dtype_arg(dtype) or D.get_default_dtype(), device=device)


def _fill(shape, value, dtype, device, requires_grad):
    dt = _dtype_arg(dtype) or D.get_default_dtype()
    if value == 0:
        m = mint.zeros(shape, dtype=dt.sms)
    elif value == 1:
        m = mint.ones(shape, dtype=dt.sms)
    else:
        # workaround "FillScalar" (shim/torch/_workarounds.py)
        m = ops.full(shape, value, dtype=dt.sms)
        if dt.emulated:
            m = _round_bf16(m)
    t = _new(m, dt, normalize_device(device))
    if requires_grad:
        t.requires_grad_(True)
    return t


def _kw(kwargs, name):
    bad = kwargs.keys() - {"dtype", "device", "requires_grad", "layout", "pin_memory", "memory_format", "out",
                           "generator"}
    if bad:
        raise TypeError(f"{name}() got unexpected keyword arguments {sorted(bad)}")
    if kwargs.get("out") is not None:
        raise NotImplementedError(f"torch.{name}(out=...) is not supported by the shim")


def _size(size, kwargs, name):
    """The shape of a `torch.<name>(*size, ...)` call: torch also takes it as the keyword `size=`
    (`t.new_empty(size=(2, 3))`, as megatron-core's all-to-all does); both at once is a TypeError."""
    if "size" in kwargs:
        if size:
            raise TypeError(f"{name}() got multiple values for argument 'size'")
        size = (kwargs.pop("size"),)
    return _shape_arg(size)


def zeros(*size, **kwargs) -> Tensor:
    """torch.zeros(*size, dtype=None, device=None, requires_grad=False) (or size=)."""
    size = _size(size, kwargs, "zeros")
    _kw(kwargs, "zeros")
    return _fill(size, 0, kwargs.get("dtype"), kwargs.get("device"), kwargs.get("requires_grad"))


def ones(*size, **kwargs) -> Tensor:
    """torch.ones(*size, dtype=None, device=None, requires_grad=False) (or size=)."""
    size = _size(size, kwargs, "ones")
    _kw(kwargs, "ones")
    return _fill(size, 1, kwargs.get("dtype"), kwargs.get("device"), kwargs.get("requires_grad"))


def empty(*size, **kwargs) -> Tensor:
    """torch.empty(*size, ...) (or size=): zero-filled here (MindSpore has no uninitialised allocation in
    PyNative)."""
    size = _size(size, kwargs, "empty")
    _kw(kwargs, "empty")
    return _fill(size, 0, kwargs.get("dtype"), kwargs.get("device"), kwargs.get("requires_grad"))


def empty_strided(size, stride, **kwargs) -> Tensor:
    """torch.empty_strided: a (zero-filled) tensor of `size`; strides are always row-major here."""
    return empty(tuple(size), **kwargs)


def full(size, fill_value, **kwargs) -> Tensor:
    """torch.full(size, fill_value): dtype inferred from fill_value when not given (bool/int64/default)."""
    _kw(kwargs, "full")
    dt = kwargs.get("dtype")
    if isinstance(fill_value, Tensor):
        fill_value = fill_value.item()
    if dt is None:
        dt = _infer_dtype(fill_value)
    return _fill(_shape_arg((size,)), fill_value, dt, kwargs.get("device"), kwargs.get("requires_grad"))


def _like(t, kwargs):
    dt = _dtype_arg(kwargs.get("dtype")) or t._dt
    dev = kwargs.get("device")
    return tuple(t.shape), dt, (t._dev if dev is None else dev), kwargs.get("requires_grad")


def zeros_like(input, **kwargs) -> Tensor:
    """torch.zeros_like: zeros with input's shape, dtype and device unless overridden."""
    _kw(kwargs, "zeros_like")
    s, dt, dev, rg = _like(input, kwargs)
    return _fill(s, 0, dt, dev, rg)


def ones_like(input, **kwargs) -> Tensor:
    """torch.ones_like: ones with input's shape, dtype and device unless overridden."""
    _kw(kwargs, "ones_like")
    s, dt, dev, rg = _like(input, kwargs)
    return _fill(s, 1, dt, dev, rg)


def empty_like(input, **kwargs) -> Tensor:
    """torch.empty_like: a zero-filled tensor shaped like input (torch leaves it uninitialised)."""
    _kw(kwargs, "empty_like")
    s, dt, dev, rg = _like(input, kwargs)
    return _fill(s, 0, dt, dev, rg)


def full_like(input, fill_value, **kwargs) -> Tensor:
    """torch.full_like: `fill_value` with input's shape, dtype and device unless overridden."""
    _kw(kwargs, "full_like")
    s, dt, dev, rg = _like(input, kwargs)
    if isinstance(fill_value, Tensor):
        fill_value = fill_value.item()
    return _fill(s, fill_value, dt, dev, rg)


def _new_kw(self, kwargs):
    kwargs = dict(kwargs)
    kwargs.setdefault("dtype", self._dt)
    kwargs.setdefault("device", self._dev)
    return kwargs


def new_zeros(self, *size, **kwargs):
    """Tensor.new_zeros: zeros of `size` with self's dtype/device unless overridden."""
    return zeros(*size, **_new_kw(self, kwargs))


def new_ones(self, *size, **kwargs):
    """Tensor.new_ones: ones of `size` with self's dtype/device unless overridden."""
    return ones(*size, **_new_kw(self, kwargs))


def new_empty(self, *size, **kwargs):
    """Tensor.new_empty: a zero-filled tensor of `size` with self's dtype/device."""
    return empty(*size, **_new_kw(self, kwargs))


def new_full(self, size, fill_value, **kwargs):
    """Tensor.new_full: `fill_value` of `size` with self's dtype/device."""
    return full(size, fill_value, **_new_kw(self, kwargs))


def new_tensor(self, data, **kwargs):
    """Tensor.new_tensor: torch.tensor(data) with self's dtype/device unless overridden."""
    kw = _new_kw(self, kwargs)
    return tensor(data, dtype=kw["dtype"], device=kw["device"], requires_grad=kw.get("requires_grad", False))


def arange(start, end=None, step=1, **kwargs) -> Tensor:
    """torch.arange: int64 when start/end/step are all integers, else the default float dtype."""
    _kw(kwargs, "arange")
    if end is None:
        start, end = 0, start
    vals = [v.item() if isinstance(v, Tensor) else v for v in (start, end, step)]
    dt = _dtype_arg(kwargs.get("dtype"))
    if dt is None:
        dt = D.int64 if all(isinstance(v, numbers.Integral) for v in vals) else D.get_default_dtype()
    if vals[2] == 0:
        raise RuntimeError("step must be nonzero")
    arr = np.arange(vals[0], vals[1], vals[2], dtype=np.float64 if dt.is_floating_point else np.int64)
    return _from_host(arr, dt, kwargs.get("device"), kwargs.get("requires_grad"))


def linspace(start, end, steps, **kwargs) -> Tensor:
    """torch.linspace: `steps` evenly spaced values from start to end inclusive (default float dtype)."""
    _kw(kwargs, "linspace")
    dt = _dtype_arg(kwargs.get("dtype")) or D.get_default_dtype()
    arr = np.linspace(float(start), float(end), int(steps), dtype=np.float64)
    # torch computes in the target dtype: start + i*step, symmetric from both ends
    return _from_host(arr.astype(dt.np) if not dt.emulated else arr, dt, kwargs.get("device"),
                      kwargs.get("requires_grad"))


def eye(n, m=None, **kwargs) -> Tensor:
    """torch.eye: [n, m] identity matrix (m defaults to n)."""
    _kw(kwargs, "eye")
    dt = _dtype_arg(kwargs.get("dtype")) or D.get_default_dtype()
    arr = np.eye(int(n), int(m) if m is not None else None)
    return _from_host(arr, dt, kwargs.get("device"), kwargs.get("requires_grad"))


# ---- random creation: torch's CPU streams (shim/torch/_cpu_rng.py) -----------------------------------------

from .. import _cpu_rng as _R  # noqa: E402

_FLOAT_KINDS = ("float32", "float64", "bfloat16", "float16")


def _gen(kwargs):
    from ..random import Generator, _default_or
    g = _default_or(kwargs.get("generator"))
    if not isinstance(g, Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(g).__name__}")
    return g


def _kind(dt: D.dtype, api: str, floating=True) -> str:
    if dt.name in _FLOAT_KINDS or not floating:
        return dt.name
    raise NotImplementedError(f"{api} for dtype {dt} is not implemented by the shim (floating dtypes only)")


def _numel(shape) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


def _draw_into(self, fill):
    """Fill tensor `self` in place with `fill(n)` (a flat array of n values in the order torch's kernel
    writes them: memory order, i.e. row-major for contiguous tensors, by descending stride otherwise)."""
    shape = tuple(self.shape)
    n = _numel(shape)
    if n == 0:
        return self
    if self.is_contiguous() or len(shape) < 2:
        arr = np.asarray(fill(n, True)).reshape(shape)
    else:
        strides = self.stride()
        order = sorted(range(len(shape)), key=lambda d: (-abs(strides[d]), d))
        perm_shape = tuple(shape[d] for d in order)
        arr = np.asarray(fill(n, False)).reshape(perm_shape).transpose(np.argsort(order))
    return _fill_random(self, arr)


def _fill_random(self, arr):
    from .._tensor import _assign
    arr = np.asarray(arr, dtype=np.float32 if self._dt.emulated else self._dt.np)
    m = ms.Tensor(np.ascontiguousarray(arr).reshape(arr.shape))  # ascontiguousarray makes a 0-d array 1-d
    if self._dt.emulated:
        m = _round_bf16(m)
    return _assign(self, m)


def _fresh(size, kwargs, api, default_dt=None):
    shape = _size(size, kwargs, api)
    _kw(kwargs, api)
    dt = _dtype_arg(kwargs.get("dtype")) or default_dt or D.get_default_dtype()
    return shape, dt


def _make(arr, dt, kwargs):
    return _from_host(arr, dt, kwargs.get("device"), kwargs.get("requires_grad"))


def rand(*size, **kwargs) -> Tensor:
    """torch.rand: uniform [0, 1) in the default float dtype; torch's CPU stream (see shim/torch/_cpu_rng.py)."""
    shape, dt = _fresh(size, kwargs, "rand")
    arr = _R.uniform(_gen(kwargs)._eng, _numel(shape), _kind(dt, "torch.rand"), 0.0, 1.0)
    return _make(arr.reshape(shape), dt, kwargs)


def randn(*size, **kwargs) -> Tensor:
    """torch.randn: standard normal in the default float dtype; torch's CPU stream."""
    shape, dt = _fresh(size, kwargs, "randn")
    arr = _R.normal(_gen(kwargs)._eng, _numel(shape), _kind(dt, "torch.randn"))
    return _make(arr.reshape(shape), dt, kwargs)


def randint(low, high=None, size=None, **kwargs) -> Tensor:
    """torch.randint(high, size) / randint(low, high, size): int64 by default; torch's CPU stream."""
    _kw(kwargs, "randint")
    if size is None:
        if high is None or not isinstance(high, (tuple, list)):
            raise TypeError("randint() missing required argument 'size'")
        low, high, size = 0, low, high
    elif high is None:
        low, high = 0, low
    dt = _dtype_arg(kwargs.get("dtype")) or D.int64
    shape = _shape_arg(tuple(size))
    wide = dt.name in ("int64", "float64", "float32", "bfloat16")
    arr = _R.randint(_gen(kwargs)._eng, _numel(shape), int(low), int(high), wide_ok=wide)
    return _make(arr.reshape(shape), dt, kwargs)


def randperm(n, **kwargs) -> Tensor:
    """torch.randperm: a random permutation of 0..n-1 (int64); torch's CPU stream."""
    _kw(kwargs, "randperm")
    n = int(n)
    if n < 0:
        raise RuntimeError(f"n must be non-negative, got {n}")
    dt = _dtype_arg(kwargs.get("dtype")) or D.int64
    return _make(_R.randperm(_gen(kwargs)._eng, n), dt, kwargs)


def rand_like(input, **kwargs) -> Tensor:
    """torch.rand_like: uniform [0, 1) draws shaped like input."""
    return rand(*input.shape, dtype=kwargs.get("dtype") or input._dt, device=kwargs.get("device") or input._dev,
                generator=kwargs.get("generator"))


def randn_like(input, **kwargs) -> Tensor:
    """torch.randn_like: standard normal draws shaped like input."""
    return randn(*input.shape, dtype=kwargs.get("dtype") or input._dt, device=kwargs.get("device") or input._dev,
                 generator=kwargs.get("generator"))


def randint_like(input, low, high=None, **kwargs) -> Tensor:
    """torch.randint_like: integers in [low, high) shaped like input."""
    return randint(low, high, tuple(input.shape), dtype=kwargs.get("dtype") or input._dt,
                   device=kwargs.get("device") or input._dev, generator=kwargs.get("generator"))


def uniform_(self, a=0.0, b=1.0, *, generator=None):
    """Tensor.uniform_: in place, uniform [a, b) draws; torch's CPU stream. RuntimeError when a > b."""
    if a > b:
        raise RuntimeError(f"uniform_ expects to return a [from, to) range, but found from={a} > to={b}")
    eng = _gen({"generator": generator})._eng
    kind = _kind(self._dt, "Tensor.uniform_")
    return _draw_into(self, lambda n, _c: _R.uniform(eng, n, kind, a, b))


def normal_(self, mean=0.0, std=1.0, *, generator=None):
    """Tensor.normal_: in place, normal(mean, std) draws; torch's CPU stream. RuntimeError when std < 0."""
    if std < 0:
        raise RuntimeError(f"normal expects std >= 0.0, but found std {std}")
    eng = _gen({"generator": generator})._eng
    kind = _kind(self._dt, "Tensor.normal_")
    return _draw_into(self, lambda n, contig: _R.normal(eng, n, kind, float(mean), float(std), contig))


def random_(self, low=0, high=None, *, generator=None):
    """Tensor.random_(): integers over the dtype's range; random_(to): [0, to); random_(from, to)."""
    eng = _gen({"generator": generator})._eng
    if high is None and low == 0:
        kind = self._dt.name
        return _draw_into(self, lambda n, _c: _R.random_full(eng, n, kind))
    if high is None:
        low, high = 0, low
    wide = self._dt.name in ("int64", "float64", "float32", "bfloat16")
    return _draw_into(self, lambda n, _c: _R.randint(eng, n, int(low), int(high), wide_ok=wide))


def bernoulli_(self, p=0.5, *, generator=None):
    """Tensor.bernoulli_: in place, 1 with probability p (a float or a tensor broadcast to self) else 0."""
    eng = _gen({"generator": generator})._eng
    if isinstance(p, Tensor):
        probs = np.broadcast_to(p._host(), tuple(self.shape))
        if not self.is_contiguous():
            raise NotImplementedError("Tensor.bernoulli_ with a probability tensor on a non-contiguous tensor")
        return _fill_random(self, _R.bernoulli_tensor(eng, probs))
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise RuntimeError(f"bernoulli_ expects p to be in [0, 1], but got p={p}")
    return _draw_into(self, lambda n, _c: _R.bernoulli_scalar(eng, n, p))


def exponential_(self, lambd=1.0, *, generator=None):
    """Tensor.exponential_: in place, exponential draws with rate `lambd` (> 0)."""
    if not lambd > 0:
        raise RuntimeError(f"exponential_ expects lambda > 0.0, but found lambda={lambd}")
    eng = _gen({"generator": generator})._eng
    _kind(self._dt, "Tensor.exponential_")
    return _draw_into(self, lambda n, _c: _R.exponential(eng, n, lambd))


def cauchy_(self, median=0.0, sigma=1.0, *, generator=None):
    """Tensor.cauchy_: in place, Cauchy(median, sigma) draws (sigma > 0); torch's CPU stream."""
    if not sigma > 0:
        raise RuntimeError(f"cauchy_ expects sigma > 0.0, but found sigma={sigma}")
    eng = _gen({"generator": generator})._eng
    _kind(self._dt, "Tensor.cauchy_")
    return _draw_into(self, lambda n, _c: _R.cauchy(eng, n, median, sigma))


def log_normal_(self, mean=1.0, std=2.0, *, generator=None):
    """Tensor.log_normal_: in place, exp(normal(mean, std)) draws (std > 0); torch's CPU stream."""
    if not std > 0:
        raise RuntimeError(f"log_normal_ expects std > 0.0, but found std={std}")
    eng = _gen({"generator": generator})._eng
    _kind(self._dt, "Tensor.log_normal_")
    return _draw_into(self, lambda n, _c: _R.log_normal(eng, n, mean, std))


def geometric_(self, p, *, generator=None):
    """Tensor.geometric_: in place, the number of Bernoulli(p) trials up to the first success (0 < p < 1);
    any dtype (values are integers); torch's CPU stream."""
    if not 0 < p < 1:
        raise RuntimeError(f"geometric_ expects p to be in (0, 1), but got p={p}")
    eng = _gen({"generator": generator})._eng
    return _draw_into(self, lambda n, _c: _R.geometric(eng, n, p))


def normal(mean, std=1.0, size=None, *, generator=None, **kwargs) -> Tensor:
    """torch.normal(mean, std, size) with float mean/std, or tensor mean/std (broadcast): torch's composition
    (standard normal draws of the output's shape, times std, plus mean)."""
    if isinstance(mean, Tensor) or isinstance(std, Tensor):
        like = mean if isinstance(mean, Tensor) else std
        shape = np.broadcast_shapes(tuple(mean.shape) if isinstance(mean, Tensor) else (),
                                    tuple(std.shape) if isinstance(std, Tensor) else ())
        out = empty(*shape, dtype=like._dt, device=like._dev)
        normal_(out, 0.0, 1.0, generator=generator)
        with _no_grad():
            values = out * std + mean
        return _zero_grad_through(values, mean, std)
    if size is None:
        raise TypeError("normal() with float mean and std requires 'size'")
    dt = _dtype_arg(kwargs.get("dtype")) or D.get_default_dtype()
    out = empty(*_shape_arg(tuple(size)), dtype=dt, device=kwargs.get("device"))
    normal_(out, mean, std, generator=generator)
    if kwargs.get("requires_grad"):
        out.requires_grad_(True)
    return out


def bernoulli(input, p=None, *, generator=None) -> Tensor:
    """torch.bernoulli: 0/1 draws with probabilities `input` (or the float p), input's dtype."""
    out = empty(*tuple(input.shape), dtype=input._dt, device=input._dev)
    with _no_grad():
        values = bernoulli_(out, input if p is None else p, generator=generator)
    return _zero_grad_through(values, input)


def _no_grad():
    from ..autograd.grad_mode import no_grad  # facade-internal cycle: grad_mode is imported after the op families
    return no_grad()


def _zero_grad_through(values, *inputs):
    """`values` as an output of `inputs` whose gradient is zero: torch defines the derivative of `normal` (tensor
    mean/std) and `bernoulli` as zeros, so the result requires grad when an input does, and backward gives zeros."""
    from ..autograd.grad_mode import is_grad_enabled  # facade-internal cycle (see _no_grad)
    srcs = [t for t in inputs if isinstance(t, Tensor) and t.requires_grad]
    if not srcs or not is_grad_enabled():
        return values
    return _ZeroGradThrough().apply(values, *srcs)


@functools.lru_cache(maxsize=None)
def _ZeroGradThrough():
    """The Function class, built once (on first use: autograd.function imports the op families)."""
    from ..autograd.function import Function  # facade-internal cycle (see _no_grad)

    class ZeroGradThrough(Function):
        @staticmethod
        def forward(ctx, values, *srcs):
            ctx.srcs = [(tuple(t.shape), t.dtype, t.device) for t in srcs]
            return values.clone()

        @staticmethod
        def backward(ctx, grad):
            return (None, *[zeros(*shp, dtype=dt, device=dev) for shp, dt, dev in ctx.srcs])
    return ZeroGradThrough


def multinomial(input, num_samples, replacement=False, *, generator=None) -> Tensor:
    """torch.multinomial: int64 [.., num_samples] category draws from (unnormalised) row weights (1-D or 2-D);
    torch's CPU algorithms. RuntimeError for invalid weights or too many samples without replacement."""
    eng = _gen({"generator": generator})._eng
    w = input._host()
    if w.ndim not in (1, 2):
        raise RuntimeError(f"prob_dist must be 1 or 2 dim, got {w.ndim}")
    num_samples = int(num_samples)
    if num_samples <= 0:
        raise RuntimeError("cannot sample n_sample <= 0 samples")
    if not replacement and num_samples > w.shape[-1]:
        raise RuntimeError("cannot sample n_sample > prob_dist.size(-1) samples without replacement")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise RuntimeError("probability tensor contains either `inf`, `nan` or element < 0")
    if np.any(w.reshape(-1, w.shape[-1]).sum(-1) <= 0):
        raise RuntimeError("invalid multinomial distribution (sum of probabilities <= 0)")
    if input._dt.emulated:
        w = w.astype(np.float32)
    return _from_host(_R.multinomial(eng, w, num_samples, bool(replacement)), D.int64, input._dev)


FUNCTIONS = {n: globals()[n] for n in __all__}
FUNCTIONS.update(normal=normal, bernoulli=bernoulli, multinomial=multinomial)
METHODS = {
    "new_zeros": new_zeros, "new_ones": new_ones, "new_empty": new_empty, "new_full": new_full,
    "new_tensor": new_tensor, "uniform_": uniform_, "normal_": normal_, "random_": random_,
    "bernoulli_": bernoulli_, "exponential_": exponential_, "cauchy_": cauchy_, "log_normal_": log_normal_,
    "geometric_": geometric_,
}
