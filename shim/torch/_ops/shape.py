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
    if input.numel() == 0:  # workaround "Tril empty"
        return clone(input)
    return _new(ops.tril(unwrap(input), diagonal), input._dt, input._dev)  # mint.tril: no CPU kernel


def triu(input, diagonal=0):
    """torch.triu: upper triangle of the last two dims (elements below `diagonal` zeroed); same dtype/shape."""
    if input.numel() == 0:  # workaround "Tril empty"
        return clone(input)
    return _new(ops.triu(unwrap(input), diagonal), input._dt, input._dev)


def clone(input, *, memory_format=None):
    """A copy with its own storage; gradients flow back to `input`."""
    return _new(_clone(unwrap(input)), input._dt, input._dev)


def flip(input, dims):
    """torch.flip: a copy with the order of elements reversed along `dims`."""
    dims = tuple(_norm_dim(d, input.dim()) for d in (dims if isinstance(dims, (tuple, list)) else (dims,)))
    if input.numel() == 0:  # workaround "ReverseV2 empty": MindSpore's CPU flip kernel can die of SIGFPE on it
        return clone(input)
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


# ---- composites of the facade's shape ops ------------------------------------------------------------------
def ravel(input):
    """torch.ravel: a contiguous flattened tensor."""
    return input.reshape(-1)


def _atleast(nd, tensors):
    single = len(tensors) == 1 and not isinstance(tensors[0], (tuple, list))
    ts = tensors[0] if len(tensors) == 1 and isinstance(tensors[0], (tuple, list)) else tensors
    out = []
    for t in ts:
        if t.dim() < nd:
            shape = tuple(t.shape)
            if len(shape) == 0:
                shape = (1,) * nd
            elif len(shape) == 1:
                shape = (1,) + shape + (1,) * (nd - 2)
            else:  # 2-d into 3-d
                shape = shape + (1,)
            t = t.reshape(shape)
        out.append(t)
    return out[0] if single else tuple(out)


def atleast_1d(*tensors):
    """torch.atleast_1d: 0-d tensors become shape (1,); others unchanged (a tuple for several)."""
    return _atleast(1, tensors)


def atleast_2d(*tensors):
    """torch.atleast_2d: 0-d -> (1, 1), 1-d (n,) -> (1, n)."""
    return _atleast(2, tensors)


def atleast_3d(*tensors):
    """torch.atleast_3d: 0-d -> (1, 1, 1), (n,) -> (1, n, 1), (m, n) -> (m, n, 1)."""
    return _atleast(3, tensors)


def column_stack(tensors):
    """torch.column_stack: 0-d/1-d tensors as columns, then hstack."""
    return hstack([t.reshape(t.numel(), 1) if t.dim() <= 1 else t for t in tensors])


def dstack(tensors):
    """torch.dstack: atleast_3d then cat along dim 2."""
    return cat(list(atleast_3d(*tensors)) if len(tensors) > 1 else [atleast_3d(tensors[0])], 2)


def fliplr(input):
    """torch.fliplr: flip along dim 1 (needs >= 2 dims)."""
    if input.dim() < 2:
        raise RuntimeError("Input must be >= 2-d.")
    return flip(input, [1])


def flipud(input):
    """torch.flipud: flip along dim 0 (needs >= 1 dim)."""
    if input.dim() < 1:
        raise RuntimeError("Input must be >= 1-d.")
    return flip(input, [0])


def rot90(input, k=1, dims=(0, 1)):
    """torch.rot90: rotate by 90 degrees k times in the plane `dims` (from the first towards the second)."""
    if len(dims) != 2:
        raise RuntimeError(f"expected total rotation dims == 2, but got dims = {len(dims)}")
    d0, d1 = (_norm_dim(d, input.dim()) for d in dims)
    if d0 == d1:
        raise RuntimeError(f"expected rotation dims to be different, but got dim0 = {d0} and dim1 = {d1}")
    k = int(k) % 4
    if k == 1:
        return flip(input, [d1]).transpose(d0, d1).clone()
    if k == 2:
        return flip(input, [d0, d1])
    if k == 3:
        return flip(input, [d0]).transpose(d0, d1).clone()
    return input.clone()


