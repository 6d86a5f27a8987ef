"""Workaround "view input copy" (shim/torch/_workarounds.py, shim/torch/_aliasing.py): a view onto one contiguous
run of a large base, derived while autograd is not recording, is a MindSpore tensor that shares the base's host
memory without being a MindSpore view. Values, writes through such views, version counters and gradients must be
torch's, and the alias must stay an alias of the base's current storage."""
from __future__ import annotations

import gc

import numpy as np
import pytest
import torch as T

from shim import torch as S
from shim.torch import _aliasing

N = 1 << 17  # above HOST_ALIAS_MIN
RNG = np.random.default_rng(11)
X = RNG.standard_normal(2 * N).astype(np.float32)

VIEWS = {
    "view 2-D": lambda t: t.view(512, 512),
    "row slice of a 2-D view": lambda t: t.view(512, 512)[100:400],
    "flat slice reshaped": lambda t: t[1000:1000 + N].view(256, 512),
    "unsqueeze": lambda t: t.view(512, 512).unsqueeze(1),
    "narrow": lambda t: t.narrow(0, 7, N),
}


def _inside(view, base) -> bool:
    """Whether the view's MindSpore tensor lies in the base's memory (an alias, not a copy)."""
    v, b = view._m, base._m
    return b._data_ptr() <= v._data_ptr() < b._data_ptr() + b.nbytes


@pytest.mark.parametrize("name", sorted(VIEWS))
def test_views_made_without_recording_alias_the_base(name):
    x = S.tensor(X)
    with S.no_grad():
        v = VIEWS[name](x)
        assert _aliasing.is_host_alias(v)
        assert _inside(v, x)
        got = v.numpy()
    ref = VIEWS[name](T.tensor(X)).numpy()
    np.testing.assert_array_equal(got, ref)
    # used while recording: re-derived as a MindSpore view (the alias has no autograd history), same values
    np.testing.assert_array_equal(S.mul(v, 1).numpy(), ref)
    assert not _aliasing.is_host_alias(v)


def test_small_views_and_recording_keep_mindspore_views():
    x = S.tensor(X[:1000])
    with S.no_grad():
        assert not _aliasing.is_host_alias(x.view(10, 100))  # below HOST_ALIAS_MIN
    y = S.tensor(X)
    assert not _aliasing.is_host_alias(y.view(512, 512))  # recording on


@pytest.mark.parametrize("op", ["add_", "mul_", "copy_", "setitem advanced", "setitem slice", "zero_"])
def test_writes_through_an_alias_match_torch(op):
    out = []
    for m in (T, S):
        x = m.tensor(X)
        with m.no_grad():
            v = x[1000:1000 + N].view(256, 512)
            other = m.tensor(X[:N].reshape(256, 512) * 3)
            if op == "add_":
                v.add_(other)
            elif op == "mul_":
                v.mul_(other)
            elif op == "copy_":
                v.copy_(other)
            elif op == "setitem advanced":
                rows, cols = m.tensor([0, 5, 255]), m.tensor([1, 511, 7])
                v[rows, cols] -= m.tensor([1.0, 2.0, 3.0])
            elif op == "setitem slice":
                v[3:9] = 4.0
            else:
                v.zero_()
        out.append((x.numpy().copy(), v.numpy().copy(), x._version))
    np.testing.assert_array_equal(out[1][0], out[0][0])
    np.testing.assert_array_equal(out[1][1], out[0][1])
    assert out[1][2] >= 1


def test_alias_follows_base_writes_and_rebinding():
    x = S.tensor(X)
    with S.no_grad():
        v = x.view(1024, 256)
        first = v.numpy().copy()
        x.add_(1)  # rebinds x's storage: v must re-derive from the new one
        np.testing.assert_array_equal(v.numpy(), first + 1)
        assert _inside(v, x)
        x[:10] = 5.0  # a write into part of x
        assert (v.numpy()[0, :10] == 5.0).all()


def test_alias_keeps_the_memory_alive():
    x = S.tensor(X)
    with S.no_grad():
        v = x[N:].view(512, 256)
        ref = X[N:].reshape(512, 256)
    del x
    gc.collect()
    junk = [S.randn(2 * N) for _ in range(8)]  # reuse freed memory if it were released
    np.testing.assert_array_equal(v.numpy(), ref)
    del junk


