"""`torch.nn.utils.clip_grad_norm_`, `clip_grad_value_`, `get_total_norm`, `clip_grads_with_norm_`.

torch's algorithm: the total norm is the ``norm_type``-norm of the per-gradient norms; every gradient is then
multiplied in place by ``clamp(max_norm / (total_norm + 1e-6), max=1)`` (also when that factor is 1).
Norms are computed in float32 with MindSpore ops (``sqrt(sum(g*g))`` for the 2-norm, ``amax(|g|)`` for inf).
"""
from __future__ import annotations

import math

import mindspore as ms
from mindspore import mint, ops

from ... import _tensor as _T
from ..._tensor import Tensor, unwrap

__all__ = ["clip_grad_norm_", "clip_grad_norm", "clip_grad_value_", "get_total_norm", "clip_grads_with_norm_"]


def _tensors(x) -> list:
    if isinstance(x, Tensor):
        return [x]
    return list(x)


def _vector_norm_m(m, norm_type: float, storage_dtype=ms.float32):
    """``norm_type``-norm of storage tensor ``m`` (dtype ``storage_dtype``; computed in float32 unless
    float64)."""
    m = m if storage_dtype in (ms.float32, ms.float64) else ops.cast(m, ms.float32)
    if norm_type == math.inf:
        return mint.amax(mint.abs(m.reshape(-1)), 0)
    if norm_type == -math.inf:
        return mint.amin(mint.abs(m.reshape(-1)), 0)
    if norm_type == 2.0:
        return mint.sqrt((m * m).sum())
    if norm_type == 1.0:
        return mint.abs(m).sum()
    if norm_type == 0:
        return ops.cast(m != 0, ms.float32).sum()
    return mint.pow(mint.pow(mint.abs(m), norm_type).sum(), 1.0 / norm_type)


def get_total_norm(tensors, norm_type: float = 2.0, error_if_nonfinite: bool = False, foreach=None) -> Tensor:
    """The ``norm_type``-norm of all ``tensors`` together (a float32 scalar tensor; 0 for an empty list).

    Raises RuntimeError when ``error_if_nonfinite`` and the norm is nan or inf."""
    norm_type = float(norm_type)
    tensors = [t for t in _tensors(tensors) if t is not None]
    if not tensors:
        return _T._new(ms.Tensor(0.0, ms.float32), _T.D.float32)
    norms = [_vector_norm_m(unwrap(t), norm_type, t._dt.sms) for t in tensors]
    out_dtype = _T.D.float64 if all(t._dt is _T.D.float64 for t in tensors) else _T.D.float32
    if out_dtype is _T.D.float32:
        norms = [n if t._dt is not _T.D.float64 else ops.cast(n, ms.float32) for n, t in zip(norms, tensors)]
    total = _vector_norm_m(ops.stack(norms), norm_type, out_dtype.sms)
    total_t = _T._new(total, out_dtype, tensors[0]._dev)
    if error_if_nonfinite:
        value = float(total.asnumpy())
        if math.isnan(value) or math.isinf(value):
            raise RuntimeError(f"The total norm of order {norm_type} for gradients from `parameters` is "
                               "non-finite, so it cannot be clipped. To disable this error and scale the gradients "
                               "by the non-finite norm anyway, set `error_if_nonfinite=False`")
    return total_t


def _replace_grad(param, new) -> None:
    """Give ``param`` the gradient value ``new``.

    torch scales/clamps ``param.grad`` in place. MindSpore leaves some gradients non-contiguous (e.g. the
    weight
    gradient of a Linear without bias, strides [1, n]) and its in-place copy into such a tensor is silently
    lost on CPU, so the new value is installed through the ``.grad`` setter instead (same values; the grad
    tensor object changes)."""
    # workaround "copy_ non-contiguous" (shim/torch/_workarounds.py)
    param.grad = new


def clip_grads_with_norm_(parameters, max_norm: float, total_norm: Tensor, foreach=None) -> None:
    """Scale every gradient of ``parameters`` by ``clamp(max_norm / (total_norm + 1e-6), max=1)`` (see
    `_replace_grad` for how the new values are installed)."""
    params = [p for p in _tensors(parameters) if p.grad is not None]
    if not params:
        return
    coef = mint.clamp(float(max_norm) / (unwrap(total_norm) + 1e-6), max=1.0)
    from ...autograd.grad_mode import no_grad
    with no_grad():
        for p in params:
            g = p.grad
            c = coef if g._dt.sms == total_norm._dt.sms else ops.cast(coef, g._dt.sms)
            _replace_grad(p, g * _T._new(c, g._dt, g._dev))


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False,
                    foreach=None) -> Tensor:
    """Clip the gradients of ``parameters`` (a Tensor or an iterable) in place so that their total
    ``norm_type``-norm is at most ``max_norm``; returns the total norm before clipping (float32 scalar
    tensor).
    Raises RuntimeError for a non-finite norm when ``error_if_nonfinite``."""
    params = _tensors(parameters)
    grads = [p.grad for p in params if p.grad is not None]
    total = get_total_norm(grads, norm_type, error_if_nonfinite)
    clip_grads_with_norm_(params, max_norm, total)
    return total


def clip_grad_norm(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None) -> Tensor:
    """Deprecated alias of `clip_grad_norm_` (torch warns too)."""
    import warnings
    warnings.warn("`torch.nn.utils.clip_grad_norm` is now deprecated in favor of `torch.nn.utils.clip_grad_norm_`.",
                  FutureWarning, stacklevel=2)
    return clip_grad_norm_(parameters, max_norm, norm_type, error_if_nonfinite, foreach)


def clip_grad_value_(parameters, clip_value: float, foreach=None) -> None:
    """Clamp every gradient of ``parameters`` to [-clip_value, clip_value] (installed as in
    `clip_grads_with_norm_`)."""
    clip_value = float(clip_value)
    from ...autograd.grad_mode import no_grad
    with no_grad():
        for p in _tensors(parameters):
            if p.grad is not None:
                _replace_grad(p, p.grad.clamp(min=-clip_value, max=clip_value))
