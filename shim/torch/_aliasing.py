"""The aliasing engine: torch's storage, view and version semantics over MindSpore tensors that copy.

MindSpore 2.10 on CPU does not give torch's aliasing semantics (see shim/README.md, "Aliasing model"). The facade
therefore keeps torch's aliasing itself, in the fields every facade `Tensor` carries (declared as its `__slots__`
in `_tensor.py`). A view's cached `_m` is a MindSpore view of the base's storage, or, derived while autograd is not
recording, a host alias of it (workaround "view input copy" below: MindSpore copies every view a kernel is given):

| field | on a base | on a view |
|---|---|---|
| `_m` | the storage: a `mindspore.Tensor` in the storage dtype (`dtype.sms`) | a cached derivation of the base's `_m` |
| `_dt`, `_dev` | torch dtype and reported device | same as its base |
| `_vbase` | None | the base (never itself a view: chains are flattened) |
| `_steps` | None | `((fn, args), ...)`: MindSpore step functions deriving `_m` from the base's `_m` |
| `_vver` | unused | the base's `_ver` when `_m` was derived (stale when they differ); `-3 - _ver` for a host alias |
| `_geom` | None until first asked, then `(shape, contiguous strides, 0)` | torch's `(shape, strides, storage_offset)` into the base, in elements |
| `_ver` | the version counter (torch's `_version`), bumped by every write | unused (a view reports its base's) |
| `_pinned` | True when the MindSpore object's identity matters to MindSpore's autograd (leaves that require grad, `.grad` tensors): writes copy into it instead of rebinding it | unused |
| `_gw` | cache of the `.grad` wrapper | unused |

Internal API (the rest of the facade reaches it through the `_`-prefixed re-exports in `_tensor.py`:
`_new`, `_assign`, `_make_view`, `_cast_storage`, ...):

- `new(m, dt, dev=CPU, cls=None)` — a fresh base owning MindSpore tensor `m`.
- `make_view(parent, fn, args, geom, cls=None)` — a view of `parent`'s base derived by one more step.
- `refresh(v)` — re-derive a stale view from its base.
- `assign(t, m)` — the one write primitive: make `m` the value of `t` (base or view) in place.
- `write_back(v, m)` — the view half of `assign`: carry a view's new value into its base's storage.
- `cast_storage(m, src, dst)` — convert storage between torch dtypes (bf16 emulation's rounding).
- `geom(t)`, `index_map(v)`, `view_strides(...)`, `contig_strides(shape)`, `is_contig(shape, strides)` —
  torch geometry in elements.
- `clone`, `scatter`, `round_bf16` — the storage-level MindSpore calls the engine is built on (with the kernel
  workarounds they carry: rows `Clone` and `mint.scatter` in `_workarounds.py`).
- step functions `step_reshape`, `step_transpose`, `step_permute`, `step_broadcast_to`, `step_gather_flat`
  (module-level, so view chains hold no closures; `_ops/linalg.py` recognises `step_transpose` to call MatMul
  with a transpose flag).

Tensor class binding: `new` builds instances of `shim.torch._tensor.Tensor`, which is defined on top of this
module; `_tensor.py` registers the class with `bind_tensor_class` when it is imported (before any tensor exists).
"""
from __future__ import annotations

import numpy as np
import mindspore as ms
from mindspore import mint, ops

from ._device import CPU
from .autograd.grad_mode import _GRAD, _pynative_executor, _set as _set_grad

__all__ = ["new", "make_view", "refresh", "is_host_alias", "host_reshape", "covers_base", "host_region", "assign", "write_back", "cast_storage", "geom", "index_map",
           "view_strides", "contig_strides", "is_contig", "check_leaf_inplace", "clone", "scatter", "round_bf16",
           "FUNCTIONAL_WRITE_MAX", "step_reshape", "step_transpose", "step_permute", "step_broadcast_to",
           "step_gather_flat", "bind_tensor_class"]

