"""Matrix factorizations for torch.linalg on the host: NumPy's LAPACK forward, facade-op backward.

MindSpore 2.10's CPU decompositions (`ops.svd`, `ops.qr`, `ops.cholesky`, `ops.eig`, …) exist, but their sign and
ordering conventions and their float32 results are not LAPACK's, and several have no gradient on CPU; torch's CPU
computes these with LAPACK (`potrf`, `syevd`, `gesdd`, `geqrf`/`orgqr`, `getrf`, `gesv`). So the facade computes the
factorization on the host with NumPy's LAPACK in the input's dtype (float32 -> the single-precision routines, as
torch), which reproduces torch's conventions (R's diagonal signs from `geqrf`, ascending eigenvalues, descending
singular values), and writes every backward itself, in facade ops, as an autograd Function (the formulas are
derived in each docstring). Emulated: the input is copied to the host and the result back.

Shapes follow torch: matrices are the last two dims, any leading batch dims. float32 and float64 only (torch's CPU
linalg rejects other dtypes the same way).
"""
from __future__ import annotations

import numpy as np

from .._tensor import Tensor
from ..autograd.function import Function


def _T():
    import shim.torch as T  # a cycle inside the facade core: torch.linalg is imported by torch
    return T


def host(t: Tensor) -> np.ndarray:
    """Host copy of a facade tensor (NumPy, the tensor's dtype)."""
    return t.detach()._host()


def device(arr, like: Tensor) -> Tensor:
    """A facade tensor from host array `arr` with the dtype and device of `like`."""
    from .._ops.creation import _from_host  # a cycle inside the facade core (creation imports linalg's users)
    return _from_host(np.array(arr, order="C"), like.dtype, like.device)


def check_float(A: Tensor, api: str):
    """RuntimeError unless A is float32/float64 (torch's CPU linalg supports only those real dtypes)."""
    T = _T()
    if A.dtype not in (T.float32, T.float64):
        raise RuntimeError(f"{api}: Expected a floating point tensor (float32 or float64) as input. Got {A.dtype}")


def check_square(A: Tensor, api: str):
    if A.dim() < 2:
        raise RuntimeError(f"{api}: The input tensor A must have at least 2 dimensions.")
    if A.shape[-1] != A.shape[-2]:
        raise RuntimeError(f"{api}: A must be batches of square matrices, but they are {A.shape[-2]} by "
                           f"{A.shape[-1]} matrices")


def mT(x):
    return x.transpose(-2, -1)


def eye_like(n, like):
    return _T().eye(n, dtype=like.dtype)


def reduce_to(g, shape):
    """Sum gradient `g` over the dims broadcasting added to a tensor of `shape`."""
    shape = tuple(shape)
    if tuple(g.shape) == shape:
        return g
    lead = g.dim() - len(shape)
    if lead:
        g = g.sum(list(range(lead)))
    dims = [i for i, (a, b) in enumerate(zip(g.shape, shape)) if b == 1 and a != 1]
    if dims:
        g = g.sum(dims, keepdim=True)
    return g


def batch_broadcast(A, B):
    """A [..., n, n] and B [..., n, k] with their batch dims broadcast against each other."""
    T = _T()
    batch = T.broadcast_shapes(tuple(A.shape[:-2]), tuple(B.shape[:-2]))
    return A.expand(*batch, *A.shape[-2:]), B.expand(*batch, *B.shape[-2:])


def _err(api, exc):
    return RuntimeError(f"{api}: {exc}")


# ---- solve ---------------------------------------------------------------------------------------------------


