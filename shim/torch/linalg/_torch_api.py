"""The torch-level linear algebra functions (`torch.cholesky`, `torch.svd`, `torch.lu`, …): torch's older
signatures over the facade's torch.linalg (served as `torch.<name>` through torch's lazy attributes).

Emulated where their torch.linalg counterpart is (host LAPACK forward; see _lapack.py); the rest are compositions
of facade ops. Argument orders and return structures are torch's (e.g. `cholesky_solve(B, L)`,
`triangular_solve(b, A)` returning the copied coefficient, `svd` returning V rather than Vh).
"""
from __future__ import annotations

import collections

import numpy as np

from . import _lapack as lp
from .._ops._support import emulated


def _T():
    import shim.torch as T  # a cycle inside the facade core: torch imports this lazily
    return T


def _LA():
    import shim.torch.linalg as LA  # a cycle inside the facade core
    return LA


def _rtype(name, fields):
    cls = collections.namedtuple(name, fields)
    cls.__module__ = "torch.return_types"
    return cls


_SvdT = _rtype("svd", ("U", "S", "V"))
_QrT = _rtype("qr", ("Q", "R"))
_GeqrfT = _rtype("geqrf", ("a", "tau"))
_LuUnpackT = _rtype("lu_unpack", ("P", "L", "U"))
_TriSolveT = _rtype("triangular_solve", ("solution", "cloned_coefficient"))

_EMULATED = "host LAPACK (NumPy) forward, backward in facade ops (torch/linalg/_lapack.py)"
__all__ = ["cholesky", "cholesky_inverse", "cholesky_solve", "geqrf", "ormqr", "lu", "lu_unpack", "lu_solve", "qr",
           "svd", "svd_lowrank", "pca_lowrank", "pinverse", "triangular_solve", "matrix_exp", "logdet"]


_emulated = emulated(_EMULATED)


@_emulated
def cholesky(input, upper=False, *, out=None):
    """torch.cholesky: torch.linalg.cholesky(input, upper=upper)."""
    return _LA().cholesky(input, upper=upper)


@_emulated
def cholesky_inverse(input, upper=False, *, out=None):
    """torch.cholesky_inverse: (L L^T)^-1 from its lower Cholesky factor (U^T U from the upper one) [..., n, n];
    only that triangle of `input` is read."""
    T = _T()
    lp.check_float(input, "cholesky_inverse")
    lp.check_square(input, "cholesky_inverse")
    n = input.shape[-1]
    eye = T.eye(n, dtype=input.dtype).expand(*input.shape)
    L = lp.mT(T.triu(input)) if upper else T.tril(input)
    Linv = lp.Solve.apply(L, eye)
    return T.matmul(lp.mT(Linv), Linv)


@_emulated
def cholesky_solve(input, input2, upper=False, *, out=None):
    """torch.cholesky_solve(B, L): X with (L L^T) X = B (U^T U when upper), B [..., n, k]; batch dims
    broadcast."""
    T = _T()
    lp.check_float(input2, "cholesky_solve")
    L = lp.mT(T.triu(input2)) if upper else T.tril(input2)
    Y = lp.Solve.apply(L, input)
    return lp.Solve.apply(lp.mT(L), Y)


def geqrf(input, *, out=None):
    """torch.geqrf: (a, tau) of LAPACK geqrf: R on and above a's diagonal, the Householder vectors below it,
    tau [..., min(m, n)]. No gradient (as torch)."""
    lp.check_float(input, "geqrf")
    a = lp.host(input)
    m, n = a.shape[-2:]
    k = min(m, n)
    flat = a.reshape(int(np.prod(a.shape[:-2], dtype=np.int64)), m, n)
    out_a = np.zeros_like(flat)
    out_t = np.zeros((flat.shape[0], k), a.dtype)
    for b in range(flat.shape[0]):
        if flat[b].size == 0:
            continue
        h, tau = np.linalg.qr(flat[b], mode="raw")
        out_a[b] = h.T
        out_t[b] = tau
    A = lp.device(out_a.reshape(a.shape), input)
    tau = lp.device(out_t.reshape(*a.shape[:-2], k), input)
    return _GeqrfT(A, tau)


geqrf = emulated("host LAPACK geqrf (NumPy's qr mode='raw')")(geqrf)


def _apply_reflectors(A, tau, X, reverse):
    """H_1 ... H_k X (reverse=True applies H_k first) or H_k ... H_1 X (reverse=False), H_i = I - tau_i v_i v_i^T
    with v_i from A's i-th column below the diagonal and 1 on it."""
    T = _T()
    m = A.shape[-2]
    k = tau.shape[-1]
    V = T.tril(A[..., :, :k], -1) + T.eye(m, k, dtype=A.dtype)
    order = reversed(range(k)) if reverse else range(k)
    for i in order:
        v = V[..., :, i:i + 1]
        X = X - tau[..., i:i + 1].unsqueeze(-1) * T.matmul(v, T.matmul(lp.mT(v), X))
    return X


@emulated("composed from facade ops (Householder reflectors applied one by one)")
def ormqr(input, input2, input3, left=True, transpose=False, *, out=None):
    """torch.ormqr(A, tau, C): Q C (left) or C Q (right), Q^T when `transpose`, Q = H_1 ... H_k from geqrf's
    (A, tau). Composed from facade ops (autograd flows through A, tau and C)."""
    A, tau, C = input, input2, input3
    if left:
        return _apply_reflectors(A, tau, C, reverse=not transpose)
    # C Q = (Q^T C^T)^T, C Q^T = (Q C^T)^T
    return lp.mT(_apply_reflectors(A, tau, lp.mT(C), reverse=transpose))