_cast = ops.cast
_stop_gradient = ops.stop_gradient

# The facade Tensor class (set by bind_tensor_class when shim.torch._tensor is imported).
_TENSOR = None


def bind_tensor_class(cls) -> None:
    """Register the facade `Tensor` class as what `new`/`make_view` build when no `cls` is given. Called once by
    `shim.torch._tensor` right after the class is defined."""
    global _TENSOR
    _TENSOR = cls


# ----------------------------------------------------------------------------------------------------------
# storage-level MindSpore calls

# workaround "Clone" (shim/torch/_workarounds.py): MindSpore 2.10 registers no CPU kernel for Clone (mint.clone /
# Tensor.clone fail for every dtype); ops.deepcopy (an Identity node) copies and is differentiable.
clone = ops.deepcopy if ms.get_context("device_target") == "CPU" else mint.clone
# clone(m) -> mindspore.Tensor: a differentiable copy of m.


def scatter(m, dim, index, src):
    """Out-of-place scatter with torch.scatter semantics on MindSpore tensors: a copy of `m` with
    `out[index[i]][j] = src[i][j]` along `dim` (int64 `index` shaped like `src`). Differentiable.

    workaround "mint.scatter" (shim/torch/_workarounds.py): mint.scatter is avoided: on CPU (MindSpore 2.10) it returns
    wrong positions when called again with different shapes (a kernel cache bug, measured)."""
    return ops.tensor_scatter_elements(m, index, src, dim)


def round_bf16(m):
    """Round a float32 MindSpore tensor to bfloat16 values (kept in float32): the emulated-bf16 result step
    (workaround "bfloat16", shim/torch/_workarounds.py). Differentiable (two casts)."""
    return _cast(_cast(m, ms.bfloat16), ms.float32)


def cast_storage(m, src, dst):
    """Cast storage tensor `m` of torch dtype `src` to the storage of torch dtype `dst`.

    Returns `m` itself when `src is dst`; to an emulated dtype (bfloat16 on CPU) casts to float32 and rounds to
    bfloat16 values; otherwise one `ops.cast` to `dst.sms`. A new MindSpore tensor (no facade state is touched,
    no version counter changes); differentiable, so gradients flow back through the cast."""
    if src is dst:
        return m
    if dst.emulated:
        return round_bf16(m if m.dtype == ms.float32 else _cast(m, ms.float32))
    return _cast(m, dst.sms)


# ----------------------------------------------------------------------------------------------------------
# bases and views


def new(m, dt, dev=CPU, cls=None):
    """A new base facade tensor owning MindSpore tensor `m`.

    m: the storage (already in `dt.sms`, the storage dtype; not checked: this is the hot constructor every op
    result goes through); dt: torch dtype; dev: reported torch.device; cls: the class (default the facade
    Tensor; Parameters pass theirs). Version counter 0, no view state, not pinned. Autograd: `m` keeps
    whatever graph it has (a recorded op's result stays a non-leaf)."""
    t = object.__new__(cls or _TENSOR)
    t._m = m
    t._dt = dt
    t._vbase = None
    t._steps = None
    t._vver = 0
    t._geom = None
    t._ver = 0
    t._dev = dev
    t._pinned = False
    t._gw = None
    return t


def contig_strides(shape):
    """Row-major strides (elements) for `shape` (size-0 dims count as 1, as torch)."""
    strides = [1] * len(shape)
    acc = 1
    for i in range(len(shape) - 1, -1, -1):
        strides[i] = acc
        acc *= max(shape[i], 1)
    return tuple(strides)


def is_contig(shape, strides) -> bool:
    """True when `strides` are row-major for `shape` (size-1 dims ignored, torch's rule)."""
    expected = 1
    for size, stride in zip(reversed(shape), reversed(strides)):
        if size != 1 and stride != expected:
            return False
        expected *= size
    return True


