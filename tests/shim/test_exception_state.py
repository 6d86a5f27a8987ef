"""Exceptions leave no state behind (issue 11 item 3).

MindSpore's PyNative executor resets its resources when an op raises, which clears its `grad_flag`: without the
facade re-asserting it, every later op would silently record no gradient while `torch.is_grad_enabled()` still
says True. Each test here makes facade ops fail in several ways (MindSpore shape checks, kernel errors, facade
argument errors, a custom Function's forward/backward, inside grad-mode and autocast regions) and then checks one
piece of state the facade relies on, against real torch where torch has the same state: the grad flag
(recording), torch's grad mode (`enable_grad`), the autocast state, synchronous dispatch, the random generator.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

import shim.torch as st


def _cumsum_0d(T):
    # The repro was `torch.cumsum(torch.tensor(2.0), 0)`, which the facade now computes (as torch does), so
    # the same MindSpore failure is raised directly: CumSum's rank check on a 0-d MindSpore tensor, an op failing
    # inside MindSpore (which clears PyNative's grad flag) between facade ops. Shim only.
    import mindspore as ms
    from mindspore import ops
    ops.cumsum(ms.Tensor(2.0, ms.float32), 0).asnumpy()


def _matmul_mismatch(T):
    T.ones(2, 3) @ T.ones(2, 3)                      # MindSpore MatMul shape check


def _linear_mismatch(T):
    T.nn.functional.linear(T.ones(2, 3), T.ones(4, 5))


def _bad_view(T):
    T.ones(2, 3).view(4)                             # facade argument check


def _add_mismatch_grad(T):
    T.ones(3, requires_grad=True) + T.ones(4)        # broadcast failure while recording


def _index_out_of_range(T):
    T.ones(3)[5]


def _custom_forward(T):
    class Boom(T.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            raise ValueError("boom in forward")

        @staticmethod
        def backward(ctx, g):
            return g
    Boom.apply(T.ones(3, requires_grad=True))


def _custom_backward(T):
    class Boom(T.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1

        @staticmethod
        def backward(ctx, g):
            raise ValueError("boom in backward")
    Boom.apply(T.ones(3, requires_grad=True)).sum().backward()


def _inside_no_grad(T):
    with T.no_grad():
        _matmul_mismatch(T)


FAILURES = [_cumsum_0d, _matmul_mismatch, _linear_mismatch, _bad_view, _add_mismatch_grad, _index_out_of_range,
            _custom_forward, _custom_backward, _inside_no_grad]
FAIL_IDS = [f.__name__.lstrip("_") for f in FAILURES]
BOTH_FAIL = FAILURES[1:]                             # the ones real torch raises on too
BOTH_IDS = FAIL_IDS[1:]


def _fail(T, failure):
    with pytest.raises(Exception):
        failure(T)


def _train_step(T):
    """A tiny recorded computation: y = tanh(x @ w) summed; returns (requires_grad of y, w.grad)."""
    w = T.tensor(np.arange(12, dtype=np.float32).reshape(3, 4) / 10, requires_grad=True)
    x = T.tensor(np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3))
    y = T.tanh(x @ w).sum()
    rg = y.requires_grad
    y.backward()
    return rg, w.grad.numpy()


@pytest.mark.parametrize("failure", FAILURES, ids=FAIL_IDS)
def test_grad_flag_survives(failure):
    """After a failing op, the next ops record gradients (the repro of issue 11: requires_grad was False)."""
    _fail(st, failure)
    assert (st.ones(3, requires_grad=True) * 2).requires_grad
    _fail(st, failure)
    rg, g = _train_step(st)
    ref_rg, ref_g = _train_step(torch)
    a, b = st.ones(3, requires_grad=True), st.full((3,), 2.0, requires_grad=True)
    (a + b * a).sum().backward()                     # add of two recorded operands (the facade's Sub path)
    assert a.grad.tolist() == [3.0, 3.0, 3.0] and b.grad.tolist() == [1.0, 1.0, 1.0]
    assert rg and ref_rg
    np.testing.assert_allclose(g, ref_g, rtol=1e-6, atol=1e-7)


def test_graph_recorded_before_the_error_still_backpropagates():
    for T in (torch, st):
        x = T.ones(3, requires_grad=True)
        y = x * 2
        _fail(T, _matmul_mismatch if T is torch else _cumsum_0d)
        (y * 3).sum().backward()
        assert x.grad.tolist() == [6.0, 6.0, 6.0]


@pytest.mark.parametrize("failure", BOTH_FAIL, ids=BOTH_IDS)
@pytest.mark.parametrize("mode", [True, False], ids=["grad_on", "grad_off"])
def test_grad_mode_survives(failure, mode):
    """torch's grad mode (MindSpore's enable_grad) is what it was before the error, inside and outside
    set_grad_enabled regions, and ops honour it."""
    for T in (torch, st):
        with T.set_grad_enabled(mode):
            _fail(T, failure)
            assert T.is_grad_enabled() is mode
            assert (T.ones(3, requires_grad=True) * 2).requires_grad is mode
            if T is st:
                from shim.torch.autograd import grad_mode
                assert grad_mode._GRAD[0] is mode     # the facade's cached copy of the mode agrees
        assert T.is_grad_enabled() is True
        assert (T.ones(3, requires_grad=True) * 2).requires_grad


def test_no_grad_region_exited_by_an_error_restores_the_mode():
    for T in (torch, st):
        with pytest.raises(Exception):
            with T.no_grad():
                _matmul_mismatch(T)
        assert T.is_grad_enabled()
        assert (T.ones(3, requires_grad=True) * 2).requires_grad


@pytest.mark.parametrize("failure", [_matmul_mismatch, _linear_mismatch, _index_out_of_range],
                         ids=["matmul", "linear", "index"])
def test_autocast_state_survives(failure):
    """An op failing inside an autocast region (also one the policy casts) leaves the region working and the
    autocast state (enabled, dtype, the facade's per-op suspension) as torch's."""
    from shim.torch.amp import autocast_mode
    for T in (torch, st):
        a, b = T.ones(2, 3), T.ones(3, 4)
        with T.autocast("cpu", dtype=T.bfloat16):
            _fail(T, failure)
            assert T.is_autocast_enabled("cpu")
            assert T.get_autocast_dtype("cpu") == T.bfloat16
            assert (a @ b).dtype == T.bfloat16
            assert T.nn.functional.linear(a, b.t()).dtype == T.bfloat16
        assert not T.is_autocast_enabled("cpu")
        assert (a @ b).dtype == T.float32
    assert autocast_mode._state.suspended is False
    assert autocast_mode._state.nesting == 0


@pytest.mark.parametrize("failure", FAILURES, ids=FAIL_IDS)
def test_sync_dispatch_survives(failure):
    """Synchronous dispatch (the CPU default, shim/torch/_dispatch.py) stays on after an error: MindSpore still
    reports launch_blocking and a later failing op still raises at its own call."""
    from mindspore._c_expression import RuntimeConf
    assert st._dispatch.SYNC is True
    _fail(st, failure)
    assert RuntimeConf.get_instance().is_launch_blocking()
    x = st.arange(6, dtype=st.float32).reshape(2, 3)
    assert ((x @ x.t()) / 2).tolist() == [[2.5, 7.0], [7.0, 25.0]]
    with pytest.raises(Exception):
        _matmul_mismatch(st)
    assert (x * 2).sum().item() == 30.0


def _bad_randint(T):
    T.randint(5, 2, (3,))


def _bad_multinomial(T):
    T.multinomial(T.tensor([0.5, -1.0, 0.5]), 1)


def _bad_normal(T):
    T.empty(20).normal_(0.0, -1.0)


def _bad_uniform(T):
    T.empty(20).uniform_(2.0, 1.0)


RANDOM_FAILURES = [_bad_randint, _bad_multinomial, _bad_normal, _bad_uniform]


@pytest.mark.parametrize("failure", RANDOM_FAILURES + BOTH_FAIL,
                         ids=[f.__name__.lstrip("_") for f in RANDOM_FAILURES] + BOTH_IDS)
def test_rng_state_survives(failure):
    """A failing op (random or not) draws nothing: the generator state is unchanged and the next draws are real
    torch's (the facade generates torch's CPU streams, tests/shim/test_random_streams.py)."""
    draws = {}
    for T in (torch, st):
        T.manual_seed(21)
        T.randn(3)                                   # leaves a cached normal value in the state
        before = T.get_rng_state().numpy().copy()
        _fail(T, failure)
        assert np.array_equal(T.get_rng_state().numpy(), before)
        draws[T] = (T.randn(40).numpy(), T.rand(5).numpy(), T.randint(0, 9, (6,)).numpy())
    for a, b in zip(draws[torch], draws[st]):
        assert np.array_equal(a, b)


def test_rng_state_survives_a_mindspore_error():
    st.manual_seed(4)
    before = st.get_rng_state().numpy().copy()
    _fail(st, _cumsum_0d)
    assert np.array_equal(st.get_rng_state().numpy(), before)
