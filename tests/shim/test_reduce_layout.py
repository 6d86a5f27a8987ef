"""Three CPU speed workarounds of shim/torch/_workarounds.py.

"reduce layout": from 65,536 elements up, sum / mean / norm (and the
facade's NaN check in max) reduce a contiguous input through its collapsed view (neighbouring reduced / kept
dimensions merged, size-1 dimensions dropped). Each case must give real torch's values, shapes and gradients,
for every dim / keepdim form torch takes, on inputs above the threshold (where the collapsed path runs) and
beside it on a non-contiguous input (where it must not).

"host norm": the 2-norm of a large float32 tensor recording no gradient is summed on the host in float64.

"thread count": `OMP_NUM_THREADS` sizes MindSpore's CPU kernel thread pool at import; `torch.set_num_threads`
cannot resize it afterwards and says so."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch as T

from shim import torch as S
from shim.torch._ops import pointwise

RNG = np.random.default_rng(5)
# above pointwise._COLLAPSE_MIN (65,536): [1, 8, 3, 4096] has 98,304 elements, [2, 1, 3, 128, 96] 73,728
BIG4 = RNG.standard_normal((1, 8, 3, 4096)).astype(np.float32)
BIG5 = RNG.standard_normal((2, 1, 3, 128, 96)).astype(np.float32)

DIMS4 = [None, -1, 0, 1, (2, 3), (1, 2), (0, 3), (1, 3), (0, 1, 2, 3), ()]
DIMS5 = [None, -1, 1, (3, 4), (0, 2), (0, 1, 3), (2, 3, 4)]


def test_the_cases_take_the_collapsed_path():
    assert BIG4.size >= pointwise._COLLAPSE_MIN and BIG5.size >= pointwise._COLLAPSE_MIN


def _cases():
    for op in ("sum", "mean", "norm"):
        for name, arr, dims in (("4d", BIG4, DIMS4), ("5d", BIG5, DIMS5)):
            for d in dims:
                if op == "norm" and d == ():
                    continue  # not a form torch.norm takes
                for keepdim in (False, True):
                    yield pytest.param(op, arr, d, keepdim, id=f"{op}-{name}-dim{d}-keep{keepdim}")


@pytest.mark.parametrize("op,arr,dim,keepdim", list(_cases()))
def test_reductions_match_torch(op, arr, dim, keepdim):
    def run(m):
        x = m.tensor(arr)
        if op == "norm":
            return m.norm(x, p=2, dim=dim, keepdim=keepdim) if dim is not None else m.norm(x)
        if dim is None:
            return getattr(m, op)(x)
        return getattr(m, op)(x, dim=dim, keepdim=keepdim)
    ref, got = run(T).numpy(), run(S).numpy()
    assert got.shape == ref.shape and got.dtype == ref.dtype
    np.testing.assert_allclose(got, ref, rtol=2e-5, atol=2e-4 if op == "sum" else 1e-5)


def test_non_contiguous_input_matches_torch():
    # a transposed view: the collapsed path needs a contiguous input, so the plain kernel runs
    for m in (T, S):
        x = m.tensor(BIG4).transpose(1, 3)
        assert not x.is_contiguous()
    ref = T.tensor(BIG4).transpose(1, 3).sum((1, 2))
    got = S.tensor(BIG4).transpose(1, 3).sum((1, 2))
    np.testing.assert_allclose(got.numpy(), ref.numpy(), rtol=2e-5, atol=2e-4)


def test_gradients_flow_through_the_collapsed_view():
    grads = []
    for m in (T, S):
        x = m.tensor(BIG4, requires_grad=True)
        w = m.tensor(np.linspace(-1, 1, 8 * 3, dtype=np.float32).reshape(8, 3))
        y = (x * x).sum(-1, keepdim=False)  # [1, 8, 3]
        ((y * w).mean() + x.norm() + x.mean((1, 2)).sum()).backward()
        grads.append(x.grad.numpy())
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-5, atol=1e-7)


def test_host_norm_is_float64_accurate_and_keeps_the_autograd_path():
    # workaround "host norm": the 2-norm of all elements of a large float32 tensor recording no gradient
    big = RNG.standard_normal(1_000_003).astype(np.float32) * 3
    exact = np.sqrt(np.sum(big.astype(np.float64) ** 2))
    x = S.tensor(big)
    for got in (x.norm(), S.norm(x, p=2), S.norm(x.view(1000003, 1), dim=(0, 1)), x.norm(p="fro")):
        assert got.dtype == S.float32 and got.shape == ()
        assert abs(float(got) - exact) / exact < 2.5e-7  # the float32 result's own rounding: ~2 ulp
    assert S.norm(x.view(1000003, 1), dim=(0, 1), keepdim=True).shape == (1, 1)
    with_nan = big.copy()
    with_nan[123_456] = np.nan
    assert np.isnan(float(S.tensor(with_nan).norm()))
    # recording: MindSpore's path, with torch's gradient x / |x|
    xs, xt = S.tensor(big[:70_000], requires_grad=True), T.tensor(big[:70_000], requires_grad=True)
    xs.norm().backward()
    xt.norm().backward()
    np.testing.assert_allclose(xs.grad.numpy(), xt.grad.numpy(), rtol=1e-4, atol=1e-8)


def test_max_nan_check_on_a_large_3d_tensor():
    # the facade's NaN check for max reduces the last dimension of the collapsed 2-D view
    a = BIG4.copy()
    a[0, 5, 1, 17] = np.nan
    ref_v, ref_i = T.max(T.tensor(a), -1)
    got_v, got_i = S.max(S.tensor(a), -1)
    np.testing.assert_array_equal(np.isnan(got_v.numpy()), np.isnan(ref_v.numpy()))
    np.testing.assert_array_equal(got_i.numpy(), ref_i.numpy())
    np.testing.assert_allclose(got_v.numpy(), ref_v.numpy(), equal_nan=True)


THREADS_SCRIPT = """
import warnings
warnings.simplefilter("always")
import torch
from mindspore._c_expression import RuntimeConf
print("configured", RuntimeConf.get_instance().is_op_threads_num_configured(), torch.get_num_threads(), flush=True)
with warnings.catch_warnings(record=True) as w:
    torch.set_num_threads(torch.get_num_threads())  # the current count: nothing to say
    torch.set_num_threads(3)
    torch.set_num_threads(4)  # warned once
print("warnings", len(w), str(w[0].message) if w else "", flush=True)
print("after", torch.get_num_threads(), flush=True)
"""


def _threads_run(value):
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    env.update(SHIM_BACKEND="mindspore", PYTHONWARNINGS="default")
    if value is not None:
        env["OMP_NUM_THREADS"] = value
    proc = subprocess.run([sys.executable, "-c", THREADS_SCRIPT], env=env, capture_output=True, text=True,
                          timeout=300, cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout, proc.stderr


def test_omp_num_threads_sizes_mindspores_pool_and_set_num_threads_says_it_cannot_resize():
    out, _ = _threads_run("1")
    assert "configured True 1" in out
    assert "warnings 1 torch.set_num_threads(3): on MindSpore the CPU kernel thread pool is sized once" in out
    assert "after 1" in out  # unchanged: the pool keeps its size
    out, err = _threads_run("many")
    assert "configured False" in out and "OMP_NUM_THREADS='many' is not a positive integer" in err
