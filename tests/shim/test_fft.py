"""torch.fft through the facade against real torch: every transform over 1-D / 2-D / n-D argument forms and
the three normalisations, real and complex inputs, repeated calls (MindSpore's Hermitian kernels alternate
between a result and its conjugate: workaround "HFFT conj state"), gradients from complex upstream gradients,
autograd through an rfft -> irfft chain, shifts and frequencies, and the argument errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import shim.torch as ft

RNG = np.random.default_rng(5)
X = RNG.standard_normal((4, 5, 6)).astype(np.float32)
C = (RNG.standard_normal((4, 5, 6)) + 1j * RNG.standard_normal((4, 5, 6))).astype(np.complex64)
ONE = ["fft", "ifft", "rfft", "irfft", "hfft", "ihfft"]
MANY = [n + k for n in ONE for k in ("2", "n")]
ONE_KW = [{}, {"norm": "ortho"}, {"norm": "forward"}, {"n": 7}, {"n": 3, "dim": 0}, {"n": 10, "dim": 1}]
MANY_KW = [{}, {"norm": "ortho"}, {"norm": "forward"}, {"s": (3, 8)}, {"s": (3, -1), "dim": (0, 2)},
           {"dim": (0, 1)}]


def _np(t):
    return t.detach().resolve_conj().numpy() if isinstance(t, torch.Tensor) else t.detach().numpy()


def _same(ref, got):
    assert str(got.dtype) == str(ref.dtype)
    assert tuple(got.shape) == tuple(ref.shape)
    np.testing.assert_allclose(_np(got), _np(ref), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ONE + MANY)
def test_transforms_match_torch(name):
    kws = MANY_KW if name[-1] in "2n" else ONE_KW
    inputs = [X] if name.startswith(("rfft", "ihfft")) else [X, C]
    for x in inputs:
        for kw in kws:
            if name.endswith("2") and "s" in kw and len(kw["s"]) != 2:
                continue
            ref = getattr(torch.fft, name)(torch.from_numpy(x), **kw)
            for _ in range(2):  # repeated calls give the same result
                _same(ref, getattr(ft.fft, name)(ft.from_numpy(x.copy()), **kw))


def test_integer_and_float64_inputs():
    xi = np.arange(12).reshape(3, 4)
    _same(torch.fft.fft(torch.from_numpy(xi)), ft.fft.fft(ft.from_numpy(xi.copy())))
    _same(torch.fft.ihfft(torch.from_numpy(xi)), ft.fft.ihfft(ft.from_numpy(xi.copy())))
    xd = X.astype(np.float64)
    _same(torch.fft.rfft2(torch.from_numpy(xd)), ft.fft.rfft2(ft.from_numpy(xd.copy())))
    _same(torch.fft.irfft(torch.from_numpy(xd)), ft.fft.irfft(ft.from_numpy(xd.copy())))


@pytest.mark.parametrize("name,kw", [("rfft", {}), ("fft", {"norm": "ortho"}), ("ihfft", {}), ("hfft", {"n": 9}),
                                     ("fft2", {}), ("ifftn", {"s": (3, 8)}), ("irfftn", {"s": (4, 6)}),
                                     ("hfftn", {"s": (4, 6)}), ("rfft2", {"norm": "forward"})])
def test_gradients_match_torch(name, kw):
    xt = torch.from_numpy(X).requires_grad_(True)
    xf = ft.from_numpy(X.copy()).requires_grad_(True)
    ot, of = getattr(torch.fft, name)(xt, **kw), getattr(ft.fft, name)(xf, **kw)
    shape = tuple(ot.shape)
    g = RNG.standard_normal(shape) + (1j * RNG.standard_normal(shape) if ot.is_complex() else 0)
    g = g.astype(np.complex64 if ot.is_complex() else np.float32)
    gt, = torch.autograd.grad(ot, xt, torch.from_numpy(g))
    gf, = ft.autograd.grad(of, xf, ft.from_numpy(g.copy()))
    _same(gt, gf)


def test_autograd_through_rfft_irfft_chain():
    xt = torch.from_numpy(X).requires_grad_(True)
    xf = ft.from_numpy(X.copy()).requires_grad_(True)
    rt = torch.fft.irfft(torch.fft.rfft(xt, norm="ortho"), n=6, dim=0)
    rf = ft.fft.irfft(ft.fft.rfft(xf, norm="ortho"), n=6, dim=0)
    _same(rt, rf)
    rt.pow(2).sum().backward()
    rf.pow(2).sum().backward()
    _same(xt.grad, xf.grad)


def test_shifts_and_frequencies():
    for kw in ({}, {"dim": 0}, {"dim": (1, 2)}, {"dim": -1}):
        _same(torch.fft.fftshift(torch.from_numpy(X), **kw), ft.fft.fftshift(ft.from_numpy(X.copy()), **kw))
        _same(torch.fft.ifftshift(torch.from_numpy(X), **kw), ft.fft.ifftshift(ft.from_numpy(X.copy()), **kw))
    for n in (1, 6, 7):
        _same(torch.fft.fftfreq(n, 0.5), ft.fft.fftfreq(n, 0.5))
        _same(torch.fft.rfftfreq(n), ft.fft.rfftfreq(n))


def test_errors_name_the_problem():
    x = ft.from_numpy(X.copy())
    with pytest.raises(ValueError, match="Invalid normalization mode"):
        ft.fft.fft(x, norm="bogus")
    with pytest.raises(IndexError, match="Dimension out of range"):
        ft.fft.fft(x, dim=3)
    with pytest.raises(RuntimeError, match="Invalid number of data points"):
        ft.fft.rfft(x, n=0)
    with pytest.raises(RuntimeError, match="same length"):
        ft.fft.fftn(x, s=(3, 4), dim=(0,))
    with pytest.raises(RuntimeError, match="unsupported dtype"):
        ft.fft.fft(x.to(ft.bfloat16))
    with pytest.raises(NotImplementedError, match="torch.fft.nope"):
        ft.fft.nope
