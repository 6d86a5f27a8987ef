"""Indexing: __getitem__/__setitem__ (basic keys give views, tensor/bool/list keys gather), gather, scatter,
index_select, masked_select, masked_fill, index_add/index_copy/index_fill, take_along_dim, nonzero, where."""
from __future__ import annotations

import builtins

import numpy as np
import mindspore as ms
from mindspore import mint, ops

from .. import _dtype as D
from .._tensor import (_clone, _scatter, _reshape as _reshape_step, Tensor, _assign, _geom, _make_view, _new,
                       _cast_storage, _round_bf16, unwrap, _is_host_alias,
                       _norm_dim)
from .pointwise import _covers, _tile_to

__all__ = ["gather", "scatter", "scatter_add", "index_select", "masked_select", "masked_fill", "where",
           "nonzero", "take_along_dim", "index_add", "index_copy", "index_fill", "argwhere", "isin", "diff"]


def _is_basic(k):
    return k is None or k is Ellipsis or (isinstance(k, (int, slice)) and not isinstance(k, builtins.bool))


def _basic_geometry(t, key):
    """Normalise a basic key against t's geometry.

    Returns (plan, geometry): `plan` is a tuple of MindSpore steps over t's own dimensions — ("n", dim, start,
    length) narrows, ("g", dim, index_tensor, None) gathers for stepped slices — applied before one final
    reshape to the view's shape (which drops integer-indexed dims and inserts None dims). MindSpore's own
    Python getitem is avoided: on CPU it costs a pipeline sync (measured), narrow does not."""
    # workaround "pipeline waits" (shim/torch/_workarounds.py)
    shape, strides, off = _geom(t) if t._vbase is None else t._geom
    n_real = sum(1 for k in key if k is not None and k is not Ellipsis)
    if n_real > len(shape):
        raise IndexError(f"too many indices for tensor of dimension {len(shape)}")
    if Ellipsis in key:
        i = key.index(Ellipsis)
        key = key[:i] + (slice(None),) * (len(shape) - n_real) + key[i + 1:]
        if Ellipsis in key:
            raise IndexError("an index can only have a single ellipsis ('...')")
    plan, nshape, nstrides = [], [], []
    d = 0
    for k in key:
        if k is None:
            nshape.append(1)
            nstrides.append(strides[d] * shape[d] if d < len(shape) else 1)
            continue
        size, stride = shape[d], strides[d]
        if isinstance(k, int):
            if not -size <= k < size:
                raise IndexError(f"index {k} is out of bounds for dimension {d} with size {size}")
            k = k + size if k < 0 else k
            off += k * stride
            plan.append(("n", d, k, 1))
        else:
            if k.step is not None and k.step <= 0:
                raise ValueError("step must be greater than zero")
            start, stop, step = k.indices(size)
            length = builtins.max(0, (stop - start + step - 1) // step)
            off += start * stride if length else 0
            nshape.append(length)
            nstrides.append(stride * step)
            if step == 1:
                if start != 0 or length != size:
                    plan.append(("n", d, start, length))
            else:
                idx = ms.Tensor(np.arange(start, start + length * step, step, dtype=np.int64))
                plan.append(("g", d, idx, None))
        d += 1
    for dd in range(d, len(shape)):
        nshape.append(shape[dd])
        nstrides.append(strides[dd])
    return tuple(plan), (tuple(nshape), tuple(nstrides), off)


def _apply_plan(m, plan, shape):
    for kind, d, a, b in plan:
        m = mint.narrow(m, d, a, b) if kind == "n" else ops.gather(m, a, d)
    return m if shape is None else m.reshape(shape)


def _ms_index(k):
    if isinstance(k, Tensor):
        m = unwrap(k)
        if k._dt is D.bool:
            return m
        if not k._dt._cat == D._INT:
            raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
        return m if m.dtype == ms.int64 else ops.cast(m, ms.int64)
    if isinstance(k, (list, tuple)) and not isinstance(k, Tensor):
        arr = np.asarray([int(x) if isinstance(x, Tensor) else x for x in k])
        return ms.Tensor(arr.astype(np.bool_ if arr.dtype == np.bool_ else np.int64))
    if isinstance(k, np.ndarray):
        return ms.Tensor(k if k.dtype == np.bool_ else k.astype(np.int64))
    if isinstance(k, builtins.bool):
        return ms.Tensor(np.array(k))
    return k


def _basic_view(t, key):
    plan, geom = _basic_geometry(t, key)
    if not plan and len(geom[0]) == len(_geom(t)[0] if t._vbase is None else t._geom[0]):
        return _make_view(t, _reshape_step, (geom[0],), geom)
    # the final reshape is only needed when integer indices drop dims or None inserts them
    same_rank = len(geom[0]) == len(_geom(t)[0] if t._vbase is None else t._geom[0]) and not any(
        k is None or isinstance(k, int) for k in key)
    return _make_view(t, _apply_plan, (plan, None if same_rank else geom[0]), geom)


def _check_advanced_count(t, key) -> None:
    """IndexError (torch's message) when an advanced `key` indexes more dimensions than `t` has: a bool tensor
    index takes as many as it has, None and `...` none, anything else one (MindSpore would fail inside)."""
    used = 0
    for k in key:
        if k is None or k is Ellipsis:
            continue
        used += k.dim() if isinstance(k, Tensor) and k._dt is D.bool else 1
    if used > t.dim():
        raise IndexError(f"too many indices for tensor of dimension {t.dim()}")


def getitem(t, key):
    """t[key]: ints/slices/None/Ellipsis give a view (torch semantics); tensor, bool and list indices gather
    a copy (advanced indexing, NumPy rules as in torch)."""
    if not isinstance(key, tuple):
        key = (key,)
    if builtins.all(_is_basic(k) for k in key):
        return _basic_view(t, key)
    # advanced: apply the basic part lazily through MindSpore's own indexing on the current value
    _check_advanced_count(t, key)
    m = unwrap(t)
    mk = tuple(_ms_index(k) for k in key)
    if len(mk) == 1 and isinstance(mk[0], ms.Tensor) and mk[0].dtype == ms.bool_:
        mask = mk[0]
        if tuple(mask.shape) == tuple(m.shape):
            return _new(ops.masked_select(m, mask), t._dt, t._dev)
        r = m[mask]
    else:
        r = m[mk if len(mk) > 1 else mk[0]]
    return _new(r, t._dt, t._dev)


def _value_ms(t, value, shape):
    if isinstance(value, Tensor):
        v = unwrap(value)
        if value._dt is not t._dt:
            v = _cast_storage(v, value._dt, t._dt)
    else:
        if isinstance(value, (list, tuple, np.ndarray)):
            value = np.asarray(value)
        v = ms.Tensor(np.asarray(value, dtype=t._dt.np if not t._dt.emulated else np.float32))
        if t._dt.emulated:
            v = _round_bf16(v)
    return v


def _scalar_value(value) -> bool:
    """Whether an assigned `value` is one number: a Python number, or a 0-d tensor that needs no gradient."""
    if isinstance(value, Tensor):
        return value.dim() == 0 and not value.requires_grad
    return isinstance(value, (builtins.bool, builtins.int, builtins.float))


def _leading_mask(t, key) -> bool:
    """Whether index `key` (a tuple) is a bool tensor covering t's leading dimensions followed only by full
    slices (`:`) or one `...`: `t[mask]`, `t[mask, :]`, `t[mask, ...]`."""
    m = key[0]
    if not (isinstance(m, Tensor) and m._dt is D.bool and 0 < m.dim() <= t.dim()
            and tuple(m.shape) == tuple(t.shape)[:m.dim()]):
        return False
    rest = key[1:]
    if builtins.sum(1 for k in rest if k is Ellipsis) > 1:
        return False
    full = [k for k in rest if k is not Ellipsis]
    if not builtins.all(isinstance(k, slice) and k == slice(None) for k in full):
        return False
    return Ellipsis in rest or m.dim() + len(full) <= t.dim()


def setitem(t, key, value):
    """t[key] = value in place (views write through to their base; see _tensor)."""
    if not isinstance(key, tuple):
        key = (key,)
    if builtins.all(_is_basic(k) for k in key):
        v = _basic_view(t, key)
        shape = v._geom[0]
        val = _value_ms(t, value, shape)
        if not isinstance(value, Tensor) or tuple(value.shape) != shape:
            val = mint.broadcast_to(val, shape)
        elif isinstance(value, Tensor):
            val = _clone(val)  # never let two tensors own one MindSpore tensor
        _assign(v, val)
        return
    _check_advanced_count(t, key)
    if _leading_mask(t, key) and _scalar_value(value):
        # t[mask] / t[mask, :] / t[mask, ...] = scalar with a mask of t's leading dimensions (t's whole shape:
        # megatron's cross entropy; the leading ones: its VocabParallelEmbedding, `output_parallel[input_mask, :] =
        # 0.0`) is t.masked_fill_(mask[..., None, ...], scalar): one kernel, where MindSpore's boolean setitem first
        # works out the index (~1.7 ms a call) and keeps those index tensors alive (workaround "bool setitem leak",
        # shim/torch/_workarounds.py)
        mask = key[0].reshape(tuple(key[0].shape) + (1,) * (t.dim() - key[0].dim()))
        _assign(t, unwrap(masked_fill(t, mask, value)))
        return
    mk = tuple(_ms_index(k) for k in key)
    mk = mk if len(mk) > 1 else mk[0]
    val = _value_ms(t, value, None)
    if t._vbase is None and not t._pinned:
        t._m[mk] = val
        t._ver += 1
        return
    if _is_host_alias(t):
        # t's cache is a host alias of its base's storage (workaround "view input copy", _aliasing.py; recording
        # is off). No clone first: MindSpore's setitem gives the alias object new storage (measured on 2.10), and
        # had it written the alias's memory in place, that memory is the base's own; either way the write-back
        # below leaves the base holding the new values, as torch's write through a view.
        nm = t._m
        nm[mk] = val
        _assign(t, nm)
        return
    nm = _clone(unwrap(t))
    nm[mk] = val
    _assign(t, nm)


def _idx64(index):
    m = unwrap(index)
    return m if m.dtype == ms.int64 else ops.cast(m, ms.int64)


def gather(input, dim, index, *, sparse_grad=False):
    """torch.gather(input, dim, index): out[i][j] = input[index[i][j]][j] (dim=0) etc."""
    d = _norm_dim(dim, input.dim())
    return _new(mint.gather(unwrap(input), d, _idx64(index)), input._dt, input._dev)


def take_along_dim(input, indices, dim=None):
    """torch.take_along_dim: gather `indices` along `dim` (flattened when dim is None)."""
    if dim is None:
        return gather(input.reshape(-1), 0, indices.reshape(-1))
    if input.dim() != indices.dim():
        raise RuntimeError("torch.take_along_dim(): input and indices should have the same number of dimensions, "
                           f"but got {input.dim()} dimensions for input, and {indices.dim()} dimensions for indices")
    d = _norm_dim(dim, input.dim())
    # input and indices broadcast against each other in every dimension but `dim`
    shape = [builtins.max(a, b) for a, b in zip(input.shape, indices.shape)]
    ishape, jshape = list(shape), list(shape)
    ishape[d], jshape[d] = input.shape[d], indices.shape[d]
    return gather(input.expand(*ishape), d, indices.expand(*jshape))


def _src(input, src):
    if isinstance(src, Tensor):
        v = unwrap(src)
        return _cast_storage(v, src._dt, input._dt) if src._dt is not input._dt else v
    return src


def scatter(input, dim, index, src=None, value=None, *, reduce=None):
    """torch.scatter (out of place): src tensor or scalar `value`; reduce='add'/'multiply' not supported."""
    if reduce is not None:
        raise NotImplementedError("torch.scatter(reduce=...) is not supported by the shim; use scatter_add")
    d = _norm_dim(dim, input.dim())
    s = src if src is not None else value
    if not isinstance(s, Tensor):
        # workaround "FillScalar" (shim/torch/_workarounds.py)
        s = ops.full(tuple(index.shape), s, dtype=input._dt.sms)
    else:
        s = _src(input, s)
    return _new(_scatter(unwrap(input), d, _idx64(index), s), input._dt, input._dev)


def scatter_add(input, dim, index, src):
    """torch.scatter_add (out of place): src values added at `index` positions along `dim`."""
    d = _norm_dim(dim, input.dim())
    # mint.scatter_add has no CPU kernel (workaround "ScatterAddExt")
    return _new(ops.tensor_scatter_elements(unwrap(input), _idx64(index), _src(input, src), d, "add"),
                input._dt, input._dev)


def _as_1d(fn):
    """Run index op `fn(input, dim, index, *rest)` on a 0-d input as on its 1-element 1-d form (torch treats a
    0-d input as 1-d and returns a 0-d result); tensor arguments in `rest` are reshaped alike."""
    def f(input, dim, index, *rest, **kw):
        if input.dim() != 0:
            return fn(input, dim, index, *rest, **kw)
        _norm_dim(dim, 1)
        rest = tuple(r.reshape(-1) if isinstance(r, Tensor) and r.dim() == 0 and i == 0 and fn is not index_fill
                     else r for i, r in enumerate(rest))
        return fn(input.reshape(1), 0, index.reshape(-1), *rest, **kw).reshape(())
    f.__name__, f.__doc__ = fn.__name__, fn.__doc__
    return f


def index_select(input, dim, index):
    """torch.index_select: rows (along `dim`) picked by a 1-D int index tensor (copy)."""
    if input.dim() == 0:
        _norm_dim(dim, 1)
        return _new(ops.gather(unwrap(input).reshape(1), _idx64(index).reshape(-1), 0).reshape(()),
                    input._dt, input._dev)
    d = _norm_dim(dim, input.dim())
    if input.numel() == 0 or index.numel() == 0:
        # an empty result; MindSpore's Gather backward (UnsortedSegmentSum) rejects empty shapes, so the zeros are
        # tied to the input by a zero-weighted sum (a gradient of zeros, as torch's)
        shape = list(input.shape)
        shape[d] = index.numel()
        m = unwrap(input)
        z = mint.zeros(tuple(shape), dtype=m.dtype)
        return _new(z + mint.sum(m) * 0 if m.dtype != ms.bool_ else z, input._dt, input._dev)
    # mint.index_select has no CPU kernel (workaround "IndexSelect")
    return _new(ops.gather(unwrap(input), _idx64(index).reshape(-1), d), input._dt, input._dev)


def masked_select(input, mask):
    """torch.masked_select: 1-D tensor of the elements where the bool mask is True."""
    m, k = unwrap(input), unwrap(mask)
    return _new(ops.masked_select(m, k), input._dt, input._dev)


def masked_fill(input, mask, value):
    """torch.masked_fill: value where mask (bool, broadcast) is True."""
    if isinstance(value, Tensor):
        if value.dim() != 0:
            raise RuntimeError("masked_fill_ only supports a 0-dimensional value tensor, but got tensor with "
                               f"{value.dim()} dimension(s).")
        if value.requires_grad:  # keep value's gradient (the sum of the upstream gradient where mask is True)
            if mask._dt is not D.bool:
                raise RuntimeError(f"masked_fill_ only supports boolean masks, but got mask with dtype {mask.dtype}")
            v = unwrap(value)
            if value._dt is not input._dt:
                v = _cast_storage(v, value._dt, input._dt)
            return _new(mint.where(unwrap(mask), v, unwrap(input)), input._dt, input._dev)
        value = value.item()
    m = unwrap(input)
    k = unwrap(mask)
    # dtypes from the facade's records: asking a just-computed MindSpore tensor for its dtype or shape waits for
    # MindSpore's pipeline (a broadcast result, mask larger than input, is torch's out-of-place behaviour too)
    if mask._dt is not D.bool:
        raise RuntimeError(f"masked_fill_ only supports boolean masks, but got mask with dtype {mask.dtype}")
    # workaround "broadcast kernels" (shim/torch/_workarounds.py): a mask broadcast to a large input is tiled to
    # the input's shape first (the mask has no gradient, so this holds while autograd records too)
    shape, kshape = tuple(input.shape), tuple(mask.shape)
    if kshape != shape and _covers(shape, kshape):
        k = _tile_to(k, kshape, shape)
    out = ops.masked_fill(m, k, ms.Tensor(value, dtype=input._dt.sms))
    if input._dt.emulated:
        out = _round_bf16(out)
    return _new(out, input._dt, input._dev)


def where(condition, input=None, other=None):
    """torch.where(cond, x, y) with torch's type promotion (scalars allowed); where(cond) = nonzero tuple."""
    if input is None and other is None:
        return nonzero(condition, as_tuple=True)
    from .pointwise import _promote
    (a, b), dt, like = _promote(input, other)
    c = unwrap(condition)
    if c.dtype != ms.bool_:
        c = ops.cast(c, ms.bool_)
    r = mint.where(c, a, b)
    return _new(r, dt, like._dev if like is not None else condition._dev)


def nonzero(input, *, as_tuple=False):
    """Indices of non-zero elements, int64 [n, ndim] (or a tuple of [n] tensors with as_tuple)."""
    arr = np.argwhere(input._host() != 0).astype(np.int64)
    if as_tuple and input.dim() == 0:  # torch treats a 0-d input as 1-d here
        return (_new(ms.Tensor(np.zeros(len(arr), np.int64)), D.int64, input._dev),)
    if as_tuple:
        return tuple(_new(ms.Tensor(np.ascontiguousarray(arr[:, i])), D.int64, input._dev)
                     for i in range(builtins.max(input.dim(), 1)))
    return _new(ms.Tensor(arr), D.int64, input._dev)


def argwhere(input):
    """torch.argwhere: int64 [n, ndim] indices of non-zero elements."""
    return nonzero(input)


def index_add(input, dim, index, source, *, alpha=1):
    """torch.index_add (out of place): source slices added at `index` along `dim` (times alpha)."""
    d = _norm_dim(dim, input.dim())
    s = _src(input, source)
    if alpha != 1:
        s = s * alpha
    idx = _idx64(index)
    out = _index_add(unwrap(input), d, idx, s)
    return _new(out, input._dt, input._dev)


def _index_add(m, d, idx, s):
    # scatter_add along d with the index broadcast over the other dimensions
    shape = [1] * len(s.shape)
    shape[d] = s.shape[d]
    full_idx = mint.broadcast_to(idx.reshape(shape), tuple(s.shape))
    return ops.tensor_scatter_elements(m, full_idx, s, d, "add")


def index_copy(input, dim, index, source):
    """torch.index_copy (out of place): source slices written at `index` along `dim`."""
    d = _norm_dim(dim, input.dim())
    s = _src(input, source)
    shape = [1] * len(s.shape)
    shape[d] = s.shape[d]
    full_idx = mint.broadcast_to(_idx64(index).reshape(shape), tuple(s.shape))
    return _new(_scatter(unwrap(input), d, full_idx, s), input._dt, input._dev)


def index_fill(input, dim, index, value):
    """torch.index_fill (out of place): slices at `index` along `dim` set to `value`."""
    d = _norm_dim(dim, input.dim())
    shape = list(input.shape)
    shape[d] = index.numel()
    if isinstance(value, Tensor) and value.requires_grad:  # keep value's gradient
        v = unwrap(value)
        if value._dt is not input._dt:
            v = _cast_storage(v, value._dt, input._dt)
        src = mint.broadcast_to(v.reshape(()), tuple(shape))
    else:
        src = ops.full(tuple(shape), value.item() if isinstance(value, Tensor) else value, dtype=input._dt.sms)
    out = index_copy(input, d, index, _new(src, input._dt, input._dev))
    return out


def searchsorted(sorted_sequence, input, *, out_int32=False, right=False, side=None, sorter=None):
    """torch.searchsorted: insertion indices of `input` in the innermost rows of `sorted_sequence` (int64, or
    int32 with out_int32); side="right"/right=True puts equal values after. Computed on the host."""
    from .creation import _from_host
    if side is not None:
        right = side == "right"
    seq = sorted_sequence._host()
    vals = input._host() if isinstance(input, Tensor) else np.asarray(input)
    if sorter is not None:
        seq = np.take_along_axis(seq, sorter._host(), -1)
    how = "right" if right else "left"
    if seq.ndim == 1:
        r = np.searchsorted(seq, vals, side=how)
    else:
        flat_s = seq.reshape(-1, seq.shape[-1])
        flat_v = vals.reshape(flat_s.shape[0], -1)
        r = np.stack([np.searchsorted(a, b, side=how) for a, b in zip(flat_s, flat_v)]).reshape(vals.shape)
    dt = D.int32 if out_int32 else D.int64
    like = sorted_sequence
    return _from_host(np.asarray(r, dtype=np.int32 if out_int32 else np.int64), dt, like._dev)


def bucketize(input, boundaries, *, out_int32=False, right=False):
    """torch.bucketize: the bucket index of each element of `input` for the 1-D sorted `boundaries` (right=False:
    boundaries[i-1] < x <= boundaries[i]). Computed on the host."""
    from .creation import _from_host
    vals = input._host() if isinstance(input, Tensor) else np.asarray(input)
    r = np.searchsorted(boundaries._host(), vals, side="right" if right else "left")
    dt = D.int32 if out_int32 else D.int64
    like = input if isinstance(input, Tensor) else boundaries
    return _from_host(np.asarray(r, dtype=np.int32 if out_int32 else np.int64), dt, like._dev)


index_add = _as_1d(index_add)
index_copy = _as_1d(index_copy)
index_fill = _as_1d(index_fill)


def _inplace(fn):
    def method(self, *args, **kwargs):
        out = fn(self, *args, **kwargs)
        m = unwrap(out)
        if tuple(m.shape) != tuple(self.shape):
            raise RuntimeError(f"output with shape {list(self.shape)} doesn't match the broadcast shape "
                               f"{list(m.shape)}")
        return _assign(self, m)
    method.__name__ = fn.__name__ + "_"
    method.__doc__ = f"In-place torch.Tensor.{fn.__name__}_ (views write through to their base)."
    return method



def isin(elements, test_elements, *, assume_unique: bool = False, invert: bool = False) -> Tensor:
    """torch.isin: bool tensor of ``elements``' shape, True where the element equals any of ``test_elements``
    (either may be a Python scalar; at least one must be a tensor, TypeError otherwise). Compares every pair
    (memory ``elements.numel() * test_elements.numel()``); ``assume_unique`` only allows faster algorithms in
    torch and does not change the result."""
    if not isinstance(elements, Tensor) and not isinstance(test_elements, Tensor):
        raise TypeError("isin(): at least one of 'elements' and 'test_elements' must be a Tensor")
    from .creation import tensor as _tensor
    if not isinstance(elements, Tensor):
        elements = _tensor(elements)
    if not isinstance(test_elements, Tensor):
        test_elements = _tensor(test_elements)
    if test_elements.numel() == 0:
        from .creation import zeros as _zeros
        hit = _zeros(tuple(elements.shape), dtype=D.bool)
    else:
        hit = (elements.unsqueeze(-1) == test_elements.reshape(-1)).any(-1)
    return hit.logical_not() if invert else hit


def diff(input, n: int = 1, dim: int = -1, prepend=None, append=None) -> Tensor:
    """torch.diff: the ``n``-th forward difference along ``dim`` after concatenating ``prepend``/``append``
    (tensors with input's other dims) there; bool inputs give ``!=`` (torch's rule). ``n == 0`` returns the
    concatenation; RuntimeError for ``n < 0``."""
    if not isinstance(input, Tensor):
        raise TypeError(f"diff(): argument 'input' must be Tensor, not {type(input).__name__}")
    if n < 0:
        raise RuntimeError(f"order must be non-negative but got {n}")
    from .shape import cat as _cat
    parts = [t for t in (prepend, input, append) if t is not None]
    x = _cat(parts, dim) if len(parts) > 1 else input
    for _ in range(n):
        size = x.shape[dim]
        if size == 0:
            break
        hi, lo = x.narrow(dim, 1, size - 1), x.narrow(dim, 0, size - 1)
        x = hi.ne(lo) if x.dtype == D.bool else hi - lo
    return x

FUNCTIONS = {n: globals()[n] for n in __all__}
FUNCTIONS.update(isin=isin, searchsorted=searchsorted, bucketize=bucketize)
METHODS = {
    "gather": gather, "scatter": scatter, "scatter_add": scatter_add, "index_select": index_select,
    "masked_select": masked_select, "masked_fill": masked_fill, "nonzero": nonzero, "take_along_dim":
    take_along_dim, "index_add": index_add, "index_copy": index_copy, "index_fill": index_fill,
    "argwhere": argwhere,
    "where": lambda self, condition, other: where(condition, self, other),
    "masked_fill_": _inplace(masked_fill), "scatter_": _inplace(scatter), "scatter_add_": _inplace(scatter_add),
    "index_add_": _inplace(index_add), "index_copy_": _inplace(index_copy), "index_fill_": _inplace(index_fill),
}
