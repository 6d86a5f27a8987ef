"""torch.linalg for the facade (real dtypes): norms, vecdot, cross, diagonal, multi_dot, matrix_power, det, inv.

Norms and products are composed from facade ops (autograd flows through them); det / inv use MindSpore's
`ops.det` / `ops.inverse` CPU kernels. Decompositions (qr, svd, eig, cholesky, lu, lstsq, solve, …) are not
provided: UnsupportedAPI names them.
"""
from __future__ import annotations

import builtins
import math

from .._tensor import Tensor, _new, unwrap
from .. import _dtype as D
from .._unsupported import module_getattr as _module_getattr

__all__ = ["vector_norm", "matrix_norm", "norm", "vecdot", "cross", "diagonal", "multi_dot", "matrix_power", "det",
           "inv"]


def _T():
    import shim.torch as T
    return T


def _dims(dim, ndim):
    if dim is None:
        return list(range(ndim))
    if isinstance(dim, int):
        return [dim % builtins.max(ndim, 1)]
    return [d % builtins.max(ndim, 1) for d in dim]


def vector_norm(x, ord=2, dim=None, keepdim=False, *, dtype=None):
    """torch.linalg.vector_norm: the `ord`-norm of x over `dim` (all elements when None) treated as a vector.
    ord: a number, inf, -inf or 0. Integer inputs are not accepted (RuntimeError, as torch)."""
    T = _T()
    if not x.dtype.is_floating_point:
        raise RuntimeError(f"linalg.vector_norm: Expected a floating point or complex tensor as input. Got {x.dtype}")
    if dtype is not None:
        x = x.to(dtype)
    a = x.abs()
    if x.dim() == 0:
        dims = []
    else:
        dims = _dims(dim, x.dim())
    def red(t, fn):
        return getattr(t, fn)(dims, keepdim=keepdim) if dims else t
    if ord == math.inf:
        return red(a, "amax")
    if ord == -math.inf:
        return red(a, "amin")
    if ord == 0:
        return red((a != 0).to(x.dtype), "sum")
    if ord == 1:
        return red(a, "sum")
    # at a zero vector torch's subgradient is 0: the roots are taken of a value made safe where it is 0, and
    # masked there (so no inf * 0 reaches the gradient)
    if ord == 2:
        s = red(a * a, "sum")
    else:
        az = a == 0
        s = red(T.where(az, 0.0, T.where(az, 1.0, a) ** float(ord)), "sum")
    zero = s == 0
    root = T.where(zero, 1.0, s) ** (0.5 if ord == 2 else 1.0 / float(ord))
    return T.where(zero, 0.0, root)


def matrix_norm(A, ord="fro", dim=(-2, -1), keepdim=False, *, dtype=None):
    """torch.linalg.matrix_norm: 'fro', inf, -inf, 1, -1 over the two `dim`s ('nuc', 2, -2 need singular values:
    NotImplementedError)."""
    if dtype is not None:
        A = A.to(dtype)
    if A.dim() < 2:
        raise RuntimeError(f"linalg.matrix_norm: The input tensor A must have at least 2 dimensions.")
    d0, d1 = (d % A.dim() for d in dim)
    a = A.abs()
    if ord == "fro":
        r = _T().sqrt((a * a).sum([d0, d1], keepdim=True))
    elif ord in (math.inf, -math.inf):
        s = a.sum(d1, keepdim=True)
        r = s.amax(d0, keepdim=True) if ord > 0 else s.amin(d0, keepdim=True)
    elif ord in (1, -1):
        s = a.sum(d0, keepdim=True)
        r = s.amax(d1, keepdim=True) if ord > 0 else s.amin(d1, keepdim=True)
    else:
        raise NotImplementedError(f"torch.linalg.matrix_norm(ord={ord!r}) is not supported by the shim (needs "
                                  "singular values)")
    if not keepdim:
        r = r.squeeze(builtins.max(d0, d1)).squeeze(builtins.min(d0, d1))
    return r


def norm(A, ord=None, dim=None, keepdim=False, *, dtype=None):
    """torch.linalg.norm: vector norm (1 dim, or all elements when ord is None) or matrix norm (2 dims)."""
    if dim is not None and not isinstance(dim, int) and len(dim) == 2:
        return matrix_norm(A, "fro" if ord is None else ord, dim, keepdim, dtype=dtype)
    if dim is None and ord is not None and A.dim() == 2:
        return matrix_norm(A, ord, (-2, -1), keepdim, dtype=dtype)
    if dim is None and ord is not None and A.dim() != 1:
        raise RuntimeError("linalg.norm: If dim is not specified but ord is, the input must be 1D or 2D.")
    return vector_norm(A, 2 if ord is None else ord, dim, keepdim, dtype=dtype)


def vecdot(x, y, *, dim=-1):
    """torch.linalg.vecdot: sum(x * y) over `dim` (broadcasting)."""
    return (x * y).sum(dim)


def cross(input, other, *, dim=-1):
    """torch.linalg.cross: 3-vector cross product along `dim` (inputs broadcast)."""
    from .._ops.linalg import cross as _cross
    shape = _T().broadcast_shapes(tuple(input.shape), tuple(other.shape))
    return _cross(input.expand(*shape), other.expand(*shape), dim)


def diagonal(A, *, offset=0, dim1=-2, dim2=-1):
    """torch.linalg.diagonal: torch.diagonal with dim1=-2, dim2=-1 by default."""
    return _T().diagonal(A, offset, dim1, dim2)


def multi_dot(tensors):
    """torch.linalg.multi_dot: the chained matrix product (first/last may be 1-D), left to right."""
    if len(tensors) < 2:
        raise RuntimeError("multi_dot(): expected at least 2 tensors but got " f"{len(tensors)}")
    out = tensors[0]
    for t in tensors[1:]:
        out = _T().matmul(out, t)
    return out


def matrix_power(A, n):
    """torch.linalg.matrix_power: A^n by repeated squaring (n < 0 uses inv(A); n = 0 gives identity)."""
    T = _T()
    n = int(n)
    if n == 0:
        eye = T.eye(A.shape[-1], dtype=A.dtype)
        return (eye + A * 0).clone() if A.dim() == 2 else eye.expand(*A.shape).clone() + A * 0
    if n < 0:
        A, n = inv(A), -n
    result, base = None, A
    while n:
        if n & 1:
            result = base if result is None else T.matmul(result, base)
        n >>= 1
        if n:
            base = T.matmul(base, base)
    return result


def det(A):
    """torch.linalg.det: determinant of square matrices [..., n, n] (MindSpore's Det kernel)."""
    from mindspore import ops
    if not A.dtype.is_floating_point:
        raise RuntimeError(f"linalg.det: Expected a floating point or complex tensor as input. Got {A.dtype}")
    if A.shape[-1] == 0:
        return _T().ones(A.shape[:-2], dtype=A.dtype) + A.sum() * 0
    if A.shape[-1] == 1:  # MindSpore's MatrixDeterminant needs n >= 2
        return A[..., 0, 0].clone()
    return _new(ops.det(unwrap(A)), A._dt, A._dev)


def inv(A):
    """torch.linalg.inv: inverse of square matrices [..., n, n] (MindSpore's MatrixInverse kernel)."""
    from mindspore import ops
    if not A.dtype.is_floating_point:
        raise RuntimeError(f"linalg.inv: Expected a floating point or complex tensor as input. Got {A.dtype}")
    if A.shape[-1] == 0:
        return A.clone()
    return _new(ops.inverse(unwrap(A)), A._dt, A._dev)


__getattr__ = _module_getattr("torch.linalg")
