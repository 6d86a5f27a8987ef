"""torch.masked for the facade: the masked reductions and normalizations on strided tensors.

Each function takes a boolean `mask` (broadcast to the input's shape; None = every element valid), replaces the
masked-out elements by the operation's identity (0 for sum/cumsum/norm, 1 for prod/cumprod, -inf for
amax/argmax/logsumexp/logaddexp/softmax/log_softmax, +inf for amin/argmin/softmin (integer limits for integer
inputs), NaN for median) and runs the facade's op on the result, so autograd flows through the facade ops and a
masked-out element gets a zero gradient. A slice with every element masked out gives the identity (sum 0,
amax -inf, …), NaN for mean/var/std/median, as torch's. mean/var/std count only the valid elements.

Not provided (UnsupportedAPI names them): MaskedTensor, masked_tensor, as_masked_tensor and sparse inputs.
"""
from __future__ import annotations

import math

from .._unsupported import module_getattr as _module_getattr
from .._ops._support import emulated as _emulated

__all__ = ["sum", "prod", "cumsum", "cumprod", "amax", "amin", "argmax", "argmin", "mean", "median", "norm", "var",
           "std", "softmax", "log_softmax", "softmin", "normalize", "logaddexp", "logsumexp"]

_py_sum = sum
_composed = _emulated("composed: masked-out elements replaced by the operation's identity, then the facade op")


def _T():
    import shim.torch as T  # a cycle inside the facade core: torch imports torch.masked lazily
    return T


_NARROW_INTS = ("uint8", "bool", "int8", "int16", "int32")


def _dims(dim, ndim):
    """torch.masked's canonical dims: sorted, non-negative, all dims for None or ()."""
    if dim is None or dim == () or dim == []:
        return tuple(range(ndim))
    n = max(ndim, 1)
    ds = (dim,) if isinstance(dim, int) else tuple(dim)
    out = []
    for d in ds:
        if d >= n or d < -n:
            raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {d})")
        if d % n in out:
            raise RuntimeError(f"dim={d} appears multiple times in the list of dims")
        out.append(d % n)
    return tuple(sorted(out))


def _mask(input, mask):
    """The canonical mask: bool, broadcast to input's shape."""
    if mask.dim() > input.dim():
        raise IndexError("_input_mask expected broadcastable mask (got mask dimensionality higher than of the "
                         "input)")
    return mask.expand(*input.shape).to(_T().bool)


def _identity(kind, input):
    T = _T()
    dt = input.dtype
    if kind == "zero":
        return 0
    if kind == "one":
        return 1
    if kind == "nan":
        return float("nan")
    big = kind == "max"  # the identity of amin: the largest value
    if dt.is_floating_point:
        return math.inf if big else -math.inf
    if dt == T.bool:
        raise NotImplementedError(f"torch.masked: identity of a reduction on {dt} input is not defined")
    info = T.iinfo(dt)
    return info.max if big else info.min


def _fill(input, mask, kind):
    if mask is None:
        return input
    T = _T()
    fill = _identity(kind, input)
    return T.where(_mask(input, mask), input, T.tensor(fill, dtype=input.dtype))


def _sum_dtype(input, dtype):
    if dtype is not None:
        return dtype
    name = str(input.dtype).replace("torch.", "")
    return _T().int64 if name in _NARROW_INTS else input.dtype


@_composed
def sum(input, dim=None, *, keepdim=False, dtype=None, mask=None):
    """torch.masked.sum: sum of the valid elements over `dim` (all when None); narrow integer inputs accumulate in
    int64."""
    dt = _sum_dtype(input, dtype)
    x = _fill(input, mask, "zero")
    dims = _dims(dim, input.dim())
    if not dims:
        return x.to(dt).clone()
    return _T().sum(x, dims, bool(keepdim), dtype=dt)


@_composed
def prod(input, dim=None, *, keepdim=False, dtype=None, mask=None):
    """torch.masked.prod: product of the valid elements over `dim` (all when None)."""
    dt = _sum_dtype(input, dtype)
    r = _fill(input, mask, "one").to(dt)
    for d in reversed(_dims(dim, input.dim())):
        r = r.prod(d, keepdim=bool(keepdim))
    return r


@_composed
def cumsum(input, dim, *, dtype=None, mask=None):
    """torch.masked.cumsum: cumulative sum along `dim`, masked-out elements counted as 0."""
    dt = input.dtype if dtype is None else dtype
    return _T().cumsum(_fill(input, mask, "zero"), _dims(dim, input.dim())[0], dtype=dt).to(dt)


@_composed
def cumprod(input, dim, *, dtype=None, mask=None):
    """torch.masked.cumprod: cumulative product along `dim`, masked-out elements counted as 1."""
    dt = input.dtype if dtype is None else dtype
    return _T().cumprod(_fill(input, mask, "one"), _dims(dim, input.dim())[0], dtype=dt).to(dt)


