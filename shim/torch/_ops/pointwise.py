"""Pointwise ops with torch's type promotion: arithmetic, comparisons, unary math, clamp, logical/bitwise,
their in-place variants (`add_` …) and the Python operators (`a + b`, `a += b` in place, `a == b` …).

Each op: promote operands (torch.result_type rules, Python scalars included), cast to the result's storage
dtype when needed, one MindSpore call (`mint` first, `ops` where mint lacks a CPU kernel), round to bfloat16
when bfloat16 is emulated. In-place variants compute out of place and write back (see _tensor._assign);
like torch they refuse results whose dtype can't be cast to the destination ("result type Float can't be cast
to the desired output type Long").
"""
from __future__ import annotations

import builtins
import math
import numbers

import numpy as np
import mindspore as ms
from mindspore import mint, ops

from .. import _dtype as D
from .._tensor import Tensor, _assign, _clone, _new, _round_bf16, unwrap, _cast_storage
from .._aliasing import host_reshape
from ..autograd.grad_mode import _GRAD
from ._support import emulated

_cast = ops.cast
_INTLIKE = (D._BOOL, D._INT)


def _scalar(v):
    if isinstance(v, np.generic):
        return v.item()
    return v


def _promote(a, b):
    """((ms_a, ms_b), result dtype, a tensor operand for device) with torch's promotion; scalars stay scalars
    unless they are the only operands."""
    at = isinstance(a, Tensor)
    bt = isinstance(b, Tensor)
    if at and bt:
        am, bm = unwrap(a), unwrap(b)
        ad, bd = a._dt, b._dt
        if ad is bd:
            return (am, bm), ad, a
        a_dim, b_dim = a.dim() > 0, b.dim() > 0
        if a_dim == b_dim:
            dt = D.promote_types(ad, bd)
        elif a_dim:
            dt = ad if bd._cat <= ad._cat else (D.promote_types(ad, bd) if bd._cat != D._COMPLEX else bd)
        else:
            dt = bd if ad._cat <= bd._cat else (D.promote_types(ad, bd) if ad._cat != D._COMPLEX else ad)
        if ad is not dt:
            am = _cast_storage(am, ad, dt)
        if bd is not dt:
            bm = _cast_storage(bm, bd, dt)
        return (am, bm), dt, a
    if at or bt:
        t, s = (a, b) if at else (b, a)
        s = _scalar(s)
        if isinstance(s, (list, tuple)):
            from .creation import tensor
            s = tensor(s)
            return _promote(a if at else s, s if at else b)
        tm = unwrap(t)
        td = t._dt
        cat = D._scalar_cat(s)
        dt = td if cat <= td._cat else D._default_for_cat(cat)
        if dt is not td:
            tm = _cast_storage(tm, td, dt)
        if dt._cat == D._FLOAT:
            s = float(s)
        elif dt._cat == D._INT:
            s = int(s)
        return ((tm, s) if at else (s, tm)), dt, t
    from .creation import tensor
    return _promote(tensor(a), b) if not isinstance(a, Tensor) else _promote(a, tensor(b))


def _finish(r, dt, like, exact=False):
    # Reading .dtype of a just-dispatched MindSpore result waits for its shape/type inference stage, so it is
    # only checked where MindSpore's own promotion could differ from torch's (non-float results); float
    # results come from operands already cast to the result's storage dtype.
    if dt._cat != D._FLOAT and r.dtype != dt.sms:
        r = _cast(r, dt.sms)
    if dt.emulated and not exact:
        r = _round_bf16(r)
    return _new(r, dt, like._dev)


def _as_tensor_ms(x, dtype_ms):
    return x if isinstance(x, ms.Tensor) else ms.Tensor(x, dtype=dtype_ms)


# ---- binary arithmetic ------------------------------------------------------------------------------------

# workaround "broadcast kernels" (shim/torch/_workarounds.py)
# MindSpore 2.10's CPU binary kernels (Mul, Sub, Add, RealDiv) are ~7x slower when one operand is broadcast
# (measured: [64, 151680] float32 times [64, 1]: 0.17 s of CPU vs 0.025 s for `Tile` of the small operand then a
# same-shape Mul, bit-identical). From this many result elements up the broadcast operand is tiled first, when
# autograd is not recording (Tile's backward sums the gradient in another order than the broadcast's, which
# matches torch's: kept as it is).
_TILE_MIN = 1 << 16


def _tiled(a, b, input, other):
    """``(a, b)`` (MindSpore operands of a binary op; Python scalars pass through) with a broadcast tensor
    operand tiled to the other's shape when that shape is the result's and has ``_TILE_MIN`` elements or more
    and autograd is not recording. Shapes come from the facade tensors ``input``/``other`` (no pipeline wait)."""
    if _GRAD[0] or not (isinstance(a, ms.Tensor) and isinstance(b, ms.Tensor)
            and isinstance(input, Tensor) and isinstance(other, Tensor)):
        return a, b
    sa, sb = tuple(input.shape), tuple(other.shape)
    if sa == sb:
        return a, b
    if _covers(sa, sb):
        return a, _tile_to(b, sb, sa)
    if _covers(sb, sa):
        return _tile_to(a, sa, sb), b
    return a, b


def _covers(big, small) -> bool:
    """Whether ``small`` broadcasts to exactly ``big`` (which has ``_TILE_MIN`` elements or more)."""
    if len(small) > len(big) or math.prod(big) < _TILE_MIN:
        return False
    return all(s == t or s == 1 for s, t in zip(small[::-1], big[::-1]))


def _tile_to(m, shape, target):
    full = (1,) * (len(target) - len(shape)) + tuple(shape)
    return ops.tile(m.reshape(full), tuple(t if s == 1 else 1 for s, t in zip(full, target)))


def add(input, other, *, alpha=1, out=None):
    """torch.add(input, other, alpha=1) = input + alpha * other."""
    if out is not None:
        return _into_out(out, add(input, other, alpha=alpha), "add")
    (a, b), dt, like = _promote(input, other)
    if alpha != 1:
        b = b * alpha
    a, b = _tiled(a, b, input, other)
    if dt is D.bool:
        return _finish(mint.logical_or(_as_tensor_ms(a, ms.bool_), _as_tensor_ms(b, ms.bool_)), dt, like)
    if _GRAD[0] and isinstance(a, ms.Tensor) and isinstance(b, ms.Tensor):
        # workaround "Add backward" (shim/torch/_workarounds.py)
        # MindSpore's Add backward hands one gradient to both inputs through a Clone kernel that CPU lacks;
        # a - (-1)*b (Sub with alpha) is exactly a + b and its backward makes two tensors. (Used whenever
        # recording is on: asking the operands whether they require grad would wait on MindSpore's pipeline.)
        return _finish(mint.sub(a, b, alpha=-1), dt, like)
    return _finish(a + b if isinstance(a, ms.Tensor) else b + a, dt, like)


