"""Reductions and scans: sum, mean, prod, max/min (value, (values, indices) by dim, or elementwise), amax/amin,
argmax/argmin, topk, sort, argsort, cumsum, cumprod, softmax, log_softmax, var, std, var_mean, norm, all, any,
logsumexp, count_nonzero. Dtype rules as torch's (integer sums give int64, mean needs a floating dtype)."""
from __future__ import annotations

import builtins
import collections
import math

import numpy as np
import mindspore as ms
from mindspore import mint, ops

from .. import _dtype as D
from .._tensor import Tensor, _new, unwrap, _norm_dim, _cast_storage, _dtype_arg
from ..autograd.grad_mode import _GRAD
from .pointwise import _COLLAPSE_MIN, _check_values, _collapsed_reduce, _finish, _holds_nan, maximum, minimum

_cast = ops.cast
_INTLIKE = (D._BOOL, D._INT)


def _storage_as(input, dtype, widen_ints=False):
    """`(storage, dtype)` of `input` after torch's `dtype=` argument: the requested dtype, else int64 for
    bool/integer inputs when `widen_ints` (sum/prod/cumsum/cumprod accumulate there), else the input's own."""
    m = unwrap(input)
    dt = _dtype_arg(dtype) or (D.int64 if widen_ints and input._dt._cat in _INTLIKE else input._dt)
    if dt is not input._dt:
        m = _cast_storage(m, input._dt, dt)
    return m, dt


def _rt(name, fields=("values", "indices")):
    cls = collections.namedtuple(name, fields)
    cls.__module__ = "torch.return_types"
    return cls


MaxT, MinT, TopkT, SortT = _rt("max"), _rt("min"), _rt("topk"), _rt("sort")
KthT, MedianT, ModeT = _rt("kthvalue"), _rt("median"), _rt("mode")


def _dims(dim, ndim):
    if dim is None:
        return None
    if isinstance(dim, (tuple, list)):
        if len(dim) == 0:
            return None
        return tuple(_norm_dim(d, ndim) for d in dim)
    return _norm_dim(dim, ndim)


def _reduce_all_dims(m):
    return tuple(range(len(m.shape)))


# workaround "reduce layout" (shim/torch/_workarounds.py): sum, mean and norm reduce through _collapsed_reduce
def sum(input, dim=None, keepdim=False, *, dtype=None):
    """torch.sum: bool/integer inputs accumulate in int64; `dtype` casts before summing."""
    m, dt = _storage_as(input, dtype, widen_ints=True)
    d = _dims(dim, len(m.shape))
    if not m.shape:
        r = m
    elif input.numel() == 0:
        # workaround "ReduceSum empty": MindSpore's ReduceSum of an empty tensor can return uninitialised memory;
        # torch's sum is 0
        axes = _reduce_all_dims(m) if d is None else d
        shape = np.sum(np.empty(tuple(m.shape), np.float32), axis=axes, keepdims=keepdim).shape
        r = mint.zeros(shape, dtype=m.dtype)
        if m.dtype in (ms.float32, ms.float64, ms.float16, ms.bfloat16):
            # tied to the input (a one-element cat of its no elements and a zero) so a gradient is recorded
            r = r + mint.cat([m.reshape(-1), mint.zeros((1,), dtype=m.dtype)]).reshape(())
    else:
        r = _collapsed_reduce(mint.sum, m, (d,) if isinstance(d, int) else d, keepdim, input.numel())
    return _finish(r, dt, input)


def nansum(input, dim=None, keepdim=False, *, dtype=None):
    """torch.nansum: sum treating NaN as zero (dtype rules as torch.sum)."""
    from .pointwise import isnan
    from .indexing import masked_fill
    return sum(masked_fill(input, isnan(input), 0), dim, keepdim, dtype=dtype)


def mean(input, dim=None, keepdim=False, *, dtype=None):
    """torch.mean: floating/complex inputs only (RuntimeError otherwise, as torch)."""
    dt = _dtype_arg(dtype) or input._dt
    if dt._cat in _INTLIKE:
        raise RuntimeError(f"mean(): could not infer output dtype. Input dtype must be either a floating point or "
                           f"complex dtype. Got: {input._dt.name.capitalize()}")
    m = unwrap(input)
    if dt is not input._dt:
        m = _cast_storage(m, input._dt, dt)
    d = _dims(dim, len(m.shape))
    if not m.shape:
        r = m
    else:
        r = _collapsed_reduce(mint.mean, m, (d,) if isinstance(d, int) else d, keepdim, input.numel())
    return _finish(r, dt, input)


