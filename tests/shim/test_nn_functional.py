"""nn.functional on the facade vs real torch: forward and backward on fresh random inputs.

Each case builds the same computation in both libraries from the same NumPy inputs; the output and the
gradients of ``sum(output * R)`` (R a fixed random tensor) w.r.t. every float input are compared
(fp32: relative error ≤ 1e-5, i.e. max|a-b| / max|b|; bf16 ≤ 1e-2); dtypes and shapes must be equal.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import torch
import shim.torch as mt

FP32_RTOL = 1e-5
BF16_RTOL = 1e-2


def rel_err(a, b) -> float:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


def _to_np(t):
    t = t.detach()
    if str(t.dtype) == "torch.bfloat16":
        t = t.float()
    return t.cpu().numpy() if hasattr(t, "cpu") else t.numpy()


def run_case(fn, inputs, grad=True, dtype="float32", rtol=None, seed=0):
    """inputs: list of (ndarray, requires_grad) or non-array constants. Returns nothing; asserts parity."""
    rtol = rtol or (BF16_RTOL if dtype == "bfloat16" else FP32_RTOL)
    results = {}
    for name, lib in (("shim", mt), ("torch", torch)):
        args = []
        leaves = []
        for item in inputs:
            if isinstance(item, tuple) and isinstance(item[0], np.ndarray):
                arr, rg = item
                t = lib.tensor(arr)
                if arr.dtype.kind == "f" and dtype == "bfloat16":
                    t = t.to(lib.bfloat16)
                if rg:
                    t.requires_grad_(True)
                    leaves.append(t)
                args.append(t)
            else:
                args.append(item)
        out = fn(lib, *args)
        entry = {"out": _to_np(out), "dtype": str(out.dtype), "shape": tuple(out.shape)}
        if grad and leaves:
            r = np.random.default_rng(seed + 99).standard_normal(tuple(out.shape)).astype(np.float32)
            rt = lib.tensor(r).to(out.dtype)
            (out * rt).sum().backward()
            entry["grads"] = [None if leaf.grad is None else _to_np(leaf.grad) for leaf in leaves]
        results[name] = entry
    s, t = results["shim"], results["torch"]
    assert s["dtype"] == t["dtype"], (s["dtype"], t["dtype"])
    assert s["shape"] == t["shape"]
    err = rel_err(s["out"], t["out"])
    assert err <= rtol, f"forward rel err {err}"
    if "grads" in t:
        for i, (gs, gt) in enumerate(zip(s["grads"], t["grads"])):
            assert (gs is None) == (gt is None), f"grad {i} presence"
            if gt is not None:
                e = rel_err(gs, gt)
                assert e <= rtol, f"grad {i} rel err {e}"


rng = np.random.default_rng(1234)


def R(*shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def I(high, *shape):
    return rng.integers(0, high, size=shape).astype(np.int64)


CASES = {
    "linear": (lambda L, x, w, b: L.nn.functional.linear(x, w, b), [(R(2, 3, 8), True), (R(5, 8), True),
                                                                    (R(5), True)]),
    "linear_nobias": (lambda L, x, w: L.nn.functional.linear(x, w), [(R(4, 8), True), (R(6, 8), True)]),
    "embedding": (lambda L, i, w: L.nn.functional.embedding(i, w), [(I(10, 3, 4), False), (R(10, 6), True)]),
    "embedding_padding": (lambda L, i, w: L.nn.functional.embedding(i, w, padding_idx=2),
                          [(np.array([[2, 1, 2], [0, 2, 3]]), False), (R(5, 4), True)]),
    "softmax": (lambda L, x: L.nn.functional.softmax(x, dim=-1), [(R(3, 7, scale=3), True)]),
    "softmax_dim1": (lambda L, x: L.nn.functional.softmax(x, dim=1), [(R(2, 5, 3), True)]),
    "log_softmax": (lambda L, x: L.nn.functional.log_softmax(x, dim=-1), [(R(4, 9, scale=4), True)]),
    "silu": (lambda L, x: L.nn.functional.silu(x), [(R(3, 5, scale=3), True)]),
    "gelu": (lambda L, x: L.nn.functional.gelu(x), [(R(3, 5, scale=3), True)]),
    "gelu_tanh": (lambda L, x: L.nn.functional.gelu(x, approximate="tanh"), [(R(3, 5, scale=3), True)]),
    "relu": (lambda L, x: L.nn.functional.relu(x), [(R(4, 6), True)]),
    "sigmoid": (lambda L, x: L.nn.functional.sigmoid(x), [(R(4, 6), True)]),
    "tanh": (lambda L, x: L.nn.functional.tanh(x), [(R(4, 6), True)]),
    "softplus": (lambda L, x: L.nn.functional.softplus(x), [(R(4, 6, scale=10), True)]),
    "layer_norm": (lambda L, x, w, b: L.nn.functional.layer_norm(x, (8,), w, b, 1e-5),
                   [(R(2, 3, 8, scale=2), True), (R(8), True), (R(8), True)]),
    "layer_norm_2d_noaffine": (lambda L, x: L.nn.functional.layer_norm(x, (3, 4)), [(R(2, 3, 4), True)]),
    "rms_norm": (lambda L, x, w: L.nn.functional.rms_norm(x, (8,), w, 1e-6), [(R(2, 3, 8), True), (R(8), True)]),
    "rms_norm_default_eps": (lambda L, x: L.nn.functional.rms_norm(x, [6]), [(R(5, 6), True)]),
    "cross_entropy": (lambda L, x, t: L.nn.functional.cross_entropy(x, t), [(R(6, 11, scale=2), True),
                                                                           (I(11, 6), False)]),
    "cross_entropy_ignore": (lambda L, x, t: L.nn.functional.cross_entropy(x, t, ignore_index=-100),
                             [(R(6, 11), True), (np.array([1, -100, 3, -100, 10, 0]), False)]),
    "cross_entropy_sum": (lambda L, x, t: L.nn.functional.cross_entropy(x, t, reduction="sum", ignore_index=3),
                          [(R(6, 5), True), (np.array([3, 1, 3, 0, 4, 2]), False)]),
    "cross_entropy_none": (lambda L, x, t: L.nn.functional.cross_entropy(x, t, reduction="none"),
                           [(R(6, 5), True), (np.array([3, 1, -100, 0, 4, 2]), False)]),
    "cross_entropy_smoothing": (lambda L, x, t: L.nn.functional.cross_entropy(x, t, label_smoothing=0.1),
                                [(R(6, 7), True), (np.array([3, 1, -100, 0, 4, 2]), False)]),
    "cross_entropy_smoothing_none": (
        lambda L, x, t: L.nn.functional.cross_entropy(x, t, label_smoothing=0.2, reduction="none"),
        [(R(6, 7), True), (np.array([3, 1, -100, 0, 4, 2]), False)]),
    "cross_entropy_weight_smoothing": (
        lambda L, x, t, w: L.nn.functional.cross_entropy(x, t, weight=w, label_smoothing=0.1),
        [(R(6, 4), True), (np.array([3, 1, -100, 0, 2, 2]), False),
         (np.abs(R(4)) + 0.1, False)]),
    "cross_entropy_nd": (lambda L, x, t: L.nn.functional.cross_entropy(x, t),
                         [(R(2, 5, 3, 4), True), (I(5, 2, 3, 4), False)]),
    "cross_entropy_probs": (lambda L, x, t: L.nn.functional.cross_entropy(x, t, label_smoothing=0.05),
                            [(R(4, 6), True), (np.abs(R(4, 6)) / 3, False)]),
    "nll_loss": (lambda L, x, t: L.nn.functional.nll_loss(L.nn.functional.log_softmax(x, -1), t),
                 [(R(5, 4), True), (np.array([0, 3, -100, 1, 1]), False)]),
    "mse_loss": (lambda L, x, y: L.nn.functional.mse_loss(x, y), [(R(3, 4), True), (R(3, 4), True)]),
    "sdpa": (lambda L, q, k, v: L.nn.functional.scaled_dot_product_attention(q, k, v),
             [(R(2, 3, 5, 8), True), (R(2, 3, 6, 8), True), (R(2, 3, 6, 4), True)]),
    "sdpa_causal": (lambda L, q, k, v: L.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True),
                    [(R(2, 2, 7, 8), True), (R(2, 2, 7, 8), True), (R(2, 2, 7, 8), True)]),
    "sdpa_bool_mask": (lambda L, q, k, v, m: L.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=m),
                       [(R(1, 2, 4, 8), True), (R(1, 2, 5, 8), True), (R(1, 2, 5, 8), True),
                        (np.tril(np.ones((4, 5), dtype=bool), k=1), False)]),
    "sdpa_float_mask_scale": (
        lambda L, q, k, v, m: L.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=m, scale=0.3),
        [(R(2, 2, 4, 8), True), (R(2, 2, 4, 8), True), (R(2, 2, 4, 8), True), (R(2, 1, 4, 4), False)]),
    "sdpa_gqa": (lambda L, q, k, v: L.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True,
                                                                               enable_gqa=True),
                 [(R(2, 6, 5, 8), True), (R(2, 2, 5, 8), True), (R(2, 2, 5, 8), True)]),
    "pad": (lambda L, x: L.nn.functional.pad(x, (1, 2, 0, 1), value=0.5), [(R(2, 3, 4), True)]),
    "pad_crop": (lambda L, x: L.nn.functional.pad(x, (-1, 2)), [(R(2, 5), True)]),
    "one_hot": (lambda L, t: L.nn.functional.one_hot(t, 6), [(I(6, 3, 4), False)]),
    "one_hot_infer": (lambda L, t: L.nn.functional.one_hot(t), [(np.array([0, 4, 2]), False)]),
    "glu": (lambda L, x: L.nn.functional.glu(x, -1), [(R(3, 8), True)]),
    "normalize": (lambda L, x: L.nn.functional.normalize(x, dim=-1), [(R(4, 5), True)]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_functional_parity_fp32(name):
    fn, inputs = CASES[name]
    run_case(fn, inputs)


BF16_CASES = ["linear", "softmax", "silu", "rms_norm", "cross_entropy_ignore", "sdpa_causal", "embedding",
              "layer_norm", "gelu"]


@pytest.mark.parametrize("name", BF16_CASES)
def test_functional_parity_bf16(name):
    fn, inputs = CASES[name]
    run_case(fn, inputs, dtype="bfloat16")


def test_cross_entropy_all_ignored_is_nan_like_torch():
    x = mt.tensor(R(3, 4))
    t = mt.tensor(np.array([-100, -100, -100]))
    assert math.isnan(float(mt.nn.functional.cross_entropy(x, t)))


def test_dropout_statistics_and_gradient_mask():
    mt.manual_seed(0)
    x = mt.ones(200, 100, requires_grad=True)
    y = mt.nn.functional.dropout(x, p=0.3, training=True)
    y.sum().backward()
    out = y.detach().numpy()
    kept = out != 0
    assert 0.65 < kept.mean() < 0.75
    np.testing.assert_allclose(out[kept], 1 / 0.7, rtol=1e-6)
    np.testing.assert_allclose(x.grad.numpy(), out)  # grad is the same mask and scale
    z = mt.nn.functional.dropout(x, p=0.3, training=False)
    np.testing.assert_array_equal(z.detach().numpy(), x.detach().numpy())
    with pytest.raises(ValueError, match="between 0 and 1"):
        mt.nn.functional.dropout(x, p=1.5)


def test_errors_name_the_problem():
    F = mt.nn.functional
    with pytest.raises(RuntimeError, match="cannot be multiplied"):
        F.linear(mt.zeros(2, 3), mt.zeros(4, 5))
    with pytest.raises(RuntimeError, match="indices"):
        F.embedding(mt.zeros(2), mt.zeros(4, 5))
    with pytest.raises(NotImplementedError, match="mode='bogus'"):  # reflect etc. are served (test_opinfo.py)
        F.pad(mt.zeros(2, 3), (1, 1), mode="bogus")
    with pytest.raises(ValueError, match="label_smoothing"):
        F.cross_entropy(mt.zeros(2, 3), mt.tensor([0, 1]), label_smoothing=2.0)
    with pytest.raises(ValueError, match="batch_size"):
        F.cross_entropy(mt.zeros(2, 3), mt.tensor([0, 1, 2]))
    with pytest.raises(RuntimeError, match="enable_gqa"):
        F.scaled_dot_product_attention(mt.zeros(1, 4, 2, 8), mt.zeros(1, 2, 2, 8), mt.zeros(1, 2, 2, 8))
    with pytest.raises(RuntimeError, match="is_causal"):
        F.scaled_dot_product_attention(mt.zeros(1, 1, 2, 8), mt.zeros(1, 1, 2, 8), mt.zeros(1, 1, 2, 8),
                                       attn_mask=mt.ones(2, 2, dtype=mt.bool), is_causal=True)
    with pytest.raises(RuntimeError, match="normalized_shape"):
        F.layer_norm(mt.zeros(2, 3), (4,))
    with pytest.raises(RuntimeError, match="Class values"):
        F.one_hot(mt.tensor([0, 5]), 3)


def test_softmax_with_an_all_minus_inf_row_equals_torch():
    """workaround "Softmax -inf row": MindSpore's CPU softmax zeroed such a row and every later row; the facade gives
    torch's NaN row and leaves the others right (torch.softmax, F.softmax, Tensor.softmax, SDPA with a fully masked
    query row)."""
    x = np.array([[1.0, 2.0, 3.0], [-np.inf] * 3, [1.0, 1.0, 1.0], [0.5, -np.inf, 2.0]], np.float32)
    for name, t_fn, m_fn in (
            ("torch.softmax", lambda a: torch.softmax(a, -1), lambda a: mt.softmax(a, -1)),
            ("F.softmax", lambda a: torch.nn.functional.softmax(a, dim=-1),
             lambda a: mt.nn.functional.softmax(a, dim=-1)),
            ("Tensor.softmax", lambda a: a.softmax(-1), lambda a: a.softmax(-1))):
        want = t_fn(torch.tensor(x)).numpy()
        got = _to_np(m_fn(mt.tensor(x)))
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7, equal_nan=True, err_msg=name)
        assert np.isnan(got[1]).all() and np.isfinite(got[[0, 2, 3]]).all(), name
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((1, 2, 3, 4)).astype(np.float32) for _ in range(3))
    mask = np.ones((3, 3), bool)
    mask[1] = False                                    # query row 1 sees no key
    want = torch.nn.functional.scaled_dot_product_attention(
        torch.tensor(q), torch.tensor(k), torch.tensor(v), attn_mask=torch.tensor(mask)).numpy()
    got = _to_np(mt.nn.functional.scaled_dot_product_attention(
        mt.tensor(q), mt.tensor(k), mt.tensor(v), attn_mask=mt.tensor(mask)))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, equal_nan=True)
