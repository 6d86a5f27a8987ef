"""Statistics ops: cov and corrcoef (composed from facade ops, differentiable), and the counting ops torch does
not differentiate — unique, unique_consecutive, histc, histogram — evaluated on the host with NumPy (their
results are integers/counts; `histc`/`histogram` values never require grad, as torch's have no gradient).
Each docstring states where torch's conventions (bin edges, ordering, NaN handling) come in."""
from __future__ import annotations

import collections

import numpy as np

from .. import _dtype as D
from .._tensor import Tensor
from ._support import emulated
from .creation import _from_host
from .indexing import where


def _rt(name, fields):
    cls = collections.namedtuple(name, fields)
    cls.__module__ = "torch.return_types"
    return cls


HistogramT = _rt("histogram", ("hist", "bin_edges"))


# ---- covariance ---------------------------------------------------------------------------------------------


@emulated("weighted mean-centred matrix product of facade ops")
def cov(input, *, correction=1, fweights=None, aweights=None):
    """torch.cov(input, correction=1, fweights=None, aweights=None): the covariance matrix of the variables in
    the rows of `input` (a 1-D input is one variable: a 0-d result). `fweights` (integer frequency weights) and
    `aweights` (observation weights) are 1-D of length input.size(-1); the normaliser is sum(w) - correction *
    (sum(w * aw) / sum(w) with aweights, else 1), clamped at 0 (NaN/inf as torch then). RuntimeError for more
    than 2 dimensions or mis-shaped weights."""
    if input.dim() > 2:
        raise RuntimeError(f"cov(): expected input to have two or fewer dimensions but got an input with "
                           f"{input.dim()} dimensions")
    x = input if input.dim() == 2 else input.reshape(1, -1)
    if x.dtype._cat != D._FLOAT:
        x = x.to(D.get_default_dtype())
    n = x.shape[1]
    w = None
    if fweights is not None:
        if fweights.dim() > 1 or fweights.numel() != n:
            raise RuntimeError(f"cov(): expected fweights to have one or fewer dimensions and {n} elements")
        w = fweights.to(x.dtype)
    if aweights is not None:
        if aweights.dim() > 1 or aweights.numel() != n:
            raise RuntimeError(f"cov(): expected aweights to have one or fewer dimensions and {n} elements")
        w = aweights.to(x.dtype) if w is None else w * aweights.to(x.dtype)
    if w is None:
        wsum = float(n)
        avg = x.mean(1, keepdim=True)
        norm = wsum - correction
    else:
        wsum_t = w.sum()
        avg = (x * w).sum(1, keepdim=True) / wsum_t
        if correction == 0:
            norm = wsum_t
        elif aweights is None:
            norm = wsum_t - correction
        else:
            norm = wsum_t - correction * (w * aweights.to(x.dtype)).sum() / wsum_t
    if isinstance(norm, Tensor):
        norm = norm.clamp_min(0)
    else:
        norm = max(norm, 0.0)
    xc = x - avg
    xw = xc if w is None else xc * w
    c = xw.matmul(xc.transpose(0, 1)) / norm
    return c.reshape(()) if input.dim() < 2 or x.shape[0] == 1 else c


@emulated("cov normalised by the outer product of its diagonal's square roots, clipped to [-1, 1]")
def corrcoef(input):
    """torch.corrcoef(input): Pearson correlation coefficients of the rows' variables (values clipped to
    [-1, 1], as torch; a single variable gives 1 (or NaN))."""
    c = cov(input)
    if c.dim() == 0:
        return c / c
    d = c.diagonal()
    s = d.sqrt()
    r = c / s.unsqueeze(1) / s.unsqueeze(0)
    return r.clamp(-1, 1)  # NaN stays NaN (torch's clamp)


# ---- unique -------------------------------------------------------------------------------------------------


def _int64(arr, like):
    return _from_host(np.asarray(arr, dtype=np.int64), D.int64, like._dev)


def _values(arr, like):
    return _from_host(np.asarray(arr), like._dt, like._dev)