class Solve(Function):
    """X = A^-1 B for A [..., n, n], B [..., n, k] (batch dims broadcast). LAPACK gesv on the host.
    Backward: from dX = -A^-1 dA X + A^-1 dB: gB = A^-T gX, gA = -gB X^T (summed over broadcast dims)."""

    @staticmethod
    def forward(ctx, A, B):
        Ab, Bb = batch_broadcast(A, B)
        a, b = host(Ab), host(Bb)
        if a.size == 0 or b.size == 0:
            x = np.zeros(b.shape, dtype=b.dtype)
        else:
            try:
                x = np.linalg.solve(a, b)
            except np.linalg.LinAlgError:
                raise RuntimeError("torch.linalg.solve: The solver failed because the input matrix is singular.")
        X = device(x, B)
        ctx.save_for_backward(A, X)
        ctx.shapes = (tuple(A.shape), tuple(B.shape))
        return X

    @staticmethod
    def backward(ctx, gX):
        A, X = ctx.saved_tensors
        gB = Solve.apply(mT(A), gX)
        gA = -_T().matmul(gB, mT(X))
        return reduce_to(gA, ctx.shapes[0]), reduce_to(gB, ctx.shapes[1])


def solve(A, B):
    return Solve.apply(A, B)


# ---- Cholesky ------------------------------------------------------------------------------------------------


def _phi(X):
    """Lower triangle of X with the diagonal halved."""
    T = _T()
    return T.tril(X) - 0.5 * T.diag_embed(T.diagonal(X, 0, -2, -1))


def tri_inv_solve(L, B, upper=False):
    """L^-1 B for triangular L (through Solve on the triangle)."""
    T = _T()
    return Solve.apply(T.triu(L) if upper else T.tril(L), B)


class Cholesky(Function):
    """Lower factor L of A = L L^T (reads A's lower triangle; LAPACK potrf). Raises like torch on a matrix that is
    not positive-definite. Backward: L^-1 dL = Phi(L^-1 dA L^-T) with Phi = lower triangle, halved diagonal, so
    gA = L^-T Phi(L^T gL) L^-1, symmetrized (A is symmetric)."""

    @staticmethod
    def forward(ctx, A):
        a = host(A)
        if a.size == 0:
            l = a.copy()
        else:
            l, info = cholesky_host(a)
            if info.any():
                k = int(info[info > 0].min())
                raise RuntimeError(f"linalg.cholesky: The factorization could not be completed because the input "
                                   f"is not positive-definite (the leading minor of order {k} is not "
                                   f"positive-definite).")
        L = device(l, A)
        ctx.save_for_backward(L)
        return L

    @staticmethod
    def backward(ctx, gL):
        (L,) = ctx.saved_tensors
        T = _T()
        if L.numel() == 0:
            return T.zeros_like(L)
        P = _phi(T.matmul(mT(L), gL))
        n = L.shape[-1]
        Linv = tri_inv_solve(L, eye_like(n, L).expand(*L.shape))
        gA = T.matmul(T.matmul(mT(Linv), P), Linv)
        return 0.5 * (gA + mT(gA))


def cholesky_host(a):
    """(L, info) for a [..., n, n]: info 0 where the factorization succeeded, else the order of the first leading
    minor that is not positive-definite (L then holds the columns computed before it, zeros after)."""
    tril = np.tril(a)
    sym = tril + np.swapaxes(np.tril(a, -1), -1, -2)
    try:
        return np.tril(np.linalg.cholesky(sym)), np.zeros(a.shape[:-2], dtype=np.int32)
    except np.linalg.LinAlgError:
        pass
    flat = sym.reshape(-1, *a.shape[-2:])
    out = np.zeros_like(flat)
    info = np.zeros(flat.shape[0], dtype=np.int32)
    n = a.shape[-1]
    for b in range(flat.shape[0]):
        try:
            out[b] = np.linalg.cholesky(flat[b])
            continue
        except np.linalg.LinAlgError:
            pass
        for k in range(1, n + 1):  # the first leading minor that fails
            try:
                out[b, :k, :k] = np.linalg.cholesky(flat[b, :k, :k])
            except np.linalg.LinAlgError:
                info[b] = k
                break
    return out.reshape(a.shape), info.reshape(a.shape[:-2])


# ---- symmetric eigendecomposition -------------------------------------------------------------------------------


