"""Special functions served as `torch.<name>` (polygamma, mvlgamma, igamma, igammac) and the host evaluator
behind torch.special's functions that torch does not differentiate.

Two ways of computing, chosen per function (each docstring says which):
- on MindSpore kernels / composed from facade ops: differentiable (torch's gradients);
- `host_pointwise`: evaluated on the host in float64 by SciPy's special functions (SciPy is a dependency of
  MindSpore itself) or NumPy, rounded once to the result dtype. Only for functions torch does not differentiate
  (its derivative formula is "not implemented"): the result never requires grad. Cost: a device->host copy.
"""
from __future__ import annotations

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


__all__ = ["polygamma", "mvlgamma", "igamma", "igammac"]
FUNCTIONS = {n: globals()[n] for n in __all__}
METHODS = {
    "polygamma": lambda self, n: polygamma(n, self),
    "mvlgamma": mvlgamma,
    "igamma": igamma,
    "igammac": igammac,
}
