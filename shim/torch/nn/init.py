"""`torch.nn.init` for the facade: in-place initialisers, run without recording gradients.

Fan computation, gains and bounds are torch's, with torch's Python arithmetic (same expressions, so the same
float bounds). Random values come from the facade's generator, which reproduces torch's CPU streams bit for bit
(shim/torch/_cpu_rng.py): under the same `torch.manual_seed`, `uniform_`, `normal_`, `xavier_*`, `kaiming_*` and
`trunc_normal_` fill the same values as real torch. `trunc_normal_` follows torch 2.13's sampler
(`torch/nn/init.py` `_no_grad_trunc_normal_`: redraw out-of-range normals when the interval holds more than 30 %
of the mass, otherwise uniform proposals accepted by a log-density test — that branch compares float32 logs
computed by NumPy, which may differ from torch's vectorised log in the last bit, so a borderline acceptance can
differ). `orthogonal_` draws torch's normals and factors them with NumPy's QR (LAPACK): equal to torch's to
rounding (~1e-6), not bit for bit (torch's QR runs in its own LAPACK build).
"""
from __future__ import annotations

import math
import warnings

import mindspore as ms

from .. import _tensor as _T
from .._tensor import Tensor

__all__ = ["calculate_gain", "uniform_", "normal_", "trunc_normal_", "constant_", "ones_", "zeros_", "eye_",
           "dirac_", "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "orthogonal_",
           "sparse_", "uniform", "normal", "constant", "xavier_uniform", "xavier_normal", "kaiming_uniform",
           "kaiming_normal"]


def _no_grad():
    from ..autograd.grad_mode import no_grad
    return no_grad()


def _check(tensor, fn: str) -> None:
    if not isinstance(tensor, Tensor):
        raise TypeError(f"torch.nn.init.{fn}: expected a Tensor, got {type(tensor).__name__}")


