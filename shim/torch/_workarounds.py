"""The MindSpore defects the facade works around, one row each, with a probe that checks the defect is still there.

Every place in `shim/torch` that avoids a MindSpore kernel or behaviour names its row in a comment
(`workaround "<key>"`), and each row lists those places (`sites`, "path::symbol" under shim/torch/). A row
states the MindSpore op, what the facade does instead, why, and the MindSpore version and device target the
defect was measured on. `probe()` returns True while the defect exists (on the running MindSpore), False once
it is gone; rows whose defect cannot be reproduced by a short MindSpore-only probe have `probe=None` and say
why in `unprobed`.

`tests/shim/test_workarounds.py` runs every probe in a fresh process (`python -m shim.torch._workarounds`
prints the results as JSON) and **fails** for each row whose defect is gone: after a MindSpore upgrade that
failure is the prompt to remove the workaround at its sites (restoring the direct MindSpore call) and the row,
or to re-measure and update it. This module is not imported by the facade at run time.

Probes run with synchronous dispatch (`mindspore.runtime.launch_blocking()`, set by `run_probes`) so that a
failing kernel raises at the call. Timing probes compare the slow path with its fast twin (best of several runs)
and call the defect present when the slow path takes more than twice as long (Div: 1.5x); each was measured
at 3x or more (MatMul transposed 10-13x, Div 3-5x, setitem general path >100x on the probe's sizes). Those rows
are marked `timed`: the test reports a timed row that reads "gone" as a warning, never a failure (wall times
on a loaded machine are no pass/fail criterion; re-measure with `python -m shim.torch._workarounds` when idle).
"""
from __future__ import annotations

import dataclasses
import json
import sys
import time
from typing import Callable, Optional

__all__ = ["Workaround", "WORKAROUNDS", "run_probes"]


@dataclasses.dataclass(frozen=True)
class Workaround:
    """One MindSpore defect and the facade's way around it.

    key: the name code sites cite (`workaround "<key>"`); op: the MindSpore kernel / API affected;
    workaround: what the facade does instead; reason: the defect, as observed; measured: MindSpore version and
    device target of the measurement; sites: "path::symbol" (path under shim/torch/) of each place carrying
    the workaround (empty when none does yet); probe: callable returning True while the defect exists, or None
    (then `unprobed` says why); target: the MindSpore device target the row applies to."""
    key: str
    op: str
    workaround: str
    reason: str
    measured: str
    sites: tuple
    probe: Optional[Callable[[], bool]]
    unprobed: str = ""
    target: str = "CPU"
    timed: bool = False  # the probe compares wall times: reported, never a test failure (load makes it noisy)


# ---------------------------------------------------------------------------------------------------------
# probe helpers (MindSpore imported lazily: only the probe process needs it)

_MISSING = ("unregistered", "Create kernelmod", "Unsupported data type", "does not support", "only supports")


def _raises_missing(fn) -> bool:
    """True when `fn()` (its result forced to the host) fails with MindSpore's missing-kernel error; False
    when it runs. Any other error propagates (the probe itself is broken)."""
    try:
        r = fn()
        for x in r if isinstance(r, (tuple, list)) else (r,):
            if hasattr(x, "asnumpy"):
                x.asnumpy()
        return False
    except (RuntimeError, TypeError, NotImplementedError) as e:
        if any(s in str(e) for s in _MISSING):
            return True
        raise


def _x():
    import numpy as np
    import mindspore as ms
    return ms.Tensor(np.array([[0.5, 0.25], [0.125, 0.75]], np.float32))


def _kernel(call: str):
    """A probe running `call` (an expression over `mint`, `ops`, `ms`, `x`: a 2x2 float32 tensor in (0, 1))."""
    def probe():
        import mindspore as ms
        from mindspore import mint, ops
        x = _x()
        return _raises_missing(lambda: eval(call, {"mint": mint, "ops": ops, "ms": ms, "x": x}))
    probe.__doc__ = f"True while `{call}` fails for a missing CPU kernel."
    return probe


def _best_time(fn, repeat=5) -> float:
    """Best wall time of `fn()` over `repeat` runs (after one warm-up), in seconds."""
    fn()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _probe_silent_inplace() -> bool:
    import numpy as np
    import mindspore as ms
    y = ms.Tensor(np.ones(3, np.float32))
    y.add_(1.0)
    y.mul_(2.0)
    return bool((y.asnumpy() == 1.0).all())


def tensors_left_behind(write, times: int) -> int:
    """How many more `mindspore.Tensor` objects are alive after calling `write()` `times` more times (after one
    call to settle caches); used by the "bool setitem leak" probe and its facade test."""
    import gc
    import mindspore as ms

    def live():
        gc.collect()
        return sum(1 for o in gc.get_objects() if type(o) is ms.Tensor)
    write()
    before = live()
    for _ in range(times):
        write()
    return live() - before


def _probe_bool_setitem_leak() -> bool:
    import numpy as np
    import mindspore as ms
    t = ms.Tensor(np.zeros((1, 16, 4), np.float32))
    mask = ms.Tensor(np.arange(16).reshape(1, 16) % 3 == 0)

    def write():
        t[mask, :] = 0.0
    return tensors_left_behind(write, 10) >= 10


def _probe_copy_into_noncontiguous() -> bool:
    import numpy as np
    import mindspore as ms
    x = ms.Tensor(np.zeros((2, 3), np.float32))
    t = x.transpose(1, 0)
    if t.is_contiguous():
        return False
    t.copy_(ms.Tensor(np.ones((3, 2), np.float32)))
    return bool((t.asnumpy() == 0).all())


def _probe_softmax_inf_row() -> bool:
    import numpy as np
    import mindspore as ms
    from mindspore import mint
    x = np.array([[-np.inf] * 4, [3.0, 2.5, 2.0, 1.5]], np.float32)
    r = mint.softmax(ms.Tensor(x), -1).asnumpy()
    return not np.isnan(r[0]).all() or not np.isclose(r[1].sum(), 1.0)


