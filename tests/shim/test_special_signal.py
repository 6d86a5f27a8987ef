"""torch.signal.windows and the host-evaluated / composed torch.special functions against real torch, on more
inputs than the catalogue's three samples: window lengths 0..33 both symmetric and periodic; special functions
over random values plus their edge points (0, +-1, +-inf, NaN, poles, negative domain), polynomials over n
including negative, fractional and past the closed-form switch points of torch's kernels."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import shim.torch as ft


def _same(ref, got, rtol=1e-4, atol=1e-5):
    assert str(got.dtype) == str(ref.dtype)
    assert tuple(got.shape) == tuple(ref.shape)
    a, b = ref.detach().numpy().astype(np.float64), got.detach().numpy().astype(np.float64)
    np.testing.assert_allclose(b, a, rtol=rtol, atol=atol, equal_nan=True)


WINDOWS = [("hamming", {}), ("hann", {}), ("bartlett", {}), ("blackman", {}), ("cosine", {}),
           ("exponential", {"tau": 2.5}), ("exponential", {"center": 3, "tau": 0.5}), ("gaussian", {"std": 1.7}),
           ("kaiser", {"beta": 5.0}), ("general_cosine", {"a": [0.5, 0.3, 0.2]}),
           ("general_hamming", {"alpha": 0.6}), ("nuttall", {})]


@pytest.mark.parametrize("name,kw", WINDOWS, ids=[f"{n}-{len(k)}" for n, k in WINDOWS])
def test_windows_match_torch(name, kw):
    for M in (0, 1, 2, 3, 7, 16, 33):
        for sym in (True, False):
            if "center" in kw and sym:
                continue
            _same(getattr(torch.signal.windows, name)(M, sym=sym, **kw),
                  getattr(ft.signal.windows, name)(M, sym=sym, **kw), rtol=1e-5, atol=1e-6)
    w = getattr(ft.signal.windows, name)(4, dtype=ft.float64, requires_grad=True, **({} if "center" in kw else kw))
    assert w.dtype == ft.float64 and w.requires_grad and w.is_leaf


def test_window_errors_name_the_input():
    with pytest.raises(ValueError, match="non-negative window length"):
        ft.signal.windows.hann(-1)
    with pytest.raises(ValueError, match="float32 or float64"):
        ft.signal.windows.hann(3, dtype=ft.int64)
    with pytest.raises(ValueError, match="Center must be None"):
        ft.signal.windows.exponential(3, center=1.0)


EDGE = [0., 1., -1., 0.5, -0.5, 2., 30., -30., float("inf"), -float("inf"), float("nan"), 1e-3, 100.]
UNARY = ["airy_ai", "bessel_j0", "bessel_j1", "bessel_y0", "bessel_y1", "modified_bessel_i0", "modified_bessel_i1",
         "modified_bessel_k0", "modified_bessel_k1", "scaled_modified_bessel_k0", "scaled_modified_bessel_k1",
         "spherical_bessel_j0"]


@pytest.mark.parametrize("name", UNARY)
def test_unary_special_match_torch(name):
    g = torch.Generator().manual_seed(1)
    x = torch.cat([torch.randn(200, generator=g) * 4, torch.tensor(EDGE)])
    got = getattr(ft.special, name)(ft.tensor(x.numpy()))
    _same(getattr(torch.special, name)(x), got)
    assert not got.requires_grad
    _same(getattr(torch.special, name)(torch.arange(-3, 4)), getattr(ft.special, name)(ft.arange(-3, 4)))


POLYS = ["chebyshev_polynomial_t", "chebyshev_polynomial_u", "chebyshev_polynomial_v", "chebyshev_polynomial_w",
         "shifted_chebyshev_polynomial_t", "shifted_chebyshev_polynomial_u", "shifted_chebyshev_polynomial_v",
         "shifted_chebyshev_polynomial_w", "hermite_polynomial_h", "hermite_polynomial_he", "laguerre_polynomial_l",
         "legendre_polynomial_p"]


@pytest.mark.parametrize("name", POLYS)
def test_polynomials_match_torch(name):
    g = torch.Generator().manual_seed(2)
    xs = torch.cat([torch.randn(60, generator=g), torch.tensor([1., -1., 0., 0.5])]).reshape(-1, 1)
    ns = torch.tensor([-2., -0.5, 0., 0.7, 1., 2., 3.6, 5., 7., 8., 9., 10., 12.])
    t, f = getattr(torch.special, name), getattr(ft.special, name)
    _same(t(xs, ns), f(ft.tensor(xs.numpy()), ft.tensor(ns.numpy())))
    _same(t(xs, 3), f(ft.tensor(xs.numpy()), 3))
    _same(t(torch.arange(-3, 4), torch.tensor(4)), f(ft.arange(-3, 4), ft.tensor(4)))


def test_zeta_and_incomplete_gamma_match_torch():
    g = torch.Generator().manual_seed(3)
    q = torch.cat([torch.randn(40, generator=g) * 3, torch.tensor([0., -1., -2., 1., 2.5])]).reshape(-1, 1)
    s = torch.tensor([-2., 0., 0.5, 1., 1.5, 2., 3., 7.])
    _same(torch.special.zeta(s, q), ft.special.zeta(ft.tensor(s.numpy()), ft.tensor(q.numpy())))
    a, z = torch.rand(50, generator=g) * 5, torch.rand(50, generator=g) * 6
    a = torch.cat([a, torch.tensor([0., 1., 0., -1.])])
    z = torch.cat([z, torch.tensor([0., 0., 1., 1.])])
    for name in ("igamma", "igammac"):
        _same(getattr(torch, name)(a, z), getattr(ft, name)(ft.tensor(a.numpy()), ft.tensor(z.numpy())))
    _same(torch.special.gammainc(a, z), ft.special.gammainc(ft.tensor(a.numpy()), ft.tensor(z.numpy())))


@pytest.mark.parametrize("n", [0, 1, 3])
def test_polygamma_values_and_gradient(n):
    g = torch.Generator().manual_seed(4)
    x = torch.rand(20, generator=g) * 6 + 0.1
    xt = x.clone().requires_grad_(True)
    xf = ft.tensor(x.numpy()).requires_grad_(True)
    rt, rf = torch.polygamma(n, xt), ft.polygamma(n, xf)
    _same(rt, rf)
    rt.sum().backward()
    rf.sum().backward()
    _same(xt.grad, xf.grad)


def test_mvlgamma_values_gradient_and_domain_error():
    x = torch.linspace(2.1, 6.0, 12)
    xt = x.clone().requires_grad_(True)
    xf = ft.tensor(x.numpy()).requires_grad_(True)
    rt, rf = torch.mvlgamma(xt, 3), ft.mvlgamma(xf, 3)
    _same(rt, rf)
    rt.sum().backward()
    rf.sum().backward()
    _same(xt.grad, xf.grad)
    with pytest.raises(RuntimeError, match=r"greater than \(p-1\)/2"):
        ft.mvlgamma(ft.tensor([0.2, 3.0]), 3)


@pytest.mark.parametrize("name", ["erfcx", "log_ndtr", "i1"])
def test_composed_special_values_and_gradients(name):
    g = torch.Generator().manual_seed(6)
    x = torch.cat([torch.randn(500, generator=g) * 5, torch.tensor([0., 24.999, 25., 30., -30., 100.])])
    edge = torch.tensor([float("inf"), -float("inf"), float("nan")])
    _same(getattr(torch.special, name)(torch.cat([x, edge])),
          getattr(ft.special, name)(ft.tensor(torch.cat([x, edge]).numpy())), rtol=1e-5, atol=1e-6)
    xt = x.clone().requires_grad_(True)
    xf = ft.tensor(x.numpy()).requires_grad_(True)
    getattr(torch.special, name)(xt).sum().backward()
    getattr(ft.special, name)(xf).sum().backward()
    _same(xt.grad, xf.grad)


def test_frexp_and_nextafter():
    h = torch.tensor([0., 1e-42, 3., -0.75, float("inf"), float("nan"), 1e30])
    m, e = torch.frexp(h)
    fm, fe = ft.frexp(ft.tensor(h.numpy()))
    _same(m, fm, rtol=0, atol=0)
    assert fe.dtype == ft.int32 and fe.tolist() == e.tolist()
    # normal-range values here; subnormal results in a fresh process (test_nextafter_subnormals_in_a_fresh_process)
    x = torch.tensor([1., -1., 3.5, float("inf"), float("nan"), 2., -7.25])
    y = torch.tensor([0., 5., 3.5, 0., 1., float("inf"), -8.])
    for rg in (False, True):
        xf = ft.tensor(x.numpy()).requires_grad_(rg)
        got = ft.nextafter(xf, ft.tensor(y.numpy()))
        assert np.array_equal(got.detach().numpy(), torch.nextafter(x, y).numpy(), equal_nan=True)
    xt = torch.tensor([1., 2.], requires_grad=True)
    xf = ft.tensor([1., 2.], requires_grad=True)
    torch.nextafter(xt, torch.zeros(2)).sum().backward()
    ft.nextafter(xf, ft.zeros(2)).sum().backward()
    _same(xt.grad, xf.grad)


_SUBNORMALS = r"""
import numpy as np, torch, shim.torch as ft
x = torch.tensor([0., 1e-40, -1e-40, 1.2e-38])
y = torch.tensor([1., 0., 1., 0.])
for rg in (False, True):
    got = ft.nextafter(ft.tensor(x.numpy()).requires_grad_(rg), ft.tensor(y.numpy()))
    assert np.array_equal(got.detach().numpy(), torch.nextafter(x, y).numpy()), (rg, got, torch.nextafter(x, y))
print("ok")
"""


def test_nextafter_subnormals_in_a_fresh_process():
    """nextafter into and out of the subnormal range equals torch's in a process of its own: within the full
    suite some earlier in-process test leaves this process flushing subnormals to zero (not yet traced; see
    STATUS.md), which no facade op can undo."""
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-c", _SUBNORMALS], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stdout[-2000:] + r.stderr[-3000:]
