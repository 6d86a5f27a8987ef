"""torch.linalg for the facade (real dtypes): norms, products, det/inv, and the decompositions and solvers.

Norms and products are composed from facade ops (autograd flows through them); det / inv use MindSpore's
`ops.det` / `ops.inverse` CPU kernels. The factorizations (cholesky, eigh, svd, qr, lu, slogdet, solve, pinv) are
emulated: computed on the host by NumPy's LAPACK with backward formulas written in facade ops (`_lapack.py` says
why and derives them); everything built on them (solve_triangular, lstsq, cond, matrix_rank, tensorsolve, …) is a
composition. Not provided (UnsupportedAPI names them): eig / eigvals (complex results) and the complex-only
functions.
"""
from __future__ import annotations

import builtins
import math

import numpy as np

from .._tensor import Tensor, _new, unwrap
from .. import _dtype as D
from .._unsupported import module_getattr as _module_getattr
from .._ops._support import emulated as _support_emulated

__all__ = ["vector_norm", "matrix_norm", "norm", "vecdot", "cross", "diagonal", "multi_dot", "matrix_power", "det",
           "inv", "inv_ex", "cholesky", "cholesky_ex", "eigh", "eigvalsh", "svd", "svdvals", "qr", "slogdet",
           "solve", "solve_ex", "solve_triangular", "lu_factor", "lu_factor_ex", "lu", "lu_solve",
           "householder_product", "matrix_rank", "pinv", "cond", "lstsq", "tensorinv", "tensorsolve", "vander",
           "matrix_exp", "ldl_factor", "ldl_factor_ex", "ldl_solve"]


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
    """torch.linalg.matrix_norm: 'fro', inf, -inf, 1, -1 over the two `dim`s; 'nuc', 2, -2 from the singular
    values (`svdvals`, emulated on the host)."""
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
    elif ord in ("nuc", 2, -2):
        s = svdvals(A.movedim((d0, d1), (-2, -1)))
        r = s.sum(-1) if ord == "nuc" else (s.amax(-1) if ord == 2 else s.amin(-1))
        r = r.unsqueeze(-1).unsqueeze(-1).movedim((-2, -1), (d0, d1))
    else:
        raise RuntimeError(f"linalg.matrix_norm: Order {ord} not supported.")
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


# ---- decompositions and solvers (emulated: host LAPACK forward, facade backward; see _lapack.py) -----------


def _L():
    from . import _lapack  # import cost: the decompositions load on first use
    return _lapack


def _rtype(name, fields):
    import collections
    cls = collections.namedtuple(name, fields)
    cls.__module__ = "torch.return_types"
    return cls


_EighT = _rtype("linalg_eigh", ("eigenvalues", "eigenvectors"))
_SvdT = _rtype("linalg_svd", ("U", "S", "Vh"))
_QrT = _rtype("linalg_qr", ("Q", "R"))
_SlogdetT = _rtype("linalg_slogdet", ("sign", "logabsdet"))
_CholExT = _rtype("linalg_cholesky_ex", ("L", "info"))
_InvExT = _rtype("linalg_inv_ex", ("inverse", "info"))
_SolveExT = _rtype("linalg_solve_ex", ("result", "info"))
_LuFactorT = _rtype("linalg_lu_factor", ("LU", "pivots"))
_LuFactorExT = _rtype("linalg_lu_factor_ex", ("LU", "pivots", "info"))
_LuT = _rtype("linalg_lu", ("P", "L", "U"))
_LstsqT = _rtype("linalg_lstsq", ("solution", "residuals", "rank", "singular_values"))


_composed = _support_emulated("composed from facade ops (autograd through the composition)")
_emulated = _support_emulated("host LAPACK (NumPy) forward, backward in facade ops (torch/linalg/_lapack.py)")


def _info(A, api, ndim=2):
    T = _T()
    return T.zeros(tuple(A.shape[:A.dim() - ndim]), dtype=T.int32)


