"""Special functions served as `torch.<name>` (polygamma, mvlgamma, igamma, igammac) and the host evaluator
behind torch.special's functions that torch does not differentiate.

Two ways of computing, chosen per function (each docstring says which):
- on MindSpore kernels / composed from facade ops: differentiable (torch's gradients);
- `host_pointwise`: evaluated on the host in float64 by SciPy's special functions (SciPy is a dependency of
  MindSpore itself) or NumPy, rounded once to the result dtype. Only for functions torch does not differentiate
  (its derivative formula is "not implemented"): the result never requires grad. Cost: a device->host copy.
"""
from __future__ import annotations

import collections
import functools
import math

import numpy as np
import mindspore as ms
from mindspore import ops

from .. import _dtype as D
from .._tensor import Tensor
from ._support import emulated
from .creation import _from_host
from .pointwise import _unary


def _result_dtype(args):
    """torch's promotion over the tensor/number operands; a non-floating result becomes the default dtype."""
    dims = [a._dt for a in args if isinstance(a, Tensor) and a.dim() > 0]
    zero = [a._dt for a in args if isinstance(a, Tensor) and a.dim() == 0]
    nums = [a for a in args if isinstance(a, (bool, int, float)) and not isinstance(a, Tensor)]
    dt = D.result_type_of(dims, zero, nums)
    return dt if dt._cat == D._FLOAT else D.get_default_dtype()


def host_pointwise(name, fn, *args, round_args=True):
    """`fn(*arrays)` evaluated elementwise on the host in float64 over the broadcast operands (tensors or Python
    numbers), as a new tensor of torch's result dtype (floating; integer/bool operands give the default float
    dtype) on the first tensor's device. `round_args`: operands are first rounded to the result dtype (torch's
    kernels see them in that dtype). No gradient (see the module docstring)."""
    tensors = [a for a in args if isinstance(a, Tensor)]
    if not tensors:
        raise TypeError(f"{name}() expected at least one tensor argument")
    dt = _result_dtype(args)
    arrs = []
    for a in args:
        v = a._host() if isinstance(a, Tensor) else np.asarray(a)
        if round_args and not dt.emulated and v.dtype != np.bool_:
            v = v.astype(dt.np)
        arrs.append(v.astype(np.float64))
    with np.errstate(all="ignore"):
        out = np.asarray(fn(*np.broadcast_arrays(*arrs)), dtype=np.float64)
        if not dt.emulated:
            out = out.astype(dt.np)  # overflow to +-inf is the intended rounding
    return _from_host(out, dt, tensors[0]._dev)


def _scipy_special():
    import scipy.special  # optional-at-import: SciPy loads only when a host-evaluated special function runs
    return scipy.special


# ---- differentiable ------------------------------------------------------------------------------------------


def polygamma(n, input, *, out=None):
    """torch.polygamma(n, input): the n-th derivative of digamma (n >= 0, an int; RuntimeError otherwise);
    MindSpore's Polygamma kernel (its gradient is polygamma(n + 1, x), as torch's). Integer inputs give the
    default float dtype."""
    if isinstance(n, Tensor):
        n = n.item()
    if int(n) != n or n < 0:
        raise RuntimeError(f"polygamma(n, x) does not support negative n (got n={n})")
    k = ms.Tensor(int(n), ms.int64)
    r = _unary(lambda m: ops.polygamma(k, m), "polygamma")(input)
    if out is not None:
        out.copy_(r)
        return out
    return r


@emulated("sum of lgamma(x - i/2), i < p, plus p (p - 1) / 4 log(pi): autograd through lgamma")
def mvlgamma(input, p):
    """torch.mvlgamma(input, p): the multivariate log-gamma of dimension p (int >= 1), elementwise.
    RuntimeError (torch's messages) for p < 1 or any element <= (p - 1) / 2."""
    p = int(p)
    if p < 1:
        raise RuntimeError("p has to be greater than or equal to 1")
    x = input if input._dt._cat == D._FLOAT else input.to(D.get_default_dtype())
    if not bool((x > 0.5 * (p - 1)).all()):
        raise RuntimeError("All elements must be greater than (p-1)/2")
    from .creation import arange
    shifts = arange(p, dtype=x.dtype, device=x.device) * -0.5
    return (x.unsqueeze(-1) + shifts).lgamma().sum(-1) + (p * (p - 1) / 4.0 * math.log(math.pi))


