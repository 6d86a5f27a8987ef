"""torch.linalg decompositions and solvers (shim/torch/linalg/_lapack.py) against real torch on inputs op_db's first
samples do not reach: non-empty SVDs, wide/tall QR and LU backward, failure reports, the left=False / adjoint
variants, and the gradients of the hand-written backward formulas (each compared with torch's autograd).

Loss functions of the factors are chosen invariant to the sign (and ordering) freedom of the factorization where
torch leaves it free, so that a differing but valid sign choice cannot hide or fake a difference.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

import shim.torch as ft

RTOL, ATOL = 1e-4, 1e-5


def _pair(*shape, seed=0, sym=False, spd=False):
    g = np.random.default_rng(seed)
    a = g.standard_normal(shape).astype(np.float32)
    if sym:
        a = (a + np.swapaxes(a, -1, -2)) / 2
    if spd:
        a = a @ np.swapaxes(a, -1, -2) + shape[-1] * np.eye(shape[-1], dtype=np.float32)
    return torch.tensor(a, requires_grad=True), ft.tensor(a, requires_grad=True)


def _close(f, t, rtol=RTOL, atol=ATOL):
    np.testing.assert_allclose(f.detach()._host() if isinstance(f, ft.Tensor) else f,
                               t.detach().numpy(), rtol=rtol, atol=atol)


def _grads(fn_t, fn_f, tin, fin, rtol=RTOL, atol=ATOL):
    """Compare fn(x) values and d fn(x).sum() / dx on both sides (tin/fin: lists of leaves)."""
    yt, yf = fn_t(*tin), fn_f(*fin)
    _close(yf, yt, rtol, atol)
    gt = torch.autograd.grad(yt.sum(), tin)
    gf = ft.autograd.grad(yf.sum(), fin)
    for a, b in zip(gf, gt):
        _close(a, b, rtol, atol)


@pytest.mark.parametrize("shape,full", [((5, 3), False), ((3, 5), False), ((2, 4, 4), False), ((4, 3), True)])
def test_svd_values_and_sign_invariant_gradients(shape, full):
    t, f = _pair(*shape)
    Ut, St, Vht = torch.linalg.svd(t, full_matrices=full)
    Uf, Sf, Vhf = ft.linalg.svd(f, full_matrices=full)
    _close(Sf, St)
    _close(Uf.abs(), Ut.abs())
    _close(Vhf.abs(), Vht.abs())
    k = min(shape[-2:])
    # U S Vh and the projectors U U^T, V V^T do not depend on the sign choice
    def lt(x):
        U, S, Vh = torch.linalg.svd(x, full_matrices=full)
        U, Vh = U[..., :k], Vh[..., :k, :]
        return (U @ torch.diag_embed(S ** 2) @ Vh).sum() + (U @ U.mT).pow(2).mul(torch.arange(
            U.shape[-2] ** 2, dtype=x.dtype).reshape(U.shape[-2], -1)).sum() + (Vh.mT @ Vh)[..., 0, :].sum()
    def lf(x):
        U, S, Vh = ft.linalg.svd(x, full_matrices=full)
        U, Vh = U[..., :k], Vh[..., :k, :]
        return (U @ ft.diag_embed(S ** 2) @ Vh).sum() + (U @ U.mT).pow(2).mul(ft.arange(
            U.shape[-2] ** 2, dtype=x.dtype).reshape(U.shape[-2], -1)).sum() + (Vh.mT @ Vh)[..., 0, :].sum()
    _grads(lt, lf, [t], [f], rtol=1e-3, atol=1e-4)


def test_torch_svd_returns_v_and_compute_uv_false():
    t, f = _pair(4, 3)
    Ut, St, Vt = torch.svd(t)
    Uf, Sf, Vf = ft.svd(f)
    _close(Uf @ ft.diag_embed(Sf) @ Vf.mT, Ut @ torch.diag_embed(St) @ Vt.mT)
    Uf, Sf, Vf = ft.svd(f, compute_uv=False)
    Ut, St, Vt = torch.svd(t, compute_uv=False)
    assert tuple(Uf.shape) == tuple(Ut.shape) and tuple(Vf.shape) == tuple(Vt.shape)
    _close(Uf, Ut)
    _close(Sf, St)


@pytest.mark.parametrize("shape", [(5, 3), (3, 5), (4, 4), (2, 3, 3)])
def test_qr_values_and_gradients(shape):
    t, f = _pair(*shape)
    Qt, Rt = torch.linalg.qr(t)
    Qf, Rf = ft.linalg.qr(f)
    _close(Qf, Qt)
    _close(Rf, Rt)
    w = np.random.default_rng(1).standard_normal(Qt.shape).astype(np.float32)
    v = np.random.default_rng(2).standard_normal(Rt.shape).astype(np.float32)
    _grads(lambda x: (torch.linalg.qr(x)[0] * torch.tensor(w)).sum() + (torch.linalg.qr(x)[1] * torch.tensor(v)).sum(),
           lambda x: (ft.linalg.qr(x)[0] * ft.tensor(w)).sum() + (ft.linalg.qr(x)[1] * ft.tensor(v)).sum(),
           [t], [f])


def test_qr_complete_and_r_modes():
    t, f = _pair(5, 3)
    for mode in ("complete", "r"):
        Qt, Rt = torch.linalg.qr(t, mode=mode)
        Qf, Rf = ft.linalg.qr(f, mode=mode)
        assert tuple(Qf.shape) == tuple(Qt.shape)
        _close(Rf, Rt)
    _close(ft.linalg.qr(f, mode="complete")[0], torch.linalg.qr(t, mode="complete")[0])


@pytest.mark.parametrize("shape", [(4, 4), (5, 3), (3, 5), (2, 4, 4)])
def test_lu_factor_values_and_gradients(shape):
    t, f = _pair(*shape, seed=3)
    LUt, pt = torch.linalg.lu_factor(t)
    LUf, pf = ft.linalg.lu_factor(f)
    _close(LUf, LUt)
    assert pf._host().tolist() == pt.numpy().tolist() and str(pf.dtype) == str(pt.dtype)
    w = np.random.default_rng(4).standard_normal(LUt.shape).astype(np.float32)
    _grads(lambda x: torch.linalg.lu_factor(x)[0] * torch.tensor(w),
           lambda x: ft.linalg.lu_factor(x)[0] * ft.tensor(w), [t], [f], rtol=1e-3, atol=1e-4)
    Pt, Lt, Ut = torch.linalg.lu(t)
    Pf, Lf, Uf = ft.linalg.lu(f)
    for a, b in ((Pf, Pt), (Lf, Lt), (Uf, Ut)):
        _close(a, b)


@pytest.mark.parametrize("left,adjoint", [(True, False), (True, True), (False, False), (False, True)])
def test_lu_solve_variants(left, adjoint):
    t, f = _pair(4, 4, seed=5)
    bt, bf = _pair(4, 2, seed=6) if left else _pair(2, 4, seed=6)
    _grads(lambda a, b: torch.linalg.lu_solve(*torch.linalg.lu_factor(a), b, left=left, adjoint=adjoint),
           lambda a, b: ft.linalg.lu_solve(*ft.linalg.lu_factor(a), b, left=left, adjoint=adjoint),
           [t, bt], [f, bf], rtol=1e-3, atol=1e-4)


def test_cholesky_ex_reports_the_failing_minor_and_cholesky_raises():
    a = np.array([[4.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 1.0]], np.float32)  # 2nd leading minor is 0
    it = torch.linalg.cholesky_ex(torch.tensor(a)).info
    fi = ft.linalg.cholesky_ex(ft.tensor(a)).info
    assert int(fi.item()) == int(it.item()) == 2 and str(fi.dtype) == "torch.int32"
    with pytest.raises(RuntimeError, match="positive-definite"):
        ft.linalg.cholesky(ft.tensor(a))


def test_cholesky_and_eigh_gradients():
    t, f = _pair(4, 4, seed=7, spd=True)
    w = np.random.default_rng(8).standard_normal((4, 4)).astype(np.float32)
    _grads(lambda x: torch.linalg.cholesky(x) * torch.tensor(w), lambda x: ft.linalg.cholesky(x) * ft.tensor(w),
           [t], [f], rtol=1e-3, atol=1e-4)
    _grads(lambda x: torch.linalg.cholesky(x, upper=True) * torch.tensor(w),
           lambda x: ft.linalg.cholesky(x, upper=True) * ft.tensor(w), [t], [f], rtol=1e-3, atol=1e-4)
    # eigenvector signs are free: compare through V diag(L^2) V^T and |V|
    def lt(x):
        L, V = torch.linalg.eigh(x)
        return (V @ torch.diag_embed(L.pow(2)) @ V.mT) * torch.tensor(w) + V.abs()
    def lf(x):
        L, V = ft.linalg.eigh(x)
        return (V @ ft.diag_embed(L.pow(2)) @ V.mT) * ft.tensor(w) + V.abs()
    _grads(lt, lf, [t], [f], rtol=1e-3, atol=1e-3)


def test_slogdet_logdet_negative_and_singular():
    a = np.array([[0.0, 1.0], [1.0, 0.0]], np.float32)  # det -1
    s, l = ft.linalg.slogdet(ft.tensor(a))
    st, lt = torch.linalg.slogdet(torch.tensor(a))
    _close(s, st)
    _close(l, lt)
    assert np.isnan(ft.logdet(ft.tensor(a)).item()) and np.isnan(torch.logdet(torch.tensor(a)).item())
    z = np.zeros((2, 2), np.float32)
    _close(ft.linalg.slogdet(ft.tensor(z))[0], torch.linalg.slogdet(torch.tensor(z))[0])
    assert ft.logdet(ft.tensor(z)).item() == -np.inf


def test_solve_left_false_and_triangular_variants():
    t, f = _pair(4, 4, seed=9)
    bt, bf = _pair(3, 4, seed=10)
    _grads(lambda a, b: torch.linalg.solve(a + 4 * torch.eye(4), b, left=False),
           lambda a, b: ft.linalg.solve(a + 4 * ft.eye(4), b, left=False), [t, bt], [f, bf])
    for upper in (True, False):
        for uni in (True, False):
            _grads(lambda a, b: torch.linalg.solve_triangular(a + 4 * torch.eye(4), b, upper=upper, left=False,
                                                              unitriangular=uni),
                   lambda a, b: ft.linalg.solve_triangular(a + 4 * ft.eye(4), b, upper=upper, left=False,
                                                           unitriangular=uni),
                   [t, bt], [f, bf], rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("hermitian", [False, True])
def test_pinv_matrix_rank_full_and_deficient(hermitian):
    g = np.random.default_rng(11)
    a = g.standard_normal((5, 2)).astype(np.float32)
    a = a @ a.T if hermitian else a @ g.standard_normal((2, 4)).astype(np.float32)  # rank 2
    t, f = torch.tensor(a, requires_grad=True), ft.tensor(a, requires_grad=True)
    assert int(ft.linalg.matrix_rank(f, hermitian=hermitian).item()) == \
        int(torch.linalg.matrix_rank(t, hermitian=hermitian).item()) == 2
    _grads(lambda x: torch.linalg.pinv(x, hermitian=hermitian), lambda x: ft.linalg.pinv(x, hermitian=hermitian),
           [t], [f], rtol=1e-3, atol=1e-4)


def test_lstsq_gels_and_unsupported_drivers():
    t, f = _pair(6, 3, seed=12)
    bt, bf = _pair(6, 2, seed=13)
    rt = torch.linalg.lstsq(t, bt, driver="gels")
    rf = ft.linalg.lstsq(f, bf, driver="gels")
    _close(rf.solution, rt.solution)
    _close(rf.residuals, rt.residuals, rtol=1e-3)
    with pytest.raises(NotImplementedError, match="torch.linalg.lstsq"):
        ft.linalg.lstsq(f, bf)


def test_svd_lowrank_reproduces_torch_with_the_same_seed():
    t, f = _pair(8, 6, seed=14)
    torch.manual_seed(3)
    ft.manual_seed(3)
    Ut, St, Vt = torch.svd_lowrank(t, q=3, niter=1)
    Uf, Sf, Vf = ft.svd_lowrank(f, q=3, niter=1)
    _close(Sf, St, rtol=1e-3)
    _close(Uf @ Vf.mT, Ut @ Vt.mT, rtol=1e-3, atol=1e-4)


def test_ldl_factor_and_solve_match_torch_pivots_and_values():
    for seed in range(12):
        g = np.random.default_rng(seed)
        n = int(g.integers(2, 8))
        a = g.standard_normal((n, n)).astype(np.float32)
        a = a + a.T
        if seed % 3 == 0:
            a[0, 0] = 0  # forces a 2x2 pivot block
        LDt, pt = torch.linalg.ldl_factor(torch.tensor(a))
        LDf, pf = ft.linalg.ldl_factor(ft.tensor(a))
        assert pf._host().tolist() == pt.numpy().tolist()
        _close(LDf, LDt)
        b = g.standard_normal((n, 2)).astype(np.float32)
        _close(ft.linalg.ldl_solve(LDf, pf, ft.tensor(b)), torch.linalg.ldl_solve(LDt, pt, torch.tensor(b)),
               rtol=1e-3, atol=1e-4)


def test_unsupported_linalg_names_raise_naming_torch():
    f = ft.eye(3)
    for name in ("eig", "eigvals"):
        with pytest.raises(NotImplementedError, match=f"torch.linalg.{name}"):
            getattr(ft.linalg, name)(f)
