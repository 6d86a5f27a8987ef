"""torch.autocast on the shim against real torch.

Per op of the policy table (shim/torch/amp/_policy.py): under autocast the shim's output dtype equals real
torch's on the same inputs, and values agree within 1e-2 (norm-relative). CPU policy: real torch with
``device_type="cpu"``. CUDA policy: real torch's AutocastCUDA kernels run on FakeTensor "cuda" tensors (no GPU
needed; dtypes only), values compared with real torch's float32 CPU result. Also: nesting, disabled regions,
the decorator, the state functions, custom_fwd/custom_bwd, gradients of float32 parameters, a small model's
loss, thread-locality, and the cost of the wrappers when autocast is off.
"""
from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest

import torch

import shim.torch as st  # noqa: E402
from shim.torch.amp import _policy as P  # noqa: E402
from shim.torch.amp import autocast_mode as AM  # noqa: E402

_RNG = np.random.default_rng(0)
# input kinds: (shape, dtype name, values)
_ARRAYS = {
    "A": _RNG.standard_normal((4, 8)).astype(np.float32),
    "B": _RNG.standard_normal((8, 5)).astype(np.float32),
    "C": _RNG.standard_normal((4, 5)).astype(np.float32),
    "v8": _RNG.standard_normal(8).astype(np.float32),
    "v4": _RNG.standard_normal(4).astype(np.float32),
    "b3": _RNG.standard_normal((3, 4, 8)).astype(np.float32),
    "c3": _RNG.standard_normal((3, 8, 5)).astype(np.float32),
    "o3": _RNG.standard_normal((3, 4, 5)).astype(np.float32),
    "q": _RNG.standard_normal((2, 3, 6, 8)).astype(np.float32),
    "P": (_RNG.random((4, 8)) + 0.5).astype(np.float32),  # positive
    "U": (_RNG.random((4, 8)) * 1.6 - 0.8).astype(np.float32),  # inside (-1, 1)
    "W": _RNG.standard_normal((5, 8)).astype(np.float32),
    "bias": _RNG.standard_normal(5).astype(np.float32),
    "g8": (_RNG.random(8) + 0.5).astype(np.float32),
    "t": np.array([1, 0, 7, 3], np.int64),
    "t5": np.array([1, 0, 4, 3], np.int64),
    "i": np.array([[1, 2, 3], [4, 5, 6]], np.int64),
}


def _make(lib, spec, device):
    """Tensor for spec "name" (float32), "name:bf16"/"name:f16"/"name:f64" or the int arrays."""
    name, _, dt = spec.partition(":")
    arr = _ARRAYS[name]
    t = lib.tensor(arr, device=device) if device == "cpu" or lib is st else None
    if t is None:  # real torch "cuda": a FakeTensor (created inside the fake mode by the caller)
        kind = torch.int64 if arr.dtype == np.int64 else torch.float32
        t = torch.empty(arr.shape, dtype=kind, device="cuda")
    conv = {"bf16": lib.bfloat16, "f16": lib.float16, "f64": lib.float64, "": None}[dt]
    return t.to(conv) if conv is not None else t