def nanmean(input, dim=None, keepdim=False, *, dtype=None):
    """torch.nanmean: mean over the non-NaN elements."""
    from .pointwise import isnan, logical_not
    s = nansum(input, dim, keepdim, dtype=dtype)
    return s / sum(logical_not(isnan(input)), dim, keepdim)


def prod(input, dim=None, keepdim=False, *, dtype=None):
    """torch.prod: product over all elements or `dim` (integers accumulate in int64)."""
    m, dt = _storage_as(input, dtype, widen_ints=True)
    if dim is None:
        r = mint.prod(m.reshape(-1), 0, False)
        if keepdim:
            r = r.reshape((1,) * len(m.shape))
    else:
        r = mint.prod(m, _norm_dim(dim, len(m.shape)), keepdim)
    return _finish(r, dt, input)


def _ordered(m):
    """Storage for the CPU max/min/sort kernels, which lack bool: bool -> int32 (cast back by `_back`)."""
    return _cast(m, ms.int32) if m.dtype == ms.bool_ else m


def _back(r, input):
    return _cast(r, ms.bool_) if input._dt is D.bool else r


# ---- NaN: MindSpore's CPU max/min/argmax/argmin reductions skip NaN and its sort/topk leave NaN unordered; torch
# returns NaN (the first NaN's index) from the former and orders NaN above +inf in the latter. Each reduction runs
# its kernel, then asks once whether the input holds a NaN at all (`pointwise._holds_nan`) and only then corrects
# the result.


def _first_nan(nan, d, keepdim):
    """(index of the first True along `d` (int64; 0 where none), whether there is one) of bool storage `nan`."""
    return (_cast(ops.argmax(_cast(nan, ms.int32), d, keepdim), ms.int64), mint.any(nan, d, keepdim))


def _nan_index_select(m, d, keepdim, i):
    """(values, indices) of a value-selecting reduction of storage `m` along `d`, with indices `i` (int64) from
    the kernel replaced by the first NaN's index in rows that hold one; values gathered at the indices, so the
    gradient reaches the selected element (torch's rule for max/min/median with dim)."""
    nan = mint.isnan(m)
    first, has = _first_nan(nan, d, keepdim)
    i = mint.where(has, first, _cast(i, ms.int64))
    ik = i if keepdim else i.unsqueeze(d)
    v = mint.gather(m, d, ik)
    return (v if keepdim else v.squeeze(d)), i


def _nan_all(m):
    """NaN as the 0-d result of a whole-tensor max/min/median of storage `m` holding NaN, its gradient shared
    evenly by the NaN elements (torch's rule)."""
    nan = mint.isnan(m)
    return mint.sum(mint.where(nan, m, ms.Tensor(0, m.dtype))) / mint.sum(_cast(nan, m.dtype))


def _maxmin(input, dim, keepdim, other, is_max):
    name = "max" if is_max else "min"
    if isinstance(dim, Tensor) and other is None:
        return maximum(input, dim) if is_max else minimum(input, dim)
    if other is not None:
        return maximum(input, other) if is_max else minimum(input, other)
    m = unwrap(input)
    if dim is None:
        if 0 in m.shape:
            raise RuntimeError(f"{name}(): Expected reduction dim to be specified for input.numel() == 0. "
                               f"Specify the reduction dim with the 'dim' argument.")
        r = mint.max(_ordered(m)) if is_max else mint.min(_ordered(m))
        if _holds_nan(input):
            r = _nan_all(m)  # workaround "Max reduction NaN" (shim/torch/_workarounds.py)
        return _new(_back(r, input), input._dt, input._dev)
    d = _norm_dim(dim, len(m.shape))
    if not m.shape:
        return (MaxT if is_max else MinT)(input.clone(), _new(mint.zeros((), dtype=ms.int64), D.int64,
                                                              input._dev))
    v, i = (mint.max(_ordered(m), d, keepdim) if is_max else mint.min(_ordered(m), d, keepdim))
    if _holds_nan(input):
        v, i = _nan_index_select(m, d, keepdim, i)  # workaround "Max reduction NaN" (shim/torch/_workarounds.py)
    return (MaxT if is_max else MinT)(_new(_back(v, input), input._dt, input._dev), _new(i, D.int64, input._dev))