@_emulated
def cholesky(A, *, upper=False, out=None):
    """torch.linalg.cholesky: L [..., n, n] lower with A = L L^T, reading A's lower triangle (upper=True: U with
    A = U^T U from A's upper triangle). RuntimeError when A is not positive-definite."""
    lp = _L()
    lp.check_float(A, "linalg.cholesky")
    lp.check_square(A, "linalg.cholesky")
    L = lp.Cholesky.apply(lp.mT(A) if upper else A)  # upper: the factor of A's upper triangle, as torch
    return L.transpose(-2, -1) if upper else L


@_emulated
def cholesky_ex(A, *, upper=False, check_errors=False, out=None):
    """torch.linalg.cholesky_ex: (L, info int32 [...]); info > 0 is the order of the first leading minor that
    is not positive-definite (L's later columns are then zeros; torch leaves them unspecified)."""
    lp = _L()
    lp.check_float(A, "linalg.cholesky_ex")
    lp.check_square(A, "linalg.cholesky_ex")
    src = lp.mT(A) if upper else A
    a = lp.host(src)
    l, info = lp.cholesky_host(a) if a.size else (a.copy(), np.zeros(a.shape[:-2], np.int32))
    if info.any():
        if check_errors:
            raise RuntimeError("linalg.cholesky_ex: The factorization could not be completed because the input is "
                               f"not positive-definite (the leading minor of order {int(info.max())} is not "
                               "positive-definite).")
        L = lp.device(l, A)
    else:
        L = lp.Cholesky.apply(src)
    return _CholExT(L.transpose(-2, -1) if upper else L, lp.device_int(info, A))


@_emulated
def eigh(A, UPLO="L", *, out=None):
    """torch.linalg.eigh: (eigenvalues [..., n] ascending, eigenvectors [..., n, n] as columns) of the symmetric
    matrix read from A's UPLO ('L' or 'U') triangle (LAPACK syevd, the signs torch's CPU gives)."""
    lp = _L()
    lp.check_float(A, "linalg.eigh")
    lp.check_square(A, "linalg.eigh")
    if UPLO not in ("L", "U"):
        raise RuntimeError(f"Expected UPLO argument to be 'L' or 'U', but got {UPLO}")
    w, v = lp.Eigh.apply(A, UPLO)
    return _EighT(w, v)


@_emulated
def eigvalsh(A, UPLO="L", *, out=None):
    """torch.linalg.eigvalsh: the eigenvalues of `eigh`."""
    return eigh(A, UPLO)[0]


@_emulated
def svd(A, full_matrices=True, *, driver=None, out=None):
    """torch.linalg.svd: (U [..., m, m or k], S [..., k] descending, Vh [..., n or k, n]), k = min(m, n)
    (LAPACK gesdd). `driver` is a CUDA-only option (ignored on the CPU, as torch)."""
    lp = _L()
    lp.check_float(A, "linalg.svd")
    if A.dim() < 2:
        raise RuntimeError("linalg.svd: The input tensor A must have at least 2 dimensions.")
    U, S, Vh = lp.SVD.apply(A, bool(full_matrices))
    return _SvdT(U, S, Vh)


@_emulated
def svdvals(A, *, driver=None, out=None):
    """torch.linalg.svdvals: the singular values [..., min(m, n)], descending."""
    return svd(A, False)[1]


@_emulated
def qr(A, mode="reduced", *, out=None):
    """torch.linalg.qr: (Q, R) with mode 'reduced' (Q [m, k], R [k, n]), 'complete' (Q [m, m], R [m, n]) or 'r'
    (Q empty). LAPACK geqrf/orgqr: R's diagonal signs as torch's CPU."""
    lp = _L()
    lp.check_float(A, "linalg.qr")
    if A.dim() < 2:
        raise RuntimeError("linalg.qr: The input tensor A must have at least 2 dimensions.")
    if mode not in ("reduced", "complete", "r"):
        raise RuntimeError(f"qr received unrecognized mode '{mode}' but expected one of 'reduced' (default), "
                           "'r', or 'complete'")
    Q, R = lp.QR.apply(A, mode)
    return _QrT(Q, R)


