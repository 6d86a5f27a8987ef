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
    return _out(mint.softmax(x, _norm_dim(dim, input.dim())), input, dt)


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
        return shifted - mint.log(mint.sum(mint.exp(shifted), dim, keepdim=True))
    return ops.log_softmax(x, dim)


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


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """max(x, 0)."""
    return _inplace_result(input, _out(mint.nn.functional.relu(unwrap(input)), input), inplace)


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    """min(max(x, 0), 6)."""
    return _inplace_result(input, _out(mint.clamp(unwrap(input), 0.0, 6.0), input), inplace)


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
    when heads differ without it). ``dropout_p`` drops attention weights with MindSpore's RNG.
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
    probs = mint.softmax(scores, -1)
    if dropout_p > 0.0:
        # workaround "DropoutExt" (shim/torch/_workarounds.py)
        probs = ops.dropout(probs, p=dropout_p, training=True)
    out = mint.matmul(probs, v)
    return _out(out, query)


# ----------------------------------------------------------------------------------------------------------
# shape utilities


def pad(input: Tensor, pad, mode: str = "constant", value: float | None = None) -> Tensor:
    """Pad the last ``len(pad) // 2`` dims: ``pad = (left_last, right_last, left_prev, right_prev, ...)``
    (negative values crop). ``mode="constant"`` fills ``value`` (default 0); "reflect", "replicate" and
    "circular" index the input (an index_select per padded dim). ValueError for an odd-length ``pad`` or one longer than 2 * input.dim()."""
    _check_tensor(input, "input", "pad")
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2:
        raise ValueError("Padding length must be divisible by 2")
    if len(pad) // 2 > input.dim():
        raise ValueError("Padding length should be less than or equal to two times the input dimension but got "
                         f"padding length {len(pad)} and input of dimension {input.dim()}")
    if mode != "constant":
        return _pad_mode(input, pad, mode)
    x = unwrap(input)
    if all(p == 0 for p in pad):
        return _out(x + 0 if input._dt is not D.bool else ops.cast(ops.cast(x, ms.int32), ms.bool_), input)
    fill = 0 if value is None else value
    if input._dt is D.bool:
        out = ops.cast(ops.pad(ops.cast(x, ms.int32), pad, mode="constant", value=int(bool(fill))), ms.bool_)
    else:
        out = ops.pad(x, pad, mode="constant", value=fill)
    return _out(out, input)


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


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x if x > 0 else alpha * (exp(x) - 1)."""
    t = _torch()
    return _inplace_result(input, t.where(input > 0, input, t.expm1(input) * alpha), inplace)


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x if x > 0 else alpha * (exp(x / alpha) - 1)."""
    t = _torch()
    return _inplace_result(input, t.where(input > 0, input, t.expm1(input / alpha) * alpha), inplace)


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def selu(input: Tensor, inplace: bool = False) -> Tensor:
    """scale * elu(x, alpha) with torch's constants (from the SELU paper)."""
    t = _torch()
    r = t.where(input > 0, input * _SELU_SCALE, t.expm1(input) * (_SELU_ALPHA * _SELU_SCALE))
    return _inplace_result(input, r, inplace)


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> Tensor:
    """clamp(x, min_val, max_val)."""
    return _inplace_result(input, input.clamp(min_val, max_val), inplace)


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    """x * relu6(x + 3) / 6."""
    return _inplace_result(input, input * (input + 3).clamp(0, 6) / 6, inplace)


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    """relu6(x + 3) / 6."""
    return _inplace_result(input, (input + 3).clamp(0, 6) / 6, inplace)


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    """x * tanh(softplus(x))."""
    return _inplace_result(input, input * tanh(softplus(input)), inplace)


def softshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """x - lambd if x > lambd, x + lambd if x < -lambd, else 0."""
    t = _torch()
    return t.where(input > lambd, input - lambd, t.where(input < -lambd, input + lambd, input * 0))


def hardshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """x if |x| > lambd else 0."""
    t = _torch()
    return t.where((input > lambd) | (input < -lambd), input, input * 0)


def softsign(input: Tensor) -> Tensor:
    """x / (1 + |x|)."""
    return input / (input.abs() + 1)


def tanhshrink(input: Tensor) -> Tensor:
    """x - tanh(x)."""
    return input - tanh(input)