def max(input, dim=None, keepdim=False, *, other=None):
    """torch.max(input) -> 0-d tensor; max(input, dim, keepdim) -> (values, indices); max(input, other)."""
    return _maxmin(input, dim, keepdim, other, True)


def min(input, dim=None, keepdim=False, *, other=None):
    """torch.min, as torch.max."""
    return _maxmin(input, dim, keepdim, other, False)


def _amaxmin(input, dim, keepdim, is_max):
    m = unwrap(input)
    d = _dims(dim, len(m.shape))
    if d is None:
        d = _reduce_all_dims(m)
    r = (mint.amax if is_max else mint.amin)(_ordered(m), d, keepdim)
    if _holds_nan(input):
        # workaround "Max reduction NaN" (shim/torch/_workarounds.py): NaN where the reduced slice holds one; the
        # gradient of such a slice is NaN for each of its elements, as torch's (it divides by a count of 0)
        nan = mint.isnan(m)
        has_k = ops.ReduceAny(True)(nan, d)  # mint.any takes one dim only
        poisoned = mint.sum(mint.where(has_k, m, ms.Tensor(0, m.dtype)), d, keepdim) * float("nan")
        r = mint.where(has_k if keepdim else ops.ReduceAny(False)(nan, d), poisoned, r)
    return _new(_back(r, input), input._dt, input._dev)


def amax(input, dim=(), keepdim=False):
    """torch.amax: maximum over `dim` (int or tuple; all dims when empty), same dtype; NaN where the slice holds
    a NaN."""
    return _amaxmin(input, dim, keepdim, True)


def amin(input, dim=(), keepdim=False):
    """torch.amin: minimum over `dim` (int or tuple; all dims when empty), same dtype; NaN where the slice holds
    a NaN."""
    return _amaxmin(input, dim, keepdim, False)


def aminmax(input, *, dim=None, keepdim=False):
    """torch.aminmax: (min, max) named tuple over `dim` or all elements."""
    return _rt("aminmax", ("min", "max"))(amin(input, dim if dim is not None else (), keepdim),
                                         amax(input, dim if dim is not None else (), keepdim))


def _arg(input, dim, keepdim, is_max):
    m = unwrap(input)
    flat = dim is None
    mm, d, kd = (m.reshape(-1), 0, False) if flat else (m, _norm_dim(dim, len(m.shape)), keepdim)
    # workaround "ArgMaxExt", workaround "ArgMinExt" (shim/torch/_workarounds.py): mint.argmax/argmin lack CPU kernels
    r = _cast((ops.argmax if is_max else ops.argmin)(mm, d, kd), ms.int64)
    if _holds_nan(input):
        # workaround "Max reduction NaN" (shim/torch/_workarounds.py): the first NaN's index, as torch
        first, has = _first_nan(mint.isnan(mm), d, kd)
        r = mint.where(has, first, r)
    if flat and keepdim:
        r = r.reshape((1,) * len(m.shape))
    return _new(r, D.int64, input._dev)


def argmax(input, dim=None, keepdim=False):
    """torch.argmax: int64 index of the maximum over `dim` (flattened input when dim is None); the first NaN's
    index where the input holds NaN."""
    return _arg(input, dim, keepdim, True)


def argmin(input, dim=None, keepdim=False):
    """torch.argmin: int64 index of the minimum over `dim` (flattened input when dim is None); the first NaN's
    index where the input holds NaN."""
    return _arg(input, dim, keepdim, False)


def topk(input, k, dim=-1, largest=True, sorted=True):
    """torch.topk -> (values, indices int64); NaN counts as larger than +inf (torch's order). With NaN present the
    result is sorted whatever `sorted` says (torch leaves the order unspecified then)."""
    m = unwrap(input)
    d = _norm_dim(dim, len(m.shape))
    if m.shape and _holds_nan(input):
        # workaround "Sort NaN" (shim/torch/_workarounds.py): the k first of torch's NaN-aware stable sort
        s = sort(input, d, largest)
        return TopkT(s.values.narrow(d, 0, int(k)).clone(), s.indices.narrow(d, 0, int(k)).clone())
    # workaround "TopkExt" (shim/torch/_workarounds.py)
    v, i = ops.topk(m, int(k), d, largest, sorted)  # mint.topk: no CPU kernel
    return TopkT(_new(v, input._dt, input._dev), _new(_cast(i, ms.int64), D.int64, input._dev))