def test_view_used_under_no_grad_still_carries_gradients_when_recording():
    """A view made while recording, read under no_grad (a host alias then), and used again while recording must
    pass its gradient to the base, as torch's."""
    grads = []
    for m in (T, S):
        w = m.tensor(X, requires_grad=True)
        y = w * 2
        v = y.view(512, 512)
        with m.no_grad():
            _ = float(v.sum())
        (v * m.tensor(X.reshape(512, 512))).sum().backward()
        grads.append(w.grad.numpy())
    np.testing.assert_allclose(grads[1], grads[0], rtol=0, atol=0)


def test_copy_into_a_parameter_from_an_alias_and_exp_out():
    """megatron's param sync (`param.detach().copy_(buffer_view)`) and cross entropy (`torch.exp(x, out=x)`)."""
    out = []
    for m in (T, S):
        p = m.nn.Parameter(m.zeros(512, 256))
        buf = m.tensor(X)
        with m.no_grad():
            p.detach().copy_(buf[1000:1000 + N].view(512, 256))
            e = buf.view(1024, 256)[:300].clone()
            r = m.exp(e, out=e)
            assert r is e
        out.append((p.detach().numpy().copy(), e.numpy().copy(), e._version))
    np.testing.assert_array_equal(out[1][0], out[0][0])
    np.testing.assert_allclose(out[1][1], out[0][1], rtol=2e-5)  # MindSpore's exp vs torch's: a few ulp
    assert out[1][2] == out[0][2]


def test_exp_out_into_a_leaf_requiring_grad_raises_as_torch():
    for m in (T, S):
        x = m.zeros(4, requires_grad=True)
        with pytest.raises(RuntimeError, match="requires grad"):
            m.exp(m.ones(4), out=x)


def test_copy_into_a_whole_base_view_does_not_share_the_source():
    """`x[0:n].copy_(y[0:n])` with the view x's whole base must leave x owning its values: a later setitem on y
    moves y's storage (MindSpore frees the old one) and must not touch x (found by a break test: a segfault)."""
    out = []
    for m in (T, S):
        y = m.arange(2_000_000, dtype=m.float32)
        x = m.zeros(1_000_000)
        with m.no_grad():
            xs = x[0:1_000_000]
            xs.copy_(y[0:1_000_000])
        y[m.tensor([0, 1])] = -1.0
        del y
        gc.collect()
        junk = [m.full((2_000_000,), 9.0) * 2 for _ in range(10)]
        out.append((xs[:3].tolist(), float(xs.sum())))
        del junk
    assert out[1] == out[0]


def test_adam_does_not_write_the_tensor_a_parameter_was_copied_from():
    res = []
    for m in (T, S):
        src = m.arange(90000, dtype=m.float32).view(300, 300) / 90000
        p = m.zeros(300, 300)
        with m.no_grad():
            p.data.copy_(src)
        p.grad = m.ones(300, 300)
        m.optim.Adam([p], lr=0.5).step()
        res.append((p.detach().numpy().copy(), src.numpy().copy()))
    np.testing.assert_allclose(res[1][0], res[0][0], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(res[1][1], res[0][1])


@pytest.mark.parametrize("make", ["reshape of a fresh result", "sum over a size-1 dim"])
def test_adam_updates_a_parameter_whose_storage_is_a_mindspore_view(make):
    """MindSpore's in-place Adam kernel writes a copy when given a view: the parameter must still be updated (and
    a tensor it was computed from left alone)."""
    res = []
    for m in (T, S):
        a = m.ones(300, 300, 1)
        p = (a * 2).reshape(300, 300) if make.startswith("reshape") else a.sum(-1)
        p.grad = m.ones(300, 300)
        m.optim.Adam([p], lr=0.1).step()
        res.append((p.detach().numpy().copy(), a.numpy().copy()))
    np.testing.assert_allclose(res[1][0], res[0][0], rtol=1e-6)
    np.testing.assert_array_equal(res[1][1], res[0][1])


def test_a_view_made_without_recording_gets_no_gradient_path():
    """torch: a view made under no_grad of a tensor requiring grad requires grad itself but is a leaf with no
    grad_fn; backward through it gives its base no gradient."""
    out = []
    for m in (T, S):
        w = m.nn.Parameter(m.ones(300, 300))
        with m.no_grad():
            flat = w.view(-1)
        state = (flat.requires_grad, flat.is_leaf, flat.grad_fn is None)
        (flat * 2).sum().backward()
        out.append(state + (w.grad is None,))
    assert out[1] == out[0] == (True, True, True, True)