def geom(t):
    """`(shape, strides, storage_offset)` of base `t`, computed from its storage once and cached in `_geom`
    (the one place a base's MindSpore `.shape` is read: that read waits on MindSpore's pipeline).

    workaround "pipeline waits" (shim/torch/_workarounds.py)"""
    g = t._geom
    if g is None:
        shape = tuple(t._m.shape)
        g = t._geom = (shape, contig_strides(shape), 0)
    return g


def view_strides(old_shape, old_strides, new_shape):
    """Strides for viewing `(old_shape, old_strides)` as `new_shape` without copying, or None when the
    dimensions to merge are not contiguous in memory (torch's rule for `view`, re-derived here)."""
    if not old_shape:  # a 0-d tensor views as any shape of one element (torch: all strides 1)
        return (1,) * len(new_shape)
    numel = 1
    for s in old_shape:
        numel *= s
    if numel == 0:
        return contig_strides(new_shape) if old_shape != new_shape else tuple(old_strides)
    new_strides = [0] * len(new_shape)
    view_d = len(new_shape) - 1
    chunk_base_stride = old_strides[-1] if old_strides else 1
    tensor_numel = 1
    view_numel = 1
    for tensor_d in range(len(old_shape) - 1, -1, -1):
        tensor_numel *= old_shape[tensor_d]
        if tensor_d == 0 or (old_shape[tensor_d - 1] != 1 and
                             old_strides[tensor_d - 1] != tensor_numel * chunk_base_stride):
            while view_d >= 0 and (view_numel < tensor_numel or new_shape[view_d] == 1):
                new_strides[view_d] = view_numel * chunk_base_stride
                view_numel *= new_shape[view_d]
                view_d -= 1
            if view_numel != tensor_numel:
                return None
            if tensor_d > 0:
                chunk_base_stride = old_strides[tensor_d - 1]
                tensor_numel = 1
                view_numel = 1
    if view_d != -1:
        return None
    return tuple(new_strides)


def index_map(v):
    """Flat storage indices (int64 MindSpore tensor of numel elements, row-major over `v`'s shape) of every
    element of view `v`, from its geometry; cached on the view (`_idx_cache`). Used by the scatter write-back
    and as_strided."""
    idx = v.__dict__.get("_idx_cache")
    if idx is None:
        shape, strides, off = v._geom
        acc = np.full((1,) * len(shape), off, dtype=np.int64)
        for d, (size, stride) in enumerate(zip(shape, strides)):
            r = np.arange(size, dtype=np.int64) * stride
            acc = acc + r.reshape((1,) * d + (size,) + (1,) * (len(shape) - d - 1))
        idx = ms.Tensor(np.array(np.broadcast_to(acc, shape)).reshape(-1))
        v.__dict__["_idx_cache"] = idx
    return idx


# workaround "view input copy" (shim/torch/_workarounds.py)
# MindSpore 2.10 (CPU) copies every view tensor it is given as a kernel input (a reshape or narrow of a
# contiguous tensor included: `Tensor.reshape`, `view`, `mint.narrow`, `ops.Reshape` all make one) before the
# kernel runs: GatherNd picking 63 elements of a [63, 75904] float32 matrix takes 0.03 ms on the matrix and
# 1.7 ms on the same matrix reached through a reshape (measured). A facade view whose elements are one contiguous
# run of its base's storage, derived while autograd is not recording (optimizer steps, custom Functions' bodies,
# `no_grad` code: megatron's cross entropy and its gradient-buffer views), is instead a MindSpore tensor that is
# not a view but shares the base's host memory: numpy's array over that memory (`_HostMemory`, which keeps the
# base's MindSpore tensor alive), given to `Tensor.from_numpy`. Such a cache carries no autograd history: it is
# marked `_vver = -3 - base._ver` (never equal to a version, so `unwrap` always asks `refresh`), and `refresh`
# keeps it while recording stays off and the base is unchanged (the same object: identity checks such as
# `copy_`'s still hold) and re-derives it otherwise, as a MindSpore view when recording is on. CPU target with
# synchronous dispatch only (host memory, nothing queued); a row-major base storage; dtypes numpy holds
# natively; 65,536+ elements.
HOST_ALIAS_MIN = 1 << 16
_HOST_TYPES = {ms.float32: np.dtype(np.float32), ms.float64: np.dtype(np.float64), ms.float16: np.dtype(np.float16),
               ms.int64: np.dtype(np.int64), ms.int32: np.dtype(np.int32), ms.int16: np.dtype(np.int16),
               ms.int8: np.dtype(np.int8), ms.uint8: np.dtype(np.uint8), ms.bool_: np.dtype(np.bool_)}