class Eigh(Function):
    """(L, V) with A = V diag(L) V^T, eigenvalues ascending (LAPACK syevd; reads the UPLO triangle).
    Backward: dL = diag(V^T dA V), dV = V (F o V^T dA V) with F_ij = 1/(L_j - L_i) (i != j, 0 on the diagonal);
    the adjoint gives gA = V (diag(gL) + F o skew(V^T gV)) V^T (the skew part: V stays orthogonal)."""

    @staticmethod
    def forward(ctx, A, uplo):
        a = host(A)
        if a.size == 0:
            w, v = np.zeros(a.shape[:-1], a.dtype), a.copy()
        else:
            w, v = np.linalg.eigh(a, UPLO=uplo)
        L, V = device(w, A), device(v, A)
        ctx.save_for_backward(L, V)
        return L, V

    @staticmethod
    def backward(ctx, gL, gV):
        L, V = ctx.saved_tensors
        T = _T()
        inner = T.diag_embed(gL) if gL is not None else T.zeros_like(V)
        if gV is not None:
            M = T.matmul(mT(V), gV)
            M = 0.5 * (M - mT(M))
            E = L.unsqueeze(-2) - L.unsqueeze(-1)
            n = L.shape[-1]
            eye = T.eye(n, dtype=V.dtype).bool()
            E = T.where(eye, 1.0, E)
            inner = inner + T.where(eye, 0.0, M / E)
        return T.matmul(T.matmul(V, inner), mT(V)), None


# ---- SVD -------------------------------------------------------------------------------------------------------


class SVD(Function):
    """(U, S, Vh) of A [..., m, n] (LAPACK gesdd), singular values descending; full_matrices as torch.
    Backward (reduced factors, k = min(m, n); with full_matrices only the first k columns enter, as torch):
    with F_ij = 1/(s_j^2 - s_i^2) (0 on the diagonal), J = F o (U^T gU - gU^T U), K = F o (V^T gV - gV^T V),
    gA = U (J S + diag(gS) + S K) V^T + (I - U U^T) gU S^-1 V^T + U S^-1 gV^T (I - V V^T)."""

    @staticmethod
    def forward(ctx, A, full_matrices):
        a = host(A)
        m, n = a.shape[-2:]
        k = min(m, n)
        if a.size == 0:
            um = m if full_matrices else k
            vn = n if full_matrices else k
            u = np.broadcast_to(np.eye(m, um, dtype=a.dtype), (*a.shape[:-2], m, um)).copy()
            vh = np.broadcast_to(np.eye(vn, n, dtype=a.dtype), (*a.shape[:-2], vn, n)).copy()
            s = np.zeros((*a.shape[:-2], k), a.dtype)
        else:
            u, s, vh = np.linalg.svd(a, full_matrices=full_matrices)
        U, S, Vh = device(u, A), device(s, A), device(vh, A)
        ctx.save_for_backward(U, S, Vh)
        ctx.k = k
        return U, S, Vh

    @staticmethod
    def backward(ctx, gU, gS, gVh):
        U, S, Vh = ctx.saved_tensors
        T = _T()
        k = ctx.k
        U, Vh = U[..., :, :k], Vh[..., :k, :]
        V = mT(Vh)
        if gU is not None:
            gU = gU[..., :, :k]
        if gVh is not None:
            gVh = gVh[..., :k, :]
        inner = T.diag_embed(gS) if gS is not None else T.zeros(*S.shape, k, dtype=S.dtype)
        if gU is None and gVh is None:
            return T.matmul(T.matmul(U, inner), Vh), None
        s2 = S * S
        E = s2.unsqueeze(-2) - s2.unsqueeze(-1)  # E_ij = s_j^2 - s_i^2
        eye = T.eye(k, dtype=S.dtype).bool()
        F = T.where(eye, 0.0, 1.0 / T.where(eye, 1.0, E))
        Sd = T.diag_embed(S)
        Sinv = T.diag_embed(1.0 / S)
        extra = None
        if gU is not None:
            UtgU = T.matmul(mT(U), gU)
            J = F * (UtgU - mT(UtgU))
            inner = inner + T.matmul(J, Sd)
            if U.shape[-2] > k:
                proj = gU - T.matmul(U, UtgU)
                extra = T.matmul(T.matmul(proj, Sinv), Vh)
        if gVh is not None:
            gV = mT(gVh)
            VtgV = T.matmul(Vh, gV)
            K = F * (VtgV - mT(VtgV))
            inner = inner + T.matmul(Sd, K)
            if V.shape[-2] > k:
                proj = gV - T.matmul(V, VtgV)
                e2 = T.matmul(T.matmul(U, Sinv), mT(proj))
                extra = e2 if extra is None else extra + e2
        gA = T.matmul(T.matmul(U, inner), Vh)
        if extra is not None:
            gA = gA + extra
        return gA, None