@_emulated
def slogdet(A, *, out=None):
    """torch.linalg.slogdet: (sign [...], log|det A| [...]); sign 0 and -inf for a singular matrix."""
    lp = _L()
    lp.check_float(A, "linalg.slogdet")
    lp.check_square(A, "linalg.slogdet")
    s, l = lp.Slogdet.apply(A)
    return _SlogdetT(s, l)


def _vector_rhs(A, B):
    return B.dim() == 1 or (B.dim() == A.dim() - 1 and tuple(B.shape) == tuple(A.shape[:-1]))


@_emulated
def solve(A, B, *, left=True, out=None):
    """torch.linalg.solve: X with A X = B (X A = B when left=False); B [..., n, k] or a vector [..., n]
    (batch dims broadcast). RuntimeError for a singular A."""
    lp = _L()
    lp.check_float(A, "linalg.solve")
    lp.check_square(A, "linalg.solve")
    if B.dtype != A.dtype:
        raise RuntimeError(f"linalg.solve: Expected A and B to have the same dtype, but found A of type {A.dtype} "
                           f"and B of type {B.dtype} instead")
    if not left:
        return lp.mT(solve(lp.mT(A), lp.mT(B)))
    if _vector_rhs(A, B):
        return lp.Solve.apply(A, B.unsqueeze(-1)).squeeze(-1)
    return lp.Solve.apply(A, B)


@_emulated
def solve_ex(A, B, *, left=True, check_errors=False, out=None):
    """torch.linalg.solve_ex: (solve(A, B), info int32 zeros); a singular A raises (as with check_errors)."""
    X = solve(A, B, left=left)
    return _SolveExT(X, _info(A, "linalg.solve_ex"))


def inv_ex(A, *, check_errors=False, out=None):
    """torch.linalg.inv_ex: (inv(A), info int32 zeros [...])."""
    return _InvExT(inv(A), _info(A, "linalg.inv_ex"))


def _triangle(A, upper, unitriangular):
    T = _T()
    tri = T.triu(A) if upper else T.tril(A)
    if unitriangular:
        n = A.shape[-1]
        eye = T.eye(n, dtype=A.dtype).bool()
        tri = T.where(eye, 1.0, tri)
    return tri


@_emulated
def solve_triangular(A, B, *, upper, left=True, unitriangular=False, out=None):
    """torch.linalg.solve_triangular: X with A X = B (X A = B when left=False), reading only A's upper/lower
    triangle (its diagonal taken as ones when unitriangular); batch dims broadcast. Gradients reach only the
    triangle read."""
    lp = _L()
    lp.check_float(A, "linalg.solve_triangular")
    lp.check_square(A, "linalg.solve_triangular")
    tri = _triangle(A, upper, unitriangular)
    if not left:
        return lp.mT(lp.Solve.apply(lp.mT(tri), lp.mT(B)))
    return lp.Solve.apply(tri, B)


@_emulated
def lu_factor_ex(A, *, pivot=True, check_errors=False, out=None):
    """torch.linalg.lu_factor_ex: (LU packed [..., m, n], pivots int32 [..., k] 1-based, info int32 [...]) by
    partial pivoting in LAPACK getrf's order; info > 0: U[info-1, info-1] is exactly 0."""
    lp = _L()
    lp.check_float(A, "linalg.lu_factor_ex")
    if not pivot:
        raise RuntimeError("linalg.lu_factor: LU without pivoting is not implemented on the CPU")
    if A.dim() < 2:
        raise RuntimeError("linalg.lu_factor: The input tensor A must have at least 2 dimensions.")
    LU, piv = lp.LUFactor.apply(A)
    info = np.zeros(tuple(A.shape[:-2]), np.int32) if A.numel() == 0 else lp.lu_host(lp.host(A))[2]
    if check_errors and info.any():
        raise RuntimeError("linalg.lu_factor_ex: U is singular")
    return _LuFactorExT(LU, piv, lp.device_int(info, A))