def _probe_tril_empty() -> bool:
    import numpy as np
    import mindspore as ms
    from mindspore import ops
    try:
        ops.tril(ms.Tensor(np.zeros((0, 0), np.float32))).asnumpy()
    except RuntimeError:
        return True
    return False


def _probe_reducesum_empty() -> bool:
    import numpy as np
    import mindspore as ms
    from mindspore import mint
    big = mint.exp(ms.Tensor(np.full((64, 64), 80.0, np.float32)))  # leaves non-zero memory around
    big.asnumpy()
    vals = [float(mint.sum(ms.Tensor(np.zeros((3, 0), np.float32))).asnumpy()) for _ in range(4)]
    return any(v != 0.0 for v in vals)


def _probe_scatter_cache() -> bool:
    import mindspore as ms
    from mindspore import mint
    mint.scatter(mint.zeros((4,), dtype=ms.float32), 0, ms.Tensor([1, 3], ms.int64),
                 ms.Tensor([1.0, 2.0], ms.float32)).asnumpy()
    mint.scatter(mint.zeros((3, 2), dtype=ms.float32), 0, ms.Tensor([[2, 0]], ms.int64),
                 ms.Tensor([[5.0, 6.0]], ms.float32)).asnumpy()
    r = mint.scatter(mint.zeros((6,), dtype=ms.float32), 0, ms.Tensor([0, 5], ms.int64),
                     ms.Tensor([7.0, 8.0], ms.float32)).asnumpy()
    return r.tolist() != [7.0, 0.0, 0.0, 0.0, 0.0, 8.0]


def _probe_hfft_conj_state() -> bool:
    import numpy as np
    import mindspore as ms
    from mindspore import ops
    x = ms.Tensor(np.arange(6, dtype=np.float32).reshape(2, 3) ** 2)
    first, second = ops.ihfft(x).asnumpy(), ops.ihfft(x).asnumpy()
    return not np.allclose(first, second)


