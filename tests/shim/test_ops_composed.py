"""Composed structural ops (shim/torch/_ops/misc.py) and statistics ops (shim/torch/_ops/statistics.py) against
real torch on inputs beyond the catalogue's first samples: weights and corrections for cov, NaN and dim forms
of unique, edge bins of histc/histogram, gradients of the composed ops."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import shim.torch as ft


def F(t):
    return ft.from_numpy(t.detach().numpy().copy())


def _same(a, b):
    if isinstance(a, (tuple, list)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _same(x, y)
        return
    assert str(b.dtype) == str(a.dtype)
    assert tuple(b.shape) == tuple(a.shape)
    np.testing.assert_allclose(b.detach().numpy().astype(np.float64), a.detach().numpy().astype(np.float64),
                               rtol=1e-4, atol=1e-5, equal_nan=True)


def _grad_same(fn_t, fn_f, *xs):
    ts = [x.clone().requires_grad_(True) for x in xs]
    fs = [F(x).requires_grad_(True) for x in xs]
    rt, rf = fn_t(*ts), fn_f(*fs)
    _same(rt, rf)
    g = torch.randn(rt.shape, generator=torch.Generator().manual_seed(9))
    gt = torch.autograd.grad(rt, ts, g)
    gf = ft.autograd.grad(rf, fs, F(g))
    _same(gt, gf)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_cov_and_corrcoef():
    g = torch.Generator().manual_seed(0)
    for shp in [(3,), (1, 4), (3, 5), (2, 1)]:
        x = torch.randn(shp, generator=g)
        _same(torch.cov(x), ft.cov(F(x)))
        _same(torch.corrcoef(x), ft.corrcoef(F(x)))
        n = shp[-1]
        fw, aw = torch.randint(1, 4, (n,), generator=g), torch.rand(n, generator=g)
        for kw in [dict(correction=0), dict(fweights=fw), dict(aweights=aw),
                   dict(fweights=fw, aweights=aw, correction=2)]:
            fk = {k: (F(v) if isinstance(v, torch.Tensor) else v) for k, v in kw.items()}
            _same(torch.cov(x, **kw), ft.cov(F(x), **fk))
    x = torch.randn(3, 6, generator=g)
    _grad_same(torch.cov, ft.cov, x)
    _grad_same(torch.corrcoef, ft.corrcoef, x)


def test_unique_forms():
    g = torch.Generator().manual_seed(1)
    xi = torch.randint(0, 5, (4, 6), generator=g)
    for kw in [dict(), dict(return_inverse=True, return_counts=True), dict(dim=0, return_inverse=True,
               return_counts=True), dict(dim=1, return_counts=True), dict(sorted=False)]:
        _same(torch.unique(xi, **kw), ft.unique(F(xi), **kw))
        kw.pop("sorted", None)
        _same(torch.unique_consecutive(xi, **kw), ft.unique_consecutive(F(xi), **kw))
    xf = torch.tensor([1., float("nan"), 2., 1., float("nan")])
    _same(torch.unique(xf, return_inverse=True, return_counts=True),
          ft.unique(F(xf), return_inverse=True, return_counts=True))


def test_histc_and_histogram():
    g = torch.Generator().manual_seed(2)
    for x in [torch.randn(100, generator=g) * 3, torch.tensor([2.]), torch.tensor([]), torch.arange(11.)]:
        for kw in [dict(bins=7), dict(bins=4, min=-1, max=2), dict(bins=10, min=0, max=10), dict(bins=1)]:
            _same(torch.histc(x, **kw), ft.histc(F(x), **kw))
        for kw in [dict(bins=7), dict(bins=4, range=(-1., 2.)), dict(bins=5, density=True),
                   dict(bins=torch.tensor([-1., 0., 0.5, 3.]))]:
            fk = {k: (F(v) if isinstance(v, torch.Tensor) else v) for k, v in kw.items()}
            with np.errstate(all="ignore"):
                _same(tuple(torch.histogram(x, **kw)), tuple(ft.histogram(F(x), **fk)))
        w = torch.rand(x.shape, generator=g)
        _same(tuple(torch.histogram(x, 6, weight=w)), tuple(ft.histogram(F(x), 6, weight=F(w))))


def test_index_based_ops_with_gradients():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(4, 5, generator=g)
    idx = torch.tensor([[0, -1], [7, 19]])
    _grad_same(lambda a: torch.take(a, idx), lambda a: ft.take(a, F(idx)), x)
    src = torch.randn(2, 2, generator=g)
    for acc in (False, True):
        _grad_same(lambda a, s: torch.put(a, idx, s, accumulate=acc),
                   lambda a, s: ft.put(a, F(idx), s, accumulate=acc), x, src)
    y = torch.randn(3, 4, 5, generator=g)
    for off, d1, d2 in [(0, 0, 1), (1, 1, 2), (-2, 2, 0)]:
        s = torch.randn(torch.diagonal(y, off, d1, d2).shape, generator=g)
        _grad_same(lambda a, b: torch.diagonal_scatter(a, b, off, d1, d2),
                   lambda a, b: ft.diagonal_scatter(a, b, off, d1, d2), y, s)
    _grad_same(lambda a: torch.as_strided_copy(a, (3, 2), (2, 3), 1),
               lambda a: ft.as_strided_copy(a, (3, 2), (2, 3), 1), x)
    for args in [(0, 2, 1), (1, 3, 2), (-1, 5, 5), (2, 1, 3)]:
        _grad_same(lambda a: a.unfold(*args), lambda a: a.unfold(*args), y)
    _grad_same(lambda a: torch.renorm(a, 2, 0, 1.5), lambda a: ft.renorm(a, 2, 0, 1.5), y)
    _grad_same(lambda a: torch.renorm(a, 1, 2, 0.5), lambda a: ft.renorm(a, 1, 2, 0.5), y)
    v = torch.randn(4, generator=g)
    for r, rep in [(2, False), (3, True), (0, False), (5, False)]:
        _same(torch.combinations(v, r, rep), ft.combinations(F(v), r, rep))
    _grad_same(lambda a: torch.combinations(a, 2), lambda a: ft.combinations(a, 2), v)
    z = torch.randn(2, 3, 4, generator=g)
    for size in [(3, 4), (1, 4), (3, 1), (1, 1, 1), (2, 1, 4)]:
        _grad_same(lambda a: a.sum_to_size(*size), lambda a: a.sum_to_size(*size), z)
    _same(x.H, F(x).H)
    _same(z.mH, F(z).mH)
    _same(torch.logspace(-2, 3, 7), ft.logspace(-2, 3, 7))
    _same(torch.logspace(0, 4, 5, base=2, dtype=torch.int64), ft.logspace(0, 4, 5, base=2, dtype=ft.int64))


def test_fill_and_zero_record_gradients():
    x = torch.randn(3, 2)
    xt, xf = x.clone().requires_grad_(True), F(x).requires_grad_(True)
    vt, vf = torch.tensor(2.5, requires_grad=True), ft.tensor(2.5, requires_grad=True)
    rt, rf = torch.fill(xt, vt), ft.fill(xf, vf)
    _same(rt, rf)
    gt = torch.autograd.grad(rt.sum(), [xt, vt], allow_unused=True)
    gf = ft.autograd.grad(rf.sum(), [xf, vf], allow_unused=True)
    _same(gf[1], gt[1])
    assert gf[0] is None or float(gf[0].abs().sum()) == 0.0
    yt, yf = xt * 2, xf * 2
    torch.zero_(yt)
    ft.zero_(yf)
    _same(yt, yf)
    assert yf.requires_grad


def test_as_strided_scatter_refuses_gradients():
    x = ft.zeros(3, 3)
    out = ft.as_strided_scatter(x, ft.ones(2, 2), (2, 2), (1, 2))
    _same(torch.as_strided_scatter(torch.zeros(3, 3), torch.ones(2, 2), (2, 2), (1, 2)), out)
    with pytest.raises(NotImplementedError, match="torch.as_strided_scatter"):
        ft.as_strided_scatter(x.requires_grad_(True), ft.ones(2, 2), (2, 2), (1, 2))


@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16"])
def test_cauchy_log_normal_geometric_follow_torch_streams_bit_for_bit(dtype):
    for seed, n in [(0, 1), (3, 7), (11, 40)]:
        torch.manual_seed(seed)
        ft.manual_seed(seed)
        tt = torch.empty(n, dtype=getattr(torch, dtype))
        ff = ft.empty(n, dtype=getattr(ft, dtype))
        for call in [("cauchy_", (0.5, 2.0)), ("log_normal_", (0.2, 0.7)), ("normal_", ()), ("log_normal_", ()),
                     ("geometric_", (0.3,)), ("cauchy_", ())]:
            name, args = call
            a = getattr(tt, name)(*args).float().numpy()
            b = getattr(ff, name)(*args).float().numpy()
            assert np.array_equal(a, b, equal_nan=True), (name, n, a[:4], b[:4])
        assert np.array_equal(torch.get_rng_state().numpy(), ft.get_rng_state().numpy())
    torch.manual_seed(5)
    ft.manual_seed(5)
    a = torch.empty(3, 4, dtype=torch.int64).geometric_(0.2).numpy()
    b = ft.empty(3, 4, dtype=ft.int64).geometric_(0.2).numpy()
    assert np.array_equal(a, b)


def test_quantiles_and_nanmedian():
    g = torch.Generator().manual_seed(7)
    x = torch.randn(4, 7, generator=g)
    xn = x.clone()
    xn[0, 2] = float("nan")
    xn[2] = float("nan")
    xn[3, 1] = float("nan")
    qs = [0.0, 0.3, 1.0, torch.tensor([0.1, 0.5, 0.95])]
    for data in (x, xn):
        for q in qs:
            fq = F(q) if isinstance(q, torch.Tensor) else q
            for interp in ("linear", "lower", "higher", "midpoint", "nearest"):
                for kw in (dict(), dict(dim=1), dict(dim=0, keepdim=True), dict(dim=None, keepdim=True)):
                    _same(torch.quantile(data, q, interpolation=interp, **kw),
                          ft.quantile(F(data), fq, interpolation=interp, **kw))
                    _same(torch.nanquantile(data, q, interpolation=interp, **kw),
                          ft.nanquantile(F(data), fq, interpolation=interp, **kw))
        _same(torch.nanmedian(data), ft.nanmedian(F(data)))
        for kw in (dict(dim=1), dict(dim=0, keepdim=True)):
            _same(torch.nanmedian(data, **kw).values, ft.nanmedian(F(data), **kw).values)
    _grad_same(lambda a: torch.quantile(a, torch.tensor([0.2, 0.7]), dim=1),
               lambda a: ft.quantile(a, ft.tensor([0.2, 0.7]), dim=1), x)
    _grad_same(lambda a: torch.nanquantile(a, 0.4, dim=0), lambda a: ft.nanquantile(a, 0.4, dim=0), x)
    _grad_same(lambda a: torch.nanmedian(a, 1).values, lambda a: ft.nanmedian(a, 1).values, x)