# ---- QR --------------------------------------------------------------------------------------------------------


class QR(Function):
    """(Q, R) of A [..., m, n] (LAPACK geqrf + orgqr), mode 'reduced' / 'complete' / 'r' (Q empty).
    Backward (for m >= n with reduced factors, and for m < n by splitting A = [X | Y], X = Q R1, Y = Q R2):
    with M = R gR^T - gQ^T Q, gA = (gQ + Q copyltu(M)) R^-T, copyltu(M) = tril(M) + tril(M, -1)^T."""

    @staticmethod
    def forward(ctx, A, mode):
        a = host(A)
        m, n = a.shape[-2:]
        k = min(m, n)
        qcols = m if mode == "complete" else k
        rrows = m if mode == "complete" else k
        if a.size == 0:
            q = np.broadcast_to(np.eye(m, qcols, dtype=a.dtype), (*a.shape[:-2], m, qcols)).copy()
            r = np.zeros((*a.shape[:-2], rrows, n), a.dtype)
        else:
            q, r = np.linalg.qr(a, mode="complete" if mode == "complete" else "reduced")
        if mode == "r":
            q = np.zeros((0,), a.dtype)
        Q, R = device(q, A), device(r, A)
        ctx.save_for_backward(Q, R)
        ctx.mode, ctx.mn = mode, (m, n)
        return Q, R

    @staticmethod
    def backward(ctx, gQ, gR):
        Q, R = ctx.saved_tensors
        T = _T()
        m, n = ctx.mn
        if Q.numel() == 0 or R.numel() == 0:
            return T.zeros(*R.shape[:-2], m, n, dtype=R.dtype), None
        if ctx.mode == "r":
            raise RuntimeError("torch.linalg.qr: The derivative of linalg.qr depends on Q, which is not computed "
                               "when mode='r'. Please use linalg.qr(A, mode='reduced') if you are going to "
                               "differentiate through linalg.qr.")
        if ctx.mode == "complete" and m > n:
            raise RuntimeError("torch.linalg.qr: The QR decomposition is not differentiable when mode='complete' "
                               "and nrows > ncols.")
        if gQ is None:
            gQ = T.zeros_like(Q)
        if gR is None:
            gR = T.zeros_like(R)
        if m >= n:
            return _qr_back_tall(Q, R, gQ, gR), None
        X_R, Y_R = R[..., :, :m], R[..., :, m:]
        gR1, gR2 = gR[..., :, :m], gR[..., :, m:]
        Y = T.matmul(Q, Y_R)
        gQ2 = gQ + T.matmul(Y, mT(gR2))
        gX = _qr_back_tall(Q, X_R, gQ2, gR1)
        gY = T.matmul(Q, gR2)
        return T.cat([gX, gY], -1), None


def _qr_back_tall(Q, R, gQ, gR):
    T = _T()
    M = T.matmul(R, mT(gR)) - T.matmul(mT(gQ), Q)
    low = T.tril(M, -1)
    copyltu = low + mT(low) + T.diag_embed(T.diagonal(M, 0, -2, -1))
    B = gQ + T.matmul(Q, copyltu)
    # B R^-T = (R^-1 B^T)^T
    return mT(tri_inv_solve(R, mT(B), upper=True))