@_emulated
def lu_factor(A, *, pivot=True, out=None):
    """torch.linalg.lu_factor: (LU, pivots) of `lu_factor_ex`; RuntimeError (torch's message) when U has a zero
    on its diagonal."""
    LU, piv, info = lu_factor_ex(A, pivot=pivot)
    if bool((info != 0).any()):
        k = int(info.max().item())  # torch's message prints `info` itself as the index
        raise RuntimeError(f"torch.linalg.lu_factor: U[{k},{k}] is zero and using it on lu_solve would result in a "
                           "division by zero. If you still want to perform the factorization, consider calling "
                           "linalg.lu(A, pivot) or linalg.lu_factor_ex(A, pivot)")
    return _LuFactorT(LU, piv)


def _lu_unpack(LU, piv, unpack_data=True, unpack_pivots=True):
    lp = _L()
    T = _T()
    m, n = LU.shape[-2:]
    k = min(m, n)
    P = lp.device(lp.perm_from_pivots(lp.host(piv), m).astype(lp.host(LU).dtype), LU) if unpack_pivots \
        else T.zeros(0, dtype=LU.dtype)
    if unpack_data:
        L = T.tril(LU[..., :, :k], -1) + T.eye(m, k, dtype=LU.dtype)
        U = T.triu(LU[..., :k, :])
    else:
        L = T.zeros(0, dtype=LU.dtype)
        U = T.zeros(0, dtype=LU.dtype)
    return P, L, U


@_emulated
def lu(A, *, pivot=True, out=None):
    """torch.linalg.lu: (P [..., m, m], L [..., m, k] unit lower, U [..., k, n]) with A = P L U."""
    LU, piv, _ = lu_factor_ex(A, pivot=pivot)
    return _LuT(*_lu_unpack(LU, piv))


@_emulated
def lu_solve(LU, pivots, B, *, left=True, adjoint=False, out=None):
    """torch.linalg.lu_solve: X with A X = B (A^T X = B when adjoint; X A = B when left=False) from A's
    `lu_factor`; differentiable in LU and B."""
    lp = _L()
    T = _T()
    P, L, U = _lu_unpack(LU, pivots)
    if not left:  # X A = B  <=>  A^T X^T = B^T
        return lp.mT(lu_solve(LU, pivots, lp.mT(B), left=True, adjoint=not adjoint))
    if not adjoint:  # A = P L U: X = U^-1 L^-1 P^T B
        Y = lp.Solve.apply(L, T.matmul(lp.mT(P), B))
        return lp.Solve.apply(U, Y)
    # A^T = U^T L^T P^T: X = P L^-T U^-T B
    Y = lp.Solve.apply(lp.mT(U), B)
    return T.matmul(P, lp.Solve.apply(lp.mT(L), Y))


_LdlT = _rtype("linalg_ldl_factor", ("LD", "pivots"))
_LdlExT = _rtype("linalg_ldl_factor_ex", ("LD", "pivots", "info"))


@_emulated
def ldl_factor_ex(A, *, hermitian=False, check_errors=False, out=None):
    """torch.linalg.ldl_factor_ex: (LD [..., n, n], pivots int32 [..., n], info int32 [...]) of the Bunch-Kaufman
    LDL^T factorization of the symmetric matrix in A's lower triangle, in LAPACK sytrf's format (LD lower, its
    strict upper part zero; a negative pivot pair marks a 2x2 block). Computed on the host, in the input's dtype,
    by the unblocked algorithm (sytf2): same pivots as torch's CPU; no gradient (as torch)."""
    lp = _L()
    lp.check_float(A, "linalg.ldl_factor_ex")
    lp.check_square(A, "linalg.ldl_factor_ex")
    a = lp.host(A)
    if a.size == 0:
        ld, piv, info = a.copy(), np.zeros(a.shape[:-1], np.int32), np.zeros(a.shape[:-2], np.int32)
    else:
        ld, piv, info = lp.ldl_host(a)
    if check_errors and info.any():
        raise RuntimeError(f"torch.linalg.ldl_factor_ex: The factorization could not be completed: D has a zero "
                           f"diagonal block at position {int(info.max())}")
    return _LdlExT(lp.device(ld, A), lp.device_int(piv, A), lp.device_int(info, A))