def sub(input, other, *, alpha=1, out=None):
    """torch.sub(input, other, alpha=1) = input - alpha * other."""
    if out is not None:
        return _into_out(out, sub(input, other, alpha=alpha), "sub")
    (a, b), dt, like = _promote(input, other)
    if dt is D.bool:
        raise RuntimeError("Subtraction, the `-` operator, with two bool tensors is not supported. Use the `^` "
                           "or `logical_xor()` operator instead.")
    if alpha != 1:
        b = b * alpha
    a, b = _tiled(a, b, input, other)
    return _finish(a - b, dt, like)


def rsub(input, other, *, alpha=1):
    """torch.rsub: other - alpha * input."""
    return sub(other, input, alpha=alpha)


def mul(input, other, *, out=None):
    """torch.mul: elementwise product with torch's type promotion (bool * bool = logical and)."""
    if out is not None:
        return _into_out(out, mul(input, other), "mul")
    (a, b), dt, like = _promote(input, other)
    if dt is D.bool:
        return _finish(mint.logical_and(_as_tensor_ms(a, ms.bool_), _as_tensor_ms(b, ms.bool_)), dt, like)
    a, b = _tiled(a, b, input, other)
    return _finish(a * b if isinstance(a, ms.Tensor) else b * a, dt, like)


# MindSpore 2.10's CPU `Div` kernel (behind `Tensor.__truediv__` and `mint.div`) is 3-5x slower than its
# `RealDiv` kernel on float tensors from ~64K elements up (measured: 9.7M float32, ~150 ms vs ~30-60 ms; dividing by
# a Python scalar is slower still) and gives bit-identical results; `RealDiv` is differentiable too. Used for true
# division of floating tensors (a tensor first operand; a scalar first operand keeps `/`).
# workaround "Div" (shim/torch/_workarounds.py)
_real_div = ops.RealDiv()


def _true_div(a, b):
    if isinstance(a, ms.Tensor):
        return _real_div(a, b)
    return a / b


def div(input, other, *, rounding_mode=None, out=None):
    """torch.div: true division (integers -> default float) or rounding_mode 'trunc'/'floor'."""
    if out is not None:
        return _into_out(out, div(input, other, rounding_mode=rounding_mode), "div")
    (a, b), dt, like = _promote(input, other)
    if rounding_mode is None:
        if dt._cat in _INTLIKE:
            dt = D.get_default_dtype()
            a = _cast(a, dt.sms) if isinstance(a, ms.Tensor) else float(a)
            b = _cast(b, dt.sms) if isinstance(b, ms.Tensor) else float(b)
        a, b = _tiled(a, b, input, other)
        return _finish(_true_div(a, b), dt, like)
    if rounding_mode == "trunc":
        if dt._cat in _INTLIKE:
            r = mint.div(_as_tensor_ms(a, dt.sms), _as_tensor_ms(b, dt.sms), rounding_mode="trunc")
        else:
            r = mint.trunc(a / b)
        return _finish(r, dt, like)
    if rounding_mode == "floor":
        if dt._cat in _INTLIKE:
            r = mint.floor_divide(_as_tensor_ms(a, dt.sms), _as_tensor_ms(b, dt.sms))
        else:
            r = mint.floor(a / b)
        return _finish(r, dt, like)
    raise ValueError(f"div expected rounding_mode to be one of None, 'trunc', or 'floor' but found "
                     f"'{rounding_mode}'")


def true_divide(input, other):
    """torch.true_divide = torch.div without rounding."""
    return div(input, other)


def floor_divide(input, other):
    """torch.floor_divide: division rounded toward negative infinity."""
    return div(input, other, rounding_mode="floor")


def remainder(input, other):
    """Python-style modulus (sign of the divisor), like torch.remainder."""
    (a, b), dt, like = _promote(input, other)
    return _finish(mint.remainder(_as_tensor_ms(a, dt.sms), b), dt, like)


def fmod(input, other):
    """torch.fmod: C-style remainder (sign of the dividend)."""
    (a, b), dt, like = _promote(input, other)
    return _finish(mint.fmod(_as_tensor_ms(a, dt.sms), b), dt, like)


def pow(input, exponent):
    """torch.pow with promotion (int tensor ** float scalar -> float)."""
    (a, b), dt, like = _promote(input, exponent)
    if not isinstance(a, ms.Tensor):
        a = ms.Tensor(a, dtype=dt.sms)
    if isinstance(b, (int, float)) and b == 2:
        return _finish(a * a, dt, like)
    return _finish(mint.pow(a, b), dt, like)


def float_power(input, exponent):
    """torch.float_power: pow computed in float64."""
    x = input.double() if isinstance(input, Tensor) else input
    e = exponent.double() if isinstance(exponent, Tensor) else exponent
    return pow(x, e)


def atan2(input, other):
    """torch.atan2: elementwise arctangent of input/other (floating result)."""
    (a, b), dt, like = _promote(input, other)
    dt = dt if dt.is_floating_point else D.get_default_dtype()
    # workaround "Atan2Ext" (shim/torch/_workarounds.py)
    return _finish(ops.atan2(_cast(a, dt.sms), _cast(b, dt.sms)), dt, like)  # mint.atan2: no CPU kernel


# Tensors up to this many elements are checked on the host (a copy costs less than a kernel launch there).
_HOST_CHECK_NUMEL = 1 << 14

# workaround "reduce layout" (shim/torch/_workarounds.py)
# MindSpore 2.10's CPU ReduceSum/ReduceMean run 3-4x slower over a tensor of three or more dimensions, or over
# several axes, than over the same elements seen as a 2-D or 1-D tensor (measured, one thread: a [1, 64, 151680]
# float32 summed over its last dimension 49 ms vs 9-13 ms as [64, 151680]; a [151680, 64] summed over both
# axes 52 ms vs 18 ms flat). From this many elements up a contiguous input is reshaped (a view) so that
# neighbouring dimensions that are all reduced, or all kept, become one, and size-1 dimensions go, before the
# kernel runs; the result is reshaped back.
_COLLAPSE_MIN = 1 << 16