# ---- host-evaluated (torch does not differentiate these) ----------------------------------------------------


def igamma(input, other, *, out=None):
    """torch.igamma(a, x): the regularized lower incomplete gamma function P(a, x) (SciPy's gammainc, host
    evaluated; torch has no gradient for `a` and the catalogue none for `x`: no gradient here)."""
    r = host_pointwise("igamma", _scipy_special().gammainc, input, other)
    if out is not None:
        out.copy_(r)
        return out
    return r


def igammac(input, other, *, out=None):
    """torch.igammac(a, x): the regularized upper incomplete gamma function Q(a, x) = 1 - P(a, x) (SciPy's
    gammaincc, host evaluated; no gradient, see igamma)."""
    r = host_pointwise("igammac", _scipy_special().gammaincc, input, other)
    if out is not None:
        out.copy_(r)
        return out
    return r


# ---- composed in float64 (differentiable) ------------------------------------------------------------------

_SQRT_PI = math.sqrt(math.pi)


def _float_in(x):
    """(x as float64, the result dtype): integers/bools give the default float dtype."""
    dt = x._dt if x._dt._cat == D._FLOAT else D.get_default_dtype()
    return x.to(D.float64), dt


def _erfcx64(xd):
    """erfcx of a float64 facade tensor: exp(x^2) erfc(x) on [-26, 25), the asymptotic series
    1 / (x sqrt(pi)) (1 - 1/(2x^2) + 3/(4x^4) - 15/(8x^6) + 105/(16x^8)) from 25 on (relative error < 1e-12),
    2 exp(x^2) below -26 (erfc(x) = 2 there to double precision; overflows to inf like the function); each
    branch sees only its own range, so none feeds inf/NaN into another's gradient."""
    from .indexing import where  # facade-internal: indexing is loaded before this family is used
    zero = xd * 0
    small = xd < 25.0
    low = xd < -26.0
    xa = where(small.logical_and(low.logical_not()), xd, zero)
    naive = (xa * xa).exp() * xa.erfc()
    xb = where(small, zero + 25.0, xd)
    inv2 = (xb * xb).reciprocal()
    series = 1.0 + inv2 * (-0.5 + inv2 * (0.75 + inv2 * (-1.875 + inv2 * 6.5625)))
    xc = where(low, xd, zero - 26.0)
    tail = (xc * xc).exp() * 2.0
    return where(low, tail, where(small, naive, series / (xb * _SQRT_PI)))


@emulated("exp(x^2) erfc(x) in float64 below 25, its asymptotic series above; autograd through both")
def erfcx(input):
    """torch.special.erfcx: the scaled complementary error function exp(x^2) erfc(x), elementwise (float64
    inside, rounded to input's float dtype; overflows to inf for x below about -9.4 in float32, as torch)."""
    xd, dt = _float_in(input)
    return _erfcx64(xd).to(dt)


@emulated("log1p(-erfc(x/sqrt 2)/2) for x >= -1, log(erfcx(-x/sqrt 2)/2) - x^2/2 below, in float64")
def log_ndtr(input):
    """torch.special.log_ndtr: log of the standard normal CDF, accurate in both tails (float64 inside)."""
    from .indexing import where  # facade-internal: indexing is loaded before this family is used
    xd, dt = _float_in(input)
    t = xd * (1.0 / math.sqrt(2.0))
    upper = xd >= -1.0
    ta = where(upper, t, t * 0)
    a = (ta.erfc() * -0.5).log1p()
    tb = where(upper, t * 0 - 1.0, t)
    b = (_erfcx64(-tb) * 0.5).log() - tb * tb
    return where(upper, a, b).to(dt)