@_emulated
def ldl_factor(A, *, hermitian=False, out=None):
    """torch.linalg.ldl_factor: (LD, pivots) of `ldl_factor_ex`; RuntimeError when D is singular."""
    LD, piv, info = ldl_factor_ex(A, hermitian=hermitian)
    if bool((info != 0).any()):
        raise RuntimeError("torch.linalg.ldl_factor: The factorization could not be completed: D is singular")
    return _LdlT(LD, piv)


@_emulated
def ldl_solve(LD, pivots, B, *, hermitian=False, out=None):
    """torch.linalg.ldl_solve: X with A X = B from `ldl_factor`'s (LD, pivots) (LAPACK sytrs's steps on the host);
    batch dims broadcast; no gradient (as torch)."""
    lp = _L()
    lp.check_float(LD, "linalg.ldl_solve")
    if B.dim() < 2:
        raise RuntimeError("torch.linalg.ldl_solve: B must have at least 2 dimensions.")
    ld, b = lp.host(LD), lp.host(B)
    if ld.size == 0 or b.size == 0:
        batch = np.broadcast_shapes(ld.shape[:-2], b.shape[:-2])
        x = np.zeros((*batch, *b.shape[-2:]), b.dtype)
    else:
        x = lp.ldl_solve_host(ld, lp.host(pivots).astype(np.int64), b)
    return lp.device(x.astype(b.dtype), B)


@_composed
def householder_product(A, tau, *, out=None):
    """torch.linalg.householder_product: the first n columns of H_1 ... H_k (H_i = I - tau_i v_i v_i^T, v_i
    the i-th column of A below the diagonal with a 1 on it), A [..., m, n], tau [..., k], k <= n <= m.
    Composed from facade ops (autograd flows through it)."""
    T = _T()
    m, n = A.shape[-2:]
    k = tau.shape[-1]
    if m < n:
        raise RuntimeError("torch.linalg.householder_product: input.shape[-2] must be greater than or equal to "
                           "input.shape[-1]")
    if k > n:
        raise RuntimeError("torch.linalg.householder_product: input.shape[-1] must be greater than or equal to "
                           "tau.shape[-1]")
    V = T.tril(A, -1) + T.eye(m, n, dtype=A.dtype)
    Q = T.eye(m, n, dtype=A.dtype).expand(*A.shape).clone() + A * 0
    for i in reversed(range(k)):
        v = V[..., :, i:i + 1]
        Q = Q - tau[..., i:i + 1].unsqueeze(-1) * T.matmul(v, T.matmul(v.transpose(-2, -1), Q))
    return Q


def _tol(A, s_max, atol, rtol, default_rtol_eps=True):
    T = _T()
    m, n = A.shape[-2:]
    default = T.finfo(A.dtype).eps * builtins.max(m, n)
    at = T.tensor(0.0 if atol is None else float(atol), dtype=A.dtype) if not isinstance(atol, Tensor) \
        else atol.to(A.dtype)
    if rtol is None:  # torch: the default where atol is not given or not > 0, else 0
        rt = T.where(at > 0, 0.0, default) if atol is not None else T.tensor(default, dtype=A.dtype)
    else:
        rt = rtol.to(A.dtype) if isinstance(rtol, Tensor) else T.tensor(float(rtol), dtype=A.dtype)
    return T.maximum(at, rt * s_max)


