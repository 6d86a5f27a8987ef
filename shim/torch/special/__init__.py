"""torch.special for the facade: the functions below, composed from facade ops or on MindSpore's Bessel kernels
(`ops.bessel_i0e`, `ops.bessel_i1e`). Others raise UnsupportedAPI naming them."""
from __future__ import annotations

import math

from mindspore import ops

from .._unsupported import module_getattr as _module_getattr

__all__ = ["ndtr", "entr", "xlog1py", "xlogy", "i0", "i0e", "i1e", "expit", "logit", "erf", "erfc", "erfinv",
           "expm1", "exp2", "log1p", "sinc", "round", "digamma", "psi", "gammaln", "log_softmax", "softmax"]


def _T():
    import shim.torch as T
    return T


def _float(x):
    return x if x.dtype.is_floating_point else x.to(_T().get_default_dtype())


def ndtr(input):
    """torch.special.ndtr: the standard normal CDF, (1 + erf(x / sqrt 2)) / 2."""
    x = _float(input)
    return (_T().erf(x * (1.0 / math.sqrt(2.0))) + 1.0) * 0.5


def entr(input):
    """torch.special.entr: -x log x for x > 0, 0 at 0, -inf for x < 0."""
    T = _T()
    x = _float(input)
    pos = x > 0
    safe = T.where(pos, x, T.ones_like(x))
    return T.where(pos, -x * T.log(safe), T.where(x == 0, x * 0, T.full_like(x, -math.inf)))


def xlog1py(input, other):
    """torch.special.xlog1py: x * log1p(y), 0 where x == 0 (unless y is NaN)."""
    T = _T()
    if not isinstance(input, T.Tensor):
        input = T.tensor(float(input))
    if not isinstance(other, T.Tensor):
        other = T.tensor(float(other))
    x, y = _float(input), _float(other)
    zero = (x == 0).logical_and(T.isnan(y).logical_not())
    return T.where(zero, x * 0, x * T.log1p(T.where(zero, T.zeros_like(y), y)))


def _bessel(fn, name):
    def f(input):
        from .._ops.pointwise import _unary
        return _unary(fn, name)(input)
    f.__name__ = name
    f.__doc__ = f"torch.special.{name} (MindSpore's {fn.__name__} kernel; integers give the default float dtype)."
    return f


i0e = _bessel(ops.bessel_i0e, "i0e")
# i1: MindSpore's BesselI1 gradient disagrees with torch's (0.652 vs 1.304 in the catalogue's sample): not served
i1e = _bessel(ops.bessel_i1e, "i1e")


def i0(input):
    """torch.special.i0 = torch.i0."""
    return _T().i0(input)


def xlogy(input, other):
    """torch.special.xlogy = torch.xlogy."""
    return _T().xlogy(input, other)


def expit(input):
    """torch.special.expit = torch.sigmoid."""
    return _T().sigmoid(input)


def logit(input, eps=None):
    """torch.special.logit = torch.logit."""
    return _T().logit(input, eps)


def _alias(name, target=None):
    def f(*args, **kwargs):
        return getattr(_T(), target or name)(*args, **kwargs)
    f.__name__ = name
    f.__doc__ = f"torch.special.{name} = torch.{target or name}."
    return f


erf, erfc, erfinv, expm1, exp2, log1p, sinc, round, digamma = (
    _alias(n) for n in ("erf", "erfc", "erfinv", "expm1", "exp2", "log1p", "sinc", "round", "digamma"))
psi = _alias("psi", "digamma")
gammaln = _alias("gammaln", "lgamma")
log_softmax = _alias("log_softmax")
softmax = _alias("softmax")

__getattr__ = _module_getattr("torch.special")