def unique(input, sorted=True, return_inverse=False, return_counts=False, dim=None):
    """torch.unique: the distinct values (sorted ascending: torch's CPU kernel sorts whatever `sorted` says;
    every NaN counts as distinct, last), or the distinct slices along `dim`; optionally the inverse indices
    (int64, input's shape or the dim's length) and counts (int64). Host NumPy (no gradient, as torch)."""
    a = input._host()
    if dim is None:
        flat = a.reshape(-1)
        order = np.argsort(flat, kind="stable")
        s = flat[order]
        if s.size:
            new = np.ones(s.size, dtype=bool)
            new[1:] = s[1:] != s[:-1]  # NaN != NaN: each NaN its own group
        else:
            new = np.zeros(0, dtype=bool)
        vals = s[new]
        group = np.cumsum(new) - 1
        inverse = np.empty(flat.size, dtype=np.int64)
        inverse[order] = group
        counts = np.bincount(group, minlength=vals.size) if s.size else np.zeros(0, np.int64)
        out = [_values(vals, input)]
        if return_inverse:
            out.append(_int64(inverse.reshape(a.shape), input))
        if return_counts:
            out.append(_int64(counts, input))
        return out[0] if len(out) == 1 else tuple(out)
    d = dim + a.ndim if dim < 0 else dim
    moved = np.moveaxis(a, d, 0)
    rows = moved.reshape(moved.shape[0], -1)
    if rows.shape[0] == 0:
        uniq, inverse, counts = rows, np.zeros(0, np.int64), np.zeros(0, np.int64)
    else:
        uniq, inverse, counts = np.unique(rows, axis=0, return_inverse=True, return_counts=True)
    vals = np.moveaxis(uniq.reshape((uniq.shape[0],) + moved.shape[1:]), 0, d)
    out = [_values(vals, input)]
    if return_inverse:
        out.append(_int64(np.asarray(inverse).reshape(-1), input))
    if return_counts:
        out.append(_int64(counts, input))
    return out[0] if len(out) == 1 else tuple(out)


def unique_consecutive(input, return_inverse=False, return_counts=False, dim=None):
    """torch.unique_consecutive: collapses runs of equal consecutive values (or slices along `dim`), in order;
    optionally the inverse indices and run lengths (int64). Host NumPy (no gradient, as torch)."""
    a = input._host()
    if dim is None:
        flat = a.reshape(-1)
        moved, shape_inv = flat.reshape(-1, 1), a.shape
    else:
        d = dim + a.ndim if dim < 0 else dim
        mv = np.moveaxis(a, d, 0)
        moved, shape_inv = mv.reshape(mv.shape[0], -1), (mv.shape[0],)
    n = moved.shape[0]
    new = np.ones(n, dtype=bool)
    if n > 1:
        new[1:] = (moved[1:] != moved[:-1]).any(axis=1)
    starts = np.flatnonzero(new)
    group = np.cumsum(new) - 1
    counts = np.diff(np.append(starts, n))
    if dim is None:
        vals = flat[starts]
    else:
        vals = np.moveaxis(np.moveaxis(a, d, 0)[starts], 0, d)
    out = [_values(vals, input)]
    if return_inverse:
        out.append(_int64(group.reshape(shape_inv), input))
    if return_counts:
        out.append(_int64(counts, input))
    return out[0] if len(out) == 1 else tuple(out)


# ---- histograms ---------------------------------------------------------------------------------------------


def histc(input, bins=100, min=0, max=0, *, out=None):
    """torch.histc: counts of input's values in `bins` equal-width bins over [min, max] (both 0, or equal:
    the data's range; still equal: widened by 1 each side); values outside are ignored, max goes to the last
    bin. The bin of x is floor((x - min) * bins / (max - min)) in input's dtype, as torch's kernel computes it.
    Result: input's dtype. Host NumPy (no gradient, as torch). RuntimeError for bins <= 0 or min > max."""
    if bins <= 0:
        raise RuntimeError("torch.histogramdd: expected each bin count to be greater than 0")
    if input._dt._cat != D._FLOAT:
        raise RuntimeError(f"torch.histc: input tensor and bins tensors should have the same dtype, but got "
                           f"input {str(input._dt).replace('torch.', '')}")
    a = input._host().reshape(-1)
    ft = np.float32 if a.dtype != np.float64 else np.float64
    a = a.astype(ft)
    lo, hi = ft(min), ft(max)
    if lo == hi and a.size:
        finite = a[np.isfinite(a)]
        if finite.size:
            lo, hi = ft(finite.min()), ft(finite.max())
    if lo == hi:
        lo, hi = ft(lo - 1), ft(hi + 1)
    if lo > hi:
        raise RuntimeError(f"torch.histc: max must be larger than min")
    keep = (a >= lo) & (a <= hi)
    v = a[keep]
    with np.errstate(all="ignore"):
        pos = ((v - lo) * ft(bins) / (hi - lo)).astype(np.int64)
    pos = np.minimum(pos, bins - 1)
    counts = np.bincount(pos, minlength=bins).astype(np.float64)
    r = _from_host(counts, input._dt, input._dev)
    return r if out is None else out.copy_(r)


def _linspace_like_torch(lo, hi, steps, ft):
    """float edges start + i * step for the first half and end - (steps - 1 - i) * step for the rest, computed in
    dtype `ft` (torch's CPU linspace kernel)."""
    if steps == 1:
        return np.array([lo], ft)
    step = (ft(hi) - ft(lo)) / ft(steps - 1)
    i = np.arange(steps)
    half = steps // 2
    return np.where(i < half, ft(lo) + i.astype(ft) * step, ft(hi) - (steps - 1 - i).astype(ft) * step).astype(ft)