@_emulated
def matrix_rank(A, *, atol=None, rtol=None, hermitian=False, tol=None, out=None):
    """torch.linalg.matrix_rank: int64 [...] count of singular values (|eigenvalues| when hermitian) above
    max(atol, rtol * largest); defaults rtol = eps * max(m, n) when neither is given."""
    T = _T()
    if tol is not None:
        atol, rtol = tol, 0.0
    with _T().no_grad():
        s = eigvalsh(A).abs() if hermitian else svdvals(A)
        if s.shape[-1] == 0:
            return T.zeros(tuple(A.shape[:-2]), dtype=T.int64)
        smax = s.amax(-1)
        tl = _tol(A, smax, atol, rtol)
        return (s > tl.unsqueeze(-1)).sum(-1).to(T.int64)


@_emulated
def pinv(A, *, atol=None, rtol=None, hermitian=False, out=None):
    """torch.linalg.pinv: the pseudo-inverse [..., n, m], dropping singular values (|eigenvalues| when hermitian)
    at or below max(atol, rtol * largest) (default rtol = eps * max(m, n) when neither is given)."""
    lp = _L()
    T = _T()
    lp.check_float(A, "linalg.pinv")
    with T.no_grad():
        if A.numel() == 0:
            smax = T.zeros(tuple(A.shape[:-2]), dtype=A.dtype)
        else:
            s = eigvalsh(A).abs() if hermitian else svdvals(A)
            smax = s.amax(-1)
        tl = _tol(A, smax, atol, rtol).expand(*A.shape[:-2]).contiguous()
    return lp.Pinv.apply(A, tl, bool(hermitian))


@_emulated
def cond(A, p=None, *, out=None):
    """torch.linalg.cond: the condition number [...]: s_max / s_min for p None/2 (s_min / s_max for -2), else
    norm(A, p) * norm(inv(A), p) for 'fro', 'nuc', inf, -inf, 1, -1."""
    if p in (None, 2, -2):
        s = svdvals(A)
        r = s[..., 0] / s[..., -1]
        return r if p != -2 else 1.0 / r
    return matrix_norm(A, p) * matrix_norm(inv(A), p)


@_emulated
def lstsq(A, B, rcond=None, *, driver=None):
    """torch.linalg.lstsq: (solution [..., n, k], residuals, rank, singular_values) as torch's CPU 'gelsy'/'gels'
    report them: the minimal-norm least-squares solution of a full-rank A (through QR: R^-1 Q^T B for m >= n,
    Q R^-T B of A^T = Q R for m < n); residuals (squared, per column) when m > n, else empty; rank and
    singular_values empty for 'gels'. Drivers 'gelsy' / 'gelsd' / 'gelss' (rank-revealing): NotImplementedError."""
    lp = _L()
    T = _T()
    lp.check_float(A, "linalg.lstsq")
    if driver not in (None, "gels"):
        raise NotImplementedError(f"torch.linalg.lstsq(driver={driver!r}) is not supported by the shim (only "
                                  "'gels', full-rank inputs)")
    if driver is None:
        raise NotImplementedError("torch.linalg.lstsq with the CPU default driver 'gelsy' (rank-revealing) is not "
                                  "supported by the shim; pass driver='gels' for full-rank A")
    vec = B.dim() == A.dim() - 1
    Bm = B.unsqueeze(-1) if vec else B
    m, n = A.shape[-2:]
    if m >= n:
        Q, R = qr(A)
        X = lp.Solve.apply(T.triu(R), T.matmul(lp.mT(Q), Bm))
    else:
        Q, R = qr(lp.mT(A))
        X = T.matmul(Q, lp.Solve.apply(T.tril(lp.mT(R)), Bm))
    if m > n:
        res = ((T.matmul(A, X) - Bm) ** 2).sum(-2)
    else:  # empty, but tied to A (torch's records a gradient)
        res = T.zeros(0, dtype=A.dtype) + A.sum() * 0
    if vec:
        X = X.squeeze(-1)
        if m > n:
            res = res.squeeze(-1)
    return _LstsqT(X, res, T.zeros(0, dtype=T.int64), T.zeros(0, dtype=A.dtype))