def calculate_gain(nonlinearity: str, param=None) -> float:
    """torch's recommended gain for ``nonlinearity``; ValueError for an unknown one or a bad ``param``."""
    linear_fns = ["linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                  "conv_transpose3d"]
    if nonlinearity in linear_fns or nonlinearity == "sigmoid":
        return 1
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            negative_slope = 0.01
        elif not isinstance(param, bool) and isinstance(param, (int, float)):
            negative_slope = param
        else:
            raise ValueError(f"negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + negative_slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def _calculate_fan_in_and_fan_out(tensor) -> tuple[int, int]:
    dim = tensor.dim()
    if dim < 2:
        raise ValueError("Fan in and fan out can not be computed for tensor with fewer than 2 dimensions")
    num_input_fmaps = tensor.size(1)
    num_output_fmaps = tensor.size(0)
    receptive = 1
    for s in tensor.shape[2:]:
        receptive *= s
    return num_input_fmaps * receptive, num_output_fmaps * receptive


def _calculate_correct_fan(tensor, mode: str) -> int:
    mode = mode.lower()
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {mode} not supported, please use one of fan_in, fan_out")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def uniform_(tensor, a: float = 0.0, b: float = 1.0, generator=None):
    """Fill ``tensor`` in place with U(a, b); returns it."""
    _check(tensor, "uniform_")
    with _no_grad():
        return tensor.uniform_(a, b, generator=generator) if generator is not None else tensor.uniform_(a, b)


def normal_(tensor, mean: float = 0.0, std: float = 1.0, generator=None):
    """Fill ``tensor`` in place with N(mean, std²); returns it."""
    _check(tensor, "normal_")
    with _no_grad():
        return tensor.normal_(mean, std, generator=generator) if generator is not None else tensor.normal_(mean, std)


def trunc_normal_(tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0, generator=None):
    """Fill ``tensor`` with N(mean, std²) truncated to [a, b] (torch's sampler and stream, see the module doc);
    returns it."""
    _check(tensor, "trunc_normal_")
    import numpy as np
    from .. import _cpu_rng as R
    from .._ops.creation import _gen, _kind

    def norm_cdf(x):
        return (1.0 + math.erf(x / math.sqrt(2.0))) / 2.0

    if (mean < a - 2 * std) or (mean > b + 2 * std):
        warnings.warn("mean is more than 2 std from [a, b] in nn.init.trunc_normal_. The distribution of values "
                      "may be incorrect.", stacklevel=2)
    eng = _gen({"generator": generator})._eng
    kind = _kind(tensor.dtype, "torch.nn.init.trunc_normal_")
    shape = tuple(tensor.shape)
    n = int(np.prod(shape)) if shape else 1
    contig = tensor.is_contiguous()
    npdt = np.float64 if kind == "float64" else np.float32

    def rnd(arr):  # the element type's rounding (bfloat16/float16 values are kept as float32)
        arr = np.asarray(arr)
        return R.round_half(arr, kind) if kind in ("bfloat16", "float16") else arr.astype(npdt)

    def as_dtype(v):
        return float(rnd(np.array([v], np.float64 if kind == "float64" else np.float32))[0])

    with _no_grad():
        p = norm_cdf((b - mean) / std) - norm_cdf((a - mean) / std)
        if p > 0.3:
            lo, hi = as_dtype(a), as_dtype(b)
            result = rnd(R.normal(eng, n, kind, float(mean), float(std), contig))
            while True:
                mask = (result < lo) | (result > hi)
                if not mask.any():
                    break
                result = np.where(mask, rnd(R.normal(eng, n, kind, float(mean), float(std), True)), result)
        else:
            mode = max(a, min(mean, b))
            log_peak = -0.5 * ((mode - mean) / std) ** 2

            def log_pdf(c):
                c = rnd(rnd(c - npdt(mean)) / npdt(std))
                c = rnd(rnd(c * c) * npdt(-0.5))
                return rnd(c - npdt(log_peak))

            def log_u():  # accept_buf.uniform_().log_() in the tensor's dtype (log(0) = -inf, as torch)
                with np.errstate(divide="ignore"):
                    return rnd(np.log(rnd(R.uniform(eng, n, kind, 0.0, 1.0))))

            result = rnd(R.uniform(eng, n, kind, a, b))
            cand = log_pdf(result)
            pending = log_u() > cand
            while pending.any():
                c = rnd(R.uniform(eng, n, kind, a, b))
                result = np.where(pending, c, result)
                cand = log_pdf(c)
                pending = np.where(pending, log_u() > cand, pending)
        tensor.copy_(_T._new(ms.Tensor(result.reshape(shape).astype(np.float32 if npdt is np.float32 else npdt)),
                             _T.D.float64 if kind == "float64" else _T.D.float32, tensor._dev))
    return tensor


def constant_(tensor, val: float):
    """Fill ``tensor`` in place with ``val``; returns it."""
    _check(tensor, "constant_")
    with _no_grad():
        return tensor.fill_(val)


def ones_(tensor):
    """Fill with 1."""
    return constant_(tensor, 1.0)


def zeros_(tensor):
    """Fill with 0."""
    _check(tensor, "zeros_")
    with _no_grad():
        return tensor.zero_()


def eye_(tensor):
    """Identity matrix in a 2-D tensor (ValueError otherwise)."""
    _check(tensor, "eye_")
    if tensor.dim() != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    import numpy as np
    with _no_grad():
        eye = np.eye(tensor.shape[0], tensor.shape[1], dtype=np.float32)
        tensor.copy_(_T._new(ms.Tensor(eye), _T.D.float32, tensor._dev))
    return tensor


def dirac_(tensor, groups: int = 1):
    """Not supported: raises NotImplementedError."""
    raise NotImplementedError("torch.nn.init.dirac_ is not supported by the MindSpore facade")


def orthogonal_(tensor, gain: float = 1, generator=None):
    """Fill ``tensor`` (≥ 2-D; trailing dims flattened) with a (semi-)orthogonal matrix times ``gain``: torch's
    normal draws (same stream), QR by NumPy's LAPACK with torch's sign fix (equal to torch's to rounding, see the
    module doc). ValueError for fewer than 2 dimensions."""
    _check(tensor, "orthogonal_")
    if tensor.ndimension() < 2:
        raise ValueError("Only tensors with 2 or more dimensions are supported")
    if tensor.numel() == 0:
        return tensor
    import numpy as np
    from .._ops.creation import empty
    rows = tensor.size(0)
    cols = tensor.numel() // rows
    with _no_grad():
        flat = empty(rows, cols, dtype=tensor.dtype).normal_(0, 1, generator=generator)._host()
        flat = flat.astype(np.float64 if tensor.dtype == _T.D.float64 else np.float32)
        if rows < cols:
            flat = flat.T
        q, r = np.linalg.qr(flat)
        q = q * np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        tensor.copy_(_T._new(ms.Tensor(np.ascontiguousarray(q).reshape(tuple(tensor.shape))),
                             _T.D.float64 if q.dtype == np.float64 else _T.D.float32, tensor._dev))
        tensor.mul_(gain)
    return tensor


def sparse_(tensor, sparsity, std=0.01, generator=None):
    """Not supported: raises NotImplementedError."""
    raise NotImplementedError("torch.nn.init.sparse_ is not supported by the MindSpore facade")


def xavier_uniform_(tensor, gain: float = 1.0, generator=None):
    """U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)) (Glorot)."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    a = math.sqrt(3.0) * std
    return uniform_(tensor, -a, a, generator=generator)


def xavier_normal_(tensor, gain: float = 1.0, generator=None):
    """N(0, std²) with std = gain * sqrt(2 / (fan_in + fan_out)) (Glorot)."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return normal_(tensor, 0.0, std, generator=generator)


def kaiming_uniform_(tensor, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                     generator=None):
    """U(-bound, bound) with bound = gain * sqrt(3 / fan) (He)."""
    if 0 in tuple(tensor.shape):
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=2)
        return tensor
    fan = _calculate_correct_fan(tensor, mode)
    gain = calculate_gain(nonlinearity, a)
    std = gain / math.sqrt(fan)
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound, generator=generator)


def kaiming_normal_(tensor, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                    generator=None):
    """N(0, std²) with std = gain / sqrt(fan) (He)."""
    if 0 in tuple(tensor.shape):
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=2)
        return tensor
    fan = _calculate_correct_fan(tensor, mode)
    gain = calculate_gain(nonlinearity, a)
    std = gain / math.sqrt(fan)
    return normal_(tensor, 0, std, generator=generator)


def _deprecated(new):
    def fn(*args, **kwargs):
        warnings.warn(f"nn.init.{new.__name__[:-1]} is now deprecated in favor of nn.init.{new.__name__}.",
                      FutureWarning, stacklevel=2)
        return new(*args, **kwargs)
    fn.__name__ = new.__name__[:-1]
    fn.__doc__ = f"Deprecated alias of `{new.__name__}`."
    return fn


uniform = _deprecated(uniform_)
normal = _deprecated(normal_)
constant = _deprecated(constant_)
xavier_uniform = _deprecated(xavier_uniform_)
xavier_normal = _deprecated(xavier_normal_)
kaiming_uniform = _deprecated(kaiming_uniform_)
kaiming_normal = _deprecated(kaiming_normal_)


from .._unsupported import module_getattr as _module_getattr  # noqa: E402

__getattr__ = _module_getattr("torch.nn.init")