def _dsplit_like(input, sections, dim, name, min_dim):
    if input.dim() < min_dim:
        raise RuntimeError(f"torch.{name} requires a tensor with at least {min_dim} dimension, but got a tensor with "
                           f"{input.dim()} dimensions!")
    if isinstance(sections, int) and input.shape[dim] % sections:
        raise RuntimeError(f"torch.{name} attempted to split along dimension {dim}, but the size of the dimension "
                           f"{input.shape[dim]} is not divisible by the split_size {sections}!")
    return input.tensor_split(sections, dim)


def hsplit(input, indices_or_sections):
    """torch.hsplit: tensor_split along dim 1 (dim 0 for 1-d)."""
    return _dsplit_like(input, indices_or_sections, 1 if input.dim() > 1 else 0, "hsplit", 1)


def vsplit(input, indices_or_sections):
    """torch.vsplit: tensor_split along dim 0 (>= 2-d)."""
    return _dsplit_like(input, indices_or_sections, 0, "vsplit", 2)


def dsplit(input, indices_or_sections):
    """torch.dsplit: tensor_split along dim 2 (>= 3-d)."""
    return _dsplit_like(input, indices_or_sections, 2, "dsplit", 3)


def unsafe_chunk(input, chunks, dim=0):
    """torch.unsafe_chunk: chunk (the facade's chunks are always safe)."""
    return input.chunk(chunks, dim)


def unsafe_split(input, split_size_or_sections, dim=0):
    """torch.unsafe_split: split (the facade's splits are always safe)."""
    return input.split(split_size_or_sections, dim)


def trace(input):
    """torch.trace: sum of the main diagonal of a 2-D tensor (integers accumulate in int64)."""
    if input.dim() != 2:
        raise RuntimeError("trace: expected a matrix")
    return diagonal(input).sum()


def msort(input):
    """torch.msort: sort along dim 0 (values)."""
    return input.sort(0).values


def diff(input, n=1, dim=-1, prepend=None, append=None):
    """torch.diff: n-th forward difference along `dim` (prepend/append concatenated first; bool uses xor)."""
    d = _norm_dim(dim, input.dim())
    x = input
    if prepend is not None or append is not None:
        parts = ([prepend.expand(*[s if i != d else prepend.shape[d] for i, s in enumerate(input.shape)])
                  if prepend.dim() else prepend.reshape(1)] if prepend is not None else []) + [x] + \
            ([append.expand(*[s if i != d else append.shape[d] for i, s in enumerate(input.shape)])
              if append.dim() else append.reshape(1)] if append is not None else [])
        x = cat(parts, d)
    for _ in range(int(n)):
        size = x.shape[d]
        if size == 0:
            break
        a, b = x.narrow(d, 1, size - 1), x.narrow(d, 0, size - 1)
        x = a.logical_xor(b) if x.dtype is D.bool else a - b
    return x


def diag_embed(input, offset=0, dim1=-2, dim2=-1):
    """torch.diag_embed: the last dimension of `input` placed on the `offset` diagonal of new dims (dim1, dim2)."""
    n = input.shape[-1] if input.dim() else 1
    k = int(offset)
    size = n + builtins.abs(k)
    from .creation import eye
    # one-hot placement matrix P [n, size, size]: P[i, i + max(0, -k), i + max(0, k)] = 1
    rows = np.arange(n) + builtins.max(0, -k)
    cols = np.arange(n) + builtins.max(0, k)
    place = np.zeros((n, size, size), dtype=np.float32)
    place[np.arange(n), rows, cols] = 1
    from .creation import _from_host
    P = _from_host(place, input._dt if input._dt.is_floating_point else D.float32, input._dev)
    x = input if input._dt.is_floating_point else input.to(D.float32)
    out = (x.unsqueeze(-1).unsqueeze(-1) * P).sum(-3)  # [..., size, size]
    if out.dtype is not input.dtype:
        out = out.to(input.dtype)
    nd = out.dim()
    d1, d2 = _norm_dim(dim1, nd), _norm_dim(dim2, nd)
    if (d1, d2) != (nd - 2, nd - 1):
        # move the two new trailing dims to (d1, d2)
        rest = [i for i in range(nd - 2)]
        perm = [None] * nd
        perm[d1], perm[d2] = nd - 2, nd - 1
        it = iter(rest)
        perm = [p if p is not None else next(it) for p in perm]
        out = out.permute(*perm).clone()
    return out


