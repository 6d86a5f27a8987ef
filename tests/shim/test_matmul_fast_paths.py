"""The facade's fast paths for MindSpore CPU hot spots found by benchmarks/bench_megatron_shim.py --profile:
products with a transposed operand go to MatMul with its transpose flags (matmul, mm, `@`, F.linear), true
division goes to RealDiv. Each must give torch's values and gradients, and the same bits as the plain MindSpore
path it replaces (mint.matmul on the transposed view, mint.nn.functional.linear, `Tensor.__truediv__`)."""
from __future__ import annotations

import numpy as np
import pytest
import torch as T

import mindspore as ms
from mindspore import mint

from shim import torch as S
from shim.torch._tensor import unwrap

RNG = np.random.default_rng(11)
X3 = RNG.standard_normal((3, 5, 7)).astype(np.float32)
W = RNG.standard_normal((11, 7)).astype(np.float32)
G = RNG.standard_normal((15, 11)).astype(np.float32)
X2 = X3.reshape(15, 7)

CASES = {
    "3d @ w.t()": lambda m, x, w, g, x2: m.matmul(x, w.t()),
    "2d @ w.t()": lambda m, x, w, g, x2: x2 @ w.t(),
    "g.t() @ x2": lambda m, x, w, g, x2: g.t().matmul(x2),
    "mm(g.t(), x2.t().t())": lambda m, x, w, g, x2: m.mm(g.t(), x2.t().t()),
    "mm(w, x2.t())": lambda m, x, w, g, x2: m.mm(w, x2.t()),
    "g @ w (no transpose)": lambda m, x, w, g, x2: g.matmul(w),
    "linear no bias": lambda m, x, w, g, x2: m.nn.functional.linear(x, w),
    "linear 1-d input": lambda m, x, w, g, x2: m.nn.functional.linear(x2[0], w),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_transposed_products_match_torch_and_the_plain_path(name):
    f = CASES[name]
    ref = f(T, *(T.tensor(a) for a in (X3, W, G, X2))).numpy()
    got = f(S, *(S.tensor(a) for a in (X3, W, G, X2))).numpy()
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


def test_transposed_matmul_is_bit_identical_to_mint_matmul():
    x, w = S.tensor(X3), S.tensor(W)
    plain = mint.matmul(unwrap(x), mint.transpose(unwrap(w), 0, 1)).asnumpy()
    assert np.array_equal(S.matmul(x, w.t()).numpy(), plain)
    g, x2 = S.tensor(G), S.tensor(X2)
    plain = mint.matmul(mint.transpose(unwrap(g), 0, 1), unwrap(x2)).asnumpy()
    assert np.array_equal(g.t().matmul(x2).numpy(), plain)


def test_linear_with_bias_is_bit_identical_to_mint_linear_and_matches_torch_grads():
    b = RNG.standard_normal(11).astype(np.float32)
    sx, sw, sb = (S.tensor(a, requires_grad=True) for a in (X3, W, b))
    tx, tw, tb = (T.tensor(a, requires_grad=True) for a in (X3, W, b))
    out = S.nn.functional.linear(sx, sw, sb)
    plain = mint.nn.functional.linear(ms.Tensor(X3), ms.Tensor(W), ms.Tensor(b)).asnumpy()
    assert np.array_equal(out.detach().numpy(), plain)
    (out * out).sum().backward()
    tout = T.nn.functional.linear(tx, tw, tb)
    (tout * tout).sum().backward()
    for s, t in ((sx, tx), (sw, tw), (sb, tb)):
        np.testing.assert_allclose(s.grad.numpy(), t.grad.numpy(), rtol=1e-5, atol=1e-4)


def test_grads_through_transposed_matmul_match_torch():
    sx, sw = S.tensor(X3, requires_grad=True), S.tensor(W, requires_grad=True)
    tx, tw = T.tensor(X3, requires_grad=True), T.tensor(W, requires_grad=True)
    (S.matmul(sx, sw.t()) ** 2).sum().backward()
    (T.matmul(tx, tw.t()) ** 2).sum().backward()
    np.testing.assert_allclose(sw.grad.numpy(), tw.grad.numpy(), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(sx.grad.numpy(), tx.grad.numpy(), rtol=1e-5, atol=1e-4)


def test_transposed_matmul_shape_error_names_both_shapes():
    with pytest.raises(RuntimeError, match=r"mat1 and mat2 shapes cannot be multiplied \(15x7 and 6x11\)"):
        S.matmul(S.tensor(X3), S.tensor(W[:, :6]).t())
    with pytest.raises(RuntimeError, match=r"mat1 and mat2 shapes cannot be multiplied \(15x7 and 6x11\)"):
        T.matmul(T.tensor(X3), T.tensor(W[:, :6]).t())


@pytest.mark.parametrize("call", ["matmul", "mm", "@ on the left operand"])
def test_transposed_2d_shape_error_is_torchs(call):
    def run(m):
        a, b = m.tensor(X2[:2, :3]), m.tensor(W[:4, :5]).t()
        return {"matmul": lambda: m.matmul(a, b), "mm": lambda: m.mm(a, b),
                "@ on the left operand": lambda: b.t() @ m.tensor(W[:5, :2]).t()}[call]()

    with pytest.raises(RuntimeError) as ref:
        run(T)
    with pytest.raises(RuntimeError) as got:
        run(S)
    assert str(got.value) == str(ref.value) and "cannot be multiplied" in str(got.value)


def test_empty_inner_dimension_gives_torchs_zeros():
    lin_ref = T.nn.functional.linear(T.zeros(2, 3, 0), T.zeros(5, 0), T.arange(5.0))
    lin_got = S.nn.functional.linear(S.zeros(2, 3, 0), S.zeros(5, 0), S.arange(5.0))
    np.testing.assert_array_equal(lin_got.numpy(), lin_ref.numpy())
    mm_got = S.mm(S.zeros(4, 0), S.zeros(3, 0).t())
    np.testing.assert_array_equal(mm_got.numpy(), np.zeros((4, 3), np.float32))


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_true_division_matches_torch_and_plain_div_bits(dtype):
    a = (RNG.standard_normal(1000) * 10).astype(dtype)
    b = (RNG.standard_normal(1000) + 3).astype(dtype)
    sa, sb = S.tensor(a), S.tensor(b)
    for got, ref, plain in ((sa / sb, T.tensor(a) / T.tensor(b), unwrap(sa) / unwrap(sb)),
                            (sa / 0.7, T.tensor(a) / 0.7, unwrap(sa) / 0.7),
                            (S.div(sa, sb), T.div(T.tensor(a), T.tensor(b)), unwrap(sa) / unwrap(sb))):
        assert str(got.dtype) == str(ref.dtype)
        assert np.array_equal(got.numpy(), plain.asnumpy())
        np.testing.assert_allclose(got.numpy(), ref.numpy(), rtol=1e-3 if dtype == "float16" else 1e-6)
    r = 2.0 / sb
    np.testing.assert_allclose(r.numpy(), (2.0 / T.tensor(b)).numpy(), rtol=1e-3 if dtype == "float16" else 1e-6)


def test_division_grads_and_integer_division_match_torch():
    a, b = RNG.standard_normal(50).astype(np.float32), (RNG.standard_normal(50) + 3).astype(np.float32)
    sa, sb = S.tensor(a, requires_grad=True), S.tensor(b, requires_grad=True)
    ta, tb = T.tensor(a, requires_grad=True), T.tensor(b, requires_grad=True)
    (sa / sb).sum().backward()
    (ta / tb).sum().backward()
    np.testing.assert_allclose(sa.grad.numpy(), ta.grad.numpy(), rtol=1e-6)
    np.testing.assert_allclose(sb.grad.numpy(), tb.grad.numpy(), rtol=1e-6)
    got = S.tensor([1, 2, 7]) / S.tensor([2, 4, 2])
    assert got.dtype == S.float32 and got.tolist() == [0.5, 0.5, 3.5]


def test_transposed_operands_reach_matmul_with_transpose_flags(monkeypatch):
    from shim.torch._ops import linalg

    calls = []

    class Spy:
        def __init__(self, key, prim):
            self.key, self.prim = key, prim

        def __call__(self, a, b):
            calls.append(self.key)
            return self.prim(a, b)

    monkeypatch.setattr(linalg, "_MATMUL_T", {k: Spy(k, v) for k, v in linalg._MATMUL_T.items()})
    x, w, g, x2 = (S.tensor(a) for a in (X3, W, G, X2))
    S.matmul(x, w.t())
    g.t().matmul(x2)
    S.mm(w, x2.t())
    g.matmul(w)  # no transposed operand: the plain path
    assert calls == [(False, True), (True, False), (False, True)]
