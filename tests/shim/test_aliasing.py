"""torch's aliasing semantics on the facade: views write through to their base and see its changes, including
megatron-core's DDP pattern (parameter gradients accumulated into views of one flat buffer by hooks on the
grad accumulator). Each scenario is written once against a torch module and run on real torch and the shim."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import shim.torch as st

BOTH = pytest.mark.parametrize("T", [torch, st], ids=["torch", "shim"])


def _np(t):
    return t.detach().float().numpy() if hasattr(t, "detach") else np.asarray(t)


def _same(fn):
    """Run scenario fn(T) on both backends; compare every returned value (fp32 rel 1e-5)."""
    ref, got = fn(torch), fn(st)
    assert len(ref) == len(got)
    for i, (r, g) in enumerate(zip(ref, got)):
        np.testing.assert_allclose(_np(g), _np(r), rtol=1e-5, atol=1e-6, err_msg=f"value {i}")
    return got


def test_inplace_through_views_reaches_base_and_back():
    def scenario(T):
        base = T.arange(24, dtype=T.float32).reshape(4, 6)
        row = base[1]
        col = base[:, 2]
        blk = base.narrow(1, 3, 2)
        tr = base.t()
        sub = base[1:3, ::2]
        row.add_(100)               # contiguous slice view
        col.mul_(-1)                # strided view
        blk.fill_(7)                # narrow
        tr[5, 0] = 0.5              # transpose view: base[0, 5]
        sub.sub_(1000)              # stepped 2-D view
        base[3].zero_()             # write on the base after views exist
        flat = base.view(-1)
        flat[0] = 42                # view of the whole base
        return base, row, col, blk, tr, sub, flat
    _same(scenario)


def test_view_chains_and_versions():
    def scenario(T):
        x = T.zeros(2, 3, 4)
        v = x.view(6, 4)[2:5].view(3, 2, 2).transpose(1, 2)
        v[1].add_(T.ones(2, 2))
        x.unsqueeze(0).squeeze(0)[1, 0].fill_(3)
        e = x.detach()
        e[0, 0, 0] = -5             # detach() shares storage
        d = x.data
        d[1, 2, 3] = 9              # .data shares storage
        return x, v, e, d
    got = _same(scenario)
    # version counters advance with in-place writes (shared by views)
    x = st.zeros(3)
    v = x[1:]
    v0 = x._version
    v.add_(1)
    assert x._version == v._version == v0 + 1


def test_as_strided_view():
    def scenario(T):
        x = T.arange(12, dtype=T.float32)
        w = x.as_strided((3, 3), (3, 1), 1)     # overlapping rows are fine for reads
        r = w.clone()
        y = x.as_strided((2, 2), (4, 2), 2)
        y.mul_(10)
        return x, r, y
    _same(scenario)


def test_split_chunk_unbind_are_views():
    def scenario(T):
        x = T.zeros(6, 2)
        a, b, c = x.chunk(3)
        a.add_(1)
        p, q = x.split([2, 4])
        q[0].fill_(5)
        u = x.unbind(1)
        u[1].mul_(2).add_(0.5)
        return x, a, b, c, p, q
    _same(scenario)


def test_reshape_views_only_when_possible():
    x = st.zeros(2, 3)
    x.reshape(6)[0] = 1
    assert x[0, 0].item() == 1.0                      # contiguous reshape is a view
    t = x.t()
    r = t.reshape(6)
    r[0] = -1
    assert x[0, 0].item() == 1.0 and not t.is_contiguous()  # non-contiguous reshape copies (as torch)
    c = t.contiguous()
    c[0, 0] = 99
    assert x[0, 0].item() == 1.0 and t[0, 0].item() == 1.0


def test_inplace_on_view_under_autograd_gives_torch_gradients():
    def scenario(T):
        w = T.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
        h = w * 2
        h[:, 1] = w[:, 0] * w[:, 2]        # write into a view of a non-leaf
        h[0].mul_(3)
        loss = (h * h).sum()
        loss.backward()
        return h, w.grad
    _same(scenario)


def test_leaf_inplace_rules():
    for T in (torch, st):
        w = T.ones(3, requires_grad=True)
        with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
            w.add_(1)
        with T.no_grad():
            w.add_(1)                       # allowed without recording; stays a leaf requiring grad
        assert w.is_leaf and w.requires_grad and w.tolist() == [2.0, 2.0, 2.0]


def _ddp_pattern(T):
    """megatron-core DDP's gradient path: params' main_grad are views into one fp32 buffer; a hook on each
    param's grad accumulator adds param.grad into main_grad and frees param.grad; one reduction on the buffer."""
    gen = np.random.default_rng(7)
    params = [T.tensor(gen.standard_normal(s).astype(np.float32), requires_grad=True)
              for s in [(4, 3), (3,), (3, 2)]]
    numel = sum(p.numel() for p in params)
    buffer = T.zeros(numel, dtype=T.float32)
    offset = 0
    grad_accs = []
    fired = []
    for p in params:
        p.main_grad = buffer[offset:offset + p.numel()].view(p.shape)
        offset += p.numel()

        def make_hook(param):
            def hook(*unused):
                fired.append(param.grad is not None)
                if param.grad is not None:
                    param.main_grad.add_(param.grad.data)
                param.grad = None
            return hook
        acc = p.expand_as(p).grad_fn.next_functions[0][0]
        acc.register_hook(make_hook(p))
        grad_accs.append(acc)
    x = T.tensor(gen.standard_normal((5, 4)).astype(np.float32))
    for step in range(2):                        # two micro-batches accumulate into main_grad
        h = T.tanh(x @ params[0] + params[1])
        out = (h @ params[2]).sum() * (step + 1)
        out.backward()
    buffer.div_(2.0)                             # stands in for the data-parallel all-reduce (average)
    assert all(fired) and len(fired) == 6
    assert all(p.grad is None for p in params)
    return [buffer] + [p.main_grad for p in params]