_HOST = []  # [bool]: host aliases allowed in this process (decided on first use)


def _host_ok() -> bool:
    if not _HOST:
        from ._dispatch import SYNC
        _HOST.append(bool(SYNC) and ms.get_context("device_target") == "CPU")
    return _HOST[0]


class _HostMemory:
    """numpy's array interface over `shape` elements of dtype `typestr` at host address `ptr`, inside the
    storage of MindSpore tensor `m`. The storage object (`m.untyped_storage()`) is kept alive as long as an array
    made from this object lives: not `m` itself, which MindSpore moves to new storage on some writes (its setitem),
    freeing the old one."""
    __slots__ = ("__array_interface__", "owner")

    def __init__(self, m, ptr: int, shape: tuple, typestr: str):
        self.owner = m.untyped_storage()
        self.__array_interface__ = {"data": (ptr, False), "shape": shape, "typestr": typestr, "version": 3}


def _host_array(m, off: int, shape: tuple):
    """numpy's array of `shape` over the storage of MindSpore tensor `m` from element `off` (it keeps the storage
    alive), or None where the host cannot address it: not the CPU target with synchronous dispatch, a dtype numpy
    lacks, `m` not row-major."""
    if not _host_ok():
        return None
    dt = _HOST_TYPES.get(m.dtype)
    if dt is None or not m.is_contiguous():
        return None
    return np.asarray(_HostMemory(m, m._data_ptr() + off * dt.itemsize, shape, dt.str))


def _host_tensor(m, off: int, shape: tuple):
    """`_host_array` as a MindSpore tensor that is not a MindSpore view (shares that memory), or None."""
    a = _host_array(m, off, shape)
    return None if a is None else ms.Tensor.from_numpy(a)


def host_reshape(m, shape):
    """`m.reshape(shape)` that MindSpore does not treat as a view where that is possible: while autograd is not
    recording, on the CPU target with synchronous dispatch, for a row-major `m` of 65,536+ elements in a dtype
    numpy holds, a tensor sharing `m`'s host memory; otherwise `m.reshape(shape)`.
    workaround "view input copy" (shim/torch/_workarounds.py)"""
    shape = tuple(shape)
    if _GRAD[0]:
        return m.reshape(shape)
    n = 1
    for s in shape:
        n *= s
    h = _host_tensor(m, 0, shape) if n >= HOST_ALIAS_MIN else None
    return m.reshape(shape) if h is None else h


def _host_write(bm, off: int, n: int, new) -> bool:
    """Copy MindSpore tensor `new` (n elements) into elements [off, off + n) of MindSpore tensor `bm`'s storage
    on the host, in place; False (nothing written) where that is not possible (not the CPU target with
    synchronous dispatch, a dtype numpy lacks, dtypes differ, either not row-major). Part of workaround
    "view input copy": MindSpore's slice assignment takes ~0.5 ms of index work per call before its copy, and
    copies `new` first when it is a view."""
    if new.dtype != bm.dtype:
        return False
    dst = _host_array(bm, off, (n,))
    src = _host_array(new, 0, (n,)) if dst is not None else None
    if src is None:
        return False
    np.copyto(dst, src)
    return True