def _probe_fftn_s_without_dim() -> bool:
    # the defect kills the process (SIGSEGV in the backward): probed in a child process
    import subprocess
    code = ("import numpy as np, mindspore as ms\nfrom mindspore import ops\n"
            "x = ms.Tensor(np.ones((2, 3, 4), np.float32))\n"
            "ms.grad(lambda a: ops.irfftn(a, s=(3, 5)).sum())(x).asnumpy()\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=300)
    return proc.returncode < 0


def _probe_add_backward() -> bool:
    import numpy as np
    import mindspore as ms
    from mindspore._c_expression import run_backward
    from mindspore.graph.api import _pynative_executor as pe
    pe.set_grad_flag(True)
    pe.set_enable_grad(True)
    p = ms.Tensor(np.ones(2, np.float32))
    q = ms.Tensor(np.ones(2, np.float32))
    p.requires_grad_(True)
    q.requires_grad_(True)
    s = (p + q).sum()
    try:
        run_backward((s,), (ms.Tensor(1.0, ms.float32),), False, False, (), True, accumulate_grad=True)
        p._grad.asnumpy()
        return False
    except RuntimeError as e:
        if "Clone" in str(e):
            return True
        raise
    finally:
        pe.set_grad_flag(True)


def _probe_bf16() -> bool:
    import mindspore as ms
    from mindspore import mint
    b = _x().astype(ms.bfloat16)
    return any(_raises_missing(f) for f in (lambda: mint.matmul(b, b), lambda: mint.eq(b, b),
                                            lambda: mint.sum(b), lambda: mint.softmax(b, 1)))


def _probe_matmul_transposed() -> bool:
    import numpy as np
    import mindspore as ms
    from mindspore import mint, ops
    x = ms.Tensor(np.random.default_rng(0).standard_normal((64, 64)).astype(np.float32))
    w = ms.Tensor(np.random.default_rng(1).standard_normal((32768, 64)).astype(np.float32))
    nt = ops.MatMul(transpose_b=True)
    wt = w.transpose(1, 0)
    slow = _best_time(lambda: mint.matmul(x, wt).asnumpy())
    fast = _best_time(lambda: nt(x, w).asnumpy())
    return slow > 2 * fast


def _probe_div() -> bool:
    import numpy as np
    import mindspore as ms
    from mindspore import mint, ops
    a = ms.Tensor(np.random.default_rng(0).random(4 << 20).astype(np.float32) + 1)
    b = ms.Tensor(np.random.default_rng(1).random(4 << 20).astype(np.float32) + 1)
    rd = ops.RealDiv()
    slow = _best_time(lambda: mint.div(a, b).asnumpy())
    fast = _best_time(lambda: rd(a, b).asnumpy())
    return slow > 1.5 * fast


def _probe_setitem_general_path() -> bool:
    import numpy as np
    import mindspore as ms
    from mindspore.graph.api import _pynative_executor as pe
    base = ms.Tensor(np.zeros(4 << 20, np.float32))
    v = ms.Tensor(np.ones(1 << 20, np.float32))

    def write():
        base[1024:1024 + (1 << 20)] = v
        base.asnumpy()
    pe.set_grad_flag(True)  # the facade's recording state (grad_flag is on from import)
    pe.set_enable_grad(True)
    slow = _best_time(write, 3)
    pe.set_enable_grad(False)
    try:
        fast = _best_time(write, 3)
    finally:
        pe.set_enable_grad(True)
    return slow > 2 * fast


def _probe_view_setitem() -> bool:
    import numpy as np
    import mindspore as ms
    from mindspore.graph.api import _pynative_executor as pe
    pe.set_enable_grad(True)
    b = ms.Tensor(np.zeros((4, 4), np.float32))
    b.view(-1)[2:6] = ms.Tensor(np.ones(4, np.float32))
    return bool((b.asnumpy() == 0).all())


def _probe_function_enable_grad() -> bool:
    import mindspore as ms
    from mindspore.common._grad_function import _Function
    from mindspore.graph.api import _pynative_executor as pe
    pe.set_grad_flag(True)
    pe.set_enable_grad(True)
    seen = []

    class F(_Function):
        @staticmethod
        def forward(ctx, x):
            seen.append(bool(pe.enable_grad()))
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g * 2

    w = _x()
    w.requires_grad_(True)
    F.apply(w).asnumpy()
    pe.set_enable_grad(True)
    return seen == [False]


def _probe_grad_wrapper() -> bool:
    import mindspore as ms
    from mindspore._c_expression import run_backward
    from mindspore.graph.api import _pynative_executor as pe
    pe.set_grad_flag(True)
    pe.set_enable_grad(True)
    w = _x()
    w.requires_grad_(True)
    s = (w * w).sum()
    run_backward((s,), (ms.Tensor(1.0, ms.float32),), False, False, (), True, accumulate_grad=True)
    return w._grad is not w._grad


def _probe_sgd() -> bool:
    import numpy as np
    import mindspore as ms
    from mindspore import mint
    p = ms.Parameter(ms.Tensor(np.ones(3, np.float32)), name="p")
    opt = mint.optim.SGD([p], lr=0.5)
    try:
        opt((ms.Tensor(np.ones(3, np.float32)),))
    except (RuntimeError, TypeError) as e:
        if any(s in str(e) for s in _MISSING):
            return True
        raise
    return bool((p.asnumpy() == 1.0).all())


def _probe_adamw() -> bool:
    import numpy as np
    import mindspore as ms
    from mindspore import mint
    p = ms.Parameter(ms.Tensor(np.ones(3, np.float32)), name="p")
    opt = mint.optim.AdamW([p], lr=0.5)
    try:
        opt((ms.Tensor(np.ones(3, np.float32)),))
        p.asnumpy()
    except (RuntimeError, TypeError) as e:
        if any(s in str(e) for s in _MISSING):
            return True
        raise
    return bool((p.asnumpy() == 1.0).all())


def _probe_memory_stats() -> bool:
    import numpy as np
    import mindspore as ms
    keep = ms.Tensor(np.ones(1 << 20, np.float32)) + 1
    keep.asnumpy()
    return ms.runtime.memory_allocated() == 0 and ms.runtime.max_memory_allocated() == 0


def _probe_pad_negative() -> bool:
    import numpy as np
    import mindspore as ms
    from mindspore import ops
    x = ms.Tensor(np.arange(10, dtype=np.float32).reshape(2, 5))
    want = [[1.0, 2.0, 3.0, 4.0, 3.5, 3.5], [6.0, 7.0, 8.0, 9.0, 3.5, 3.5]]
    return any(ops.pad(x, (-1, 2), mode="constant", value=3.5).asnumpy().tolist() != want for _ in range(3))


def _nan_input():
    import numpy as np
    import mindspore as ms
    return ms.Tensor(np.array([[1.0, np.nan, -3.0], [5.0, 2.0, 0.5]], np.float32))


def _probe_maximum_nan() -> bool:
    import numpy as np
    import mindspore as ms
    from mindspore import mint
    x, z = _nan_input(), ms.Tensor(np.zeros((2, 3), np.float32))
    return any(not np.isnan(f(x, z).asnumpy()[0, 1]) for f in (mint.maximum, mint.minimum))


def _probe_clamp_nan() -> bool:
    import numpy as np
    from mindspore import mint
    x = _nan_input()
    return (not np.isnan(mint.clamp(x, -1.0, 1.0).asnumpy()[0, 1])
            or not np.isnan(mint.nn.functional.relu(x).asnumpy()[0, 1]))


def _probe_max_reduction_nan() -> bool:
    import numpy as np
    from mindspore import mint, ops
    x = _nan_input()
    return (not np.isnan(mint.max(x).asnumpy()) or not np.isnan(mint.max(x, 1)[0].asnumpy()[0])
            or mint.max(x, 1)[1].asnumpy()[0] != 1 or not np.isnan(mint.amax(x, 1).asnumpy()[0])
            or not np.isnan(mint.min(x, 1)[0].asnumpy()[0]) or ops.argmax(x, 1).asnumpy()[0] != 1
            or ops.argmin(x, 1).asnumpy()[0] != 1)


def _probe_sort_nan() -> bool:
    import numpy as np
    from mindspore import ops
    x = _nan_input()
    return (not np.isnan(ops.sort(x, 1)[0].asnumpy()[0, 2]) or not np.isnan(ops.sort(x, 1, True)[0].asnumpy()[0, 0])
            or not np.isnan(ops.topk(x, 1)[0].asnumpy()[0, 0]))


# ---------------------------------------------------------------------------------------------------------
# the table

_V = "MindSpore 2.10.0, CPU"


def _missing(key, call, workaround, sites, op=None):
    return Workaround(key=key, op=op or f"{key} kernel (`{call}`)", workaround=workaround,
                      reason=f"no CPU kernel: `{call}` raises \"The kernel {key} unregistered\"", measured=_V,
                      sites=tuple(sites), probe=_kernel(call))


WORKAROUNDS = (
    Workaround(
        key="Clone", op="Clone kernel (`mint.clone`, `mindspore.Tensor.clone`, MindSpore's `retain_grad`)",
        workaround="`ops.deepcopy` (an Identity node: copies, differentiable) as `_aliasing.clone` on CPU; "
                   "`Tensor.retain_grad` is a tensor hook",
        reason="no CPU kernel for Clone, for any dtype", measured=_V,
        sites=("_aliasing.py::clone", "_tensor.py::retain_grad"), probe=_kernel("mint.clone(x)")),
    _missing("FillScalar", "mint.full((2, 2), 3.0)", "`ops.full`, rounded to bfloat16 when emulated",
             ["_ops/creation.py::_fill", "_tensor.py::fill_", "_ops/indexing.py::scatter"]),
    Workaround(
        key="in-place kernels", op="`mindspore.Tensor.zero_` (InplaceZero), `.fill_` (InplaceFillScalar), ...",
        workaround="every facade in-place op computes its result out of place and stores it with "
                   "`_aliasing.assign` (rebind, or `copy_` into pinned tensors)",
        reason="no CPU kernels for most InplaceXxx ops", measured=_V,
        sites=("_aliasing.py::assign",), probe=_kernel("x.copy().zero_()")),
    Workaround(
        key="silent in-place", op="`mindspore.Tensor.add_` / `mul_` / `sub_`",
        workaround="never relied on: the facade writes only with `copy_` and slice assignment "
                   "(`_aliasing.assign` / `write_back`)",
        reason="on CPU they return a new tensor and leave self unchanged, without an error", measured=_V,
        sites=("_aliasing.py::assign",), probe=_probe_silent_inplace),
    Workaround(
        key="copy_ non-contiguous", op="`mindspore.Tensor.copy_` into a non-contiguous tensor",
        workaround="gradients that MindSpore leaves non-contiguous (a bias-less Linear's weight gradient, "
                   "strides [1, n]) are replaced through the `.grad` setter instead of written in place",
        reason="the copy is silently lost (no error, destination unchanged)", measured=_V,
        sites=("optim/optimizer.py::zero_grad", "nn/modules/module.py::zero_grad",
               "nn/utils/clip_grad.py::_replace_grad"),
        probe=_probe_copy_into_noncontiguous),
    _missing("ZerosLikeExt", "mint.zeros_like(x)", "`ops.zeros_like`", ["nn/functional.py::cross_entropy"]),
    _missing("ArgMaxExt", "mint.argmax(x, 1)", "`ops.argmax`", ["_ops/reduction.py::argmax"]),
    _missing("ArgMinExt", "mint.argmin(x, 1)", "`ops.argmin`", ["_ops/reduction.py::argmin"]),
    _missing("TopkExt", "mint.topk(x, 1)", "`ops.topk`", ["_ops/reduction.py::topk"]),
    _missing("SortExt", "mint.sort(x)", "`ops.sort`", ["_ops/reduction.py::sort"]),
    _missing("CumsumExt", "mint.cumsum(x, 0)", "`ops.cumsum`", ["_ops/reduction.py::cumsum"]),
    _missing("Mm", "mint.mm(x, x)", "`ops.MatMul` (see also row \"MatMul transposed operand\")",
             ["_ops/linalg.py::mm"]),
    _missing("TrilExt", "mint.tril(x)", "`ops.tril`", ["_ops/shape.py::tril"]),
    _missing("IndexSelect", "mint.index_select(x, 0, ms.Tensor([1], ms.int64))", "`ops.gather`",
             ["_ops/indexing.py::index_select"]),
    _missing("ScatterAddExt", "mint.scatter_add(x, 0, ms.Tensor([[1, 0]], ms.int64), x[:1])",
             "`ops.tensor_scatter_elements(..., 'add')`", ["_ops/indexing.py::scatter_add"]),
    _missing("Atan2Ext", "mint.atan2(x, x)", "`ops.atan2`", ["_ops/pointwise.py::atan2"]),
    _missing("Log2", "mint.log2(x)", "`ops.log2`", ["_ops/pointwise.py::log2"]),
    _missing("StackExt", "mint.stack([x, x])", "unsqueeze (reshape) each input + `mint.cat`",
             ["_ops/shape.py::stack"]),
    _missing("LogSoftmaxExt", "mint.nn.functional.log_softmax(x, 1)", "`ops.log_softmax`",
             ["_ops/reduction.py::log_softmax", "nn/functional.py::_log_softmax_m"]),
    _missing("Embedding", "mint.nn.functional.embedding(ms.Tensor([0], ms.int64), x)",
             "`ops.gather` on the weight", ["nn/functional.py::embedding"]),
    _missing("GeluExt", "mint.nn.functional.gelu(x)", "`ops.gelu`", ["nn/functional.py::gelu"]),
    Workaround(
        key="LayerNormExt", op="LayerNormExt kernel (`mint.nn.functional.layer_norm`)",
        workaround="`ops.LayerNorm` primitive", reason="no CPU kernel (\"Create kernelmod for op LayerNormExt "
                                                       "failed\")",
        measured=_V, sites=("nn/functional.py::layer_norm",),
        probe=_kernel("mint.nn.functional.layer_norm(x, (2,))")),
    Workaround(
        key="einsum", op="`mint.einsum`", workaround="the facade contracts itself (permute, reshape, MatMul)",
        reason="Ascend only: raises NotImplementedError(\"einsum only supports Ascend\") elsewhere",
        measured=_V, sites=("_ops/linalg.py::einsum",), probe=_kernel("mint.einsum('ij,jk->ik', x, x)")),
    _missing("Conv2DExt", "mint.nn.functional.conv2d(x.reshape(1, 1, 2, 2), x.reshape(1, 1, 2, 2))",
             "`ops.conv2d` (the Conv2D primitive, CPU kernel and gradients present), padding done by F.pad",
             ["nn/functional.py::_conv_m"]),
    Workaround(
        key="mint conv1d/conv3d", op="`mint.nn.functional.conv1d` / `conv3d`",
        workaround="conv1d runs as `ops.conv2d` with a unit height; conv3d as `ops.conv3d` (Conv3D primitive)",
        reason="Ascend only: raise \"conv1d only supports Ascend\" / \"conv3d only supports Ascend\" on CPU",
        measured=_V, sites=("nn/functional.py::_conv_m",),
        probe=_kernel("mint.nn.functional.conv1d(x.reshape(1, 1, 4), x.reshape(1, 1, 4))")),
    _missing("ConvTranspose2D", "mint.nn.functional.conv_transpose2d(x.reshape(1, 1, 2, 2), x.reshape(1, 1, 2, 2))",
             "transposed convolution composed as a convolution of the zero-inserted, padded input with the "
             "flipped, regrouped weight (1, 2 and 3 dims alike)", ["nn/functional.py::_conv_transposend"]),
    _missing("AvgPool2D", "mint.nn.functional.avg_pool2d(x.reshape(1, 1, 2, 2), 2)",
             "every pool (max, avg, LP, adaptive; 1/2/3-d) is one gather over a host-built window table and a "
             "max/sum (gives torch's indices, ceil_mode, dilation and divisor rules in one place)",
             ["nn/functional.py::_gather_windows"]),
    _missing("AdaptiveAvgPool2DExt", "mint.nn.functional.adaptive_avg_pool2d(x.reshape(1, 1, 2, 2), (1, 1))",
             "the window-gather pooling (see row AvgPool2D)", ["nn/functional.py::_gather_windows"]),
    Workaround(
        key="PadV3 negative padding", op="`ops.pad(x, pad, mode=\"constant\")` with a negative (cropping) pad",
        workaround="F.pad crops negative pads by slicing (`narrow`) and pads only the non-negative ones",
        reason="the second and later calls return wrong values (cropped elements replaced by the fill value; "
               "looks like a reused, partly written output buffer); the first call is right",
        measured=_V, sites=("nn/functional.py::pad",), probe=_probe_pad_negative),
    _missing("Log10", "mint.log10(x)", "`ops.log10` (the older primitive: a CPU kernel and a gradient)",
             ["_ops/pointwise.py::log10"]),
    _missing("AsinExt", "mint.asin(x)", "`ops.asin` (the older primitive: a CPU kernel and a gradient)",
             ["_ops/pointwise.py::asin"]),
    _missing("AcosExt", "mint.acos(x)", "`ops.acos` (the older primitive: a CPU kernel and a gradient)",
             ["_ops/pointwise.py::acos"]),
    _missing("AtanExt", "mint.atan(x)", "`ops.atan` (the older primitive: a CPU kernel and a gradient)",
             ["_ops/pointwise.py::atan"]),
    _missing("AsinhExt", "mint.asinh(x)", "`ops.asinh` (the older primitive: a CPU kernel and a gradient)",
             ["_ops/pointwise.py::asinh"]),
    _missing("AcoshExt", "mint.acosh(x + 1)", "`ops.acosh` (the older primitive: a CPU kernel and a gradient)",
             ["_ops/pointwise.py::acosh"]),
    Workaround(
        key="Softmax -inf row", op="`mint.softmax` along the last axis when a slice holds only -inf",
        workaround="torch.masked's softmax/softmin compose exp(x - max) / sum (a -inf slice gives NaN, as torch); "
                   "torch.softmax, nn.functional.softmax and scaled_dot_product_attention check for an all -inf "
                   "slice (two reductions, one host read) and only then replace -inf by the lowest finite value "
                   "and set that slice to NaN (`_ops/reduction.py::softmax_kernel`)",
        reason="that slice comes out as zeros and so does every later slice of the tensor (wrong numbers in rows "
               "that hold only finite values); along another axis the kernel is right", measured=_V,
        sites=("masked/__init__.py::_softmax", "_ops/reduction.py::softmax_kernel", "nn/functional.py::softmax",
               "nn/functional.py::scaled_dot_product_attention"), probe=_probe_softmax_inf_row),
    Workaround(
        key="Maximum NaN", op="Maximum / Minimum kernels (`mint.maximum`, `mint.minimum`) on floats",
        workaround="torch.maximum/minimum replace the kernel's result by `a + b` (NaN; its gradient reaches both "
                   "operands in full, as torch's) where either operand is NaN (isnan, or, where: 3-4 more "
                   "elementwise kernels); torch.fmax/fmin choose with a comparison and isnan of the second operand",
        reason="they return the second operand where the first is NaN (maximum(NaN, 0) = 0, maximum(0, NaN) = "
               "NaN): neither torch.maximum (NaN from either) nor torch.fmax (NaN ignored)", measured=_V,
        sites=("_ops/pointwise.py::_extreme", "_ops/pointwise.py::_fextreme"), probe=_probe_maximum_nan),
    Workaround(
        key="Clamp NaN", op="ClampScalar / ClampTensor kernels (`mint.clamp`)",
        workaround="torch.clamp/clip and F.relu/relu6 put NaN back where the input (or a tensor bound) holds NaN, "
                   "with a `where` over isnan (torch's zero gradient there for the input and the bounds); only "
                   "when an operand holds NaN (`_ops/pointwise.py::_holds_nan`)",
        reason="NaN comes out as the bound ([1, NaN, -3] clamped to [-1, 1] gives [1, -1, -1]); the ReLU kernel "
               "(`mint.nn.functional.relu`) likewise gives 0", measured=_V,
        sites=("_ops/pointwise.py::clamp", "_ops/pointwise.py::relu", "nn/functional.py::_keep_nan"),
        probe=_probe_clamp_nan),
    Workaround(
        key="Max reduction NaN",
        op="max/min reductions: `mint.max`/`mint.min` (all and dim), `mint.amax`/`mint.amin`, `ops.argmax`/"
           "`ops.argmin`",
        workaround="after the kernel, one NaN check per call (`_ops/reduction.py::_holds_nan`: a host read of "
                   "tensors up to 16K elements, else a last-axis sum read back); only when the input holds NaN: "
                   "the first NaN's index (argmax of isnan) where a slice holds one, values gathered there; whole "
                   "tensor max/min/median as NaN with the gradient shared by the NaN elements; amax/amin NaN with a "
                   "NaN gradient for the slice (torch's rules). Also torch.median (no MindSpore CPU kernel: sort)",
        reason="they skip NaN (max of [1, NaN, -3] is 1 at index 0), and so do the max-pool kernels "
               "(`ops.max_pool2d`/`max_pool3d`) and the row maximum of softmax/log_softmax along the last axis "
               "(a row [1, NaN, 0] gives [0, NaN, 0] / [-inf, NaN, -inf]); torch returns NaN and the first NaN's "
               "index (a NaN row from softmax/log_softmax)",
        measured=_V,
        sites=("_ops/reduction.py::_maxmin", "_ops/reduction.py::_amaxmin", "_ops/reduction.py::_arg",
               "_ops/reduction.py::median", "nn/functional.py::_max_pool", "_ops/reduction.py::nan_slices",
               "nn/functional.py::_log_softmax_m"), probe=_probe_max_reduction_nan),
    Workaround(
        key="Sort NaN", op="Sort / TopK kernels (`ops.sort`, `ops.topk`) on floats",
        workaround="when the input holds NaN (`_holds_nan`): two stable sorts, by NaN-ness then by the value with "
                   "NaN read as +inf, composed (`_ops/reduction.py::_sort_nan`); topk takes the first k of that "
                   "sort",
        reason="NaN is not ordered: [1, NaN, -3, 5, NaN, 0.5] sorts to [-3, 0.5, 1, NaN, 5, NaN] (descending "
               "[5, 1, NaN, -3, NaN, 0.5]) and its top 3 are [NaN, 5, 1]; torch orders NaN above +inf",
        measured=_V, sites=("_ops/reduction.py::sort", "_ops/reduction.py::topk"), probe=_probe_sort_nan),
    Workaround(
        key="Tril empty", op="`ops.tril` / `ops.triu` on a matrix with a zero-size dimension",
        workaround="an empty input is returned as an (empty) copy without calling the kernel",
        reason="raises \"For tril in cpu backend, input matrix width should >= 1\" (torch returns the empty "
               "tensor)", measured=_V, sites=("_ops/shape.py::tril", "_ops/shape.py::triu"),
        probe=_probe_tril_empty),
    Workaround(
        key="ReduceSum empty", op="`mint.sum` of a tensor with no elements",
        workaround="the facade's sum returns zeros for an empty input; matmul's empty-inner-dimension result is "
                   "tied to its operands through a `where` that selects 0 (a multiplication by 0 kept NaN)",
        reason="returns uninitialised memory (any value, NaN and inf included) instead of 0", measured=_V,
        sites=("_ops/reduction.py::sum", "_ops/linalg.py::matmul"), probe=_probe_reducesum_empty),
    Workaround(
        key="ReverseV2 empty", op="`mint.flip` on a tensor with a zero-size dimension",
        workaround="an empty input is returned as an (empty) copy without calling the kernel",
        reason="the process died of SIGFPE (\"Floating point exception\") in MindSpore's CPU flip kernel on "
               "op_db's (5, 0, 10) fliplr sample during a full test session (not reproduced alone): a crash "
               "no Python code can catch",
        measured=_V, sites=("_ops/shape.py::flip",), probe=None,
        unprobed="a probe would kill the probe process when the defect shows; seen only after many other kernels ran"),
    Workaround(
        key="HFFT conj state", op="`ops.hfft`/`hfft2`/`hfftn` of a complex input and `ops.ihfft`/`ihfft2`/`ihfftn`",
        workaround="hfft* as irfft* of the conjugate input, ihfft* as the conjugate of rfft*, with the opposite "
                   "normalisation (backward <-> forward)",
        reason="every other call returns the conjugate of the result (the same input gives alternating signs of "
               "the imaginary parts)", measured=_V,
        sites=("fft/__init__.py::_hfft_one", "fft/__init__.py::_ihfft_one", "fft/__init__.py::_hfft_many",
               "fft/__init__.py::_ihfft_many"), probe=_probe_hfft_conj_state),
    Workaround(
        key="FFTN s without dim", op="backward of `ops.irfftn`/`ops.hfftn` given `s` but not `dim`",
        workaround="the facade always passes the transformed dimensions explicitly",
        reason="the process dies of SIGSEGV in the backward (forward is fine)", measured=_V,
        sites=("fft/__init__.py::_many",), probe=_probe_fftn_s_without_dim),
    Workaround(
        key="mint.scatter", op="`mint.scatter` (Scatter kernel)",
        workaround="`ops.tensor_scatter_elements` (`_aliasing.scatter`)",
        reason="returns wrong positions when called again with other shapes (kernel cache)", measured=_V,
        sites=("_aliasing.py::scatter",), probe=_probe_scatter_cache),
    Workaround(
        key="Add backward", op="backward of Add (`a + b`, `mint.add`) when both inputs require grad",
        workaround="while recording, `a + b` is computed as `mint.sub(a, b, alpha=-1)` (bit-identical; its "
                   "backward makes two tensors)",
        reason="the backward hands one gradient to both inputs through the missing Clone kernel", measured=_V,
        sites=("_ops/pointwise.py::add", "nn/functional.py::linear"), probe=_probe_add_backward),
    Workaround(
        key="bfloat16", op="bfloat16 kernels (MatMul, Equal, ReduceSum, Softmax, setitem, ...)",
        workaround="bfloat16 is emulated: float32 storage holding bfloat16-rounded values, each op computes in "
                   "float32 and rounds its result (`_dtype.py`, `_aliasing.round_bf16` / `cast_storage`); "
                   "`to_ms` gives real bfloat16 for serialization and collectives",
        reason="almost no bfloat16 CPU kernels", measured=_V,
        sites=("_dtype.py::dtype", "_aliasing.py::round_bf16"), probe=_probe_bf16),
    Workaround(
        key="MatMul transposed operand", op="MatMul / `mint.matmul` with a transposed (strided) operand",
        workaround="MatMul in the operand's original layout with `transpose_a` / `transpose_b` (bit-identical, "
                   "checked by tests/shim/test_matmul_fast_paths.py); F.linear is MatMul(transpose_b=True) + bias",
        reason="the operand is first copied to row-major order: 742 ms vs 104 ms for the tiny model's output "
               "layer (151,680 x 64)", measured=_V,
        sites=("_ops/linalg.py::_MATMUL_T", "nn/functional.py::_MATMUL_NT"), probe=_probe_matmul_transposed, timed=True),
    Workaround(
        key="Div", op="Div kernel (`mint.div`, `Tensor.__truediv__`) on floats",
        workaround="true division uses the RealDiv kernel (bit-identical, differentiable)",
        reason="3-5x slower than RealDiv from ~64K elements up (9.7M float32: ~150 ms vs 30-60 ms)", measured=_V,
        sites=("_ops/pointwise.py::_real_div",), probe=_probe_div, timed=True),
    Workaround(
        key="setitem general path", op="slice assignment (`m[a:b] = v`) with MindSpore's enable_grad on",
        workaround="large-base write-backs assign with enable_grad switched off around the write",
        reason="with enable_grad on, setitem takes its general path (host-built index arrays + a scatter): "
               "~50x slower (6.5 s vs 0.12 s for megatron's 9.7M-element main_grad.add_)", measured=_V,
        sites=("_aliasing.py::write_back",), probe=_probe_setitem_general_path, timed=True),
    Workaround(
        key="view(-1) setitem", op="slice assignment into `m.view(-1)` (a storage-sharing view)",
        workaround="done with enable_grad off (see row \"setitem general path\")",
        reason="with enable_grad on the assignment does not reach the viewed storage (no error)", measured=_V,
        sites=("_aliasing.py::write_back",), probe=_probe_view_setitem),
    Workaround(
        key="InplaceCopy view source",
        op="InplaceCopy (`mindspore.Tensor.copy_`) into a pinned tensor from a view of a larger storage",
        workaround="the view is copied out (`_aliasing.clone`) before the in-place copy",
        reason="rejected (it compares whole-storage sizes), seen while running megatron-core", measured=_V,
        sites=("_tensor.py::copy_", "_tensor.py::data"), probe=None,
        unprobed="no MindSpore-only reproduction found: copy_ into a leaf requiring grad from narrow/reshape/"
                 "getitem views of larger tensors succeeds on 2.10.0, and "
                 "tests/shim/test_megatron_facade.py::test_copy_from_a_buffer_view_into_a_parameter passes "
                 "without the extra copy; kept until a reproduction shows it unnecessary in megatron runs"),
    Workaround(
        key="Function enable_grad", op="custom Function (`mindspore._Function`) forward and `run_backward`",
        workaround="after apply / backward the facade re-reads enable_grad into its cache (`grad_mode._sync`); "
                   "a custom Function's backward re-reads it before and after (off in a backward pass, as torch's)",
        reason="MindSpore switches enable_grad off inside a custom Function's forward and during backward",
        measured=_V, sites=("autograd/function.py::apply", "autograd/variable.py::run_backward",
                                           "_tensor.py::_keep_history"),
        probe=_probe_function_enable_grad),
    Workaround(
        key="_grad wrapper", op="`mindspore.Tensor._grad` (a leaf's accumulated gradient)",
        workaround="`Tensor.grad` caches its facade wrapper and compares storage (`data_ptr`), not identity",
        reason="every read returns a new Python object for the same gradient", measured=_V,
        sites=("_tensor.py::grad",), probe=_probe_grad_wrapper),
    Workaround(
        key="mint.optim.SGD", op="`mindspore.mint.optim.SGD`",
        workaround="torch.optim.SGD written in the facade (torch's update rule)",
        reason="its step returns without changing the parameters on CPU (no error)", measured=_V,
        sites=("optim/sgd.py::SGD",), probe=_probe_sgd),
    Workaround(
        key="mint.optim.AdamW", op="`mindspore.mint.optim.AdamW`",
        workaround="torch.optim.AdamW written in the facade (torch's update rule)",
        reason="no CPU kernel", measured=_V, sites=("optim/adamw.py::AdamW",), probe=_probe_adamw),
    Workaround(
        key="memory statistics", op="`mindspore.runtime.memory_allocated` and friends",
        workaround="torch.cuda memory statistics come from the process on CPU",
        reason="they report 0 on CPU", measured=_V, sites=("cuda/_backend.py::device_allocator",),
        probe=_probe_memory_stats),
    Workaround(
        key="broadcast kernels",
        op="MindSpore's CPU `Mul`/`Sub`/`Add`/`RealDiv`/`MaskedFill` with a broadcast operand (or mask)",
        workaround="the facade tiles the broadcast operand to the result's shape (`Tile`, then a same-shape "
                   "kernel; bit-identical) from 65,536 result elements up",
        reason="~7x slower than Tile + the same-shape kernel (a [64, 151680] float32 times a [64, 1]: "
               "0.17 s vs 0.025 s of CPU; megatron's vocabulary-parallel cross entropy; `MaskedFill` of [1, 64, 75840] "
               "with a [75840] mask ~0.3 s vs ~0.1 s)", measured=_V,
        sites=("_ops/pointwise.py::_tiled", "_ops/indexing.py::masked_fill"), probe=None,
        unprobed="a speed defect, measured by benchmarks/bench_megatron_shim.py --profile (BENCHMARKS.md); "
                 "probes check results"),
    Workaround(
        key="pipeline waits",
        op="`.shape`/`.dtype` of a fresh result, Python `__getitem__`/`__setitem__` (asynchronous dispatch)",
        workaround="the facade keeps shapes in its own geometry record and indexes with `mint.narrow`",
        reason="each of them waits for MindSpore's queued work (a pipeline sync)", measured=_V,
        sites=("_aliasing.py::geom", "_ops/indexing.py::_basic_geometry"), probe=None,
        unprobed="a cost of asynchronous dispatch only, measured by benchmarks/facade_op_overhead.py "
                 "(the a[1:3] row); probes run synchronously"),
    Workaround(
        key="bool setitem leak",
        op="MindSpore's `Tensor.__setitem__` with a bool mask of the leading dimensions and a slice, "
           "`t[mask, :] = 0.0`",
        workaround="the facade writes `t[mask]`, `t[mask, :]`, `t[mask, ...]` = a number as one `masked_fill` "
                   "with the mask's shape extended by size-1 dimensions",
        reason="each call leaves the two int64 index tensors it works out from the mask alive, held from "
               "MindSpore's C++ side (no Python referrer): megatron's VocabParallelEmbedding does it per "
               "micro-batch at TP > 1 (`output_parallel[input_mask, :] = 0.0`); over 300 steps a TP=2 rank's "
               "resident set grew ~0.77 MiB a step", measured=_V,
        sites=("_ops/indexing.py::_leading_mask",), probe=_probe_bool_setitem_leak),
    Workaround(
        key="reduce layout",
        op="MindSpore's CPU `ReduceSum`/`ReduceMean` over a tensor of 3+ dimensions or over several axes",
        workaround="the facade reshapes a contiguous input (a view) so that neighbouring reduced / kept "
                   "dimensions become one and size-1 dimensions go, from 65,536 elements up, then reshapes "
                   "the result back",
        reason="3-4x slower than the same reduction of the collapsed 2-D / 1-D view (one thread: [1, 64, 151680] "
               "float32 over its last dimension 49 ms vs 9-13 ms as [64, 151680]; [151680, 64] over both axes "
               "52 ms vs 18 ms flat): megatron's NaN checks and gradient norms, the facade's NaN check in max",
        measured=_V, sites=("_ops/pointwise.py::_collapsed_reduce", "_ops/reduction.py::_collapsed_reduce"),
        probe=None,
        unprobed="a speed defect, measured by benchmarks/bench_megatron_shim.py --profile (BENCHMARKS.md); "
                 "probes check results"),
    Workaround(
        key="view input copy",
        op="every MindSpore kernel given a view tensor (a reshape or narrow of a contiguous tensor included: "
           "`Tensor.reshape`/`view`, `mint.narrow`, `ops.Reshape`)",
        workaround="a facade view onto one contiguous run of a base of 65,536+ elements, derived while autograd "
                   "is not recording, is a non-view MindSpore tensor sharing the base's host memory "
                   "(`Tensor.from_numpy` over numpy's array of the storage, which it keeps alive); re-derived "
                   "as a MindSpore view when used while recording; large contiguous writes outside recording "
                   "are host copies; the fused Adam's in-place kernel is given the parameter's and exp_avg's "
                   "memory the same way (given a view, it writes a copy) (the CPU target with synchronous "
                   "dispatch only)",
        reason="the kernel first copies the whole view: GatherNd of 63 elements of a [63, 75904] float32 "
               "matrix 0.03 ms on the matrix vs 1.7 ms through a reshape of it; megatron's cross entropy, "
               "gradient-buffer views and optimizer shards pay it on every op",
        measured=_V, sites=("_aliasing.py::_host_alias", "_aliasing.py::host_region", "_aliasing.py::_host_write",
                            "optim/_functional.py::adam_step_fused"), probe=None,
        unprobed="a speed defect, measured by benchmarks/bench_megatron_shim.py (BENCHMARKS.md); probes "
                 "check results"),
    Workaround(
        key="host norm",
        op="MindSpore's CPU `Mul` + `ReduceSum` for the 2-norm of a large float32 tensor (no CPU "
           "`LinalgVectorNorm` kernel; `ops.norm` is slower still)",
        workaround="the facade computes torch.norm's 2-norm of all elements of a contiguous float32 tensor of "
                   "65,536+ elements that records no gradient on the host: numpy's dot per 65,536-element chunk, "
                   "the chunks' sums in float64 (the CPU target only, where the host reads the storage in place)",
        reason="two passes and a temporary the size of the input: ~20 ms for 9.7M elements vs ~6 ms; megatron "
               "computes such norms several times a step (gradient clipping, the bucket NaN check)",
        measured=_V, sites=("_ops/reduction.py::_host_l2",), probe=None,
        unprobed="a speed defect, measured by benchmarks/bench_megatron_shim.py --profile (BENCHMARKS.md); "
                 "probes check results"),
    Workaround(
        key="thread count",
        op="MindSpore's CPU kernel thread pool (its size; `OMP_NUM_THREADS` is not read)",
        workaround="the facade passes `OMP_NUM_THREADS` to `mindspore.device_context.cpu.op_tuning.threads_num` "
                   "at import, as torch sizes its intra-op pool from it (launchers set 1 for several workers)",
        reason="MindSpore's idle kernel threads spin (yield in a loop) before sleeping, and torch's rule for "
               "several workers is one intra-op thread each: with one thread a 2-rank tiny step took 0.578 vs "
               "0.625 s at TP=2 and 0.838 vs 0.921 s at DP=2 (one idle run each), 15-25 % less CPU",
        measured=_V, sites=("_dispatch.py::configure_threads",), probe=None,
        unprobed="a scheduling cost with several processes, measured by benchmarks/bench_megatron_shim.py and "
                 "bench_collectives.py (BENCHMARKS.md), not a defect a probe can show"),
    Workaround(
        key="asynchronous dispatch", op="MindSpore's asynchronous PyNative dispatch on a 2-core CPU",
        workaround="synchronous dispatch by default on the CPU target (`SHIM_SYNC_DISPATCH`)",
        reason="pipeline threads compete with the Python thread: a tools/train.py run used 55 s of CPU "
               "asynchronously vs 25 s synchronously", measured=_V, sites=("_dispatch.py::configure",),
        probe=None, unprobed="a whole-run CPU-time measurement (BENCHMARKS.md), not a defect a probe can show"),
)


def run_probes(rows=WORKAROUNDS) -> dict:
    """Run each applicable row's probe; returns {key: "present" | "gone" | "unprobed" | "other target" |
    "error: <type>: <message>"}. Switches MindSpore to synchronous dispatch first (run it in a process of its
    own: probes leave kernel caches and flags behind)."""
    import mindspore as ms
    ms.runtime.launch_blocking()
    target = ms.get_context("device_target")
    out = {}
    for row in rows:
        if row.target != target:
            out[row.key] = "other target"
        elif row.probe is None:
            out[row.key] = "unprobed"
        else:
            try:
                out[row.key] = "present" if row.probe() else "gone"
            except Exception as e:  # a broken probe is reported, not hidden
                out[row.key] = f"error: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    return out


if __name__ == "__main__":
    res = run_probes()
    import mindspore
    json.dump({"mindspore": mindspore.__version__, "target": mindspore.get_context("device_target"),
               "results": res}, sys.stdout)