def _sort_nan(m, d, descending):
    """(values, int64 indices) of storage `m` holding NaN sorted along `d` as torch does: NaN above +inf, ties in
    input order. Two stable sorts (MindSpore's CPU sort is stable both ways, checked by the tests): first by
    NaN-ness (NaN last ascending, first descending), then by the value with NaN read as +inf; values gathered
    (the gradient reaches each element once, as torch's)."""
    nan = mint.isnan(m)
    _, p1 = ops.sort(_cast(mint.logical_not(nan) if descending else nan, ms.int32), d)
    p1 = _cast(p1, ms.int64)
    key = mint.gather(mint.where(nan, ms.Tensor(float("inf"), m.dtype), ops.stop_gradient(m)), d, p1)
    _, p2 = ops.sort(key, d, descending)
    perm = mint.gather(p1, d, _cast(p2, ms.int64))
    return mint.gather(m, d, perm), perm


def sort(input, dim=-1, descending=False, stable=False):
    """torch.sort -> (values, indices int64); ties keep input order (stable), as torch's CPU sort; NaN sorts above
    +inf (last ascending, first descending)."""
    m = unwrap(input)
    d = _norm_dim(dim, len(m.shape))
    # workaround "SortExt" (shim/torch/_workarounds.py)
    if not m.shape:
        return SortT(input.clone(), _new(mint.zeros((), dtype=ms.int64), D.int64, input._dev))
    if _holds_nan(input):
        v, i = _sort_nan(m, d, descending)  # workaround "Sort NaN" (shim/torch/_workarounds.py)
        return SortT(_new(v, input._dt, input._dev), _new(i, D.int64, input._dev))
    v, i = ops.sort(_ordered(m), d, descending)  # mint.sort: no CPU kernel
    return SortT(_new(_back(v, input), input._dt, input._dev), _new(_cast(i, ms.int64), D.int64, input._dev))


def argsort(input, dim=-1, descending=False, stable=False):
    """torch.argsort: int64 indices that sort `input` along `dim`."""
    return sort(input, dim, descending, stable).indices


def cumsum(input, dim, *, dtype=None):
    """torch.cumsum: running sum along `dim` (integers accumulate in int64)."""
    m, dt = _storage_as(input, dtype, widen_ints=True)
    # workaround "CumsumExt" (shim/torch/_workarounds.py)
    if not m.shape:  # MindSpore's CumSum needs rank >= 1; a 0-d cumsum is the value
        return _finish(ops.cumsum(m.reshape(1), 0).reshape(()), dt, input)
    return _finish(ops.cumsum(m, _norm_dim(dim, len(m.shape))), dt, input)  # mint.cumsum: no CPU kernel


def cumprod(input, dim, *, dtype=None):
    """torch.cumprod: running product along `dim` (integers accumulate in int64)."""
    m, dt = _storage_as(input, dtype, widen_ints=True)
    return _finish(ops.cumprod(m, _norm_dim(dim, len(m.shape))), dt, input)


_LOWEST = {ms.float16: -65504.0, ms.bfloat16: -3.38e38, ms.float32: -3.4e38, ms.float64: -1.79e308}


def holds_nonfinite(m) -> bool:
    """Whether MindSpore storage `m` may hold a -inf, +inf or NaN: read on the host for small tensors (a copy costs
    less than a kernel launch there); for large ones, whether a row sum along the last axis is not finite (any of
    them makes it so; so can overflow: the callers then check exactly). MindSpore's last-axis sum is its fast
    reduction (~2-3 ms for 64 x 75,840 float32, where the whole-tensor min it replaces took ~75 ms)."""
    return not bool(np.isfinite(_check_values(m)).all())