def _collapsed_reduce(fn, m, dims, keepdim, numel=None):
    """``fn(m, dims, keepdim)`` (a MindSpore reduction such as ``mint.sum``/``mint.mean``, called with a tuple of
    axes) computed over `m` with its dimensions collapsed (see "reduce layout" above). ``dims``: the reduced
    axes, non-negative ints (None or empty: all). ``numel``: `m`'s element count when the caller knows it."""
    shape = tuple(m.shape)
    nd = len(shape)
    red = set(range(nd)) if not dims else set(dims)
    n = math.prod(shape) if numel is None else numel
    if nd == 0 or n < _COLLAPSE_MIN or not m.is_contiguous():
        return fn(m, tuple(sorted(red)) if dims else tuple(range(nd)), keepdim)
    groups = []  # [reduced?, size] of runs of neighbouring dimensions
    for i, size in enumerate(shape):
        if size == 1:
            continue
        r = i in red
        if groups and groups[-1][0] == r:
            groups[-1][1] *= size
        else:
            groups.append([r, size])
    if not any(r for r, _ in groups):  # only size-1 dimensions reduced: a copy (torch's result owns its storage)
        out = _clone(m)
    else:
        flat = host_reshape(m, tuple(size for _, size in groups))  # not a MindSpore view where possible
        out = fn(flat, tuple(i for i, (r, _) in enumerate(groups) if r), False)
    target = tuple(1 if i in red else size for i, size in enumerate(shape)) if keepdim else \
        tuple(size for i, size in enumerate(shape) if i not in red)
    return out.reshape(target)


def _holds_nan(input) -> bool:
    """Whether `input` (a facade tensor; anything else gives False) holds a NaN (False for non-floating dtypes
    and empty tensors).

    Small tensors are read on the host; larger ones are summed along their last dimension (a NaN makes its row's
    sum NaN; MindSpore's last-axis sum of the 2-D view is its fast reduction: ~2-3 ms for 64 x 75,840 float32
    where the whole-tensor sum takes ~90 ms and isnan + any ~115 ms) and the row sums are read. A row sum is also NaN for
    +inf and -inf in one row: the caller's NaN path then runs and finds no NaN, still correct."""
    if not isinstance(input, Tensor) or input._dt._cat != D._FLOAT or input.numel() == 0:
        return False
    return _storage_holds_nan(unwrap(input), input.numel(), input.dim())


def _storage_holds_nan(m, numel=None, ndim=None) -> bool:
    """`_holds_nan` of floating MindSpore storage `m` (`numel`/`ndim` from the facade's records when known:
    asking a fresh MindSpore result for its shape waits for its pipeline)."""
    numel = m.size if numel is None else numel
    if numel == 0:
        return False
    return bool(np.isnan(_check_values(m, numel, ndim)).any())


def _check_values(m, numel=None, ndim=None):
    """Host values standing for floating MindSpore storage `m` in a NaN / inf check: `m` itself when it has up to
    `_HOST_CHECK_NUMEL` elements (a copy costs less than a kernel launch there), otherwise its sums along the last
    axis as float32 (over the collapsed 2-D view: MindSpore's fast reduction; a NaN or inf makes its row's sum non-finite, and so can +inf
    beside -inf or an overflow: callers treat a hit as "check exactly")."""
    numel = m.size if numel is None else numel
    if numel <= _HOST_CHECK_NUMEL and m.dtype != ms.bfloat16:
        return m.asnumpy()
    ndim = len(m.shape) if ndim is None else ndim
    if not ndim:
        return _cast(m, ms.float32).asnumpy()
    return _cast(_collapsed_reduce(mint.sum, m, (ndim - 1,), False, numel), ms.float32).asnumpy()


def _nan_either(a, b):
    """Bool MindSpore mask, True where operand `a` or `b` (MindSpore tensors or Python scalars, floating) is NaN;
    None when a scalar operand is itself NaN (every element of the result is NaN then)."""
    masks = []
    for x in (a, b):
        if isinstance(x, ms.Tensor):
            masks.append(mint.isnan(x))
        elif math.isnan(x):
            return None
    return masks[0] if len(masks) == 1 else mint.logical_or(masks[0], masks[1])


def _scalar_nan(x) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, Tensor) and math.isnan(x)


def _nan_sum(a, b):
    """a + b of two MindSpore operands (NaN wherever either is NaN); both gradients are the upstream one."""
    if isinstance(a, ms.Tensor) and isinstance(b, ms.Tensor):
        # workaround "Add backward" (shim/torch/_workarounds.py): Sub with alpha -1 is exactly a + b
        return mint.sub(a, b, alpha=-1)
    return a + b if isinstance(a, ms.Tensor) else b + a


def _extreme(input, other, is_max):
    (a, b), dt, like = _promote(input, other)
    if dt is D.bool:  # MindSpore's CPU Maximum/Minimum have no bool kernels
        f = mint.logical_or if is_max else mint.logical_and
        return _finish(f(_as_tensor_ms(a, ms.bool_), _as_tensor_ms(b, ms.bool_)), dt, like)
    r = mint.maximum(a, b) if is_max else mint.minimum(a, b)
    if dt._cat == D._FLOAT and (_holds_nan(input) or _holds_nan(other) or _scalar_nan(other)
                                or _scalar_nan(input)):
        # workaround "Maximum NaN" (shim/torch/_workarounds.py): the kernels return the other operand where
        # the first is NaN; torch propagates NaN from either, and its gradient there reaches both operands in
        # full, as the gradient of a + b does (only when an operand holds NaN: one check each)
        nan = _nan_either(a, b)
        r = _nan_sum(a, b) if nan is None else mint.where(nan, _nan_sum(a, b), r)
    return _finish(r, dt, like, exact=True)


def maximum(input, other):
    """torch.maximum: elementwise maximum with promotion; NaN in either operand gives NaN (torch's rule; the
    gradient at such an element goes in full to both operands, as torch's). Bool: logical or."""
    return _extreme(input, other, True)


def minimum(input, other):
    """torch.minimum: elementwise minimum, NaN rules as torch.maximum. Bool: logical and."""
    return _extreme(input, other, False)


