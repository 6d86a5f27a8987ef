"""`torch.nn.functional` for the facade, computed with MindSpore PyNative ops (autograd flows through them).

Each function takes facade Tensors, computes on their MindSpore storage (``unwrap``) and returns a facade
Tensor
of torch's result dtype. Kernel choice follows notes/mindspore-cpu.md: ``mindspore.mint`` where it has CPU
kernels (linear, matmul, softmax, silu, relu, …), ``mindspore.ops`` where mint lacks one on CPU (embedding →
``ops.gather``, ``ops.log_softmax``, ``ops.gelu``, ``ops.layer_norm``, ``ops.dropout``, ``ops.pad``,
``ops.one_hot``). bfloat16 on CPU is emulated (float32 storage): results are rounded to bfloat16 once at the
end
of each function, while torch's CPU kernels round some intermediates too — expect bf16 differences ≤ 1e-2.

Dropout masks are torch's (its CPU generator stream, see ``dropout``). Known differences from torch: ``pad`` supports ``mode="constant"`` only; ``embedding`` rejects
``max_norm``/``sparse=True`` (NotImplementedError).
"""
from __future__ import annotations

import builtins
import math
import warnings

import mindspore as ms
import numpy as np
from mindspore import mint, ops

from .. import _dtype as D
from .. import _tensor as _T
from .._ops.pointwise import _holds_nan
from .._ops.reduction import holds_nonfinite, nan_slices, softmax_kernel
from .._tensor import Tensor, unwrap

__all__ = [
    "linear", "bilinear", "embedding", "softmax", "log_softmax", "cross_entropy", "nll_loss", "mse_loss",
    "l1_loss", "silu", "gelu", "relu", "relu6", "leaky_relu", "sigmoid", "tanh", "softplus", "logsigmoid",
    "glu", "dropout", "layer_norm", "rms_norm", "normalize", "scaled_dot_product_attention", "pad", "one_hot",
]

_F32 = ms.float32


# ----------------------------------------------------------------------------------------------------------
# helpers


def _check_tensor(x, name: str, fn: str) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{fn}(): argument '{name}' must be Tensor, not {type(x).__name__}")


def _out(m, like: Tensor, dt=None, check: bool = False) -> Tensor:
    """Wrap MindSpore result ``m`` with dtype ``dt`` (default: like's) on like's device.

    The callers compute in ``like``'s storage dtype, so ``m`` is trusted to have it: reading ``m.dtype`` of a
    fresh MindSpore output waits for the asynchronous op queue, which would serialise every op. A different
    ``dt`` is an explicit conversion (cast); ``check=True`` reads and casts when operands may have differed.
    Emulated bfloat16 results (float32 storage) are rounded to bfloat16."""
    dt = dt or like._dt
    if dt.emulated:
        m = _T._round_bf16(ops.cast(m, _F32) if check and m.dtype != _F32 else m)
    elif dt is not like._dt or check:
        if not check or m.dtype != dt.sms:
            m = ops.cast(m, dt.sms)
    return _T._new(m, dt, like._dev)


def _sms(x: Tensor):
    """The MindSpore storage dtype of facade tensor ``x`` (known without touching its MindSpore tensor)."""
    return x._dt.sms


def _float_storage(x: Tensor, fn: str):
    if not (x._dt.is_floating_point or x._dt.is_complex):
        raise RuntimeError(f"{fn}(): expected a floating point input, got {x.dtype}")
    return unwrap(x)


def _norm_dim(dim: int, ndim: int) -> int:
    n = builtins.max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {dim})")
    return dim % n


def _softmax_default_dim(ndim: int, fn: str) -> int:
    warnings.warn(f"Implicit dimension choice for {fn} has been deprecated. Change the call to include dim=X as an "
                  "argument.", stacklevel=3)
    return 0 if ndim in (0, 1, 3) else 1


def _result_dtype(x: Tensor, dtype):
    if dtype is None:
        return x._dt
    return _T._dtype_arg(dtype)


# ----------------------------------------------------------------------------------------------------------
# linear / embedding


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = input @ weight.T + bias. input [*, in_features], weight [out_features, in_features], bias
    [out_features] → [*, out_features]. RuntimeError when in_features differ or dtypes differ."""
    _check_tensor(input, "input", "linear")
    _check_tensor(weight, "weight", "linear")
    if input.shape[-1] != weight.shape[-1]:
        raise RuntimeError(f"linear(): mat1 and mat2 shapes cannot be multiplied "
                           f"({'x'.join(str(s) for s in input.shape)} and {weight.shape[-1]}x{weight.shape[0]})")
    if input._dt is not weight._dt or (bias is not None and bias._dt is not input._dt):
        raise RuntimeError(f"linear(): expected all operands to have the same dtype, got input {input.dtype}, "
                           f"weight {weight.dtype}" + (f", bias {bias.dtype}" if bias is not None else ""))
    x = unwrap(input)
    w = unwrap(weight)
    b = unwrap(bias) if bias is not None else None
    if weight.dim() == 2 and weight.shape[-1] == 0:
        # in_features 0: torch gives zeros (+ bias); MatMul rejects the empty inner dimension.
        out = mint.zeros(tuple(input.shape[:-1]) + (weight.shape[0],), dtype=x.dtype)
        if b is not None:
            out = out + b
    elif weight.dim() == 1:
        out = mint.matmul(x, w)
        if b is not None:
            out = out + b
    else:
        # One MatMul with transpose_b on the flattened input, then the bias: bit-identical to
        # mint.nn.functional.linear, which on CPU (MindSpore 2.10) first copies weight.T to row-major order and
        # takes several times as long for large weights (see shim/torch/_ops/linalg.py).
        k = weight.shape[-1]
        out = _MATMUL_NT(x.reshape((-1, k)), w).reshape(tuple(input.shape[:-1]) + (weight.shape[0],))
        if b is not None:
            from ..autograd.grad_mode import _GRAD
            # workaround "Add backward" (shim/torch/_workarounds.py)
            # Add's backward needs CPU's missing Clone kernel when both sides require grad (see _ops/pointwise.add)
            out = mint.sub(out, b, alpha=-1) if _GRAD[0] else out + b
    return _out(out, input)


# workaround "MatMul transposed operand" (shim/torch/_workarounds.py)
_MATMUL_NT = ops.MatMul(transpose_b=True)


def bilinear(input1, input2, weight, bias=None):
    """y[*, o] = Σ_ij x1[*, i] W[o, i, j] x2[*, j] + b[o]: input1 [*, in1], input2 [*, in2], weight
    [out, in1, in2], bias [out] (one matmul, then a product-sum over in2)."""
    _check_tensor(input1, "input1", "bilinear")
    _check_tensor(input2, "input2", "bilinear")
    out_f, in1, in2 = weight.shape
    if input1.shape[-1] != in1 or input2.shape[-1] != in2 or tuple(input1.shape[:-1]) != tuple(input2.shape[:-1]):
        raise RuntimeError(f"bilinear(): input sizes {list(input1.shape)}, {list(input2.shape)} do not match "
                           f"weight {list(weight.shape)}")
    t1 = input1.matmul(weight.permute(1, 0, 2).reshape(in1, out_f * in2))
    y = (t1.reshape(list(input1.shape[:-1]) + [out_f, in2]) * input2.unsqueeze(-2)).sum(-1)
    return y if bias is None else y + bias


def embedding(input: Tensor, weight: Tensor, padding_idx: int | None = None, max_norm: float | None = None,
              norm_type: float = 2.0, scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    """Rows of ``weight`` [num_embeddings, dim] at integer ``input`` [*] → [*, dim].

    ``padding_idx``: that row's gradient stays zero (the forward value is still ``weight[padding_idx]``).
    Raises RuntimeError for non-integer indices, IndexError for indices out of range (checked on the host),
    NotImplementedError for ``max_norm``, ``scale_grad_by_freq`` or ``sparse``.
    """
    _check_tensor(input, "input", "embedding")
    _check_tensor(weight, "weight", "embedding")
    if max_norm is not None or scale_grad_by_freq or sparse:
        raise NotImplementedError("torch.nn.functional.embedding(max_norm/scale_grad_by_freq/sparse) is not "
                                  "supported by the MindSpore facade")
    if input._dt.is_floating_point or input._dt is D.bool:
        raise RuntimeError(f"Expected tensor for argument #1 'indices' to have one of the following scalar types: "
                           f"Long, Int; but got {input.dtype} instead (while checking arguments for embedding)")
    num = weight.shape[0]
    if padding_idx is not None:
        if padding_idx < 0:
            padding_idx += num
        if not 0 <= padding_idx < num:
            raise AssertionError("Padding_idx must be within num_embeddings")
    idx = unwrap(input)
    w = unwrap(weight)
    flat = idx.reshape(-1)
    # workaround "Embedding" (shim/torch/_workarounds.py)
    out = ops.gather(w, flat, 0)
    if padding_idx is not None and w._requires_grad:
        keep = (flat != padding_idx).reshape(-1, 1)
        out = mint.where(keep, out, ops.stop_gradient(out))
    out = out.reshape(tuple(idx.shape) + (w.shape[1],))
    return _out(out, weight)


# ----------------------------------------------------------------------------------------------------------
# softmax family


def softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """softmax along ``dim`` (input cast to ``dtype`` first when given). Same shape as input."""
    _check_tensor(input, "input", "softmax")
    if dim is None:
        dim = _softmax_default_dim(input.dim(), "softmax")
    dt = _result_dtype(input, dtype)
    x = unwrap(input if dtype is None else input.to(dt))
    if input.dim() == 0:
        return _out(x * 0 + 1, input, dt)
    return _out(softmax_kernel(x, _norm_dim(dim, input.dim())), input, dt)  # workaround "Softmax -inf row"


def log_softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """log(softmax(input)) along ``dim``, computed stably (``ops.log_softmax``: mint has no CPU kernel)."""
    _check_tensor(input, "input", "log_softmax")
    if dim is None:
        dim = _softmax_default_dim(input.dim(), "log_softmax")
    dt = _result_dtype(input, dtype)
    x = unwrap(input if dtype is None else input.to(dt))
    if input.dim() == 0:
        return _out(x * 0, input, dt)
    return _out(_log_softmax_m(x, _norm_dim(dim, input.dim()), dt.sms), input, dt)


_LOG_SOFTMAX_DTYPES = (ms.float32, ms.float64, ms.float16)


def _log_softmax_m(x, dim: int, storage_dtype):
    """ops.log_softmax on storage tensor ``x`` of dtype ``storage_dtype`` (upcast to float32 when the CPU
    kernel
    lacks that dtype)."""
    if storage_dtype not in _LOG_SOFTMAX_DTYPES:
        x = ops.cast(x, _F32)
    # workaround "LogSoftmaxExt" (shim/torch/_workarounds.py)
    if storage_dtype == ms.float64:
        # MindSpore's CPU LogSoftmax computes float64 with float32 accuracy (errors ~2e-6): composed instead
        shifted = x - ops.stop_gradient(x.max(axis=dim, keepdims=True))
        r = shifted - mint.log(mint.sum(mint.exp(shifted), dim, keepdim=True))
    else:
        r = ops.log_softmax(x, dim)
    # workaround "Max reduction NaN" (shim/torch/_workarounds.py): a slice holding NaN or +inf is NaN (one check)
    return nan_slices(x, r, dim) if holds_nonfinite(x) else r


def _reduce(loss, reduction: str, fn: str, denom=None):
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.sum() / denom if denom is not None else loss.mean()
    raise ValueError(f"{reduction} is not a valid value for reduction")


def _legacy_reduction(size_average, reduce, reduction: str) -> str:
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    if not reduce:
        return "none"
    return "mean" if size_average else "sum"


def _classes_last(m, ndim: int):
    """[N, C, d1, ...] → [N * d1 * ..., C]; [C] → [1, C]; [N, C] unchanged."""
    if ndim == 1:
        return m.reshape(1, -1)
    if ndim == 2:
        return m
    perm = (0,) + tuple(range(2, ndim)) + (1,)
    return mint.permute(m, perm).reshape(-1, m.shape[1])


def _nll_from_logp(logp, target_m, weight_m, ignore_index: int, logp_dtype, target_dtype):
    """logp [M, C] (float, MindSpore dtype ``logp_dtype``), target_m [M] int → loss per element [M] and the
    per-element weights (0 for ignored targets; their sum is the ``mean`` denominator)."""
    valid = target_m != ignore_index
    # workaround "ZerosLikeExt" (shim/torch/_workarounds.py)
    safe = mint.where(valid, target_m, ops.zeros_like(target_m))
    if target_dtype != ms.int64:
        safe = ops.cast(safe, ms.int64)
    picked = mint.gather(logp, 1, safe.reshape(-1, 1)).reshape(-1)
    validf = ops.cast(valid, logp_dtype)
    if weight_m is not None:
        w = ops.gather(weight_m, safe, 0) * validf
    else:
        w = validf
    loss = -picked * w
    return loss, w


def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
             ignore_index: int = -100, reduce=None, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of log-probabilities ``input`` [N, C] / [N, C, d1, ...] / [C] at class indices
    ``target`` [N] / [N, d1, ...] / []. ``mean`` divides by the summed weights of non-ignored targets (NaN
    when
    all are ignored, as torch). Raises ValueError for a bad ``reduction`` or mismatched batch sizes."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_tensor(input, "input", "nll_loss")
    _check_tensor(target, "target", "nll_loss")
    _check_class_target(input, target, "nll_loss")
    logp = _classes_last(unwrap(input), input.dim())
    tgt = unwrap(target).reshape(-1)
    w_m = unwrap(weight) if weight is not None else None
    if w_m is not None and weight._dt.sms != _sms(input):
        w_m = ops.cast(w_m, _sms(input))
    loss, w = _nll_from_logp(logp, tgt, w_m, ignore_index, _sms(input), _sms(target))
    return _finish_class_loss(loss, w, reduction, input, target)


def _check_class_target(input: Tensor, target: Tensor, fn: str) -> None:
    if target._dt.is_floating_point:
        return
    if input.dim() == 1:
        if target.dim() != 0:
            raise ValueError(f"{fn}: expected target of 0 dims for an input of 1 dim, got {tuple(target.shape)}")
        return
    if target.shape[0] != input.shape[0]:
        raise ValueError(f"Expected input batch_size ({input.shape[0]}) to match target batch_size "
                         f"({target.shape[0]}).")
    if tuple(target.shape[1:]) != tuple(input.shape[2:]):
        raise RuntimeError(f"{fn}: expected target size {tuple(input.shape[:1]) + tuple(input.shape[2:])}, got "
                           f"{tuple(target.shape)}")


def _finish_class_loss(loss, w, reduction: str, input: Tensor, target: Tensor) -> Tensor:
    if reduction == "none":
        return _out(loss.reshape(tuple(target.shape)), input)
    if reduction == "sum":
        return _out(loss.sum(), input)
    if reduction == "mean":
        return _out(loss.sum() / w.sum(), input)
    raise ValueError(f"{reduction} is not a valid value for reduction")


def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
                  ignore_index: int = -100, reduce=None, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy between logits ``input`` ([N, C], [N, C, d1, ...] or [C]) and ``target``: class indices
    (int, [N] / [N, d1, ...] / []) or class probabilities (float, same shape as input).

    As torch: ``ignore_index`` targets contribute 0 and are left out of the ``mean`` denominator (sum of the
    target weights); ``label_smoothing`` ε mixes in the uniform distribution:
    loss = (1-ε)·nll + ε/C·Σ_c(-w_c·logp_c) with the smoothing term reduced by the same denominator.
    Raises ValueError for ``label_smoothing`` outside [0, 1] or a bad ``reduction``.
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_tensor(input, "input", "cross_entropy")
    _check_tensor(target, "target", "cross_entropy")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    x = unwrap(input)
    ndim = input.dim()
    class_dim = 0 if ndim == 1 else 1
    n_classes = input.shape[class_dim]
    logp_dtype = _sms(input) if _sms(input) in _LOG_SOFTMAX_DTYPES else _F32
    logp = _log_softmax_m(x, class_dim, _sms(input))
    logp2 = _classes_last(logp, ndim)
    w_m = unwrap(weight) if weight is not None else None
    if w_m is not None and weight._dt.sms != logp_dtype:
        w_m = ops.cast(w_m, logp_dtype)

    if target._dt.is_floating_point:  # probabilities
        if tuple(target.shape) != tuple(input.shape):
            raise RuntimeError(f"cross_entropy: probability target shape {tuple(target.shape)} must equal the "
                               f"input shape {tuple(input.shape)}")
        t2 = _classes_last(unwrap(target), ndim)
        if _sms(target) != logp_dtype:
            t2 = ops.cast(t2, logp_dtype)
        if label_smoothing > 0:
            t2 = t2 * (1 - label_smoothing) + label_smoothing / n_classes
        prod = logp2 * t2
        if w_m is not None:
            prod = prod * w_m.reshape(1, -1)
        loss = -prod.sum(-1)
        if reduction == "none":
            shape = () if ndim == 1 else (input.shape[0],) + tuple(input.shape[2:])
            return _out(loss.reshape(shape), input)
        if reduction == "sum":
            return _out(loss.sum(), input)
        batch = 1 if ndim == 1 else input.shape[0]
        return _out(loss.sum() / batch, input)

    _check_class_target(input, target, "cross_entropy")
    tgt = unwrap(target).reshape(-1)
    loss, w = _nll_from_logp(logp2, tgt, w_m, ignore_index, logp_dtype, _sms(target))
    if label_smoothing <= 0:
        return _finish_class_loss(loss, w, reduction, input, target)
    valid = ops.cast(tgt != ignore_index, logp_dtype)
    smooth_terms = logp2 * w_m.reshape(1, -1) if w_m is not None else logp2
    smooth = -smooth_terms.sum(-1) * valid
    eps = label_smoothing
    if reduction == "none":
        total = loss * (1 - eps) + smooth * (eps / n_classes)
        return _out(total.reshape(tuple(target.shape)), input)
    if reduction == "sum":
        total = loss.sum() * (1 - eps) + smooth.sum() * (eps / n_classes)
        return _out(total, input)
    denom = w.sum()
    total = (loss.sum() / denom) * (1 - eps) + (smooth.sum() / denom) * (eps / n_classes)
    return _out(total, input)


def mse_loss(input: Tensor, target: Tensor, size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """Mean squared error (inputs broadcast like torch)."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    d = unwrap(input) - unwrap(target)
    return _out(_reduce(d * d, reduction, "mse_loss"), input, check=True)


def l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """Mean absolute error."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    return _out(_reduce(mint.abs(unwrap(input) - unwrap(target)), reduction, "l1_loss"), input, check=True)


# ----------------------------------------------------------------------------------------------------------
# activations


def _inplace_result(input: Tensor, result: Tensor, inplace: bool) -> Tensor:
    if inplace:
        return input.copy_(result)
    return result


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """x * sigmoid(x)."""
    return _inplace_result(input, _out(mint.nn.functional.silu(_float_storage(input, "silu")), input), inplace)


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """GELU: exact (erf) with ``approximate="none"``, tanh approximation with ``"tanh"``; ValueError
    otherwise."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"approximate argument must be either none or tanh, got {approximate!r}")
    # workaround "GeluExt" (shim/torch/_workarounds.py)
    return _out(ops.gelu(_float_storage(input, "gelu"), approximate=approximate), input)