def host_region(t):
    """A MindSpore tensor in `t`'s shape over the memory `t`'s elements occupy in its base's storage that is not
    a MindSpore view, for kernels that write their inputs in place (given a view, MindSpore writes a copy), or
    None where not possible: not the CPU target with synchronous dispatch, `t` (a facade base or view) not one
    contiguous run of a row-major storage, a dtype numpy lacks. Writes through it land in the storage without
    any version bump (the caller's). workaround "view input copy" (shim/torch/_workarounds.py)"""
    b = t._vbase
    if b is None:
        return _host_tensor(t._m, 0, tuple(t._m.shape))
    shape, strides, off = t._geom
    return _host_tensor(b._m, off, tuple(shape)) if is_contig(shape, strides) else None


def _host_alias(v, b):
    """View `v`'s value as a non-view MindSpore tensor sharing base `b`'s host memory, or None when `v` does not
    qualify (recording on, geometry not one contiguous run, small, a dtype numpy lacks, a base storage that is
    not row-major, not the CPU target with synchronous dispatch)."""
    if _GRAD[0]:
        return None
    n = 1
    for s in v._geom[0]:
        n *= s
    if n < HOST_ALIAS_MIN:
        return None
    return host_region(v)


def covers_base(v) -> bool:
    """Whether view `v` is its whole base, contiguously (a write to it replaces the base's storage outright:
    `write_back` adopts the new value instead of copying it)."""
    shape, strides, off = v._geom
    if off or not is_contig(shape, strides):
        return False
    n = 1
    for s in shape:
        n *= s
    total = 1
    for s in geom(v._vbase)[0]:
        total *= s
    return n == total


def is_host_alias(v) -> bool:
    """Whether view `v`'s cache is a host alias of its base's current storage (workaround "view input copy"):
    a MindSpore tensor that is not a view, whose writes land in the base's storage."""
    b = v._vbase
    return b is not None and v._vver == -3 - b._ver


def refresh(v):
    """Re-derive view `v`'s cached `_m` from its base's current storage (one MindSpore op per step) and mark it
    current (`_vver = base._ver`). Recorded by autograd like any op, so a fresh view is a non-leaf of the base.
    While recording is off, a view onto one contiguous run of a large base is a host alias instead (workaround
    "view input copy" above), kept while recording stays off and the base is unchanged.
    Callers check staleness first (`v._vver != v._vbase._ver`); `unwrap` does."""
    b = v._vbase
    if not _GRAD[0]:
        if v._vver == -3 - b._ver:
            return  # a host alias of the current base, recording still off
        h = _host_alias(v, b)
        if h is not None:
            v._m = h
            v._vver = -3 - b._ver
            return
    # a view made while autograd was not recording is derived without recording (torch: no grad_fn, no gradient
    # to its base; it requires grad when its base does). MindSpore's own flag is restored as it was (inside a
    # backward pass it is off while the facade's cache may still say on).
    unrecorded = _GRAD[0] and v.__dict__.get("_no_grad_view", False)
    if unrecorded:
        prev = _pynative_executor.enable_grad()
        _pynative_executor.set_enable_grad(False)
    try:
        m = b._m
        for fn, args in v._steps:
            m = fn(m, *args)
    finally:
        if unrecorded:
            _pynative_executor.set_enable_grad(prev)
    v._m = m
    v._vver = b._ver


def make_view(parent, fn, args, geom, cls=None):
    """A view of `parent` derived by MindSpore step ``fn(m, *args)`` with torch geometry `geom`.

    parent: a facade tensor (base or view; a stale view is refreshed first); fn/args: a module-level step
    function and its extra arguments (hashable-free, no closures); geom: `(shape, strides, storage_offset)` of
    the result into the base, in elements (the caller computes torch's geometry). The view's base is
    `parent`'s base (chains are flattened: steps append) and it is current at the base's version. The first
    derivation runs now; nothing is written, no version counter changes. Autograd: the step is a recorded
    MindSpore op, so the view is a non-leaf whose gradient flows to the base (except through `stop_gradient`
    steps: `detach()`/`.data`)."""
    base = parent._vbase
    if base is None:
        base = parent
        steps = ((fn, args),)
    else:
        steps = parent._steps + ((fn, args),)
    v = new(None, parent._dt, parent._dev, cls)
    v._vbase = base
    v._steps = steps
    v._geom = geom
    if not _GRAD[0]:
        v.__dict__["_no_grad_view"] = True
    h = _host_alias(v, base)
    if h is not None:
        v._m = h
        v._vver = -3 - base._ver
        return v
    if parent._vbase is not None and parent._vver != base._ver:
        refresh(parent)
    v._m = fn(parent._m, *args)
    v._vver = base._ver
    return v