def _fextreme(input, other, is_max):
    (a, b), dt, like = _promote(input, other)
    if dt._cat != D._FLOAT:
        return _extreme(input, other, is_max)
    # workaround "Maximum NaN" (shim/torch/_workarounds.py): the kernels keep the second operand's NaN, so the
    # choice is made here, as torch's fmax/fmin: the operand that is not NaN (NaN only when both are); the
    # gradient goes to the chosen operand (the first one at ties and where the second is NaN)
    am, bm = (_as_tensor_ms(x, dt.sms) for x in (a, b))
    pick = mint.ge(am, bm) if is_max else mint.le(am, bm)
    pick = mint.logical_or(pick, mint.isnan(bm))
    return _finish(mint.where(pick, am, bm), dt, like, exact=True)


def fmax(input, other):
    """torch.fmax: elementwise maximum ignoring NaN (NaN only where both operands are NaN)."""
    return _fextreme(input, other, True)


def fmin(input, other):
    """torch.fmin: elementwise minimum ignoring NaN (NaN only where both operands are NaN)."""
    return _fextreme(input, other, False)


def _cmp(msfn, name):
    def f(input, other, *, out=None):
        if out is not None:
            return _into_out(out, f(input, other), name)
        (a, b), dt, like = _promote(input, other)
        if not isinstance(a, ms.Tensor):
            a = ms.Tensor(a, dtype=dt.sms)
        return _new(msfn(a, b), D.bool, like._dev)
    f.__name__ = name
    f.__doc__ = f"torch.{name}: elementwise comparison in the promoted dtype, bool result."
    return f


eq = _cmp(mint.eq, "eq")
ne = _cmp(mint.ne, "ne")
lt = _cmp(mint.lt, "lt")
le = _cmp(mint.le, "le")
gt = _cmp(mint.gt, "gt")
ge = _cmp(mint.ge, "ge")
greater, greater_equal, less, less_equal, not_equal = gt, ge, lt, le, ne


def equal(input, other) -> bool:
    """torch.equal: same shape and all elements equal."""
    if tuple(input.shape) != tuple(other.shape):
        return False
    return builtins.bool(eq(input, other).all().item())


def allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False) -> bool:
    """torch.allclose: True when |input - other| <= atol + rtol * |other| everywhere."""
    return builtins.bool(isclose(input, other, rtol, atol, equal_nan).all().item())


def isclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    """torch.isclose: bool tensor of |input - other| <= atol + rtol * |other|."""
    a, b = input._host().astype(np.float64), (other._host() if isinstance(other, Tensor) else other)
    from .creation import _from_host
    return _from_host(np.isclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan), D.bool, input._dev)


def _logical(msfn, name):
    def f(input, other):
        a = unwrap(input)
        b = unwrap(other) if isinstance(other, Tensor) else ms.Tensor(builtins.bool(other))
        a = a if a.dtype == ms.bool_ else _cast(a, ms.bool_)
        b = b if b.dtype == ms.bool_ else _cast(b, ms.bool_)
        return _new(msfn(a, b), D.bool, input._dev)
    f.__name__ = name
    return f


logical_and = _logical(mint.logical_and, "logical_and")
logical_or = _logical(mint.logical_or, "logical_or")
logical_xor = _logical(mint.logical_xor, "logical_xor")


def logical_not(input):
    """torch.logical_not: bool tensor, True where input is zero."""
    a = unwrap(input)
    return _new(mint.logical_not(a if a.dtype == ms.bool_ else _cast(a, ms.bool_)), D.bool, input._dev)


def _bitwise(msfn, logical, name):
    def f(input, other):
        (a, b), dt, like = _promote(input, other)
        if dt._cat not in _INTLIKE:
            raise RuntimeError(f"\"{name}_cpu\" not implemented for '{dt.name.capitalize()}'")
        if dt is D.bool:
            return logical(input if isinstance(input, Tensor) else other,
                           other if isinstance(input, Tensor) else input)
        return _finish(msfn(_as_tensor_ms(a, dt.sms), _as_tensor_ms(b, dt.sms)), dt, like)
    f.__name__ = name
    return f


bitwise_and = _bitwise(mint.bitwise_and, logical_and, "bitwise_and")
bitwise_or = _bitwise(mint.bitwise_or, logical_or, "bitwise_or")
bitwise_xor = _bitwise(mint.bitwise_xor, logical_xor, "bitwise_xor")


def bitwise_not(input):
    """torch.bitwise_not: ~x for integer tensors, logical not for bool."""
    if input._dt is D.bool:
        return logical_not(input)
    if input._dt._cat != D._INT:
        raise RuntimeError("bitwise_not is only supported for integer and boolean tensors")
    return _new(ops.invert(unwrap(input)), input._dt, input._dev)


# ---- unary --------------------------------------------------------------------------------------------------


def _unary(msfn, name, *, float_only=True, exact=False, keep_int=False):
    def f(input, *, out=None):
        if out is not None:
            return _into_out(out, f(input), name, fresh=True)
        m = unwrap(input)
        dt = input._dt
        if float_only and dt._cat in _INTLIKE:
            dt = D.get_default_dtype()
            m = _cast(m, dt.sms)
        r = msfn(m)
        return _finish(r, dt, input, exact=exact)
    f.__name__ = name
    f.__doc__ = f"torch.{name} (elementwise; integer inputs give the default float dtype)." if float_only \
        else f"torch.{name} (elementwise, dtype preserved)."
    return f


neg = _unary(mint.neg, "neg", float_only=False, exact=True)
negative = neg
abs = _unary(mint.abs, "abs", float_only=False, exact=True)
absolute = abs
exp = _unary(mint.exp, "exp")
exp2 = _unary(lambda m: mint.pow(2.0, m), "exp2")
expm1 = _unary(mint.expm1, "expm1")
log = _unary(mint.log, "log")
# workaround "Log2" (shim/torch/_workarounds.py)
log2 = _unary(ops.log2, "log2")  # mint.log2: no CPU kernel
log10 = _unary(ops.log10, "log10")  # mint.log10: no CPU kernel (workaround "Log10")
log1p = _unary(mint.log1p, "log1p")
sqrt = _unary(mint.sqrt, "sqrt")
rsqrt = _unary(mint.rsqrt, "rsqrt")
sin = _unary(mint.sin, "sin")
cos = _unary(mint.cos, "cos")
tan = _unary(mint.tan, "tan")
# mint.asin/acos/atan/asinh/acosh: no CPU kernel; the ops.* primitives have CPU kernels and grads
# (workaround "AsinExt", workaround "AcosExt", workaround "AtanExt", workaround "AsinhExt", workaround "AcoshExt")
asin = _unary(ops.asin, "asin")
acos = _unary(ops.acos, "acos")
atan = _unary(ops.atan, "atan")
sinh = _unary(mint.sinh, "sinh")
cosh = _unary(mint.cosh, "cosh")