def histogram(input, bins, *, range=None, weight=None, density=False, out=None):
    """torch.histogram(input, bins, range=None, weight=None, density=False) -> (hist, bin_edges): `bins` an int
    (equal-width bins over `range`, default the data's [min, max], widened by 0.5 each side when empty or
    equal) or a 1-D tensor of increasing edges. A value falls in bin i when edges[i] <= x < edges[i+1] (the last
    bin includes its right edge); values outside are ignored. `weight`: per-element weights; `density`: counts
    divided by (total * bin width). Results in input's dtype. Host NumPy (no gradient, as torch)."""
    if input._dt._cat != D._FLOAT:
        raise RuntimeError("torch.histogram: input tensor and bins tensors should have the same dtype")
    a = input._host().reshape(-1)
    ft = np.float32 if a.dtype != np.float64 else np.float64
    a = a.astype(ft)
    if isinstance(bins, Tensor):
        edges = bins._host().reshape(-1).astype(ft)
    else:
        nb = int(bins)
        if nb <= 0:
            raise RuntimeError("torch.histogram(): bins must be > 0")
        if range is not None:
            lo, hi = ft(range[0]), ft(range[1])
        elif a.size:
            lo, hi = ft(a.min()), ft(a.max())
        else:
            lo, hi = ft(0), ft(1)  # torch's default range for an empty input
        if lo > hi:
            raise RuntimeError(f"torch.histogram(): min should not exceed max, but got min {lo} max {hi}")
        if lo == hi:
            lo, hi = ft(lo - ft(0.5)), ft(hi + ft(0.5))
        edges = _linspace_like_torch(lo, hi, nb + 1, ft)
    nb = edges.size - 1
    w = None if weight is None else weight._host().reshape(-1).astype(np.float64)
    keep = (a >= edges[0]) & (a <= edges[-1])
    pos = np.searchsorted(edges, a[keep], side="right") - 1
    pos = np.minimum(pos, nb - 1)
    hist = np.bincount(pos, weights=None if w is None else w[keep], minlength=nb).astype(np.float64)
    if density:
        widths = np.diff(edges.astype(np.float64))
        total = hist.sum()
        with np.errstate(all="ignore"):
            hist = hist / (total * widths)
    h = _from_host(hist, input._dt, input._dev)
    e = _from_host(edges, input._dt, input._dev)
    if out is not None:
        out[0].copy_(h)
        out[1].copy_(e)
    return HistogramT(h, e)


# ---- order statistics -----------------------------------------------------------------------------------


NanmedianT = _rt("nanmedian", ("values", "indices"))
_INTERP = ("linear", "lower", "higher", "midpoint", "nearest")


def _sorted_nan_last(x):
    """(values, indices) of x sorted ascending along the last dim with NaN treated as +inf (the value shown
    for them is +inf), and the count of non-NaN elements per row (int64, keepdim). MindSpore's CPU sort does
    not order NaN (measured: NaN stay in place), so the sort key carries +inf instead; the first `count` values
    are the row's non-NaN values in order."""
    nan = x.isnan()
    key = where(nan, x.new_full((), float("inf")).expand(tuple(x.shape)), x)
    s = key.sort(-1, stable=True)
    count = nan.logical_not().sum(-1, keepdim=True)
    return s.values, s.indices, count, nan.any(-1, keepdim=True)