@_composed
def tensorinv(A, ind=2, *, out=None):
    """torch.linalg.tensorinv: the inverse of A viewed as a matrix [prod(shape[:ind]), prod(shape[ind:])],
    shaped shape[ind:] + shape[:ind]."""
    if ind <= 0:
        raise RuntimeError(f"Expected a strictly positive integer for 'ind', but got {ind}")
    lead, rest = tuple(A.shape[:ind]), tuple(A.shape[ind:])
    p = math.prod(lead)
    if p != math.prod(rest):
        raise RuntimeError(f"Expected self to satisfy the requirement prod(self.shape[ind:]) == "
                           f"prod(self.shape[:ind]), but got {math.prod(rest)} != {p}")
    return inv(A.reshape(p, p)).reshape(*rest, *lead)


@_emulated
def tensorsolve(A, B, dims=None, *, out=None):
    """torch.linalg.tensorsolve: X with tensordot(A, X, X.ndim) = B; `dims` moves those dims of A to the end
    first."""
    T = _T()
    if dims is not None:
        nd = A.dim()
        dims = [d % nd for d in dims]
        order = [d for d in range(nd) if d not in dims] + dims
        A = A.permute(*order)
    rest = tuple(A.shape[B.dim():])
    n = math.prod(rest)
    X = solve(A.reshape(-1, n), B.reshape(-1))
    return X.reshape(*rest)


@_composed
def vander(x, *, N=None):
    """torch.linalg.vander: [..., n, N] with columns x^0, x^1, ..., x^(N-1) (N defaults to n = x.shape[-1]),
    built by repeated products (autograd exact at 0)."""
    T = _T()
    if x.dim() == 0:
        x = x.reshape(1)
    if N is None:
        N = x.shape[-1]
    if N <= 0:
        raise RuntimeError("N must be greater than 1.")
    dt = x.dtype if (x.dtype.is_floating_point or x.dtype == T.int64) else T.int64
    xx = x.to(dt)
    cols = [T.ones_like(xx)]
    for _ in range(N - 1):
        cols.append(cols[-1] * xx)
    return T.stack(cols, -1)


@_composed
def matrix_exp(A):
    """torch.linalg.matrix_exp: exp of square matrices [..., n, n] (float32/float64) by scaling and squaring: each
    matrix is scaled by 2^-s so that its 1-norm is at most 3 (where the degree-18 Taylor polynomial is exact to
    float64 roundoff), then squared s times, in float64 (a float32 input is rounded back at the end: the squarings
    amplify float32 roundoff, torch's float32 result is off by ~1e-3 relative on op_db's samples). Composed from facade ops (autograd flows through it). bfloat16/float16:
    NotImplementedError."""
    T = _T()
    _L().check_square(A, "linalg.matrix_exp")
    if A.dtype not in (T.float32, T.float64):
        raise NotImplementedError(f"torch.linalg.matrix_exp for {A.dtype} is not supported by the shim (float32 "
                                  "and float64 only)")
    if A.shape[-1] == 0 or A.numel() == 0:
        return A.clone()
    n = A.shape[-1]
    dt = A.dtype
    A = A.to(T.float64)
    with T.no_grad():
        nrm = A.abs().sum(-2).amax(-1)
        s = T.where(nrm > 3.0, T.ceil(T.log2(T.where(nrm > 3.0, nrm, 1.0) / 3.0)), 0.0)
        smax = int(s.max().item())
    X = A / (2.0 ** s).unsqueeze(-1).unsqueeze(-1)
    eye = T.eye(n, dtype=A.dtype)
    term = eye + X * 0
    out = term
    for k in range(1, 19):
        term = T.matmul(term, X) / float(k)
        out = out + term
    for i in range(smax):
        sq = T.matmul(out, out)
        out = T.where((s > i).unsqueeze(-1).unsqueeze(-1), sq, out)
    return out.to(dt)


__getattr__ = _module_getattr("torch.linalg")
