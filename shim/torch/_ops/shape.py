"""Shape and data-movement ops that copy: cat/stack (with promotion), tril/triu, repeat, repeat_interleave,
flip, roll, tile, broadcast_tensors, meshgrid, movedim, diag, clone; plus `torch.<view op>` function forms of
the Tensor view methods (reshape, transpose, squeeze, split, chunk, narrow …) defined in _tensor."""
from __future__ import annotations

import builtins

import numpy as np
import mindspore as ms
from mindspore import mint, ops

from .. import _dtype as D
from .._tensor import _clone, Tensor, _new, unwrap, _norm_dim, _cast_storage, _shape_arg

__all__ = ["cat", "stack", "tril", "triu", "clone", "flip", "roll", "repeat_interleave", "broadcast_tensors",
           "broadcast_shapes", "meshgrid", "movedim", "diag", "hstack", "vstack", "tile", "diagonal"]


def _common(tensors, name):
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError(f"torch.{name}(): expected a non-empty list of Tensors")
    for t in tensors:
        if not isinstance(t, Tensor):
            raise TypeError(f"{name}(): expected a sequence of Tensors, got {type(t).__name__}")
    dt = tensors[0]._dt
    for t in tensors[1:]:
        if t._dt is not dt:
            dt = D.promote_types(dt, t._dt)
    ms_list = [unwrap(t) if t._dt is dt else _cast_storage(unwrap(t), t._dt, dt) for t in tensors]
    return ms_list, dt, tensors[0]


def cat(tensors, dim=0, *, out=None):
    """torch.cat: concatenate along `dim` with torch's dtype promotion; 1-D empty tensors are skipped (legacy)."""
    if out is not None:
        raise NotImplementedError("torch.cat(out=...) is not supported by the shim")
    ms_list, dt, like = _common(tensors, "cat")
    nonempty = [m for m in ms_list if not (len(m.shape) == 1 and m.shape[0] == 0)]
    if not nonempty:
        return _new(ms_list[0], dt, like._dev) if len(ms_list) == 1 else _new(mint.cat(ms_list, 0), dt, like._dev)
    d = _norm_dim(dim, len(nonempty[0].shape))
    if len(nonempty) == 1:
        return _new(_clone(nonempty[0]), dt, like._dev)
    return _new(mint.cat(nonempty, d), dt, like._dev)


concat = cat
concatenate = cat


# workaround "StackExt" (shim/torch/_workarounds.py)
def stack(tensors, dim=0, *, out=None):
    """torch.stack: new dimension `dim` (MindSpore's mint.stack lacks a CPU kernel for some dtypes:
    built from unsqueeze + cat)."""
    if out is not None:
        raise NotImplementedError("torch.stack(out=...) is not supported by the shim")
    ms_list, dt, like = _common(tensors, "stack")
    shape0 = tuple(ms_list[0].shape)
    for m in ms_list:
        if tuple(m.shape) != shape0:
            raise RuntimeError(f"stack expects each tensor to be equal size, but got {list(shape0)} at entry 0 and "
                               f"{list(m.shape)} at another entry")
    d = _norm_dim(dim, len(shape0) + 1)
    new_shape = shape0[:d] + (1,) + shape0[d:]
    return _new(mint.cat([m.reshape(new_shape) for m in ms_list], d), dt, like._dev)


def hstack(tensors):
    """torch.hstack: concatenate along dim 1 (dim 0 for 1-D inputs); 0-d inputs become [1]."""
    ts = [t if t.dim() else t.reshape(1) for t in tensors]
    return cat(ts, 0 if ts[0].dim() == 1 else 1)


def vstack(tensors):
    """torch.vstack: concatenate along dim 0, 1-D inputs viewed as [1, n]."""
    ts = [t.reshape(1, -1) if t.dim() < 2 else t for t in tensors]
    return cat(ts, 0)


def tril(input, diagonal=0):
    """torch.tril: lower triangle of the last two dims (elements above `diagonal` zeroed); same dtype/shape."""
    # workaround "TrilExt" (shim/torch/_workarounds.py)
    return _new(ops.tril(unwrap(input), diagonal), input._dt, input._dev)  # mint.tril: no CPU kernel


def triu(input, diagonal=0):
    """torch.triu: upper triangle of the last two dims (elements below `diagonal` zeroed); same dtype/shape."""
    return _new(ops.triu(unwrap(input), diagonal), input._dt, input._dev)