# ---- determinants ----------------------------------------------------------------------------------------------


class Slogdet(Function):
    """(sign, log|det A|) (LAPACK getrf on the host). Backward: d log|det A| = tr(A^-1 dA), so
    gA = g A^-T; sign is piecewise constant (records a node, as torch's, whose gradient is 0)."""

    @staticmethod
    def forward(ctx, A):
        a = host(A)
        if a.size == 0:
            s, l = np.ones(a.shape[:-2], a.dtype), np.zeros(a.shape[:-2], a.dtype)
        else:
            s, l = np.linalg.slogdet(a)
        S, Ld = device(np.asarray(s, a.dtype), A), device(np.asarray(l, a.dtype), A)
        ctx.save_for_backward(A)
        return S, Ld

    @staticmethod
    def backward(ctx, gS, gL):
        (A,) = ctx.saved_tensors
        T = _T()
        if gL is None:
            return T.zeros_like(A)
        n = A.shape[-1]
        Ainv_T = Solve.apply(mT(A), eye_like(n, A).expand(*A.shape))
        return gL.unsqueeze(-1).unsqueeze(-1) * Ainv_T


# ---- pseudo-inverse ----------------------------------------------------------------------------------------------


class Pinv(Function):
    """P = A^+ with singular values (eigenvalue magnitudes when hermitian) at or below `tol` [...] treated as 0.
    Backward (constant rank; Golub & Pereyra's dP = -P dA P + P P^T dA^T (I - A P) + (I - P A) dA^T P^T P, whose
    adjoint is) gA = -P^T G P^T + (I - A P) G^T P P^T + P^T P G^T (I - P A)."""

    @staticmethod
    def forward(ctx, A, tol, hermitian):
        a = host(A)
        m, n = a.shape[-2:]
        t = host(tol)
        if a.size == 0:
            p = np.zeros((*a.shape[:-2], n, m), a.dtype)
        elif hermitian:
            w, v = np.linalg.eigh(a, UPLO="L")
            keep = np.abs(w) > t[..., None]
            winv = np.where(keep, 1.0 / np.where(keep, w, 1.0), 0.0).astype(a.dtype)
            p = (v * winv[..., None, :]) @ np.swapaxes(v, -1, -2)
        else:
            u, s, vh = np.linalg.svd(a, full_matrices=False)
            keep = s > t[..., None]
            sinv = np.where(keep, 1.0 / np.where(keep, s, 1.0), 0.0).astype(a.dtype)
            p = (np.swapaxes(vh, -1, -2) * sinv[..., None, :]) @ np.swapaxes(u, -1, -2)
        P = device(p.astype(a.dtype), A)
        ctx.save_for_backward(A, P)
        return P

    @staticmethod
    def backward(ctx, G):
        A, P = ctx.saved_tensors
        T = _T()
        m, n = A.shape[-2:]
        Gt, Pt = mT(G), mT(P)
        t1 = -T.matmul(T.matmul(Pt, G), Pt)
        IAP = eye_like(m, A) - T.matmul(A, P)
        IPA = eye_like(n, A) - T.matmul(P, A)
        t2 = T.matmul(T.matmul(IAP, Gt), T.matmul(P, Pt))
        t3 = T.matmul(T.matmul(Pt, P), T.matmul(Gt, IPA))
        return t1 + t2 + t3, None, None


# ---- LU ----------------------------------------------------------------------------------------------------------


