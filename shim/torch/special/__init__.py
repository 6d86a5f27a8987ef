"""torch.special for the facade: the functions below, composed from facade ops or on MindSpore's Bessel kernels
(`ops.bessel_i0e`, `ops.bessel_i1e`); the functions torch does not differentiate (Bessel and Airy functions of
the first/second kind, Hurwitz zeta, the orthogonal polynomials) are evaluated on the host in float64
(`_ops.special.host_pointwise`: SciPy's special functions or NumPy recurrences) and rounded once to the result
dtype; they never require grad. Others raise UnsupportedAPI naming them."""
from __future__ import annotations

import math

import numpy as np

from mindspore import ops

from .._unsupported import module_getattr as _module_getattr
from .._ops import special as _sp
from .._ops.special import polygamma, erfcx, log_ndtr, i1  # noqa: F401  (served from the op family)

__all__ = ["erfcx", "log_ndtr", "i1", "ndtr", "entr", "xlog1py", "xlogy", "i0", "i0e", "i1e", "expit", "logit", "erf", "erfc", "erfinv",
           "expm1", "exp2", "log1p", "sinc", "round", "digamma", "psi", "gammaln", "log_softmax", "softmax",
           "polygamma", "multigammaln", "gammainc", "gammaincc", "zeta", "airy_ai", "bessel_j0", "bessel_j1",
           "bessel_y0", "bessel_y1", "modified_bessel_i0", "modified_bessel_i1", "modified_bessel_k0",
           "modified_bessel_k1", "scaled_modified_bessel_k0", "scaled_modified_bessel_k1", "spherical_bessel_j0",
           "chebyshev_polynomial_t", "chebyshev_polynomial_u", "chebyshev_polynomial_v", "chebyshev_polynomial_w",
           "shifted_chebyshev_polynomial_t", "shifted_chebyshev_polynomial_u", "shifted_chebyshev_polynomial_v",
           "shifted_chebyshev_polynomial_w", "hermite_polynomial_h", "hermite_polynomial_he",
           "laguerre_polynomial_l", "legendre_polynomial_p"]


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



def multigammaln(input, p):
    """torch.special.multigammaln = torch.mvlgamma."""
    return _sp.mvlgamma(input, p)


def gammainc(input, other):
    """torch.special.gammainc = torch.igamma."""
    return _sp.igamma(input, other)


def gammaincc(input, other):
    """torch.special.gammaincc = torch.igammac."""
    return _sp.igammac(input, other)


# ---- host-evaluated functions without gradients (see the module docstring) ----------------------------------


def _scipy(name, doc, pick=lambda f: f):
    def f(input):
        return _sp.host_pointwise(name, pick(getattr(_sp._scipy_special(), _SCIPY[name])), input)
    f.__name__ = name
    f.__doc__ = (f"torch.special.{name}: {doc} (SciPy's {_SCIPY[name]} on the host in float64; integer inputs "
                 f"give the default float dtype; no gradient, as torch).")
    return f


_SCIPY = {"airy_ai": "airy", "bessel_j0": "j0", "bessel_j1": "j1", "bessel_y0": "y0", "bessel_y1": "y1",
          "modified_bessel_i0": "i0", "modified_bessel_i1": "i1", "modified_bessel_k0": "k0",
          "modified_bessel_k1": "k1", "scaled_modified_bessel_k0": "k0e", "scaled_modified_bessel_k1": "k1e"}

airy_ai = _scipy("airy_ai", "the Airy function Ai(x)", lambda airy: (lambda x: airy(x)[0]))
bessel_j0 = _scipy("bessel_j0", "the Bessel function of the first kind of order 0")
bessel_j1 = _scipy("bessel_j1", "the Bessel function of the first kind of order 1")
bessel_y0 = _scipy("bessel_y0", "the Bessel function of the second kind of order 0 (NaN for x < 0)")
bessel_y1 = _scipy("bessel_y1", "the Bessel function of the second kind of order 1 (NaN for x < 0)")
modified_bessel_i0 = _scipy("modified_bessel_i0", "the modified Bessel function of the first kind of order 0")
modified_bessel_i1 = _scipy("modified_bessel_i1", "the modified Bessel function of the first kind of order 1")
modified_bessel_k0 = _scipy("modified_bessel_k0", "the modified Bessel function of the second kind of order 0")
modified_bessel_k1 = _scipy("modified_bessel_k1", "the modified Bessel function of the second kind of order 1")
scaled_modified_bessel_k0 = _scipy("scaled_modified_bessel_k0", "exp(x) K0(x)")
scaled_modified_bessel_k1 = _scipy("scaled_modified_bessel_k1", "exp(x) K1(x)")


def spherical_bessel_j0(input):
    """torch.special.spherical_bessel_j0: sin(x) / x (1 at 0, 0 at +-inf); host evaluated in float64, no
    gradient (as torch)."""
    def j0(x):
        safe = np.where(x == 0, 1.0, x)
        return np.where(np.isinf(x), 0.0, np.where(x == 0, 1.0, np.sin(safe) / safe))
    return _sp.host_pointwise("spherical_bessel_j0", j0, input)