def _minmax(fn, kind, input, dim, keepdim, dtype, mask):
    dt = input.dtype if dtype is None else dtype
    x = _fill(input, mask, kind)
    dims = _dims(dim, x.dim())
    if not dims:
        return x.to(dt).clone()
    return getattr(_T(), fn)(x, dims, bool(keepdim)).to(dt)


@_composed
def amax(input, dim=None, *, keepdim=False, dtype=None, mask=None):
    """torch.masked.amax: maximum of the valid elements (-inf, or the integer minimum, where none is valid)."""
    return _minmax("amax", "min", input, dim, keepdim, dtype, mask)


@_composed
def amin(input, dim=None, *, keepdim=False, dtype=None, mask=None):
    """torch.masked.amin: minimum of the valid elements (+inf, or the integer maximum, where none is valid)."""
    return _minmax("amin", "max", input, dim, keepdim, dtype, mask)


@_composed
def argmax(input, dim=None, *, keepdim=False, dtype=None, mask=None):
    """torch.masked.argmax: index of the maximum valid element, returned in `dtype` (the input's by default, as
    torch)."""
    dt = input.dtype if dtype is None else dtype
    return _T().argmax(_fill(input, mask, "min"), dim, bool(keepdim)).to(dt)


@_composed
def argmin(input, dim=None, *, keepdim=False, dtype=None, mask=None):
    """torch.masked.argmin: index of the minimum valid element, returned in `dtype` (the input's by default)."""
    dt = input.dtype if dtype is None else dtype
    return _T().argmin(_fill(input, mask, "max"), dim, bool(keepdim)).to(dt)


def _count(input, mask, dim, keepdim):
    T = _T()
    if mask is None:
        return sum(T.ones(tuple(input.shape), dtype=T.int64), dim, keepdim=keepdim)
    return sum(_mask(input, mask), dim, keepdim=keepdim)


@_composed
def mean(input, dim=None, *, keepdim=False, dtype=None, mask=None):
    """torch.masked.mean: sum of the valid elements / their count (NaN where none is valid); floating dtypes
    only (ValueError otherwise, as torch)."""
    dt = input.dtype if dtype is None else dtype
    if not dt.is_floating_point:
        src = "Optional" if dtype is not None else "Input"
        raise ValueError(f"mean(): Could not infer output dtype. {src} dtype must be either a floating point or "
                         f"complex dtype. Got: {dt}")
    total = sum(input, dim, keepdim=keepdim, dtype=dt, mask=mask)
    return total / _count(input, mask, dim, keepdim)


@_composed
def median(input, dim=-1, *, keepdim=False, dtype=None, mask=None):
    """torch.masked.median: median of the valid elements along `dim` (NaN where none is valid; an integer input
    with such a slice raises ValueError)."""
    T = _T()
    dt = input.dtype if dtype is None else dtype
    d = _dims(dim, input.dim())[0]
    is_float = input.dtype.is_floating_point
    x = input if is_float else input.to(T.float32)
    out = _nanmedian(_fill(x, mask, "nan"), d, keepdim)
    if is_float:
        return out
    if bool(T.isnan(out).any()):
        raise ValueError("masked median expects no fully masked out rows if dtype is not floating point")
    return out.to(dt)