def _keep_nan(r, input):
    """MindSpore result `r` of an activation of `input` with `input`'s NaN put back (the gradient passes there, as
    torch's threshold/hardtanh backward: NaN compares false with the bounds): workaround "Clamp NaN"
    (shim/torch/_workarounds.py), which MindSpore's ReLU kernel shares (NaN comes out as 0). Only when `input`
    holds NaN (one check)."""
    if not _holds_nan(input):
        return r
    x = unwrap(input)
    return mint.where(mint.isnan(x), x, r)


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """max(x, 0); NaN stays NaN."""
    return _inplace_result(input, _out(_keep_nan(mint.nn.functional.relu(unwrap(input)), input), input), inplace)


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    """min(max(x, 0), 6); NaN stays NaN."""
    return _inplace_result(input, _out(_keep_nan(mint.clamp(unwrap(input), 0.0, 6.0), input), input), inplace)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """x if x > 0 else negative_slope * x."""
    x = unwrap(input)
    return _inplace_result(input, _out(mint.where(x > 0, x, x * negative_slope), input), inplace)


def sigmoid(input: Tensor) -> Tensor:
    """1 / (1 + exp(-x))."""
    return _out(mint.sigmoid(_float_storage(input, "sigmoid")), input)


def tanh(input: Tensor) -> Tensor:
    """Hyperbolic tangent (torch.tanh's computation: float32 through MindSpore's float64 kernel)."""
    from .._ops.pointwise import _tanh64
    return _out(_tanh64(_float_storage(input, "tanh")), input)


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta x)) / beta, linear above ``threshold`` (torch's definition)."""
    x = _float_storage(input, "softplus")
    bx = x * beta
    soft = mint.log1p(mint.exp(mint.minimum(bx, ms.Tensor(threshold, _sms(input))))) / beta
    return _out(mint.where(bx > threshold, x, soft), input)


def logsigmoid(input: Tensor) -> Tensor:
    """log(sigmoid(x)) = -softplus(-x), computed stably."""
    x = _float_storage(input, "logsigmoid")
    # mint.zeros_like has no CPU kernel (ZerosLikeExt): min(x, 0) as a clamp
    return _out(mint.clamp(x, max=0.0) - mint.log1p(mint.exp(-mint.abs(x))), input)


def glu(input: Tensor, dim: int = -1) -> Tensor:
    """a * sigmoid(b) where a, b are the halves of ``input`` along ``dim`` (RuntimeError for an odd size)."""
    dim = _norm_dim(dim, input.dim())
    if input.shape[dim] % 2:
        raise RuntimeError(f"Halving dimension must be even, but dimension {dim} is size {input.shape[dim]}")
    a, b = mint.chunk(unwrap(input), 2, dim)
    return _out(a * mint.sigmoid(b), input)


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by 1/(1-p) when ``training``; identity
    otherwise (also for ``p == 0``, without drawing). ValueError for p outside [0, 1].

    torch's CPU composition (``aten/src/ATen/native/Dropout.cpp`` ``_dropout_impl``): ``noise =
    empty_like(input).bernoulli_(1 - p)``, ``noise.div_(1 - p)`` (in the input's dtype: float32 keeps
    ``1 / float32(1 - p)``, bfloat16 rounds it), ``input * noise``; so masks and values are torch's bit for bit
    under ``torch.manual_seed`` (the mask is drawn from the default generator, see shim/torch/_cpu_rng.py), and
    restoring an RNG state repeats the masks (megatron-core's ``CudaRNGStatesTracker``). Gradient: through the
    multiplication, as in torch. Cost: one host draw and copy of the mask per call."""
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0 or input.numel() == 0:
        return input
    x = _float_storage(input, "dropout")
    if p == 1.0:
        result = _out(x * 0, input)
    else:
        from .. import _cpu_rng
        from ..random import default_generator
        q = 1.0 - p
        keep = _cpu_rng.bernoulli_scalar(default_generator._eng, input.numel(), q).reshape(tuple(input.shape))
        if input._dt.name == "float64":
            noise = keep * (1.0 / q)
        else:
            scale = np.float32(1.0) / np.float32(q)
            if input._dt.name == "bfloat16":
                scale = np.float32(_T._round_bf16(ms.Tensor(np.array([scale], np.float32))).asnumpy()[0])
            elif input._dt.name == "float16":
                scale = np.float32(np.float16(scale))
            noise = keep.astype(np.float32) * scale
        result = _out(x * ms.Tensor(noise.astype(np.float32 if input._dt.emulated else input._dt.np)), input)
    return _inplace_result(input, result, inplace)


# ----------------------------------------------------------------------------------------------------------
# normalization


def _norm_shape(normalized_shape) -> tuple:
    if isinstance(normalized_shape, int):
        return (normalized_shape,)
    return tuple(int(s) for s in normalized_shape)


def layer_norm(input: Tensor, normalized_shape, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """(x - mean) / sqrt(var + eps) * weight + bias over the trailing ``normalized_shape`` dims (biased
    variance). RuntimeError when the trailing dims of input do not equal ``normalized_shape``."""
    shape = _norm_shape(normalized_shape)
    _check_tensor(input, "input", "layer_norm")
    if tuple(input.shape[input.dim() - len(shape):]) != shape:
        raise RuntimeError(f"Given normalized_shape={list(shape)}, expected input with shape [*, "
                           f"{', '.join(str(s) for s in shape)}], but got input of size{list(input.shape)}")
    x = _float_storage(input, "layer_norm")
    w = unwrap(weight) if weight is not None else mint.ones(shape, dtype=_sms(input))
    b = unwrap(bias) if bias is not None else mint.zeros(shape, dtype=_sms(input))
    begin = input.dim() - len(shape)
    # workaround "LayerNormExt" (shim/torch/_workarounds.py)
    out = ops.LayerNorm(begin_norm_axis=begin, begin_params_axis=begin, epsilon=eps)(x, w, b)[0]
    return _out(out, input)


def rms_norm(input: Tensor, normalized_shape, weight: Tensor | None = None, eps: float | None = None) -> Tensor:
    """x * rsqrt(mean(x², trailing dims) + eps) * weight; ``eps`` defaults to ``torch.finfo(input.dtype).eps``
    (torch's rule). RuntimeError on a shape mismatch like `layer_norm`."""
    shape = _norm_shape(normalized_shape)
    _check_tensor(input, "input", "rms_norm")
    if tuple(input.shape[input.dim() - len(shape):]) != shape:
        raise RuntimeError(f"Given normalized_shape={list(shape)}, expected input with shape [*, "
                           f"{', '.join(str(s) for s in shape)}], but got input of size{list(input.shape)}")
    if eps is None:
        eps = D.finfo(input._dt).eps
    x = _float_storage(input, "rms_norm")
    dims = tuple(range(input.dim() - len(shape), input.dim()))
    ms_ = mint.mean(x * x, dim=dims, keepdim=True)
    out = x * mint.rsqrt(ms_ + eps)
    if weight is not None:
        out = out * unwrap(weight)
    return _out(out, input)


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12, out=None) -> Tensor:
    """input / max(||input||_p along dim, eps)."""
    if out is not None:
        raise NotImplementedError("torch.nn.functional.normalize(out=...) is not supported by the MindSpore facade")
    x = _float_storage(input, "normalize")
    d = _norm_dim(dim, input.dim())
    if p == 2.0:
        norm = mint.sqrt((x * x).sum(d, keepdim=True))
    else:
        norm = mint.pow(mint.pow(mint.abs(x), p).sum(d, keepdim=True), 1.0 / p)
    return _out(x / mint.clamp(norm, min=eps), input)


# ----------------------------------------------------------------------------------------------------------
# attention


def _repeat_heads(m, rep: int):
    """[..., H, S, E] → [..., H*rep, S, E] with each head repeated ``rep`` times consecutively
    (torch's repeat_interleave on dim -3)."""
    if rep == 1:
        return m
    shape = tuple(m.shape)
    lead, h, s, e = shape[:-3], shape[-3], shape[-2], shape[-1]
    expanded = mint.broadcast_to(m.reshape(lead + (h, 1, s, e)), lead + (h, rep, s, e))
    return expanded.reshape(lead + (h * rep, s, e))


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor, attn_mask: Tensor | None = None,
                                 dropout_p: float = 0.0, is_causal: bool = False, scale: float | None = None,
                                 enable_gqa: bool = False) -> Tensor:
    """softmax(Q Kᵀ · scale + mask) V. query [..., Hq, L, E], key [..., Hk, S, E], value [..., Hk, S, Ev]
    → [..., Hq, L, Ev]; ``scale`` defaults to 1/sqrt(E).

    ``attn_mask`` (broadcastable to [..., L, S]): bool (True = attend) or float (added to the scores).
    ``is_causal`` uses a lower-triangular [L, S] mask (error together with ``attn_mask``, as torch).
    ``enable_gqa`` repeats each key/value head Hq/Hk times (RuntimeError when Hq is not a multiple of Hk, or
    when heads differ without it). ``dropout_p`` drops attention weights as torch's CPU math path does: F.dropout
    on the softmax (the same mask from torch's CPU stream under ``torch.manual_seed``).
    """
    for name, t in (("query", query), ("key", key), ("value", value)):
        _check_tensor(t, name, "scaled_dot_product_attention")
    if is_causal and attn_mask is not None:
        raise RuntimeError("_scaled_dot_product_attention: Explicit attn_mask should not be set when "
                           "is_causal=True")
    q, k, v = unwrap(query), unwrap(key), unwrap(value)
    hq, hk = query.shape[-3] if query.dim() >= 3 else 1, key.shape[-3] if key.dim() >= 3 else 1
    if hq != hk:
        if not enable_gqa:
            raise RuntimeError(f"scaled_dot_product_attention: query has {hq} heads and key {hk}; pass "
                               "enable_gqa=True for grouped-query attention")
        if hq % hk != 0 or value.shape[-3] != hk:
            raise RuntimeError(f"scaled_dot_product_attention: number of query heads ({hq}) must be a multiple of "
                               f"key/value heads ({hk}, {value.shape[-3]})")
        k = _repeat_heads(k, hq // hk)
        v = _repeat_heads(v, hq // hk)
    e = query.shape[-1]
    scale_factor = 1.0 / math.sqrt(e) if scale is None else scale
    L, S = query.shape[-2], key.shape[-2]
    scores = mint.matmul(q, mint.transpose(k, -2, -1)) * scale_factor
    if is_causal:
        causal = ms.Tensor(np.tril(np.ones((L, S), dtype=np.bool_)))
        scores = scores.masked_fill(~causal, float("-inf"))
    if attn_mask is not None:
        m = unwrap(attn_mask)
        if attn_mask._dt is D.bool:
            scores = scores.masked_fill(~m, float("-inf"))
        else:
            scores = scores + (m if attn_mask._dt.sms == _sms(query) else ops.cast(m, _sms(query)))
    probs = softmax_kernel(scores, -1, dead_value=0.0)  # workaround "Softmax -inf row"; torch: masked row -> 0
    if dropout_p > 0.0:
        # torch's CPU math path: softmax, then at::dropout (the same mask draw as F.dropout, torch's CPU stream)
        probs = unwrap(dropout(_out(probs, query), dropout_p, True))
    out = mint.matmul(probs, v)
    return _out(out, query)


# ----------------------------------------------------------------------------------------------------------
# shape utilities


def pad(input: Tensor, pad, mode: str = "constant", value: float | None = None) -> Tensor:
    """Pad the last ``len(pad) // 2`` dims: ``pad = (left_last, right_last, left_prev, right_prev, ...)``
    (negative values crop). ``mode="constant"`` fills ``value`` (default 0); "reflect", "replicate" and
    "circular" index the input (an index_select per padded dim). ValueError for an odd-length ``pad`` or one
    longer than 2 * input.dim()."""
    _check_tensor(input, "input", "pad")
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2:
        raise ValueError("Padding length must be divisible by 2")
    if len(pad) // 2 > input.dim():
        raise ValueError("Padding length should be less than or equal to two times the input dimension but got "
                         f"padding length {len(pad)} and input of dimension {input.dim()}")
    if mode in ("reflect", "replicate", "circular"):
        return _pad_by_index(input, pad, mode)
    if mode != "constant":
        raise NotImplementedError(f"torch.nn.functional.pad(mode={mode!r}) is not supported by the MindSpore "
                                  "facade; modes: constant, reflect, replicate, circular")
    out_shape = list(input.shape)
    for i in range(len(pad) // 2):
        d = input.dim() - 1 - i
        out_shape[d] += pad[2 * i] + pad[2 * i + 1]
        if out_shape[d] < 0:
            raise RuntimeError(f"The input size {input.shape[d]}, plus negative padding {pad[2 * i]} and "
                               f"{pad[2 * i + 1]} resulted in a negative output size, which is invalid. Check "
                               f"dimension {d} of your input.")
    if 0 in out_shape or input.numel() == 0:  # MindSpore's PadV3 rejects empty inputs and results: all fill
        fill = 0 if value is None else value
        out = input.new_full(out_shape, fill)
        return out + input.sum() * 0 if input.is_floating_point() else out
    if any(p < 0 for p in pad):
        # workaround "PadV3 negative padding" (shim/torch/_workarounds.py): crop by slicing, then pad
        for i in range(len(pad) // 2):
            dim = input.dim() - 1 - i
            lo, hi = builtins.max(-pad[2 * i], 0), builtins.max(-pad[2 * i + 1], 0)
            if lo or hi:
                input = input.narrow(dim, lo, input.shape[dim] - lo - hi)
        pad = tuple(builtins.max(p, 0) for p in pad)
    x = unwrap(input)
    if all(p == 0 for p in pad):
        return _out(x + 0 if input._dt is not D.bool else ops.cast(ops.cast(x, ms.int32), ms.bool_), input)
    fill = 0 if value is None else value
    if input._dt is D.bool:
        out = ops.cast(ops.pad(ops.cast(x, ms.int32), pad, mode="constant", value=int(bool(fill))), ms.bool_)
    else:
        out = ops.pad(x, pad, mode="constant", value=fill)
    return _out(out, input)


def _pad_by_index(input: Tensor, pad, mode: str) -> Tensor:
    """reflect / replicate / circular padding as one index_select per padded dimension (indices built on the
    host; gradients flow through the gathers). Negative pads crop. torch's limits: reflect needs pad < size,
    circular pad <= size; these modes pad at most the last 3 dimensions of a (batched or unbatched) input."""
    from .._ops.indexing import index_select
    from .._ops.creation import tensor as _tensor
    n = len(pad) // 2
    if n > 3 or input.dim() < n + 1:
        raise NotImplementedError(f"torch.nn.functional.pad(mode={mode!r}) pads the last 1-3 dimensions of a "
                                  f"batched or unbatched input; got pad of length {len(pad)} for a "
                                  f"{input.dim()}-d input")
    out = input
    for i in range(n):
        left, right = pad[2 * i], pad[2 * i + 1]
        d = input.dim() - 1 - i
        L = input.shape[d]
        if mode == "reflect" and (left >= L or right >= L):
            raise RuntimeError(f"Argument #4: Padding size should be less than the corresponding input dimension, "
                               f"but got: padding ({left}, {right}) at dimension {d} of input {list(input.shape)}")
        if mode == "circular" and (left > L or right > L):
            raise RuntimeError("Padding value causes wrapping around more than once.")
        pos = np.arange(-left, L + right)
        if mode == "replicate":
            idx = np.clip(pos, 0, L - 1)
        elif mode == "circular":
            idx = np.mod(pos, L)
        else:
            period = 2 * (L - 1) if L > 1 else 1
            r = np.mod(pos, period)
            idx = np.where(r < L, r, period - r)
        out = index_select(out, d, _tensor(idx.astype(np.int64)))
    return out


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """int64 one-hot encoding [*, num_classes] of integer ``tensor`` [*]; ``num_classes=-1`` uses max+1.
    RuntimeError for non-integer input or a class index outside [0, num_classes)."""
    _check_tensor(tensor, "tensor", "one_hot")
    if tensor._dt.is_floating_point or tensor._dt is D.bool:
        raise RuntimeError("one_hot is only applicable to index tensor of type LongTensor.")
    idx = unwrap(tensor)
    host = idx.asnumpy()
    if num_classes == -1:
        num_classes = int(host.max()) + 1 if host.size else 0
    if host.size and (host.min() < 0 or host.max() >= num_classes):
        raise RuntimeError("Class values must be smaller than num_classes." if host.max() >= num_classes
                           else "Class values must be non-negative.")
    out = ops.one_hot(ops.cast(idx, ms.int32), num_classes, ms.Tensor(1, ms.int64), ms.Tensor(0, ms.int64))
    return _T._new(out, D.int64, tensor._dev)


# ----------------------------------------------------------------------------------------------------------
# composites: written with facade ops (dtype rules, bfloat16 rounding and autograd come from them); each is
# marked emulated for shim/API.md


def _T_():
    import shim.torch as T
    return T


def _emulated(how):
    from .._ops._support import emulated
    return emulated(how)


@_emulated("x / (1 + |x|)")
def softsign(input: Tensor) -> Tensor:
    """x / (1 + |x|)."""
    return input / (input.abs() + 1)


@_emulated("x - tanh(x)")
def tanhshrink(input: Tensor) -> Tensor:
    """x - tanh(x)."""
    return input - _T_().tanh(input)


@_emulated("clamp(x, min_val, max_val)")
def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> Tensor:
    """clamp(x, min_val, max_val) (ValueError when min_val > max_val)."""
    if min_val > max_val:
        raise ValueError("min_val cannot be greater than max_val")
    if not input._dt.is_floating_point:  # integer inputs keep their dtype (torch clamps with integral bounds)
        min_val, max_val = int(min_val), int(max_val)
    return _inplace_result(input, _T_().clamp(input, min_val, max_val), inplace)


@_emulated("clamp(x / 6 + 1/2, 0, 1)")
def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    """relu6(x + 3) / 6."""
    return _inplace_result(input, _T_().clamp(input / 6 + 0.5, 0.0, 1.0), inplace)


@_emulated("x * hardsigmoid(x)")
def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    """x * relu6(x + 3) / 6."""
    return _inplace_result(input, input * _T_().clamp(input / 6 + 0.5, 0.0, 1.0), inplace)


@_emulated("x * tanh(softplus(x))")
def mish(input: Tensor, inplace: bool = False) -> Tensor:
    """x * tanh(softplus(x))."""
    return _inplace_result(input, input * _T_().tanh(softplus(input)), inplace)


def _elu(input, alpha, scale, input_scale):
    T = _T_()
    neg = T.expm1(T.clamp(input, max=0.0) * input_scale) * (alpha * scale)
    return T.where(input > 0, input * scale, neg)


@_emulated("where(x > 0, x, alpha * expm1(x))")
def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x for x > 0, alpha * (exp(x) - 1) otherwise."""
    return _inplace_result(input, _elu(input, alpha, 1.0, 1.0), inplace)


@_emulated("where(x > 0, x, alpha * expm1(x / alpha))")
def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """max(0, x) + min(0, alpha * (exp(x / alpha) - 1))."""
    return _inplace_result(input, _elu(input, alpha, 1.0, 1.0 / alpha), inplace)


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


@_emulated("scale * elu(x, alpha) with torch's constants")
def selu(input: Tensor, inplace: bool = False) -> Tensor:
    """scale * (max(0, x) + min(0, alpha * (exp(x) - 1)))."""
    return _inplace_result(input, _elu(input, _SELU_ALPHA, _SELU_SCALE, 1.0), inplace)


@_emulated("where(x > l, x - l, where(x < -l, x + l, 0))")
def softshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """x - lambd above lambd, x + lambd below -lambd, 0 between."""
    T = _T_()
    return T.where(input > lambd, input - lambd, T.where(input < -lambd, input + lambd, input * 0))


@_emulated("where(|x| > l, x, 0)")
def hardshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """x where |x| > lambd, 0 elsewhere."""
    T = _T_()
    return T.where((input > lambd).logical_or(input < -lambd), input, input * 0)


@_emulated("where(x > threshold, x, value)")
def threshold(input: Tensor, threshold: float, value: float, inplace: bool = False) -> Tensor:
    """x where x > threshold, `value` elsewhere."""
    T = _T_()
    return _inplace_result(input, T.where(input > threshold, input, T.full_like(input, value)), inplace)


@_emulated("softmax(-x)")
def softmin(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """softmax(-input) along `dim`."""
    return softmax(-input, dim, dtype=dtype)


@_emulated("where(x >= 0, x, weight * x), weight along dim 1")
def prelu(input: Tensor, weight: Tensor) -> Tensor:
    """x for x >= 0, weight * x otherwise; weight has 1 or C (= input.size(1)) elements."""
    T = _T_()
    w = weight
    if weight.numel() != 1:
        if input.dim() < 2 or weight.numel() != input.shape[1]:
            raise RuntimeError(f"Mismatch of parameter numbers and input channel size. Found parameter numbers = "
                               f"{weight.numel()} and channel size = {input.shape[1] if input.dim() > 1 else 1}.")
        w = weight.reshape((weight.numel(),) + (1,) * (input.dim() - 2))
    else:  # a 0-d weight keeps a 0-d input 0-d (torch)
        w = weight.reshape(())
    return T.where(input >= 0, input, input * w)


@_emulated("0.5 d^2 / beta below beta, d - beta / 2 above (d = |x - y|)")
def smooth_l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None, reduction: str = "mean",
                   beta: float = 1.0) -> Tensor:
    """Smooth L1 (Huber divided by beta); beta = 0 is L1."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    T = _T_()
    d = (input - target).abs()
    loss = d if beta == 0 else T.where(d < beta, d * d * (0.5 / beta), d - 0.5 * beta)
    return _reduce(loss, reduction, "smooth_l1_loss")


@_emulated("0.5 d^2 below delta, delta (d - delta / 2) above (d = |x - y|)")
def huber_loss(input: Tensor, target: Tensor, reduction: str = "mean", delta: float = 1.0,
               weight: Tensor | None = None) -> Tensor:
    """Huber loss."""
    T = _T_()
    d = (input - target).abs()
    loss = T.where(d < delta, d * d * 0.5, (d - 0.5 * delta) * delta)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "huber_loss")


@_emulated("log1p(exp(-y x)) as softplus")
def soft_margin_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
                     reduction: str = "mean") -> Tensor:
    """log(1 + exp(-y x))."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    return _reduce(_T_().log1p(_T_().exp(-target * input)), reduction, "soft_margin_loss")


@_emulated("max(0, -y (x1 - x2) + margin)")
def margin_ranking_loss(input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0, size_average=None,
                        reduce=None, reduction: str = "mean") -> Tensor:
    """max(0, -target * (input1 - input2) + margin)."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    return _reduce(_T_().clamp(-target * (input1 - input2) + margin, min=0), reduction, "margin_ranking_loss")


@_emulated("target * (log(target) - input), 0 where target == 0 (xlogy)")
def kl_div(input: Tensor, target: Tensor, size_average=None, reduce=None, reduction: str = "mean",
           log_target: bool = False) -> Tensor:
    """KL divergence with `input` in log space; reduction 'batchmean' divides the sum by input.size(0)."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    T = _T_()
    loss = T.exp(target) * (target - input) if log_target else T.xlogy(target, target) - target * input
    if reduction == "batchmean":
        return loss.sum() / (input.shape[0] if input.dim() else 1)
    return _reduce(loss, reduction, "kl_div")


@_emulated("-(y log x + (1 - y) log(1 - x)) with logs clamped at -100 (torch's)")
def binary_cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
                         reduce=None, reduction: str = "mean") -> Tensor:
    """Binary cross entropy on probabilities (ValueError when target's size differs from input's)."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"Using a target size ({tuple(target.shape)}) that is different to the input size "
                         f"({tuple(input.shape)}) is deprecated. Please ensure they have the same size.")
    T = _T_()
    loss = -(target * T.clamp(T.log(input), min=-100) + (1 - target) * T.clamp(T.log1p(-input), min=-100))
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "binary_cross_entropy")


@_emulated("(1 - y) x + (1 + (pw - 1) y) (log1p(exp(-|x|)) + max(-x, 0))")
def binary_cross_entropy_with_logits(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
                                     reduce=None, reduction: str = "mean", pos_weight: Tensor | None = None
                                     ) -> Tensor:
    """Binary cross entropy on logits, computed stably."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"Target size ({tuple(target.shape)}) must be the same as input size "
                         f"({tuple(input.shape)})")
    T = _T_()
    tail = T.log1p(T.exp(-input.abs())) + T.clamp(-input, min=0)
    if pos_weight is not None:
        loss = (1 - target) * input + (1 + (pos_weight - 1) * target) * tail
    else:
        loss = (1 - target) * input + tail
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "binary_cross_entropy_with_logits")


@_emulated("sum((x1 / max(|x1|, eps)) * (x2 / max(|x2|, eps)))")
def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """Cosine similarity along `dim` (each norm clamped below at eps, as torch)."""
    T = _T_()
    n1 = T.clamp(T.sqrt((x1 * x1).sum(dim, keepdim=True)), min=eps)
    n2 = T.clamp(T.sqrt((x2 * x2).sum(dim, keepdim=True)), min=eps)
    return ((x1 / n1) * (x2 / n2)).sum(dim)


@_emulated("p-norm of (x1 - x2 + eps) over the last dim")
def pairwise_distance(x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False) -> Tensor:
    """||x1 - x2 + eps||_p over the last dimension."""
    T = _T_()
    d = x1 - x2 + eps
    dim = -1 if builtins.max(x1.dim(), x2.dim()) > 0 else None
    return T.norm(d, p, dim=dim, keepdim=keepdim) if dim is not None else T.norm(d, p)


@_emulated("where(y != -1, x, 0) + where(y != 1, max(0, margin - x), 0)")
def hinge_embedding_loss(input: Tensor, target: Tensor, margin: float = 1.0, size_average=None, reduce=None,
                         reduction: str = "mean") -> Tensor:
    """x where target is 1, max(0, margin - x) where target is -1."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    T = _T_()
    zero = input * 0
    loss = T.where(target != 1, T.clamp(margin - input, min=0), zero) + T.where(target != -1, input, zero)
    return _reduce(loss, reduction, "hinge_embedding_loss")


@_emulated("where(y == 1, 1 - cos, max(0, cos - margin)), cos with torch's 1e-12 guard")
def cosine_embedding_loss(input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0, size_average=None,
                          reduce=None, reduction: str = "mean") -> Tensor:
    """1 - cos(x1, x2) for target 1, max(0, cos(x1, x2) - margin) for target -1 (cos along the last dim)."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    T = _T_()
    d = input1.dim() - 1
    prod = (input1 * input2).sum(d)
    mag1 = (input1 * input1).sum(d) + 1e-12
    mag2 = (input2 * input2).sum(d) + 1e-12
    cos = prod / T.sqrt(mag1 * mag2)
    zero = cos * 0
    loss = T.where(target == 1, 1 - cos, zero) + T.where(target == -1, T.clamp(cos - margin, min=0), zero)
    return _reduce(loss, reduction, "cosine_embedding_loss")


@_emulated("reshape + permute")
def pixel_shuffle(input: Tensor, upscale_factor: int) -> Tensor:
    """(*, C r^2, H, W) -> (*, C, H r, W r)."""
    r = int(upscale_factor)
    *b, c, h, w = input.shape
    if c % (r * r):
        raise RuntimeError(f"pixel_shuffle expects its input's 'channel' dimension to be divisible by the square of "
                           f"upscale_factor, but input.size(-3)={c} is not divisible by {r * r}")
    n = len(b)
    x = input.reshape(*b, c // (r * r), r, r, h, w)
    x = x.permute(*range(n), n, n + 3, n + 1, n + 4, n + 2)
    return x.reshape(*b, c // (r * r), h * r, w * r)


@_emulated("reshape + permute")
def pixel_unshuffle(input: Tensor, downscale_factor: int) -> Tensor:
    """(*, C, H r, W r) -> (*, C r^2, H, W)."""
    r = int(downscale_factor)
    *b, c, h, w = input.shape
    if h % r or w % r:
        raise RuntimeError("pixel_unshuffle expects height and width to be divisible by downscale_factor")
    n = len(b)
    x = input.reshape(*b, c, h // r, r, w // r, r)
    x = x.permute(*range(n), n, n + 2, n + 4, n + 1, n + 3)
    return x.reshape(*b, c * r * r, h // r, w // r)


# ----------------------------------------------------------------------------------------------------------
# convolution and pooling (MindSpore's ops.* kernels: mint's conv/pool functions have no CPU kernels). 1-d variants
# run the 2-d kernel on a height-1 input; unbatched inputs get a batch dimension for the call.


def _ntuple(v, n: int, name: str):
    if isinstance(v, (tuple, list)):
        if len(v) == 1:
            return (int(v[0]),) * n
        if len(v) != n:
            raise RuntimeError(f"{name} must have {n} elements, got {len(v)}")
        return tuple(int(x) for x in v)
    return (int(v),) * n


def _spatial_in(input: Tensor, nd: int, fn: str):
    """(storage with a batch dim and, for 1-d, a height-1 dim; unbatched?)."""
    if input.dim() not in (nd + 1, nd + 2):
        raise RuntimeError(f"{fn}: Expected {nd + 1}D (unbatched) or {nd + 2}D (batched) input, but got input of "
                           f"size: {list(input.shape)}")
    m = unwrap(input)
    unbatched = input.dim() == nd + 1
    if unbatched:
        m = m.expand_dims(0)
    if nd == 1:
        m = m.expand_dims(2)
    return m, unbatched


def _spatial_out(m, nd: int, unbatched: bool):
    if nd == 1:
        m = m.squeeze(2)
    if unbatched:
        m = m.squeeze(0)
    return m


def _conv(input, weight, bias, stride, padding, dilation, groups, nd, fn):
    _check_tensor(input, "input", fn)
    _check_tensor(weight, "weight", fn)
    _float_only(input, fn)
    k = tuple(weight.shape[2:])
    s, d = _ntuple(stride, nd, "stride"), _ntuple(dilation, nd, "dilation")
    if isinstance(padding, str):
        if padding == "valid":
            pads = [(0, 0)] * nd
        elif padding == "same":
            if builtins.any(x != 1 for x in s):
                raise ValueError("padding='same' is not supported for strided convolutions")
            pads = [(t // 2, t - t // 2) for t in (di * (ki - 1) for di, ki in zip(d, k))]
        else:
            raise ValueError(f"Invalid padding string {padding!r}, should be one of {{'valid', 'same'}}")
    else:
        pads = [(p, p) for p in _ntuple(padding, nd, "padding")]
    x, unbatched = _spatial_in(input, nd, fn)
    w = unwrap(weight)
    if nd == 1:
        w = w.expand_dims(2)
        s, d, pads = (1,) + s, (1,) + d, [(0, 0)] + pads
    if builtins.any(a or b for a, b in pads):
        flat = []
        for a, b in reversed(pads):
            flat += [a, b]
        x = ops.pad(x, tuple(flat))
    conv = ops.conv3d if nd == 3 else ops.conv2d
    out = conv(x, w, None, s, "valid", 0, d, int(groups))
    if bias is not None:
        out = out + unwrap(bias).reshape((1, -1) + (1,) * (len(out.shape) - 2))
    return _out(_spatial_out(out, nd, unbatched), input)


def conv1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1,
           groups: int = 1) -> Tensor:
    """1-d convolution: input [N, C_in, L] (or [C_in, L]), weight [C_out, C_in / groups, K]; padding an int,
    a tuple, "valid" or "same" (extra padding on the right, as torch). Computed as a 2-d convolution."""
    return _conv(input, weight, bias, stride, padding, dilation, groups, 1, "conv1d")


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1,
           groups: int = 1) -> Tensor:
    """2-d convolution: input [N, C_in, H, W] (or unbatched), weight [C_out, C_in / groups, kH, kW]."""
    return _conv(input, weight, bias, stride, padding, dilation, groups, 2, "conv2d")


def conv3d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1,
           groups: int = 1) -> Tensor:
    """3-d convolution: input [N, C_in, D, H, W] (or unbatched), weight [C_out, C_in / groups, kD, kH, kW]."""
    return _conv(input, weight, bias, stride, padding, dilation, groups, 3, "conv3d")


def _pool_args(kernel_size, stride, padding, nd):
    k = _ntuple(kernel_size, nd, "kernel_size")
    s = k if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0) else _ntuple(stride, nd,
                                                                                                      "stride")
    p = _ntuple(padding, nd, "padding")
    return k, s, p


def _max_pool(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, nd, fn):
    _check_tensor(input, "input", fn)
    k, s, p = _pool_args(kernel_size, stride, padding, nd)
    d = _ntuple(dilation, nd, "dilation")
    x, unbatched = _spatial_in(input, nd, fn)
    if _holds_nan(input):
        # workaround "Max reduction NaN" (shim/torch/_workarounds.py): MindSpore's max-pool kernels skip NaN like
        # its max reductions; with NaN present the window-gather pooling runs: a window holding NaN gives NaN
        # and its last NaN's index, as torch's pooling kernels
        sizes = list(input.shape[-nd:])
        table, _, out = _table(sizes, _window_dims(sizes, k, s, p, d, ceil_mode))
        return _max_from_table(input, nd, table, out, return_indices)
    if nd == 1:
        k, s, p, d = (1,) + k, (1,) + s, (0,) + p, (1,) + d
    if nd == 3:
        r = ops.max_pool3d(x, k, s, p, d, bool(ceil_mode), bool(return_indices))
    else:
        r = ops.max_pool2d(x, k, s, p, d, bool(return_indices), bool(ceil_mode))
    if return_indices:
        v, i = r
        return (_out(_spatial_out(v, nd, unbatched), input),
                _T._new(ops.cast(_spatial_out(i, nd, unbatched), ms.int64), D.int64, input._dev))
    return _out(_spatial_out(r, nd, unbatched), input)


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """1-d max pooling over [N, C, L] (or [C, L]); stride defaults to kernel_size."""
    return _max_pool(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, 1, "max_pool1d")


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """2-d max pooling over [N, C, H, W] (or unbatched); stride defaults to kernel_size."""
    return _max_pool(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, 2, "max_pool2d")


def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """3-d max pooling over [N, C, D, H, W] (or unbatched); stride defaults to kernel_size."""
    return _max_pool(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, 3, "max_pool3d")


def _float_only(input, fn):
    if not input._dt.is_floating_point:
        raise NotImplementedError(f"torch.nn.functional.{fn} on {input.dtype} input is not supported by the shim "
                                  "(MindSpore's CPU kernels take floating inputs)")


def _avg_pool(input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, nd, fn):
    """Window sums over the explicitly zero-padded input (MindSpore's pooling kernel with no padding and no ceil
    mode: its own padding/ceil/count options give wrong gradients on CPU), divided by divisor_override or by the
    per-window element count torch uses (padding counted or not), computed on a ones mask."""
    _check_tensor(input, "input", fn)
    _float_only(input, fn)
    k, s, p = _pool_args(kernel_size, stride, padding, nd)
    x, unbatched = _spatial_in(input, nd, fn)
    spatial = tuple(input.shape[-nd:])
    extra = []
    for L, ki, si, pi in zip(spatial, k, s, p):
        if 2 * pi > ki:
            raise RuntimeError(f"{fn}: pad should be at most half of effective kernel size, but got pad={pi}, "
                               f"kernel_size={ki}")
        span = L + 2 * pi - ki
        out = (-(-span // si) if ceil_mode else span // si) + 1
        if ceil_mode and (out - 1) * si >= L + pi:
            out -= 1
        extra.append(builtins.max((out - 1) * si + ki - (L + 2 * pi), 0))
    if nd == 1:
        k, s, p, extra, spatial = (1,) + k, (1,) + s, (0,) + p, [0] + extra, (1,) + spatial
    flat = []
    for pi, ei in reversed(list(zip(p, extra))):
        flat += [pi, pi + ei]
    kk = 1
    for ki in k:
        kk *= ki
    pool = ops.avg_pool3d if len(k) == 3 else ops.avg_pool2d
    xp = ops.pad(x, tuple(flat)) if builtins.any(flat) else x
    sums = pool(xp, k, s, 0, False, True, 0) * kk
    if divisor_override:
        return _out(_spatial_out(sums / float(divisor_override), nd, unbatched), input)
    if count_include_pad:
        mask = np.ones(tuple(L + 2 * pi for L, pi in zip(spatial, p)), np.float32)
        mask = np.pad(mask, [(0, e) for e in extra])
    else:
        mask = np.pad(np.ones(spatial, np.float32), [(pi, pi + e) for pi, e in zip(p, extra)])
    counts = pool(ms.Tensor(mask[None, None]), k, s, 0, False, True, 0) * kk
    return _out(_spatial_out(sums / counts, nd, unbatched), input)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """1-d average pooling over [N, C, L] (or [C, L])."""
    return _avg_pool(input, kernel_size, stride, padding, ceil_mode, count_include_pad, None, 1, "avg_pool1d")


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """2-d average pooling over [N, C, H, W] (or unbatched)."""
    return _avg_pool(input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, 2,
                     "avg_pool2d")


def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """3-d average pooling over [N, C, D, H, W] (or unbatched)."""
    return _avg_pool(input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, 3,
                     "avg_pool3d")


def _adaptive_avg(input, output_size, nd, fn):
    _check_tensor(input, "input", fn)
    _float_only(input, fn)
    x, unbatched = _spatial_in(input, nd, fn)
    size = output_size if isinstance(output_size, (tuple, list)) else (output_size,) * nd
    spatial = tuple(input.shape[-nd:])
    size = tuple(spatial[i] if v is None else int(v) for i, v in enumerate(size))
    if input.numel() == 0:  # MindSpore's kernels reject empty batches: an empty result tied to the input
        shape = tuple(input.shape[:-nd]) + size
        return _out(mint.zeros(shape, dtype=x.dtype) + mint.sum(unwrap(input)) * 0, input)
    if nd == 1:
        size = (1,) + size
    r = (ops.adaptive_avg_pool3d if nd == 3 else ops.adaptive_avg_pool2d)(x, size)
    return _out(_spatial_out(r, nd, unbatched), input)


def adaptive_avg_pool1d(input, output_size):
    """Adaptive 1-d average pooling to `output_size` positions."""
    return _adaptive_avg(input, output_size, 1, "adaptive_avg_pool1d")


def adaptive_avg_pool2d(input, output_size):
    """Adaptive 2-d average pooling to `output_size` (an int, or a pair with None keeping that size)."""
    return _adaptive_avg(input, output_size, 2, "adaptive_avg_pool2d")


def adaptive_avg_pool3d(input, output_size):
    """Adaptive 3-d average pooling to `output_size`."""
    return _adaptive_avg(input, output_size, 3, "adaptive_avg_pool3d")


def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """Group normalisation over [N, C, *] in `num_groups` groups (biased variance), then the per-channel affine
    (mint.nn.functional.group_norm)."""
    _check_tensor(input, "input", "group_norm")
    if input.dim() < 2 or input.shape[1] % num_groups:
        raise RuntimeError(f"Expected number of channels in input to be divisible by num_groups, but got input of "
                           f"shape {list(input.shape)} and num_groups={num_groups}")
    x = unwrap(input)
    w = unwrap(weight) if weight is not None else None
    b = unwrap(bias) if bias is not None else None
    return _out(mint.nn.functional.group_norm(x, int(num_groups), w, b, eps), input)


def _f(t):
    return t.float() if t is not None else None


def _affine(y, weight, bias, ndim):
    shape = (1, -1) + (1,) * (ndim - 2)
    if weight is not None:
        y = y * weight.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    return y


@_emulated("batch statistics composed from facade reductions; running statistics updated without grad")
def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None, weight: Tensor | None = None,
               bias: Tensor | None = None, training: bool = False, momentum: float = 0.1, eps: float = 1e-5
               ) -> Tensor:
    """Batch normalisation over [N, C, *]: in training, batch mean and biased variance over every dim but 1
    (running_mean/running_var, when given, move by `momentum` towards the batch mean and the unbiased variance,
    in place); otherwise the running statistics. ValueError for one value per channel in training."""
    if input._dt.emulated:  # bfloat16: computed in float32 and rounded once, as torch's CPU kernel
        return batch_norm(input.float(), running_mean, running_var, _f(weight), _f(bias), training, momentum, eps).to(input.dtype)
    T = _T_()
    if input.dim() < 2:
        raise ValueError(f"Expected 2D or higher input (got {input.dim()}D input)")
    dims = [0] + list(range(2, input.dim()))
    shape = (1, -1) + (1,) * (input.dim() - 2)
    if training:
        n = input.numel() // input.shape[1]
        if n <= 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got input size "
                             f"{list(input.shape)}")
        mean = input.mean(dims, keepdim=True)
        var = ((input - mean) ** 2).mean(dims, keepdim=True)
        if running_mean is not None or running_var is not None:
            with T.no_grad():
                if running_mean is not None:
                    running_mean.copy_(running_mean * (1 - momentum) + mean.reshape(-1).detach() * momentum)
                if running_var is not None:
                    running_var.copy_(running_var * (1 - momentum) + var.reshape(-1).detach() * (n / (n - 1))
                                      * momentum)
    else:
        if running_mean is None or running_var is None:
            raise RuntimeError("running_mean and running_var must be defined in evaluation mode")
        mean, var = running_mean.reshape(shape), running_var.reshape(shape)
    y = (input - mean) / T.sqrt(var + eps)
    return _affine(y, weight, bias, input.dim())


@_emulated("per-instance statistics composed from facade reductions")
def instance_norm(input: Tensor, running_mean: Tensor | None = None, running_var: Tensor | None = None,
                  weight: Tensor | None = None, bias: Tensor | None = None, use_input_stats: bool = True,
                  momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Instance normalisation over [N, C, *]: each (sample, channel) normalised over its spatial dims (biased
    variance); running statistics, when given, move towards the batch-averaged instance statistics."""
    if input._dt.emulated:  # bfloat16: computed in float32 and rounded once, as torch's CPU kernel
        return instance_norm(input.float(), running_mean, running_var, _f(weight), _f(bias), use_input_stats, momentum, eps).to(input.dtype)
    T = _T_()
    if input.dim() < 3:
        raise ValueError(f"Expected 3D or higher input (got {input.dim()}D input)")
    dims = list(range(2, input.dim()))
    if use_input_stats:
        mean = input.mean(dims, keepdim=True)
        var = ((input - mean) ** 2).mean(dims, keepdim=True)
        n = input.numel() // (input.shape[0] * input.shape[1])
        if running_mean is not None or running_var is not None:
            with T.no_grad():
                if running_mean is not None:
                    running_mean.copy_(running_mean * (1 - momentum)
                                       + mean.detach().reshape(input.shape[0], -1).mean(0) * momentum)
                if running_var is not None:
                    uv = var.detach().reshape(input.shape[0], -1).mean(0) * (n / builtins.max(n - 1, 1))
                    running_var.copy_(running_var * (1 - momentum) + uv * momentum)
    else:
        shape = (1, -1) + (1,) * (input.dim() - 2)
        mean, var = running_mean.reshape(shape), running_var.reshape(shape)
    y = (input - mean) / T.sqrt(var + eps)
    return _affine(y, weight, bias, input.dim())


__all__ += ["softsign", "tanhshrink", "hardtanh", "hardsigmoid", "hardswish", "mish", "elu", "celu", "selu",
            "softshrink", "hardshrink", "threshold", "softmin", "prelu", "smooth_l1_loss", "huber_loss",
            "soft_margin_loss", "margin_ranking_loss", "kl_div", "binary_cross_entropy",
            "binary_cross_entropy_with_logits", "cosine_similarity", "pairwise_distance", "hinge_embedding_loss",
            "cosine_embedding_loss", "pixel_shuffle", "pixel_unshuffle", "conv1d", "conv2d", "conv3d",
            "max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d",
            "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d", "group_norm", "batch_norm",
            "instance_norm"]


from .._unsupported import module_getattr as _module_getattr  # noqa: E402

__getattr__ = _module_getattr("torch.nn.functional")


# ----------------------------------------------------------------------------------------------------------
# Layers of torch.nn composed from facade ops (issue 11): activations, losses, padding modes, convolution,
# pooling, normalisation, multi-head attention. Each composes facade tensor ops (so dtype, device and autograd
# follow the facade's rules) unless it names a MindSpore kernel it calls directly.

import sys as _sys  # noqa: E402
import itertools as _itertools  # noqa: E402
import math as _math  # noqa: E402

__all__ += [
    "elu", "celu", "selu", "hardtanh", "hardswish", "hardsigmoid", "mish", "softshrink", "hardshrink", "softsign",
    "tanhshrink", "threshold", "prelu", "softmin", "binary_cross_entropy", "binary_cross_entropy_with_logits",
    "smooth_l1_loss", "huber_loss", "kl_div", "margin_ranking_loss", "hinge_embedding_loss", "soft_margin_loss",
    "cosine_embedding_loss", "multilabel_soft_margin_loss", "poisson_nll_loss", "gaussian_nll_loss",
    "multi_margin_loss", "multilabel_margin_loss", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
    "conv_transpose2d", "conv_transpose3d", "max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d",
    "avg_pool3d", "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d", "adaptive_max_pool1d",
    "adaptive_max_pool2d", "adaptive_max_pool3d", "lp_pool1d", "lp_pool2d", "lp_pool3d", "batch_norm",
    "instance_norm", "group_norm", "local_response_norm", "cosine_similarity", "multi_head_attention_forward",
]


def _torch():
    """The facade's `torch` package (imported lazily: functional is loaded while it initialises)."""
    return _sys.modules[__name__.rsplit(".", 2)[0]]


# ---- activations ------------------------------------------------------------------------------------------


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


# ---- losses -----------------------------------------------------------------------------------------------


def _red(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.mean()
    raise ValueError(f"{reduction} is not a valid value for reduction")


def multilabel_soft_margin_loss(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
    """-(y logσ(x) + (1 - y) logσ(-x)) times ``weight``, averaged over the class (last) dim."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    loss = -(target * logsigmoid(input) + (1 - target) * logsigmoid(-input))
    if weight is not None:
        loss = loss * weight
    loss = loss.sum(-1) / input.shape[-1] if input.dim() else loss
    return _red(loss, reduction)


def poisson_nll_loss(input, target, log_input=True, full=False, size_average=None, eps=1e-8, reduce=None,
                     reduction="mean"):
    """exp(x) - y x (``log_input``) or x - y log(x + eps); ``full`` adds Stirling's y log y - y + ½ log(2πy)
    where y > 1."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    t = _torch()
    loss = input.exp() - target * input if log_input else input - target * (input + eps).log()
    if full:
        safe = t.where(target > 1, target, target * 0 + 1)
        st = safe * safe.log() - safe + 0.5 * (2 * _math.pi * safe).log()
        loss = loss + t.where(target > 1, st, st * 0)
    return _red(loss, reduction)


def gaussian_nll_loss(input, target, var, full=False, eps=1e-6, reduction="mean"):
    """½ (log(max(var, eps)) + (x - y)² / max(var, eps)) (+ ½ log 2π with ``full``); the clamp passes the
    gradient through unchanged (torch clamps a copy under no_grad)."""
    if isinstance(var, (int, float)):
        var = input.new_full((), float(var)).expand(input.shape)
    if tuple(var.shape) != tuple(input.shape):
        if tuple(input.shape[:-1]) == tuple(var.shape):
            var = var.unsqueeze(-1)
        elif tuple(input.shape[:-1]) == tuple(var.shape[:-1]) and var.shape[-1] == 1:
            pass
        else:
            raise ValueError("var is of incorrect size")
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(reduction + " is not valid")
    if bool((var < 0).any()):
        raise ValueError("var has negative entry/entries")
    var = var + (var.clamp(min=eps) - var).detach()
    loss = 0.5 * (var.log() + (input - target) ** 2 / var)
    if full:
        loss = loss + 0.5 * _math.log(2 * _math.pi)
    return _red(loss, reduction)


def multi_margin_loss(input, target, p=1, margin=1.0, weight=None, size_average=None, reduce=None,
                      reduction="mean"):
    """Σ_{i ≠ y} max(0, margin - x[y] + x[i])^p / C per sample (times weight[y])."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if p not in (1, 2):
        raise ValueError("only p == 1 and p == 2 supported")
    t = _torch()
    x = input if input.dim() == 2 else input.reshape(1, -1)
    y = target.reshape(-1, 1)
    xy = x.gather(1, y)
    m = (margin - xy + x).clamp(min=0)
    if p == 2:
        m = m * m
    if weight is not None:
        m = m * weight[y]
    classes = t.arange(x.shape[1], device=x.device).reshape(1, -1)
    loss = t.where(classes != y, m, m * 0).sum(1) / x.shape[1]
    if input.dim() < 2:
        loss = loss.reshape(())
    return _red(loss, reduction)


def multilabel_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """Σ_{j target, i not target} max(0, 1 - (x[j] - x[i])) / C; ``target`` holds class indices, ended by
    the first -1."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    t = _torch()
    x = input if input.dim() == 2 else input.reshape(1, -1)
    tg = target.reshape(x.shape).cpu().numpy() if hasattr(target, "cpu") else np.asarray(target)
    n, c = x.shape
    pair = np.zeros((n, c, c), np.float32)  # pair[n, j, i]: times target j is listed, for each non-target i
    for r in range(n):
        js = []
        for v in tg[r]:
            if v < 0:
                break
            js.append(int(v))
        is_t = np.zeros(c, np.float32)
        is_t[js] = 1
        for j in js:  # a target listed twice counts twice (torch's CPU kernel walks the list)
            pair[r, j] += 1 - is_t
    pm = t.tensor(pair, dtype=x.dtype, device=x.device)
    h = (1 - (x.unsqueeze(2) - x.unsqueeze(1))).clamp(min=0)  # [n, j, i]
    loss = (h * pm).sum((1, 2)) / c
    if input.dim() < 2:
        loss = loss.reshape(())
    return _red(loss, reduction)


# ---- convolution ------------------------------------------------------------------------------------------


def _tuple(v, n: int, name: str) -> tuple:
    if isinstance(v, (tuple, list)):
        if len(v) == 1:
            return tuple(int(v[0]) for _ in range(n))
        if len(v) != n:
            raise RuntimeError(f"expected {name} to be a single integer value or a list of {n} values")
        return tuple(int(x) for x in v)
    return (int(v),) * n


def _conv_m(x, w, groups: int, stride: tuple, dilation: tuple):
    """MindSpore convolution of storage tensors ``x`` [N, C, *S] and ``w`` [O, C/groups, *K] (2 or 3 spatial
    dims, no padding). The mint forms (Conv2DExt, conv1d/conv3d) have no CPU kernel; the ops forms
    (Conv2D, Conv3D) do, with their gradients."""
    # workaround "Conv2DExt" (shim/torch/_workarounds.py)
    # workaround "mint conv1d/conv3d" (shim/torch/_workarounds.py)
    if len(stride) == 2:
        return ops.conv2d(x, w, stride=stride, pad_mode="valid", dilation=dilation, groups=groups)
    return ops.conv3d(x, w, stride=stride, pad_mode="valid", dilation=dilation, groups=groups)


def _convnd(input, weight, bias, stride, padding, dilation, groups, nd: int, fn: str):
    """Convolution with ``nd`` spatial dims: ``input`` [N, C_in, *S] or unbatched [C_in, *S], ``weight``
    [C_out, C_in / groups, *K], ``padding`` an int/tuple or "same"/"valid" (zeros). 1-d runs as 2-d with a unit
    height (MindSpore's CPU target has Conv2D and Conv3D kernels, no Conv1D)."""
    _check_tensor(input, "input", fn)
    _check_tensor(weight, "weight", fn)
    if input.dim() not in (nd + 1, nd + 2):
        raise RuntimeError(f"{fn}: Expected {nd + 1}D (unbatched) or {nd + 2}D (batched) input to {fn}, but got "
                           f"input of size: {list(input.shape)}")
    if not input.is_floating_point():
        raise NotImplementedError(f"torch.nn.functional.{fn} with {input.dtype} input is not supported by the "
                                  "MindSpore facade (MindSpore's CPU convolution kernels take floating types only)")
    unbatched = input.dim() == nd + 1
    x = input.unsqueeze(0) if unbatched else input
    if x.shape[1] != weight.shape[1] * groups:
        raise RuntimeError(f"{fn}: Given groups={groups}, weight of size {list(weight.shape)}, expected input"
                           f"{list(x.shape)} to have {weight.shape[1] * groups} channels, but got {x.shape[1]} "
                           "channels instead")
    stride = _tuple(stride, nd, "stride")
    dilation = _tuple(dilation, nd, "dilation")
    k = tuple(weight.shape[2:])
    if isinstance(padding, str):
        if padding == "valid":
            pads = [(0, 0)] * nd
        elif padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError("padding='same' is not supported for strided convolutions")
            tot = [d * (kk - 1) for d, kk in zip(dilation, k)]
            pads = [(t // 2, t - t // 2) for t in tot]
        else:
            raise ValueError(f"Invalid padding string {padding!r}, should be one of ['valid', 'same']")
    else:
        pads = [(p, p) for p in _tuple(padding, nd, "padding")]
    flat = []
    for lo, hi in reversed(pads):
        flat += [lo, hi]
    if any(flat):
        x = pad(x, flat)
    xm, wm = unwrap(x), unwrap(weight)
    if nd == 1:
        xm, wm = xm.unsqueeze(2), wm.unsqueeze(2)
        stride, dilation = (1,) + stride, (1,) + dilation
    out = _conv_m(xm, wm, groups, stride, dilation)
    if nd == 1:
        out = out.squeeze(2)
    if bias is not None:  # added before the result's rounding (bfloat16 rounds once, as torch's fused kernel)
        if bias._dt is not input._dt:
            raise RuntimeError(f"{fn}: Input type ({input.dtype}) and bias type ({bias.dtype}) should be the same")
        out = out + unwrap(bias).reshape((-1,) + (1,) * nd)
    res = _out(out, input)
    return res.squeeze(0) if unbatched else res


def _conv_transposend(input, weight, bias, stride, padding, output_padding, groups, dilation, nd: int, fn: str):
    """Transposed convolution composed as a convolution: the input with stride-1 zeros inserted between
    elements, padded by dilation (k - 1) - padding each side (+ output_padding at the end), convolved with the
    flipped weight [C_in, C_out / groups, *K] regrouped to [C_out, C_in / groups, *K] (stride 1)."""
    # workaround "ConvTranspose2D" (shim/torch/_workarounds.py)
    _check_tensor(input, "input", fn)
    if not input.is_floating_point():
        raise NotImplementedError(f"torch.nn.functional.{fn} with {input.dtype} input is not supported by the "
                                  "MindSpore facade (MindSpore's CPU convolution kernels take floating types only)")
    if input.dim() not in (nd + 1, nd + 2):
        raise RuntimeError(f"{fn}: Expected {nd + 1}D (unbatched) or {nd + 2}D (batched) input, got "
                           f"{list(input.shape)}")
    unbatched = input.dim() == nd + 1
    x = input.unsqueeze(0) if unbatched else input
    stride = _tuple(stride, nd, "stride")
    padding = _tuple(padding, nd, "padding")
    output_padding = _tuple(output_padding, nd, "output_padding")
    dilation = _tuple(dilation, nd, "dilation")
    cin, coutg = weight.shape[0], weight.shape[1]
    if x.shape[1] != cin:
        raise RuntimeError(f"{fn}: Given transposed=1, weight of size {list(weight.shape)}, expected input "
                           f"{list(x.shape)} to have {cin} channels, but got {x.shape[1]} channels instead")
    k = tuple(weight.shape[2:])
    for i, s in enumerate(stride):  # zero insertion along spatial dim 2 + i
        if s > 1:
            dim = 2 + i
            n = x.shape[dim]
            z = x.unsqueeze(dim + 1)
            padspec = [0, 0] * (x.dim() - dim - 1) + [0, s - 1]
            z = pad(z, padspec)  # [.., n, s, ..]
            shape = list(x.shape)
            shape[dim] = n * s
            x = z.reshape(shape).narrow(dim, 0, (n - 1) * s + 1)
    flat = []
    for i in reversed(range(nd)):
        e = dilation[i] * (k[i] - 1) - padding[i]
        flat += [e, e + output_padding[i]]
    if any(flat):
        x = pad(x, flat)
    w = weight.reshape([groups, cin // groups, coutg] + list(k)).transpose(1, 2)
    w = w.reshape([groups * coutg, cin // groups] + list(k)).flip(list(range(2, 2 + nd)))
    out = _convnd(x, w, bias, 1, 0, dilation, groups, nd, fn)
    return out.squeeze(0) if unbatched else out


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """1-d transposed convolution (see `_conv_transposend`)."""
    return _conv_transposend(input, weight, bias, stride, padding, output_padding, groups, dilation, 1,
                             "conv_transpose1d")


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """2-d transposed convolution (see `_conv_transposend`)."""
    return _conv_transposend(input, weight, bias, stride, padding, output_padding, groups, dilation, 2,
                             "conv_transpose2d")


def conv_transpose3d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """3-d transposed convolution (see `_conv_transposend`)."""
    return _conv_transposend(input, weight, bias, stride, padding, output_padding, groups, dilation, 3,
                             "conv_transpose3d")


# ---- pooling ----------------------------------------------------------------------------------------------
# Every pool is one gather: a host-built table [O, K] lists, for each output position (flattened over the
# spatial dims) the flat input positions of its window, padding and out-of-range positions pointing at a
# sentinel column appended to the input (-inf for max, 0 for sums). Max/avg/LP/adaptive pools in 1, 2, 3 dims
# share it; gradients flow through index_select and max/sum. Emulated: no MindSpore pooling kernel is used.


def _pool_out(n, k, s, p, d, ceil_mode):
    num = n + 2 * p - d * (k - 1) - 1
    if num < 0:
        return 0
    out = (num + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    return out


def _window_dims(sizes, k, s, p, d, ceil_mode):
    """Per spatial dim: (positions [O, K] int, valid mask [O, K], out size, start [O])."""
    res = []
    for n, kk, ss, pp, dd in zip(sizes, k, s, p, d):
        o = _pool_out(n, kk, ss, pp, dd, ceil_mode)
        if o <= 0:
            raise RuntimeError(f"pool: output size is too small (input {n}, kernel {kk}, stride {ss}, "
                               f"padding {pp}, dilation {dd})")
        start = np.arange(o) * ss - pp
        pos = start[:, None] + np.arange(kk)[None, :] * dd
        res.append((pos, (pos >= 0) & (pos < n), o, start))
    return res


def _adaptive_dims(sizes, out_sizes):
    res = []
    for n, o in zip(sizes, out_sizes):
        o = n if o is None else int(o)
        st = (np.arange(o) * n) // o
        en = -((-(np.arange(o) + 1) * n) // o)
        kk = int((en - st).max()) if o else 0
        pos = st[:, None] + np.arange(kk)[None, :]
        res.append((pos, pos < en[:, None], o, st))
    return res


def _table(sizes, dims):
    """Combine per-dim windows into a flat table [O, K] (sentinel = prod(sizes)) and the out sizes."""
    strides = np.cumprod([1] + list(reversed(sizes)))[:-1][::-1]
    sent = int(np.prod(sizes))
    flat = np.zeros((1, 1), np.int64)
    valid = np.ones((1, 1), bool)
    for (pos, ok, _, _), st in zip(dims, strides):
        flat = (flat[:, None, :, None] + (pos * st)[None, :, None, :]).reshape(flat.shape[0] * pos.shape[0], -1)
        valid = (valid[:, None, :, None] & ok[None, :, None, :]).reshape(flat.shape)
    return np.where(valid, flat, sent), valid, [d[2] for d in dims]


def _gather_windows(input, nd, table, fill):
    """input [*, *S] -> windows [*, O, K] (sentinel positions hold ``fill``)."""
    # workaround "AvgPool2D", workaround "AdaptiveAvgPool2DExt" (shim/torch/_workarounds.py)
    t = _torch()
    lead = list(input.shape[:-nd])
    if input.numel() == 0:  # nothing to gather (MindSpore's index_select gradient fails on empty inputs)
        return input.new_zeros(lead + list(table.shape)) + input.sum() * 0
    x = input.reshape(lead + [int(np.prod(input.shape[-nd:]))])
    x = t.cat([x, x.new_full(lead + [1], fill)], -1)
    idx = t.tensor(table.reshape(-1), dtype=t.int64, device=input.device)
    return x.index_select(x.dim() - 1, idx).reshape(lead + list(table.shape))


def _check_pool_input(input, nd, fn):
    _check_tensor(input, "input", fn)
    if input.dim() not in (nd + 1, nd + 2):
        raise RuntimeError(f"{fn}: Expected {nd + 1}D or {nd + 2}D input tensor, got {list(input.shape)}")


def _max_from_table(input, nd, table, out_sizes, return_indices):
    t = _torch()
    w = _gather_windows(input, nd, table, float("-inf"))
    vals, arg = w.max(-1)
    if _holds_nan(input):
        # torch's pooling kernels take a window's last NaN (its max takes the first): the last NaN's position
        nan = w.isnan()
        last = (w.shape[-1] - 1) - nan.flip(-1).to(t.int32).argmax(-1)
        arg = t.where(nan.any(-1), last, arg)
        vals = w.gather(-1, arg.unsqueeze(-1)).squeeze(-1)
    shape = list(input.shape[:-nd]) + list(out_sizes)
    vals = vals.reshape(shape)
    if not return_indices:
        return vals
    tab = t.tensor(table, dtype=t.int64, device=input.device).expand(list(arg.shape) + [table.shape[1]])
    ind = tab.gather(-1, arg.unsqueeze(-1)).squeeze(-1).reshape(shape)
    return vals, ind


def _avg_poolnd(input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, nd, fn):
    _check_pool_input(input, nd, fn)
    k = _tuple(kernel_size, nd, "kernel_size")
    s = k if stride is None or (isinstance(stride, (tuple, list)) and not stride) else _tuple(stride, nd, "stride")
    p = _tuple(padding, nd, "padding")
    if any(pp * 2 > kk for pp, kk in zip(p, k)):
        raise RuntimeError(f"{fn}: pad should be at most half of effective kernel size")
    sizes = list(input.shape[-nd:])
    dims = _window_dims(sizes, k, s, p, (1,) * nd, ceil_mode)
    table, _, out = _table(sizes, dims)
    if divisor_override:
        div = np.full(table.shape[0], float(divisor_override))
    else:
        div = np.ones(1)
        for (pos, ok, o, start), n, kk, pp in zip(dims, sizes, k, p):
            if count_include_pad:
                c = np.minimum(start + kk, n + pp) - start
            else:
                c = np.minimum(start + kk, n) - np.maximum(start, 0)
            div = (div[:, None] * c[None, :]).reshape(-1)
    t = _torch()
    w = _gather_windows(input, nd, table, 0.0 if input.is_floating_point() else 0)
    if input.is_floating_point():
        res = w.sum(-1) / t.tensor(div.astype(np.float32), dtype=input.dtype, device=input.device)
    else:  # torch's integer kernel: an integer sum divided with truncation
        res = t.div(w.sum(-1, dtype=input.dtype), t.tensor(div.astype(np.int64), device=input.device),
                    rounding_mode="trunc").to(input.dtype)
    return res.reshape(list(input.shape[:-nd]) + out)


def _adaptive(input, output_size, nd, fn, kind, return_indices=False):
    _check_pool_input(input, nd, fn)
    out_sizes = list(output_size) if isinstance(output_size, (tuple, list)) else [output_size] * nd
    if len(out_sizes) != nd:
        raise RuntimeError(f"{fn}: output_size must be {nd} values")
    sizes = list(input.shape[-nd:])
    dims = _adaptive_dims(sizes, out_sizes)
    table, valid, out = _table(sizes, dims)
    if kind == "max":
        return _max_from_table(input, nd, table, out, return_indices)
    t = _torch()
    w = _gather_windows(input, nd, table, 0.0)
    cnt = valid.sum(-1).astype(np.float32)
    res = w.sum(-1) / t.tensor(cnt, dtype=input.dtype, device=input.device)
    return res.reshape(list(input.shape[:-nd]) + out)


def adaptive_max_pool1d(input, output_size, return_indices=False):
    """Adaptive 1-d max pooling (emulated)."""
    return _adaptive(input, output_size, 1, "adaptive_max_pool1d", "max", return_indices)


def adaptive_max_pool2d(input, output_size, return_indices=False):
    """Adaptive 2-d max pooling (emulated)."""
    return _adaptive(input, output_size, 2, "adaptive_max_pool2d", "max", return_indices)


def adaptive_max_pool3d(input, output_size, return_indices=False):
    """Adaptive 3-d max pooling (emulated)."""
    return _adaptive(input, output_size, 3, "adaptive_max_pool3d", "max", return_indices)


def _lp_poolnd(input, norm_type, kernel_size, stride, ceil_mode, nd, fn):
    k = _tuple(kernel_size, nd, "kernel_size")
    pooled = _avg_poolnd(input.pow(norm_type), k, stride, 0, ceil_mode, True, None, nd, fn)
    n = int(np.prod(k))
    # torch writes sign(s) * relu(|s|), which equals s (NaN stays NaN); s itself keeps a NaN that the facade's
    # relu would turn into 0
    return pooled.mul(n).pow(1.0 / norm_type)


def lp_pool1d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    """(Σ_window x^p)^(1/p) over 1-d windows (torch's formula via avg_pool)."""
    return _lp_poolnd(input, norm_type, kernel_size, stride, ceil_mode, 1, "lp_pool1d")


def lp_pool2d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    """(Σ_window x^p)^(1/p) over 2-d windows."""
    return _lp_poolnd(input, norm_type, kernel_size, stride, ceil_mode, 2, "lp_pool2d")


def lp_pool3d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    """(Σ_window x^p)^(1/p) over 3-d windows."""
    return _lp_poolnd(input, norm_type, kernel_size, stride, ceil_mode, 3, "lp_pool3d")


def local_response_norm(input, size, alpha=1e-4, beta=0.75, k=1.0):
    """x / (k + alpha * mean of x² over ``size`` neighbouring channels)^beta (torch's formula: the window
    zero-padded size // 2 before, (size - 1) // 2 after)."""
    _check_tensor(input, "input", "local_response_norm")
    if input.dim() < 3:
        raise ValueError(f"Expected 3D or higher dimensionality input (got {input.dim()} dimensions)")
    if input.numel() == 0:
        return input
    sq = (input * input).unsqueeze(1)
    if input.dim() == 3:
        div = pad(sq, (0, 0, size // 2, (size - 1) // 2))
        div = avg_pool2d(div, (size, 1), stride=1).squeeze(1)
    else:
        s = list(input.shape)
        div = sq.reshape(s[0], 1, s[1], s[2], -1)
        div = pad(div, (0, 0, 0, 0, size // 2, (size - 1) // 2))
        div = avg_pool3d(div, (size, 1, 1), stride=1).squeeze(1).reshape(s)
    div = (div * alpha + k).pow(beta)
    return input / div


# ---- multi-head attention ---------------------------------------------------------------------------------


def _float_mask(mask, like, name):
    """A bool mask (True = masked out) as a float mask (-inf where True, 0 elsewhere); float masks pass."""
    if mask is None:
        return None
    if mask.dtype == _torch().bool:
        return like.new_zeros(mask.shape).masked_fill(mask, float("-inf"))
    if not mask.is_floating_point():
        raise AssertionError(f"only bool and floating types of {name} are supported")
    return mask


def multi_head_attention_forward(query, key, value, embed_dim_to_check, num_heads, in_proj_weight, in_proj_bias,
                                 bias_k, bias_v, add_zero_attn, dropout_p, out_proj_weight, out_proj_bias,
                                 training=True, key_padding_mask=None, need_weights=True, attn_mask=None,
                                 use_separate_proj_weight=False, q_proj_weight=None, k_proj_weight=None,
                                 v_proj_weight=None, static_k=None, static_v=None, average_attn_weights=True,
                                 is_causal=False):
    """Multi-head attention over sequence-first inputs: query [L, N, E] (or [L, E] unbatched), key/value
    [S, N, E_k/E_v]; returns (output [L, N, E], weights [N, L, S] averaged over heads or [N, heads, L, S], or
    None without ``need_weights``). Masks: ``attn_mask`` [L, S] or [N * heads, L, S], ``key_padding_mask``
    [N, S]; bool True (or -inf) masks a position out. The composition follows torch's reference path
    (in-projection, bias_k/bias_v, zero attention, scaled Q Kᵀ + mask, softmax, dropout, out-projection)."""
    t = _torch()
    if static_k is not None or static_v is not None:
        raise NotImplementedError("torch.nn.functional.multi_head_attention_forward(static_k/static_v) is not "
                                  "supported by the MindSpore facade")
    batched = query.dim() == 3
    if not batched:
        query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
        if key_padding_mask is not None:
            key_padding_mask = key_padding_mask.unsqueeze(0)
    tgt_len, bsz, embed_dim = query.shape
    if embed_dim != embed_dim_to_check:
        raise AssertionError(f"was expecting embedding dimension of {embed_dim_to_check}, but got {embed_dim}")
    head_dim = embed_dim // num_heads
    if head_dim * num_heads != embed_dim:
        raise AssertionError(f"embed_dim {embed_dim} not divisible by num_heads {num_heads}")
    if is_causal and attn_mask is None:
        raise RuntimeError("Need attn_mask if specifying the is_causal hint.")
    key_padding_mask = _float_mask(key_padding_mask, query, "key_padding_mask")
    attn_mask = _float_mask(attn_mask, query, "attn_mask")
    if use_separate_proj_weight:
        bq = bk = bv = None
        if in_proj_bias is not None:
            bq, bk, bv = in_proj_bias.chunk(3)
        q = linear(query, q_proj_weight, bq)
        k = linear(key, k_proj_weight, bk)
        v = linear(value, v_proj_weight, bv)
    else:
        wq, wk, wv = in_proj_weight.chunk(3)
        bq = bk = bv = None
        if in_proj_bias is not None:
            bq, bk, bv = in_proj_bias.chunk(3)
        q, k, v = linear(query, wq, bq), linear(key, wk, bk), linear(value, wv, bv)
    if attn_mask is not None:
        if attn_mask.dim() == 2:
            if tuple(attn_mask.shape) != (tgt_len, key.shape[0]):
                raise RuntimeError(f"The shape of the 2D attn_mask is {tuple(attn_mask.shape)}, but should be "
                                   f"{(tgt_len, key.shape[0])}.")
            attn_mask = attn_mask.unsqueeze(0)
        elif attn_mask.dim() != 3:
            raise RuntimeError(f"attn_mask's dimension {attn_mask.dim()} is not supported")
    if bias_k is not None and bias_v is not None:
        k = t.cat([k, bias_k.repeat(1, bsz, 1)])
        v = t.cat([v, bias_v.repeat(1, bsz, 1)])
        if attn_mask is not None:
            attn_mask = pad(attn_mask, (0, 1))
        if key_padding_mask is not None:
            key_padding_mask = pad(key_padding_mask, (0, 1))
    q = q.reshape(tgt_len, bsz * num_heads, head_dim).transpose(0, 1)
    k = k.reshape(k.shape[0], bsz * num_heads, head_dim).transpose(0, 1)
    v = v.reshape(v.shape[0], bsz * num_heads, head_dim).transpose(0, 1)
    if add_zero_attn:
        k = t.cat([k, k.new_zeros(bsz * num_heads, 1, head_dim)], 1)
        v = t.cat([v, v.new_zeros(bsz * num_heads, 1, head_dim)], 1)
        if attn_mask is not None:
            attn_mask = pad(attn_mask, (0, 1))
        if key_padding_mask is not None:
            key_padding_mask = pad(key_padding_mask, (0, 1))
    src_len = k.shape[1]
    if key_padding_mask is not None:
        kpm = key_padding_mask.reshape(bsz, 1, 1, src_len).expand(-1, num_heads, -1, -1)
        kpm = kpm.reshape(bsz * num_heads, 1, src_len)
        attn_mask = kpm if attn_mask is None else attn_mask + kpm
    if not training:
        dropout_p = 0.0
    scores = t.bmm(q * _math.sqrt(1.0 / head_dim), k.transpose(-2, -1))
    if attn_mask is not None:
        scores = scores + attn_mask
    w = softmax(scores, -1)
    if dropout_p > 0.0:
        w = dropout(w, p=dropout_p)
    out = t.bmm(w, v).transpose(0, 1).reshape(tgt_len * bsz, embed_dim)
    out = linear(out, out_proj_weight, out_proj_bias).reshape(tgt_len, bsz, -1)
    weights = None
    if need_weights:
        weights = w.reshape(bsz, num_heads, tgt_len, src_len)
        if average_attn_weights:
            weights = weights.mean(1)
        if not batched:
            weights = weights.squeeze(0)
    if not batched:
        out = out.squeeze(1)
    return out, weights


__all__ += ["linear_cross_entropy"]


def linear_cross_entropy(input, linear_weight, target, *, linear_bias=None, weight=None, reduction="mean",
                         ignore_index=None, label_smoothing=0.0, options=None):
    """cross_entropy(linear(input, W), target): input [N, in] or [in], linear_weight [C, *out_features, in],
    linear_bias [C, *out_features]; logits [N, C, *out_features]. ``options`` (torch's chunking of the batch,
    a memory optimisation that leaves the values unchanged) is accepted and ignored: the logits are formed
    whole. ``ignore_index`` None means -100 (class targets); RuntimeError with probability targets."""
    if input.dim() < 1 or input.dim() > 2:
        raise RuntimeError(f"expected input with dimensionality 1 or 2, got {input.dim()}")
    if linear_weight.dim() < 2:
        raise RuntimeError(f"expected linear_weight with dimensionality at least 2, got {linear_weight.dim()}")
    in_features = input.shape[-1]
    if in_features != linear_weight.shape[-1]:
        raise RuntimeError("expected equal input and linear_weight last dimensions (in_features), got "
                           f"{input.shape[-1]} and {linear_weight.shape[-1]}, respectively")
    num_classes = linear_weight.shape[0]
    out_features = tuple(linear_weight.shape[1:-1])
    if out_features and input.dim() == 1:
        raise RuntimeError(f"K-dimensional loss defined by linear_weight shape {tuple(linear_weight.shape)} "
                           f"requires batched input, (N, {in_features}), got unbatched input with shape "
                           f"{tuple(input.shape)}")
    logits_shape = tuple(input.shape[:-1]) + (num_classes,) + out_features
    if tuple(target.shape) == logits_shape and ignore_index is not None:
        raise RuntimeError("ignore_index cannot be specified when target contains probabilities")
    n_out = int(np.prod((num_classes,) + out_features))
    b = linear_bias.reshape(n_out) if linear_bias is not None else None
    logits = linear(input, linear_weight.reshape(n_out, in_features), b).reshape(logits_shape)
    return cross_entropy(logits, target, weight=weight, reduction=reduction,
                         ignore_index=-100 if ignore_index is None else ignore_index,
                         label_smoothing=label_smoothing)


# ---- more of torch.nn.functional composed from facade ops (issue 11, nn share) ----------------------------

__all__ += ["channel_shuffle", "native_channel_shuffle", "pdist", "triplet_margin_loss",
            "triplet_margin_with_distance_loss", "max_pool1d_with_indices", "max_pool2d_with_indices",
            "max_pool3d_with_indices", "max_unpool1d", "max_unpool2d", "max_unpool3d", "unfold", "fold",
            "interpolate", "upsample", "upsample_nearest", "upsample_bilinear", "embedding_bag"]


def channel_shuffle(input, groups):
    """Reorder the C channels of [N, C, *] as [groups, C / groups] -> [C / groups, groups] (a copy).
    RuntimeError when C is not divisible by ``groups`` or ``groups`` < 1."""
    _check_tensor(input, "input", "channel_shuffle")
    groups = int(groups)
    if input.dim() < 3:
        raise RuntimeError(f"channel_shuffle expects input to have at least 3 dimensions, but got input with "
                           f"{input.dim()} dimension(s)")
    if groups <= 0 or input.shape[1] % groups:
        raise RuntimeError(f"Number of channels must be divisible by groups. Got {input.shape[1]} channels and "
                           f"{groups} groups.")
    s = list(input.shape)
    return (input.reshape([s[0], groups, s[1] // groups] + s[2:]).transpose(1, 2).contiguous().reshape(s))


native_channel_shuffle = channel_shuffle


@_emulated("row pairs gathered with index_select, then torch.norm over the last dim")
def pdist(input, p=2):
    """Distances ||x_i - x_j||_p for every row pair i < j of input [N, M], in row-major order of (i, j):
    [N (N - 1) / 2]. RuntimeError for a non-2-D input or p < 0."""
    _check_tensor(input, "input", "pdist")
    if input.dim() != 2:
        raise RuntimeError(f"pdist only supports 2D tensors, got: {input.dim()}D")
    if p < 0:
        raise RuntimeError("pdist only supports non-negative p values")
    t = _torch()
    n = input.shape[0]
    i, j = np.triu_indices(n, 1)
    if i.size == 0:
        return input.new_zeros((0,)) + input.sum() * 0  # empty, still connected to input's graph
    a = input.index_select(0, t.tensor(i.astype(np.int64), device=input.device))
    b = input.index_select(0, t.tensor(j.astype(np.int64), device=input.device))
    return t.norm(a - b, p, dim=-1)


@_emulated("pairwise_distance, then max(margin + d(a, p) - d(a, n), 0)")
def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False, size_average=None,
                        reduce=None, reduction="mean"):
    """max(d(a, p) - d(a, n) + margin, 0) with d the p-norm pairwise distance (``eps`` added to the
    difference); ``swap`` uses min(d(a, n), d(p, n)). Inputs [N, D] or [D]."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    for name, x in (("anchor", anchor), ("positive", positive), ("negative", negative)):
        _check_tensor(x, name, "triplet_margin_loss")
    if not (anchor.dim() == positive.dim() == negative.dim()):
        raise RuntimeError(f"The anchor, positive, and negative tensors are expected to have the same number of "
                           f"dimensions, but got: anchor {anchor.dim()}D, positive {positive.dim()}D, and "
                           f"negative {negative.dim()}D inputs")
    d_ap = pairwise_distance(anchor, positive, p, eps)
    d_an = pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_an = _torch().minimum(d_an, pairwise_distance(positive, negative, p, eps))
    return _red(_torch().clamp_min(margin + d_ap - d_an, 0), reduction)


@_emulated("the distance function's values, then max(margin + d(a, p) - d(a, n), 0)")
def triplet_margin_with_distance_loss(anchor, positive, negative, *, distance_function=None, margin=1.0,
                                      swap=False, reduction="mean"):
    """triplet_margin_loss with ``distance_function(x, y)`` (default: pairwise_distance) as the distance."""
    if margin <= 0:
        raise ValueError(f"triplet_margin_with_distance_loss: expected margin to be greater than 0, got {margin} "
                         "instead")
    dist = distance_function if distance_function is not None else pairwise_distance
    d_ap = dist(anchor, positive)
    d_an = dist(anchor, negative)
    if swap:
        d_an = _torch().minimum(d_an, dist(positive, negative))
    return _red(_torch().clamp_min(margin + d_ap - d_an, 0), reduction)


def max_pool1d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                            return_indices=True):
    """max_pool1d returning (values, indices) (torch.nn.functional's name for return_indices=True)."""
    return max_pool1d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def max_pool2d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                            return_indices=True):
    """max_pool2d returning (values, indices)."""
    return max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def max_pool3d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                            return_indices=True):
    """max_pool3d returning (values, indices)."""
    return max_pool3d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


@_emulated("scatter of the values into zeros at the flat spatial indices")
def _max_unpoolnd(input, indices, kernel_size, stride, padding, output_size, nd, fn):
    _check_tensor(input, "input", fn)
    _check_tensor(indices, "indices", fn)
    if input.dim() not in (nd + 1, nd + 2):
        raise RuntimeError(f"{fn}: Expected {nd + 1}D or {nd + 2}D input, got {list(input.shape)}")
    if tuple(indices.shape) != tuple(input.shape):
        raise RuntimeError(f"{fn}: Expected shape of indices to be same as that of the input tensor "
                           f"({list(input.shape)}) but got indices tensor with shape: {list(indices.shape)}")
    k = _tuple(kernel_size, nd, "kernel_size")
    s = k if stride is None or (isinstance(stride, (tuple, list)) and not stride) else _tuple(stride, nd, "stride")
    p = _tuple(padding, nd, "padding")
    sizes = list(input.shape[-nd:])
    default = [(n - 1) * ss - 2 * pp + kk for n, ss, pp, kk in zip(sizes, s, p, k)]
    if output_size is None:
        out = default
    else:
        out = [int(v) for v in output_size]
        if len(out) == nd + 2 or (len(out) == nd + 1 and input.dim() == nd + 1):
            out = out[-nd:]
        if len(out) != nd:
            raise ValueError(f"output_size should be a sequence containing {nd} or {nd + 2} elements, but it has a "
                             f"length of '{len(out)}'")
        for v, dv, ss in zip(out, default, s):
            if not dv - ss < v < dv + ss:
                raise ValueError(f"invalid output_size {out} (dim sizes must be between {default} +- stride)")
    lead = list(input.shape[:-nd])
    total = int(np.prod(out))
    flat_idx = indices.reshape(lead + [-1])
    if flat_idx.numel():
        hi = int(flat_idx.max().item())
        lo = int(flat_idx.min().item())
        if lo < 0 or hi >= total:
            raise RuntimeError(f"{fn}: Found an invalid max index: {hi if hi >= total else lo} (output volumes are "
                               f"of size {'x'.join(str(v) for v in out)})")
    z = input.new_zeros(lead + [total])
    return z.scatter(-1, flat_idx, input.reshape(lead + [-1])).reshape(lead + out)


def max_unpool1d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Partial inverse of max_pool1d: [N, C, L] values placed at their ``indices`` in zeros [N, C, L_out]
    (emulated)."""
    return _max_unpoolnd(input, indices, kernel_size, stride, padding, output_size, 1, "max_unpool1d")


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Partial inverse of max_pool2d (flat H*W indices; emulated)."""
    return _max_unpoolnd(input, indices, kernel_size, stride, padding, output_size, 2, "max_unpool2d")


def max_unpool3d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Partial inverse of max_pool3d (flat D*H*W indices; emulated)."""
    return _max_unpoolnd(input, indices, kernel_size, stride, padding, output_size, 3, "max_unpool3d")


def _im2col_table(sizes, kernel_size, dilation, padding, stride, fn):
    k = _tuple(kernel_size, 2, "kernel_size")
    d = _tuple(dilation, 2, "dilation")
    p = _tuple(padding, 2, "padding")
    s = _tuple(stride, 2, "stride")
    dims = []
    for n, kk, ss, pp, dd in zip(sizes, k, s, p, d):
        o = (n + 2 * pp - dd * (kk - 1) - 1) // ss + 1
        if o <= 0:
            raise RuntimeError(f"{fn}: Given input with spatial size {list(sizes)}, kernel_size={list(k)}, "
                               f"dilation={list(d)}, padding={list(p)}, calculated shape of the array of sliding "
                               "blocks is non-positive")
        start = np.arange(o) * ss - pp
        pos = start[:, None] + np.arange(kk)[None, :] * dd
        dims.append((pos, (pos >= 0) & (pos < n), o, start))
    table, _, _ = _table(list(sizes), dims)
    return table, int(np.prod(k))  # table [L, K]


@_emulated("a gather of the sliding blocks from a host-built position table")
def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    """im2col: sliding local blocks of [N, C, H, W] (or [C, H, W]) as [N, C * kh * kw, L] (zero padding)."""
    _check_tensor(input, "input", "unfold")
    if input.dim() not in (3, 4):
        raise NotImplementedError(f"Input Error: Only 3D or 4D input Tensors are supported (got {input.dim()}D)")
    unbatched = input.dim() == 3
    x = input.unsqueeze(0) if unbatched else input
    n, c = x.shape[0], x.shape[1]
    table, kk = _im2col_table(list(x.shape[2:]), kernel_size, dilation, padding, stride, "unfold")
    w = _gather_windows(x, 2, table, 0)  # [N, C, L, K]
    out = w.transpose(2, 3).reshape(n, c * kk, table.shape[0])
    if out.dtype != input.dtype:  # an empty bool input gathers nothing and sums to int64
        out = out.to(input.dtype)
    return out.squeeze(0) if unbatched else out


@_emulated("a scatter-add of the blocks into zeros at host-built positions")
def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """col2im: sums sliding blocks [N, C * kh * kw, L] (or [C * kh * kw, L]) into [N, C, *output_size]."""
    _check_tensor(input, "input", "fold")
    if input.dim() not in (2, 3):
        raise NotImplementedError(f"Input Error: Only unbatched (2D) or batched (3D) input Tensors are supported "
                                  f"(got {input.dim()}D)")
    unbatched = input.dim() == 2
    x = input.unsqueeze(0) if unbatched else input
    osz = _tuple(output_size, 2, "output_size")
    table, kk = _im2col_table(list(osz), kernel_size, dilation, padding, stride, "fold")
    n, ck, L = x.shape
    if ck % kk:
        raise RuntimeError(f"fold: expected size of input's dimension 1 to be divisible by the product of "
                           f"kernel_size, but got input.size(1)={ck} and kernel_size={kk}")
    if L != table.shape[0]:
        raise RuntimeError(f"fold: expected input's dimension 2 to match the calculated number of sliding blocks "
                           f"{table.shape[0]}, but got input.size(2)={L}")
    c = ck // kk
    t = _torch()
    vals = x.reshape(n, c, kk, L).transpose(2, 3).reshape(n, c, L * kk)
    idx = t.tensor(table.reshape(-1), dtype=t.int64, device=input.device).expand(n, c, L * kk)
    hw = osz[0] * osz[1]
    out = x.new_zeros((n, c, hw + 1)).scatter_add(-1, idx, vals).narrow(-1, 0, hw).reshape(n, c, *osz)
    return out.squeeze(0) if unbatched else out


# ---- interpolate ------------------------------------------------------------------------------------------
# Separable resampling: along each spatial dim, nearest modes gather (index_select, any dtype); linear, cubic
# and antialiased modes multiply by a host-built [out, in] weight matrix whose rows hold torch's interpolation
# weights (aten/src/ATen/native/UpSample.h: area_pixel_compute_scale, area_pixel_compute_source_index,
# nearest_idx, the cubic convolution coefficients with A = -0.75; the antialiased filters of
# UpSampleKernel.cpp's _compute_indices_min_size_weights_aa, bilinear |x| < 1 and bicubic A = -0.5, both
# normalised per row); 'area' is adaptive average pooling. Weights are computed in float32 as torch's CPU
# kernels do for float32 (their opmath type).

_INTERP_DIMS = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}


def _interp_scale(n_in, n_out, align_corners, scale):
    """area_pixel_compute_scale (float32)."""
    if align_corners:
        return np.float32((n_in - 1) / (n_out - 1)) if n_out > 1 else np.float32(0)
    if scale is not None and scale > 0:
        return np.float32(1.0 / scale)  # 1 / scale in double, then float (torch's compute_scales_value)
    return np.float32(n_in) / np.float32(n_out)


def _src_index(scale, dst, align_corners, cubic):
    """area_pixel_compute_source_index over an int array ``dst`` (float32)."""
    dst = dst.astype(np.float32)
    if align_corners:
        return scale * dst
    src = scale * (dst + np.float32(0.5)) - np.float32(0.5)
    return src if cubic else np.maximum(src, np.float32(0))


def _nearest_index(n_in, n_out, scale, exact, shortcuts):
    """nearest_idx / nearest_neighbor_exact_compute_source_index as an int array [n_out]. ``shortcuts``: the
    same-size (copy) and double-size (i >> 1) cases ignore the scale factor, as torch's 2-d nearest kernel does
    (measured on torch 2.13: its 1-d and 3-d nearest and its nearest-exact kernels always use the scale)."""
    if shortcuts and n_out == n_in:
        return np.arange(n_out)
    if shortcuts and n_out == 2 * n_in:
        return np.arange(n_out) >> 1
    s = np.float32(1.0 / scale) if scale is not None and scale > 0 else np.float32(n_in) / np.float32(n_out)
    dst = np.arange(n_out).astype(np.float32)
    src = np.floor((dst + np.float32(0.5)) * s) if exact else np.floor(dst * s)
    return np.minimum(src.astype(np.int64), n_in - 1)


def _cubic_coeffs(t, a):
    def c1(x):
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def c2(x):
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return [c2(t + 1), c1(t), c1(1 - t), c2(2 - t)]


def _interp_matrix(n_in, n_out, mode, align_corners, scale):
    """[n_out, n_in] float32 weights of one spatial dim for mode linear / cubic."""
    w = np.zeros((n_out, n_in), np.float32)
    sc = _interp_scale(n_in, n_out, align_corners, scale)
    rows = np.arange(n_out)
    if mode == "linear":
        src = _src_index(sc, rows, align_corners, False)
        i0 = src.astype(np.int64)
        step = (i0 < n_in - 1).astype(np.int64)
        l1 = (src - i0.astype(np.float32)).astype(np.float32)
        l0 = np.float32(1) - l1
        np.add.at(w, (rows, i0), l0)
        np.add.at(w, (rows, i0 + step), l1)
    else:
        src = _src_index(sc, rows, align_corners, True)
        i0 = np.floor(src).astype(np.int64)
        tt = (src - i0.astype(np.float32)).astype(np.float32)
        for k, cf in enumerate(_cubic_coeffs(tt, np.float32(-0.75))):
            np.add.at(w, (rows, np.clip(i0 - 1 + k, 0, n_in - 1)), cf.astype(np.float32))
    return w


def _aa_matrix(n_in, n_out, mode, align_corners, scale):
    """[n_out, n_in] weights of torch's antialiased (separable, normalised) filters."""
    sc = float(_interp_scale(n_in, n_out, align_corners, scale))
    interp = 2 if mode == "bilinear" else 4
    support = (interp / 2) * sc if sc >= 1.0 else interp / 2
    inv = 1.0 / sc if sc >= 1.0 else 1.0
    w = np.zeros((n_out, n_in), np.float32)
    for i in range(n_out):
        center = sc * (i + 0.5)
        xmin = builtins.max(int(center - support + 0.5), 0)
        xmax = builtins.min(int(center + support + 0.5), n_in)
        xs = (np.arange(xmin, xmax) - center + 0.5) * inv
        if mode == "bilinear":
            f = np.where(np.abs(xs) < 1.0, 1.0 - np.abs(xs), 0.0)
        else:
            a, x = -0.5, np.abs(xs)
            f = np.where(x < 1.0, ((a + 2) * x - (a + 3)) * x * x + 1,
                         np.where(x < 2.0, (((x - 5) * x + 8) * x - 4) * a, 0.0))
        tot = f.sum()
        if tot != 0:
            f = f / tot
        w[i, xmin:xmax] = f.astype(np.float32)
    return w


def _apply_along(x, dim, mat):
    """x with spatial ``dim`` mapped through ``mat`` [out, in] (a matmul; emulated bf16 runs in float32)."""
    t = _torch()
    m = t.tensor(mat, dtype=t.float32 if x._dt.emulated else x.dtype, device=x.device)
    y = x.movedim(dim, -1)
    y = t.matmul(y.float() if x._dt.emulated else y, m.t())
    y = y.to(x.dtype) if x._dt.emulated else y
    return y.movedim(-1, dim)


def _interp_sizes(input, size, scale_factor, nd, recompute_scale_factor):
    """(out sizes, per-dim scale factors handed to the kernel or None) as torch.nn.functional.interpolate."""
    in_sizes = list(input.shape[2:])
    if size is not None and scale_factor is not None:
        raise ValueError("only one of size or scale_factor should be defined")
    if size is not None:
        if isinstance(size, (list, tuple)):
            if len(size) != nd:
                raise ValueError(f"Input and output must have the same number of spatial dimensions, but got input "
                                 f"with spatial dimensions of {in_sizes} and output size of {list(size)}. Please "
                                 "provide input tensor in (N, C, d1, d2, ...,dK) format and output size in (o1, o2, "
                                 "...,oK) format.")
            out = [int(v) for v in size]
        else:
            out = [int(size)] * nd
        return out, [None] * nd
    if scale_factor is None:
        raise ValueError("either size or scale_factor should be defined")
    if isinstance(scale_factor, (list, tuple)):
        if len(scale_factor) != nd:
            raise ValueError(f"Input and scale_factor must have the same number of spatial dimensions, but got input "
                             f"with spatial dimensions of {in_sizes} and scale_factor of shape {list(scale_factor)}.")
        sf = [float(v) for v in scale_factor]
    else:
        sf = [float(scale_factor)] * nd
    out = [int(math.floor(float(n) * f)) for n, f in zip(in_sizes, sf)]
    return out, ([None] * nd if recompute_scale_factor else sf)


_INTERP_MODES = ("nearest", "nearest-exact", "linear", "bilinear", "bicubic", "trilinear", "area")


@_emulated("separable gathers / weight-matrix products per spatial dim (torch's interpolation weights)")
def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    """Resize [N, C, *S] (1 to 3 spatial dims) to ``size`` or ``floor(S * scale_factor)`` with torch's
    ``mode`` (nearest, nearest-exact, linear, bilinear, bicubic, trilinear, area) and ``align_corners``
    semantics; ``antialias`` for bilinear/bicubic. Nearest modes take any dtype; the others floating input.
    Errors as torch's: ValueError for a bad mode/size combination, NotImplementedError for a mode that does
    not fit the input's rank."""
    _check_tensor(input, "input", "interpolate")
    if mode not in _INTERP_MODES:
        raise NotImplementedError(f"Input Error: Only 3D, 4D and 5D input Tensors supported (got {input.dim()}D) for "
                                  f"the modes: nearest | linear | bilinear | bicubic | trilinear | area | "
                                  f"nearest-exact (got {mode})")
    nd = input.dim() - 2
    if nd not in (1, 2, 3):
        raise NotImplementedError(f"Input Error: Only 3D, 4D and 5D input Tensors supported (got {input.dim()}D) "
                                  f"for the modes: nearest | linear | bilinear | bicubic | trilinear | area | "
                                  f"nearest-exact (got {mode})")
    if mode in ("nearest", "area", "nearest-exact"):
        if align_corners is not None:
            raise ValueError("align_corners option can only be set with the interpolating modes: "
                             "linear | bilinear | bicubic | trilinear")
    elif align_corners is None:
        align_corners = False
    if mode in _INTERP_DIMS and _INTERP_DIMS[mode] != nd:
        want = {1: "3D", 2: "4D", 3: "5D"}[_INTERP_DIMS[mode]]
        raise NotImplementedError(f"Got {input.dim()}D input, but {mode} mode needs {want} input")
    if antialias and not (mode in ("bilinear", "bicubic") and nd == 2):
        raise ValueError("Anti-alias option is restricted to bilinear and bicubic modes and requires a 4-D tensor "
                         "as input")
    out, scales = _interp_sizes(input, size, scale_factor, nd, recompute_scale_factor)
    return _interpolate_core(input, out, scales, mode, align_corners, antialias)


def _interpolate_core(input, out, scales, mode, align_corners, antialias):
    """interpolate to spatial sizes ``out`` with per-dim scale factors ``scales`` (None: from the sizes), as
    torch's upsample kernels take them (arguments already checked)."""
    nd = input.dim() - 2
    if any(o <= 0 for o in out):
        raise RuntimeError(f"interpolate: output size {out} must be positive")
    if mode == "area":
        return _adaptive(input, out, nd, "interpolate", "avg")
    t = _torch()
    x = input
    if mode in ("nearest", "nearest-exact"):
        for i in range(nd):
            n_in = x.shape[2 + i]
            idx = _nearest_index(n_in, out[i], scales[i], mode == "nearest-exact", nd == 2 and mode == "nearest")
            dev = input.device
            if mode == "nearest" and nd != 2 and x.requires_grad:
                # torch's 1-d/3-d nearest backward kernels take the same-size/double-size shortcuts that their
                # forward kernels do not (measured on torch 2.13): the gradient follows the shortcut indices
                bidx = _nearest_index(n_in, out[i], scales[i], False, True)
                if not np.array_equal(bidx, idx):
                    x = _nearest_split(x, 2 + i, t.tensor(idx.astype(np.int64), device=dev),
                                       t.tensor(bidx.astype(np.int64), device=dev))
                    continue
            x = x.index_select(2 + i, t.tensor(idx.astype(np.int64), device=dev))
        return x
    if not input.is_floating_point():
        raise NotImplementedError(f"torch.nn.functional.interpolate(mode={mode!r}) with {input.dtype} input is not "
                                  "supported by the MindSpore facade (floating input only)")
    kind = "linear" if mode in ("linear", "bilinear", "trilinear") else "cubic"
    for i in range(nd):
        n_in = x.shape[2 + i]
        if n_in == out[i] and (kind == "linear" or antialias):
            # torch's linear kernels and its antialiased ones copy a dim whose size does not change, whatever
            # the scale factor (measured on torch 2.13; its plain bicubic kernel applies the scale)
            continue
        if antialias:
            mat = _aa_matrix(n_in, out[i], mode, align_corners, scales[i])
        else:
            mat = _interp_matrix(n_in, out[i], kind, align_corners, scales[i])
        x = _apply_along(x, 2 + i, mat)
    return x


_NEAREST_SPLIT = []


def _nearest_split(x, dim, fwd_idx, bwd_idx):
    """index_select(dim, fwd_idx) whose gradient is index_add along bwd_idx (a facade autograd.Function)."""
    if not _NEAREST_SPLIT:
        t = _torch()

        class _Split(t.autograd.Function):
            @staticmethod
            def forward(ctx, v, d, fi, bi):
                ctx.d, ctx.bi, ctx.n = d, bi, v.shape[d]
                return v.detach().index_select(d, fi)

            @staticmethod
            def backward(ctx, g):
                shape = list(g.shape)
                shape[ctx.d] = ctx.n
                return g.new_zeros(shape).index_add(ctx.d, ctx.bi, g), None, None, None

        _NEAREST_SPLIT.append(_Split)
    return _NEAREST_SPLIT[0].apply(x, dim, fwd_idx, bwd_idx)


def upsample(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    """Deprecated alias of interpolate."""
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input, size=None, scale_factor=None):
    """Deprecated: interpolate(mode='nearest')."""
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input, size=None, scale_factor=None):
    """Deprecated: interpolate(mode='bilinear', align_corners=True)."""
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)


_BAG_MODES = ("sum", "mean", "max")


@_emulated("index_select of the rows, then a host-built bag matrix product (sum/mean) or a windowed max")
def embedding_bag(input, weight, offsets=None, max_norm=None, norm_type=2, scale_grad_by_freq=False, mode="mean",
                  sparse=False, per_sample_weights=None, include_last_offset=False, padding_idx=None):
    """Sums, means or maxima of bags of embedding rows: ``input`` [B, L] (each row a bag, ``offsets`` None) or
    [T] with ``offsets`` [B] (bag starts; [B + 1] with the end when ``include_last_offset``); ``weight`` [V, D]
    -> [B, D]. ``per_sample_weights`` (sum mode only) scale each row; entries equal to ``padding_idx`` are left
    out (and not counted by mean); an empty bag gives zeros. ``max_norm``/``sparse``/``scale_grad_by_freq`` raise
    NotImplementedError. Indices and offsets are read to the host to build the bags."""
    _check_tensor(input, "input", "embedding_bag")
    _check_tensor(weight, "weight", "embedding_bag")
    if max_norm is not None or sparse or scale_grad_by_freq:
        raise NotImplementedError("torch.nn.functional.embedding_bag with max_norm, sparse=True or "
                                  "scale_grad_by_freq=True is not supported by the MindSpore facade")
    if mode not in _BAG_MODES:
        raise ValueError("mode has to be one of sum, mean or max")
    if per_sample_weights is not None and mode != "sum":
        raise NotImplementedError(f"embedding_bag: per_sample_weights was not None. per_sample_weights is only "
                                  f"supported for mode='sum' (got mode='{mode}'). Please open a feature request on "
                                  "GitHub.")
    if weight.dim() != 2:
        raise ValueError(f"weight has to be a 2D Tensor, but got Tensor of dimension {weight.dim()}")
    t = _torch()
    idx = np.asarray(input.cpu().numpy()).astype(np.int64)
    psw = per_sample_weights
    if input.dim() == 2:
        if offsets is not None:
            raise ValueError("if input is 2D, then offsets has to be None, as input is treated is a mini-batch of "
                             "fixed length sequences.")
        b, l = idx.shape
        starts = np.arange(b + 1) * l
        idx = idx.reshape(-1)
        if psw is not None:
            psw = psw.reshape(-1)
    elif input.dim() == 1:
        if offsets is None:
            raise ValueError("offsets has to be a 1D Tensor but got None")
        off = np.asarray(offsets.cpu().numpy()).astype(np.int64).reshape(-1)
        starts = off if include_last_offset else np.concatenate([off, [idx.size]])
        if starts.size and (starts[0] != 0 or (np.diff(starts) < 0).any() or starts[-1] > idx.size):
            raise RuntimeError("embedding_bag: offsets must start at 0, be non-decreasing and end within input")
    else:
        raise ValueError(f"input has to be 1D or 2D Tensor, but got Tensor of dimension {input.dim()}")
    v = weight.shape[0]
    if idx.size and (idx.min() < 0 or idx.max() >= v):
        raise IndexError(f"embedding_bag: index out of range in self (indices must be in [0, {v}))")
    if padding_idx is not None:
        padding_idx = int(padding_idx) + (v if padding_idx < 0 else 0)
    nb = builtins.max(starts.size - 1, 0)
    keep = idx != padding_idx if padding_idx is not None else np.ones(idx.size, bool)
    rows = weight.index_select(0, t.tensor(idx, dtype=t.int64, device=weight.device))  # [T, D]
    if mode == "max":
        lens = [int(keep[starts[i]:starts[i + 1]].sum()) for i in range(nb)]
        k = builtins.max(lens + [1])
        table = np.full((nb, k), idx.size, np.int64)
        for i in range(nb):
            pos = np.arange(starts[i], starts[i + 1])[keep[starts[i]:starts[i + 1]]]
            table[i, :pos.size] = pos
        padded = t.cat([rows, rows.new_full((1, weight.shape[1]), float("-inf"))], 0)
        w = padded.index_select(0, t.tensor(table.reshape(-1), dtype=t.int64, device=weight.device))
        out = w.reshape(nb, k, weight.shape[1]).amax(1)
        empty = np.array(lens) == 0
        if empty.any():
            out = out.masked_fill(t.tensor(empty.reshape(-1, 1), device=weight.device), 0.0)
        return out
    if psw is not None:
        rows = rows * psw.reshape(-1, 1).to(rows.dtype)
    m = np.zeros((nb, idx.size), np.float32)
    for i in range(nb):
        seg = np.arange(starts[i], starts[i + 1])
        seg = seg[keep[seg]]
        if seg.size:
            m[i, seg] = 1.0 / seg.size if mode == "mean" else 1.0
    if idx.size == 0:
        return weight.new_zeros((nb, weight.shape[1])) + weight.sum() * 0
    return t.matmul(t.tensor(m, dtype=weight.dtype, device=weight.device), rows)


# ---- grid_sample --------------------------------------------------------------------------------------------
# torch's grid sampler (aten/src/ATen/native/GridSampler.h: grid_sampler_unnormalize, clip_coordinates,
# reflect_coordinates, the bilinear/nearest/bicubic taps) composed from facade ops, so gradients reach both the
# input (through gather) and the grid (through the interpolation weights and the coordinate transforms).

_GS_MODES = {"bilinear": 0, "nearest": 1, "bicubic": 2}
_GS_PADDING = {"zeros": 0, "border": 1, "reflection": 2}


def _gs_reflect(x, twice_low, twice_high):
    t = _torch()
    if twice_low == twice_high:
        return x * 0
    lo = twice_low / 2
    span = (twice_high - twice_low) / 2
    x = (x - lo).abs()
    extra = t.fmod(x, span)
    flips = t.floor(x / span).detach()
    even = t.fmod(flips, 2) == 0
    return t.where(even, extra + lo, span - extra + lo)


def _gs_pad(c, size, padding_mode, align_corners):
    """Apply torch's padding_mode to unnormalised coordinates ``c`` (border: clip; reflection: reflect, clip)."""
    t = _torch()
    if padding_mode == 1:
        return t.clamp(c, 0, size - 1)
    if padding_mode == 2:
        c = _gs_reflect(c, 0, 2 * (size - 1)) if align_corners else _gs_reflect(c, -1, 2 * size - 1)
        return t.clamp(c, 0, size - 1)
    return c


def _gs_source(g, size, padding_mode, align_corners):
    """grid_sampler_compute_source_index: [-1, 1] -> pixel coordinates, then padding."""
    c = (g + 1) / 2 * (size - 1) if align_corners else ((g + 1) * size - 1) / 2
    return _gs_pad(c, size, padding_mode, align_corners)


def _gs_tap(xflat, idx, sizes, lead):
    """Values of input [N, C, prod(sizes)] at integer positions ``idx`` (one [N, *out] tensor per spatial dim,
    float); positions outside the input give 0. -> [N, C, *out]."""
    t = _torch()
    n, c = xflat.shape[0], xflat.shape[1]
    valid = None
    lin = None
    stride = 1
    for i in reversed(range(len(sizes))):
        v = (idx[i] >= 0) & (idx[i] <= sizes[i] - 1)
        valid = v if valid is None else valid & v
        k = t.clamp(idx[i], 0, sizes[i] - 1).to(t.int64)
        lin = k * stride if lin is None else lin + k * stride
        stride *= sizes[i]
    vals = xflat.gather(2, lin.reshape(n, 1, -1).expand(n, c, lin[0].numel()))
    vals = vals.reshape([n, c] + lead)
    return vals * valid.unsqueeze(1).to(xflat.dtype)


def _cubic_w(tt):
    a = -0.75

    def c1(x):
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def c2(x):
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return [c2(tt + 1), c1(tt), c1(1 - tt), c2(2 - tt)]


def _grid_sampler(input, grid, mode, padding_mode, align_corners):
    """input [N, C, *S] (2 or 3 spatial dims), grid [N, *out, nd] (x, y[, z]) -> [N, C, *out]."""
    t = _torch()
    nd = input.dim() - 2
    if nd not in (2, 3) or grid.dim() != nd + 2 or grid.shape[-1] != nd:
        raise RuntimeError(f"grid_sampler(): expected 4D or 5D input and grid with the same number of dimensions "
                           f"and grid.size(-1) == {nd}, but got input of shape {list(input.shape)} and grid of "
                           f"shape {list(grid.shape)}")
    if input.shape[0] != grid.shape[0]:
        raise RuntimeError(f"grid_sampler(): expected grid and input to have same batch size, but got input with "
                           f"sizes {list(input.shape)} and grid with sizes {list(grid.shape)}")
    if mode == 2 and nd != 2:
        raise RuntimeError("grid_sampler(): bicubic interpolation only supports 4D input")
    sizes = list(input.shape[2:])
    lead = list(grid.shape[1:-1])
    n, c = input.shape[0], input.shape[1]
    xflat = input.reshape(n, c, -1)
    g = grid.to(input.dtype)
    if mode == 2:  # bicubic: unnormalised coordinates, padding applied to each tap
        cs = [((g[..., nd - 1 - i] + 1) / 2 * (sizes[i] - 1)) if align_corners
              else (((g[..., nd - 1 - i] + 1) * sizes[i] - 1) / 2) for i in range(nd)]
        fl = [t.floor(v).detach() for v in cs]
        ws = [_cubic_w(v - f) for v, f in zip(cs, fl)]
        out = None
        for ky in range(4):
            for kx in range(4):
                iy = _gs_pad(fl[0] - 1 + ky, sizes[0], padding_mode, align_corners)
                ix = _gs_pad(fl[1] - 1 + kx, sizes[1], padding_mode, align_corners)
                term = _gs_tap(xflat, [iy.detach(), ix.detach()], sizes, lead) * \
                    (ws[0][ky] * ws[1][kx]).unsqueeze(1)
                out = term if out is None else out + term
        return out
    cs = [_gs_source(g[..., nd - 1 - i], sizes[i], padding_mode, align_corners) for i in range(nd)]
    if mode == 1:
        return _gs_tap(xflat, [t.round(v).detach() for v in cs], sizes, lead)
    fl = [t.floor(v).detach() for v in cs]
    out = None
    for corner in _itertools.product((0, 1), repeat=nd):
        w = None
        for i, b in enumerate(corner):
            wi = (cs[i] - fl[i]) if b else (fl[i] + 1 - cs[i])
            w = wi if w is None else w * wi
        term = _gs_tap(xflat, [f + b for f, b in zip(fl, corner)], sizes, lead) * w.unsqueeze(1)
        out = term if out is None else out + term
    return out


@_emulated("torch's grid-sampler formulas composed from facade gathers and pointwise ops")
def grid_sample(input, grid, mode="bilinear", padding_mode="zeros", align_corners=None):
    """Sample ``input`` [N, C, H, W] (or [N, C, D, H, W]) at ``grid`` [N, H_out, W_out, 2] (or
    [N, D_out, H_out, W_out, 3]) normalised coordinates in [-1, 1] (x then y then z); ``mode`` bilinear, nearest
    (round half to even) or bicubic (4-D only); ``padding_mode`` zeros, border or reflection; ``align_corners``
    default False. -> [N, C, *grid.shape[1:-1]]."""
    _check_tensor(input, "input", "grid_sample")
    _check_tensor(grid, "grid", "grid_sample")
    if mode not in _GS_MODES:
        raise ValueError(f"nn.functional.grid_sample(): expected mode to be 'bilinear', 'nearest' or 'bicubic', "
                         f"but got: '{mode}'")
    if padding_mode not in _GS_PADDING:
        raise ValueError(f"nn.functional.grid_sample(): expected padding_mode to be 'zeros', 'border', or "
                         f"'reflection', but got: '{padding_mode}'")
    return _grid_sampler(input, grid, _GS_MODES[mode], _GS_PADDING[padding_mode], bool(align_corners))


__all__ += ["grid_sample"]


# ---- dropout variants and rrelu on torch's CPU random stream ------------------------------------------------
# torch's CPU composition (aten/src/ATen/native/Dropout.cpp `_dropout_impl`): the noise tensor (input's shape,
# or [N, C, 1, …] for the feature variants) is filled by `bernoulli_(1 - p)` from the default generator, then
# divided by 1 - p (plain) or turned into the alpha-dropout affine pair (a = 1 / sqrt((α² p + 1)(1 - p)),
# b = (noise - 1) · α a + α a p, noise · a, with α = 1.7580993408473766) in the input's dtype; the result is
# input · noise (+ b). The facade draws the same mask (shim/torch/_cpu_rng.py) and does the same float ops.

_ALPHA_DROPOUT = 1.7580993408473766


def _keep_mask(shape, q):
    """bernoulli_(q) over a tensor of ``shape`` from the default generator (bool array)."""
    # import cost: the generator machinery loads with torch.random, after functional
    from .. import _cpu_rng
    from ..random import default_generator
    n = int(np.prod(shape)) if len(shape) else 1
    return _cpu_rng.bernoulli_scalar(default_generator._eng, n, q).reshape(tuple(shape))


def _dropout_impl(input, p, training, inplace, feature, alpha, fn):
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if p == 0.0 or not training or input.numel() == 0:
        return input
    _float_storage(input, fn)
    if feature and input.dim() < 2:
        raise RuntimeError("Feature dropout requires at least 2 dimensions in the input")
    if p == 1.0:
        return _inplace_result(input, input * 0, inplace)
    name = input._dt.name
    if alpha and name not in ("float32", "float64"):
        raise NotImplementedError(f"torch.nn.functional.{fn} with {input.dtype} input is not supported by the "
                                  "MindSpore facade (float32 and float64 only)")
    t = _torch()
    shape = list(input.shape[:2]) + [1] * (input.dim() - 2) if feature else list(input.shape)
    q = 1.0 - p
    keep = _keep_mask(shape, q)
    if not alpha:
        if name == "float64":
            noise = keep * (1.0 / q)
        else:
            scale = np.float32(1.0) / np.float32(q)
            if name == "bfloat16":
                scale = np.float32(_T._round_bf16(ms.Tensor(np.array([scale], np.float32))).asnumpy()[0])
            elif name == "float16":
                scale = np.float32(np.float16(scale))
            noise = keep.astype(np.float32) * scale
        nt = t.tensor(noise.astype(np.float64 if name == "float64" else np.float32), device=input.device)
        return _inplace_result(input, input * nt.to(input.dtype), inplace)
    a = 1.0 / math.sqrt((_ALPHA_DROPOUT * _ALPHA_DROPOUT * p + 1) * (1 - p))
    ft = np.float64 if name == "float64" else np.float32
    nz = keep.astype(ft)
    b = (nz + ft(-1)) * ft(_ALPHA_DROPOUT * a) + ft(_ALPHA_DROPOUT * a * p)
    nz = nz * ft(a)
    res = input * t.tensor(nz, dtype=input.dtype, device=input.device) + t.tensor(b, dtype=input.dtype,
                                                                                device=input.device)
    return _inplace_result(input, res, inplace)


def dropout1d(input, p=0.5, training=True, inplace=False):
    """Channel-wise dropout of [N, C, L] or unbatched [C, L] (torch's CPU stream; see the section comment)."""
    _check_tensor(input, "input", "dropout1d")
    if input.dim() not in (2, 3):
        raise RuntimeError(f"dropout1d: Expected 2D or 3D input, but received a {input.dim()}D input. Note that "
                           "dropout1d exists to provide channel-wise dropout on inputs with 1 spatial dimension, a "
                           "channel dimension, and an optional batch dimension (i.e. 2D or 3D inputs).")
    if input.dim() == 2:
        if inplace:
            raise NotImplementedError("torch.nn.functional.dropout1d(inplace=True) on an unbatched input is not "
                                      "supported by the MindSpore facade")
        return _dropout_impl(input.unsqueeze(0), p, training, False, True, False, "dropout1d").squeeze(0)
    return _dropout_impl(input, p, training, inplace, True, False, "dropout1d")


def dropout2d(input, p=0.5, training=True, inplace=False):
    """Channel-wise dropout of [N, C, H, W] (a 3-D input is taken as [N, C, L], as torch does with a
    warning); torch's CPU stream (see the section comment)."""
    _check_tensor(input, "input", "dropout2d")
    if input.dim() not in (3, 4):
        warnings.warn(f"dropout2d: Received a {input.dim()}-D input to dropout2d, which is deprecated and will "
                      "result in an error in a future release. To retain the behavior and silence this warning, "
                      "please use dropout instead.", stacklevel=2)
    if input.dim() == 3:
        warnings.warn("dropout2d: Received a 3D input to dropout2d and assuming that channel-wise 1D dropout "
                      "behavior is desired - input is interpreted as shape (N, C, L), where C is the channel dim. "
                      "This behavior will change in a future release to interpret the input as one without a batch "
                      "dimension, i.e. shape (C, H, W). To maintain the 1D channel-wise dropout behavior, please "
                      "switch to using dropout1d instead.", stacklevel=2)
    return _dropout_impl(input, p, training, inplace, True, False, "dropout2d")


def dropout3d(input, p=0.5, training=True, inplace=False):
    """Channel-wise dropout of [N, C, D, H, W] or unbatched [C, D, H, W]; torch's CPU stream."""
    _check_tensor(input, "input", "dropout3d")
    if input.dim() not in (4, 5):
        warnings.warn(f"dropout3d: Received a {input.dim()}-D input to dropout3d, which is deprecated and will "
                      "result in an error in a future release. To retain the behavior and silence this warning, "
                      "please use dropout instead.", stacklevel=2)
    if input.dim() != 5:
        if inplace:
            raise NotImplementedError("torch.nn.functional.dropout3d(inplace=True) on an unbatched input is not "
                                      "supported by the MindSpore facade")
        return _dropout_impl(input.unsqueeze(0), p, training, False, True, False, "dropout3d").squeeze(0)
    return _dropout_impl(input, p, training, inplace, True, False, "dropout3d")


def alpha_dropout(input, p=0.5, training=False, inplace=False):
    """Alpha dropout (keeps SELU's mean and variance); torch's CPU stream and formulas (section comment)."""
    _check_tensor(input, "input", "alpha_dropout")
    return _dropout_impl(input, p, training, inplace, False, True, "alpha_dropout")


def feature_alpha_dropout(input, p=0.5, training=False, inplace=False):
    """Alpha dropout of whole channels ([N, C, 1, …] noise); torch's CPU stream and formulas."""
    _check_tensor(input, "input", "feature_alpha_dropout")
    return _dropout_impl(input, p, training, inplace, True, True, "feature_alpha_dropout")


def rrelu(input, lower=1.0 / 8, upper=1.0 / 3, training=False, inplace=False):
    """Randomized leaky ReLU. Training: each element ≤ 0 (in memory order) is multiplied by its own
    uniform(lower, upper) slope, drawn as torch's CPU kernel does (`_rrelu_with_noise_train`: a double
    uniform between the float-rounded bounds, one draw per non-positive element, cast to the input's
    type); elements > 0 pass. Evaluation: leaky_relu with slope (lower + upper) / 2. The gradient is the
    slope used (1 for positive elements)."""
    _check_tensor(input, "input", "rrelu")
    if not training:
        return leaky_relu(input, (lower + upper) / 2, inplace)
    _float_storage(input, "rrelu")
    name = input._dt.name
    if name not in ("float32", "float64"):
        raise NotImplementedError(f"torch.nn.functional.rrelu(training=True) with {input.dtype} input is not "
                                  "supported by the MindSpore facade (float32 and float64 only)")
    # import cost: the generator machinery loads with torch.random, after functional
    from .. import _cpu_rng
    from ..random import default_generator
    t = _torch()
    x = np.asarray(input.detach().cpu().numpy())
    neg = x.reshape(-1) <= 0
    ft = np.float64 if name == "float64" else np.float32
    lo, hi = (float(lower), float(upper)) if name == "float64" else (float(np.float32(lower)), float(np.float32(upper)))
    r = _cpu_rng.uniform(default_generator._eng, int(neg.sum()), "float64", lo, hi)
    noise = np.ones(x.size, ft)
    noise[neg] = r.astype(ft)
    res = input * t.tensor(noise.reshape(x.shape), dtype=input.dtype, device=input.device)
    return _inplace_result(input, res, inplace)


__all__ += ["dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout", "rrelu"]


# ---- fractional max pooling ---------------------------------------------------------------------------------
# torch's CPU kernels (aten/src/ATen/native/FractionalMaxPool2d.cpp / 3d.cpp): per (batch, channel) plane, one
# random sample u in [0, 1) per spatial dim (drawn by `torch.rand(N, C, nd)` in torch.nn.functional when not
# given: the facade's rand is torch's CPU stream) places the windows: start_i = int((i + u) α) - int(u α) with
# α = (in - k) / (out - 1) computed in the input's type, the last window at in - k. Sample component 0 drives the
# last spatial dim (W) in 2-d and the first (T) in 3-d, as those kernels read them. Each output is the first
# maximum of its k-window (NaN wins); the index is the flat position in the input plane.


def _frac_intervals(u, n_in, n_out, k, ft):
    """Window starts [..., n_out] for samples ``u`` [...] (generate_intervals, in float type ``ft``)."""
    u = u.astype(ft)
    out = np.zeros(u.shape + (n_out,), np.int64)
    if n_out > 1:
        alpha = ft(n_in - k) / ft(n_out - 1)
        i = np.arange(n_out).astype(ft)
        out = ((i + u[..., None]) * alpha).astype(np.int64) - (u[..., None] * alpha).astype(np.int64)
    if n_out > 0:
        out[..., n_out - 1] = n_in - k
    return out


def _fractional_max_poolnd(input, kernel_size, output_size, output_ratio, return_indices, _random_samples, nd, fn):
    _check_tensor(input, "input", fn)
    if input.dim() not in (nd + 1, nd + 2):
        raise RuntimeError(f"{fn}: Expected {nd + 1}D or {nd + 2}D tensor, but got: {list(input.shape)}")
    if output_size is None and output_ratio is None:
        raise ValueError(f"{fn} requires specifying either an output_size or an output_ratio")
    sizes = list(input.shape[-nd:])
    if output_size is None:
        ratio = (tuple(float(r) for r in output_ratio) if isinstance(output_ratio, (tuple, list))
                 else (float(output_ratio),) * nd)
        if len(ratio) == 1:
            ratio = ratio * nd
        if len(ratio) != nd:
            raise ValueError(f"{fn} requires output_ratio to either be a single value or tuple of {nd} values.")
        out = [int(s * r) for s, r in zip(sizes, ratio)]
    else:
        out = list(_tuple(output_size, nd, "output_size"))
    k = _tuple(kernel_size, nd, "kernel_size")
    for s, o, kk in zip(sizes, out, k):
        if o + kk - 1 >= s:
            raise RuntimeError(f"{fn}(): pool size {kk} too large relative to input size {s} for output size {o}")
    t = _torch()
    unbatched = input.dim() == nd + 1
    x = input.unsqueeze(0) if unbatched else input
    n, c = x.shape[0], x.shape[1]
    if _random_samples is None:
        _random_samples = t.rand(n, c, nd, dtype=input.dtype, device=input.device)
    if _random_samples.dtype != input.dtype:
        raise RuntimeError("Expect _random_samples to have the same dtype as input")
    if tuple(_random_samples.shape) != (n, c, nd):
        raise RuntimeError(f"{fn}(): expected _random_samples of shape {[n, c, nd]}, got "
                           f"{list(_random_samples.shape)}")
    ft_ = np.float64 if input.dtype == t.float64 else np.float32
    u = np.asarray(_random_samples.float().cpu().numpy() if ft_ is np.float32 else _random_samples.cpu().numpy())
    # sample component per spatial dim (see the section comment)
    comp = [1, 0] if nd == 2 else [0, 1, 2]
    starts = [_frac_intervals(u[..., comp[i]], sizes[i], out[i], k[i], ft_) for i in range(nd)]  # [n, c, o_i]
    # local flat positions in the plane: [n, c, O, K]
    strides = np.cumprod([1] + list(reversed(sizes)))[:-1][::-1]
    loc = np.zeros((n, c, 1, 1), np.int64)
    for i in range(nd):
        pos = starts[i][..., :, None] + np.arange(k[i])[None, None, None, :]  # [n, c, o_i, k_i]
        pos = pos * strides[i]
        loc = (loc[:, :, :, None, :, None] + pos[:, :, None, :, None, :]).reshape(n, c, loc.shape[2] * out[i], -1)
    plane = int(np.prod(sizes))
    glob = loc + (np.arange(n * c).reshape(n, c, 1, 1) * plane)
    flat = x.reshape(-1)
    w = flat.index_select(0, t.tensor(glob.reshape(-1), dtype=t.int64, device=input.device))
    w = w.reshape(list(glob.shape))
    vals, arg = w.max(-1)
    vals = vals.reshape([n, c] + out)
    if unbatched:
        vals = vals.squeeze(0)
    if not return_indices:
        return vals, None
    tab = t.tensor(loc, dtype=t.int64, device=input.device)
    ind = tab.gather(-1, arg.unsqueeze(-1)).squeeze(-1).reshape([n, c] + out)
    return vals, (ind.squeeze(0) if unbatched else ind)


@_emulated("torch's window placement from the random samples, then a gather and max (see the section comment)")
def fractional_max_pool2d_with_indices(input, kernel_size, output_size=None, output_ratio=None,
                                       return_indices=False, _random_samples=None):
    """Fractional 2-d max pooling of [N, C, H, W] (or [C, H, W]) -> (values, int64 indices into H*W)."""
    v, i = _fractional_max_poolnd(input, kernel_size, output_size, output_ratio, True, _random_samples, 2,
                                  "fractional_max_pool2d")
    return v, i


@_emulated("torch's window placement from the random samples, then a gather and max (see the section comment)")
def fractional_max_pool2d(input, kernel_size, output_size=None, output_ratio=None, return_indices=False,
                          _random_samples=None):
    """Fractional 2-d max pooling (Graham, 2014) of [N, C, H, W] or [C, H, W] to ``output_size`` or
    int(size * output_ratio); windows placed by torch's CPU rule from ``_random_samples`` [N, C, 2] (drawn from
    torch's CPU stream when None). Returns values, or (values, indices) with ``return_indices``."""
    v, i = _fractional_max_poolnd(input, kernel_size, output_size, output_ratio, return_indices, _random_samples,
                                  2, "fractional_max_pool2d")
    return (v, i) if return_indices else v


@_emulated("torch's window placement from the random samples, then a gather and max (see the section comment)")
def fractional_max_pool3d_with_indices(input, kernel_size, output_size=None, output_ratio=None,
                                       return_indices=False, _random_samples=None):
    """Fractional 3-d max pooling -> (values, int64 indices into T*H*W)."""
    return _fractional_max_poolnd(input, kernel_size, output_size, output_ratio, True, _random_samples, 3,
                                  "fractional_max_pool3d")


@_emulated("torch's window placement from the random samples, then a gather and max (see the section comment)")
def fractional_max_pool3d(input, kernel_size, output_size=None, output_ratio=None, return_indices=False,
                          _random_samples=None):
    """Fractional 3-d max pooling of [N, C, T, H, W] or [C, T, H, W] (see fractional_max_pool2d;
    ``_random_samples`` [N, C, 3])."""
    v, i = _fractional_max_poolnd(input, kernel_size, output_size, output_ratio, return_indices, _random_samples,
                                  3, "fractional_max_pool3d")
    return (v, i) if return_indices else v


__all__ += ["fractional_max_pool2d", "fractional_max_pool3d", "fractional_max_pool2d_with_indices",
            "fractional_max_pool3d_with_indices"]


# ---- CTC loss -----------------------------------------------------------------------------------------------
# Connectionist temporal classification (Graves et al., 2006) as torch's CPU kernels compute it
# (aten/src/ATen/native/LossCTC.cpp): the log-space forward (alpha) recursion over the blank-extended target
# gives the negative log likelihood; the backward (beta) recursion gives, per time step and class, torch's
# gradient `exp(lp) - exp(log(alpha·beta summed over the class's positions) + nll - lp)` (torch's formula: the
# gradient through a log_softmax folded in, not the plain derivative with respect to log_probs). Computed on the
# host in the input's float type with the kernels' operation order (their float32 rounding accumulates to ~1e-4
# over long inputs, so the order matters), inside a facade autograd.Function (emulated: MindSpore's CTCLoss
# kernel is Ascend/GPU only). bfloat16/float16 inputs run in float32.


def _lse3(a, b, c, ft):
    """torch's CTC log-add of three terms: log(exp(a-m) + exp(b-m) + exp(c-m)) + m, m their max (0 if all -inf),
    in float type ``ft`` with torch's operation order."""
    m = np.maximum(np.maximum(a, b), c)
    m = np.where(m == -np.inf, ft(0), m).astype(ft)
    return (np.log((np.exp(a - m) + np.exp(b - m)) + np.exp(c - m)) + m).astype(ft)


def _ctc_sample(x, ext, blank, ft):
    """One sample: x [T, C] log-probs (type ft), ext [L] extended labels -> (nll, lcab [T, C]) as torch's CPU
    kernels compute them (float type ``ft``)."""
    T, L = x.shape[0], ext.size
    neg = ft(-np.inf)
    same2 = np.ones(L, bool)  # target_prime(s - 2) == target_prime(s): no skip transition
    if L > 2:
        same2[2:] = ext[2:] == ext[:-2]
    emit = x[:, ext]
    la = np.full((T, L), neg, ft)
    lb = np.full((T, L), neg, ft)
    negs = np.full(L, neg, ft)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        la[0, 0] = emit[0, 0]
        if L > 1:
            la[0, 1] = emit[0, 1]
        for t in range(1, T):
            p = la[t - 1]
            p1, p2 = negs.copy(), negs.copy()
            p1[1:] = p[:-1]
            p2[2:] = p[:-2]
            p2 = np.where(same2, negs, p2)
            la[t] = (_lse3(p, p1, p2, ft) + emit[t]).astype(ft)
        l1 = la[T - 1, L - 1]
        l2 = la[T - 1, L - 2] if L > 1 else neg
        m = builtins.max(l1, l2)
        m = ft(0) if m == neg else m
        nll = -ft(np.log(ft(np.exp(ft(l1 - m)) + np.exp(ft(l2 - m)))) + m)
        lb[T - 1, L - 1] = emit[T - 1, L - 1]
        if L > 1:
            lb[T - 1, L - 2] = emit[T - 1, L - 2]
        for t in range(T - 2, -1, -1):
            q = lb[t + 1]
            q1, q2 = negs.copy(), negs.copy()
            q1[:-1] = q[1:]
            q2[:L - 2] = q[2:]
            nsame = np.ones(L, bool)
            if L > 2:
                nsame[:-2] = same2[2:]
            q2 = np.where(nsame, negs, q2)
            lb[t] = (_lse3(q, q1, q2, ft) + emit[t]).astype(ft)
        ab = (la + lb).astype(ft)
        lcab = np.full((T, x.shape[1]), neg, ft)
        for s in range(L - 1, -1, -1):
            c = ext[s]
            cur, v = lcab[:, c], ab[:, s]
            mx = np.maximum(cur, v)
            acc = (np.log(np.exp(cur - mx) + np.exp(v - mx)) + mx).astype(ft)
            lcab[:, c] = np.where(cur == neg, v, acc)
    return nll, lcab


def _ctc_host(lp, targets, in_lens, tg_lens, blank, zero_infinity):
    """lp [T, N, C] (float32 or float64 array) -> (nll [N], grad [T, N, C] per unit upstream gradient), torch's
    CPU formulas and operation order in lp's float type."""
    ft = lp.dtype.type
    T, N, C = lp.shape
    nll = np.zeros(N, ft)
    grad = np.zeros((T, N, C), ft)
    for b in range(N):
        tl, il = int(tg_lens[b]), int(in_lens[b])
        ext = np.full(2 * tl + 1, blank, np.int64)
        ext[1::2] = targets[b][:tl]
        if il == 0:
            nll[b] = ft(0) if tl == 0 else ft(np.inf)
            if zero_infinity and np.isinf(nll[b]):
                nll[b] = ft(0)
            continue
        x = lp[:il, b]
        nb, lcab = _ctc_sample(x, ext, blank, ft)
        nll[b] = nb
        if zero_infinity and np.isinf(nb):
            nll[b] = ft(0)
            continue
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            grad[:il, b] = (np.exp(x) - np.exp((lcab + nb) - x)).astype(ft)
    return nll, grad


def _ctc_function():
    t = _torch()

    class _CTC(t.autograd.Function):
        @staticmethod
        def forward(ctx, log_probs, targets_np, in_lens, tg_lens, blank, zero_infinity):
            lp = np.asarray(log_probs.detach().cpu().numpy())
            lp = lp.astype(np.float64 if lp.dtype == np.float64 else np.float32)
            nll, grad = _ctc_host(lp, targets_np, in_lens, tg_lens, blank, zero_infinity)
            ctx.grad = grad
            ctx.dtype = log_probs.dtype
            return t.tensor(nll, dtype=log_probs.dtype, device=log_probs.device)

        @staticmethod
        def backward(ctx, g):
            gr = np.asarray(g.detach().cpu().numpy()).astype(ctx.grad.dtype).reshape(1, -1, 1)
            res = t.tensor(ctx.grad * gr, dtype=ctx.dtype, device=g.device)
            return res, None, None, None, None, None

    return _CTC


_CTC_CLS = []


def _lengths(v, name):
    if isinstance(v, (list, tuple)):
        return np.asarray([int(x) for x in v], np.int64)
    if isinstance(v, Tensor):
        return np.asarray(v.cpu().numpy(), np.int64).reshape(-1)
    if isinstance(v, int):
        return np.asarray([v], np.int64)
    raise TypeError(f"ctc_loss(): {name} must be a tuple of ints or a Tensor, got {type(v).__name__}")


@_emulated("torch's CTC recursions on the host (input's float type) in a facade autograd.Function")
def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0, reduction="mean", zero_infinity=False):
    """CTC loss of ``log_probs`` [T, N, C] (or unbatched [T, C]) against ``targets`` [N, S] (padded) or the 1-D
    concatenation of all targets, with per-sample ``input_lengths`` / ``target_lengths`` (tensors or int
    sequences); reduction 'none' -> [N], 'sum', or 'mean' (each loss divided by its target length, then averaged).
    ``zero_infinity`` turns infinite losses (impossible alignments) and their gradients into 0. The gradient is
    torch's (see the section comment)."""
    _check_tensor(log_probs, "log_probs", "ctc_loss")
    if not _CTC_CLS:
        _CTC_CLS.append(_ctc_function())
    unbatched = log_probs.dim() == 2
    lp = log_probs.unsqueeze(1) if unbatched else log_probs
    if lp.dim() != 3:
        raise RuntimeError(f"ctc_loss(): expected log_probs to be 2-D or 3-D, got {log_probs.dim()}-D")
    T, N, C = lp.shape
    if not 0 <= blank < C:
        raise RuntimeError("blank must be in label range")
    if isinstance(input_lengths, Tensor) != isinstance(target_lengths, Tensor):
        raise TypeError("ctc_loss(): input_lengths and target_lengths must both be tensors or both be tuples of ints")
    in_lens = _lengths(input_lengths, "input_lengths")
    tg_lens = _lengths(target_lengths, "target_lengths")
    tg = np.asarray(targets.cpu().numpy(), np.int64)
    if unbatched:
        tg = tg.reshape(1, -1)
    if in_lens.size != N or tg_lens.size != N:
        raise RuntimeError(f"ctc_loss(): expected input_lengths and target_lengths of size {N} (batch size), got "
                           f"{in_lens.size} and {tg_lens.size}")
    if (in_lens > T).any() or (in_lens < 0).any():
        raise RuntimeError(f"ctc_loss(): input lengths must be in [0, {T}]")
    if tg.ndim == 1:  # concatenated targets
        offs = np.concatenate([[0], np.cumsum(tg_lens)])
        if offs[-1] > tg.size:
            raise RuntimeError("ctc_loss(): the concatenated targets are shorter than the sum of target_lengths")
        smax = int(tg_lens.max()) if N else 0
        padded = np.full((N, builtins.max(smax, 1)), blank, np.int64)
        for b in range(N):
            padded[b, :tg_lens[b]] = tg[offs[b]:offs[b + 1]]
        tg = padded
    elif (tg_lens > tg.shape[1]).any():
        raise RuntimeError(f"ctc_loss(): target lengths exceed the padded targets' length {tg.shape[1]}")
    nll = _CTC_CLS[0].apply(lp, tg, in_lens, tg_lens, int(blank), bool(zero_infinity))
    if reduction == "none":
        return nll.squeeze(0) if unbatched else nll
    if reduction == "sum":
        return nll.sum()
    if reduction == "mean":
        t = _torch()
        div = t.tensor(np.maximum(tg_lens, 1).astype(np.float64), dtype=nll.dtype, device=nll.device)
        return (nll / div).mean()
    raise ValueError(f"{reduction} is not a valid value for reduction")


__all__ += ["ctc_loss"]