def check_leaf_inplace(t):
    """RuntimeError (torch's message) when `t`'s storage is a leaf requiring grad and recording is on."""
    m = t._m
    if _GRAD[0] and m._requires_grad and m._is_leaf:
        raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")


def assign(t, new):
    """Make MindSpore tensor `new` (t's shape, t's storage dtype: not checked) the value of facade tensor `t`,
    in place; returns `t`. Every facade in-place op ends here.

    Base: an unpinned base rebinds `_m` to `new` (no copy; `new`'s graph becomes t's history, so autograd flows
    through the in-place op as torch's would); a pinned base (leaf requiring grad, `.grad` tensor) is written
    with MindSpore's in-place `copy_` into the same object (RuntimeError for a leaf requiring grad while
    recording, torch's rule). Either way the base's `_ver` is bumped.
    View: the value is carried into the base by `write_back` (which bumps the base's `_ver`), then `t` caches
    `new` as current. A write through a detached alias of a pinned base (`p.data.copy_(x)`, `p.detach().zero_()`)
    runs with recording off: torch allows it and records nothing.

    MindSpore's own in-place methods are not used: most have no CPU kernel (workaround "in-place kernels") and
    `add_`/`mul_`/`sub_` silently leave self unchanged (workaround "silent in-place"); only `copy_` and slice
    assignment write in place (rows in shim/torch/_workarounds.py)."""
    b = t._vbase
    if b is None:
        if t._pinned:
            check_leaf_inplace(t)
            t._m.copy_(new)
        else:
            t._m = new
        t._ver += 1
        return t
    if _GRAD[0] and b._pinned and any(fn is _stop_gradient for fn, _ in t._steps):
        # A write through a detached alias of a leaf (`p.data.copy_(x)`, `p.detach().zero_()`): torch allows it
        # and records nothing, so write back with autograd off.
        _set_grad(False)
        try:
            write_back(t, new)
        finally:
            _set_grad(True)
    else:
        write_back(t, new)
    t._m = new
    t._vver = b._ver
    return t


# Write-backs into bases up to this many elements rebuild the base functionally; larger bases are written in
# place by slice assignment, which costs a pipeline sync in MindSpore 2.10 (its setitem waits for all queued
# work, measured) but only O(view) memory traffic.
FUNCTIONAL_WRITE_MAX = 1 << 20


