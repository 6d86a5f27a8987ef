"""Structural ops composed from other facade ops (each marked `@emulated` with how): functional fill/zero_,
conjugate transposes (H, mH), sum_to_size, logspace, take/put, diagonal_scatter, as_strided_copy/scatter,
Tensor.unfold, renorm, combinations, the uninitialised creators new_empty_strided/empty_permuted.

Index-based ops build the positions they address as an int64 `arange` run through the same view op
(`diagonal`, `as_strided`) and then gather/scatter values with index_select/index_copy/index_add, so gradients
flow through MindSpore's kernels for those (torch's gradients: zeros where values were replaced).
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from .. import _dtype as D
from .._args import norm_dim
from .._tensor import Tensor, _assign, unwrap
from ._support import emulated
from .creation import arange, full_like, _from_host, _dtype_arg
from .indexing import index_copy, index_add, index_select, where
from .shape import stack


def _T():
    import shim.torch as T  # facade-internal cycle: the op families load before the package finishes
    return T


@emulated("where(all-true, value, input): the value broadcast over input's shape, input's gradient zero")
def fill(input, value):
    """torch.fill(input, value): a new tensor of input's shape and dtype filled with `value` (a number or a
    0-d tensor, which receives the summed gradient)."""
    if isinstance(value, Tensor):
        if value.dim() != 0:
            raise RuntimeError(f"fill only supports 0-dimension value tensor but got tensor with "
                               f"{value.dim()} dimensions.")
        v = value.to(input.dtype).expand(tuple(input.shape))
    else:
        v = full_like(input, value)
    mask = full_like(input, True, dtype=D.bool)
    return where(mask, v, input)


def zero_(input):
    """torch.zero_(input): fills input with zeros in place and returns it (= input.zero_()); on a tensor that
    records gradients the zeros are written as a result of input (its gradient: zeros), as torch's."""
    from ..autograd.grad_mode import is_grad_enabled  # facade-internal cycle (autograd imports the families)
    if input.requires_grad and is_grad_enabled():
        return _assign(input, unwrap(fill(input, 0)))
    return input.zero_()


def _conj_t(x, a, b):
    if x.dtype.is_complex:
        raise NotImplementedError("torch.Tensor.H / mH on complex tensors is not supported by the shim")
    return x.transpose(a, b)


def H(self):
    """torch.Tensor.H: the conjugate transpose of a matrix (0-D/1-D: itself; RuntimeError above 2-D)."""
    if self.dim() > 2:
        raise RuntimeError("tensor.H is only supported on matrices (2-D tensors). Got "
                           f"{self.dim()}-D tensor.")
    return _conj_t(self, 0, 1) if self.dim() == 2 else self


def mH(self):
    """torch.Tensor.mH: the conjugate transpose of the last two dimensions (RuntimeError below 2-D)."""
    if self.dim() < 2:
        raise RuntimeError("tensor.mH is only supported on matrices or batches of matrices. Got "
                           f"{self.dim()}-D tensor.")
    return _conj_t(self, -2, -1)


def sum_to_size(self, *size):
    """torch.Tensor.sum_to_size(*size): sums self down to `size` (which self must broadcast from): leading extra
    dimensions and dimensions where size is 1 are summed. RuntimeError when not expandable."""
    if len(size) == 1 and isinstance(size[0], (tuple, list)) or (len(size) == 1 and hasattr(size[0], "__len__")):
        size = tuple(size[0])
    size = tuple(int(s) for s in size)
    shape = tuple(self.shape)
    lead = len(shape) - len(size)
    if lead < 0 or any(s != 1 and s != d for s, d in zip(size, shape[lead:])):
        raise RuntimeError(f"size {{{list(size)}}} is not expandable to size {{{list(shape)}}}.")
    if not size:
        return self.sum()  # torch sums to a 0-d tensor (integer promotion included) even for a 0-d self
    out = self
    if lead:
        out = out.sum(tuple(range(lead)))
    dims = tuple(i for i, (s, d) in enumerate(zip(size, shape[lead:])) if s == 1 and d != 1)
    if dims:
        out = out.sum(dims, keepdim=True)
    return out if out is not self else self


@emulated("base ** linspace(start, end, steps) evaluated on the host in float64, rounded to the dtype")
def logspace(start, end, steps, base=10.0, *, dtype=None, layout=None, device=None, requires_grad=False,
             out=None):
    """torch.logspace: `steps` values base ** x for x evenly spaced from start to end (start/end numbers or
    0-d tensors); default float dtype; integer dtypes truncate. RuntimeError for steps < 0."""
    T = _T()
    if isinstance(start, Tensor):
        start = start.item()
    if isinstance(end, Tensor):
        end = end.item()
    steps = int(steps)
    if steps < 0:
        raise RuntimeError("number of steps must be non-negative")
    dt = _dtype_arg(dtype) or D.get_default_dtype()
    if steps == 1:
        x = np.array([float(start)])
    else:
        x = np.linspace(float(start), float(end), steps, dtype=np.float64)
    if dt._cat == D._FLOAT:
        x = x.astype(dt.np if not dt.emulated else np.float32).astype(np.float64)
    with np.errstate(all="ignore"):
        vals = np.power(float(base), x)
        if dt._cat != D._FLOAT:
            vals = np.trunc(vals)
    r = _from_host(vals.astype(dt.np) if not dt.emulated else vals, dt, device)
    if requires_grad:
        r.requires_grad_(True)
    return r if out is None else out.copy_(r)