@_emulated
def lu(A, pivot=True, get_infos=False, out=None):
    """torch.lu: (LU, pivots, infos) of torch.linalg.lu_factor_ex when get_infos, else (LU, pivots) of
    torch.linalg.lu_factor (RuntimeError for a zero on U's diagonal)."""
    if get_infos:
        return tuple(_LA().lu_factor_ex(A, pivot=pivot))
    return tuple(_LA().lu_factor(A, pivot=pivot))


@_emulated
def lu_unpack(LU_data, LU_pivots, unpack_data=True, unpack_pivots=True, *, out=None):
    """torch.lu_unpack: (P [..., m, m], L [..., m, k], U [..., k, n]) from `lu`'s packed factor and pivots
    (L and U empty when not unpack_data, P empty when not unpack_pivots); differentiable in LU_data."""
    from . import _lu_unpack
    return _LuUnpackT(*_lu_unpack(LU_data, LU_pivots, unpack_data, unpack_pivots))


@_emulated
def lu_solve(b, LU_data, LU_pivots, *, out=None):
    """torch.lu_solve(b, LU, pivots): torch.linalg.lu_solve(LU, pivots, b)."""
    return _LA().lu_solve(LU_data, LU_pivots, b)


@_emulated
def qr(input, some=True, *, out=None):
    """torch.qr: torch.linalg.qr with mode 'reduced' (some) or 'complete'."""
    Q, R = _LA().qr(input, "reduced" if some else "complete")
    return _QrT(Q, R)


@_emulated
def svd(input, some=True, compute_uv=True, *, out=None):
    """torch.svd: (U, S, V) with A = U diag(S) V^T (V, not Vh); reduced when `some`. Without compute_uv, U and V
    are zero-filled [..., m, m] and [..., n, n] (as torch)."""
    T = _T()
    U, S, Vh = _LA().svd(input, full_matrices=not some)
    if not compute_uv:
        m, n = input.shape[-2:]
        lead = tuple(input.shape[:-2])
        return _SvdT(T.zeros(*lead, m, m, dtype=input.dtype), S, T.zeros(*lead, n, n, dtype=input.dtype))
    return _SvdT(U, S, lp.mT(Vh))


def _approximate_basis(A, q, niter):
    """Orthonormal Q [..., m, q] whose range approximates A's (randomized range finder with `niter` power
    iterations, each re-orthonormalized by QR; Halko, Martinsson & Tropp 2009). Draws q Gaussian columns from the
    default generator, as torch's `get_approximate_basis` does."""
    T = _T()
    LA = _LA()
    R = T.randn(A.shape[-1], q, dtype=A.dtype)
    Q = LA.qr(T.matmul(A, R)).Q
    for _ in range(niter):
        Q = LA.qr(T.matmul(lp.mT(A), Q)).Q
        Q = LA.qr(T.matmul(A, Q)).Q
    return Q


def _lowrank(A, q, niter):
    T = _T()
    m, n = A.shape[-2:]
    wide = m < n
    if wide:
        A = lp.mT(A)
    Q = _approximate_basis(A, q, niter)
    B = T.matmul(lp.mT(Q), A)
    U, S, Vh = _LA().svd(B, full_matrices=False)
    U = T.matmul(Q, U)
    V = lp.mT(Vh)
    return (V, S, U) if wide else (U, S, V)


@_emulated
def svd_lowrank(A, q=6, niter=2, M=None):
    """torch.svd_lowrank: (U [..., m, q], S [..., q], V [..., n, q]) approximating the SVD of A - M by the
    randomized algorithm (Halko et al. 2009, Algorithm 5.1) with draws from the default generator in torch's
    order (so a seeded call reproduces torch's numbers)."""
    q = 6 if q is None else q
    if M is not None:
        A = A - M.expand(*A.shape)
    return _lowrank(A, q, niter)


@_emulated
def pca_lowrank(A, q=None, center=True, niter=2):
    """torch.pca_lowrank: svd_lowrank of A (centred over its rows when `center`), q = min(6, m, n) by default."""
    m, n = A.shape[-2:]
    if q is None:
        q = min(6, m, n)
    elif not (0 <= q <= min(m, n)):
        raise ValueError(f"q(={q}) must be non-negative integer and not greater than min(m, n)={min(m, n)}")
    if niter < 0:
        raise ValueError(f"niter(={niter}) must be non-negative integer")
    if center:
        A = A - A.mean(-2, keepdim=True)
    return _lowrank(A, q, niter)


@_emulated
def pinverse(input, rcond=1e-15):
    """torch.pinverse: torch.linalg.pinv(input, rtol=rcond)."""
    return _LA().pinv(input, rtol=rcond)


@_emulated
def triangular_solve(b, A, upper=True, transpose=False, unitriangular=False, *, out=None):
    """torch.triangular_solve(b, A): (X, A's copy) with op(A) X = b, op(A) = A^T when `transpose`; reads A's
    upper/lower triangle (diagonal as ones when unitriangular); batch dims broadcast."""
    from . import _triangle
    tri = _triangle(A, upper, unitriangular)
    if transpose:
        tri = lp.mT(tri)
    return _TriSolveT(lp.Solve.apply(tri, b), A.clone())


@emulated("composed from facade ops (torch.linalg.matrix_exp)")
def matrix_exp(A):
    """torch.matrix_exp: torch.linalg.matrix_exp."""
    return _LA().matrix_exp(A)


@_emulated
def logdet(A):
    """torch.logdet: log det A [...] — NaN where det < 0, -inf where det = 0 (from slogdet)."""
    T = _T()
    sign, la = _LA().slogdet(A)
    return T.where(sign < 0, float("nan"), la)
