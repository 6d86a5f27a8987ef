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
    """Not supported: raises NotImplementedError."""
    raise NotImplementedError("torch.nn.functional.bilinear is not supported by the MindSpore facade")


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
    """Hyperbolic tangent."""
    return _out(mint.tanh(_float_storage(input, "tanh")), input)


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta x)) / beta, linear above ``threshold`` (torch's definition)."""
    x = _float_storage(input, "softplus")
    bx = x * beta
    soft = mint.log1p(mint.exp(mint.minimum(bx, ms.Tensor(threshold, _sms(input))))) / beta
    return _out(mint.where(bx > threshold, x, soft), input)


def logsigmoid(input: Tensor) -> Tensor:
    """log(sigmoid(x)) = -softplus(-x), computed stably."""
    x = _float_storage(input, "logsigmoid")
    return _out(mint.minimum(x, mint.zeros_like(x)) - mint.log1p(mint.exp(-mint.abs(x))), input)


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
    (negative values crop). Only ``mode="constant"`` (fill ``value``, default 0); other modes raise
    NotImplementedError. ValueError for an odd-length ``pad`` or one longer than 2 * input.dim()."""
    _check_tensor(input, "input", "pad")
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2:
        raise ValueError("Padding length must be divisible by 2")
    if len(pad) // 2 > input.dim():
        raise ValueError("Padding length should be less than or equal to two times the input dimension but got "
                         f"padding length {len(pad)} and input of dimension {input.dim()}")
    if mode != "constant":
        raise NotImplementedError(f"torch.nn.functional.pad(mode={mode!r}) is not supported by the MindSpore "
                                  "facade; only mode='constant'")
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