def _flat_index(input, index, name):
    n = input.numel()
    idx = index.reshape(-1).to(D.int64)
    if idx.numel():
        lo, hi = int(idx.min().item()), int(idx.max().item())
        if lo < -n or hi >= n:
            bad = lo if lo < -n else hi
            raise IndexError(f"{name}: index {bad} out of range for tensor of size {list(input.shape)} with "
                             f"{n} elements")
    return where(idx < 0, idx + n, idx)


@emulated("index_select on the flattened input")
def take(input, index):
    """torch.take(input, index): input's elements at the flat (row-major) positions `index` (int64, negative
    counting from the end), shaped like `index`. IndexError when out of range."""
    idx = _flat_index(input, index, "take")
    return index_select(input.reshape(-1), 0, idx).reshape(tuple(index.shape))


@emulated("index_copy / index_add on the flattened input")
def put(input, index, source, accumulate=False):
    """torch.put(input, index, source, accumulate=False): a copy of input with the flat positions `index` set
    to (or, with accumulate, incremented by) `source`'s values (flattened; same numel as index)."""
    idx = _flat_index(input, index, "put")
    src = source.reshape(-1).to(input.dtype)
    if src.numel() != idx.numel():
        raise RuntimeError(f"put_(): Expected source and index to have the same number of elements, but got "
                           f"source.numel() = {src.numel()}, index.numel() = {idx.numel()}")
    flat = input.reshape(-1)
    out = index_add(flat, 0, idx, src) if accumulate else index_copy(flat, 0, idx, src)
    return out.reshape(tuple(input.shape))


def _positions(input):
    return arange(input.numel(), dtype=D.int64, device=input.device).reshape(tuple(input.shape))


@emulated("index_copy into the flattened input at the diagonal's flat positions")
def diagonal_scatter(input, src, offset=0, dim1=0, dim2=1):
    """torch.diagonal_scatter: a copy of input with input.diagonal(offset, dim1, dim2) replaced by `src` (of
    exactly that diagonal's shape, RuntimeError otherwise)."""
    pos = _positions(input).diagonal(offset, dim1, dim2)
    if tuple(src.shape) != tuple(pos.shape):
        raise RuntimeError(f"expected src to have a size equal to the slice of self. src size = "
                           f"{list(src.shape)}, slice size = {list(pos.shape)}")
    return index_copy(input.reshape(-1), 0, pos.reshape(-1), src.reshape(-1).to(input.dtype)).reshape(
        tuple(input.shape))


@emulated("index_select of the flattened (contiguous) input at the strided positions")
def as_strided_copy(input, size, stride, storage_offset=None):
    """torch.as_strided_copy: a new tensor holding input.as_strided(size, stride, storage_offset) (positions
    address input's elements in row-major order)."""
    pos = _positions(input).as_strided(size, stride, storage_offset or 0)
    return index_select(input.reshape(-1), 0, pos.reshape(-1)).reshape(tuple(size))


@emulated("index_copy into the flattened (contiguous) input at the strided positions")
def as_strided_scatter(input, src, size, stride, storage_offset=None):
    """torch.as_strided_scatter: a copy of input whose as_strided(size, stride, storage_offset) view is set to
    `src` (of shape `size`). Without gradients only: torch 2.13's backward hands `input` the gradient of the
    scattered positions instead of the others (measured on op_db's samples), which the facade does not copy;
    with an input that requires grad it raises NotImplementedError."""
    from ..autograd.grad_mode import is_grad_enabled  # facade-internal cycle (autograd imports the families)
    if is_grad_enabled() and (input.requires_grad or (isinstance(src, Tensor) and src.requires_grad)):
        raise NotImplementedError("torch.as_strided_scatter with inputs that require grad is not supported by "
                                  "the shim (torch's backward for `input` differs from the function's "
                                  "derivative)")
    pos = _positions(input).as_strided(size, stride, storage_offset or 0)
    if tuple(src.shape) != tuple(pos.shape):
        raise RuntimeError(f"expected src to have a size equal to the slice of self. src size = "
                           f"{list(src.shape)}, slice size = {list(pos.shape)}")
    return index_copy(input.reshape(-1), 0, pos.reshape(-1), src.reshape(-1).to(input.dtype)).reshape(
        tuple(input.shape))