def _nanmedian(x, d, keepdim):
    """The lower median of the non-NaN elements of x along d (NaN where there is none), as torch.nanmedian's
    values: sort with the NaNs moved after every real value, pick position (k - 1) // 2 of
    the k valid ones. Differentiable (the gradient reaches the picked element)."""
    T = _T()
    if x.dim() == 0:
        return x.clone()
    nan = T.isnan(x)
    k = (~nan).sum(d, keepdim=True)
    key = T.where(nan, math.inf, x)
    # sort by (value, isnan): NaNs (as +inf) after every real value, real +inf included
    first = T.argsort(nan.to(T.int64), d, stable=True)
    idx = T.gather(first, d, T.argsort(T.gather(key, d, first), d, stable=True))
    pos = T.clamp((k - 1) // 2, min=0)
    pick = T.gather(idx, d, pos)
    val = T.gather(x, d, pick)
    val = T.where(k == 0, float("nan"), val)
    return val if keepdim else val.squeeze(d)


@_composed
def logsumexp(input, dim=None, *, keepdim=False, dtype=None, mask=None):
    """torch.masked.logsumexp: log of the sum of exp of the valid elements (-inf where none is valid)."""
    dt = input.dtype if dtype is None else dtype
    x = _fill(input, mask, "min")
    dims = _dims(dim, input.dim())
    if not dims:
        return _T().logsumexp(x.reshape(1), 0, keepdim=False).reshape(()).to(dt) if x.dim() == 0 else x.to(dt)
    return _T().logsumexp(x, dims, keepdim=keepdim).to(dt)


@_composed
def logaddexp(input, other, *, dtype=None, input_mask=None, other_mask=None):
    """torch.masked.logaddexp: logaddexp of the two inputs, each masked-out element taken as -inf."""
    dt = input.dtype if dtype is None else dtype
    return _T().logaddexp(_fill(input, input_mask, "min"), _fill(other, other_mask, "min")).to(dt)


@_composed
def norm(input, ord=2.0, dim=None, *, keepdim=False, dtype=None, mask=None):
    """torch.masked.norm: the `ord` vector norm of the valid elements (torch.linalg.vector_norm)."""
    dt = input.dtype if dtype is None else dtype
    kind = "max" if ord == -math.inf else "zero"
    x = _fill(input, mask, kind)
    return _T().linalg.vector_norm(x, ord, _dims(dim, input.dim()), bool(keepdim), dtype=dt)


def _std_var(input, dim, unbiased, correction, keepdim, dtype, mask, take_sqrt):
    T = _T()
    if unbiased is not None and correction is not None:
        raise ValueError("Only one of unbiased and correction may be given")
    corr = 1.0
    if unbiased is not None:
        corr = 1.0 if unbiased else 0.0
    if correction is not None:
        corr = float(correction)
    dt = input.dtype if dtype is None else dtype
    if dtype is None and not dt.is_floating_point:
        dt = T.float32
    cdt = dt if dt.is_floating_point else T.float32
    count = _count(input, mask, dim, True)
    mu = sum(input, dim, keepdim=True, dtype=dt, mask=mask) / count
    x = input - mu
    total = sum(x * x, dim, keepdim=keepdim, dtype=cdt, mask=mask)
    if not keepdim:
        count = count.reshape(tuple(total.shape))
    if corr != 0:
        count = count.to(cdt) - corr
        count = T.maximum(count, T.zeros((), dtype=cdt))
    out = (total / count).to(dt)
    return T.sqrt(out) if take_sqrt else out


@_composed
def var(input, dim=None, unbiased=None, *, correction=None, keepdim=False, dtype=None, mask=None):
    """torch.masked.var: variance of the valid elements (correction 1 by default; NaN or inf where the count
    after correction is 0, as torch)."""
    return _std_var(input, dim, unbiased, correction, keepdim, dtype, mask, False)


@_composed
def std(input, dim=None, unbiased=None, *, correction=None, keepdim=False, dtype=None, mask=None):
    """torch.masked.std: the square root of masked var."""
    return _std_var(input, dim, unbiased, correction, keepdim, dtype, mask, True)


def _softmax(x, d):
    """exp(x - max) / sum(exp(x - max)) along d: a slice of -inf only gives NaN (as torch). Composed rather than
    F.softmax: workaround "Softmax -inf row" (MindSpore's CPU Softmax zeroes that slice and every later one)."""
    T = _T()
    z = T.exp(x - x.amax(d, keepdim=True))
    return z / z.sum(d, keepdim=True)


@_composed
def softmax(input, dim, *, dtype=None, mask=None):
    """torch.masked.softmax: softmax along `dim` over the valid elements (masked-out elements get 0; a slice with
    none valid gives NaN)."""
    dt = input.dtype if dtype is None else dtype
    return _softmax(_fill(input, mask, "min").to(dt), _dims(dim, input.dim())[0])


@_composed
def log_softmax(input, dim, *, dtype=None, mask=None):
    """torch.masked.log_softmax: log_softmax along `dim` over the valid elements (masked-out elements: -inf)."""
    dt = input.dtype if dtype is None else dtype
    return _T().nn.functional.log_softmax(_fill(input, mask, "min"), _dims(dim, input.dim())[0], dtype=dt)


@_composed
def softmin(input, dim, *, dtype=None, mask=None):
    """torch.masked.softmin: softmin along `dim` over the valid elements (masked-out elements get 0)."""
    dt = input.dtype if dtype is None else dtype
    return _softmax(-_fill(input, mask, "max").to(dt), _dims(dim, input.dim())[0])


@_composed
def normalize(input, ord, dim, *, eps=1e-12, dtype=None, mask=None):
    """torch.masked.normalize: the valid elements divided by their `ord` norm along `dim` (at least `eps`);
    masked-out elements become 0."""
    T = _T()
    dt = input.dtype if dtype is None else dtype
    x = _fill(input, mask, "zero")
    nrm = norm(input, ord, dim, keepdim=True, dtype=dt, mask=mask)
    return x / T.maximum(nrm, T.tensor(eps, dtype=nrm.dtype))


__getattr__ = _module_getattr("torch.masked")