def lu_host(a):
    """Partial-pivoting LU of a [..., m, n] as LAPACK getrf computes it (pivot: the first entry of largest
    magnitude in the column): (LU packed [..., m, n], pivots [..., min(m, n)] 1-based int32, info int32)."""
    m, n = a.shape[-2:]
    k = min(m, n)
    flat = a.reshape(-1, m, n).copy()
    piv = np.zeros((flat.shape[0], k), np.int32)
    info = np.zeros(flat.shape[0], np.int32)
    for b in range(flat.shape[0]):
        x = flat[b]
        for j in range(k):
            p = j + int(np.argmax(np.abs(x[j:, j])))
            piv[b, j] = p + 1
            if p != j:
                x[[j, p], :] = x[[p, j], :]
            if x[j, j] == 0:
                if info[b] == 0:
                    info[b] = j + 1
                continue
            x[j + 1:, j] /= x[j, j]
            x[j + 1:, j + 1:] -= np.outer(x[j + 1:, j], x[j, j + 1:])
    return (flat.reshape(a.shape), piv.reshape(*a.shape[:-2], k), info.reshape(a.shape[:-2]))


def perm_from_pivots(piv, m):
    """Permutation matrices P [..., m, m] with A = P L U from 1-based LAPACK pivots [..., k]."""
    flat = piv.reshape(-1, piv.shape[-1])
    out = np.zeros((flat.shape[0], m, m), np.float64)
    for b in range(flat.shape[0]):
        perm = np.arange(m)
        for j, p in enumerate(flat[b]):
            p = int(p) - 1
            perm[[j, p]] = perm[[p, j]]
        # row j of P^T A is row perm[j] of A, so P[perm[j], j] = 1
        out[b, perm, np.arange(m)] = 1.0
    return out.reshape(*piv.shape[:-1], m, m)


class LUFactor(Function):
    """(LU, pivots) of A [..., m, n] (getrf order); the packed LU is differentiable. Backward: with L unit
    lower [m, k], U upper [k, n] read from LU and gL, gU their parts of gLU, for square A = P L U:
    gA = P L^-T (tril(L^T gL, -1) + triu(gU U^T)) U^-T; a wide A = P L [U1 | U2] treats U2 = L^-1 P^T A2
    (gA2 = P L^-T gU2, and gL gains -tril(L^-T gU2 U2^T, -1)); a tall A is the transposed case."""

    @staticmethod
    def forward(ctx, A):
        a = host(A)
        if a.size == 0:
            lu, piv, info = a.copy(), np.zeros((*a.shape[:-2], min(a.shape[-2:])), np.int32), None
            piv[...] = np.arange(1, piv.shape[-1] + 1, dtype=np.int32)
        else:
            lu, piv, info = lu_host(a)
        LU = device(lu.astype(a.dtype), A)
        Piv = device_int(piv, A)
        ctx.mark_non_differentiable(Piv)
        ctx.save_for_backward(LU, Piv)
        ctx.info = info
        return LU, Piv

    @staticmethod
    def backward(ctx, gLU, gPiv):
        LU, Piv = ctx.saved_tensors
        T = _T()
        m, n = LU.shape[-2:]
        k = min(m, n)
        P = device(perm_from_pivots(host(Piv), m).astype(host(LU).dtype), LU)
        L = T.tril(LU[..., :, :k], -1) + T.eye(m, k, dtype=LU.dtype)
        U = T.triu(LU[..., :k, :])
        gL = T.tril(gLU[..., :, :k], -1)
        gU = T.triu(gLU[..., :k, :])
        return lu_backward(P, L, U, gL, gU), None


def device_int(arr, like):
    from .._ops.creation import _from_host  # a cycle inside the facade core
    return _from_host(np.array(arr, dtype=np.int32, order="C"), _T().int32, like.device)