def _tanh64(m):
    # MindSpore's CPU float32 Tanh is off by up to ~120 ulp near saturation (|x| ~ 4: 1.5e-5), which its
    # backward (1 - y*y) turns into a 10 % gradient error; its float64 kernel is correctly rounded.
    if m.dtype == ms.float32:
        return _cast(mint.tanh(_cast(m, ms.float64)), ms.float32)
    return mint.tanh(m)


tanh = emulated("float32 computed in float64 (MindSpore's CPU float32 Tanh is inaccurate near saturation)")(
    _unary(_tanh64, "tanh"))
asinh = _unary(ops.asinh, "asinh")
acosh = _unary(ops.acosh, "acosh")
atanh = _unary(mint.atanh, "atanh")
sigmoid = _unary(mint.sigmoid, "sigmoid")
erf = _unary(mint.erf, "erf")
erfc = _unary(mint.erfc, "erfc")


def _erfinv_refined(m):
    # MindSpore's Erfinv loses accuracy towards +-1 (0.03 off at erfinv(0.9985)); two Newton steps on
    # erf(y) = x in float64 from its estimate restore torch's values (and their gradients, d/dx = 1/erf'(y)).
    # The refinement runs on a gradient-stopped copy; the gradient is attached as (x - stop(x)) * dy/dx with
    # dy/dx = sqrt(pi)/2 * exp(y^2) (torch's formula), so the value is the refined y and the gradient exact.
    dt = m.dtype
    x = _cast(m, ms.float64)
    xs = ops.stop_gradient(x)
    y = mint.erfinv(xs)
    c = 2.0 / math.sqrt(math.pi)
    for _ in range(2):
        y = y - (mint.erf(y) - xs) / (c * mint.exp(-(y * y)))
    inf = ms.Tensor(float("inf"), ms.float64)
    y = ops.stop_gradient(mint.where(xs == 1.0, inf, mint.where(xs == -1.0, -inf, y)))  # +-inf at +-1
    slope = mint.exp(y * y) / c
    slope = ops.stop_gradient(mint.where(mint.isinf(slope), ms.Tensor(0.0, ms.float64), slope))  # 0 * inf
    return _cast(y + (x - xs) * slope, dt)


erfinv = emulated("MindSpore's Erfinv estimate refined by two float64 Newton steps on erf(y) = x")(
    _unary(_erfinv_refined, "erfinv"))
reciprocal = _unary(mint.reciprocal, "reciprocal")
_relu = _unary(mint.nn.functional.relu, "relu", float_only=False, exact=True)


def relu(input):
    """torch.relu: max(x, 0); NaN stays NaN, the gradient passing there (torch's threshold backward)."""
    r = _relu(input)
    if _holds_nan(input):
        # workaround "Clamp NaN" (shim/torch/_workarounds.py): MindSpore's ReLU gives 0 for NaN
        x = unwrap(input)
        return _finish(mint.where(mint.isnan(x), x, unwrap(r)), input._dt, input, exact=True)
    return r


def _float_only_kernel(msfn):
    # floor/ceil/trunc of an integer or bool tensor are its values (torch returns a copy); MindSpore's CPU
    # kernels take floats only
    def f(m):
        return msfn(m) if m.dtype in (ms.float16, ms.float32, ms.float64, ms.bfloat16) else m.copy()
    return f


floor = _unary(_float_only_kernel(mint.floor), "floor", float_only=False, exact=True)
ceil = _unary(_float_only_kernel(mint.ceil), "ceil", float_only=False, exact=True)
trunc = _unary(_float_only_kernel(mint.trunc), "trunc", float_only=False, exact=True)
fix = trunc
sign = _unary(lambda m: m.copy() if m.dtype == ms.bool_ else mint.sign(m), "sign", float_only=False, exact=True)
sgn = sign


def square(input, *, out=None):
    """torch.square: input * input (bool squares to int64, as torch's pow(2) promotes)."""
    if out is not None:
        return _into_out(out, square(input), "square")
    if input._dt is D.bool:
        input = input.to(D.int64)
    return mul(input, input)

frac = _unary(lambda m: m - mint.trunc(m), "frac", float_only=False)


def round(input, *, decimals=0):
    """torch.round: half to even; with decimals, scale/round/unscale as torch."""
    m = unwrap(input)
    if input._dt._cat in _INTLIKE:
        return input.clone()
    if decimals:
        s = 10.0 ** decimals
        r = mint.round(m * s) / s
    else:
        r = mint.round(m)
    return _finish(r, input._dt, input)


def isnan(input):
    """torch.isnan: bool tensor, True at NaN."""
    m = unwrap(input)
    if input._dt._cat in _INTLIKE:
        return _new(mint.zeros(tuple(m.shape), dtype=ms.bool_), D.bool, input._dev)
    return _new(mint.isnan(m) if hasattr(mint, "isnan") else ops.isnan(m), D.bool, input._dev)


def isinf(input):
    """torch.isinf: bool tensor, True at +-inf."""
    m = unwrap(input)
    if input._dt._cat in _INTLIKE:
        return _new(mint.zeros(tuple(m.shape), dtype=ms.bool_), D.bool, input._dev)
    return _new(mint.isinf(m), D.bool, input._dev)


def isfinite(input):
    """torch.isfinite: bool tensor, True where finite."""
    m = unwrap(input)
    if input._dt._cat in _INTLIKE:
        return _new(mint.ones(tuple(m.shape), dtype=ms.bool_), D.bool, input._dev)
    return _new(mint.isfinite(m), D.bool, input._dev)


def isposinf(input):
    """torch.isposinf: bool tensor, True at +inf."""
    return logical_and(isinf(input), gt(input, 0))


def isneginf(input):
    """torch.isneginf: bool tensor, True at -inf."""
    return logical_and(isinf(input), lt(input, 0))


