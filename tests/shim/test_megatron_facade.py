"""torch behaviours megatron-core relies on that the facade gained for tools/train.py (issue 6), each checked
against real torch on the same inputs:

- `Tensor._base` is None for `.data` / `.detach()` results and the base for real views
  (`_ParamAndGradBuffer` asserts `param.data._base is None`);
- `old = p.data; p.data = buf_view; p.data.detach().copy_(old)` keeps the parameter's values (the buffer
  mapping of megatron-core's DDP) and is allowed on a leaf that requires grad;
- `.grad` assigned to a view of a parameter (the distributed optimizer's shards) reads back;
- elementwise `out=` (`torch.exp(x, out=x)` in the vocab-parallel cross entropy);
- `Tensor.to_dense()` on a dense tensor (tensor-parallel weight initialisation);
- `param.detach().copy_(buffer_view)` (the parameter all-gather copy of megatron_patches);
- `torch._utils._element_size(dtype)` (dist_checkpointing's fully-parallel save sizes its shards with it).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

import shim.torch as st


def _np(t):
    return np.asarray(t.detach().numpy())


@pytest.mark.parametrize("lib", [torch, st], ids=["torch", "shim"])
def test_base_of_data_detach_and_views(lib):
    p = lib.nn.Parameter(lib.arange(6.0).reshape(2, 3))
    assert p.data._base is None and p.detach()._base is None and p._base is None
    assert p[0]._base is p and p.view(6)._base is p


def _param_into_buffer(lib):
    p = lib.nn.Parameter(lib.arange(6.0).reshape(2, 3))
    buf = lib.zeros(12)
    old = p.data
    p.data = buf[3:9].view(2, 3)
    p.data.detach().copy_(old)
    assert p.requires_grad and p.is_leaf
    return p


def test_data_assignment_keeps_earlier_data_alias_values():
    ref, got = _param_into_buffer(torch), _param_into_buffer(st)
    np.testing.assert_array_equal(_np(got), _np(ref))
    np.testing.assert_array_equal(_np(got), np.arange(6.0).reshape(2, 3))
    # still a trainable leaf: a gradient reaches it
    (got * 2).sum().backward()
    np.testing.assert_array_equal(_np(got.grad), np.full((2, 3), 2.0))


def test_in_place_through_view_of_leaf_still_refused_under_grad():
    p = st.nn.Parameter(st.ones(4))
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        p[1:3].mul_(2)
    p.detach()[1:3].mul_(2)  # through a detached alias: allowed, as in torch
    np.testing.assert_array_equal(_np(p), [1.0, 2.0, 2.0, 1.0])


@pytest.mark.parametrize("lib", [torch, st], ids=["torch", "shim"])
def test_grad_assigned_to_a_view(lib):
    p = lib.nn.Parameter(lib.zeros(2, 3))
    shard = p.view(-1)[2:5]
    g = lib.tensor([1.0, 2.0, 3.0])
    shard.grad = g
    assert shard.grad is g and p.grad is None
    with pytest.raises(RuntimeError, match="size"):
        shard.grad = lib.zeros(2)
    shard.grad = None
    assert shard.grad is None


def test_elementwise_out():
    x = np.linspace(-2, 2, 12, dtype=np.float32).reshape(3, 4)
    for name, args in (("exp", (x,)), ("sub", (x, x[0])), ("mul", (x, 3.0)), ("div", (x, 2.0)), ("add", (x, x))):
        ref_out, got_out = torch.zeros(3, 4), st.zeros(3, 4)
        r = getattr(torch, name)(*[torch.tensor(a) if isinstance(a, np.ndarray) else a for a in args], out=ref_out)
        g = getattr(st, name)(*[st.tensor(a) if isinstance(a, np.ndarray) else a for a in args], out=got_out)
        assert r is ref_out and g is got_out, name
        np.testing.assert_allclose(_np(got_out), _np(ref_out), rtol=1e-6, err_msg=name)
    # in place into the input (cross_entropy's `torch.exp(logits, out=logits)`)
    t = st.tensor(x)
    st.exp(t, out=t)
    np.testing.assert_allclose(_np(t), np.exp(x), rtol=1e-6)
    with pytest.raises(NotImplementedError, match=r"torch.exp\(out=...\) with out of shape \(2,\)"):
        st.exp(st.tensor(x), out=st.zeros(2))
    with pytest.raises(TypeError, match="'out' must be Tensor"):
        st.exp(st.tensor(x), out=[1])


@pytest.mark.parametrize("lib", [torch, st], ids=["torch", "shim"])
def test_to_dense(lib):
    t = lib.arange(4.0)
    assert t.to_dense() is t
    assert t.to_dense(lib.float64).dtype == lib.float64


@pytest.mark.parametrize("lib", [torch, st], ids=["torch", "shim"])
def test_copy_from_a_buffer_view_into_a_parameter(lib):
    """megatron-core copies gathered buffer slices into parameters (`param.detach().copy_(flat[a:b].view(s))`);
    MindSpore's InplaceCopy rejects a view source, so the facade copies the view out first."""
    p = lib.nn.Parameter(lib.zeros(2, 3))
    q = lib.nn.Parameter(lib.zeros(6))
    flat = lib.arange(12.0).view(-1)
    p.detach().copy_(flat[3:9].view(2, 3))
    q.detach()[1:4].copy_(flat[3:6])
    np.testing.assert_array_equal(_np(p), np.arange(3.0, 9.0).reshape(2, 3))
    np.testing.assert_array_equal(_np(q), [0.0, 3.0, 4.0, 5.0, 0.0, 0.0])
    assert p.is_leaf and p.requires_grad


def test_element_size_matches_torch():
    names = ["float32", "float64", "float16", "bfloat16", "int8", "uint8", "int16", "int32", "int64", "bool",
             "complex64"]
    for name in names:
        assert st._utils._element_size(getattr(st, name)) == torch._utils._element_size(getattr(torch, name)), name
    with pytest.raises(RuntimeError, match="expected torch.dtype, but got <class 'str'>"):
        st._utils._element_size("float32")
    with pytest.raises(RuntimeError, match="expected torch.dtype, but got <class 'str'>"):
        torch._utils._element_size("float32")
