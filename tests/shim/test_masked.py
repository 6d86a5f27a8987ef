"""torch.masked (shim/torch/masked) against real torch where op_db's first samples do not look: slices with every
element masked out (identities, NaN for mean/var/median/softmax), broadcast masks, integer inputs, gradients that
must be 0 at masked-out elements."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import shim.torch as ft

X = np.arange(12, dtype=np.float32).reshape(3, 4) * 0.5 - 2.0
M = np.array([[True, False, True, False], [False, False, False, False], [True, True, True, True]])


def _check(name, *args, dtype=np.float32, **kwargs):
    t = torch.tensor(X.astype(dtype), requires_grad=dtype == np.float32)
    f = ft.tensor(X.astype(dtype), requires_grad=dtype == np.float32)
    mt, mf = torch.tensor(M), ft.tensor(M)
    rt = getattr(torch.masked, name)(t, *args, mask=mt, **kwargs)
    rf = getattr(ft.masked, name)(f, *args, mask=mf, **kwargs)
    assert str(rf.dtype) == str(rt.dtype) and tuple(rf.shape) == tuple(rt.shape)
    np.testing.assert_allclose(rf.detach()._host(), rt.detach().numpy(), rtol=1e-5, atol=1e-6)
    if dtype == np.float32 and rt.requires_grad:
        g = np.random.default_rng(0).standard_normal(tuple(rt.shape)).astype(np.float32)
        gm = np.isfinite(rt.detach().numpy())  # upstream gradient only where torch's value is finite
        g = np.where(gm, g, 0).astype(np.float32)
        (gt,) = torch.autograd.grad(rt, t, torch.tensor(g))
        (gf,) = ft.autograd.grad(rf, f, ft.tensor(g))
        np.testing.assert_allclose(gf._host(), gt.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["sum", "prod", "amax", "amin", "mean", "norm", "logsumexp", "var", "std"])
def test_reductions_with_a_fully_masked_row(name):
    _check(name, dim=1) if name != "norm" else _check(name, 2.0, dim=1)
    _check(name, dim=1, keepdim=True) if name != "norm" else _check(name, 2.0, dim=1, keepdim=True)


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "softmin", "cumsum", "cumprod"])
def test_normalizations_with_a_fully_masked_row(name):
    _check(name, 1)


def test_median_argmax_and_integer_inputs():
    _check("median", 1)
    _check("argmax", dim=1)
    _check("argmin", dim=1)
    _check("sum", dim=1, dtype=np.int32)
    _check("amax", dim=0, dtype=np.int64)


def test_broadcast_mask():
    t, f = torch.tensor(X), ft.tensor(X)
    m = np.array([True, False, True, True])
    np.testing.assert_allclose(ft.masked.sum(f, 1, mask=ft.tensor(m))._host(),
                               torch.masked.sum(t, 1, mask=torch.tensor(m)).numpy())