def nan_to_num(input, nan=0.0, posinf=None, neginf=None):
    """torch.nan_to_num: NaN -> nan, +inf -> posinf (dtype max), -inf -> neginf (dtype min)."""
    m = unwrap(input)
    if input._dt._cat in _INTLIKE:
        return input.clone()
    fi = D.finfo(input._dt)
    r = mint.nan_to_num(m, nan, fi.max if posinf is None else posinf, fi.min if neginf is None else neginf)
    return _finish(r, input._dt, input)


def clamp(input, min=None, max=None):
    """torch.clamp(input, min, max): scalars or tensors (broadcast); promotes like torch. NaN in `input` or in a
    tensor bound gives NaN there, with a zero gradient for all of them at that element (torch's rule)."""
    if min is None and max is None:
        raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
    out = input
    if min is not None:
        out = maximum(out, min) if isinstance(min, Tensor) else _clamp_scalar(out, min, True)
    if max is not None:
        out = minimum(out, max) if isinstance(max, Tensor) else _clamp_scalar(out, max, False)
    if out._dt._cat == D._FLOAT:
        # workaround "Clamp NaN" (shim/torch/_workarounds.py): MindSpore's clamp maps NaN to the bound; torch's
        # result is NaN where the input or a tensor bound is NaN, with a zero gradient there for the input and
        # the bounds alike (a constant NaN here; only for operands that hold NaN: one check each)
        nan = None
        for t in (input, min, max):
            if _holds_nan(t):
                k = mint.isnan(unwrap(t))
                nan = k if nan is None else mint.logical_or(nan, k)
        if nan is not None:
            r = mint.where(nan, ms.Tensor(float("nan"), out._dt.sms), unwrap(out))
            out = _finish(r, out._dt, out, exact=True)
    return out


def _clamp_scalar(t, v, is_min):
    (a, b), dt, like = _promote(t, v)
    r = mint.clamp(a, min=b) if is_min else mint.clamp(a, max=b)
    return _finish(r, dt, like)


clip = clamp


def clamp_min(input, min):
    """torch.clamp_min = clamp(input, min=min)."""
    return clamp(input, min=min)


def clamp_max(input, max):
    """torch.clamp_max = clamp(input, max=max)."""
    return clamp(input, max=max)


def lerp(input, end, weight):
    """torch.lerp: input + weight * (end - input)."""
    return add(input, mul(sub(end, input), weight))


def addcmul(input, tensor1, tensor2, *, value=1):
    """torch.addcmul: input + value * tensor1 * tensor2."""
    p = mul(tensor1, tensor2)
    return add(input, p if value == 1 else mul(p, value))


def addcdiv(input, tensor1, tensor2, *, value=1):
    """torch.addcdiv: input + value * tensor1 / tensor2."""
    q = div(tensor1, tensor2)
    return add(input, q if value == 1 else mul(q, value))


def _into_out(out, result, name, fresh=False):
    """torch's `out=` contract for elementwise ops: write `result` into `out` (cast to out's dtype) and return
    `out`. TypeError when `out` is not a tensor; NotImplementedError when its shape differs from the result's
    (torch would resize it; the facade cannot resize storage in place).

    `fresh`: the caller vouches that `result` is a new tensor whose MindSpore storage nothing else holds (an op's
    own output); an `out` that is an unpinned base of the same dtype then takes that storage over instead of
    `copy_` copying it (one pass over the data less: megatron's `torch.exp(logits, out=logits)`)."""
    if not isinstance(out, Tensor):
        raise TypeError(f"torch.{name}(): argument 'out' must be Tensor, not {type(out).__name__}")
    if tuple(out.shape) != tuple(result.shape):
        raise NotImplementedError(f"torch.{name}(out=...) with out of shape {tuple(out.shape)} for a result of "
                                  f"shape {tuple(result.shape)} (torch resizes out) is not supported by the shim")
    if fresh and out._vbase is None and not out._pinned and result._dt is out._dt and result is not out \
            and not (_GRAD[0] and out.requires_grad):
        return _assign(out, result._m)
    return out.copy_(result)


# ---- in-place variants and operators --------------------------------------------------------------------------


# c10 ScalarType names, as torch's error messages spell dtypes
_SCALAR_NAMES = {"float32": "Float", "float64": "Double", "float16": "Half", "bfloat16": "BFloat16",
                 "int64": "Long", "int32": "Int", "int16": "Short", "int8": "Char", "uint8": "Byte", "bool": "Bool",
                 "complex64": "ComplexFloat", "complex128": "ComplexDouble", "uint16": "UInt16",
                 "uint32": "UInt32", "uint64": "UInt64"}


def _can_cast(src: D.dtype, dst: D.dtype) -> bool:
    return src._cat <= dst._cat


def _broadcast_grows(self, other) -> bool:
    """Whether broadcasting `other` against `self` would enlarge self (an in-place error in torch)."""
    ss, os_ = tuple(self.shape), tuple(other.shape)
    for a, b in zip(reversed(ss), reversed(os_)):
        if a == 1 and b != 1:
            return True
    return False


def _make_inplace(fn, name):
    def method(self, *args, **kwargs):
        out = fn(self, *args, **kwargs)
        if out._dt is not self._dt:
            if not _can_cast(out._dt, self._dt):
                raise RuntimeError(f"result type {_SCALAR_NAMES[out._dt.name]} can't be cast to the desired "
                                   f"output type {_SCALAR_NAMES[self._dt.name]}")
            r = _cast_storage(unwrap(out), out._dt, self._dt)
        else:
            r = out._m
        other = args[0] if args else None
        if isinstance(other, Tensor) and other.dim() > self.dim() or (
                isinstance(other, Tensor) and _broadcast_grows(self, other)):
            raise RuntimeError(f"output with shape {list(self.shape)} doesn't match the broadcast shape "
                               f"{list(r.shape)}")
        return _assign(self, r)
    method.__name__ = name
    method.__doc__ = f"In-place torch.Tensor.{name} (views write through to their base)."
    return method


# ---- composites (facade ops; gradients flow through them) ----------------------------------------------------


def _floaty(x):
    """x as a floating facade tensor (integers/bools -> the default float dtype), Python numbers as they are."""
    if isinstance(x, Tensor) and x._dt._cat in _INTLIKE:
        return x.to(D.get_default_dtype())
    return x


@emulated("x itself (torch returns the input)")
def positive(input):
    """torch.positive: the input itself (RuntimeError for bool, as torch)."""
    if input._dt is D.bool:
        raise RuntimeError("The `+` operator, on a bool tensor is not supported.")
    return input