def write_back(v, new):
    """Carry view `v`'s new value `new` (MindSpore tensor of v's shape and storage dtype) into its base.

    Zero-element views write nothing. A view covering its whole base contiguously is `assign(base, ...)`.
    Otherwise (RuntimeError for a view of a pinned leaf requiring grad while recording, torch's rule):
    - bases up to `FUNCTIONAL_WRITE_MAX` elements, or any write autograd must see: the base is rebuilt
      functionally (`narrow` + `cat` for a contiguous region, `scatter` over `index_map(v)` otherwise) and
      assigned with `assign` (so gradients flow through the write, as torch's in-place op on a view);
    - larger bases outside recording: a contiguous region is written in place into the base's storage by one
      slice assignment with MindSpore's enable_grad off (workaround "setitem general path" and
      workaround "view(-1) setitem" in shim/torch/_workarounds.py), bumping the base's `_ver`; other
      geometries scatter as above.
    The view's own cache is left to the caller (`assign` sets it)."""
    b = v._vbase
    shape, strides, off = v._geom
    n = 1
    for s in shape:
        n *= s
    if n == 0:
        return
    bm = b._m
    bshape = geom(b)[0]
    total = 1
    for s in bshape:
        total *= s
    contiguous = is_contig(shape, strides)
    if contiguous and off == 0 and n == total:
        assign(b, host_reshape(new, bshape))
        return
    if b._pinned and _GRAD[0] and bm._requires_grad and bm._is_leaf:
        raise RuntimeError("a view of a leaf Variable that requires grad is being used in an in-place operation.")
    # Functional rebuild of the base (no pipeline sync, gradients flow through it; O(base) memory traffic)
    # for small bases and whenever autograd must see the write; large bases outside recording are written
    # in place below. (Asking a small base whether it requires grad would wait on MindSpore's pipeline.)
    if total <= FUNCTIONAL_WRITE_MAX or (_GRAD[0] and (bm._requires_grad or new._requires_grad)):
        flat = bm.reshape(-1)
        if contiguous:
            parts = [p for p in (mint.narrow(flat, 0, 0, off) if off else None, new.reshape(-1),
                                 mint.narrow(flat, 0, off + n, total - off - n) if off + n < total else None)
                     if p is not None]
            nf = mint.cat(parts) if len(parts) > 1 else parts[0]
        else:
            nf = scatter(flat, 0, index_map(v), new.reshape(-1))
        assign(b, nf.reshape(bshape))
        return
    if contiguous:
        # Large base: in place into the base's storage with one slice assignment (also for pinned leaves outside
        # recording). Fast path: the region is a run of whole rows of the base (always so for 1-D buffers such
        # as megatron-core's gradient buffer) -> assign on the base's first dimension. Otherwise through
        # MindSpore's storage-sharing view(-1); that assignment only writes through with MindSpore's
        # enable_grad off (measured), so it is switched off around the write.
        # Both assignments run with enable_grad off: nothing here is recorded anyway (see the condition above),
        # and with it on MindSpore 2.10 takes its general setitem path (host-built index arrays + a scatter):
        # ~50x slower, e.g. 6.5 s instead of 0.12 s for a 9.7M-element region (measured,
        # benchmarks/bench_megatron_shim.py --profile: megatron's main_grad.add_ into the gradient buffer).
        if _host_write(bm, off, n, new):
            b._ver += 1
            return
        inner = total // bshape[0] if bshape and bshape[0] else 0
        prev = _pynative_executor.enable_grad()
        _pynative_executor.set_enable_grad(False)
        try:
            if inner and off % inner == 0 and n % inner == 0:
                rows = n // inner
                bm[off // inner:off // inner + rows] = new.reshape((rows,) + bshape[1:])
            else:
                bm.view(-1)[off:off + n] = new.reshape(-1)
        finally:
            _pynative_executor.set_enable_grad(prev)
        b._ver += 1
    else:
        nf = scatter(bm.reshape(-1), 0, index_map(v), new.reshape(-1))
        assign(b, nf.reshape(bshape))


# ----------------------------------------------------------------------------------------------------------
# view step functions: fn(m, *args) -> MindSpore tensor (module-level so that view chains hold no closures)


def step_reshape(m, shape):
    """view/reshape/squeeze/unsqueeze (and the no-op transpose): `m.reshape(shape)`."""
    return m.reshape(shape)


def step_transpose(m, d0, d1):
    """transpose(d0, d1)."""
    return mint.transpose(m, d0, d1)


def step_permute(m, dims):
    """permute(dims)."""
    return mint.permute(m, dims)


def step_broadcast_to(m, shape):
    """expand(shape)."""
    return mint.broadcast_to(m, shape)


def step_gather_flat(m, idx, shape):
    """as_strided: gather the flat storage indices `idx` and shape them."""
    return ops.gather(m.reshape(-1), idx, 0).reshape(shape)