@emulated("index_select of the window positions along the dimension, the window moved last")
def unfold(self, dimension, size, step):
    """torch.Tensor.unfold(dimension, size, step): all windows of `size` elements, `step` apart, along
    `dimension`; that dimension becomes the window count and a new last dimension holds each window (a copy
    here, a view in torch). RuntimeError for size larger than the dimension or step < 1."""
    nd = self.dim()
    d = norm_dim(dimension, nd)
    n = tuple(self.shape)[d] if nd else 1
    if size > n:
        raise RuntimeError(f"maximum size for tensor at dimension {d} is {n} but size is {size}")
    if step <= 0:
        raise RuntimeError(f"step is {step} but must be > 0")
    if nd == 0:
        return self.reshape(1)
    count = (n - size) // step + 1
    idx = (arange(count, dtype=D.int64).unsqueeze(1) * step + arange(size, dtype=D.int64)).reshape(-1)
    picked = index_select(self, d, idx)
    shape = list(self.shape)
    shape[d:d + 1] = [count, size]
    return picked.reshape(shape).movedim(d + 1, -1)


def unfold_copy(input, dimension, size, step):
    """torch.unfold_copy = Tensor.unfold (already a copy here)."""
    return unfold(input, dimension, size, step)


@emulated("per-slice norms (Tensor.norm over the other dimensions), scaled where above maxnorm")
def renorm(input, p, dim, maxnorm):
    """torch.renorm(input, p, dim, maxnorm): each slice along `dim` whose p-norm exceeds `maxnorm` is scaled
    to norm maxnorm (factor maxnorm / (norm + 1e-7), torch's); others unchanged. RuntimeError for p <= 0 or
    maxnorm < 0."""
    if p <= 0:
        raise RuntimeError(f"renorm: non-positive-norm not supported")
    if maxnorm < 0:
        raise RuntimeError(f"renorm: expected maxnorm to be >= 0 but got {maxnorm}")
    d = norm_dim(dim, input.dim())
    others = tuple(i for i in range(input.dim()) if i != d)
    if not others:
        norms = input.abs()
    else:
        norms = input.norm(p, dim=others, keepdim=True)
    factor = where(norms > maxnorm, maxnorm / (norms + 1e-7), full_like(norms, 1.0))
    return input * factor


@emulated("index_select at the index tuples itertools makes on the host, stacked")
def combinations(input, r=2, with_replacement=False):
    """torch.combinations(input, r=2, with_replacement=False): the length-r combinations of a 1-D tensor's
    elements as rows of an (n_comb, r) tensor (in itertools' order, as torch); r == 0 gives an empty 1-D tensor.
    RuntimeError unless input is 1-D, ValueError for r < 0."""
    if input.dim() != 1:
        raise RuntimeError(f"Expect a 1D vector, but got shape {list(input.shape)}")
    if r < 0:
        raise RuntimeError(f"Expect a non-negative number, but got {r}")
    none = _from_host(np.zeros((0,), np.int64), D.int64, input._dev)
    if r == 0:
        return index_select(input, 0, none)
    gen = itertools.combinations_with_replacement if with_replacement else itertools.combinations
    combos = list(gen(range(input.shape[0]), r))
    if not combos:
        return stack([index_select(input, 0, none)] * r, 1)
    idx = np.asarray(combos, dtype=np.int64)
    cols = [index_select(input, 0, _from_host(idx[:, j].copy(), D.int64, input._dev)) for j in range(r)]
    return stack(cols, 1)


def new_empty_strided(self, size, stride, *, dtype=None, layout=None, device=None, requires_grad=False,
                      pin_memory=False):
    """torch.Tensor.new_empty_strided: a new (zero-filled here: MindSpore has no uninitialised allocation)
    tensor of `size` with self's dtype/device unless given; strides are row-major in the facade."""
    T = _T()
    r = T.zeros(tuple(size), dtype=_dtype_arg(dtype) or self.dtype,
                device=device if device is not None else self.device)
    return r.requires_grad_(True) if requires_grad else r


def empty_permuted(size, physical_layout, *, dtype=None, layout=None, device=None, requires_grad=False,
                   pin_memory=False):
    """torch.empty_permuted(size, physical_layout): a (zero-filled) tensor of `size`; the physical dimension
    order only affects strides, which are row-major in the facade. RuntimeError unless physical_layout is a
    permutation of range(len(size))."""
    if sorted(int(i) for i in physical_layout) != list(range(len(size))):
        raise RuntimeError(f"Number of dimensions in size does not match the length of the physical_layout; "
                           f"or physical_layout is not a permutation: {list(physical_layout)}")
    T = _T()
    r = T.zeros(tuple(size), dtype=_dtype_arg(dtype) or T.get_default_dtype(), device=device)
    return r.requires_grad_(True) if requires_grad else r


__all__ = ["fill", "zero_", "logspace", "take", "put", "diagonal_scatter", "as_strided_copy", "as_strided_scatter",
           "unfold_copy", "renorm", "combinations", "empty_permuted"]
FUNCTIONS = {n: globals()[n] for n in __all__}
METHODS = {
    "H": property(H),
    "mH": property(mH),
    "sum_to_size": sum_to_size,
    "take": take,
    "put": put,
    "diagonal_scatter": diagonal_scatter,
    "unfold": unfold,
    "renorm": renorm,
    "new_empty_strided": new_empty_strided,
}