def test_megatron_ddp_main_grad_buffer_pattern():
    _same(_ddp_pattern)


def test_grad_assignment_and_identity():
    w = st.ones(3, requires_grad=True)
    (w * 2).sum().backward()
    g = w.grad
    assert g is w.grad                          # stable object, like torch
    g.mul_(0.5)                                 # in place on .grad reaches the leaf's gradient
    assert w.grad.tolist() == [1.0, 1.0, 1.0]
    w.grad = None
    assert w.grad is None
    mine = st.full((3,), 4.0)
    w.grad = mine
    assert w.grad is mine
    (w * 3).sum().backward()                    # accumulates onto the assigned gradient
    assert w.grad.tolist() == [7.0, 7.0, 7.0]
    with pytest.raises(RuntimeError, match="different size"):
        w.grad = st.zeros(2)


def test_param_data_assignment_keeps_leaf():
    w = st.zeros(2, 2, requires_grad=True)
    w.data = st.ones(2, 2)
    assert w.is_leaf and w.requires_grad and w.sum().item() == 4.0
    (w * w).sum().backward()
    assert w.grad.tolist() == [[2.0, 2.0], [2.0, 2.0]]


def test_large_base_in_place_write_path():
    # bases above _tensor._FUNCTIONAL_WRITE_MAX elements are written in place by slice assignment
    from shim.torch import _tensor
    n = _tensor._FUNCTIONAL_WRITE_MAX + 64

    def scenario(T):
        flat = T.zeros(n)
        flat[10:20].add_(T.ones(10))                  # 1-D: row-run fast path
        grid = T.zeros(n // 64, 64)
        grid[3:5].fill_(2.0)                          # whole rows
        grid[7, 5:9].fill_(3.0)                       # contiguous run inside a row (view(-1) path)
        grid[:, 1].fill_(-1.0)                        # strided view (scatter path)
        return flat[:32], grid[:8], grid[-2:, :3], flat.sum(), grid.sum()
    _same(scenario)


def test_zero_dim_tensor_views_as_one_element():
    # pretrain_gpt.py's loss_func: `loss.clone().detach().view(1)` on a 0-d loss (torch's computeStride: strides 1)
    for lib in (torch, st):
        loss = lib.sum(lib.arange(6.0).reshape(2, 3).view(-1) * lib.ones(6))
        v = loss.clone().detach().view(1)
        assert tuple(v.shape) == (1,) and v.stride() == (1,) and v.tolist() == [15.0]
        assert loss.view(1, 1).stride() == (1, 1) and loss.view(-1).stride() == (1,) and loss.view([]).stride() == ()
        w = loss.view(1)
        w[0] = 2.0  # a view: writes reach the 0-d base
        assert loss.item() == 2.0