# (case id, input specs, fn(lib, *tensors)); the policy name each case exercises is its id's first word.
_CASES = [
    ("mm", ["A", "B"], lambda L, a, b: L.mm(a, b)),
    ("matmul operator", ["A", "B"], lambda L, a, b: a @ b),
    ("matmul method", ["b3", "c3"], lambda L, a, b: a.matmul(b)),
    ("bmm", ["b3", "c3"], lambda L, a, b: L.bmm(a, b)),
    ("baddbmm", ["o3", "b3", "c3"], lambda L, c, a, b: L.baddbmm(c, a, b)),
    ("addmm", ["C", "A", "B"], lambda L, c, a, b: L.addmm(c, a, b)),
    ("addmm bf16-input", ["C:bf16", "A", "B"], lambda L, c, a, b: c.addmm(a, b)),
    ("addmv", ["v4", "A", "v8"], lambda L, c, a, b: L.addmv(c, a, b)),
    ("mv", ["A", "v8"], lambda L, a, b: L.mv(a, b)),
    ("dot", ["v8", "v8:bf16"], lambda L, a, b: L.dot(a, b)),
    ("einsum", ["A", "B"], lambda L, a, b: L.einsum("ij,jk->ik", a, b)),
    ("inner", ["A", "W"], lambda L, a, b: L.inner(a, b)),
    ("linear", ["A", "W", "bias"], lambda L, x, w, b: L.nn.functional.linear(x, w, b)),
    ("scaled_dot_product_attention", ["q", "q", "q"],
     lambda L, q, k, v: L.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)),
    ("softmax", ["A:bf16"], lambda L, a: L.softmax(a, -1)),
    ("softmax functional", ["A:bf16"], lambda L, a: L.nn.functional.softmax(a, dim=-1)),
    ("softmax method fp32", ["A"], lambda L, a: a.softmax(-1)),
    ("softmax explicit-dtype", ["A:bf16"], lambda L, a: L.softmax(a, -1, dtype=L.bfloat16)),
    ("log_softmax", ["A:bf16"], lambda L, a: L.nn.functional.log_softmax(a, dim=-1)),
    ("cross_entropy", ["A:bf16", "t"], lambda L, a, t: L.nn.functional.cross_entropy(a, t)),
    ("cross_entropy mm-logits", ["A", "B", "t5"], lambda L, a, b, t: L.nn.functional.cross_entropy(a @ b, t)),
    ("nll_loss", ["A:bf16", "t"], lambda L, a, t: L.nn.functional.nll_loss(a, t)),
    ("mse_loss", ["A:bf16", "A"], lambda L, a, b: L.nn.functional.mse_loss(a, b)),
    ("l1_loss", ["A:bf16", "P:bf16"], lambda L, a, b: L.nn.functional.l1_loss(a, b)),
    ("layer_norm", ["A:bf16"], lambda L, a: L.nn.functional.layer_norm(a, (8,))),
    ("rms_norm", ["A:bf16", "g8:bf16"], lambda L, a, g: L.nn.functional.rms_norm(a, (8,), g, 1e-6)),
    ("softplus", ["A:bf16"], lambda L, a: L.nn.functional.softplus(a)),
    ("normalize", ["A:bf16"], lambda L, a: L.nn.functional.normalize(a, dim=-1)),
    ("exp", ["A:bf16"], lambda L, a: L.exp(a)),
    ("exp method", ["A:bf16"], lambda L, a: a.exp()),
    ("log", ["P:bf16"], lambda L, a: L.log(a)),
    ("log1p", ["P:bf16"], lambda L, a: a.log1p()),
    ("log2", ["P:bf16"], lambda L, a: L.log2(a)),
    ("log10", ["P:bf16"], lambda L, a: L.log10(a)),
    ("expm1", ["U:bf16"], lambda L, a: L.expm1(a)),
    ("rsqrt", ["P:bf16"], lambda L, a: L.rsqrt(a)),
    ("reciprocal", ["P:bf16"], lambda L, a: L.reciprocal(a)),
    ("acos", ["U:bf16"], lambda L, a: L.acos(a)),
    ("asin", ["U:bf16"], lambda L, a: L.asin(a)),
    ("cosh", ["U:bf16"], lambda L, a: L.cosh(a)),
    ("sinh", ["U:bf16"], lambda L, a: L.sinh(a)),
    ("tan", ["U:bf16"], lambda L, a: L.tan(a)),
    ("erfinv", ["U:bf16"], lambda L, a: L.erfinv(a)),
    ("pow tensor-scalar", ["P:bf16"], lambda L, a: a ** 2),
    ("pow scalar-tensor", ["U:bf16"], lambda L, a: 2 ** a),
    ("pow tensor-tensor", ["P:bf16", "U:bf16"], lambda L, a, b: L.pow(a, b)),
    ("sum", ["A:bf16"], lambda L, a: L.sum(a)),
    ("sum dim", ["A:bf16"], lambda L, a: a.sum(-1)),
    ("sum int", ["i"], lambda L, a: a.sum()),
    ("prod", ["U:bf16"], lambda L, a: a.prod(-1)),
    ("cumsum", ["A:bf16"], lambda L, a: L.cumsum(a, 1)),
    ("cumprod", ["U:bf16"], lambda L, a: a.cumprod(1)),
    ("logsumexp", ["A:bf16"], lambda L, a: L.logsumexp(a, -1)),
    ("norm", ["A:bf16"], lambda L, a: a.norm()),
    ("dist", ["A:bf16", "U:bf16"], lambda L, a, b: L.dist(a, b)),
    ("cat mixed", ["A:bf16", "A"], lambda L, a, b: L.cat([a, b])),
    ("cat low", ["A:bf16", "U:bf16"], lambda L, a, b: L.cat([a, b], 1)),
    ("cat f16-bf16", ["A:f16", "U:bf16"], lambda L, a, b: L.cat([a, b])),
    ("stack mixed", ["A:bf16", "A"], lambda L, a, b: L.stack([a, b])),
    ("addcmul", ["A", "U:bf16", "P:bf16"], lambda L, a, b, c: L.addcmul(a, b, c, value=0.5)),
    ("addcmul low", ["A:bf16", "U:bf16", "P:bf16"], lambda L, a, b, c: a.addcmul(b, c)),
    ("addcdiv", ["A:bf16", "U:bf16", "P"], lambda L, a, b, c: L.addcdiv(a, b, c)),
    ("atan2", ["A:bf16", "U"], lambda L, a, b: L.atan2(a, b)),
    ("bilinear", ["A", "A", "W"], lambda L, a, b, w: L.nn.functional.bilinear(
        a, b, w.reshape(5, 8, 1).expand(5, 8, 8).contiguous())),
    # not in any list: run in their inputs' dtypes
    ("relu", ["A:bf16"], lambda L, a: L.relu(a)),
    ("gelu", ["A:bf16"], lambda L, a: L.nn.functional.gelu(a)),
    ("silu", ["A:bf16"], lambda L, a: L.nn.functional.silu(a)),
    ("mean", ["A:bf16"], lambda L, a: a.mean()),
    ("add", ["A:bf16", "A"], lambda L, a, b: a + b),
    ("mul", ["A", "A"], lambda L, a, b: a * b),
    # float64 is never cast
    ("mm float64", ["A:f64", "B:f64"], lambda L, a, b: L.mm(a, b)),
    ("exp float64", ["A:f64"], lambda L, a: L.exp(a)),
]