@emulated("x * (pi / 180)")
def deg2rad(input):
    """torch.deg2rad: degrees to radians (integers give the default float dtype)."""
    return mul(_floaty(input), math.pi / 180.0)


@emulated("x * (180 / pi)")
def rad2deg(input):
    """torch.rad2deg: radians to degrees (integers give the default float dtype)."""
    return mul(_floaty(input), 180.0 / math.pi)


@emulated("x < 0, or x == 0 with 1/x < 0 (-0.0)")
def signbit(input):
    """torch.signbit: bool, True where the sign bit is set (negative numbers and -0.0)."""
    if input._dt is D.bool:
        return lt(input.to(D.int64), 0)
    if input._dt._cat == D._INT:
        return lt(input, 0)
    with_zero = logical_and(eq(input, 0), lt(div(1.0, input), 0))
    return logical_or(lt(input, 0), with_zero)


@emulated("|a| * (-1 where signbit(b) else 1)")
def copysign(input, other):
    """torch.copysign: magnitude of `input`, sign of `other` (floating result)."""
    a = _floaty(input) if isinstance(input, Tensor) else float(input)
    if not isinstance(other, Tensor):
        from .creation import tensor
        other = tensor(float(other))
    s = where_(signbit(other), -1.0, 1.0)
    r = mul(abs(a) if isinstance(a, Tensor) else builtins.abs(a), s)
    if isinstance(input, Tensor) and isinstance(other, Tensor):
        dt = D.promote_types(input._dt, other._dt)
        if dt._cat in _INTLIKE:
            dt = D.get_default_dtype()
        if r._dt is not dt:
            r = r.to(dt)
    return r


def where_(cond, a, b):
    from .indexing import where
    return where(cond, a, b)


@emulated("max(a, b) + log1p(exp(-|a - b|)), equal infinities passed through")
def logaddexp(input, other):
    """torch.logaddexp: log(exp(a) + exp(b)) computed stably."""
    a, b = _floaty(input), _floaty(other)
    m = maximum(a, b)
    d = abs(sub(a, b))
    same_inf = logical_and(isinf(a), eq(a, b))
    return where_(same_inf, a, add(m, log1p(exp(neg(where_(same_inf, 0.0, d))))))


@emulated("max(a, b) + log1p(2^-|a - b|) / ln 2, equal infinities passed through")
def logaddexp2(input, other):
    """torch.logaddexp2: log2(2^a + 2^b) computed stably."""
    a, b = _floaty(input), _floaty(other)
    m = maximum(a, b)
    d = abs(sub(a, b))
    same_inf = logical_and(isinf(a), eq(a, b))
    return where_(same_inf, a, add(m, div(log1p(exp2(neg(where_(same_inf, 0.0, d)))), math.log(2.0))))


@emulated("input * 2^other")
def ldexp(input, other):
    """torch.ldexp: input * 2**other (floating result)."""
    return mul(_floaty(input), exp2(_floaty(other)))


@emulated("sqrt(a^2 + b^2)")
def hypot(input, other):
    """torch.hypot: sqrt(a^2 + b^2) elementwise."""
    return sqrt(add(mul(input, input), mul(other, other)))


@emulated("where(x == 0, values, x > 0)")
def heaviside(input, values):
    """torch.heaviside: 0 for x < 0, `values` for x == 0, 1 for x > 0 (same dtype as input)."""
    if isinstance(values, Tensor) and values._dt is not input._dt:
        raise RuntimeError("heaviside is not yet implemented for tensors with different dtypes")
    pos = gt(input, 0).to(input._dt)
    return where_(eq(input, 0), values, pos)


@emulated("where(x == 0, 0, x * log(y)) (NaN y stays NaN)")
def xlogy(input, other):
    """torch.xlogy: x * log(y), 0 where x == 0 (unless y is NaN)."""
    x, y = _floaty(input), _floaty(other)
    if not isinstance(x, Tensor):
        from .creation import tensor
        x = tensor(float(x))
    if not isinstance(y, Tensor):
        from .creation import tensor
        y = tensor(float(y), dtype=x.dtype)
    zero = logical_and(eq(x, 0), logical_not(isnan(y)))
    safe_y = where_(zero, 1.0, y)
    return where_(zero, 0.0, mul(x, log(safe_y)))


@emulated("sin(pi x) / (pi x), 1 at 0")
def sinc(input):
    """torch.sinc: normalized sinc (1 at 0; integers give the default float dtype)."""
    x = _floaty(input)
    z = eq(x, 0)
    px = mul(where_(z, 1.0, x), math.pi)
    return where_(z, 1.0, div(sin(px), px))


@emulated("log(x / (1 - x)) with x clamped to [eps, 1 - eps]")
def logit(input, eps=None):
    """torch.logit: log(x / (1 - x)); with `eps`, x is clamped to [eps, 1 - eps] first."""
    x = _floaty(input)
    if eps is not None:
        x = clamp(x, eps, 1.0 - eps)
    return log(div(x, rsub(x, 1.0)))


_BINARY = dict(add=add, sub=sub, mul=mul, div=div, true_divide=true_divide, floor_divide=floor_divide,
               remainder=remainder, fmod=fmod, pow=pow, atan2=atan2, maximum=maximum, minimum=minimum,
               fmax=fmax, fmin=fmin, eq=eq, ne=ne, lt=lt, le=le, gt=gt, ge=ge, greater=greater,
               greater_equal=greater_equal, less=less, less_equal=less_equal, not_equal=not_equal,
               logical_and=logical_and, logical_or=logical_or, logical_xor=logical_xor,
               bitwise_and=bitwise_and, bitwise_or=bitwise_or, bitwise_xor=bitwise_xor, lerp=lerp,
               addcmul=addcmul, addcdiv=addcdiv, float_power=float_power, subtract=sub, multiply=mul,
               divide=div, rsub=rsub)
lgamma = _unary(ops.lgamma, "lgamma")  # mint.lgamma: no CPU kernel
digamma = _unary(ops.digamma, "digamma")
i0 = _unary(ops.bessel_i0, "i0")


def _real_only(name):
    def f(input):
        if input._dt.is_complex:
            raise NotImplementedError(f"torch.{name} on complex tensors is not supported by the shim")
        return input
    f.__name__ = name
    f.__doc__ = f"torch.{name}: the input itself for real dtypes (the facade has no complex tensors)."
    return f