@functools.lru_cache(maxsize=None)
def _I1():
    """The Function class for i1 (built once, on first use: autograd.function imports the op families)."""
    from ..autograd.function import Function  # facade-internal cycle (autograd imports the families)

    class I1(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return _unary(ops.bessel_i1, "i1")(x)

        @staticmethod
        def backward(ctx, grad):
            from .indexing import where  # facade-internal (see above)
            x, = ctx.saved_tensors
            safe = where(x == 0, x * 0 + 1.0, x)
            d = where(x == 0, x * 0 + 0.5, x.i0() - _unary(ops.bessel_i1, "i1")(safe) / safe)
            return grad * d
    return I1


@emulated("MindSpore's BesselI1 forward; the derivative i0(x) - i1(x)/x (1/2 at 0) composed in a Function")
def i1(input):
    """torch.special.i1: the modified Bessel function of the first kind of order 1 (MindSpore's kernel; its
    own gradient disagrees with torch's, so the derivative i0(x) - i1(x) / x is supplied). Integer inputs give
    the default float dtype."""
    x = input if input._dt._cat == D._FLOAT else input.to(D.get_default_dtype())
    from ..autograd.grad_mode import is_grad_enabled  # facade-internal cycle (see _I1)
    if x.requires_grad and is_grad_enabled():
        return _I1().apply(x)
    return _unary(ops.bessel_i1, "i1")(x)


@emulated("exponent on the host (NumPy frexp), mantissa = input * 2^-exponent in float64 (differentiable)")
def frexp(input, *, out=None):
    """torch.frexp(input) -> (mantissa, exponent): input = mantissa * 2^exponent with |mantissa| in [0.5, 1)
    (0, inf and NaN give exponent 0 and themselves as mantissa); mantissa in input's dtype, exponent int32.
    RuntimeError for non-floating inputs (torch's)."""
    if input._dt._cat != D._FLOAT:
        raise RuntimeError("torch.frexp() only supports floating-point dtypes")
    h = input._host()
    _, e = np.frexp(h)
    e = np.where(np.isfinite(h), e, 0).astype(np.int32)
    scale = _from_host(np.ldexp(1.0, -e.astype(np.int64)).astype(np.float64), D.float64, input._dev)
    mant = (input.to(D.float64) * scale).to(input._dt)
    res = FrexpT(mant, _from_host(e, D.int32, input._dev))
    if out is not None:
        out[0].copy_(res[0])
        out[1].copy_(res[1])
    return res


def nextafter(input, other, *, out=None):
    """torch.nextafter(input, other): the next representable value after input towards other, in their
    (promoted floating) dtype; values by NumPy's nextafter on the host. Gradient as torch's: 1 for `input`, 0
    for `other` (emulated: the result is input + (next - input), an exact float sum, where both are finite;
    elsewhere the host value, without gradient)."""
    from .indexing import where  # facade-internal: indexing is loaded before this family is used
    dt = _result_dtype((input, other))
    a = (input._host() if isinstance(input, Tensor) else np.asarray(input)).astype(dt.np)
    b = (other._host() if isinstance(other, Tensor) else np.asarray(other)).astype(dt.np)
    like = input if isinstance(input, Tensor) else other
    v = np.nextafter(a, b)
    r = _from_host(v, dt, like._dev)
    if isinstance(input, Tensor) and input.requires_grad:
        with np.errstate(all="ignore"):
            finite = np.isfinite(a) & np.isfinite(v)
            step = np.where(finite, v - a, 0).astype(dt.np)
        x = input.to(dt)
        r = where(_from_host(finite, D.bool, like._dev), x + _from_host(step, dt, like._dev), r)
    if out is not None:
        out.copy_(r)
        return out
    return r


FrexpT = collections.namedtuple("frexp", ("mantissa", "exponent"))
FrexpT.__module__ = "torch.return_types"


__all__ = ["polygamma", "mvlgamma", "igamma", "igammac", "frexp", "nextafter"]
FUNCTIONS = {n: globals()[n] for n in __all__}
METHODS = {
    "polygamma": lambda self, n: polygamma(n, self),
    "mvlgamma": mvlgamma,
    "igamma": igamma,
    "igammac": igammac,
    "frexp": frexp,
    "nextafter": nextafter,
}