def clone(input, *, memory_format=None):
    """A copy with its own storage; gradients flow back to `input`."""
    return _new(_clone(unwrap(input)), input._dt, input._dev)


def flip(input, dims):
    """torch.flip: a copy with the order of elements reversed along `dims`."""
    dims = tuple(_norm_dim(d, input.dim()) for d in (dims if isinstance(dims, (tuple, list)) else (dims,)))
    return _new(mint.flip(unwrap(input), dims), input._dt, input._dev)


def roll(input, shifts, dims=None):
    """torch.roll: a copy shifted circularly by `shifts` along `dims` (flattened when dims is None)."""
    m = unwrap(input)
    if dims is None:
        flat = m.reshape(-1)
        s = int(shifts if not isinstance(shifts, (tuple, list)) else shifts[0]) % builtins.max(flat.shape[0], 1)
        r = mint.cat([flat[flat.shape[0] - s:], flat[:flat.shape[0] - s]]) if s else flat
        return _new(r.reshape(m.shape), input._dt, input._dev)
    shifts = shifts if isinstance(shifts, (tuple, list)) else (shifts,)
    dims = dims if isinstance(dims, (tuple, list)) else (dims,)
    for s, d in zip(shifts, dims):
        d = _norm_dim(d, len(m.shape))
        n = m.shape[d]
        s = int(s) % n if n else 0
        if s:
            m = mint.cat([mint.narrow(m, d, n - s, s), mint.narrow(m, d, 0, n - s)], d)
    return _new(m if m is not unwrap(input) else _clone(m), input._dt, input._dev)


def repeat(self, *sizes):
    """torch.Tensor.repeat: tile the tensor `sizes` times along each dimension (leading new dims allowed)."""
    sizes = _shape_arg(sizes)
    m = unwrap(self)
    if len(sizes) < len(m.shape):
        raise RuntimeError("Number of dimensions of repeat dims can not be smaller than number of dimensions of "
                           "tensor")
    m = m.reshape((1,) * (len(sizes) - len(m.shape)) + tuple(m.shape))
    return _new(ops.tile(m, tuple(sizes)), self._dt, self._dev)


def tile(input, dims):
    """torch.tile: Tensor.repeat with `dims` left-padded with ones to the tensor's rank."""
    dims = tuple(dims)
    if len(dims) < input.dim():
        dims = (1,) * (input.dim() - len(dims)) + dims
    return repeat(input, dims)


def repeat_interleave(input, repeats=None, dim=None, *, output_size=None):
    """torch.repeat_interleave with an int or a 1-D tensor of repeats."""
    if repeats is None:  # torch.repeat_interleave(repeats_tensor)
        reps = input._host().astype(np.int64)
        from .creation import _from_host
        return _from_host(np.repeat(np.arange(len(reps)), reps), D.int64, input._dev)
    m = unwrap(input)
    if dim is None:
        m = m.reshape(-1)
        d = 0
    else:
        d = _norm_dim(dim, len(m.shape))
    if isinstance(repeats, Tensor):
        if repeats.numel() == 1:
            repeats = int(repeats.item())
        else:
            idx = np.repeat(np.arange(m.shape[d]), repeats._host().astype(np.int64))
            return _new(ops.gather(m, ms.Tensor(idx), d), input._dt, input._dev)
    idx = np.repeat(np.arange(m.shape[d]), int(repeats))
    return _new(ops.gather(m, ms.Tensor(idx), d), input._dt, input._dev)


def broadcast_shapes(*shapes):
    """torch.broadcast_shapes: the broadcast result shape of the given shapes (ValueError if incompatible)."""
    return tuple(np.broadcast_shapes(*[tuple(s) if not isinstance(s, int) else (s,) for s in shapes]))