def _quantile(name, input, q, dim, keepdim, interpolation, ignore_nan):
    from .creation import tensor as _tensor
    if interpolation not in _INTERP:
        raise ValueError(f"{name}() interpolation must be one of {', '.join(_INTERP)}. Got {interpolation}")
    if input._dt._cat != D._FLOAT:
        raise RuntimeError(f"{name}() input tensor must be either float or double dtype")
    scalar_q = not isinstance(q, Tensor)
    qv = [float(q)] if scalar_q else [float(v) for v in q.reshape(-1).tolist()]
    if not scalar_q and q.dim() > 1:
        raise RuntimeError(f"{name}() q must be a scalar or 1D tensor")
    if any(not 0 <= v <= 1 for v in qv):
        raise RuntimeError(f"{name}() q values must be in the range [0, 1]")
    if input.numel() == 0 and dim is None or (dim is not None and input.dim() and input.shape[dim] == 0):
        raise RuntimeError(f"{name}() input tensor must be non-empty")
    if dim is None:
        x = input.reshape(-1)
        d = 0
    else:
        d = dim + input.dim() if dim < 0 else dim
        x = input if input.dim() else input.reshape(1)
    xl = x.movedim(d, -1) if x.dim() else x
    vals, _, count, has_nan = _sorted_nan_last(xl)
    n = xl.shape[-1]
    k = count if ignore_nan else _tensor(n, dtype=D.int64)
    qt = _tensor(qv, dtype=input.dtype)  # (Q,)
    last = (k - 1).clamp_min(0).to(input.dtype)  # (..., 1)
    rank = (last * qt).expand(tuple(vals.shape)[:-1] + (len(qv),))  # (..., Q)
    if interpolation == "lower":
        rank = rank.floor()
    elif interpolation == "higher":
        rank = rank.ceil()
    elif interpolation == "nearest":
        rank = rank.round()
    lo_i = rank.floor().to(D.int64).clamp(0, n - 1)
    hi_i = rank.ceil().to(D.int64).clamp(0, n - 1)
    lo, hi = vals.gather(-1, lo_i), vals.gather(-1, hi_i)
    if interpolation == "midpoint":
        out = lo + (hi - lo) * 0.5
    elif interpolation == "linear":
        w = rank - lo_i.to(input.dtype)
        out = lo.lerp(hi, w)
    else:
        out = lo
    nan_rows = (count == 0) if ignore_nan else has_nan
    out = where(nan_rows.expand(tuple(out.shape)), out.new_full((), float("nan")).expand(tuple(out.shape)), out)
    out = out.movedim(-1, 0)  # (Q, ...)
    if keepdim:
        if dim is None:
            out = out.reshape((len(qv),) + (1,) * input.dim())
        else:
            out = out.unsqueeze(d + 1) if input.dim() else out
    return out[0] if scalar_q else out


@emulated("sort with NaN as +inf, gather of the bracketing order statistics, lerp")
def quantile(input, q, dim=None, keepdim=False, *, interpolation="linear", out=None):
    """torch.quantile(input, q, dim=None, keepdim=False, interpolation='linear'): the q-th quantiles (q a
    number or 1-D tensor in [0, 1]; a tensor q puts its dimension first) of input's values (flattened when
    dim is None) along `dim`; rows with NaN give NaN. Interpolation between the order statistics at
    floor/ceil of q (n - 1): linear, lower, higher, midpoint, nearest (round half to even). Differentiable
    through the gathered values."""
    r = _quantile("quantile", input, q, dim, keepdim, interpolation, False)
    return r if out is None else out.copy_(r)


@emulated("sort with NaN as +inf, gather of the bracketing order statistics among the non-NaN, lerp")
def nanquantile(input, q, dim=None, keepdim=False, *, interpolation="linear", out=None):
    """torch.nanquantile: quantile ignoring NaN (a row of only NaN gives NaN)."""
    r = _quantile("nanquantile", input, q, dim, keepdim, interpolation, True)
    return r if out is None else out.copy_(r)


@emulated("sort with NaN as +inf, the ((count - 1) // 2)-th value among the non-NaN")
def nanmedian(input, dim=None, keepdim=False):
    """torch.nanmedian: the lower median of the non-NaN values (NaN when there are none); with `dim`,
    (values, indices int64) along it. Index choice among equal values may differ from torch's (unspecified)."""
    if dim is None:
        vals, _, count, _ = _sorted_nan_last(input.reshape(-1))
        k = int(count.item())
        return input.reshape(-1)[0:0].sum() * float("nan") if k == 0 else vals[(k - 1) // 2].clone()
    nd = input.dim()
    d = dim + builtins_max(nd, 1) if dim < 0 else dim
    x = input if nd else input.reshape(1)
    xl = x.movedim(d, -1)
    vals, idx, count, _ = _sorted_nan_last(xl)
    pos = ((count - 1).clamp_min(0)) // 2
    v, i = vals.gather(-1, pos), idx.gather(-1, pos)
    v = where(count == 0, v.new_full((), float("nan")).expand(tuple(v.shape)), v)
    if nd == 0:
        return NanmedianT(v.reshape(()), i.reshape(()))
    if keepdim:
        return NanmedianT(v.movedim(-1, d), i.movedim(-1, d))
    return NanmedianT(v.squeeze(-1), i.squeeze(-1))


def builtins_max(a, b):
    return a if a > b else b


__all__ = ["cov", "corrcoef", "unique", "unique_consecutive", "histc", "histogram", "quantile", "nanquantile",
           "nanmedian"]
FUNCTIONS = {n: globals()[n] for n in __all__}
METHODS = {
    "cov": cov,
    "corrcoef": corrcoef,
    "unique": unique,
    "unique_consecutive": unique_consecutive,
    "histc": histc,
    "histogram": histogram,
    "quantile": quantile,
    "nanquantile": nanquantile,
    "nanmedian": nanmedian,
}