def nan_slices(m, r, axis: int):
    """`r` (the softmax or log_softmax of storage `m` along `axis`) with every slice of `m` that holds a NaN or a
    +inf set to NaN, its gradient NaN for each element of the slice (torch's softmax/log_softmax there: x - max is
    NaN at +inf); `r` itself when no slice holds either (one host read).

    workaround "Max reduction NaN" (shim/torch/_workarounds.py): MindSpore's softmax/log_softmax kernels take
    their row maximum without the NaN (softmax gives 0, log_softmax -inf beside it) and give such a row with +inf
    NaN only at the +inf."""
    nan = mint.logical_or(mint.isnan(m), m == float("inf"))
    has = mint.any(nan, axis, True)
    if not bool(mint.any(has).asnumpy()):
        return r
    poisoned = mint.sum(mint.where(has, m, ms.Tensor(0, m.dtype)), axis, True) * float("nan")
    return mint.where(has, _cast(poisoned, r.dtype), r)


def softmax_kernel(m, axis: int, dead_value: float = float("nan")):
    """`mint.softmax(m, axis)` on MindSpore storage, right when a slice along `axis` holds only -inf or a NaN.

    workaround "Softmax -inf row": MindSpore's CPU kernel returns zeros for such a slice and for every later slice
    of the tensor. When one exists (checked only when the tensor may hold a non-finite value at all:
    `holds_nonfinite`; then with two reductions and one host read), the -inf entries are replaced by
    the dtype's lowest finite value (exp of it minus any finite max is exactly 0, as exp(-inf)) and the all -inf
    slices become `dead_value`: NaN as torch's softmax (their gradient is 0 where torch's is NaN); 0 as torch's
    CPU scaled_dot_product_attention, whose fully masked query rows give zeros. Slices holding NaN or +inf give
    NaN (`nan_slices`).
    """
    if m.dtype in _LOWEST and m.size and holds_nonfinite(m):
        neg = m == float("-inf")
        dead = mint.all(neg, dim=axis, keepdim=True)
        if bool(mint.any(dead).asnumpy()):
            safe = mint.where(neg, ms.Tensor(_LOWEST[m.dtype], m.dtype), m)
            r = mint.where(dead, ms.Tensor(dead_value, m.dtype), mint.softmax(safe, axis))
        else:
            r = mint.softmax(m, axis)
        return nan_slices(m, r, axis)
    return mint.softmax(m, axis)


def softmax(input, dim, dtype=None):
    """torch.softmax along `dim` (dtype casts first)."""
    m, dt = _storage_as(input, dtype)
    return _finish(softmax_kernel(m, _norm_dim(dim, len(m.shape))), dt, input)


def log_softmax(input, dim, dtype=None):
    """torch.log_softmax (MindSpore's mint kernel is missing on CPU: ops.log_softmax)."""
    from ..nn.functional import _log_softmax_m
    m, dt = _storage_as(input, dtype)
    # workaround "LogSoftmaxExt" (shim/torch/_workarounds.py)
    if not m.shape:
        return _finish(m * 0, dt, input)
    return _finish(_log_softmax_m(m, _norm_dim(dim, len(m.shape)), dt.sms), dt, input)


def logsumexp(input, dim, keepdim=False):
    """torch.logsumexp: log(sum(exp(x))) over `dim`, computed stably (max subtracted)."""
    m, dt = unwrap(input), input._dt
    if dt._cat in _INTLIKE:  # torch: integer and bool inputs give the default float dtype
        dt = D.get_default_dtype()
        m = _cast(m, dt.sms)
    d = _dims(dim, len(m.shape))
    if d is None:
        d = _reduce_all_dims(m)
    mx = mint.amax(m, d, True)
    mx = ops.stop_gradient(mint.where(mint.isinf(mx), ops.zeros(tuple(mx.shape), mx.dtype), mx))
    r = mint.log(mint.sum(mint.exp(m - mx), d, True)) + mx
    if not keepdim:
        r = r.squeeze(d)
    return _finish(r, dt, input)


def _correction(unbiased, correction):
    if correction is not None:
        return correction
    if unbiased is None:
        return 1
    return 1 if unbiased else 0