def broadcast_tensors(*tensors):
    """torch.broadcast_tensors: expand views of every input to the common broadcast shape."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tensors[0]
    shape = broadcast_shapes(*[tuple(t.shape) for t in tensors])
    return tuple(t.expand(shape) for t in tensors)


def broadcast_to(input, size):
    """torch.broadcast_to: an expand view of `input` with shape `size`."""
    return input.expand(tuple(size))


def meshgrid(*tensors, indexing=None):
    """torch.meshgrid: coordinate grids (expand views) for 1-D inputs; indexing 'ij' (default) or 'xy'."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tensors[0]
    indexing = indexing or "ij"
    sizes = [t.numel() for t in tensors]
    n = len(tensors)
    if indexing == "xy" and n >= 2:
        sizes[0], sizes[1] = sizes[1], sizes[0]
    out = []
    for i, t in enumerate(tensors):
        pos = i
        if indexing == "xy" and n >= 2 and i < 2:
            pos = 1 - i
        shape = [1] * n
        shape[pos] = t.numel()
        out.append(t.reshape(shape).expand(sizes))
    return tuple(out)


def movedim(input, source, destination):
    """torch.movedim: a permute view moving dims `source` to positions `destination`."""
    n = input.dim()
    src = [_norm_dim(s, n) for s in (source if isinstance(source, (tuple, list)) else (source,))]
    dst = [_norm_dim(s, n) for s in (destination if isinstance(destination, (tuple, list)) else (destination,))]
    order = [i for i in range(n) if i not in src]
    perm = [None] * n
    for s, d in zip(src, dst):
        perm[d] = s
    it = iter(order)
    perm = [p if p is not None else next(it) for p in perm]
    return input.permute(*perm)


moveaxis = movedim


def diag(input, diagonal=0):
    """torch.diag: 1-D input -> square matrix with it on diagonal `diagonal`; 2-D input -> that diagonal (copy).
    Differentiable (ops.diag and a zero pad; ops.diagonal). RuntimeError for other ranks."""
    if input.dim() == 2:
        return _new(ops.diagonal(unwrap(input), int(diagonal), 0, 1), input._dt, input._dev)
    if input.dim() != 1:
        raise RuntimeError("diag(): Supports 1D or 2D tensors. Got " f"{input.dim()}D")
    m = unwrap(input)
    if input._dt is D.bool:
        m = ops.cast(m, ms.int32)
    r = ops.diag(m)  # mint.diag: no CPU kernel (DiagExt)
    k = int(diagonal)
    if k:
        # shift the square block right (k > 0) or down (k < 0) inside an (n+|k|)-square zero matrix
        r = ops.pad(r, (k, 0, 0, k) if k > 0 else (0, -k, -k, 0))
    if input._dt is D.bool:
        r = ops.cast(r, ms.bool_)
    return _new(r, input._dt, input._dev)


def diagonal(input, offset=0, dim1=0, dim2=1):
    """A copy of the diagonal (torch returns a view; documented difference: writes do not reach the input)."""
    m = unwrap(input)
    r = ops.diagonal(m, offset, dim1, dim2)
    return _new(r, input._dt, input._dev)


# torch.<name>(tensor, ...) forms of Tensor view methods
def _method_fn(name):
    def f(input, *args, **kwargs):
        return getattr(input, name)(*args, **kwargs)
    f.__name__ = name
    f.__doc__ = f"torch.{name}(input, …) = input.{name}(…) (see shim.torch.Tensor.{name})."
    return f


_VIEW_FUNCS = ["reshape", "transpose", "swapaxes", "swapdims", "permute", "squeeze", "unsqueeze", "flatten",
               "unflatten", "narrow", "split", "chunk", "unbind", "select", "t", "tensor_split", "as_strided",
               "view_as_real", "numel", "detach", "split_with_sizes", "is_floating_point", "is_complex",
               "is_nonzero", "contiguous"]

FUNCTIONS = {n: globals()[n] for n in __all__}
FUNCTIONS.update(concat=concat, concatenate=concatenate, broadcast_to=broadcast_to, moveaxis=moveaxis)
for _n in _VIEW_FUNCS:
    if _n not in ("view_as_real", "is_nonzero", "contiguous"):
        FUNCTIONS[_n] = _method_fn(_n)
METHODS = dict(tril=tril, triu=triu, clone=clone, flip=flip, roll=roll, repeat=repeat, tile=tile,
               repeat_interleave=repeat_interleave, movedim=movedim, moveaxis=moveaxis, diag=diag,
               diagonal=diagonal, broadcast_to=broadcast_to,
               tril_=lambda self, diagonal=0: self.copy_(tril(self, diagonal)),
               triu_=lambda self, diagonal=0: self.copy_(triu(self, diagonal)))
