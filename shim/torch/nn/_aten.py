"""torch-level functions of the nn family (ATen's building blocks that torch exposes as `torch.<name>` or
`torch.ops.aten.<name>`): `native_layer_norm`, `native_group_norm`, `native_batch_norm`,
`_native_batch_norm_legit`, `_batch_norm_with_update`, `constant_pad_nd`, `slice`, `_chunk_cat`,
`_softmax_backward_data`, `_safe_softmax`, `native_dropout_backward`, `max_pool2d_with_indices_backward`,
`_segment_reduce`.

Every function composes facade ops (so dtypes, devices and autograd follow the facade's rules) and is marked
emulated: MindSpore's CPU target has no kernel of the same meaning, or the facade's composition is the one
whose numbers match torch's. Shapes, statistics layouts and argument orders are those of torch's native
functions (aten/src/ATen/native/native_functions.yaml; learned from torch's documentation and its Python
decompositions in torch/_decomp, written anew).

`torch.__getattr__` (shim/torch/__init__.py) serves these names from here; `torch.ops.aten` (shim/torch/library.py)
serves `_ATEN_OPS`.
"""
from __future__ import annotations

import builtins
import sys

import numpy as np

from .._ops._support import emulated

__all__ = ["native_layer_norm", "native_group_norm", "native_batch_norm", "_native_batch_norm_legit",
           "_native_batch_norm_legit_no_training", "_batch_norm_with_update", "constant_pad_nd", "slice",
           "_chunk_cat", "_softmax_backward_data", "_safe_softmax", "native_dropout_backward",
           "max_pool2d_with_indices_backward", "_segment_reduce"]


def _torch():
    """The facade's `torch` package (this module loads while it is importable: torch.__getattr__ imports it)."""
    return sys.modules[__name__.rsplit(".", 2)[0]]


def _F():
    return _torch().nn.functional


# ---- normalisation with statistics --------------------------------------------------------------------------


@emulated("composed from facade reductions")
def native_layer_norm(input, normalized_shape, weight, bias, eps):
    """torch.native_layer_norm: (out, mean, rstd). input [*, *normalized_shape]; mean and rstd
    [*, 1, …, 1] (one 1 per normalised dim), rstd = 1 / sqrt(biased var + eps), all in the input's dtype
    (bfloat16 computed in float32 and rounded once). As torch's, mean and rstd do not require grad."""
    t = _torch()
    shape = tuple(int(s) for s in normalized_shape)
    nd = len(shape)
    if tuple(input.shape[input.dim() - nd:]) != shape:
        raise RuntimeError(f"native_layer_norm: normalized_shape {list(shape)} does not match the last dims of "
                           f"input of size {list(input.shape)}")
    x = input.float() if input.dtype == t.bfloat16 else input  # bfloat16: float32 math, rounded once
    dims = list(range(x.dim() - nd, x.dim()))
    mean = x.mean(dims, keepdim=True) if dims else x
    var = ((x - mean) ** 2).mean(dims, keepdim=True) if dims else x * 0
    rstd = t.rsqrt(var + eps)
    y = (x - mean) * rstd
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y.to(input.dtype), mean.to(input.dtype).detach(), rstd.to(input.dtype).detach()