conj = _real_only("conj")
resolve_conj = _real_only("resolve_conj")
resolve_neg = _real_only("resolve_neg")
real = _real_only("real")


def conj_physical(input):
    """torch.conj_physical: a copy for real dtypes."""
    if input._dt.is_complex:
        raise NotImplementedError("torch.conj_physical on complex tensors is not supported by the shim")
    return input.clone()


def isreal(input):
    """torch.isreal: all True for real dtypes."""
    return eq(input, input).logical_or(logical_not(eq(input, input)))


@emulated("pi where x < 0, 0 elsewhere, NaN kept")
def angle(input):
    """torch.angle for real inputs: pi for negative values, 0 otherwise (NaN stays NaN; integers give float)."""
    x = _floaty(input)
    return where_(isnan(x), x, where_(lt(x, 0), math.pi, 0.0).to(x.dtype))


_COMPOSITE = dict(positive=positive, deg2rad=deg2rad, rad2deg=rad2deg, signbit=signbit, copysign=copysign,
                  logaddexp=logaddexp, logaddexp2=logaddexp2, ldexp=ldexp, hypot=hypot, heaviside=heaviside,
                  xlogy=xlogy, sinc=sinc, logit=logit, lgamma=lgamma, digamma=digamma, i0=i0, conj=conj,
                  resolve_conj=resolve_conj, resolve_neg=resolve_neg, real=real, conj_physical=conj_physical,
                  isreal=isreal, angle=angle)
_UNARY = dict(neg=neg, negative=negative, abs=abs, absolute=absolute, exp=exp, exp2=exp2, expm1=expm1, log=log,
              log2=log2, log10=log10, log1p=log1p, sqrt=sqrt, rsqrt=rsqrt, sin=sin, cos=cos, tan=tan, asin=asin,
              acos=acos, atan=atan, sinh=sinh, cosh=cosh, tanh=tanh, asinh=asinh, acosh=acosh, atanh=atanh,
              sigmoid=sigmoid, erf=erf, erfc=erfc, erfinv=erfinv, reciprocal=reciprocal, relu=relu, floor=floor,
              ceil=ceil, trunc=trunc, fix=fix, sign=sign, sgn=sgn, square=square, frac=frac, round=round,
              isnan=isnan, isinf=isinf, isfinite=isfinite, isposinf=isposinf, isneginf=isneginf,
              nan_to_num=nan_to_num, logical_not=logical_not, bitwise_not=bitwise_not, clamp=clamp, clip=clip,
              clamp_min=clamp_min, clamp_max=clamp_max)

FUNCTIONS = dict(_BINARY)
FUNCTIONS.update(_UNARY)
FUNCTIONS.update(_COMPOSITE)
FUNCTIONS.update(equal=equal, allclose=allclose, isclose=isclose)

METHODS = dict(FUNCTIONS)
_NO_INPLACE = {"conj", "resolve_conj", "resolve_neg", "real", "isreal", "angle", "positive", "signbit", "heaviside", "logaddexp", "logaddexp2", "eq", "ne", "lt", "le", "gt", "ge", "greater", "greater_equal", "less", "less_equal", "not_equal",
               "isnan", "isinf", "isfinite", "isposinf", "isneginf", "equal", "allclose", "isclose"}
for _name, _fn in list(FUNCTIONS.items()):
    if _name not in _NO_INPLACE:
        METHODS[_name + "_"] = _make_inplace(_fn, _name + "_")


def _comparable(other) -> bool:
    """`tensor == None` (or a string, …) is plain Python inequality, as in torch."""
    return isinstance(other, (Tensor, numbers.Number, np.generic, list, tuple))


def _operand(other) -> bool:
    """Whether a Python operator (`t * other`, `other * t`, `t += other`, `t < other`) takes `other` as torch's do:
    a tensor, a number (bool included), a NumPy scalar or array. Anything else (a list, tuple, str, None, ...) gets
    NotImplemented, as torch's operators answer, so Python goes on with the other operand: `[0] * n` for a 0-d
    integer tensor `n` is list repetition through `n.__index__()` (megatron's text-generation controller pads
    prompts so), `t + [1, 2]` a TypeError. The functions (`torch.add(t, [1, 2])`, ...) are not affected."""
    return isinstance(other, (Tensor, numbers.Number, np.generic, np.ndarray))


def _op(fn):
    return lambda self, other: fn(self, other) if _operand(other) else NotImplemented


def _r(fn):
    return lambda self, other: fn(other, self) if _operand(other) else NotImplemented


def _iop(name):
    inplace = METHODS[name + "_"]
    return lambda self, other: inplace(self, other) if _operand(other) else NotImplemented


METHODS.update({
    "__add__": _op(add), "__radd__": _r(add), "__iadd__": _iop("add"),
    "__sub__": _op(sub), "__rsub__": _r(sub), "__isub__": _iop("sub"),
    "__mul__": _op(mul), "__rmul__": _r(mul), "__imul__": _iop("mul"),
    "__truediv__": _op(div), "__rtruediv__": _r(div), "__itruediv__": _iop("div"), "__rdiv__": _r(div),
    "__div__": _op(div), "__idiv__": _iop("div"),
    "__floordiv__": _op(floor_divide), "__rfloordiv__": _r(floor_divide), "__ifloordiv__": _iop("floor_divide"),
    "__mod__": _op(remainder), "__rmod__": _r(remainder), "__imod__": _iop("remainder"),
    "__pow__": _op(pow), "__rpow__": _r(pow), "__ipow__": _iop("pow"),
    "__neg__": neg, "__abs__": abs, "__pos__": lambda self: self, "__invert__": bitwise_not,
    "__and__": _op(bitwise_and), "__rand__": _r(bitwise_and), "__iand__": _iop("bitwise_and"),
    "__or__": _op(bitwise_or), "__ror__": _r(bitwise_or), "__ior__": _iop("bitwise_or"),
    "__xor__": _op(bitwise_xor), "__rxor__": _r(bitwise_xor), "__ixor__": _iop("bitwise_xor"),
    "__eq__": lambda self, other: eq(self, other) if _comparable(other) else NotImplemented,
    "__ne__": lambda self, other: ne(self, other) if _comparable(other) else NotImplemented,
    "__lt__": _op(lt), "__le__": _op(le), "__gt__": _op(gt), "__ge__": _op(ge),
})