def lu_backward(P, L, U, gL, gU):
    """gA for A = P L U (L unit lower [m, k], U upper [k, n]) from gL (strictly lower part used) and gU."""
    T = _T()
    m, k = L.shape[-2:]
    n = U.shape[-1]
    if m == n:
        inner = T.tril(T.matmul(mT(L), gL), -1) + T.triu(T.matmul(gU, mT(U)))
        X = tri_inv_solve(mT(L), inner, upper=True)          # L^-T inner
        Y = mT(tri_inv_solve(U, mT(X), upper=True))        # X U^-T
        return T.matmul(P, Y)
    if m < n:
        L1 = L
        U1, U2 = U[..., :, :m], U[..., :, m:]
        gU1, gU2 = gU[..., :, :m], gU[..., :, m:]
        LinvT_gU2 = tri_inv_solve(mT(L1), gU2, upper=True)
        gL_eff = gL - T.tril(T.matmul(LinvT_gU2, mT(U2)), -1)
        gA1 = lu_backward(P, L1, U1, gL_eff, gU1)
        gA2 = T.matmul(P, LinvT_gU2)
        return T.cat([gA1, gA2], -1)
    # tall: A = P [L1; L2] U, with L2 = (P^T A)_2 U^-1
    L1, L2 = L[..., :n, :], L[..., n:, :]
    gL1, gL2 = gL[..., :n, :], gL[..., n:, :]
    U_invT_gL2T = tri_inv_solve(U, mT(gL2), upper=True)        # U^-1 ... see below
    # gradient of L2 = B2 U^-1 w.r.t. B2 is gL2 U^-T; its contribution to gU is -triu(U^-T L2^T gL2 ... )
    gB2 = mT(U_invT_gL2T)                                        # gL2 U^-T
    gU_eff = gU - T.triu(T.matmul(mT(L2), gB2))
    gA1 = lu_backward(eye_like(n, L), L1, U, gL1, gU_eff)
    Bfull = T.cat([gA1, gB2], -2)
    return T.matmul(P, Bfull)


# ---- symmetric indefinite (Bunch-Kaufman) LDL^T --------------------------------------------------------------

_BK_ALPHA = (1.0 + np.sqrt(17.0)) / 8.0


def ldl_host(a):
    """Bunch-Kaufman LDL^T of the symmetric matrices whose lower triangle is a [..., n, n], as LAPACK's unblocked
    sytf2 with uplo='L' computes it: (LD [..., n, n] lower with the strict upper part zeroed, pivots int32
    [..., n] (k+1 for a 1x1 block that swapped row k with row pivots-1; the same negative value -(p+1) on both
    rows of a 2x2 block), info int32 [...] (the first zero diagonal block, 1-based, else 0))."""
    n = a.shape[-1]
    flat = np.tril(a).reshape(int(np.prod(a.shape[:-2], dtype=np.int64)), n, n).copy()
    piv = np.zeros((flat.shape[0], n), np.int32)
    info = np.zeros(flat.shape[0], np.int32)
    for b in range(flat.shape[0]):
        A = flat[b]
        k = 0
        while k < n:
            kstep = 1
            absakk = abs(A[k, k])
            if k < n - 1:
                imax = k + 1 + int(np.argmax(np.abs(A[k + 1:, k])))
                colmax = abs(A[imax, k])
            else:
                imax, colmax = k, 0.0
            if max(absakk, colmax) == 0:
                if info[b] == 0:
                    info[b] = k + 1
                kp = k
            else:
                if absakk >= _BK_ALPHA * colmax:
                    kp = k
                else:
                    row = np.abs(A[imax, k:imax])
                    rowmax = row.max() if row.size else 0.0
                    if imax < n - 1:
                        rowmax = max(rowmax, np.abs(A[imax + 1:, imax]).max())
                    if absakk >= _BK_ALPHA * colmax * (colmax / rowmax):
                        kp = k
                    elif abs(A[imax, imax]) >= _BK_ALPHA * rowmax:
                        kp = imax
                    else:
                        kp = imax
                        kstep = 2
                kk = k + kstep - 1
                if kp != kk:
                    if kp < n - 1:
                        tmp = A[kp + 1:, kk].copy()
                        A[kp + 1:, kk] = A[kp + 1:, kp]
                        A[kp + 1:, kp] = tmp
                    for j in range(kk + 1, kp):
                        A[j, kk], A[kp, j] = A[kp, j], A[j, kk]
                    A[kk, kk], A[kp, kp] = A[kp, kp], A[kk, kk]
                    if kstep == 2:
                        A[k + 1, k], A[kp, k] = A[kp, k], A[k + 1, k]
                if kstep == 1:
                    if k < n - 1:
                        d11 = A.dtype.type(1.0) / A[k, k]
                        v = A[k + 1:, k].copy()
                        A[k + 1:, k + 1:] -= np.tril(d11 * np.outer(v, v))
                        A[k + 1:, k] *= d11
                elif k < n - 2:
                    d21 = A[k + 1, k]
                    d11 = A[k + 1, k + 1] / d21
                    d22 = A[k, k] / d21
                    t = A.dtype.type(1.0) / (d11 * d22 - A.dtype.type(1.0))
                    d21 = t / d21
                    for j in range(k + 2, n):
                        wk = d21 * (d11 * A[j, k] - A[j, k + 1])
                        wkp1 = d21 * (d22 * A[j, k + 1] - A[j, k])
                        A[j:, j] -= A[j:, k] * wk + A[j:, k + 1] * wkp1
                        A[j, k] = wk
                        A[j, k + 1] = wkp1
            if kstep == 1:
                piv[b, k] = kp + 1
            else:
                piv[b, k] = piv[b, k + 1] = -(kp + 1)
            k += kstep
    return flat.reshape(a.shape), piv.reshape(a.shape[:-1]), info.reshape(a.shape[:-2])