@emulated("composed from facade reductions")
def native_group_norm(input, weight, bias, N, C, HxW, group, eps):
    """torch.native_group_norm: (out, mean [N, group], rstd [N, group]) for input [N, C, *] (HxW the product of
    the spatial sizes), biased variance; weight/bias [C] or None. Gradients flow through all three outputs, as
    torch's do when the output's gradient is given with theirs (torch drops a mean/rstd gradient that comes
    without one for the output; the facade does not)."""
    N, C, HxW, group = int(N), int(C), int(HxW), int(group)
    if C % group:
        raise RuntimeError(f"native_group_norm: expected C ({C}) divisible by group ({group})")
    t = _torch()
    if input.dtype == t.bfloat16:  # float32 math, rounded once (torch's CPU kernel accumulates in float32)
        f = (lambda v: v.float() if v is not None else None)
        return tuple(r.to(input.dtype) for r in native_group_norm(input.float(), f(weight), f(bias), N, C, HxW,
                                                                  group, eps))
    x = input.reshape(N, group, (C // group) * HxW)
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    rstd = t.rsqrt(var + eps)
    y = ((x - mean) * rstd).reshape(input.shape)
    shape = (1, C) + (1,) * (input.dim() - 2)
    if weight is not None:
        y = y * weight.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    return y, mean.reshape(N, group), rstd.reshape(N, group)


def _bn(input, weight, bias, running_mean, running_var, training, momentum, eps):
    """(out, save_mean, save_invstd): batch statistics over every dim but 1 in training (running statistics,
    when given, move by ``momentum`` towards the batch mean and the unbiased variance, in place), else the
    running statistics with empty [0] save tensors, as torch's CPU kernel."""
    t = _torch()
    if input.dim() < 2:
        raise RuntimeError(f"batch_norm: expected 2D or higher input, got {input.dim()}D")
    c = input.shape[1]
    shape = (1, c) + (1,) * (input.dim() - 2)
    if training:
        dims = [0] + list(range(2, input.dim()))
        n = input.numel() // builtins.max(c, 1)
        mean = input.mean(dims, keepdim=True)
        var = ((input - mean) ** 2).mean(dims, keepdim=True)
        invstd = t.rsqrt(var + eps)
        with t.no_grad():
            if running_mean is not None:
                running_mean.copy_(running_mean * (1 - momentum) + mean.reshape(-1).detach() * momentum)
            if running_var is not None:
                unbiased = var.reshape(-1).detach() * (n / builtins.max(n - 1, 1))
                running_var.copy_(running_var * (1 - momentum) + unbiased * momentum)
        save_mean, save_invstd = mean.reshape(-1).detach(), invstd.reshape(-1).detach()
    else:
        if running_mean is None or running_var is None:
            raise RuntimeError("batch_norm: running_mean and running_var must be defined in evaluation mode")
        mean = running_mean.reshape(shape)
        invstd = t.rsqrt(running_var.reshape(shape) + eps)
        save_mean = input.new_zeros((0,))
        save_invstd = input.new_zeros((0,))
    y = (input - mean) * invstd
    if weight is not None:
        y = y * weight.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    return y, save_mean, save_invstd


@emulated("composed from facade reductions")
def native_batch_norm(input, weight, bias, running_mean, running_var, training, momentum, eps):
    """torch.native_batch_norm: (out, save_mean [C], save_invstd [C]) in training, save tensors of size 0
    otherwise; running statistics updated in place in training (see `_bn`)."""
    return _bn(input, weight, bias, running_mean, running_var, training, momentum, eps)


@emulated("composed from facade reductions")
def _native_batch_norm_legit(input, weight, bias, *args):
    """torch._native_batch_norm_legit(input, weight, bias, running_mean, running_var, training, momentum, eps)
    or (input, weight, bias, training, momentum, eps) without running statistics (training only)."""
    if len(args) == 5:
        running_mean, running_var, training, momentum, eps = args
    elif len(args) == 3:
        running_mean = running_var = None
        training, momentum, eps = args
    else:
        raise TypeError("_native_batch_norm_legit() takes (input, weight, bias, running_mean, running_var, training, "
                        "momentum, eps) or (input, weight, bias, training, momentum, eps)")
    return _bn(input, weight, bias, running_mean, running_var, training, momentum, eps)


@emulated("composed from facade reductions")
def _native_batch_norm_legit_no_training(input, weight, bias, running_mean, running_var, momentum, eps):
    """torch._native_batch_norm_legit_no_training: evaluation-mode batch norm (empty save tensors)."""
    return _bn(input, weight, bias, running_mean, running_var, False, momentum, eps)


@emulated("composed from facade reductions")
def _batch_norm_with_update(input, weight, bias, running_mean, running_var, momentum, eps):
    """torch._batch_norm_with_update: training-mode batch norm updating the running statistics; returns
    (out, save_mean, save_invstd, reserve) with reserve an empty uint8 tensor (torch's CPU kernel reserves
    nothing)."""
    t = _torch()
    out, m, r = _bn(input, weight, bias, running_mean, running_var, True, momentum, eps)
    return out, m, r, t.zeros(0, dtype=t.uint8)


# ---- shape ----------------------------------------------------------------------------------------------------


@emulated("torch.nn.functional.pad in constant mode")
def constant_pad_nd(input, pad, value=0):
    """torch.constant_pad_nd: pad (or, with negative amounts, crop) the last len(pad) // 2 dims with ``value``;
    ``pad`` lists (before, after) pairs from the last dim backwards, as torch.nn.functional.pad."""
    return _F().pad(input, list(pad), mode="constant", value=value)


def slice(input, dim=0, start=None, end=None, step=1):
    """aten.slice.Tensor: ``input[..., start:end:step, ...]`` along ``dim`` (a view, as torch's). step ≥ 1."""
    if step is None:
        step = 1
    if step <= 0:
        raise RuntimeError("slice step must be positive")
    d = dim % builtins.max(input.dim(), 1)
    idx = (builtins.slice(None),) * d + (builtins.slice(start, end, step),)
    return input[idx]


@emulated("constant_pad_nd, reshape and cat")
def _chunk_cat(tensors, dim, num_chunks, *, out=None):
    """torch._chunk_cat: each tensor, zero-padded at the end of ``dim`` to a multiple of ``num_chunks``, viewed
    as [*lead, num_chunks, -1] and concatenated along dim + 1. The tensors share the sizes before ``dim`` and
    their dtype."""
    if out is not None:
        raise NotImplementedError("torch._chunk_cat(out=...) is not supported by the MindSpore facade")
    tensors = list(tensors)
    if num_chunks < 1:
        raise RuntimeError("_chunk_cat expects positive num_chunks")
    if not tensors:
        raise RuntimeError("_chunk_cat expects a non-empty input tensor list")
    if builtins.all(x.dim() == tensors[0].dim() for x in tensors):
        dim = dim % tensors[0].dim()
    elif dim < 0:
        raise RuntimeError("_chunk_cat expects non-negative dim when input tensors have different ndims")
    parts = []
    for x in tensors:
        if x.numel() == 0:
            raise RuntimeError("_chunk_cat expects non-empty tensor")
        if x.dtype != tensors[0].dtype:
            raise RuntimeError("_chunk_cat expects all input tensors with the same dtype")
        if tuple(x.shape[:dim]) != tuple(tensors[0].shape[:dim]):
            raise RuntimeError("_chunk_cat expects same sizes of 0,...,dim-1 dimensions for all tensors")
        n = x.shape[dim]
        full = -(-n // num_chunks) * num_chunks
        if full != n:
            x = constant_pad_nd(x, [0, 0] * (x.dim() - dim - 1) + [0, full - n], 0)
        parts.append(x.reshape(list(x.shape[:dim]) + [num_chunks, -1]))
    return _torch().cat(parts, dim + 1)


# ---- softmax --------------------------------------------------------------------------------------------------


@emulated("composed from facade ops")
def _softmax_backward_data(grad_output, output, dim, input_dtype):
    """torch._softmax_backward_data: the gradient of softmax at its ``output``,
    output * (grad_output - sum(grad_output * output, dim)), in ``input_dtype``."""
    t = _torch()
    g = output * (grad_output - (grad_output * output).sum(dim, keepdim=True))
    return g.to(input_dtype) if isinstance(input_dtype, t.dtype) else g


@emulated("softmax with rows that are entirely -inf set to 0")
def _safe_softmax(input, dim, dtype=None):
    """aten._safe_softmax: softmax over ``dim``, except that a slice whose values are all -inf gives zeros
    (softmax would give NaN)."""
    t = _torch()
    x = input.to(dtype) if dtype is not None else input
    dead = (x == float("-inf")).all(dim, keepdim=True)
    # dead slices run through softmax as zeros so that their (discarded) NaN cannot reach the gradient
    return _F().softmax(x.masked_fill(dead, 0.0), dim).masked_fill(dead, 0.0)


# ---- backward building blocks -----------------------------------------------------------------------------


@emulated("grad_output * mask * scale")
def native_dropout_backward(grad_output, mask, scale):
    """torch.native_dropout_backward: grad_output * mask * scale (mask bool, same shape)."""
    return grad_output * mask.to(grad_output.dtype) * scale


@emulated("a scatter-add of grad_output into zeros shaped like input at the pooled positions")
def max_pool2d_with_indices_backward(grad_output, input, kernel_size, stride, padding, dilation, ceil_mode,
                                     indices):
    """aten.max_pool2d_with_indices_backward: the input gradient of 2-d max pooling: each grad_output value
    added at the flat spatial position ``indices`` names (input [N, C, H, W] or [C, H, W], indices and
    grad_output [N, C, Ho, Wo] or [C, Ho, Wo])."""
    lead = list(input.shape[:-2])
    hw = input.shape[-2] * input.shape[-1]
    g = grad_output.reshape(lead + [-1])
    idx = indices.reshape(lead + [-1])
    z = input.new_zeros(lead + [hw])
    return z.scatter_add(-1, idx, g).reshape(input.shape)


# ---- segment reductions --------------------------------------------------------------------------------------


_SEGMENT_REDUCTIONS = ("sum", "mean", "max", "min", "prod")


@emulated("one facade reduction per segment (segments read from the host)")
def _segment_reduce(data, reduce, *, lengths=None, indices=None, offsets=None, axis=0, unsafe=False,
                    initial=None):
    """torch._segment_reduce: reduce ``data`` along ``axis`` over consecutive segments given by ``lengths``
    (segment sizes) or ``offsets`` (segment boundaries, one more than segments), both int tensors whose leading
    dims index independent rows; ``reduce`` one of sum/mean/max/min/prod. An empty segment gives ``initial``
    (without one: NaN for mean, -inf for max, inf for min, 0 for sum, 1 for prod) as torch's CPU kernel."""
    t = _torch()
    if reduce not in _SEGMENT_REDUCTIONS:
        raise RuntimeError(f"_segment_reduce: reduce must be one of {_SEGMENT_REDUCTIONS}, got {reduce!r}")
    if indices is not None:
        raise NotImplementedError("torch._segment_reduce(indices=...) is not supported by the MindSpore facade "
                                  "(torch's CPU kernel does not implement it either)")
    if (lengths is None) == (offsets is None):
        raise RuntimeError("_segment_reduce: exactly one of lengths or offsets must be given")
    axis = axis % data.dim()
    if lengths is not None:
        lens = np.asarray(lengths.cpu().numpy(), dtype=np.int64)
        lead = lens.shape[:-1]
        offs = np.concatenate([np.zeros(lead + (1,), np.int64), np.cumsum(lens, -1)], -1)
    else:
        offs = np.asarray(offsets.cpu().numpy(), dtype=np.int64)
        lead = offs.shape[:-1]
    if len(lead) != axis:
        raise RuntimeError("_segment_reduce: lengths/offsets must have axis + 1 dims")
    rows = []
    for pos in np.ndindex(*lead) if lead else [()]:
        x = data[pos] if pos else data
        segs = []
        o = offs[pos] if pos else offs
        for a, b in zip(o[:-1], o[1:]):
            a, b = int(a), int(b)
            seg = x.narrow(0, a, b - a)
            if b - a == 0:
                fill = initial if initial is not None else {"sum": 0.0, "prod": 1.0, "max": float("-inf"),
                                                           "min": float("inf")}.get(reduce, float("nan"))
                segs.append(x.new_full(tuple(x.shape[1:]), fill))
                continue
            if reduce == "sum":
                r = seg.sum(0)
            elif reduce == "mean":
                r = seg.sum(0)
                if initial is not None:
                    r = r + initial
                r = r / (b - a)
            elif reduce == "max":
                r = seg.amax(0)
                if initial is not None:
                    r = t.clamp_min(r, initial)
            elif reduce == "min":
                r = seg.amin(0)
                if initial is not None:
                    r = t.clamp_max(r, initial)
            else:
                r = seg.prod(0)
            if reduce in ("sum", "prod") and initial is not None:
                r = r + initial if reduce == "sum" else r * initial
            segs.append(r)
        rows.append(t.stack(segs, 0))
    if not lead:
        return rows[0]
    return t.stack(rows, 0).reshape(list(lead) + list(rows[0].shape))


class _AtenOp:
    """``torch.ops.aten.<name>`` and its overloads (``.default``, ``.Tensor``): the same facade callable."""

    def __init__(self, name, fn, overloads=("default",)):
        self._name, self._fn, self._overloads = name, fn, overloads

    def __call__(self, *args, **kwargs):
        return self._fn(*args, **kwargs)

    def __getattr__(self, name):
        if name in self._overloads:
            return self
        raise AttributeError(f"torch.ops.aten.{self._name} has no overload {name!r} in the MindSpore facade")

    def __repr__(self):
        return f"aten.{self._name}"


# torch.ops.aten.<name> served by the facade (shim/torch/library.py looks names up here)
_ATEN_OPS = {
    "_safe_softmax": _AtenOp("_safe_softmax", _safe_softmax),
    "max_pool2d_with_indices_backward": _AtenOp("max_pool2d_with_indices_backward",
                                                max_pool2d_with_indices_backward),
    "slice": _AtenOp("slice", slice, ("default", "Tensor")),
    "native_dropout_backward": _AtenOp("native_dropout_backward", native_dropout_backward),
    "_softmax_backward_data": _AtenOp("_softmax_backward_data", _softmax_backward_data),
    "constant_pad_nd": _AtenOp("constant_pad_nd", constant_pad_nd),
}


@emulated("separable antialiased weight-matrix products (see torch.nn.functional.interpolate)")
def _upsample_bilinear2d_aa(input, output_size, align_corners, scale_factors=None, scales_h=None, scales_w=None):
    """aten._upsample_bilinear2d_aa: interpolate(mode='bilinear', antialias=True) to ``output_size`` or by
    ``scale_factors`` (two floats; the `.vec` overload). With both ``output_size`` and ``scales_h``/``scales_w``
    (the default overload) the scales are what the kernel interpolates with."""
    F = _F()
    if input.dim() != 4:
        raise RuntimeError(f"_upsample_bilinear2d_aa: expected 4D input, got {input.dim()}D")
    if output_size is not None and (scales_h is not None or scales_w is not None):
        return F._interpolate_core(input, [int(v) for v in output_size], [scales_h, scales_w], "bilinear",
                                   bool(align_corners), True)
    if output_size is not None:
        return F.interpolate(input, size=list(output_size), mode="bilinear", align_corners=align_corners,
                             antialias=True)
    return F.interpolate(input, scale_factor=list(scale_factors), mode="bilinear", align_corners=align_corners,
                         antialias=True)


__all__.append("_upsample_bilinear2d_aa")
_ATEN_OPS["_upsample_bilinear2d_aa"] = _AtenOp("_upsample_bilinear2d_aa", _upsample_bilinear2d_aa,
                                               ("default", "vec"))


@emulated("torch's grid-sampler formulas composed from facade ops (see torch.nn.functional.grid_sample)")
def grid_sampler_2d(input, grid, interpolation_mode, padding_mode, align_corners):
    """torch.grid_sampler_2d: grid_sample with integer modes (interpolation 0 bilinear, 1 nearest, 2 bicubic;
    padding 0 zeros, 1 border, 2 reflection)."""
    if input.dim() != 4:
        raise RuntimeError(f"grid_sampler_2d(): expected 4D input, got {input.dim()}D")
    return _F()._grid_sampler(input, grid, int(interpolation_mode), int(padding_mode), bool(align_corners))


@emulated("torch's grid-sampler formulas composed from facade ops (see torch.nn.functional.grid_sample)")
def grid_sampler_3d(input, grid, interpolation_mode, padding_mode, align_corners):
    """torch.grid_sampler_3d: 5-D grid_sample with integer modes (0 bilinear, 1 nearest)."""
    if input.dim() != 5:
        raise RuntimeError(f"grid_sampler_3d(): expected 5D input, got {input.dim()}D")
    return _F()._grid_sampler(input, grid, int(interpolation_mode), int(padding_mode), bool(align_corners))


@emulated("torch's grid-sampler formulas composed from facade ops (see torch.nn.functional.grid_sample)")
def grid_sampler(input, grid, interpolation_mode, padding_mode, align_corners):
    """torch.grid_sampler: grid_sampler_2d or grid_sampler_3d by the input's rank."""
    return _F()._grid_sampler(input, grid, int(interpolation_mode), int(padding_mode), bool(align_corners))


__all__ += ["grid_sampler_2d", "grid_sampler_3d", "grid_sampler"]