def var(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """torch.var with `correction` (default 1, Bessel) or legacy `unbiased`."""
    if isinstance(dim, builtins.bool):
        unbiased, dim = dim, None
    c = _correction(unbiased, correction)
    m = unwrap(input)
    d = _dims(dim, len(m.shape))
    if d is None:
        d = _reduce_all_dims(m)
    dd = (d,) if isinstance(d, int) else d
    n = 1
    for x in dd:
        n *= m.shape[x]
    mu = mint.mean(m, dd, True)
    diff = m - mu
    r = mint.sum(diff * diff, dd, keepdim) / builtins.max(n - c, 0)
    return _finish(r, input._dt, input)


def std(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """torch.std: square root of torch.var (same `correction`/`unbiased` rules)."""
    v = var(input, dim, unbiased, keepdim, correction=correction)
    return _finish(mint.sqrt(unwrap(v)), input._dt, input)


def var_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """torch.var_mean: (var, mean) over `dim` (`var_mean(x, unbiased)` with a bool second argument too)."""
    if isinstance(dim, builtins.bool):
        unbiased, dim = dim, None
    return var(input, dim, unbiased, keepdim, correction=correction), mean(input, dim, keepdim)


def std_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """torch.std_mean: (std, mean) over `dim` (`std_mean(x, unbiased)` with a bool second argument too)."""
    if isinstance(dim, builtins.bool):
        unbiased, dim = dim, None
    return std(input, dim, unbiased, keepdim, correction=correction), mean(input, dim, keepdim)


def norm(input, p="fro", dim=None, keepdim=False, dtype=None):
    """torch.norm: p in {'fro', 2, 1, inf, -inf, 0, other floats} over all elements or `dim` (vector norms);
    p='nuc' over two dims (all of a 2-D input) is torch.linalg.matrix_norm's (singular values)."""
    if p == "nuc":
        from ..linalg import matrix_norm  # a cycle inside the facade core (torch.linalg uses these reductions)
        x = input if dtype is None else input.to(dtype)
        return matrix_norm(x, "nuc", (-2, -1) if dim is None else tuple(dim), keepdim)
    m, dt = _storage_as(input, dtype)
    d = _dims(dim, len(m.shape))
    if d is None:
        d = _reduce_all_dims(m)
    dd = (d,) if isinstance(d, int) else d
    if (p == "fro" or p == 2 or p is None) and _HOST_NORM and len(dd) == len(m.shape) and m.dtype == ms.float32 \
            and input.numel() >= _COLLAPSE_MIN and not (_GRAD[0] and input.requires_grad) and m.is_contiguous():
        r = _host_l2(m, keepdim)
    elif p == "fro" or p == 2 or p is None:
        r = mint.sqrt(_collapsed_reduce(mint.sum, mint.mul(m, m), dd, keepdim, input.numel()))
    elif p == float("inf"):
        r = mint.amax(mint.abs(m), dd, keepdim)
    elif p == float("-inf"):
        r = mint.amin(mint.abs(m), dd, keepdim)
    elif p == 1:
        r = mint.sum(mint.abs(m), dd, keepdim)
    elif p == 0:
        r = mint.sum(_cast(m != 0, m.dtype), dd, keepdim)
    elif p == "nuc":
        raise NotImplementedError("torch.norm(p='nuc') is not supported by the shim")
    else:
        r = mint.pow(mint.sum(mint.pow(mint.abs(m), float(p)), dd, keepdim), 1.0 / float(p))
    return _finish(r, dt, input)


# workaround "host norm" (shim/torch/_workarounds.py): the 2-norm of all elements of a large float32 tensor that
# records no gradient (megatron's gradient norms and NaN checks) is computed on the host: numpy's dot product per
# chunk of 65,536 elements (float32, BLAS), the chunks' sums added in float64. One pass without a temporary: ~6 ms
# for 9.7M elements where MindSpore's Mul + ReduceSum take ~20 ms, and a float64 total (closer to the exact value
# than either MindSpore's or torch's float32 accumulation). Only where the host reads the storage without a copy.
_HOST_NORM = ms.get_context("device_target") == "CPU"
_HOST_CHUNK = 1 << 16


def _host_l2(m, keepdim):
    """sqrt(sum(m**2)) of contiguous float32 MindSpore storage `m`, as a float32 MindSpore tensor (0-d, or all-1
    shape when `keepdim`)."""
    flat = m.asnumpy().reshape(-1)
    total = 0.0
    for start in range(0, flat.size, _HOST_CHUNK):
        chunk = flat[start:start + _HOST_CHUNK]
        total += float(np.dot(chunk, chunk))
    r = ms.Tensor(np.float32(math.sqrt(total)))
    return r.reshape((1,) * len(m.shape)) if keepdim else r


def dist(input, other, p=2):
    """torch.dist: p-norm of input - other."""
    return norm(input - other, p)


def all(input, dim=None, keepdim=False):
    """torch.all: bool, True when every element (over `dim`) is non-zero."""
    m = unwrap(input)
    b = m if m.dtype == ms.bool_ else (m != 0)
    if dim is None:
        r = mint.all(b) if not keepdim else mint.all(b, _reduce_all_dims(b), True)
    else:
        r = mint.all(b, _dims(dim, len(m.shape)), keepdim)
    return _new(r, D.bool, input._dev)


def any(input, dim=None, keepdim=False):
    """torch.any: bool, True when any element (over `dim`) is non-zero."""
    m = unwrap(input)
    b = m if m.dtype == ms.bool_ else (m != 0)
    if dim is None:
        r = mint.any(b) if not keepdim else mint.any(b, _reduce_all_dims(b), True)
    else:
        r = mint.any(b, _dims(dim, len(m.shape)), keepdim)
    return _new(r, D.bool, input._dev)


def count_nonzero(input, dim=None):
    """torch.count_nonzero: int64 count of non-zero elements over `dim`."""
    from .pointwise import ne
    return sum(ne(input, 0), dim)


def median(input, dim=None, keepdim=False):
    """torch.median: lower median (torch's definition); with dim -> (values, indices). NaN where the input (the
    slice) holds a NaN, with the first NaN's index (torch.nanmedian ignores NaN)."""
    nan = _holds_nan(input)
    if dim is None:
        if nan:  # workaround "Max reduction NaN" (shim/torch/_workarounds.py): torch's median propagates NaN
            return _new(_nan_all(unwrap(input)), input._dt, input._dev)
        flat = input.reshape(-1)
        v = sort(flat).values
        return v[(flat.numel() - 1) // 2].clone()
    d = _norm_dim(dim, input.dim())
    if input.dim() == 0:
        return MedianT(input.clone(), _new(mint.zeros((), dtype=ms.int64), D.int64, input._dev))
    s = sort(input, d)
    k = (input.size(d) - 1) // 2
    vals, idx = s.values.select(d, k), s.indices.select(d, k)
    if keepdim:
        vals, idx = vals.unsqueeze(d), idx.unsqueeze(d)
    if nan:  # workaround "Max reduction NaN": the first NaN of rows that hold one (the sort put NaN last)
        v, i = _nan_index_select(unwrap(input), d, keepdim, unwrap(idx))
        return MedianT(_new(v, input._dt, input._dev), _new(i, D.int64, input._dev))
    return MedianT(vals.clone(), idx.clone())


def kthvalue(input, k, dim=-1, keepdim=False):
    """torch.kthvalue -> (values, indices int64): the k-th smallest element along `dim` (k counts from 1; ties
    may pick a different index than torch, whose choice is unspecified). RuntimeError for k out of range."""
    if input.dim() == 0:
        if k != 1:
            raise RuntimeError("kthvalue(): selected number k out of range for dimension 0")
        return KthT(input.clone(), _new(mint.zeros((), dtype=ms.int64), D.int64, input._dev))
    d = _norm_dim(dim, input.dim())
    n = input.shape[d]
    if not 1 <= k <= n:
        raise RuntimeError(f"kthvalue(): selected number k out of range for dimension {d}")
    s = sort(input, d)
    vals, idx = s.values.narrow(d, k - 1, 1), s.indices.narrow(d, k - 1, 1)
    if not keepdim:
        vals, idx = vals.squeeze(d), idx.squeeze(d)
    return KthT(vals.clone(), idx.clone())


def _cum_extreme(input, dim, is_max):
    m = unwrap(input)
    if not m.shape:
        return input.clone(), _new(mint.zeros((), dtype=ms.int64), D.int64, input._dev)
    d = _norm_dim(dim, len(m.shape))
    # MindSpore's CumMax/CumMin have no CPU backward: indices from the kernel, values gathered (differentiable)
    _, i = (ops.cummax if is_max else ops.cummin)(ops.stop_gradient(_ordered(m)), d)
    i = _cast(i, ms.int64)
    from .indexing import gather
    idx = _new(i, D.int64, input._dev)
    return gather(input, d, idx), idx


def cummax(input, dim):
    """torch.cummax -> (values, indices int64): running maximum along `dim`."""
    v, i = _cum_extreme(input, dim, True)
    return _rt("cummax")(v, i)


def cummin(input, dim):
    """torch.cummin -> (values, indices int64): running minimum along `dim`."""
    v, i = _cum_extreme(input, dim, False)
    return _rt("cummin")(v, i)


def logcumsumexp(input, dim):
    """torch.logcumsumexp: log(cumsum(exp(x))) along `dim`, shifted by the (gradient-stopped) maximum."""
    from .pointwise import log, exp, isinf, where_
    x = input if input._dt.is_floating_point else input.to(D.get_default_dtype())
    if x.dim() == 0:
        return x.clone()
    d = _norm_dim(dim, x.dim())
    mx = amax(x.detach(), d, True)
    mx = where_(isinf(mx), 0.0, mx)
    return log(cumsum(exp(x - mx), d)) + mx


def trapezoid(y, x=None, *, dx=None, dim=-1):
    """torch.trapezoid: trapezoidal rule along `dim` with sample points `x` or spacing `dx` (default 1)."""
    d = _norm_dim(dim, y.dim())
    n = y.shape[d]
    if n == 0:
        return sum(y, d)
    a, b = y.narrow(d, 1, n - 1), y.narrow(d, 0, n - 1)
    if x is not None:
        if x.dim() == 1:
            dxs = x[1:] - x[:-1]
            shape = [1] * y.dim()
            shape[d] = n - 1
            dxs = dxs.reshape(shape)
        else:
            dd = _norm_dim(dim, x.dim())
            dxs = x.narrow(dd, 1, n - 1) - x.narrow(dd, 0, n - 1)
        return sum((a + b) * dxs, d) / 2
    return sum(a + b, d) * ((1.0 if dx is None else dx) / 2)


def trapz(y, x=None, *, dx=None, dim=-1):
    """torch.trapz: torch.trapezoid."""
    return trapezoid(y, x, dx=dx, dim=dim)


def cumulative_trapezoid(y, x=None, *, dx=None, dim=-1):
    """torch.cumulative_trapezoid: running trapezoidal integral along `dim` (one element fewer)."""
    d = _norm_dim(dim, y.dim())
    n = y.shape[d]
    a, b = y.narrow(d, 1, builtins.max(n - 1, 0)), y.narrow(d, 0, builtins.max(n - 1, 0))
    if x is not None:
        if x.dim() == 1:
            dxs = x[1:] - x[:-1]
            shape = [1] * y.dim()
            shape[d] = n - 1
            dxs = dxs.reshape(shape)
        else:
            dd = _norm_dim(dim, x.dim())
            dxs = x.narrow(dd, 1, n - 1) - x.narrow(dd, 0, n - 1)
        return cumsum((a + b) * dxs / 2, d)
    return cumsum((a + b) * ((1.0 if dx is None else dx) / 2), d)


FUNCTIONS = dict(sum=sum, nansum=nansum, mean=mean, nanmean=nanmean, prod=prod, max=max, min=min, amax=amax,
                 amin=amin, aminmax=aminmax, argmax=argmax, argmin=argmin, topk=topk, sort=sort, argsort=argsort,
                 cumsum=cumsum, cumprod=cumprod, softmax=softmax, log_softmax=log_softmax, logsumexp=logsumexp,
                 var=var, std=std, var_mean=var_mean, std_mean=std_mean, norm=norm, dist=dist, all=all, any=any,
                 count_nonzero=count_nonzero, median=median, cummax=cummax, cummin=cummin,
                 logcumsumexp=logcumsumexp, kthvalue=kthvalue, trapezoid=trapezoid, trapz=trapz, cumulative_trapezoid=cumulative_trapezoid)
METHODS = dict(FUNCTIONS)
METHODS.update(
    max=lambda self, dim=None, keepdim=False: max(self, dim, keepdim),
    min=lambda self, dim=None, keepdim=False: min(self, dim, keepdim),
    cumsum_=lambda self, dim: self.copy_(cumsum(self, dim)),
)
