"""Autograd on the facade vs real torch: backward/grad semantics, grad modes, custom Functions, hooks,
checkpoint (recompute)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import shim.torch as st

BOTH = pytest.mark.parametrize("T", [torch, st], ids=["torch", "shim"])


def _np(t):
    return t.detach().float().numpy()


def _inputs(T, seed=0):
    g = np.random.default_rng(seed)
    w = T.tensor(g.standard_normal((3, 4)).astype(np.float32), requires_grad=True)
    x = T.tensor(g.standard_normal((2, 3)).astype(np.float32), requires_grad=True)
    return w, x


def _same(a, b, rtol=1e-5):
    np.testing.assert_allclose(_np(b), _np(a), rtol=rtol, atol=1e-6)


def test_backward_accumulates_and_retain_graph():
    res = {}
    for T in (torch, st):
        w, x = _inputs(T)
        y = T.tanh(x @ w).sum()
        y.backward(retain_graph=True)
        first = w.grad.clone()
        y.backward()                                   # second pass adds
        res[T] = (first, w.grad, x.grad)
        np.testing.assert_allclose(_np(w.grad), 2 * _np(first), rtol=1e-6)
    for a, b in zip(res[torch], res[st]):
        _same(a, b)


def test_backward_with_gradient_and_errors():
    for T in (torch, st):
        w, x = _inputs(T)
        y = x @ w
        with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar outputs"):
            y.backward()
        y.backward(T.ones_like(y) * 2)
        assert w.grad is not None
        with pytest.raises(RuntimeError, match="does not require grad"):
            T.ones(2).sum().backward()


def test_autograd_grad_matches_and_leaves_grad_untouched():
    res = {}
    for T in (torch, st):
        w, x = _inputs(T)
        y = (T.sigmoid(x @ w) ** 2).mean()
        gw, gx = T.autograd.grad(y, (w, x))
        assert w.grad is None and x.grad is None
        z = T.ones(3, requires_grad=True)
        with pytest.raises(RuntimeError, match="appears to not have been used in the graph"):
            T.autograd.grad((x @ w).sum(), (w, z))
        gz = T.autograd.grad((x @ w).sum(), (w, z), allow_unused=True)[1]
        assert gz is None
        res[T] = (gw, gx)
    for a, b in zip(res[torch], res[st]):
        _same(a, b)


def test_autograd_backward_function_with_inputs():
    for T in (torch, st):
        w, x = _inputs(T)
        T.autograd.backward([(x @ w).sum()], inputs=[w])
        assert w.grad is not None and x.grad is None


def test_grad_modes():
    for T in (torch, st):
        w, x = _inputs(T)
        assert T.is_grad_enabled()
        with T.no_grad():
            assert not T.is_grad_enabled()
            y = x @ w
            with T.enable_grad():
                assert T.is_grad_enabled() and (x * 2).requires_grad
        assert not y.requires_grad and T.is_grad_enabled()
        with T.set_grad_enabled(False):
            assert not (x * 2).requires_grad
        T.set_grad_enabled(False)
        assert not T.is_grad_enabled()
        T.set_grad_enabled(True)
        with T.inference_mode():
            assert not (x * 2).requires_grad

        @T.no_grad()
        def f(a):
            return a * 2

        @T.no_grad
        def g(a):
            return a * 2
        assert not f(x).requires_grad and not g(x).requires_grad and (x * 2).requires_grad


def test_requires_grad_flags_and_detach():
    for T in (torch, st):
        w, x = _inputs(T)
        y = x @ w
        assert y.requires_grad and not y.is_leaf and y.grad_fn is not None
        assert w.is_leaf and w.grad_fn is None
        d = y.detach()
        assert not d.requires_grad and d.is_leaf
        with pytest.raises(RuntimeError, match="only change requires_grad flags of leaf variables"):
            y.requires_grad_(False)
        i = T.arange(3)
        with pytest.raises(RuntimeError, match="floating point"):
            i.requires_grad_(True)
        assert not T.argmax(y, 1).requires_grad


def test_retain_grad_and_tensor_hooks():
    res = {}
    for T in (torch, st):
        w, x = _inputs(T)
        h = x @ w
        h.retain_grad()
        seen = []
        w.register_hook(lambda g: seen.append(g.clone()))
        handle = x.register_hook(lambda g: g * 10)          # replaces the gradient flowing to x
        (h * h).sum().backward()
        assert len(seen) == 1
        res[T] = (h.grad, w.grad, x.grad, seen[0])
        handle.remove()
    for a, b in zip(res[torch], res[st]):
        _same(a, b)


def test_post_accumulate_grad_hook_sees_accumulated_grad():
    for T in (torch, st):
        w, x = _inputs(T)
        seen = []
        w.register_post_accumulate_grad_hook(lambda p: seen.append(p.grad.clone()))
        (x @ w).sum().backward()
        (x @ w).sum().backward()
        assert len(seen) == 2
        np.testing.assert_allclose(_np(seen[1]), 2 * _np(seen[0]), rtol=1e-6)


def test_grad_fn_graph_structure():
    w = st.ones(3, requires_grad=True)
    y = (w * 2).sum()
    fn = y.grad_fn
    assert fn is not None and isinstance(fn.name(), str)
    nxt = fn.next_functions
    assert isinstance(nxt, tuple) and nxt[0][0] is not None
    acc = w.expand_as(w).grad_fn.next_functions[0][0]
    calls = []
    acc.register_hook(lambda *a: calls.append(w.grad.tolist()))
    y.backward()
    assert calls == [[2.0, 2.0, 2.0]]                         # fired after accumulation


# ---- custom autograd.Function ---------------------------------------------------------------------------


def _functions(T):
    class ScaledSquare(T.autograd.Function):
        @staticmethod
        def forward(ctx, x, scale, tag):
            ctx.save_for_backward(x)
            ctx.scale = scale
            ctx.tag = tag
            return x * x * scale, x.argmax()

        @staticmethod
        def backward(ctx, g, g_idx):
            (x,) = ctx.saved_tensors
            assert ctx.tag == "t"
            return g * 2 * x * ctx.scale, None, None

    class SetupCtx(T.autograd.Function):
        @staticmethod
        def forward(x, y):
            return x * y, x + y

        @staticmethod
        def setup_context(ctx, inputs, output):
            x, y = inputs
            ctx.save_for_backward(x, y)
            ctx.needs = ctx.needs_input_grad
            ctx.mark_non_differentiable(output[1])

        @staticmethod
        def backward(ctx, g, g2):
            x, y = ctx.saved_tensors
            return (g * y if ctx.needs_input_grad[0] else None), (g * x if ctx.needs_input_grad[1] else None)

    class NoMaterialize(T.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.set_materialize_grads(False)
            return x * 2, x * 3

        @staticmethod
        def backward(ctx, g1, g2):
            assert g2 is None
            return g1 * 2
    return ScaledSquare, SetupCtx, NoMaterialize


def test_custom_function_semantics():
    res = {}
    for T in (torch, st):
        ScaledSquare, SetupCtx, NoMaterialize = _functions(T)
        w, x = _inputs(T)
        y, idx = ScaledSquare.apply(w, 3.0, "t")
        assert not idx.requires_grad and str(idx.dtype) == "torch.int64"
        y.sum().backward()
        g1 = w.grad.clone()
        w.grad = None
        xd = x.detach()                                   # does not require grad
        p, s = SetupCtx.apply(w[:2, :3], xd)
        assert not s.requires_grad
        p.sum().backward()
        g2 = w.grad.clone()
        w.grad = None
        a, b = NoMaterialize.apply(w)
        a.sum().backward()
        res[T] = (y, g1, p, s, g2, w.grad)
    for a, b in zip(res[torch], res[st]):
        _same(a, b)
    # MindSpore flips its grad switch around a Function's forward; the facade's cached flag must follow
    from shim.torch.autograd.grad_mode import _GRAD
    assert st.is_grad_enabled() and _GRAD[0]
    a, b = st.ones(2, requires_grad=True), st.ones(2, requires_grad=True)
    (a + b).sum().backward()
    assert a.grad.tolist() == [1.0, 1.0]


def test_custom_function_backward_runs_without_recording():
    """torch runs a custom Function's backward with grad mode off; the facade's cached flag says so there too
    (its ops then take their non-recording paths: a large broadcast in-place mul is tiled, workaround "broadcast
    kernels"), and is back on after the backward. Values bit-identical to torch's."""
    from shim.torch.autograd.grad_mode import _GRAD
    rng = np.random.default_rng(5)
    a = rng.standard_normal((2, 64, 600)).astype(np.float32)
    res = {}
    for T in (torch, st):
        seen = []

        class Scale(T.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return x.sum(-1)

            @staticmethod
            def backward(ctx, g):
                seen.append(T.is_grad_enabled() if T is torch else (T.is_grad_enabled(), _GRAD[0]))
                (x,) = ctx.saved_tensors
                out = x.clone()
                out.mul_(g.unsqueeze(-1))           # [2, 64, 600] *= [2, 64, 1]: 76,800 elements
                return out

        x = T.tensor(a, requires_grad=True)
        # a hook running later in the pass (as megatron's DDP gradient hooks) does not record either
        x.register_hook(lambda g: seen.append(T.is_grad_enabled() if T is torch else (T.is_grad_enabled(), _GRAD[0])))
        (Scale.apply(x) * T.arange(64.0)).sum().backward()
        res[T] = (seen, x.grad.numpy())
    assert res[torch][0] == [False, False] and res[st][0] == [(False, False)] * 2
    assert np.array_equal(res[st][1], res[torch][1])
    assert st.is_grad_enabled() and _GRAD[0]


def test_masked_fill_large_broadcast_mask_equals_torch():
    """A mask broadcast over a large input (here a column mask over [1, 64, 2000], as a vocabulary cut) is tiled
    first (workaround "broadcast kernels"), while autograd records too: value and gradient equal torch's."""
    rng = np.random.default_rng(6)
    a = rng.standard_normal((1, 64, 2000)).astype(np.float32)
    res = {}
    for T in (torch, st):
        x = T.tensor(a, requires_grad=True)
        y = x.masked_fill(T.arange(2000) >= 1990, float("-inf"))
        (y[..., :1990] * T.tensor(a[..., 5:1995])).sum().backward()   # gradient: those values, 0 where filled
        z = T.tensor(a).masked_fill_(T.tensor([[True], [False]] * 32).reshape(64, 1).unsqueeze(0), 0.0)
        res[T] = (y.detach().numpy(), x.grad.numpy(), z.numpy())
    for g, w in zip(res[st], res[torch]):
        assert np.array_equal(g, w)


def test_boolean_mask_setitem_of_a_number_equals_torch():
    """t[mask] = number with a mask of t's shape (megatron's cross entropy, every step) runs as masked_fill: the
    values, a view's base, the dtype cast of the number and the gradient through it equal torch's."""
    rng = np.random.default_rng(7)
    a = rng.standard_normal((4, 6)).astype(np.float32)
    k = rng.standard_normal((4, 6)) > 0
    res = {}
    for T in (torch, st):
        i = T.arange(24).reshape(4, 6)
        i[T.tensor(k)] = 7.9                                  # int64 target: the number is cast (7)
        base = T.tensor(a)
        base[1:3][T.tensor(k[:2])] = T.tensor(-2.5)            # a view writes through to its base
        x = T.tensor(a, requires_grad=True)
        y = x * 3
        y[T.tensor(k)] = 0.0
        (y * T.tensor(a)).sum().backward()
        res[T] = (i.numpy(), base.numpy(), y.detach().numpy(), x.grad.numpy())
    for g, w in zip(res[st], res[torch]):
        assert g.dtype == w.dtype and np.array_equal(g, w)


def test_custom_function_keeps_bfloat16():
    ScaledSquare, _, _ = _functions(st)
    w = st.ones(2, 2, dtype=st.bfloat16, requires_grad=True)
    y, _ = ScaledSquare.apply(w, 1.5, "t")
    assert y.dtype == st.bfloat16
    y.sum().backward()
    assert w.grad.dtype == st.bfloat16 and w.grad.tolist() == [[3.0, 3.0], [3.0, 3.0]]


# ---- checkpoint ------------------------------------------------------------------------------------------


def test_checkpoint_recompute_matches_plain_backward():
    from shim.torch.utils.checkpoint import checkpoint
    w, x = _inputs(st)
    calls = []

    def block(inp, scale=1.0):
        calls.append(1)
        noise = st.rand(inp.shape[0], w.shape[1])          # replayed identically in the recompute
        return st.tanh(inp @ w) * noise * scale

    st.manual_seed(3)
    y = checkpoint(block, x, scale=2.0, use_reentrant=True)
    assert len(calls) == 1 and y.requires_grad
    y.sum().backward()
    assert len(calls) == 2                                 # recomputed in backward
    gw, gx = w.grad.clone(), x.grad.clone()
    w.grad = None
    x.grad = None
    st.manual_seed(3)
    y2 = block(x, scale=2.0)
    y2.sum().backward()
    _same(y, y2, rtol=0)
    _same(gw, w.grad)
    _same(gx, x.grad)


def test_variable_and_execution_engine():
    from shim.torch.autograd.variable import Variable
    w = st.ones(3, requires_grad=True)
    assert isinstance(w, Variable) and isinstance(st.zeros(1), st.autograd.Variable)
    out = (w * 4).sum()
    # megatron-core's pipeline schedules call the engine directly
    Variable._execution_engine.run_backward(tensors=(out,), grad_tensors=(st.ones(()),), keep_graph=False,
                                            create_graph=False, inputs=tuple(), allow_unreachable=True,
                                            accumulate_grad=True)
    assert w.grad.tolist() == [4.0, 4.0, 4.0] and st.is_grad_enabled()


def test_is_checkpoint_valid_inside_backward_passes():
    """`torch.autograd._is_checkpoint_valid()` (megatron's reentrant CheckpointFunction.backward asserts it):
    True outside backward and inside backward()/engine.run_backward without inputs, False inside grad() and
    backward(inputs=...); the same on both, and restored after each pass."""
    res = {}
    for T in (torch, st):
        seen = []

        class Probe(T.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                return x * 2

            @staticmethod
            def backward(ctx, g):
                seen.append(T.autograd._is_checkpoint_valid())
                return g * 2

        w, x = _inputs(T)
        T.autograd.backward(Probe.apply(x @ w).sum())
        T.autograd.grad(Probe.apply(x @ w).sum(), (w,))
        T.autograd.backward(Probe.apply(x @ w).sum(), inputs=[x])
        out = Probe.apply(x @ w).sum()
        T.autograd.Variable._execution_engine.run_backward(
            tensors=(out,), grad_tensors=(T.ones(()),), keep_graph=False, create_graph=False, inputs=(),
            allow_unreachable=True, accumulate_grad=True)
        res[T] = (seen, T.autograd._is_checkpoint_valid())
    assert res[st] == res[torch] == ([True, False, False, True], True)


def test_data_assignment_on_a_non_leaf_keeps_its_history():
    """megatron-core's pipeline schedules (`deallocate_output_tensor`, `custom_backward`): after a stage sends
    its output it sets `out.data = torch.empty((1,))` and later backpropagates from `out` with the full-shape
    gradient through the engine (no shape check); the last stage does the same to its scalar loss and then
    scales it (`loss * scale`) before the backward. torch keeps grad_fn across `.data`, so gradients reach the
    graph (the shim lost it: no gradient, the stage sent nothing and Megatron-LM's PP=2 run hung)."""
    res = {}
    for T in (torch, st):
        eng = T.autograd.Variable._execution_engine
        w, x = _inputs(T)
        out = T.tanh(x @ w)                                  # [2, 4], sent to the next stage
        with T.no_grad():                                    # .data is not an op: kept in every grad mode
            out.data = T.empty((1,))
        assert out.shape == (1,) and out.grad_fn is not None and out.requires_grad and not out.is_leaf
        g = T.tensor(np.arange(8, dtype=np.float32).reshape(2, 4) / 8)
        eng.run_backward(tensors=(out,), grad_tensors=(g,), keep_graph=False, create_graph=False, inputs=(),
                         allow_unreachable=True, accumulate_grad=True)
        first = (w.grad.clone(), x.grad.clone())
        twice = T.tanh(x @ w) * 3                            # deallocated twice (the interleaved schedule)
        twice.data = T.empty((1,))
        twice.data = T.empty((1,))
        eng.run_backward(tensors=(twice,), grad_tensors=(g,), keep_graph=False, create_graph=False, inputs=(),
                         allow_unreachable=True, accumulate_grad=True)
        second = (w.grad.clone(), x.grad.clone())
        loss = (x @ w).pow(2).sum()                          # 0-d loss
        loss.data = T.empty((1,))
        scaled = loss * 2.0                                  # computed after .data: still reaches the graph
        eng.run_backward(tensors=(scaled,), grad_tensors=(T.ones_like(scaled),), keep_graph=False,
                         create_graph=False, inputs=(), allow_unreachable=True, accumulate_grad=True)
        bad = x * 2
        bad.data = T.zeros(1, 3)
        with pytest.raises(RuntimeError, match=r"invalid gradient at index 0 - got \[4, 3\] but expected shape "
                                               r"compatible with \[2, 3\]"):
            eng.run_backward(tensors=(bad,), grad_tensors=(T.ones(4, 3),), keep_graph=False, create_graph=False,
                             inputs=(), allow_unreachable=True, accumulate_grad=True)
        res[T] = (*first, *second, w.grad, x.grad)
        assert T.is_grad_enabled()
    for a, b in zip(res[torch], res[st]):
        _same(a, b)


def test_custom_function_non_tensor_output():
    res = {}
    for T in (torch, st):
        class F(T.autograd.Function):
            @staticmethod
            def forward(ctx, x, n):
                return x * n, n + 1

            @staticmethod
            def backward(ctx, g, gn):
                return g * 3, None
        x = T.ones(2, requires_grad=True)
        y, k = F.apply(x, 3)
        assert k == 4 and isinstance(k, int)
        y.sum().backward()
        res[T] = (y, x.grad)
    for a, b in zip(res[torch], res[st]):
        _same(a, b)