def diagflat(input, offset=0):
    """torch.diagflat: the flattened input on the `offset` diagonal of a square matrix."""
    return diag(input.reshape(-1), offset)


def select_scatter(input, src, dim, index):
    """torch.select_scatter: a copy of input with input.select(dim, index) replaced by src."""
    d = _norm_dim(dim, input.dim())
    n = input.shape[d]
    i = int(index) + (n if index < 0 else 0)
    parts = [input.narrow(d, 0, i), src.unsqueeze(d).to(input.dtype), input.narrow(d, i + 1, n - i - 1)]
    return cat(parts, d)


def slice_scatter(input, src, dim=0, start=None, end=None, step=1):
    """torch.slice_scatter: a copy of input with input[..., start:end:step, ...] (along dim) replaced by src."""
    d = _norm_dim(dim, input.dim())
    n = input.shape[d]
    idx = list(range(n))[slice(start, end, step)]
    from .indexing import index_copy
    from .creation import tensor
    if not idx:
        return input.clone()
    return index_copy(input, d, tensor(idx, dtype=D.int64), src.to(input.dtype))


def _copy_variant(view_name, torch_name):
    def f(input, *args, **kwargs):
        r = getattr(input, view_name)(*args, **kwargs)
        if isinstance(r, (tuple, list)):
            return type(r)(t.clone() for t in r)
        return r.clone()
    f.__name__ = torch_name
    f.__doc__ = f"torch.{torch_name}: a copy of input.{view_name}(...) with its own storage."
    return f


_COPY_VARIANTS = {"expand_copy": "expand", "permute_copy": "permute", "t_copy": "t", "transpose_copy": "transpose",
                  "unsqueeze_copy": "unsqueeze", "squeeze_copy": "squeeze", "view_copy": "view",
                  "diagonal_copy": "diagonal", "alias_copy": "view_as", "narrow_copy": "narrow",
                  "unbind_copy": "unbind", "split_with_sizes_copy": "split_with_sizes"}


def _alias_copy(input):
    """torch.alias_copy: a copy of input."""
    return input.clone()


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
_COMPOSITES = dict(ravel=ravel, atleast_1d=atleast_1d, atleast_2d=atleast_2d, atleast_3d=atleast_3d,
                   column_stack=column_stack, dstack=dstack, fliplr=fliplr, flipud=flipud, rot90=rot90,
                   hsplit=hsplit, vsplit=vsplit, dsplit=dsplit, unsafe_chunk=unsafe_chunk, unsafe_split=unsafe_split,
                   trace=trace, msort=msort, diff=diff, diag_embed=diag_embed, diagflat=diagflat,
                   select_scatter=select_scatter, slice_scatter=slice_scatter)
for _n, _v in _COPY_VARIANTS.items():
    _COMPOSITES[_n] = _copy_variant(_v, _n)
_COMPOSITES["alias_copy"] = _alias_copy
FUNCTIONS.update(_COMPOSITES)
for _n in _VIEW_FUNCS:
    if _n not in ("view_as_real", "is_nonzero", "contiguous"):
        FUNCTIONS[_n] = _method_fn(_n)
METHODS = dict(tril=tril, triu=triu, clone=clone, flip=flip, roll=roll, repeat=repeat, tile=tile,
               repeat_interleave=repeat_interleave, movedim=movedim, moveaxis=moveaxis, diag=diag,
               diagonal=diagonal, broadcast_to=broadcast_to,
               tril_=lambda self, diagonal=0: self.copy_(tril(self, diagonal)),
               triu_=lambda self, diagonal=0: self.copy_(triu(self, diagonal)))
for _n in ("ravel", "fliplr", "flipud", "rot90", "hsplit", "vsplit", "dsplit", "unsafe_chunk", "unsafe_split",
           "trace", "msort", "diff", "diag_embed", "diagflat", "select_scatter", "slice_scatter"):
    METHODS[_n] = _COMPOSITES[_n]