def ldl_solve_host(ld, piv, bmat):
    """X with A X = B from `ldl_host`'s (LD, pivots) (LAPACK sytrs's order of operations, uplo='L')."""
    n = ld.shape[-1]
    batch = np.broadcast_shapes(ld.shape[:-2], piv.shape[:-1], bmat.shape[:-2])
    L = np.broadcast_to(ld, (*batch, n, n)).reshape(-1, n, n)
    P = np.broadcast_to(piv, (*batch, n)).reshape(-1, n)
    X = np.broadcast_to(bmat, (*batch, *bmat.shape[-2:])).reshape(-1, *bmat.shape[-2:]).copy()
    for b in range(X.shape[0]):
        A, ip, B = L[b], P[b], X[b]
        k = 0
        while k < n:  # L D Y = B
            if ip[k] > 0:
                kp = ip[k] - 1
                if kp != k:
                    B[[k, kp]] = B[[kp, k]]
                B[k + 1:] -= np.outer(A[k + 1:, k], B[k])
                B[k] /= A[k, k]
                k += 1
            else:
                kp = -ip[k] - 1
                if kp != k + 1:
                    B[[k + 1, kp]] = B[[kp, k + 1]]
                if k < n - 2:
                    B[k + 2:] -= np.outer(A[k + 2:, k], B[k])
                    B[k + 2:] -= np.outer(A[k + 2:, k + 1], B[k + 1])
                akm1k = A[k + 1, k]
                akm1 = A[k, k] / akm1k
                ak = A[k + 1, k + 1] / akm1k
                denom = akm1 * ak - 1
                bkm1 = B[k] / akm1k
                bk = B[k + 1] / akm1k
                B[k] = (ak * bkm1 - bk) / denom
                B[k + 1] = (akm1 * bk - bkm1) / denom
                k += 2
        k = n - 1
        while k >= 0:  # L^T X = Y
            if ip[k] > 0:
                if k < n - 1:
                    B[k] -= A[k + 1:, k] @ B[k + 1:]
                kp = ip[k] - 1
                if kp != k:
                    B[[k, kp]] = B[[kp, k]]
                k -= 1
            else:
                if k < n - 1:
                    B[k] -= A[k + 1:, k] @ B[k + 1:]
                    B[k - 1] -= A[k + 1:, k - 1] @ B[k + 1:]
                kp = -ip[k] - 1
                if kp != k:
                    B[[k, kp]] = B[[kp, k]]
                k -= 2
    return X.reshape(*batch, *bmat.shape[-2:])