# facade gaps found by this sweep (not autocast's): Log10, AcosExt, AsinExt have no MindSpore CPU kernel;
# F.bilinear is not
# implemented. Their policy entries are still wrapped; the cases run once the facade has the ops.
_FACADE_GAPS = {"log10", "bilinear", "acos", "asin"}
_CASES = [c for c in _CASES if c[0] not in _FACADE_GAPS]


def _torch_cpu(fn, specs, dtype):
    args = [_make(torch, s, "cpu") for s in specs]
    with torch.autocast("cpu", dtype=dtype):
        return fn(torch, *args)


def _torch_cuda_dtype(fn, specs, dtype):
    """Real torch's CUDA autocast result dtype: AutocastCUDA kernels on FakeTensor cuda tensors."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode(allow_non_fake_inputs=True):
        args = [_make(torch, s, "cuda") for s in specs]
        prev, prev_dt = torch.is_autocast_enabled("cuda"), torch.get_autocast_dtype("cuda")
        torch.set_autocast_enabled("cuda", True)
        torch.set_autocast_dtype("cuda", dtype)
        try:
            return fn(torch, *args).dtype
        finally:
            torch.set_autocast_enabled("cuda", prev)
            torch.set_autocast_dtype("cuda", prev_dt)


def _torch_fp32_value(fn, specs):
    """The float32 computation (low-precision inputs upcast, float64 kept) without autocast."""
    args = [_make(torch, s, "cpu") for s in specs]
    return fn(torch, *[a.float() if a.dtype in (torch.bfloat16, torch.float16) else a for a in args])


def _shim(fn, specs, device, dtype):
    args = [_make(st, s, device) for s in specs]
    with st.autocast(device, dtype=dtype):
        return fn(st, *args)


def _rel_err(got, ref) -> float:
    g = np.asarray(got.float().detach().cpu().numpy() if hasattr(got, "detach") else got, np.float64)
    r = np.asarray(ref.float().detach().numpy(), np.float64)
    assert g.shape == r.shape
    return float(np.linalg.norm(g - r) / max(np.linalg.norm(r), 1e-30))


def _dtype_name(d) -> str:
    return str(d).replace("torch.", "")


@pytest.mark.parametrize("dtype_name", ["bfloat16", "float16"])
def test_cpu_policy_matches_real_torch(dtype_name):
    mismatches = []
    for case, specs, fn in _CASES:
        try:
            ref = _torch_cpu(fn, specs, getattr(torch, dtype_name))
        except RuntimeError as exc:  # torch refuses these inputs: so must the shim
            with pytest.raises(Exception):
                _shim(fn, specs, "cpu", getattr(st, dtype_name))
            print(f"{case}: torch raises {str(exc)[:60]!r}")
            continue
        try:
            got = _shim(fn, specs, "cpu", getattr(st, dtype_name))
            got.float().numpy()  # MindSpore dispatch is asynchronous: kernel errors surface on read
        except Exception as exc:  # noqa: BLE001  (collected and reported below)
            mismatches.append(f"{case}: shim raised {type(exc).__name__}: {str(exc)[:200]}")
            continue
        if _dtype_name(got.dtype) != _dtype_name(ref.dtype):
            mismatches.append(f"{case}: shim {got.dtype} torch {ref.dtype}")
            continue
        err = _rel_err(got, ref)
        if not err <= 1e-2:
            mismatches.append(f"{case}: relative error {err:.3g}")
    assert not mismatches, mismatches


@pytest.mark.parametrize("dtype_name", ["bfloat16", "float16"])
def test_cuda_policy_matches_real_torch(dtype_name):
    mismatches = []
    for case, specs, fn in _CASES:
        try:
            ref_dtype = _torch_cuda_dtype(fn, specs, getattr(torch, dtype_name))
        except RuntimeError as exc:  # torch refuses these inputs: so must the shim
            with pytest.raises(Exception):
                _shim(fn, specs, "cuda", getattr(st, dtype_name)).float().cpu().numpy()
            print(f"{case}: torch raises {str(exc)[:60]!r}")
            continue
        try:
            got = _shim(fn, specs, "cuda", getattr(st, dtype_name))
            got.float().cpu().numpy()  # MindSpore dispatch is asynchronous: kernel errors surface on read
        except Exception as exc:  # noqa: BLE001  (collected and reported below)
            mismatches.append(f"{case}: shim raised {type(exc).__name__}: {str(exc)[:200]}")
            continue
        if _dtype_name(got.dtype) != _dtype_name(ref_dtype):
            mismatches.append(f"{case}: shim {got.dtype} torch {ref_dtype}")
            continue
        ref = _torch_fp32_value(fn, specs)  # float32 (or the inputs' dtypes) without autocast
        tol = 2e-2 if "float16" in str(got.dtype) and "float32" not in str(ref.dtype) else 1e-2
        err = _rel_err(got, ref)
        if not err <= tol:
            mismatches.append(f"{case}: relative error {err:.3g}")
    assert not mismatches, mismatches


def test_policy_table_covers_the_dispatcher_lists():
    """Every facade op the table names on CPU/CUDA has a kernel in torch's AutocastCPU/AutocastCUDA table,
    except the documented composites."""
    composites = {"cpu": {"einsum", "tensordot", "inner", "chain_matmul", "multi_dot", "grid_sample",
                          "vecdot", "concat", "concatenate", "inv", "inv_ex", "cholesky_ex", "eig", "eigh",
                          "eigvals", "eigvalsh", "householder_product", "lstsq", "matrix_rank", "solve",
                          "svdvals", "tensorinv", "tensorsolve", "cond", "conv_transpose2d",
                          "conv_transpose3d", "ctc_loss"},
                  "cuda": {"cross_entropy", "normalize", "inner", "interpolate", "upsample",
                           "upsample_nearest", "upsample_bilinear", "vecdot", "multi_dot", "vector_norm",
                           "matrix_norm", "norm", "grid_sample", "conv_transpose2d", "conv_transpose3d",
                           "frobenius_norm"}}
    key = {"cpu": "AutocastCPU:", "cuda": "AutocastCUDA:"}
    aten = {"cross_entropy": "cross_entropy_loss", "grid_sample": "grid_sampler"}
    for device, table in P.POLICY.items():
        missing = []
        for name in table:
            if name in composites[device]:
                continue
            found = False
            for overload in ("", ".int", ".input", ".Tensor_Tensor", ".Tensor", ".dim_IntList"):
                try:
                    dump = torch._C._dispatch_dump_table(f"aten::{aten.get(name, name)}{overload}")
                except RuntimeError:
                    continue
                line = next((ln for ln in dump.splitlines() if ln.startswith(key[device])), "")
                if line and "fallthrough" not in line:
                    found = True
                    break
            if not found:
                missing.append(name)
        assert not missing, (device, missing)


def test_wrapped_places_and_module_attribute_dispatch():
    applied = set(AM.apply_policy())
    for place in ("torch.mm", "torch.Tensor.__matmul__", "torch.nn.functional.linear", "torch.softmax",
                  "torch.Tensor.softmax", "torch.nn.functional.cross_entropy", "torch.cat"):
        assert place in applied
    assert AM.apply_policy() is AM.apply_policy()  # idempotent
    lin = st.nn.Linear(8, 5)  # nn.Linear calls F.linear through the module attribute
    x = st.tensor(_ARRAYS["A"])
    with st.autocast("cpu"):
        y = lin(x)
    assert y.dtype == st.bfloat16 and lin.weight.dtype == st.float32
    assert lin(x).dtype == st.float32


def test_nesting_disabled_regions_and_state_functions():
    a, b = st.tensor(_ARRAYS["A"]), st.tensor(_ARRAYS["B"])
    assert not st.is_autocast_enabled() and not st.is_autocast_enabled("cpu")
    assert st.get_autocast_dtype("cuda") == st.float16 and st.get_autocast_dtype("cpu") == st.bfloat16
    assert st.get_autocast_gpu_dtype() == st.float16 and st.get_autocast_cpu_dtype() == st.bfloat16
    with st.autocast("cpu"):
        assert st.is_autocast_enabled("cpu") and st.is_autocast_cpu_enabled() and not st.is_autocast_enabled()
        assert st.mm(a, b).dtype == st.bfloat16
        with st.autocast("cpu", dtype=st.float16):
            assert st.mm(a, b).dtype == st.float16 and st.get_autocast_dtype("cpu") == st.float16
            with st.autocast("cpu", enabled=False):
                assert not st.is_autocast_enabled("cpu") and st.mm(a, b).dtype == st.float32
                assert st.mm(a.bfloat16(), b.bfloat16()).dtype == st.bfloat16
            assert st.mm(a, b).dtype == st.float16
        assert st.get_autocast_dtype("cpu") == st.bfloat16 and st.mm(a, b).dtype == st.bfloat16
        # out= calls are not autocast (torch has no autocast kernel for .out overloads); stand-in op
        seen = AM._wrap(lambda x, y, out=None: (x.dtype, y.dtype), "mm")
        assert seen(a, b, out=st.empty(4, 5)) == (st.float32, st.float32)
        assert seen(a, b) == (st.bfloat16, st.bfloat16)
        # a cpu region does not touch cuda tensors, and vice versa
        assert st.mm(a.cuda(), b.cuda()).dtype == st.float32
    assert not st.is_autocast_enabled("cpu") and st.mm(a, b).dtype == st.float32
    with st.autocast("npu", dtype=st.bfloat16):  # npu is the cuda device type
        assert st.is_autocast_enabled("cuda") and st.get_autocast_dtype("npu") == st.bfloat16
        assert st.mm(a.cuda(), b.cuda()).dtype == st.bfloat16 and st.mm(a, b).dtype == st.float32
    # an exception inside restores the outer state
    with pytest.raises(ZeroDivisionError):
        with st.autocast("cuda"):
            1 / 0
    assert not st.is_autocast_enabled("cuda")
    # legacy setters, nesting counter
    st.set_autocast_enabled("cpu", True)
    assert st.is_autocast_enabled("cpu")
    st.set_autocast_cpu_enabled(False)
    assert not st.is_autocast_enabled("cpu")
    assert st.autocast_increment_nesting() == 1 and st.autocast_decrement_nesting() == 0
    with st.autocast("cpu", cache_enabled=False):
        assert not st.is_autocast_cache_enabled()
    assert st.is_autocast_cache_enabled()
    assert st.amp.autocast is st.autocast and st.amp.is_autocast_available("cuda")
    assert not st.amp.is_autocast_available("xpu")
    # errors and warnings as torch
    with pytest.raises(ValueError, match="device_type"):
        st.autocast(3)
    with pytest.raises(NotImplementedError, match="xpu"):
        st.autocast("xpu")
    with pytest.warns(UserWarning, match="CPU Autocast only supports"):
        off = st.autocast("cpu", dtype=st.float32)
    with off:
        assert not st.is_autocast_enabled("cpu")
    with pytest.raises(TypeError, match="requires a callable"):
        st.autocast("cpu")(3)


def test_deprecated_spellings_and_decorator():
    a, b = st.tensor(_ARRAYS["A"]), st.tensor(_ARRAYS["B"])
    with pytest.warns(FutureWarning):
        ctx = st.cuda.amp.autocast()
    assert isinstance(ctx, st.autocast) and ctx.device == "cuda" and ctx.fast_dtype == st.float16
    with ctx:
        assert st.mm(a.cuda(), b.cuda()).dtype == st.float16
    with pytest.warns(FutureWarning):
        cpu_ctx = st.cpu.amp.autocast(dtype=st.bfloat16)
    with cpu_ctx:
        assert (a @ b).dtype == st.bfloat16

    @st.autocast("cpu")
    def low(x, y):
        assert st.is_autocast_enabled("cpu")
        return x @ y

    @st.autocast("cpu", enabled=False)
    def full(x, y):
        return x @ y

    assert low.__name__ == "low"
    assert low(a, b).dtype == st.bfloat16 and not st.is_autocast_enabled("cpu")
    with st.autocast("cpu"):
        assert full(a, b).dtype == st.float32 and st.is_autocast_enabled("cpu")
    assert st.cpu.is_available() and st.cpu.device_count() == 1


def _custom_fn(lib):
    class Square(lib.autograd.Function):
        @staticmethod
        @lib.amp.custom_fwd(device_type="cpu", cast_inputs=lib.float32)
        def forward(ctx, x, w):
            ctx.save_for_backward(x, w)
            ctx.seen = (x.dtype, w.dtype, lib.is_autocast_enabled("cpu"))
            return x @ w

        @staticmethod
        @lib.amp.custom_bwd(device_type="cpu")
        def backward(ctx, g):
            x, w = ctx.saved_tensors
            ctx.seen_bwd = lib.is_autocast_enabled("cpu")
            return g @ w.t(), x.t() @ g

    class Plain(lib.autograd.Function):
        @staticmethod
        @lib.amp.custom_fwd(device_type="cpu")
        def forward(ctx, x, w):
            ctx.seen = (x.dtype, lib.is_autocast_enabled("cpu"))
            return x @ w.t()

        @staticmethod
        @lib.amp.custom_bwd(device_type="cpu")
        def backward(ctx, g):
            ctx.seen_bwd = (lib.is_autocast_enabled("cpu"), lib.get_autocast_dtype("cpu"))
            return g, g

    return Square, Plain


def test_custom_fwd_bwd_under_autocast_match_torch():
    seen = {}
    for lib in (torch, st):
        Square, Plain = _custom_fn(lib)
        x = lib.tensor(_ARRAYS["A"]).to(lib.bfloat16).requires_grad_(True)
        w = lib.tensor(_ARRAYS["B"], requires_grad=True)
        with lib.autocast("cpu", dtype=lib.float16):
            out = Square.apply(x, w)
            ctx = out.grad_fn
        out.sum().backward()
        with lib.autocast("cpu"):
            a = lib.tensor(_ARRAYS["A"], requires_grad=True)
            out2 = Plain.apply(a, a)
        out2.grad_fn  # noqa: B018
        seen[lib.__name__] = (str(out.dtype), str(x.grad.dtype), str(w.grad.dtype), str(out2.dtype),
                              np.asarray(w.grad.float().numpy()))
        del ctx
    t, s = seen["torch"], seen["shim.torch"]
    assert t[:4] == s[:4] == ("torch.float32", "torch.bfloat16", "torch.float32", "torch.bfloat16")
    np.testing.assert_allclose(s[4], t[4], rtol=1e-2, atol=1e-2)


def test_backward_through_autocast_keeps_param_dtypes():
    grads = {}
    for lib in (torch, st):
        w = lib.tensor(_ARRAYS["W"], requires_grad=True)  # fp32 parameter
        b = lib.tensor(_ARRAYS["bias"], requires_grad=True)
        g = lib.tensor(_ARRAYS["g8"]).to(lib.bfloat16).requires_grad_(True)  # bf16 parameter
        x = lib.tensor(_ARRAYS["A"])
        with lib.autocast("cpu"):
            h = lib.nn.functional.linear(x * g, w, b)
            loss = lib.nn.functional.cross_entropy(h, lib.tensor(_ARRAYS["t5"]))
        assert str(h.dtype) == "torch.bfloat16" and str(loss.dtype) == "torch.float32"
        loss.backward()
        grads[lib.__name__] = {k: (str(p.grad.dtype), p.grad.float().numpy()) for k, p in
                               (("w", w), ("b", b), ("g", g))}
    for k in ("w", "b", "g"):
        assert grads["shim.torch"][k][0] == grads["torch"][k][0]
        ref = grads["torch"][k][1]
        assert np.linalg.norm(grads["shim.torch"][k][1] - ref) <= 2e-2 * np.linalg.norm(ref), k
    assert grads["shim.torch"]["w"][0] == "torch.float32" and grads["shim.torch"]["g"][0] == "torch.bfloat16"


def test_small_model_loss_under_bf16_autocast_matches_torch():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((16, 32)).astype(np.float32)
    y = rng.integers(0, 10, 16)
    w1 = (rng.standard_normal((64, 32)) * 0.2).astype(np.float32)
    w2 = (rng.standard_normal((10, 64)) * 0.2).astype(np.float32)
    losses, grads = {}, {}
    for lib in (torch, st):
        p1, p2 = lib.tensor(w1, requires_grad=True), lib.tensor(w2, requires_grad=True)
        with lib.autocast("cpu", dtype=lib.bfloat16):
            h = lib.nn.functional.linear(lib.tensor(x), p1).relu()
            probs = lib.softmax(lib.nn.functional.linear(h, p2), -1)
            loss = lib.nn.functional.cross_entropy(lib.log(probs.float()), lib.tensor(y))
        loss.backward()
        losses[lib.__name__] = float(loss.detach())
        grads[lib.__name__] = (str(p1.grad.dtype), p1.grad.numpy())
    assert abs(losses["shim.torch"] - losses["torch"]) <= 1e-2 * abs(losses["torch"])
    assert grads["shim.torch"][0] == grads["torch"][0] == "torch.float32"
    ref = grads["torch"][1]
    assert np.linalg.norm(grads["shim.torch"][1] - ref) <= 2e-2 * np.linalg.norm(ref)


def test_binary_cross_entropy_is_refused_under_cuda_autocast_like_torch():
    """torch's CUDA autocast refuses binary_cross_entropy (CPU autocast runs it in float32). The facade has no
    F.binary_cross_entropy yet, so the wrapper is exercised on a stand-in op of that name."""
    p = st.tensor(_ARRAYS["U"]).abs()
    bce = AM._wrap(lambda x, y: x * y, "binary_cross_entropy")
    with st.autocast("cuda"):
        with pytest.raises(RuntimeError, match="unsafe to autocast"):
            bce(p.cuda(), p.cuda())
        assert bce(p, p).dtype == st.float32  # cpu tensors: the cuda policy does not apply
    with st.autocast("cpu"):
        assert bce(p.bfloat16(), p.bfloat16()).dtype == st.float32  # cpu: float32 policy
    with torch.autocast("cpu"):
        t = torch.tensor(_ARRAYS["U"]).abs().bfloat16()
        assert torch.nn.functional.binary_cross_entropy(t, t).dtype == torch.float32
    assert bce(p.cuda(), p.cuda()).dtype == st.float32


def test_autocast_state_is_thread_local():
    a, b = st.tensor(_ARRAYS["A"]), st.tensor(_ARRAYS["B"])
    seen = []
    with st.autocast("cpu"):
        th = threading.Thread(target=lambda: seen.append((st.is_autocast_enabled("cpu"), st.mm(a, b).dtype)))
        th.start()
        th.join(timeout=60)
    assert seen == [(False, st.float32)]


def test_wrapper_calls_the_op_directly_when_autocast_is_off(monkeypatch):
    """Outside an autocast region the wrapper only checks the module flag and calls the op (never the policy);
    inside one, the call goes through the policy. The off-path cost (target < 1 µs per call) is measured by
    benchmarks/bench_autocast_overhead.py, not asserted here."""
    wrapped = st.Tensor.__dict__["exp"]
    assert wrapped._autocast_op == "exp" and wrapped.__wrapped__ is not wrapped
    calls = []

    def run(fn, name, args, kwargs):
        calls.append(name)
        return fn(*args, **kwargs)

    monkeypatch.setattr(AM, "_run", run)
    x = st.tensor(np.ones(4, np.float32))
    np.testing.assert_allclose(wrapped(x).numpy(), np.exp(np.ones(4, np.float32)), rtol=1e-6)
    assert calls == []
    with st.autocast("cpu"):
        wrapped(x)
    assert calls == ["exp"]
    wrapped(x)
    assert calls == ["exp"]


def test_cast_helper_matches_torch():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for lib in (torch, st):
            x = lib.tensor(_ARRAYS["A"])
            value = {"a": [x, x.double(), x.long()], "s": "text"}
            out = lib.amp.autocast_mode._cast(value, "cpu", lib.float16)
            assert [str(v.dtype) for v in out["a"]] == ["torch.float16", "torch.float64", "torch.int64"]
            assert out["s"] == "text"


def test_training_steps_under_fp16_autocast_with_grad_scaler_match_torch():
    """A GPU-style loop (cuda tensors, autocast float16, GradScaler) on the shim against real torch's CPU
    autocast float16 + GradScaler("cpu"); linear and cross_entropy have the same policy on both devices."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((8, 16)).astype(np.float32)
    y = rng.integers(0, 4, 8)
    w1 = (rng.standard_normal((32, 16)) * 0.3).astype(np.float32)
    w2 = (rng.standard_normal((4, 32)) * 0.3).astype(np.float32)
    runs = {}
    for lib, device in ((torch, "cpu"), (st, "cuda")):
        p1 = lib.tensor(w1, device=device, requires_grad=True)
        p2 = lib.tensor(w2, device=device, requires_grad=True)
        opt = lib.optim.SGD([p1, p2], lr=0.5)
        scaler = lib.amp.GradScaler(device, init_scale=2.0 ** 10)
        xs, ys = lib.tensor(x, device=device), lib.tensor(y, device=device)
        losses = []
        for _ in range(4):
            opt.zero_grad()
            with lib.autocast(device, dtype=lib.float16):
                logits = lib.nn.functional.linear(lib.nn.functional.linear(xs, p1).relu(), p2)
                loss = lib.nn.functional.cross_entropy(logits, ys)
            assert str(logits.dtype) == "torch.float16" and str(loss.dtype) == "torch.float32"
            scaler.scale(loss).backward()
            assert str(p1.grad.dtype) == "torch.float32"
            scaler.step(opt)
            scaler.update()
            losses.append(float(loss.detach()))
        runs[lib.__name__] = (losses, p2.detach().cpu().numpy())
    ref_losses, ref_w = runs["torch"]
    got_losses, got_w = runs["shim.torch"]
    np.testing.assert_allclose(got_losses, ref_losses, rtol=1e-2)
    assert ref_losses[-1] < ref_losses[0]
    assert np.linalg.norm(got_w - ref_w) <= 1e-2 * np.linalg.norm(ref_w)