def threshold(input: Tensor, threshold: float, value: float, inplace: bool = False) -> Tensor:
    """x if x > threshold else value."""
    t = _torch()
    return _inplace_result(input, t.where(input > threshold, input, input * 0 + value), inplace)


def prelu(input: Tensor, weight: Tensor) -> Tensor:
    """x if x > 0 else weight * x; ``weight`` has 1 or C (= input.size(1)) elements."""
    t = _torch()
    w = weight.reshape(())
    if weight.numel() != 1:
        if input.dim() < 2 or input.shape[1] != weight.numel():
            raise RuntimeError(f"prelu: weight has {weight.numel()} elements, expected 1 or input.size(1)")
        w = weight.reshape([-1] + [1] * (input.dim() - 2))
    return t.where(input > 0, input, input * w)


def softmin(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """softmax(-x, dim)."""
    return softmax(-input, dim, dtype=dtype)


# ---- losses -----------------------------------------------------------------------------------------------


def _red(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.mean()
    raise ValueError(f"{reduction} is not a valid value for reduction")


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
    """-(t log x + (1 - t) log(1 - x)) with each log clamped at -100 (torch's), times ``weight``."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"Using a target size ({target.shape}) that is different to the input size "
                         f"({input.shape}) is deprecated. Please ensure they have the same size.")
    loss = -(target * input.log().clamp(min=-100) + (1 - target) * (1 - input).log().clamp(min=-100))
    if weight is not None:
        loss = loss * weight
    return _red(loss, reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None,
                                     reduction="mean", pos_weight=None):
    """(1 - t) x + (1 + (pos_weight - 1) t) (log(1 + exp(-|x|)) + max(-x, 0)), times ``weight`` (stable)."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"Target size ({target.shape}) must be the same as input size ({input.shape})")
    soft = (-input.abs()).exp().log1p() + (-input).clamp(min=0)
    if pos_weight is not None:
        loss = (1 - target) * input + (1 + (pos_weight - 1) * target) * soft
    else:
        loss = (1 - target) * input + soft
    if weight is not None:
        loss = loss * weight
    return _red(loss, reduction)


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0):
    """0.5 d² / beta where d = |x - y| < beta, else d - 0.5 beta (beta = 0: l1)."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    d = (input - target).abs()
    if beta == 0:
        return _red(d, reduction)
    return _red(_torch().where(d < beta, d * d * (0.5 / beta), d - 0.5 * beta), reduction)


def huber_loss(input, target, reduction="mean", delta=1.0, weight=None):
    """0.5 d² where d = |x - y| < delta, else delta (d - 0.5 delta)."""
    d = (input - target).abs()
    loss = _torch().where(d < delta, d * d * 0.5, (d - 0.5 * delta) * delta)
    if weight is not None:
        loss = loss * weight
    return _red(loss, reduction)


def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    """Pointwise KL divergence with ``input`` log-probabilities: t (log t - x) (0 where t = 0), or
    exp(t) (t - x) with ``log_target``; ``reduction="batchmean"`` divides the sum by input.size(0)."""
    reduction = _legacy_reduction(size_average, reduce, reduction) if reduction != "batchmean" else reduction
    t = _torch()
    if log_target:
        loss = target.exp() * (target - input)
    else:
        # xlogy(t, t): 0 where t == 0, t log t elsewhere (NaN for t < 0, as torch)
        tlogt = t.where(target == 0, target * 0, target * t.where(target == 0, target * 0 + 1, target).log())
        loss = tlogt - target * input
    if reduction == "batchmean":
        return loss.sum() / input.shape[0] if input.dim() else loss.sum()
    return _red(loss, reduction)


def margin_ranking_loss(input1, input2, target, margin=0.0, size_average=None, reduce=None, reduction="mean"):
    """max(0, -y (x1 - x2) + margin)."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    return _red((-target * (input1 - input2) + margin).clamp(min=0), reduction)


def hinge_embedding_loss(input, target, margin=1.0, size_average=None, reduce=None, reduction="mean"):
    """x where y = 1, max(0, margin - x) where y = -1 (torch's: both terms where y is neither)."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    t = _torch()
    zero = input * 0
    loss = t.where(target != 1, (margin - input).clamp(min=0), zero) + t.where(target != -1, input, zero)
    return _red(loss, reduction)


def soft_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """log(1 + exp(-y x))."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    return _red((-target * input).exp().log1p(), reduction)


def cosine_similarity(x1, x2, dim=1, eps=1e-8):
    """<x1, x2> / max(||x1|| ||x2||, eps) along ``dim`` (torch's: each norm clamped at sqrt(eps))... computed as
    torch's CPU kernel: x1 / max(||x1||, eps) . x2 / max(||x2||, eps)."""
    n1 = (x1 * x1).sum(dim, keepdim=True).sqrt().clamp(min=eps)
    n2 = (x2 * x2).sum(dim, keepdim=True).sqrt().clamp(min=eps)
    return ((x1 / n1) * (x2 / n2)).sum(dim)


def cosine_embedding_loss(input1, input2, target, margin=0.0, size_average=None, reduce=None, reduction="mean"):
    """1 - cos(x1, x2) where y = 1, max(0, cos - margin) where y = -1 (cos with 1e-12 added to each squared
    norm, torch's)."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    t = _torch()
    dim = input1.dim() - 1
    eps = 1e-12
    prod = (input1 * input2).sum(dim)
    m1 = (input1 * input1).sum(dim) + eps
    m2 = (input2 * input2).sum(dim) + eps
    cos = prod / (m1 * m2).sqrt()
    zero = cos * 0
    loss = t.where(target == 1, 1 - cos, zero) + t.where(target == -1, (cos - margin).clamp(min=0), zero)
    return _red(loss, reduction)


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


# ---- padding modes ----------------------------------------------------------------------------------------


def _pad_index(n: int, left: int, right: int, mode: str) -> np.ndarray:
    """Source index along one dim of length ``n`` for each of the ``left + n + right`` padded positions."""
    pos = np.arange(-left, n + right)
    if mode == "reflect":
        if left >= n or right >= n:
            raise RuntimeError(f"Argument #4: Padding size should be less than the corresponding input "
                               f"dimension, but got: padding ({left}, {right}) at dimension of size {n}")
        period = 2 * (n - 1) if n > 1 else 1
        q = np.mod(pos, period)
        return np.where(q < n, q, period - q)
    if mode == "replicate":
        return np.clip(pos, 0, n - 1)
    if mode == "circular":
        if left > n or right > n:
            raise RuntimeError("Padding value causes wrapping around more than once.")
        return np.mod(pos, n)
    raise NotImplementedError(f"torch.nn.functional.pad(mode={mode!r}): unknown padding mode")


def _pad_mode(input: Tensor, pad: tuple, mode: str) -> Tensor:
    """reflect / replicate / circular padding as an index_select per padded dim (differentiable; negative
    padding crops first, as torch)."""
    nd = len(pad) // 2
    if mode in ("reflect", "replicate", "circular") and not (input.dim() in (nd + 1, nd + 2)):
        raise NotImplementedError(f"torch.nn.functional.pad(mode={mode!r}) with {len(pad)}-element pad expects a "
                                  f"{nd + 1}-D or {nd + 2}-D input, got {input.dim()}-D")
    out = input
    for i in range(nd):
        dim = input.dim() - 1 - i
        left, right = pad[2 * i], pad[2 * i + 1]
        if left < 0 or right < 0:
            n = out.shape[dim]
            out = out.narrow(dim, builtins.max(-left, 0), n - builtins.max(-left, 0) - builtins.max(-right, 0))
            left, right = builtins.max(left, 0), builtins.max(right, 0)
        if left == 0 and right == 0:
            continue
        idx = _pad_index(out.shape[dim], left, right, mode)
        out = out.index_select(dim, _torch().tensor(idx, dtype=_torch().int64, device=input.device))
    return out


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
    dims, no padding)."""
    if len(stride) == 2:
        return ops.conv2d(x, w, stride=stride, pad_mode="valid", dilation=dilation, groups=groups)
    # workaround "Conv3DGroups" (shim/torch/_workarounds.py)
    if groups == 1:
        return ops.conv3d(x, w, stride=stride, pad_mode="valid", dilation=dilation)
    xs = mint.chunk(x, groups, 1)
    ws = mint.chunk(w, groups, 0)
    return mint.cat([ops.conv3d(a, b, stride=stride, pad_mode="valid", dilation=dilation)
                     for a, b in zip(xs, ws)], 1)


def _convnd(input, weight, bias, stride, padding, dilation, groups, nd: int, fn: str):
    """Convolution with ``nd`` spatial dims: ``input`` [N, C_in, *S] or unbatched [C_in, *S], ``weight``
    [C_out, C_in / groups, *K], ``padding`` an int/tuple or "same"/"valid" (zeros). 1-d runs as 2-d with a unit
    height (MindSpore's CPU target has Conv2D and Conv3D kernels, no Conv1D)."""
    _check_tensor(input, "input", fn)
    _check_tensor(weight, "weight", fn)
    if input.dim() not in (nd + 1, nd + 2):
        raise RuntimeError(f"{fn}: Expected {nd + 1}D (unbatched) or {nd + 2}D (batched) input to {fn}, but got "
                           f"input of size: {list(input.shape)}")
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
    res = _out(out, input)
    if bias is not None:
        res = res + bias.reshape([-1] + [1] * nd)
    return res.squeeze(0) if unbatched else res


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-d convolution (see `_convnd`): [N, C_in, L] -> [N, C_out, L_out]."""
    return _convnd(input, weight, bias, stride, padding, dilation, groups, 1, "conv1d")


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-d convolution (see `_convnd`): [N, C_in, H, W] -> [N, C_out, H_out, W_out]."""
    return _convnd(input, weight, bias, stride, padding, dilation, groups, 2, "conv2d")


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """3-d convolution (see `_convnd`): [N, C_in, D, H, W] -> [N, C_out, D_out, H_out, W_out]."""
    return _convnd(input, weight, bias, stride, padding, dilation, groups, 3, "conv3d")


def _conv_transposend(input, weight, bias, stride, padding, output_padding, groups, dilation, nd: int, fn: str):
    """Transposed convolution composed as a convolution: the input with stride-1 zeros inserted between
    elements, padded by dilation (k - 1) - padding each side (+ output_padding at the end), convolved with the
    flipped weight [C_in, C_out / groups, *K] regrouped to [C_out, C_in / groups, *K] (stride 1)."""
    _check_tensor(input, "input", fn)
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
    t = _torch()
    lead = list(input.shape[:-nd])
    x = input.reshape(lead + [-1])
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
    shape = list(input.shape[:-nd]) + list(out_sizes)
    vals = vals.reshape(shape)
    if not return_indices:
        return vals
    tab = t.tensor(table, dtype=t.int64, device=input.device).expand(list(arg.shape) + [table.shape[1]])
    ind = tab.gather(-1, arg.unsqueeze(-1)).squeeze(-1).reshape(shape)
    return vals, ind


def _max_poolnd(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, nd, fn):
    _check_pool_input(input, nd, fn)
    k = _tuple(kernel_size, nd, "kernel_size")
    s = k if stride is None or (isinstance(stride, (tuple, list)) and not stride) else _tuple(stride, nd, "stride")
    p = _tuple(padding, nd, "padding")
    d = _tuple(dilation, nd, "dilation")
    if any(pp * 2 > kk for pp, kk in zip(p, k)):
        raise RuntimeError(f"{fn}: pad should be at most half of effective kernel size, but got pad={p}, "
                           f"kernel_size={k}")
    sizes = list(input.shape[-nd:])
    table, _, out = _table(sizes, _window_dims(sizes, k, s, p, d, ceil_mode))
    return _max_from_table(input, nd, table, out, return_indices)


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """1-d max pooling (emulated: window gather + max; indices are flat positions in the input's L)."""
    return _max_poolnd(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, 1, "max_pool1d")


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """2-d max pooling (emulated: window gather + max; indices are flat positions in H * W, as torch)."""
    return _max_poolnd(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, 2, "max_pool2d")


def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """3-d max pooling (emulated: window gather + max; indices flat in D * H * W)."""
    return _max_poolnd(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, 3, "max_pool3d")


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
    w = _gather_windows(input, nd, table, 0.0)
    t = _torch()
    res = w.sum(-1) / t.tensor(div.astype(np.float32), dtype=input.dtype, device=input.device)
    return res.reshape(list(input.shape[:-nd]) + out)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """1-d average pooling (emulated, see the pooling section)."""
    return _avg_poolnd(input, kernel_size, stride, padding, ceil_mode, count_include_pad, None, 1, "avg_pool1d")


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """2-d average pooling (emulated; divisor as torch's CPU kernel: window clipped to the padded input, or to
    the input without ``count_include_pad``, or ``divisor_override``)."""
    return _avg_poolnd(input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, 2,
                       "avg_pool2d")


def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """3-d average pooling (emulated, as avg_pool2d)."""
    return _avg_poolnd(input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, 3,
                       "avg_pool3d")


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


def adaptive_avg_pool1d(input, output_size):
    """Adaptive average pooling to length ``output_size`` (windows [floor(iL/O), ceil((i+1)L/O)), emulated)."""
    return _adaptive(input, output_size, 1, "adaptive_avg_pool1d", "avg")


def adaptive_avg_pool2d(input, output_size):
    """Adaptive 2-d average pooling (``None`` in output_size keeps that input size; emulated)."""
    return _adaptive(input, output_size, 2, "adaptive_avg_pool2d", "avg")


def adaptive_avg_pool3d(input, output_size):
    """Adaptive 3-d average pooling (emulated)."""
    return _adaptive(input, output_size, 3, "adaptive_avg_pool3d", "avg")


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


# ---- normalisation ----------------------------------------------------------------------------------------


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1,
               eps=1e-5):
    """Normalise over every dim but 1 (channels): batch statistics (biased variance) when ``training``, the
    running ones otherwise. In training the running buffers are updated in place:
    r = (1 - momentum) r + momentum * stat, the variance unbiased (torch's)."""
    _check_tensor(input, "input", "batch_norm")
    if input.dim() < 2:
        raise ValueError(f"expected 2D or higher input (got {input.dim()}D input)")
    dims = [0] + list(range(2, input.dim()))
    shape = [1, -1] + [1] * (input.dim() - 2)
    if training:
        n = input.numel() // input.shape[1]
        if n <= 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got input size "
                             f"{list(input.shape)}")
        mean = input.mean(dims, keepdim=True)
        var = ((input - mean) ** 2).mean(dims, keepdim=True)
        if running_mean is not None or running_var is not None:
            with _torch().no_grad():
                if running_mean is not None:
                    running_mean.mul_(1 - momentum).add_(mean.detach().reshape(-1) * momentum)
                if running_var is not None:
                    running_var.mul_(1 - momentum).add_(var.detach().reshape(-1) * (momentum * n / (n - 1)))
    else:
        mean = running_mean.reshape(shape)
        var = running_var.reshape(shape)
    out = (input - mean) / (var + eps).sqrt()
    if weight is not None:
        out = out * weight.reshape(shape)
    if bias is not None:
        out = out + bias.reshape(shape)
    return out


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None, use_input_stats=True,
                  momentum=0.1, eps=1e-5):
    """Normalise each (sample, channel) over its spatial dims; with running buffers, ``use_input_stats``
    updates them with the batch average of the instance statistics, otherwise normalises with them."""
    _check_tensor(input, "input", "instance_norm")
    n, c = input.shape[0], input.shape[1]
    shape = [1, -1] + [1] * (input.dim() - 2)
    if not use_input_stats:
        out = (input - running_mean.reshape(shape)) / (running_var.reshape(shape) + eps).sqrt()
    else:
        dims = list(range(2, input.dim()))
        cnt = int(np.prod(input.shape[2:]))
        if cnt <= 1:
            raise ValueError(f"Expected more than 1 spatial element when training, got input size "
                             f"{list(input.shape)}")
        mean = input.mean(dims, keepdim=True)
        var = ((input - mean) ** 2).mean(dims, keepdim=True)
        if running_mean is not None:
            with _torch().no_grad():
                running_mean.mul_(1 - momentum).add_(mean.detach().reshape(n, c).mean(0) * momentum)
                running_var.mul_(1 - momentum).add_(
                    var.detach().reshape(n, c).mean(0) * (momentum * cnt / (cnt - 1)))
        out = (input - mean) / (var + eps).sqrt()
    if weight is not None:
        out = out * weight.reshape(shape)
    if bias is not None:
        out = out + bias.reshape(shape)
    return out


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """Normalise over (channels of a group, spatial dims) per sample: input [N, C, *] with C divisible by
    ``num_groups``; per-channel affine ``weight``/``bias`` [C]."""
    _check_tensor(input, "input", "group_norm")
    if input.dim() < 2 or input.shape[1] % num_groups:
        raise RuntimeError(f"Expected number of channels in input to be divisible by num_groups, but got input "
                           f"of shape {list(input.shape)} and num_groups={num_groups}")
    n = input.shape[0]
    x = input.reshape(n, num_groups, -1)
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    out = ((x - mean) / (var + eps).sqrt()).reshape(input.shape)
    shape = [1, -1] + [1] * (input.dim() - 2)
    if weight is not None:
        out = out * weight.reshape(shape)
    if bias is not None:
        out = out + bias.reshape(shape)
    return out


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