def zeta(input, other):
    """torch.special.zeta(x, q): the Hurwitz zeta function sum_k (k + q)^-x (SciPy's zeta on the host in
    float64; no gradient, as torch)."""
    return _sp.host_pointwise("zeta", _sp._scipy_special().zeta, input, other)


# The classical orthogonal polynomials P_n(x): `n` is truncated to an integer (as torch's kernels do), n < 0
# gives 0, and P_n is evaluated by its three-term recurrence in float64 (torch switches to closed trigonometric
# forms for some |x| < 1, equal in value).


def _recurrence(x, n, p1, step):
    """P_n(x) for P_0 = 1, P_1 = p1(x), P_{k+1} = step(k, x, P_k, P_{k-1}); arrays broadcast already."""
    n = np.where(np.isnan(n), -1, np.trunc(np.clip(n, -1, np.iinfo(np.int64).max / 2))).astype(np.int64)
    out = np.where(n == 0, 1.0, 0.0) * np.ones_like(x)
    top = int(n.max()) if n.size else 0
    if top >= 1:
        prev, cur = np.ones_like(x), p1(x)
        out = np.where(n == 1, cur, out)
        for k in range(1, top):
            prev, cur = cur, step(k, x, cur, prev)
            out = np.where(n == k + 1, cur, out)
    return out


_POLYS = {
    "chebyshev_polynomial_t": ("the Chebyshev polynomial of the first kind T_n(x)",
                               lambda x: x, lambda k, x, c, p: 2 * x * c - p),
    "chebyshev_polynomial_u": ("the Chebyshev polynomial of the second kind U_n(x)",
                               lambda x: 2 * x, lambda k, x, c, p: 2 * x * c - p),
    "chebyshev_polynomial_v": ("the Chebyshev polynomial of the third kind V_n(x)",
                               lambda x: 2 * x - 1, lambda k, x, c, p: 2 * x * c - p),
    "chebyshev_polynomial_w": ("the Chebyshev polynomial of the fourth kind W_n(x)",
                               lambda x: 2 * x + 1, lambda k, x, c, p: 2 * x * c - p),
    "hermite_polynomial_h": ("the physicists' Hermite polynomial H_n(x)",
                             lambda x: 2 * x, lambda k, x, c, p: 2 * x * c - 2 * k * p),
    "hermite_polynomial_he": ("the probabilists' Hermite polynomial He_n(x)",
                              lambda x: x, lambda k, x, c, p: x * c - k * p),
    "laguerre_polynomial_l": ("the Laguerre polynomial L_n(x)",
                              lambda x: 1 - x, lambda k, x, c, p: ((2 * k + 1 - x) * c - k * p) / (k + 1)),
    "legendre_polynomial_p": ("the Legendre polynomial P_n(x)",
                              lambda x: x, lambda k, x, c, p: ((2 * k + 1) * x * c - k * p) / (k + 1)),
}


def _poly(name, shifted=False):
    base = name[len("shifted_"):] if shifted else name
    doc, p1, step = _POLYS[base]

    def f(input, n):
        def values(x, nn):
            if shifted:
                # torch's kernels form x + x - 1 in the operand dtype
                x = (x.astype(dt.np) + x.astype(dt.np) - 1).astype(np.float64) if not dt.emulated else 2 * x - 1
            return _recurrence(x, nn, p1, step)
        dt = _sp._result_dtype((input, n))
        return _sp.host_pointwise(name, values, input, n)
    f.__name__ = name
    f.__doc__ = (f"torch.special.{name}(input, n): {doc}" + (" of 2 x - 1" if shifted else "") +
                 "; `n` truncated to an integer, n < 0 gives 0; three-term recurrence on the host in float64 "
                 "(no gradient, as torch). Integer operands give the default float dtype.")
    return f


chebyshev_polynomial_t = _poly("chebyshev_polynomial_t")
chebyshev_polynomial_u = _poly("chebyshev_polynomial_u")
chebyshev_polynomial_v = _poly("chebyshev_polynomial_v")
chebyshev_polynomial_w = _poly("chebyshev_polynomial_w")
shifted_chebyshev_polynomial_t = _poly("shifted_chebyshev_polynomial_t", shifted=True)
shifted_chebyshev_polynomial_u = _poly("shifted_chebyshev_polynomial_u", shifted=True)
shifted_chebyshev_polynomial_v = _poly("shifted_chebyshev_polynomial_v", shifted=True)
shifted_chebyshev_polynomial_w = _poly("shifted_chebyshev_polynomial_w", shifted=True)
hermite_polynomial_h = _poly("hermite_polynomial_h")
hermite_polynomial_he = _poly("hermite_polynomial_he")
laguerre_polynomial_l = _poly("laguerre_polynomial_l")
legendre_polynomial_p = _poly("legendre_polynomial_p")

__getattr__ = _module_getattr("torch.special")
